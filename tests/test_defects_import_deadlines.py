"""An imported work order's 13710 deadlines count from the platform's registration
(`received_at`), not from the moment Minqing imported it; an order without one counts from the
import, and a platform time later than the import is refused. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from cases.vocabulary import HandlingType, Tier
from tests.factories import ADMIN, CLERK, auth
from tests.import_files import HEADERS_12345, order_12345, to_csv


def _import(client: TestClient, rows: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(
        "/imports",
        params={"mapping": "12345", "filename": "export.csv"},
        content=to_csv(rows, HEADERS_12345),
        headers={**auth(CLERK), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _dues(client: TestClient, case_id: str) -> dict[str, str]:
    case = client.get(f"/cases/{case_id}", headers=auth(ADMIN)).json()
    return {name: d["due"] for name, d in case["deadlines"].items()}


def _expected(client: TestClient, start: date) -> dict[str, str]:
    version = client.app.state.cases.policy.in_force(date(2026, 3, 2))  # type: ignore[attr-defined]
    return {n: d["due"] for n, d in version.deadlines(HandlingType.COMMITTED, Tier.SMALL, start).items()}


def _classify(client: TestClient, case_id: str) -> None:
    body = {"handling_type": "committed", "tier": "small"}
    response = client.post(f"/cases/{case_id}/classify", json=body, headers=auth(CLERK))
    assert response.status_code == 200, response.text


def test_an_imported_orders_deadlines_count_from_the_platforms_registration(client: TestClient) -> None:
    # The clock says Monday 2026-03-02; the hotline took the call on the Friday before.
    report = _import(client, [order_12345(1, 来电时间="2026-02-27 10:00:00")])
    [imported] = report["imported"]
    _classify(client, imported["case_id"])
    friday = _expected(client, date(2026, 2, 27))
    assert friday != _expected(client, date(2026, 3, 2))  # the test can tell the two starts apart
    assert _dues(client, imported["case_id"]) == friday

    recomputed = client.post(f"/cases/{imported['case_id']}/recompute-deadlines", json={}, headers=auth(ADMIN))
    assert recomputed.status_code == 200, recomputed.text
    assert _dues(client, imported["case_id"]) == friday


def test_without_the_platforms_time_the_deadlines_count_from_the_import(client: TestClient) -> None:
    [imported] = _import(client, [order_12345(2, 来电时间="")])["imported"]  # the cell left empty
    _classify(client, imported["case_id"])
    assert _dues(client, imported["case_id"]) == _expected(client, date(2026, 3, 2))


def test_a_platform_time_in_the_future_is_refused(client: TestClient) -> None:
    report = _import(client, [order_12345(3, 来电时间="2026-03-09 10:00:00")])
    assert report["imported_count"] == 0
    assert [r["field"] for r in report["refused"]] == ["received_at"]
