"""Driving cases through the HTTP API, step by step, as the tests do."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cases.actor import Actor
from tests.factories import CLERK, GRID_LEADER, LEADER_OF_GRID, actor_json, registration


def position(client: TestClient) -> int:
    return client.get("/healthz").json()["position"]


def register(client: TestClient, **overrides: Any) -> str:
    response = client.post("/cases", json={"actor": actor_json(CLERK), **registration(**overrides)})
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


def act(client: TestClient, case_id: str, command: str, actor: Actor, expect: int = 200, **body: Any) -> dict:
    response = client.post(f"/cases/{case_id}/{command}", json={"actor": actor_json(actor), **body})
    assert response.status_code == expect, response.text
    return response.json()


def accepted(client: TestClient, tier: str = "big", handling_type: str = "committed") -> str:
    case_id = register(client)
    act(client, case_id, "classify", CLERK, handling_type=handling_type, tier=tier)
    act(client, case_id, "assign", CLERK, assignee=LEADER_OF_GRID)
    act(client, case_id, "accept", GRID_LEADER)
    return case_id
