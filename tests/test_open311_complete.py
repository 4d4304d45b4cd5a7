"""Open311 GeoReport v2, complete (issue 18): each of the spec's three locations (lat/long,
address_string, address_id) on its own; media_url kept; the contact fields sealed with the
petitioner; every field of the spec's request answered; a datetime changeset; a form POST as
a browser sends it; and the `georeport` client against a real `minqing serve`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID
from xml.etree import ElementTree

import georeport.georeport
import httpx
import pytest
import requests
from fastapi.testclient import TestClient
from georeport import GeoReport

from config.settings import Settings
from service import create_app
from tests.api_steps import Driver, act, position
from tests.conftest import Clock
from tests.factories import ADMIN, AUDITOR, CLERK, GRID, DefaultReader, auth
from tests.serving import Server
from tests.test_places import HERE, THERE, centre

KEY = "complete-submit-key-1"  # may submit
READ_KEY = "complete-read-key-2"  # may submit and read every field
PHOTO = "https://img.example.org/minqing/2026/pothole.jpg"

# The spec's example POST (GeoReport v2, "POST Service Request"), with our service code and a point
# in the demo district instead of San Francisco's; its unknown attribute[...] is ignored, as the spec allows.
SPEC_POST = {
    "api_key": KEY,
    "service_code": "parking",
    "lat": str(HERE[0]),
    "long": str(HERE[1]),
    "address_string": "马限社区南门",
    "email": "smith.wang@example.org",
    "device_id": "tt222111",
    "account_id": "123456",
    "first_name": "芳",
    "last_name": "王",
    "phone": "13900001111",
    "description": "小区门口车辆乱停，堵塞消防通道，救护车进不来。",
    "media_url": PHOTO,
    "attribute[WHISPAWN]": "123456",
}
# Every field of a service request in the spec's GET Service Requests example.
SPEC_REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}  # fmt: skip


@pytest.fixture
def open311(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    app = create_app(
        replace(settings, open311_keys={KEY: "hotline_12345", READ_KEY: "hotline_12345:read"}), log_cache=False
    )
    with TestClient(app) as client:
        client.auth = DefaultReader()  # for the API's own reads; Open311 reads go by api_key alone
        app.state.cases.clock = clock
        yield client


def post(client: TestClient, fmt: str = "json", **form: str) -> Any:
    return client.post(f"/open311/v2/requests.{fmt}", data=form)


def one(client: TestClient, number: str, fmt: str = "json", **params: str) -> dict[str, Any]:
    response = client.get(f"/open311/v2/requests/{number}.{fmt}", params=params)
    assert response.status_code == 200, response.text
    if fmt == "json":
        [item] = response.json()
        return item
    [item] = ElementTree.fromstring(response.content).iter("request")
    return {child.tag: child.text for child in item}


def test_the_spec_example_post_is_kept_whole_and_read_back_with_every_field(open311: TestClient) -> None:
    created = post(open311, **SPEC_POST)
    assert created.status_code == 200, created.text
    [answer] = created.json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}  # the spec's response
    assert answer["account_id"] == "123456" and answer["service_notice"]
    number = answer["service_request_id"]

    item = one(open311, number, api_key=READ_KEY)
    assert set(item) == SPEC_REQUEST_FIELDS
    assert (item["lat"], item["long"], item["media_url"]) == (HERE[0], HERE[1], PHOTO)
    assert (item["address"], item["address_id"], item["status"], item["status_notes"]) == (
        "马限社区南门", GRID, "open", "已登记"
    )  # fmt: skip
    assert item["agency_responsible"] == "马限社区第1网格" and item["service_notice"]
    assert item["requested_datetime"].endswith("Z") and item["updated_datetime"].endswith("Z")
    assert item["expected_datetime"] is None  # no limit before the case is classified

    # XML carries the same fields.
    xml = one(open311, number, "xml", api_key=READ_KEY)
    assert set(xml) == SPEC_REQUEST_FIELDS
    assert (float(xml["lat"]), float(xml["long"]), xml["media_url"]) == (HERE[0], HERE[1], PHOTO)

    # Classified, it has a limit: expected_datetime and the notice say when; updated_datetime moves.
    case_id = open311.get(f"/cases/{number}", headers=auth(AUDITOR)).json()["id"]
    act(open311, case_id, "classify", CLERK, handling_type="committed", tier="small")
    classified = one(open311, number, api_key=READ_KEY)
    assert classified["expected_datetime"].endswith("T23:59:59+08:00")
    assert classified["expected_datetime"][:10] in classified["service_notice"]
    assert classified["updated_datetime"] >= item["updated_datetime"]

    # The list (read from the ledger) answers the same.
    driver = Driver(open311)
    driver.position = position(open311)
    driver.get("/ledger", wait_timeout=30)
    listed = open311.get("/open311/v2/requests.json", params={"api_key": READ_KEY, "service_request_id": number})
    [row] = listed.json()
    assert set(row) == SPEC_REQUEST_FIELDS
    assert (row["lat"], row["long"], row["media_url"], row["expected_datetime"]) == (
        HERE[0], HERE[1], PHOTO, classified["expected_datetime"]
    )  # fmt: skip

    # Anonymous readers: the point to about 100 m, no photo (the public notice's fields).
    public = one(open311, number)
    assert (public["lat"], public["long"]) == (round(HERE[0], 3), round(HERE[1], 3))
    assert public["media_url"] is None and public["description"] is None and public["service_notice"]


def test_address_id_alone_is_a_location(open311: TestClient) -> None:
    form = {k: v for k, v in SPEC_POST.items() if k not in ("lat", "long", "address_string", "media_url")}
    micro = "3501050010010102"  # a micro-grid of GRID
    for address_id, grid in ((GRID, GRID), (micro, GRID)):
        created = post(open311, **form, address_id=address_id)
        assert created.status_code == 200, created.text
        item = one(open311, created.json()[0]["service_request_id"], api_key=READ_KEY)
        assert item["address_id"] == grid and item["address"] == "罗星街道马限社区马限社区第1网格"
        assert (item["lat"], item["long"], item["media_url"]) == (None, None, None)
    unknown = post(open311, **form, address_id="35010599999999")
    assert unknown.status_code == 400 and "grid" in unknown.json()[0]["description"]


def test_lat_and_long_alone_find_the_grid_and_are_checked(open311: TestClient) -> None:
    form = {k: v for k, v in SPEC_POST.items() if k not in ("lat", "long", "address_string")}
    created = post(open311, **form, lat=str(THERE[0]), long=str(THERE[1]))
    assert created.status_code == 200, created.text
    item = one(open311, created.json()[0]["service_request_id"], api_key=READ_KEY)
    assert item["address_id"] == "35010500200101" and item["address"].startswith("马尾镇沿山村")
    assert (item["lat"], item["long"]) == THERE

    before = position(open311)
    for overrides, mention in (
        ({"lat": "37.76524078", "long": "-122.4212043"}, "不在本区范围内"),  # the spec's own San Francisco
        ({"lat": str(HERE[0])}, "long"),
        ({"long": str(HERE[1])}, "lat"),
        ({"lat": "北纬26度", "long": str(HERE[1])}, "lat"),
        ({"lat": "nan", "long": str(HERE[1])}, "lat"),
        ({"lat": "25.95", "long": "119.35"}, "不在任何网格"),  # in the district, in no grid
        ({}, "address_string"),  # no location at all
        ({"lat": str(HERE[0]), "long": str(HERE[1]), "media_url": "file:///etc/passwd"}, "media_url"),
        ({"lat": str(HERE[0]), "long": str(HERE[1]), "email": "not-an-address"}, "petitioner_email"),
    ):
        refused = post(open311, **{**form, **overrides})
        assert refused.status_code == 400, (overrides, refused.text)
        [error] = refused.json()
        assert error["code"] == 400 and mention in error["description"], (overrides, error)
    assert position(open311) == before


def test_a_form_post_as_a_browser_sends_it(open311: TestClient) -> None:
    body = urlencode({**SPEC_POST, "description": "路灯不亮 & 井盖缺失=危险"}).encode()
    created = open311.post(
        "/open311/v2/requests.xml",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert created.status_code == 200, created.text
    assert created.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(created.content)
    assert root.tag == "service_requests" and root.findtext("request/account_id") == "123456"
    number = root.findtext("request/service_request_id")
    assert number
    item = one(open311, number, api_key=READ_KEY)
    assert item["description"] == "路灯不亮 & 井盖缺失=危险" and item["media_url"] == PHOTO


def test_the_contact_fields_are_sealed_with_the_petitioner_and_never_stored_in_clear(open311: TestClient) -> None:
    created = post(open311, **SPEC_POST)
    number = created.json()[0]["service_request_id"]
    cases = open311.app.state.cases  # type: ignore[attr-defined]
    clear = [SPEC_POST[k].encode() for k in ("email", "device_id", "phone")] + ["王芳".encode()]
    # Every stored row of the log, as the store holds it.
    for notification in cases.recorder.select_notifications(start=1, limit=10_000):
        for value in clear:
            assert value not in notification.state, (notification.topic, value)
    # The read side neither (the ledger's rows hold the petitioner masked).
    open311.get("/ledger", params={"wait_for": position(open311)})
    rows = open311.app.state.read_side.views.query("SELECT * FROM ledger_cases")  # type: ignore[attr-defined]
    assert rows and all(value.decode() not in str(rows) for value in clear)

    # Whoever may see personal data reads them back, sealed per person like the name and phone.
    case = open311.get(f"/cases/{number}", headers=auth(CLERK)).json()
    petitioner = case["petitioner"]
    assert (petitioner["name"], petitioner["phone"]) == ("王芳", "13900001111")
    assert (petitioner["email"], petitioner["device_id"], petitioner["account_id"]) == (
        "smith.wang@example.org", "tt222111", "123456"
    )  # fmt: skip
    masked = open311.get(f"/cases/{number}", headers=auth(AUDITOR)).json()["petitioner"]
    assert "email" not in masked and "device_id" not in masked and masked["name"] != "王芳"

    # Erasing the person removes them with the key.
    erasure = open311.post(f"/persons/{case['petitioner_id']}/erase", headers=auth(ADMIN))
    assert erasure.status_code == 200, erasure.text
    erased = open311.get(f"/cases/{number}", headers=auth(CLERK)).json()["petitioner"]
    assert "email" not in erased and erased.get("erased") is True
    assert UUID(case["id"])


def test_discovery_changeset_is_a_datetime(open311: TestClient) -> None:
    for fmt in ("json", "xml"):
        response = open311.get(f"/open311/v2/discovery.{fmt}")
        if fmt == "json":
            body = response.json()
            changesets = [body["changeset"], body["endpoints"][0]["changeset"]]
        else:
            root = ElementTree.fromstring(response.content)
            changesets = [root.findtext("changeset"), root.findtext("endpoints/endpoint/changeset")]
        for changeset in changesets:
            assert changeset == "2026-11-01T01:00:00Z", (fmt, changeset)  # reference data's changed_at, in UTC
            assert datetime.fromisoformat(changeset.replace("Z", "+00:00")).tzinfo is not None


# --- the georeport client against a real server ---------------------------------------


def test_the_georeport_client_reads_back_coordinates_and_media_from_a_real_server(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = f"{KEY}=hotline_12345,{READ_KEY}=hotline_12345:read"
    with Server(settings, "--workers", "1", MINQING_OPEN311_KEYS=keys) as server:
        root = f"{server.base}/open311/v2"
        client = GeoReport(root)
        codes = {s["service_code"] for s in client.get_service_list()}
        assert "parking" in codes
        definition = client.get_service_definition("parking")
        assert definition["attributes"][0]["code"] == "grid"

        # georeport 0.3.1 reads but does not post: the POST is a plain form, as any client sends it.
        lat, lon = centre("35010510100101")  # 亭江镇
        form = {**SPEC_POST, "lat": str(lat), "long": str(lon), "address_string": "亭江社区码头路口"}
        created = httpx.post(f"{root}/requests.json", data=form, timeout=30)
        assert created.status_code == 200, created.text
        number = created.json()[0]["service_request_id"]

        # Anonymous, as the client reads by default: the public notice's fields.
        public = client.get_service_request(number)
        assert (public["lat"], public["long"], public["media_url"]) == (round(lat, 3), round(lon, 3), None)

        # The client sends no api_key when it reads; a session that adds ours stands in for `requests`,
        # so the same client code reads every field over the same real HTTP.
        session = requests.Session()
        session.params = {"api_key": READ_KEY}
        monkeypatch.setattr(georeport.georeport, "requests", session)
        full = GeoReport(root).get_service_request(number)
        assert (full["lat"], full["long"], full["media_url"]) == (lat, lon, PHOTO)
        assert full["address"] == "亭江社区码头路口" and full["address_id"] == "35010510100101"
        as_xml = GeoReport(root, output_format="xml").get_service_request(number)
        assert (float(as_xml["lat"]), float(as_xml["long"]), as_xml["media_url"]) == (lat, lon, PHOTO)

        # The list is read from the ledger, which follows the log a moment later.
        listed: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not listed and time.monotonic() < deadline:
            listed = GeoReport(root).get_service_requests(service_request_id=number)
            if not listed:
                time.sleep(0.2)
        [row] = listed
        assert (row["lat"], row["long"], row["media_url"], row["status"]) == (lat, lon, PHOTO, "open")
