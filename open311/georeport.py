"""Open311 GeoReport v2 over Minqing: our categories are its services, a case
is its service request (the case number is the service_request_id), our nine
statuses fold into its two (open, closed) with our own label as status_notes.

Pure mapping and rendering; the routes are in api/open311.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import orjson

from cases.vocabulary import STATUS_LABELS, Status
from open311.media import media_of
from reference.model import ReferenceData

GROUP = "民情诉求"
MAX_RESULTS = 1000
DEFAULT_DAYS = 90
TITLE_CHARS = 30


class Open311Error(Exception):
    """An error in GeoReport's own shape: [{"code": 400, "description": "…"}]."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def services(reference: ReferenceData) -> list[dict[str, Any]]:
    return [
        {
            "service_code": code,
            "service_name": name,
            "description": name,
            "metadata": True,  # every service asks which grid the problem is in
            "type": "realtime",
            "keywords": code,
            "group": GROUP,
        }
        for code, name in reference.categories.items()
    ]


def definition(reference: ReferenceData, service_code: str) -> dict[str, Any]:
    if service_code not in reference.categories:
        raise Open311Error(404, f"service_code {service_code} 不存在")
    grids = [
        {"key": code, "name": f"{units['street_name']} {units['community_name']} {units['grid_name']}"}
        for code, units in reference.grids.items()
    ]
    return {
        "service_code": service_code,
        "attributes": [
            {
                "variable": True,
                "code": "grid",
                "datatype": "singlevaluelist",
                # Not required: address_id carries the grid too, and lat/long find it (issue 18).
                "required": False,
                "datatype_description": "事发地所在网格",
                "order": 1,
                "description": "事发地所在网格；不填则取 address_id（网格编码），或按 lat/long 落在哪个网格的边界内",
                "values": grids,
            },
            {
                "variable": True,
                "code": "title",
                "datatype": "string",
                "required": False,
                "datatype_description": "不超过 200 字",
                "order": 2,
                "description": "诉求标题；不填则取描述的开头",
            },
        ],
    }


# Open311's contact fields -> our register command's (sealed with the petitioner's name and phone).
CONTACTS = {"email": "petitioner_email", "device_id": "petitioner_device_id", "account_id": "petitioner_account_id"}


def registration(form: dict[str, str], reference: ReferenceData, channel: str) -> dict[str, Any]:
    """A POSTed GeoReport request as the fields of our register command.
    Shape and length are checked afterwards by the same model as POST /cases.

    The location is any one of the spec's three: `lat` and `long` (WGS-84; the grid is the one
    whose boundary holds the point), `address_string`, or `address_id` (a grid or micro-grid
    code). Without `address_string` the location text is the grid's name (and the point)."""

    def given(name: str) -> str:
        return (form.get(name) or "").strip()

    def required(name: str, value: str | None) -> str:
        if not value or not value.strip():
            raise Open311Error(400, f"{name}: 必填")
        return value.strip()

    service_code = required("service_code", form.get("service_code"))
    if service_code not in reference.categories:
        raise Open311Error(404, f"service_code {service_code} 不存在")
    description = required("description", form.get("description"))
    lat, lon = _coordinate("lat", given("lat"), 90), _coordinate("long", given("long"), 180)
    if (lat is None) != (lon is None):
        raise Open311Error(400, f"{'long' if lon is None else 'lat'}: lat 与 long 须同时给出")
    grid = given("attribute[grid]") or given("address_id") or None
    location = given("address_string")
    if not (location or grid or lat is not None):
        raise Open311Error(400, "address_string: 须给出位置：lat 与 long、address_string 或 address_id 之一")
    if not location:
        units = reference.units_of(grid) if grid else None
        if units is None and grid is None and lat is not None and lon is not None:
            found = reference.grid_at(lat, lon)
            units = reference.units_of(found) if found else None
        place = f"{units['street_name']}{units['community_name']}{units['grid_name']}" if units else ""
        point = f"（经纬度 {lat},{lon}）" if lat is not None else ""
        location = (place + point) or (grid or "")
    name = (given("last_name") + given("first_name")) or None
    fields: dict[str, Any] = {
        "channel": channel,
        "category": service_code,
        "title": given("attribute[title]") or description[:TITLE_CHARS],
        "description": description,
        "location": location,
        "grid": grid,
        "petitioner_name": required("last_name", name),
        "petitioner_phone": required("phone", form.get("phone")),
        "latitude": lat,
        "longitude": lon,
        "media_url": given("media_url") or None,
    }
    return fields | {ours: given(theirs) for theirs, ours in CONTACTS.items() if given(theirs)}


def _coordinate(name: str, text: str, limit: int) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -limit <= value <= limit:  # NaN fails too
        raise Open311Error(400, f"{name}: 须为 -{limit} 到 {limit} 之间的十进制度数（WGS-84）")
    return value


