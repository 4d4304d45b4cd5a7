"""Places (issue 18): a case's point in WGS-84 (GCJ-02 converted on input), checked to lie
inside the district, found in its grid, returned everywhere a case is, filtered by a
bounding box and exported as GeoJSON. Through HTTP, on both stores."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from fastapi.testclient import TestClient

from cases.case import Case
from cases.places import Bounds, gcj02_to_wgs84, inside, metres_between, to_wgs84, wgs84_to_gcj02
from config.settings import Settings
from reference.model import DEMO_REFERENCE, ReferenceData, ReferenceDataError
from tests.api_steps import Driver, act, position, register
from tests.factories import CLERK, GRID, GRID_LEADER, OTHER_STREET_GRID, OTHER_TOWNSHIP, TOWNSHIP, auth, registration

REFERENCE = ReferenceData.load(DEMO_REFERENCE)


def centre(grid: str) -> tuple[float, float]:
    """A point (lat, lon) well inside a demo grid: the middle of its boundary's box."""
    ring = REFERENCE.grid_areas[grid][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return round((min(lats) + max(lats)) / 2, 6), round((min(lons) + max(lons)) / 2, 6)


HERE = centre(GRID)  # 马限社区第1网格, 罗星街道
THERE = centre(OTHER_STREET_GRID)  # 沿山村, 马尾镇

# Published pairs of the reference implementation of GCJ-02 (eviltransform's tests):
# (WGS-84 lat, lon, GCJ-02 lat, lon).
KNOWN = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


# --- the conversion and the geometry (pure) ------------------------------------------


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), KNOWN)
def test_gcj02_conversion_matches_the_published_points(wlat: float, wlon: float, glat: float, glon: float) -> None:
    assert metres_between(wgs84_to_gcj02(wlat, wlon), (glat, glon)) < 0.001
    # The inverse (iterative) lands within a few centimetres of the true WGS-84 point.
    assert metres_between(gcj02_to_wgs84(glat, glon), (wlat, wlon)) < 0.05
    # The offset is real: a GCJ-02 point taken as WGS-84 would be hundreds of metres off.
    assert metres_between((glat, glon), (wlat, wlon)) > 100


def test_gcj02_round_trips_across_the_district_and_leaves_points_outside_china_alone() -> None:
    bounds = REFERENCE.bounds
    assert bounds is not None
    for i in range(11):
        for j in range(11):
            lat = bounds.min_lat + (bounds.max_lat - bounds.min_lat) * i / 10
            lon = bounds.min_lon + (bounds.max_lon - bounds.min_lon) * j / 10
            assert metres_between(gcj02_to_wgs84(*wgs84_to_gcj02(lat, lon)), (lat, lon)) < 0.01
    assert wgs84_to_gcj02(51.5, -0.12) == (51.5, -0.12) and gcj02_to_wgs84(51.5, -0.12) == (51.5, -0.12)


def test_every_demo_grid_has_a_boundary_inside_the_district_and_its_centre_finds_it() -> None:
    assert REFERENCE.bounds == Bounds(119.33, 25.93, 119.72, 26.16)
    assert set(REFERENCE.grid_areas) == set(REFERENCE.grids)
    for grid in REFERENCE.grids:
        assert REFERENCE.grid_at(*centre(grid)) == grid
    assert REFERENCE.grid_at(25.95, 119.35) is None  # inside the district, in no demo grid
    square = [[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)], [(4.0, 4.0), (6.0, 4.0), (6.0, 6.0), (4.0, 6.0)]]
    assert inside(square, 2, 2) and not inside(square, 5, 5) and not inside(square, 11, 5)  # a hole is outside


def test_reference_data_refuses_bad_bounds_and_boundaries() -> None:
    raw = orjson.loads(DEMO_REFERENCE.read_bytes())
    for bounds in ([119.7, 25.9, 119.3, 26.1], [119.3, 25.9], "119,25,120,26"):
        with pytest.raises(ReferenceDataError, match="bounds"):
            ReferenceData.parse({**raw, "district": {**raw["district"], "bounds": bounds}})
    outside = orjson.loads(DEMO_REFERENCE.read_bytes())
    grid = outside["district"]["streets"][0]["communities"][0]["grids"][0]
    grid["boundary"]["coordinates"][0][1] = [121.0, 31.0]
    with pytest.raises(ReferenceDataError, match="leaves the district"):
        ReferenceData.parse(outside)


# --- registration and the locate command ---------------------------------------------


