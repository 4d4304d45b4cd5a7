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
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from storage.views import PostgresViews, Row, SqliteViews, create_schema
from streams.feed import EventFilter

TABLES = [
    "CREATE TABLE IF NOT EXISTS webhook_subscriptions ("
    "id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, description TEXT, "
    "types TEXT NOT NULL, unit TEXT, case_id TEXT, status TEXT NOT NULL, position BIGINT NOT NULL, "
    "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION, last_error TEXT, "
    "delivered BIGINT NOT NULL DEFAULT 0, lease_owner TEXT, lease_until DOUBLE PRECISION, "
    "created_at TEXT NOT NULL, deleted_at TEXT, personal INTEGER NOT NULL DEFAULT 0, "
    "previous_secret TEXT, previous_until DOUBLE PRECISION, owner TEXT)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    "id TEXT PRIMARY KEY, subscription TEXT NOT NULL, position BIGINT NOT NULL, event_id TEXT NOT NULL, "
    "event_type TEXT NOT NULL, attempt INTEGER NOT NULL, at TEXT NOT NULL, outcome TEXT NOT NULL, "
    "status_code INTEGER, error TEXT, duration_ms DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_subscription ON webhook_deliveries (subscription, at)",
]

# Columns added after the table first shipped: added to an older table when it is opened.
# `owner` is the subscribing token's `sub`; NULL on rows from before owners: the operator's (admins only).
ADDED_COLUMNS = {"owner": "TEXT"}

PUBLIC = ("id", "url", "description", "status", "position", "attempts", "next_attempt_at", "last_error", "delivered",
          "created_at", "personal", "owner")  # fmt: skip
DEFAULT_MAX_PER_OWNER = 20


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DEAD_LETTER = "dead_letter"


IP = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud instance metadata services that are not link-local: Alibaba Cloud's, and AWS's over IPv6.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254", "169.254.169.254"))
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host" on Linux: reaches the server itself
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: an IPv4 address in the last 32 bits


class AddressRefusedError(ValueError):
    """A receiver address a webhook may not reach (or a host name that does not resolve)."""

    def __init__(self, host: str, reason: str, address: IP | None = None) -> None:
        self.host, self.address = host, address
        self.reason = f"推送地址 {host} 指向{reason}（{address}），生产环境不允许" if address else reason
        super().__init__(self.reason)


def embedded_v4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 spelling carries: mapped (::ffff:a.b.c.d), 6to4, NAT64 or Teredo."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.teredo[1] if ip.teredo else None


def refusal(ip: IP) -> str | None:
    """Why `ip` must not receive webhooks (the server itself, link-local, cloud metadata), or None.
    Private ranges (10/8, 172.16/12, 192.168/16) stay allowed: government intranets use them."""
    for candidate in (ip, embedded_v4(ip)):
        if candidate is None:
            continue
        if candidate in METADATA:
            return "云平台元数据地址"
        if candidate.is_loopback:
            return "本机回环地址"
        if candidate.is_unspecified or candidate in THIS_NETWORK:
            return "未指定地址（即本机）"
        if candidate.is_link_local:
            return "链路本地地址"
        if candidate.is_multicast or candidate.is_reserved:
            return "组播或保留地址"
    return None


