"""Reference data an operator edits: units, people, departments, channels,
categories. Loaded and validated once at start; every command checks against it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

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

    @classmethod
    def load(cls, path: Path) -> ReferenceData:
        try:
            raw = orjson.loads(path.read_bytes())
            return cls.parse(raw)
        except FileNotFoundError as e:
            raise ReferenceDataError(f"reference data file not found: {path}") from e
        except (KeyError, TypeError, orjson.JSONDecodeError) as e:
            raise ReferenceDataError(f"reference data {path} is malformed: {e!r}") from e

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ReferenceData:
        ref = cls(version=str(raw["version"]))
        district = raw["district"]
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


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    try:
        return Policy.parse(orjson.loads(path.read_bytes()))
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ReferenceDataError(f"deadline policy {path} is invalid: {e}") from e
