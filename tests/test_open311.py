"""Open311 GeoReport v2: services, definitions, submitting and tracking requests, in JSON and XML."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from config.settings import Settings
from service import create_app
from tests.api_steps import Driver, position
from tests.conftest import Clock
from tests.factories import GRID, OTHER_STREET_GRID, DefaultReader

KEY = "test-key-12345"  # may submit
READ_KEY = "test-read-key-67890"  # may submit and read every field
FORM = {
    "api_key": KEY,
    "service_code": "parking",
    "description": "小区门口车辆乱停，堵塞消防通道，救护车进不来。",
    "address_string": "马限社区南门",
    "attribute[grid]": GRID,
    "last_name": "王",
    "first_name": "芳",
    "phone": "13900001111",
}


@pytest.fixture
def open311(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    app = create_app(
        replace(settings, open311_keys={KEY: "hotline_12345", READ_KEY: "hotline_12345:read"}), log_cache=False
    )
    with TestClient(app) as client:
        client.auth = DefaultReader()
        app.state.cases.clock = clock
        yield client


def submit(client: TestClient, fmt: str = "json", **overrides: str) -> object:
    return client.post(f"/open311/v2/requests.{fmt}", data={**FORM, **overrides})


def test_services_and_definitions_in_json_and_xml(open311: TestClient) -> None:
    services = open311.get("/open311/v2/services.json")
    assert services.status_code == 200 and services.headers["content-type"].startswith("application/json")
    codes = {s["service_code"] for s in services.json()}
    assert {"parking", "housing", "noise"} <= codes
    assert all(s["metadata"] is True and s["type"] == "realtime" for s in services.json())
    xml = open311.get("/open311/v2/services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    assert xml.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ElementTree.fromstring(xml.content)
    assert root.tag == "services" and {e.findtext("service_code") for e in root.iter("service")} == codes

    definition = open311.get("/open311/v2/services/parking.json").json()
    grid = next(a for a in definition["attributes"] if a["code"] == "grid")
    assert grid["required"] is False and GRID in {v["key"] for v in grid["values"]}  # address_id or lat/long do
    root = ElementTree.fromstring(open311.get("/open311/v2/services/parking.xml").content)
    assert root.tag == "service_definition" and root.find("attributes/attribute/code").text == "grid"

    missing = open311.get("/open311/v2/services/teleport.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404
    missing_xml = ElementTree.fromstring(open311.get("/open311/v2/services/teleport.xml").content)
    assert missing_xml.tag == "errors" and missing_xml.findtext("error/code") == "404"
    assert open311.get("/open311/v2/discovery.json").json()["endpoints"][0]["formats"] == [
        "text/xml",
        "application/json",
    ]


def test_submit_then_track_through_the_lifecycle(open311: TestClient) -> None:
    created = submit(open311)
    assert created.status_code == 200, created.text
    number = created.json()[0]["service_request_id"]
    one = open311.get(f"/open311/v2/requests/{number}.json", params={"api_key": READ_KEY}).json()[0]
    assert (one["status"], one["status_notes"], one["service_code"]) == ("open", "已登记", "parking")
    assert one["address"] == "马限社区南门" and one["address_id"] == GRID
    assert one["requested_datetime"].endswith("Z")
    xml = ElementTree.fromstring(open311.get(f"/open311/v2/requests/{number}.xml").content)
    assert xml.tag == "service_requests" and xml.findtext("request/service_request_id") == number

    # The petition is an ordinary case, registered under the api_key's channel.
    driver = Driver(open311)
    driver.position = position(open311)
    ledger_row = driver.get("/ledger", number=number)["items"][0]
    assert (ledger_row["channel"], ledger_row["category"]) == ("hotline_12345", "parking")

    listed = open311.get("/open311/v2/requests.json", params={"service_code": "parking", "status": "open"}).json()
    assert [r["service_request_id"] for r in listed] == [number]
    assert open311.get("/open311/v2/requests.json", params={"status": "closed"}).json() == []
    assert open311.get("/open311/v2/requests.json", params={"service_code": "noise"}).json() == []
    by_id = open311.get("/open311/v2/requests.xml", params={"service_request_id": number})
    assert ElementTree.fromstring(by_id.content).findtext("request/status") == "open"


def test_bad_requests_answer_in_open311_shape_and_store_nothing(open311: TestClient) -> None:
    before = position(open311)
    cases = [
        ({"api_key": "wrong"}, 403, "api_key"),
        ({"api_key": ""}, 403, "api_key"),
        ({"phone": ""}, 400, "phone"),
        ({"phone": "12345"}, 400, "petitioner_phone"),
        ({"attribute[grid]": "99999"}, 400, "grid"),
        ({"service_code": "teleport"}, 404, "service_code"),
        ({"description": "   "}, 400, "description"),
        ({"address_string": "", "attribute[grid]": ""}, 400, "address_string"),  # no location at all
        ({"description": "<script>alert(1)</script>" + "长" * 6000}, 400, "description"),
    ]
    for overrides, status, mention in cases:
        response = submit(open311, **overrides)
        assert response.status_code == status, (overrides, response.text)
        assert mention in response.json()[0]["description"], response.text
    xml = submit(open311, "xml", api_key="wrong")
    assert xml.status_code == 403 and ElementTree.fromstring(xml.content).findtext("error/code") == "403"
    as_json = open311.post("/open311/v2/requests.json", json=FORM)
    assert as_json.status_code == 400
    assert open311.get("/open311/v2/requests/NOPE-1.json").status_code == 404
    assert open311.get("/open311/v2/requests.json", params={"start_date": "yesterday"}).status_code == 400
    assert position(open311) == before


def test_location_from_coordinates_and_grid_from_address_id(open311: TestClient) -> None:
    form = {k: v for k, v in FORM.items() if k not in ("address_string", "attribute[grid]")}
    created = open311.post(
        "/open311/v2/requests.json", data={**form, "lat": "26.0", "long": "119.4", "address_id": OTHER_STREET_GRID}
    )
    assert created.status_code == 200, created.text
    number = created.json()[0]["service_request_id"]
    one = open311.get(f"/open311/v2/requests/{number}.json", params={"api_key": READ_KEY}).json()[0]
    # The point is kept as a point (issue 18), the address text names the grid and the point.
    assert (one["lat"], one["long"], one["address_id"]) == (26.0, 119.4, OTHER_STREET_GRID)
    assert one["address"].startswith("马尾镇") and "26.0,119.4" in one["address"]


def test_bidi_and_c1_controls_in_a_submission_are_refused_in_open311_shape(open311: TestClient) -> None:
    before = position(open311)
    for field, name, text in (
        ("description", "description", "车辆乱停\u202e通道消防\u202c堵塞"),
        ("attribute[title]", "title", "乱停\u0085车"),
        ("address_string", "location", "马限社区\u2067南门\u2069"),
        ("last_name", "petitioner_name", "王\u200f"),
    ):
        response = submit(open311, **{field: text})
        assert response.status_code == 400, (field, response.text)
        [error] = response.json()
        assert error["code"] == 400 and name in error["description"] and "U+" in error["description"]
    assert position(open311) == before


def _submitted(client: TestClient, **overrides: str) -> str:
    """A submitted request's number, once the ledger (which the list reads) has it."""
    created = submit(client, **overrides)
    assert created.status_code == 200, created.text
    driver = Driver(client)
    driver.position = position(client)
    driver.get("/ledger", wait_timeout=30)  # a loaded machine can keep the projection a few seconds behind
    return created.json()[0]["service_request_id"]