def resolve(host: str) -> list[IP]:
    """Every address `host` names (an IP literal, with or without brackets, or a name looked up now)."""
    bare = host.strip().removeprefix("[").removesuffix("]")
    try:
        return [ipaddress.ip_address(bare)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(bare, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise AddressRefusedError(host, f"推送地址的主机名 {bare} 无法解析：请填写可解析的域名或 IP 地址") from None
    # A link-local IPv6 answer may carry its zone ("fe80::1%eth0"): the address is what counts.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def checked_addresses(host: str, *, allow_local: bool) -> list[IP]:
    """`host` resolved once; refused if the lookup fails or any answer is a refused address
    (unless local receivers are allowed). A delivery connects to the first of these, and only to it."""
    addresses = resolve(host)
    if not allow_local:
        for address in addresses:
            if reason := refusal(address):
                raise AddressRefusedError(host, reason, address)
    return addresses


class SubscriptionLimitError(Exception):
    code = "subscription_limit"

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(
            f"{owner} 已有 {limit} 个推送订阅，已达上限：请先删除不再使用的订阅，"
            f"或请系统管理员调高 MINQING_WEBHOOK_MAX_PER_OWNER。"
        )
        self.message = str(self.args[0])


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
        if self.previous_secret and self.previous_until and now < self.previous_until:
            return [self.secret, self.previous_secret]
        return [self.secret]

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
    """Part of `minqing migrate`: the tables, and the columns added since a table was first created."""
    create_schema(views, TABLES)
    alter = "ALTER TABLE webhook_subscriptions ADD COLUMN"
    if views.dialect == "sqlite":
        have = {r["name"] for r in views.query("PRAGMA table_info(webhook_subscriptions)")}
        missing = [f"{alter} {name} {kind}" for name, kind in ADDED_COLUMNS.items() if name not in have]
    else:
        missing = [f"{alter} IF NOT EXISTS {name} {kind}" for name, kind in ADDED_COLUMNS.items()]
    if missing:
        create_schema(views, missing)


class Webhooks:
    """Every method takes `owner`: only that owner's subscriptions (an integrator's token `sub`),
    or None for every subscription (an administrator). Another owner's reads as not found."""

    def __init__(self, views: SqliteViews | PostgresViews, *, max_per_owner: int = DEFAULT_MAX_PER_OWNER) -> None:
        self.views = views
        self.max_per_owner = max_per_owner

    def create(
        self,
        url: str,
        flt: EventFilter,
        position: int,
        description: str | None = None,
        *,
        owner: str,
        personal: bool = False,
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
            "owner": owner,
        }
        with self.views.transaction() as cur:
            if self.views.dialect == "postgres":
                # Count and insert as one step per owner, so a burst cannot pass the cap together.
                cur.execute("SELECT pg_advisory_xact_lock(?)", [zlib.crc32(f"minqing:webhooks:{owner}".encode())])
            held = cur.execute(
                "SELECT COUNT(*) AS n FROM webhook_subscriptions WHERE owner = ? AND deleted_at IS NULL", [owner]
            )[0]["n"]
            if held >= self.max_per_owner:
                raise SubscriptionLimitError(owner, self.max_per_owner)
            stored = cur.execute(
                f"INSERT INTO webhook_subscriptions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
                "RETURNING *",
                list(row.values()),
            )
        # The secret is shown once, at creation; receivers keep it to verify signatures.
        return {**public(stored[0]), "secret": row["secret"]}

    @staticmethod
    def _whose(owner: str | None) -> tuple[str, list[Any]]:
        return ("", []) if owner is None else (" AND owner = ?", [owner])

    def _row(self, subscription_id: str, owner: str | None) -> Row:
        mine, params = self._whose(owner)
        rows = self.views.query(
            f"SELECT * FROM webhook_subscriptions WHERE id = ? AND deleted_at IS NULL{mine}", [subscription_id, *params]
        )
        if not rows:
            raise SubscriptionNotFoundError(subscription_id)
        return rows[0]

    def get(self, subscription_id: str, *, owner: str | None) -> dict[str, Any]:
        return public(self._row(subscription_id, owner))

    def subscriptions(self, *, owner: str | None) -> list[dict[str, Any]]:
        mine, params = self._whose(owner)
        rows = self.views.query(
            f"SELECT * FROM webhook_subscriptions WHERE deleted_at IS NULL{mine} ORDER BY created_at, id", params
        )
        return [public(r) for r in rows]

    def _update(self, subscription_id: str, owner: str | None, sets: str, params: list[Any]) -> dict[str, Any]:
        mine, whose = self._whose(owner)
        with self.views.transaction() as cur:
            done = cur.execute(
                f"UPDATE webhook_subscriptions SET {sets} WHERE id = ? AND deleted_at IS NULL{mine} RETURNING *",
                [*params, subscription_id, *whose],
            )
        if not done:
            raise SubscriptionNotFoundError(subscription_id)
        return public(done[0])

    def pause(self, subscription_id: str, *, owner: str | None) -> dict[str, Any]:
        return self._update(subscription_id, owner, "status = ?", [str(Status.PAUSED)])

    def resume(self, subscription_id: str, after: int | None = None, *, owner: str | None) -> dict[str, Any]:
        """Active again, retrying at once; `after` moves the position (replay or skip)."""
        sets = "status = ?, attempts = 0, next_attempt_at = NULL, last_error = NULL"
        params: list[Any] = [str(Status.ACTIVE)]
        if after is not None:
            sets += ", position = ?"
            params.append(after)
        return self._update(subscription_id, owner, sets, params)

    def rotate_secret(
        self, subscription_id: str, overlap_hours: float, now: float, *, owner: str | None
    ) -> dict[str, Any]:
        """A new secret; the current one keeps signing beside it for `overlap_hours`."""
        secret, until = new_secret(), now + overlap_hours * 3600
        sets = "previous_secret = secret, previous_until = ?, secret = ?"
        row = self._update(subscription_id, owner, sets, [until, secret])
        return {**row, "secret": secret, "previous_secret_valid_until": until}

    def prune(self, before: datetime) -> int:
        """Drop delivery-log entries older than `before` (the log would grow for ever)."""
        with self.views.transaction() as cur:
            gone = cur.execute("DELETE FROM webhook_deliveries WHERE at < ? RETURNING id", [before.isoformat()])
        return len(gone)

    def delete(self, subscription_id: str, *, owner: str | None) -> None:
        # Kept, marked deleted: the delivery log still names it.
        self._update(subscription_id, owner, "deleted_at = ?, status = ?", [_now(), str(Status.PAUSED)])

    def deliveries(self, subscription_id: str, limit: int, *, owner: str | None) -> list[Row]:
        self._row(subscription_id, owner)
        rows = self.views.query(
            "SELECT * FROM webhook_deliveries WHERE subscription = ? ORDER BY at DESC, position DESC, attempt DESC "
            "LIMIT ?",
            [subscription_id, limit],
        )
        return [{k: v for k, v in r.items() if k != "subscription"} for r in rows]
