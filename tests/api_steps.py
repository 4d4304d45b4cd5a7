"""Driving cases through the HTTP API, step by step, as the tests do."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cases.actor import Actor
from tests.factories import (
    CLERK,
    GRID_LEADER,
    LEADER_OF_GRID,
    OTHER_STREET_GRID,
    RESIDENT,
    auth,
    registration,
)


def position(client: TestClient) -> int:
    return client.get("/healthz").json()["position"]


def register(client: TestClient, **overrides: Any) -> str:
    response = client.post("/cases", json=registration(**overrides), headers=auth(CLERK))
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


def act(client: TestClient, case_id: str, command: str, actor: Actor, expect: int = 200, **body: Any) -> dict:
    response = client.post(f"/cases/{case_id}/{command}", json=body, headers=auth(actor, case_id))
    assert response.status_code == expect, response.text
    return response.json()


def accepted(client: TestClient, tier: str = "big", handling_type: str = "committed") -> str:
    case_id = register(client)
    act(client, case_id, "classify", CLERK, handling_type=handling_type, tier=tier)
    act(client, case_id, "assign", CLERK, assignee=LEADER_OF_GRID)
    act(client, case_id, "accept", GRID_LEADER)
    return case_id


OTHER_STREET_LEADER = "GL0016"


class Driver:
    """Sends commands through the API and remembers the last position."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.position = 0

    def register(self, **overrides: Any) -> str:
        response = self.client.post("/cases", json=registration(**overrides), headers=auth(CLERK))
        assert response.status_code == 201, response.text
        self.position = response.json()["position"]
        return response.json()["case_id"]

    def act(self, case_id: str, command: str, actor: Actor, **body: Any) -> None:
        response = self.client.post(f"/cases/{case_id}/{command}", json=body, headers=auth(actor, case_id))
        assert response.status_code == 200, response.text
        self.position = response.json()["position"]

    def accepted(self, tier: str = "small", **overrides: Any) -> str:
        case_id = self.register(**overrides)
        leader = OTHER_STREET_LEADER if overrides.get("grid") == OTHER_STREET_GRID else LEADER_OF_GRID
        self.act(case_id, "classify", CLERK, handling_type="committed", tier=tier)
        self.act(case_id, "assign", CLERK, assignee=leader)
        self.act(case_id, "accept", Actor(leader, GRID_LEADER.role))
        return case_id

    def closed(self, satisfaction: str = "satisfied", fail_first: bool = False) -> str:
        case_id = self.accepted()
        self.act(case_id, "rectify", GRID_LEADER, summary="已修复")
        if fail_first:
            self.act(case_id, "verify", RESIDENT, passed=False, reason="仍漏水")
            self.act(case_id, "rectify", GRID_LEADER, summary="再次修复")
        self.act(case_id, "verify", RESIDENT, passed=True)
        self.act(case_id, "close", GRID_LEADER, summary="销号")
        self.act(case_id, "feedback", GRID_LEADER, method="hotline_callback", content="回访")
        self.act(case_id, "rate", RESIDENT, satisfaction=satisfaction)
        return case_id

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params={"wait_for": self.position, **params})
        assert response.status_code == 200, response.text
        return response.json()