def _reads(client: TestClient, number: str, **params: str) -> dict[str, object]:
    """Every read of one request: the list and the single request, in JSON and XML."""
    return {
        f"{path}.{fmt}": client.get(f"/open311/v2/{path}.{fmt}", params=params)
        for path in ("requests", f"requests/{number}")
        for fmt in ("json", "xml")
    }


def _fields(response: object) -> dict[str, object]:
    if response.headers["content-type"].startswith("application/json"):
        [item] = response.json()
        return item
    [item] = ElementTree.fromstring(response.content).iter("request")
    return {child.tag: child.text for child in item}


def test_anonymous_reads_show_only_what_the_public_notice_shows(open311: TestClient) -> None:
    number = _submitted(open311)
    for path, response in _reads(open311, number).items():
        assert response.status_code == 200, (path, response.text)
        for secret in (FORM["description"], FORM["address_string"], FORM["phone"], "王芳", GRID):
            assert secret.encode() not in response.content, (path, secret)
        item = _fields(response)
        assert (item["service_request_id"], item["service_code"], item["status"]) == (number, "parking", "open")
        assert item["requested_datetime"] and item["status_notes"] == "已登记"
        assert not item["description"] and not item["address"] and not item["address_id"], path
        assert item["agency_responsible"] == "福州市马尾区", path  # the district, no lower unit

    for path, response in _reads(open311, number, api_key=READ_KEY).items():
        item = _fields(response)
        assert (item["description"], item["address"], item["address_id"]) == (
            FORM["description"], FORM["address_string"], GRID
        ), path  # fmt: skip


def test_reading_with_a_wrong_or_submit_only_key_is_403_in_open311_shape(open311: TestClient) -> None:
    number = _submitted(open311)
    for key, mention in (("wrong", "api_key 无效"), ("", "api_key 无效"), (KEY, "不可读取")):
        for path, response in _reads(open311, number, api_key=key).items():
            assert response.status_code == 403, (key, path, response.text)
            assert FORM["description"].encode() not in response.content
            if path.endswith(".json"):
                [error] = response.json()
                assert error["code"] == 403 and mention in error["description"], (key, path)
            else:
                root = ElementTree.fromstring(response.content)
                assert root.tag == "errors" and root.findtext("error/code") == "403", (key, path)
                assert mention in root.findtext("error/description"), (key, path)


def test_the_demo_key_reads_everything_on_sqlite_only(client: TestClient, settings: Settings) -> None:
    if settings.store == "postgres":  # no demo key on PostgreSQL: neither submit nor read
        assert submit(client, api_key="demo-open311-key").status_code == 403
        assert client.get("/open311/v2/requests.json", params={"api_key": "demo-open311-key"}).status_code == 403
        return
    number = _submitted(client, api_key="demo-open311-key")
    for path, response in _reads(client, number, api_key="demo-open311-key").items():
        assert _fields(response)["description"] == FORM["description"], path


def test_open311_keys_grant_reading_with_a_marker() -> None:
    settings = Settings(open311_keys={"k1": "hotline_12345", "k2": "online:read"})
    keys = settings.api_keys()
    assert (keys["k1"].channel, keys["k1"].read) == ("hotline_12345", False)
    assert (keys["k2"].channel, keys["k2"].read) == ("online", True)
    with pytest.raises(ValueError, match="MINQING_OPEN311_KEYS"):
        Settings(open311_keys={"k3": "online:write"}).api_keys()