def iso(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


UPDATED_COLUMNS = ("registered_at", "assigned_at", "accepted_at", "rectified_at", "verified_at", "closed_at",
                   "feedback_at", "rated_at")  # fmt: skip


# What the public notice (公示) shows of a case, and so all an anonymous reader gets:
# no description, no address or grid, no photo, nothing of the petitioner; the agency only
# as the district; the point only to about a hundred metres (`PUBLIC_DECIMALS`).
PUBLIC_FIELDS = frozenset({"service_request_id", "status", "status_notes", "service_name", "service_code",
                           "service_notice", "requested_datetime", "updated_datetime",
                           "expected_datetime"})  # fmt: skip
PUBLIC_DECIMALS = 3  # 0.001° is 111 m north-south, about 100 m east-west here: the street, not the door

SUBMITTED_NOTICE = "已受理，请保存编号以便查询办理进度"


def request_of_row(row: dict[str, Any], reference: ReferenceData, *, full: bool) -> dict[str, Any]:
    """A ledger row as a GeoReport service request: every field, or the public notice's."""
    answer = _request(row, reference)
    if full:
        return answer
    public = {name: value if name in PUBLIC_FIELDS else None for name, value in answer.items()}
    coarse = {k: round(answer[k], PUBLIC_DECIMALS) for k in ("lat", "long") if answer[k] is not None}
    return public | coarse | {"agency_responsible": row.get("district_name")}


def service_notice(status: Status, resolve_due: str | None) -> str:
    """What will be done about it, in a sentence (the spec's service_notice)."""
    if status == Status.CLOSED:
        return "已办结销号；如不满意，可凭编号拨打 12345 评议或申请重新办理"
    if resolve_due:
        return f"已受理，按时限规定将于 {resolve_due} 前办结"
    return SUBMITTED_NOTICE


def _request(row: dict[str, Any], reference: ReferenceData) -> dict[str, Any]:
    status = Status(row["status"])
    updated = max((row[c] for c in UPDATED_COLUMNS if row.get(c)), default=row["registered_at"])
    agency = row.get("responsible_unit") or row.get("lead_department") or row.get("grid_name")
    return {
        "service_request_id": row["number"],
        "status": "closed" if status == Status.CLOSED else "open",
        "status_notes": STATUS_LABELS[status],
        "service_name": reference.categories.get(row["category"], row["category"]),
        "service_code": row["category"],
        "description": row["description"],
        "agency_responsible": reference.departments.get(agency, agency) if agency else agency,
        "service_notice": service_notice(status, row.get("resolve_due")),
        "requested_datetime": iso(row["registered_at"]),
        "updated_datetime": iso(updated),
        "expected_datetime": f"{row['resolve_due']}T23:59:59+08:00" if row.get("resolve_due") else None,
        "address": row["location"],
        "address_id": row["grid"],
        "zipcode": None,
        "lat": row.get("latitude"),
        "long": row.get("longitude"),
        "media_url": row.get("media_url"),
    }


def request_of_case(case: Any, reference: ReferenceData, *, full: bool) -> dict[str, Any]:
    """The case aggregate (current, not the ledger) as a GeoReport service request."""
    due = (case.deadlines or {}).get("resolve", {}).get("due")
    rectification = case.rectification or {}
    row = {
        "number": case.number,
        "status": str(case.status),
        "category": case.category,
        "description": case.description,
        "responsible_unit": rectification.get("responsible_unit"),
        "lead_department": case.lead_department,
        "grid_name": case.units.get("grid_name"),
        "district_name": case.units.get("district_name"),
        "registered_at": case.registered_at,
        "closed_at": case.closed_at,
        "accepted_at": case.accepted_at,
        "rectified_at": case.rectified_at,
        "resolve_due": due,
        "location": case.location,
        "grid": case.units.get("grid"),
        "latitude": case.latitude,
        "longitude": case.longitude,
        "media_url": media_of(case) or case.media_url,  # the stored file, else the link as sent
    }
    answer = request_of_row(row, reference, full=full)
    answer["updated_datetime"] = iso(case.modified_on)
    return answer


# --- rendering ----------------------------------------------------------------------

# Root and item element names per resource, as in the spec's XML examples.
XML_NAMES = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
    "discovery": ("discovery", None),
    "service_definition": ("service_definition", None),
}


def render(kind: str, payload: Any, fmt: str) -> tuple[bytes, str]:
    if fmt == "json":
        return orjson.dumps(payload), "application/json; charset=utf-8"
    root_name, item_name = XML_NAMES.get(kind, (kind, None))
    root = ElementTree.Element(root_name)
    if isinstance(payload, list):
        for item in payload:
            _fill(ElementTree.SubElement(root, item_name or "item"), item)
    else:
        _fill(root, payload)
    # The spec asks for this exact declaration; ElementTree's own uses single quotes and lower case.
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode").encode()
    return body, "text/xml; charset=utf-8"


# The element name of one item in each list the spec nests in XML.
SINGULAR = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}


def _fill(element: ElementTree.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(inner, list):
                container = ElementTree.SubElement(element, key)
                for item in inner:
                    _fill(ElementTree.SubElement(container, SINGULAR.get(key, "item")), item)
            else:
                _fill(ElementTree.SubElement(element, key), inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
