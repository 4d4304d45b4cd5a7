"""Rebuilding read models: into fresh tables, compared with the live ones,
swapped in while readers keep reading, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient

from config.settings import Settings
from projections.runner import tracked_position
from replay.rebuild import rebuild
from tests.api_steps import accepted, act, position, register
from tests.conftest import Clock
from tests.factories import CLERK, GRID_LEADER, LEADER_OF_GRID


def some_cases(client: TestClient, clock: Clock, n: int = 6) -> None:
    for i in range(n):
        if i % 2:
            act(client, accepted(client), "report-progress", GRID_LEADER, progress="已联系物业")
        else:
            case_id = register(client)
            if i % 4 == 0:
                act(client, case_id, "classify", CLERK, handling_type="committed", tier="small")
                act(client, case_id, "assign", CLERK, assignee=LEADER_OF_GRID)
        clock.advance(hours=3)


def ledger_rows(client: TestClient) -> list[dict[str, Any]]:
    views = client.app.state.read_side.views  # type: ignore[attr-defined]
    return views.query("SELECT * FROM ledger_cases ORDER BY case_id")


def test_a_rebuild_equals_the_live_view_and_swaps_in_under_readers(
    client: TestClient, clock: Clock, settings: Settings
) -> None:
    some_cases(client, clock)
    head = position(client)
    assert client.get("/ledger", params={"wait_for": head}).status_code == 200
    before = ledger_rows(client)
    app = client.app.state  # type: ignore[attr-defined]

    failures: list[int] = []
    answered = 0
    stop = threading.Event()

    def read_all_along() -> None:
        nonlocal answered
        while not stop.is_set():
            response = client.get("/ledger", params={"limit": 50})
            answered += 1
            if response.status_code != 200 or response.json()["total"] != 6:
                failures.append(response.status_code)

    reader = threading.Thread(target=read_all_along)
    reader.start()
    try:
        outcome, kept = rebuild(app.cases, settings, app.read_side.views, "ledger")
    finally:
        stop.set()
        reader.join()
    assert kept is None
    assert outcome.swapped and outcome.equal is True, outcome
    assert outcome.position == outcome.live_position == tracked_position(app.read_side.views, "ledger") == head
    assert failures == [] and answered > 0
    assert ledger_rows(client) == before
    # The live runner carries on over the swapped-in tables.
    act(client, register(client), "classify", CLERK, handling_type="committed", tier="small")
    assert client.get("/ledger", params={"wait_for": position(client)}).json()["total"] == 7


def test_a_rebuild_tells_when_the_live_view_had_drifted(client: TestClient, clock: Clock, settings: Settings) -> None:
    some_cases(client, clock, n=3)
    client.get("/ledger", params={"wait_for": position(client)})
    app = client.app.state  # type: ignore[attr-defined]
    with app.read_side.views.transaction() as cur:
        cur.execute(
            "UPDATE ledger_cases SET status = 'closed' WHERE case_id IN (SELECT MIN(case_id) FROM ledger_cases)"
        )
    outcome, _ = rebuild(app.cases, settings, app.read_side.views, "ledger")
    assert outcome.swapped and outcome.equal is False
    assert outcome.differences["ledger_cases"] == {"only_live": 1, "only_rebuilt": 1}
    statuses = {r["status"] for r in ledger_rows(client)}
    assert "closed" not in statuses  # the rebuilt truth replaced the drifted row


def test_a_side_by_side_rebuild_leaves_the_live_view_alone(
    client: TestClient, clock: Clock, settings: Settings
) -> None:
    some_cases(client, clock, n=3)
    client.get("/ledger", params={"wait_for": position(client)})
    app = client.app.state  # type: ignore[attr-defined]
    before = ledger_rows(client)
    outcome, kept = rebuild(app.cases, settings, app.read_side.views, "ledger", swap=False, keep_as="trial")
    try:
        assert kept is not None and not outcome.swapped
        assert kept.views.query("SELECT * FROM ledger_cases ORDER BY case_id") == before
        assert ledger_rows(client) == before
    finally:
        kept.drop()
