"""Events carry a schema version; an event stored in an older shape is upcast
when read. Here a v1 FeedbackGiven (before `reached` existed) is written
straight into the store and read back, through the API, as v2."""

from __future__ import annotations

from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient

from cases.case import Case
from tests.api_steps import accepted, act, position
from tests.factories import GRID_LEADER


def old_shape_feedback(client: TestClient, case_id: str) -> None:
    """What a v1 build of Minqing stored: no `reached`, no `class_version`."""
    cases = client.app.state.cases  # type: ignore[attr-defined]
    case = cases.get_case(UUID(case_id))
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-03-02T03:00:00+00:00"},
        "actor": {"id": GRID_LEADER.id, "role": str(GRID_LEADER.role), "unit": None},
        "number": case.number,
        "units": case.units,
        "method": "home_visit",
        "content": "上门答复：已联系物业维修",
    }
    current = cases.mapper.to_stored_event(
        Case.FeedbackGiven(
            originator_id=case.id,
            originator_version=case.version + 1,
            timestamp=case.modified_on,
            actor=state["actor"],
            number=case.number,
            units=case.units,
            method="home_visit",
            content="x",
            reached=True,
        )
    )
    assert b'"class_version":2' in current.state.replace(b" ", b"")  # today's shape says its version
    topic = current.topic
    old = StoredEvent(case.id, case.version + 1, topic, orjson.dumps(state))
    decoded = orjson.loads(old.state)
    assert "reached" not in decoded and "class_version" not in decoded
    cases.recorder.insert_events([old])


def test_an_old_shape_event_is_read_back_in_the_new_shape(client: TestClient) -> None:
    case_id = accepted(client)
    old_shape_feedback(client, case_id)

    case = client.get(f"/cases/{case_id}").json()
    assert case["version"] == 5 and case["feedback"][0]["reached"] is True
    history = client.get(f"/cases/{case_id}/history").json()["events"]
    assert history[-1]["type"] == "FeedbackGiven" and history[-1]["schema_version"] == 2
    assert history[-1]["payload"]["reached"] is True
    ledger = client.get("/ledger", params={"wait_for": position(client)}).json()["items"]
    assert ledger[0]["feedback_method"] == "home_visit"


def test_the_new_shape_records_an_unreached_petitioner(client: TestClient) -> None:
    case_id = accepted(client)
    act(client, case_id, "feedback", GRID_LEADER, method="hotline_callback", content="电话未接通", reached=False)
    case = client.get(f"/cases/{case_id}").json()
    assert case["feedback"][0]["reached"] is False
    ledger = client.get("/ledger", params={"wait_for": position(client)}).json()["items"]
    assert ledger[0]["feedback_method"] is None  # an unanswered call is not feedback given
