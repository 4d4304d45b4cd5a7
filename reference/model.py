"""Reference data an operator edits: units, people, departments, channels,
categories. Loaded and validated once at start; every command checks against it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cases.places import Area, Bounds, inside
from cases.policy import Policy

HERE = Path(__file__).parent
DEMO_REFERENCE = HERE / "demo_district.json"
DEFAULT_POLICY = HERE / "policy.json"


class ReferenceDataError(ValueError):
    """The reference file is malformed: the service refuses to start."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    grids: frozenset[str] = frozenset()
    unit: str | None = None


@dataclass
class ReferenceData:
    version: str
    grids: dict[str, dict[str, str]] = field(default_factory=dict)  # grid code -> its units
    micro_grids: dict[str, str] = field(default_factory=dict)  # micro-grid -> grid
    streets: dict[str, str] = field(default_factory=dict)
    grid_leaders: dict[str, Person] = field(default_factory=dict)
    township_officers: dict[str, Person] = field(default_factory=dict)
    leaders: dict[str, Person] = field(default_factory=dict)
    departments: dict[str, str] = field(default_factory=dict)
    channels: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    # Places (optional): the district's box, checked on every coordinate; each grid's boundary,
    # from which a point finds its grid; when the data last changed (Open311's changeset).
    bounds: Bounds | None = None
    grid_areas: dict[str, Area] = field(default_factory=dict)
    changed_at: datetime | None = None

    @classmethod
    def load(cls, path: Path) -> ReferenceData:
        try:
            raw = orjson.loads(path.read_bytes())
            ref = cls.parse(raw)
            if ref.changed_at is None:
                ref.changed_at = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0)
            return ref
        except FileNotFoundError as e:
            raise ReferenceDataError(f"reference data file not found: {path}") from e
        except (KeyError, TypeError, orjson.JSONDecodeError) as e:
            raise ReferenceDataError(f"reference data {path} is malformed: {e!r}") from e

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ReferenceData:
        ref = cls(version=str(raw["version"]))
        district = raw["district"]
        ref.bounds = _bounds(district.get("bounds"))
        if raw.get("changed_at"):
            ref.changed_at = _moment(raw["changed_at"])
        leader_grids: dict[str, set[str]] = {}
        leader_names: dict[str, str] = {}
        for street in district["streets"]:
            ref._add_unique(ref.streets, street["code"], street["name"], "street")
            for officer in street.get("officers", []):
                ref.township_officers[officer["id"]] = Person(officer["id"], officer["name"], unit=street["code"])
            for community in street["communities"]:
                for grid in community["grids"]:
                    units = {
                        "district": district["code"],
                        "district_name": district["name"],
                        "street": street["code"],
                        "street_name": street["name"],
                        "community": community["code"],
                        "community_name": community["name"],
                        "grid": grid["code"],
                        "grid_name": grid["name"],
                    }
                    ref._add_unique(ref.grids, grid["code"], units, "grid")
                    if grid.get("boundary"):
                        ref.grid_areas[grid["code"]] = _area(grid["boundary"], grid["code"], ref.bounds)
                    for micro in grid.get("micro_grids", []):
                        ref._add_unique(ref.micro_grids, micro["code"], grid["code"], "micro-grid")
                    if not grid.get("leaders"):
                        raise ReferenceDataError(f"grid {grid['code']} has no grid leader (网格长)")
                    for leader in grid["leaders"]:
                        leader_grids.setdefault(leader["id"], set()).add(grid["code"])
                        leader_names[leader["id"]] = leader["name"]
        ref.grid_leaders = {
            pid: Person(pid, leader_names[pid], frozenset(grids)) for pid, grids in leader_grids.items()
        }
        ref.leaders = {p["id"]: Person(p["id"], p["name"]) for p in raw.get("leaders", [])}
        lists = {"departments": ref.departments, "channels": ref.channels, "categories": ref.categories}
        for key, target in lists.items():
            for item in raw[key]:
                ref._add_unique(target, item["code"], item["name"], key)
        return ref

    @staticmethod
    def _add_unique(target: dict[str, Any], code: str, value: Any, what: str) -> None:
        if code in target:
            raise ReferenceDataError(f"duplicate {what} code {code}")
        target[code] = value

    def units_of(self, grid_or_micro: str) -> dict[str, str] | None:
        """The grid and its parent units, for a grid or micro-grid code."""
        if grid_or_micro in self.grids:
            return dict(self.grids[grid_or_micro])
        grid = self.micro_grids.get(grid_or_micro)
        if grid is None:
            return None
        return {**self.grids[grid], "micro_grid": grid_or_micro}

    def grid_at(self, lat: float, lon: float) -> str | None:
        """The grid whose boundary holds the point (the first in the file, if boundaries overlap)."""
        return next((code for code, area in self.grid_areas.items() if inside(area, lat, lon)), None)


def _moment(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as e:
        raise ReferenceDataError(f"changed_at {value!r} is not an ISO date-time") from e
    if moment.tzinfo is None:
        raise ReferenceDataError(f"changed_at {value!r} needs a time zone (Z or +08:00)")
    return moment.astimezone(UTC)


def _bounds(raw: Any) -> Bounds | None:
    """district.bounds: [west, south, east, north] in WGS-84 degrees (GeoJSON's bbox order)."""
    if raw is None:
        return None
    if not (isinstance(raw, list) and len(raw) == 4 and all(isinstance(v, (int, float)) for v in raw)):
        raise ReferenceDataError("district.bounds must be [west, south, east, north] in degrees")
    west, south, east, north = map(float, raw)
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise ReferenceDataError(f"district.bounds {raw} is not a box west < east, south < north")
    return Bounds(west, south, east, north)


def _area(raw: Any, grid: str, bounds: Bounds | None) -> Area:
    """A grid's boundary: a GeoJSON Polygon or MultiPolygon geometry in WGS-84."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "Polygon":
        polygons = [raw["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = raw["coordinates"]
    else:
        raise ReferenceDataError(f"grid {grid}: boundary must be a GeoJSON Polygon or MultiPolygon")
    rings: list[list[tuple[float, float]]] = []
    for polygon in polygons:
        for ring in polygon:
            points = [(float(p[0]), float(p[1])) for p in ring]
            if len(points) < 4 or points[0] != points[-1]:
                raise ReferenceDataError(f"grid {grid}: each ring needs 4 or more positions, the last the first")
            if bounds is not None and not all(bounds.contains(lat, lon) for lon, lat in points):
                raise ReferenceDataError(f"grid {grid}: boundary leaves the district's bounds")
            rings.append(points[:-1])
    return rings


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    try:
        return Policy.parse(orjson.loads(path.read_bytes()))
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ReferenceDataError(f"deadline policy {path} is invalid: {e}") from e
