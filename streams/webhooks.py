"""Webhook subscriptions and their delivery log, kept in the read side's database.

A subscription is a URL, a filter and a position: every matching event at or
before the position has been delivered. Delivery is in log order per
subscription (hence in order per case), at least once; a receiver that keeps
failing sends the subscription to `dead_letter`, where it waits, position
intact, until an operator resumes it. Messages are signed per the Standard
Webhooks convention (webhook-id, webhook-timestamp, webhook-signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from projections.store import PostgresViews, Row, SqliteViews, create_schema
from streams.feed import EventFilter

TABLES = [
    "CREATE TABLE IF NOT EXISTS webhook_subscriptions ("
    "id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, description TEXT, "
    "types TEXT NOT NULL, unit TEXT, case_id TEXT, status TEXT NOT NULL, position BIGINT NOT NULL, "
    "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION, last_error TEXT, "
    "delivered BIGINT NOT NULL DEFAULT 0, lease_owner TEXT, lease_until DOUBLE PRECISION, "
    "created_at TEXT NOT NULL, deleted_at TEXT, personal INTEGER NOT NULL DEFAULT 0, "
    "previous_secret TEXT, previous_until DOUBLE PRECISION)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    "id TEXT PRIMARY KEY, subscription TEXT NOT NULL, position BIGINT NOT NULL, event_id TEXT NOT NULL, "
    "event_type TEXT NOT NULL, attempt INTEGER NOT NULL, at TEXT NOT NULL, outcome TEXT NOT NULL, "
    "status_code INTEGER, error TEXT, duration_ms DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_subscription ON webhook_deliveries (subscription, at)",
]

PUBLIC = ("id", "url", "description", "status", "position", "attempts", "next_attempt_at", "last_error", "delivered",
          "created_at", "personal")  # fmt: skip


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DEAD_LETTER = "dead_letter"


def local_address(host: str) -> str | None:
    """The loopback, link-local or otherwise non-routable address `host` names, if any:
    a webhook must not make the server call itself or the cloud's metadata service.
    Private ranges (10/8, 172.16/12, 192.168/16) stay allowed: government intranets use them."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return None  # not resolvable now: delivery will fail and retry, visibly
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
            return str(ip)
    return None


class SubscriptionNotFoundError(LookupError):
    code = "subscription_not_found"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"没有编号为 {subscription_id} 的推送订阅（可能已删除）。")
        self.message = str(self.args[0])