def test_a_point_given_at_registration_is_returned_everywhere_a_case_is(client: TestClient) -> None:
    lat, lon = HERE
    case_id = register(client, latitude=lat, longitude=lon)
    case = client.get(f"/cases/{case_id}").json()
    assert (case["latitude"], case["longitude"], case["media_url"]) == (lat, lon, None)

    [row] = client.get("/ledger", params={"wait_for": position(client)}).json()["items"]
    assert (row["latitude"], row["longitude"]) == (lat, lon)
    history = client.get(f"/cases/{case_id}/history").json()["events"]
    assert (history[0]["payload"]["latitude"], history[0]["payload"]["longitude"]) == (lat, lon)
    [registered] = client.get("/events", params={"type": "Registered"}).json()["events"]
    assert (registered["data"]["latitude"], registered["data"]["longitude"]) == (lat, lon)
    exported = client.get("/ledger/export.csv", params={"wait_for": position(client)})
    [header, values] = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    shown = dict(zip(header, values, strict=True))
    assert (float(shown["纬度（WGS-84）"]), float(shown["经度（WGS-84）"])) == (lat, lon)
    problems = client.get("/lists/problems").json()["items"][0]
    assert (problems["latitude"], problems["longitude"]) == (lat, lon)


def test_a_gcj02_point_is_stored_as_wgs84(client: TestClient) -> None:
    glat, glon = wgs84_to_gcj02(*HERE)
    case_id = register(client, latitude=glat, longitude=glon, coordinate_system="gcj02")
    case = client.get(f"/cases/{case_id}").json()
    assert metres_between((case["latitude"], case["longitude"]), HERE) < 0.05
    assert metres_between((case["latitude"], case["longitude"]), (glat, glon)) > 100  # converted, not kept


def test_without_a_grid_the_point_finds_it(client: TestClient) -> None:
    fields = {k: v for k, v in registration().items() if k != "grid"}
    created = client.post("/cases", json={**fields, "latitude": THERE[0], "longitude": THERE[1]}, headers=auth(CLERK))
    assert created.status_code == 201, created.text
    case = client.get(f"/cases/{created.json()['case_id']}").json()
    assert case["units"]["grid"] == OTHER_STREET_GRID and case["units"]["street_name"] == "马尾镇"

    before = position(client)
    for body, field, mention in (
        (fields, "grid", "网格"),
        ({**fields, "latitude": 25.95, "longitude": 119.35}, "grid", "不在任何网格"),
    ):
        refused = client.post("/cases", json=body, headers=auth(CLERK))
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["error"]["fields"]
        assert error["field"] == field and mention in error["reason"], error
    assert position(client) == before


def test_coordinates_outside_the_district_are_refused_with_a_reason_and_nothing_is_written(
    client: TestClient,
) -> None:
    lat, lon = HERE
    before = position(client)
    for overrides, field, mention in (
        ({"latitude": 39.9087, "longitude": 116.3975}, "latitude", "不在本区范围内"),  # Tiananmen
        ({"latitude": lon, "longitude": lat}, "latitude", "不得大于 90"),  # swapped
        ({"latitude": lat}, "longitude", "同时给出"),
        ({"longitude": lon}, "latitude", "同时给出"),
        ({"latitude": 95.0, "longitude": lon}, "latitude", "不得大于"),
        ({"latitude": "北纬26度", "longitude": lon}, "latitude", "数字"),
        ({"latitude": lat, "longitude": lon, "coordinate_system": "bd09"}, "coordinate_system", "wgs84"),
        ({"media_url": "javascript:alert(1)"}, "media_url", "格式"),
    ):
        refused = client.post("/cases", json=registration(**overrides), headers=auth(CLERK))
        assert refused.status_code == 422, (overrides, refused.text)
        [error] = refused.json()["error"]["fields"]
        assert error["field"] == field and mention in error["reason"], (overrides, error)
    assert position(client) == before


