"""Tamper evidence through the API: the chain is kept as events arrive, and
rows altered, deleted or moved directly in the database are named."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from config.settings import Settings
from replay.records import _sql
from tests.api_steps import accepted, act, position
from tests.factories import GRID_LEADER


@contextmanager
def raw_store(client: TestClient, settings: Settings) -> Iterator[tuple[Any, str, str]]:
    """A connection straight to the event table, bypassing the application."""
    column, table, _ = _sql(client.app.state.cases.recorder)  # type: ignore[attr-defined]
    if settings.database_url:
        conninfo = settings.database_url.partition("?")[0]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            yield conn, column, table
    else:
        conn = sqlite3.connect(settings.sqlite_path, isolation_level=None)
        try:
            yield conn, column, table
        finally:
            conn.close()


def mark(settings: Settings) -> str:
    return "%s" if settings.database_url else "?"


def chained(client: TestClient, case_id: str) -> list[dict[str, Any]]:
    """The case's history, after waiting for the chain to cover the log."""
    head = position(client)
    body = client.get("/audit/verify", params={"wait_for": head}).json()
    assert body["ok"] is True and body["chained_to"] >= head, body
    return client.get(f"/cases/{case_id}/history").json()["events"]


def test_an_untouched_log_verifies(client: TestClient) -> None:
    case_id = accepted(client)
    act(client, case_id, "report-progress", GRID_LEADER, progress="已联系物业")
    events = chained(client, case_id)
    body = client.get("/audit/verify").json()
    assert body["ok"] is True and body["first_problem"] is None
    assert body["checked"] >= len(events) and body["pending"] == 0
    assert len(body["root_hash"]) == 64


def test_a_row_altered_in_the_database_is_named(client: TestClient, settings: Settings) -> None:
    case_id = accepted(client)
    events = chained(client, case_id)
    target = events[2]  # Assigned
    with raw_store(client, settings) as (conn, column, table):
        row = conn.execute(f"SELECT state FROM {table} WHERE {column} = {mark(settings)}", [target["position"]])
        state = bytes(row.fetchone()[0])
        forged = state.replace(b"GL0001", b"GL0999")
        assert forged != state
        conn.execute(f"UPDATE {table} SET state = {mark(settings)} WHERE {column} = {mark(settings)}",
                     [forged, target["position"]])  # fmt: skip

    body = client.get("/audit/verify").json()
    assert body["ok"] is False
    problem = body["first_problem"]
    assert problem["kind"] == "altered" and problem["label"] == "事件内容被改动"
    assert (problem["position"], problem["originator_id"], problem["version"]) == (target["position"], case_id, 3)
    assert body["problem_count"] == 1


def test_a_deleted_row_is_named_missing(client: TestClient, settings: Settings) -> None:
    case_id = accepted(client)
    events = chained(client, case_id)
    with raw_store(client, settings) as (conn, column, table):
        conn.execute(f"DELETE FROM {table} WHERE {column} = {mark(settings)}", [events[3]["position"]])
    problem = client.get("/audit/verify").json()["first_problem"]
    assert problem["kind"] == "missing" and problem["position"] == events[3]["position"]
    assert problem["originator_id"] == case_id and problem["version"] == 4


def test_rows_moved_to_other_positions_are_named_reordered(client: TestClient, settings: Settings) -> None:
    case_id = accepted(client)
    events = chained(client, case_id)
    first, second = events[1]["position"], events[2]["position"]
    with raw_store(client, settings) as (conn, column, table):
        m = mark(settings)
        for old, new in ((first, -1), (second, first), (-1, second)):
            conn.execute(f"UPDATE {table} SET {column} = {m} WHERE {column} = {m}", [new, old])
    body = client.get("/audit/verify").json()
    problem = body["first_problem"]
    assert problem["kind"] == "reordered" and problem["position"] == first
    assert f"{second}" in problem["detail"]


def test_a_rewritten_chain_is_caught_by_a_published_root(client: TestClient, settings: Settings) -> None:
    case_id = accepted(client)
    events = chained(client, case_id)
    published = client.get("/audit/verify").json()
    root = (published["chained_to"], published["root_hash"])
    # Alter an event and rewrite the chain's rows to match: only a root kept elsewhere exposes it.
    target = events[2]["position"]
    views = client.app.state.read_side.views  # type: ignore[attr-defined]
    with raw_store(client, settings) as (conn, column, table):
        m = mark(settings)
        state = bytes(conn.execute(f"SELECT state FROM {table} WHERE {column} = {m}", [target]).fetchone()[0])
        forged = state.replace(b"GL0001", b"GL0999")
        conn.execute(f"UPDATE {table} SET state = {m} WHERE {column} = {m}", [forged, target])
    with views.transaction() as cur:
        (before,) = cur.execute(
            "SELECT originator_version, stream_hash FROM audit_chain WHERE originator_id = ? AND position < ? "
            "ORDER BY position DESC LIMIT 1",
            [case_id, target],
        )
        cur.execute("DELETE FROM audit_chain WHERE position >= ?", [target])
        cur.execute(
            "UPDATE audit_heads SET originator_version = ?, stream_hash = ? WHERE originator_id = ?",
            [before["originator_version"], before["stream_hash"], case_id],
        )
        cur.execute("UPDATE projection_tracking SET position = ? WHERE projection = 'audit_chain'", [target - 1])
    runner = client.app.state.read_side.runners[1]  # type: ignore[attr-defined]
    runner.wait(root[0], timeout=10)
    consistent = client.get("/audit/verify").json()
    assert consistent["ok"] is True, consistent["problems"]  # the forgery is self-consistent…
    body = client.get("/audit/verify", params={"root_position": root[0], "root_hash": root[1]}).json()
    assert body["ok"] is False and body["first_problem"]["kind"] == "root_mismatch"  # …but not with the root


def test_seals_record_the_root_and_are_checked(client: TestClient) -> None:
    case_id = accepted(client)
    chained(client, case_id)
    views = client.app.state.read_side.views  # type: ignore[attr-defined]
    from projections.chain import seal

    with views.transaction() as cur:
        made = seal(cur)
        assert made is not None and seal(cur) is None  # nothing new since: no second seal
    seals = client.get("/audit/seals").json()["seals"]
    assert seals[-1]["root_hash"] == made["root_hash"] == client.get("/audit/verify").json()["root_hash"]
    assert client.get("/audit/verify").json()["seals_checked"] == len(seals)
    with views.transaction() as cur:
        cur.execute("UPDATE audit_seals SET root_hash = ? WHERE seal_no = ?", ["0" * 64, made["seal_no"]])
    assert client.get("/audit/verify").json()["first_problem"]["kind"] == "seal_mismatch"


def test_verify_validates_its_query(client: TestClient) -> None:
    assert client.get("/audit/verify", params={"root_position": 3}).status_code == 422
    assert client.get("/audit/verify", params={"root_position": 3, "root_hash": "xyz"}).status_code == 422