# --- signing (Standard Webhooks) -----------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Signed with every live secret (space-separated, as the convention allows), so a
    receiver keeps verifying with the old secret while it switches to a rotated one."""
    return {
        "content-type": "application/cloudevents+json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(secret, message_id, timestamp, body) for secret in secrets_),
    }


# --- the store -------------------------------------------------------------------


@dataclass
class Subscription:
    id: str
    url: str
    secret: str
    filter: EventFilter
    status: Status
    position: int
    attempts: int
    personal: bool  # created by a reader entitled to personal data: delivered in clear
    previous_secret: str | None = None  # still signed with until `previous_until`, after a rotation
    previous_until: float | None = None

    def secrets(self, now: float) -> list[str]:
        live = self.previous_secret and self.previous_until and now < self.previous_until
        return [self.secret, self.previous_secret] if live else [self.secret]  # type: ignore[list-item]

    @classmethod
    def of(cls, row: Row) -> Subscription:
        types = [t for t in row["types"].split(",") if t]
        return cls(
            row["id"],
            row["url"],
            row["secret"],
            EventFilter(frozenset(types), row["unit"], uuid.UUID(row["case_id"]) if row["case_id"] else None),
            Status(row["status"]),
            int(row["position"]),
            int(row["attempts"]),
            bool(row["personal"]),
            row["previous_secret"],
            row["previous_until"],
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def public(row: Row) -> dict[str, Any]:
    out = {k: row[k] for k in PUBLIC}
    out["personal"] = bool(out["personal"])
    out["filter"] = Subscription.of(row).filter.as_dict()
    return out


def create_tables(views: SqliteViews | PostgresViews) -> None:
    """Part of `minqing migrate`."""
    create_schema(views, TABLES)


class Webhooks:
    def __init__(self, views: SqliteViews | PostgresViews) -> None:
        self.views = views

    def create(
        self, url: str, flt: EventFilter, position: int, description: str | None = None, *, personal: bool = False
    ) -> dict[str, Any]:
        row = {
            "id": str(uuid.uuid4()),
            "url": url,
            "secret": new_secret(),
            "description": description,
            "types": ",".join(sorted(flt.types)),
            "unit": flt.unit,
            "case_id": str(flt.case) if flt.case else None,
            "status": str(Status.ACTIVE),
            "position": position,
            "created_at": _now(),
            "personal": int(personal),
        }
        with self.views.transaction() as cur:
            stored = cur.execute(
                f"INSERT INTO webhook_subscriptions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
                "RETURNING *",
                list(row.values()),
            )
        # The secret is shown once, at creation; receivers keep it to verify signatures.
        return {**public(stored[0]), "secret": row["secret"]}

    def _row(self, subscription_id: str) -> Row:
        rows = self.views.query(
            "SELECT * FROM webhook_subscriptions WHERE id = ? AND deleted_at IS NULL", [subscription_id]
        )
        if not rows:
            raise SubscriptionNotFoundError(subscription_id)
        return rows[0]

    def get(self, subscription_id: str) -> dict[str, Any]:
        return public(self._row(subscription_id))

    def list(self) -> list[dict[str, Any]]:
        rows = self.views.query("SELECT * FROM webhook_subscriptions WHERE deleted_at IS NULL ORDER BY created_at, id")
        return [public(r) for r in rows]

    def _update(self, subscription_id: str, sets: str, params: list[Any]) -> dict[str, Any]:
        with self.views.transaction() as cur:
            done = cur.execute(
                f"UPDATE webhook_subscriptions SET {sets} WHERE id = ? AND deleted_at IS NULL RETURNING *",
                [*params, subscription_id],
            )
        if not done:
            raise SubscriptionNotFoundError(subscription_id)
        return public(done[0])

    def pause(self, subscription_id: str) -> dict[str, Any]:
        return self._update(subscription_id, "status = ?", [str(Status.PAUSED)])

    def resume(self, subscription_id: str, after: int | None = None) -> dict[str, Any]:
        """Active again, retrying at once; `after` moves the position (replay or skip)."""
        sets = "status = ?, attempts = 0, next_attempt_at = NULL, last_error = NULL"
        params: list[Any] = [str(Status.ACTIVE)]
        if after is not None:
            sets += ", position = ?"
            params.append(after)
        return self._update(subscription_id, sets, params)

    def rotate_secret(self, subscription_id: str, overlap_hours: float, now: float) -> dict[str, Any]:
        """A new secret; the current one keeps signing beside it for `overlap_hours`."""
        secret, until = new_secret(), now + overlap_hours * 3600
        row = self._update(subscription_id, "previous_secret = secret, previous_until = ?, secret = ?", [until, secret])
        return {**row, "secret": secret, "previous_secret_valid_until": until}

    def prune(self, before: datetime) -> int:
        """Drop delivery-log entries older than `before` (the log would grow for ever)."""
        with self.views.transaction() as cur:
            gone = cur.execute("DELETE FROM webhook_deliveries WHERE at < ? RETURNING id", [before.isoformat()])
        return len(gone)

    def delete(self, subscription_id: str) -> None:
        # Kept, marked deleted: the delivery log still names it.
        self._update(subscription_id, "deleted_at = ?, status = ?", [_now(), str(Status.PAUSED)])

    def deliveries(self, subscription_id: str, limit: int) -> list[Row]:
        self._row(subscription_id)
        rows = self.views.query(
            "SELECT * FROM webhook_deliveries WHERE subscription = ? ORDER BY at DESC, position DESC, attempt DESC "
            "LIMIT ?",
            [subscription_id, limit],
        )
        return [{k: v for k, v in r.items() if k != "subscription"} for r in rows]
