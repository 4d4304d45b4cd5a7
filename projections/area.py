"""The part of the ledger a caller may read. The server derives it from the
token and every read-model query ANDs it in: a client's own filters can only
narrow it further, never widen it (docs/security.md, "Area scoping")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Area:
    """`everywhere`, or the cases of some grids (and those assigned to one
    person), of one street, or of one department (led or whistled to it)."""

    everywhere: bool = False
    grids: tuple[str, ...] = ()
    assignee: str | None = None
    street: str | None = None
    department: str | None = None

    @classmethod
    def all(cls) -> Area:
        return cls(everywhere=True)

    @property
    def home_unit(self) -> str | None:
        """The one unit the area is, where it is one (the default unit of a report)."""
        if self.street:
            return self.street
        return self.grids[0] if len(self.grids) == 1 else None

    def cases(self, alias: str = "") -> tuple[str, list[Any]]:
        """A condition on ledger_cases (optionally aliased) that keeps the area's rows only."""
        if self.everywhere:
            return "1 = 1", []
        a = f"{alias}." if alias else ""
        parts: list[str] = []
        params: list[Any] = []
        if self.grids:
            parts.append(f"{a}grid IN ({', '.join('?' * len(self.grids))})")
            params += self.grids
        if self.assignee:
            parts.append(f"{a}assignee = ?")
            params.append(self.assignee)
        if self.street:
            parts.append(f"{a}street = ?")
            params.append(self.street)
        if self.department:
            parts.append(
                f"({a}lead_department = ? OR {a}case_id IN (SELECT case_id FROM ledger_whistles WHERE department = ?))"
            )
            params += [self.department, self.department]
        if not parts:
            return "1 = 0", []  # a scoped token naming no area sees nothing
        return "(" + " OR ".join(parts) + ")", params


def and_area(area: Area, where: str, params: list[Any]) -> tuple[str, list[Any]]:
    """`where` (may be empty) AND the area, area parameters first."""
    clause, area_params = area.cases()
    return (f"{clause} AND ({where})" if where else clause), [*area_params, *params]


def unit_filter(unit: str | None) -> tuple[str, list[str]]:
    """Match a unit code at any level of the hierarchy, or a department."""
    if not unit:
        return "", []
    columns = ("district", "street", "community", "grid", "lead_department")
    return "(" + " OR ".join(f"{c} = ?" for c in columns) + ")", [unit] * len(columns)