def test_locate_sets_and_corrects_the_point(client: TestClient) -> None:
    case_id = register(client)
    assert client.get(f"/cases/{case_id}").json()["latitude"] is None

    glat, glon = wgs84_to_gcj02(*HERE)
    located = act(client, case_id, "locate", CLERK, latitude=glat, longitude=glon, coordinate_system="gcj02")
    assert located["changed"] is True
    case = client.get(f"/cases/{case_id}").json()
    assert metres_between((case["latitude"], case["longitude"]), HERE) < 0.05
    stored = to_wgs84(glat, glon, "gcj02")  # type: ignore[arg-type]
    again = act(client, case_id, "locate", CLERK, latitude=stored[0], longitude=stored[1])
    assert again["changed"] is False  # the same point: nothing to record

    # The township of the case's street corrects it; another street's may not.
    corrected = round(HERE[0] + 0.0005, 6)
    act(client, case_id, "locate", TOWNSHIP, latitude=corrected, longitude=HERE[1], reason="现场复核")
    act(client, case_id, "locate", OTHER_TOWNSHIP, 403, latitude=HERE[0], longitude=HERE[1])
    refused = act(client, case_id, "locate", CLERK, 422, latitude=31.23, longitude=121.47)
    assert refused["error"]["fields"][0]["field"] == "latitude"

    history = client.get(f"/cases/{case_id}/history").json()["events"]
    located_events = [e for e in history if e["type"] == "Located"]
    assert [e["label"] for e in located_events] == ["定位", "定位"]
    assert located_events[0]["payload"]["coordinate_system"] == "gcj02"
    assert located_events[1]["payload"]["reason"] == "现场复核" and located_events[1]["actor"]["id"] == TOWNSHIP.id
    [row] = client.get("/ledger", params={"wait_for": position(client)}).json()["items"]
    assert (row["latitude"], row["longitude"], row["last_event"]) == (corrected, HERE[1], "Located")
    feed = client.get("/events", params={"type": "Located"}).json()["events"]
    assert feed[-1]["data"]["latitude"] == corrected


def test_a_registration_stored_before_places_existed_loads_without_a_point(client: TestClient) -> None:
    """What an earlier build stored: no latitude, longitude or media_url in the Registered event."""
    case_id = register(client)
    cases = client.app.state.cases  # type: ignore[attr-defined]
    [stored] = cases.recorder.select_events(UUID(case_id))
    state = orjson.loads(stored.state)
    for name in ("latitude", "longitude", "media_url"):
        state.pop(name)
    old_id = UUID(int=UUID(case_id).int ^ 1)
    cases.recorder.insert_events([StoredEvent(old_id, 1, stored.topic, orjson.dumps(state))])

    case = client.get(f"/cases/{old_id}").json()
    assert (case["latitude"], case["longitude"], case["media_url"]) == (None, None, None)
    assert isinstance(cases.get_case(old_id), Case)
    items = client.get("/ledger", params={"wait_for": position(client)}).json()["items"]
    assert next(r for r in items if r["case_id"] == str(old_id))["latitude"] is None  # the ledger folds it too
    act(client, str(old_id), "locate", CLERK, latitude=HERE[0], longitude=HERE[1])
    assert client.get(f"/cases/{old_id}").json()["latitude"] == HERE[0]
    items = client.get("/ledger", params={"wait_for": position(client)}).json()["items"]
    assert next(r for r in items if r["case_id"] == str(old_id))["latitude"] == HERE[0]


# --- the bounding box and GeoJSON ------------------------------------------------------


def _three_cases(driver: Driver) -> dict[str, str]:
    ids = {
        "here": driver.register(latitude=HERE[0], longitude=HERE[1]),
        "there": driver.register(grid=OTHER_STREET_GRID, latitude=THERE[0], longitude=THERE[1]),
        "nowhere": driver.register(),
    }
    return ids


