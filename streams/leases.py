"""A leased queue: rows of a table that workers take on a lease (`lease_owner`, `lease_until`)
before working on them. The claim is one conditional UPDATE, which works alike on SQLite and
PostgreSQL, so any number of workers may run; a worker that dies only lets its leases run out.
The webhook deliverer leases subscriptions (streams/delivery.py), the notice worker notices
(streams/notify.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from storage.views import PostgresViews, SqliteViews

# Free to take: never leased, its lease run out, or already this worker's.
FREE = "(lease_until IS NULL OR lease_until < ? OR lease_owner = ?)"


class LeasedQueue:
    def __init__(
        self,
        views: SqliteViews | PostgresViews,
        table: str,
        *,
        worker: str,
        lease: float,
        clock: Callable[[], float],
    ) -> None:
        self.views = views
        self.table = table
        self.owner = f"{worker}-{uuid.uuid4().hex[:12]}"
        self.lease = lease
        self.clock = clock

    def free(self, now: float) -> tuple[str, list[Any]]:
        """The condition (and its parameters) a row must meet to be taken now."""
        return FREE, [now, self.owner]

    def due(
        self, columns: str, where: str, params: Sequence[Any], tail: str = "", tail_params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        """The rows that meet `where` and are free now (`tail`: ORDER BY, LIMIT)."""
        free, free_params = self.free(self.clock())
        return self.views.query(
            f"SELECT {columns} FROM {self.table} WHERE {where} AND {free} {tail}",
            [*params, *free_params, *tail_params],
        )

    def claim(self, item: str, where: str, params: Sequence[Any], returning: str = "id") -> list[dict[str, Any]]:
        """Takes the row `item` on a lease if it still meets `where` and is free; [] when it is not."""
        now = self.clock()
        free, free_params = self.free(now)
        with self.views.transaction() as cur:
            return cur.execute(
                f"UPDATE {self.table} SET lease_owner = ?, lease_until = ? WHERE id = ? AND {where} AND {free} "
                f"RETURNING {returning}",
                [self.owner, now + self.lease, item, *params, *free_params],
            )

    def release(self, item: str) -> None:
        """Gives the lease back (another worker may take the row at once)."""
        with self.views.transaction() as cur:
            cur.execute(
                f"UPDATE {self.table} SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                [item, self.owner],
            )
