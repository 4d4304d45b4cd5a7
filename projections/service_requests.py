"""The ledger as Open311 GeoReport v2 lists it: by request numbers, service,
open/closed and a registration window. A typed query, so the route only parses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.views import PostgresViews, Row, SqliteViews


@dataclass(frozen=True)
class ServiceRequestQuery:
    numbers: list[str] = field(default_factory=list)  # service_request_id: case numbers
    service: str | None = None  # service_code: the category
    open: bool | None = None  # None: both
    registered_from: datetime | None = None
    registered_to: datetime | None = None
    limit: int = 1000


def service_requests(views: SqliteViews | PostgresViews, query: ServiceRequestQuery) -> list[Row]:
    where: list[str] = []
    args: list[Any] = []
    if query.numbers:
        where.append(f"number IN ({', '.join('?' * len(query.numbers))})")
        args += query.numbers
    if query.service is not None:
        where.append("category = ?")
        args.append(query.service)
    if query.open is not None:
        where.append("status <> 'closed'" if query.open else "status = 'closed'")
    if query.registered_from is not None:
        where.append("registered_at >= ?")
        args.append(query.registered_from.isoformat())
    if query.registered_to is not None:
        where.append("registered_at <= ?")
        args.append(query.registered_to.isoformat())
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return views.query(
        f"SELECT * FROM ledger_cases {clause} ORDER BY registered_at DESC, case_id LIMIT ?", [*args, query.limit]
    )