def test_the_ledger_filters_by_a_bounding_box(driver: Driver, client: TestClient) -> None:
    ids = _three_cases(driver)
    lat, lon = HERE
    box = f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"
    assert [r["case_id"] for r in driver.get("/ledger", bbox=box)["items"]] == [ids["here"]]
    district = "119.33,25.93,119.72,26.16"
    assert {r["case_id"] for r in driver.get("/ledger", bbox=district)["items"]} == {ids["here"], ids["there"]}
    edge = f"{lon},{lat},{lon + 1},{lat + 1}"  # a point on the edge is inside
    assert ids["here"] in {r["case_id"] for r in driver.get("/ledger", bbox=edge)["items"]}
    assert driver.get("/ledger", bbox="0,0,1,1")["total"] == 0
    assert driver.get("/ledger")["total"] == 3  # no box: every case, located or not

    for bad in ("119.4,26.0,119.5", "119.5,26.0,119.4,26.1", "a,b,c,d", "119.4,26.0,119.5,nan", "0,-95,1,1"):
        refused = client.get("/ledger", params={"bbox": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["fields"][0]["field"] == "bbox"


def test_the_ledger_exports_as_geojson_with_the_same_filters_and_area(driver: Driver, client: TestClient) -> None:
    ids = _three_cases(driver)
    response = client.get("/ledger/export.geojson", params={"wait_for": driver.position})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    assert ".geojson" in response.headers["content-disposition"]
    collection = response.json()
    assert collection["type"] == "FeatureCollection" and collection["unlocated"] == 1
    features = {f["id"]: f for f in collection["features"]}
    assert set(features) == {ids["here"], ids["there"]}
    here = features[ids["here"]]
    assert here["type"] == "Feature"
    assert here["geometry"] == {"type": "Point", "coordinates": [HERE[1], HERE[0]]}  # [lon, lat], RFC 7946
    properties = here["properties"]
    assert properties["number"] and properties["status"] == "registered" and properties["status_name"] == "已登记"
    assert properties["category_name"] == "住房" or properties["category_name"]
    assert properties["petitioner_name"] != "张秀英" and "*" in properties["petitioner_name"]  # masked
    assert "13812341234" not in response.text and "petitioner_id" not in properties
    west, south, east, north = collection["bbox"]
    assert west <= HERE[1] <= east and south <= THERE[0] <= north

    box = f"{HERE[1] - 0.01},{HERE[0] - 0.01},{HERE[1] + 0.01},{HERE[0] + 0.01}"
    boxed = client.get("/ledger/export.geojson", params={"bbox": box})
    assert [f["id"] for f in boxed.json()["features"]] == [ids["here"]]
    # A township sees its own street's cases only, as in every export.
    theirs = client.get("/ledger/export.geojson", headers=auth(OTHER_TOWNSHIP)).json()
    assert theirs["features"] == [] and theirs["unlocated"] == 0
    ours = client.get("/ledger/export.geojson", headers=auth(TOWNSHIP)).json()
    assert [f["id"] for f in ours["features"]] == [ids["here"]]
    assert client.get("/ledger/export.geojson", headers=auth(GRID_LEADER)).status_code in (200, 403)


# --- the demo district ---------------------------------------------------------------


def test_the_demo_cases_carry_points_inside_their_grids_and_export_as_geojson(tmp_path: Path) -> None:
    from demo.stories import load_demo
    from service import build_cases, create_app
    from tests.factories import SECURITY, DefaultReader, migrated

    settings = migrated(Settings(sqlite_path=tmp_path / "demo.sqlite3", **SECURITY))
    cases = build_cases(settings)
    try:
        load_demo(cases, count=40, now=datetime(2026, 11, 20, 8, 30, tzinfo=UTC))
        registered = [
            e
            for n in cases.recorder.select_notifications(start=1, limit=100_000)
            if isinstance(e := cases.mapper.to_domain_event(n), Case.Registered)
        ]
    finally:
        cases.close()
    assert len(registered) == 40
    for event in registered:
        assert event.latitude is not None and event.longitude is not None, event.number
        assert inside(REFERENCE.grid_areas[event.units["grid"]], event.latitude, event.longitude), event.number

    with TestClient(create_app(settings, log_cache=False)) as client:
        client.auth = DefaultReader()
        head = client.get("/healthz").json()["position"]
        collection = client.get("/ledger/export.geojson", params={"wait_for": head, "wait_timeout": 30}).json()
    assert len(collection["features"]) == 40 and collection["unlocated"] == 0
    assert all(f["geometry"]["type"] == "Point" for f in collection["features"])


def test_the_workbench_case_page_shows_the_point_and_offers_locate(client: TestClient) -> None:
    case_id = register(client, latitude=HERE[0], longitude=HERE[1])
    from tests.test_workbench import HTML, sign_in

    sign_in(client, CLERK)
    page = client.get(f"/workbench/cases/{case_id}", headers=HTML)
    assert page.status_code == 200, page.text
    assert f"纬度 {HERE[0]}，经度 {HERE[1]}（WGS-84）" in page.text
    assert 'data-command="locate"' in page.text and "GCJ-02（高德、腾讯地图取点）" in page.text


def test_the_point_is_part_of_a_registration_idempotency_fingerprint(client: TestClient) -> None:
    key = {"Idempotency-Key": "intake-places-1", **auth(CLERK)}
    body = registration(latitude=HERE[0], longitude=HERE[1])
    first = client.post("/cases", json=body, headers=key)
    again = client.post("/cases", json=body, headers=key)
    assert first.status_code == 201 and again.json()["replayed"] is True
    elsewhere = client.post("/cases", json={**body, "latitude": THERE[0], "longitude": THERE[1]}, headers=key)
    assert elsewhere.status_code == 422 and elsewhere.json()["error"]["code"] == "idempotency_key_reused"
