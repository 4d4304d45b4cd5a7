"""Personal data at rest and erasure (crypto-shredding), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import sqlite3
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from commands.records import PersonErased
from config.settings import Settings
from security.vault import Vault
from tests.api_steps import Driver, act, register
from tests.factories import ADMIN, CLERK, GRID_LEADER, SUPERVISOR, auth, registration

PHONE = "13812341234"
NAME = "张秀英"
ADDRESS = "马限社区7栋302室"
SECRETS = (PHONE, NAME, ADDRESS, "1381234", "\\u5f20\\u79c0")  # also JSON-escaped and partial forms


def every_stored_value(settings: Settings) -> list[str]:
    """Every cell of every table the deployment writes: events, keys and read models."""
    cells: list[str] = []
    if settings.database_url is None:
        views = settings.sqlite_path.with_name(settings.sqlite_path.stem + "-views.sqlite3")
        for path in (settings.sqlite_path, views):
            with sqlite3.connect(path) as conn:
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    for row in conn.execute(f'SELECT * FROM "{table}"'):
                        cells += [_text(v) for v in row]
        return cells
    url = urlsplit(settings.database_url)
    schema = parse_qs(url.query)["schema"][0]
    with psycopg.connect(urlunsplit((url.scheme, url.netloc, url.path, "", ""))) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
        assert any(t.endswith("events") for t in tables), tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                cells += [_text(v) for v in row]
    return cells


def _text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def test_no_table_holds_a_petitioners_name_phone_or_address_in_clear(client: TestClient, settings: Settings) -> None:
    driver = Driver(client)
    response = client.post("/cases", json=registration(petitioner_address=ADDRESS), headers=auth(CLERK))
    case_id = response.json()["case_id"]
    act(client, case_id, "classify", CLERK, handling_type="committed", tier="small")
    driver.position = client.get("/healthz").json()["position"]
    assert driver.get("/ledger")["total"] == 1  # the read model has caught up
    cells = every_stored_value(settings)
    assert len(cells) > 50
    leaks = [(secret, cell[:80]) for cell in cells for secret in SECRETS if secret in cell]
    assert leaks == []
    # ... and yet the people allowed to read it still can.
    shown = client.get(f"/cases/{case_id}", headers=auth(CLERK)).json()["petitioner"]
    assert shown["phone"] == PHONE and shown["name"] == NAME and shown["address"] == ADDRESS


def test_no_log_line_carries_the_phone(client: TestClient) -> None:
    with capture_logs() as logs:
        case_id = register(client)
        client.get(f"/cases/{case_id}", headers=auth(CLERK))
        client.get(f"/cases/{case_id}/history", headers=auth(SUPERVISOR))
        client.post("/cases", json=registration(petitioner_phone="1"), headers=auth(CLERK))  # 422
    assert logs and not any(PHONE in repr(entry) for entry in logs)


def test_erasure_destroys_the_key_but_keeps_history_figures_and_the_hash_chain(client: TestClient) -> None:
    driver = Driver(client)
    first = driver.closed()
    second = driver.register(title="同一人的第二件诉求")  # the same phone: the same person
    person = client.get(f"/cases/{first}", headers=auth(ADMIN)).json()["petitioner_id"]  # masked, but erasable
    assert client.get(f"/cases/{second}", headers=auth(CLERK)).json()["petitioner"]["person"] == person
    scores_before = driver.get("/scores", by="street")
    history_before = client.get(f"/cases/{first}/history", headers=auth(CLERK)).json()

    refused = client.post(f"/persons/{person}/erase", headers=auth(CLERK))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_not_allowed"
    erased = client.post(f"/persons/{person}/erase", headers=auth(ADMIN))
    assert erased.status_code == 200, erased.text
    assert erased.json()["key_destroyed"] and erased.json()["ledger_rows_scrubbed"] == 2
    # The erasure itself is in the hash-chained log: who, when, which pseudonym; nothing personal.
    cases = client.app.state.cases  # type: ignore[attr-defined]
    record = next(iter(cases.events.get(PersonErased.stream_id(person))))
    assert record.by["id"] == ADMIN.id and record.person_id == person

    for case_id in (first, second):
        shown = client.get(f"/cases/{case_id}", headers=auth(CLERK)).json()["petitioner"]
        assert shown == {"person": person, "name": "[已删除]", "phone": "[已删除]", "erased": True}
    history = client.get(f"/cases/{first}/history", headers=auth(CLERK)).json()
    assert len(history["events"]) == len(history_before["events"])
    assert history["events"][0]["payload"]["petitioner"]["erased"] is True
    rows = driver.get("/ledger")["items"]
    assert {(r["petitioner_name"], r["petitioner_phone"]) for r in rows} == {("[已删除]", "[已删除]")}
    assert driver.get("/scores", by="street") == scores_before
    notice = driver.get("/reports/quarterly", period="2026-Q1")
    assert {c["phone"] for c in notice["cases"]} == {"[已删除]"}
    verified = client.get("/audit/verify", headers=auth(SUPERVISOR)).json()
    assert verified["ok"] is True, verified
    stream = client.get("/events", headers=auth(ADMIN)).json()["events"]
    registered = [e for e in stream if e["type"].endswith("Registered")]
    assert registered and all(e["data"]["petitioner"]["phone"] == "[已删除]" for e in registered)
    # A second erasure finds nothing left to destroy; an unknown person is 404.
    assert client.post(f"/persons/{person}/erase", headers=auth(ADMIN)).json()["key_destroyed"] is False
    unknown = client.post("/persons/P" + "0" * 32 + "/erase", headers=auth(ADMIN))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "person_not_found"
    # The same phone registering again gets a fresh person and key.
    third = driver.register(title="删除后的新诉求")
    again = client.get(f"/cases/{third}", headers=auth(GRID_LEADER)).json()["petitioner"]
    assert again["person"] != person and again["phone"] == PHONE


def test_rotating_the_master_key_rewraps_every_data_key(settings: Settings) -> None:
    old, new = settings.master_key, base64.b64encode(b"n" * 32).decode()
    assert old is not None
    vault = Vault.open(settings)
    envelope = vault.seal({"name": NAME, "phone": PHONE}, phone=PHONE)
    vault.close()
    rotating = Vault.open(Settings(**{**settings.__dict__, "master_key": new, "previous_master_keys": (old,)}))
    assert rotating.rotate() == 2  # the person's key and the phone-index key
    rotating.close()
    only_new = Vault.open(Settings(**{**settings.__dict__, "master_key": new, "previous_master_keys": ()}))
    try:
        assert only_new.unseal(envelope) == {"name": NAME, "phone": PHONE}
    finally:
        only_new.close()


def test_every_process_refuses_production_without_a_master_key(settings: Settings) -> None:
    import dataclasses

    import pytest

    from config.settings import InsecureConfigurationError

    with pytest.raises(InsecureConfigurationError, match="MINQING_MASTER_KEY"):
        Vault.open(dataclasses.replace(settings, master_key=None, environment="production"))
