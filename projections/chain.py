"""Tamper evidence: every stored event linked into hash chains.

Each stored row (stream id, version, topic and the stored bytes, exactly as
the log holds them) is hashed. Each case's events are chained in version
order (stream hash), and the whole log is chained in position order (log
hash). Every `SEAL_EVERY` events, and whenever an operator asks (`minqing
seal`), the current log hash is written down as a seal: a root hash that can
be published (in a bulletin, a newspaper, a timestamping service) so that
even a rewrite of these tables together with the log would be exposed.

The chain is kept by a projection runner like any read model: it commits its
rows and its tracking position together, resumes where it stopped, and stands
by while another worker keeps it. It covers the log up to its position; rows
written since then are reported as pending, not as verified.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from projections.catch_up import insert_values
from storage.views import Cursor, upsert

NAME = "audit_chain"
GENESIS = "0" * 64
# A request verifies from the last seal (replay.verify): this bounds its walk.
SEAL_EVERY = 500  # ~0.1 ms an event walked (100k province): a request walks ~50 ms at most
CHAIN_COLUMNS = ("position", "originator_id", "originator_version", "event_hash", "stream_hash", "log_hash")

TABLES = [
    "CREATE TABLE IF NOT EXISTS audit_chain (position BIGINT PRIMARY KEY, originator_id TEXT NOT NULL, "
    "originator_version BIGINT NOT NULL, event_hash TEXT NOT NULL, stream_hash TEXT NOT NULL, log_hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_heads (originator_id TEXT PRIMARY KEY, originator_version BIGINT NOT NULL, "
    "stream_hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_seals (seal_no INTEGER PRIMARY KEY, position BIGINT NOT NULL, "
    "root_hash TEXT NOT NULL, events BIGINT NOT NULL, sealed_at TEXT NOT NULL)",
    # One case's chain on demand (GET /audit/verify?case=), and where a stream's links continue.
    "CREATE INDEX IF NOT EXISTS audit_chain_stream ON audit_chain (originator_id, originator_version)",
    # The outcome of each full walk (`minqing verify`), reported by GET /audit/verify.
    "CREATE TABLE IF NOT EXISTS audit_verifications (verified_at TEXT NOT NULL, chained_to BIGINT NOT NULL, "
    "root_hash TEXT NOT NULL, ok TEXT NOT NULL, checked BIGINT NOT NULL, problem_count INTEGER NOT NULL, "
    "first_problem TEXT)",
]


def event_hash(originator_id: UUID, version: int, topic: str, state: bytes) -> str:
    """SHA-256 over the stored row's parts, each length-prefixed so that no
    two different rows can share a byte string."""
    h = hashlib.sha256()
    for part in (originator_id.bytes, version.to_bytes(8, "big"), topic.encode(), state):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.hexdigest()


def stream_link(previous: str, digest: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(digest)).hexdigest()


def log_link(previous: str, position: int, digest: str) -> str:
    # The position is in the link, so moving a row to another position breaks it.
    return hashlib.sha256(bytes.fromhex(previous) + position.to_bytes(8, "big") + bytes.fromhex(digest)).hexdigest()


def hash_notification(n: Notification) -> str:
    return event_hash(UUID(str(n.originator_id)), n.originator_version, n.topic, bytes(n.state))


def last_log_hash(cur: Cursor) -> tuple[int, str]:
    rows = cur.execute("SELECT position, log_hash FROM audit_chain ORDER BY position DESC LIMIT 1")
    return (int(rows[0]["position"]), rows[0]["log_hash"]) if rows else (0, GENESIS)


def seal(cur: Cursor, *, now: datetime | None = None) -> dict[str, Any] | None:
    """Write down the chain's current root, if anything was chained since the last seal."""
    position, root = last_log_hash(cur)
    last = cur.execute("SELECT seal_no, position, events FROM audit_seals ORDER BY seal_no DESC LIMIT 1")
    since = int(last[0]["position"]) if last else 0
    if position <= since:
        return None
    (count,) = cur.execute("SELECT COUNT(*) AS n FROM audit_chain WHERE position > ?", [since])
    row = {
        "seal_no": int(last[0]["seal_no"]) + 1 if last else 1,
        "position": position,
        "root_hash": root,
        "events": (int(last[0]["events"]) if last else 0) + int(count["n"]),
        "sealed_at": (now or datetime.now(UTC)).isoformat(),
    }
    cur.execute(
        "INSERT INTO audit_seals (seal_no, position, root_hash, events, sealed_at) VALUES (?, ?, ?, ?, ?)",
        list(row.values()),
    )
    return row


class AuditChain:
    """The chain keeper. `raw`: it is given the stored notifications of every
    stream (records too, not only cases), not decoded events."""

    name = NAME
    tables = TABLES
    raw = True

    def __init__(self, seal_every: int = SEAL_EVERY) -> None:
        self.seal_every = seal_every

    def apply_batch(self, cur: Cursor, notifications: list[tuple[int, Notification]]) -> None:
        if not notifications:
            return
        _, log_hash = last_log_hash(cur)
        ids = sorted({str(n.originator_id) for _, n in notifications})
        heads: dict[str, tuple[int, str]] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT * FROM audit_heads WHERE originator_id IN ({marks})"
            for row in cur.execute(query, part):
                heads[row["originator_id"]] = (int(row["originator_version"]), row["stream_hash"])
        rows = []
        for position, n in notifications:
            stream = str(n.originator_id)
            digest = hash_notification(n)
            _, previous = heads.get(stream, (0, GENESIS))
            stream_hash = stream_link(previous, digest)
            log_hash = log_link(log_hash, position, digest)
            heads[stream] = (n.originator_version, stream_hash)
            rows.append((position, stream, n.originator_version, digest, stream_hash, log_hash))
        # Every position is new: copied in (PostgreSQL), the heads merged in one statement.
        insert_values(cur, "audit_chain", CHAIN_COLUMNS, rows)
        upsert(
            cur,
            "audit_heads",
            ("originator_id", "originator_version", "stream_hash"),
            ("originator_id",),
            [(stream, version, digest) for stream, (version, digest) in heads.items()],
        )
        last = cur.execute("SELECT position FROM audit_seals ORDER BY seal_no DESC LIMIT 1")
        since = int(last[0]["position"]) if last else 0
        (count,) = cur.execute("SELECT COUNT(*) AS n FROM audit_chain WHERE position > ?", [since])
        if int(count["n"]) >= self.seal_every:
            seal(cur)
