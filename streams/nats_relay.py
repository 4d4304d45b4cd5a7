"""The NATS JetStream relay (`minqing relay-nats`): the event feed, published into a stream.

For subscribers beyond one machine: JetStream keeps the messages and replays them to any
number of consumers, each with its own position. The relay publishes exactly what the
feed gives (the CloudEvents of `GET /events`, personal data masked), in log order, one
message at a time: the next is sent only after JetStream's PubAck for the last. Each
message carries `Nats-Msg-Id: <log position>`, so JetStream's duplicate window drops a
message sent twice (an ack lost on the wire and the message sent again, two relays racing).

The relay's position is a row of the read side's database, moved only after the acks of
what it covers: the stream never lacks an event below it (at least once, no gap). At start,
and whenever it takes the lease, the relay also reads the log position of the stream's last
message: after a crash between an ack and the row's commit it resumes after what the
stream already holds, so nothing is published twice even past the duplicate window.
One relay per stream is active at a time: the row is leased, as webhook subscriptions are,
and a relay that dies loses it to one standing by.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from storage.views import PostgresViews, SqliteViews, create_schema
from streams.cloudevents import TYPE_PREFIX, encode
from streams.feed import EventFilter, Feed

log = structlog.get_logger()

TABLES = [
    "CREATE TABLE IF NOT EXISTS relay_positions ("
    "name TEXT PRIMARY KEY, position BIGINT NOT NULL, published BIGINT NOT NULL DEFAULT 0, "
    "lease_owner TEXT, lease_until DOUBLE PRECISION, updated_at TEXT)",
]
MSG_ID = "Nats-Msg-Id"
ATTEMPTS = 3  # publishes of one message (same Msg-Id) before the pass gives up and starts over


def create_tables(views: SqliteViews | PostgresViews) -> None:
    create_schema(views, TABLES)


@dataclass(frozen=True)
class RelayTarget:
    """Where the events go. A message's subject is `subject` + "." + the event's type name
    (`minqing.events.Registered`): consumers filter by subject, the stream keeps one order."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = "MINQING_EVENTS"
    subject: str = "minqing.events"
    duplicate_window: float = 120.0  # seconds; used only when the relay creates the stream

    def subject_of(self, event: dict[str, Any]) -> str:
        return f"{self.subject}.{event['type'].removeprefix(TYPE_PREFIX)}"


class Positions:
    """The relay's row: its position, and the lease that makes one relay per stream active."""

    def __init__(self, views: SqliteViews | PostgresViews, name: str, *, lease: float) -> None:
        self.views = views
        self.name = name
        self.lease = lease
        self.owner = f"relay-{uuid.uuid4().hex[:12]}"

    def claim(self) -> int | None:
        """Take or renew the lease; the stored position, or None while another relay holds it."""
        now = time.time()
        with self.views.transaction() as cur:
            cur.execute(
                "INSERT INTO relay_positions (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", [self.name]
            )
            rows = cur.execute(
                "UPDATE relay_positions SET lease_owner = ?, lease_until = ? WHERE name = ? "
                "AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?) RETURNING position",
                [self.owner, now + self.lease, self.name, now, self.owner],
            )
        return int(rows[0]["position"]) if rows else None

    def advance(self, position: int, published: int) -> bool:
        """Move to `position` (every event at or below it is in the stream); False if the lease was lost."""
        with self.views.transaction() as cur:
            rows = cur.execute(
                "UPDATE relay_positions SET position = ?, published = published + ?, lease_until = ?, updated_at = ? "
                "WHERE name = ? AND lease_owner = ? AND position <= ? RETURNING name",
                [position, published, time.time() + self.lease, datetime.now(UTC).isoformat(), self.name, self.owner,
                 position],
            )  # fmt: skip
        return bool(rows)

    def release(self) -> None:
        with self.views.transaction() as cur:
            cur.execute(
                "UPDATE relay_positions SET lease_owner = NULL, lease_until = NULL WHERE name = ? AND lease_owner = ?",
                [self.name, self.owner],
            )

    def stored(self) -> int:
        rows = self.views.query("SELECT position FROM relay_positions WHERE name = ?", [self.name])
        return int(rows[0]["position"]) if rows else 0


class NatsRelay:
    def __init__(
        self,
        feed: Feed,
        views: SqliteViews | PostgresViews,
        target: RelayTarget,
        *,
        batch: int = 200,
        lease: float = 30.0,
        poll: float = 0.1,
        ack_timeout: float = 5.0,
    ) -> None:
        self.feed = feed
        self.target = target
        self.batch = batch
        self.poll = poll
        self.ack_timeout = ack_timeout
        self.positions = Positions(views, target.stream, lease=lease)
        self.position: int | None = None  # while this relay holds the lease
        self.renew_at = 0.0
        self.published = 0
        self.duplicates = 0  # acks that said JetStream already had the message
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "connect() first"
        return self._js

    async def connect(self) -> None:
        self._nc = await nats.connect(self.target.url, name="minqing-relay", max_reconnect_attempts=-1)
        self._js = self._nc.jetstream(timeout=self.ack_timeout)
        try:
            await self.js.stream_info(self.target.stream)
        except NotFoundError:
            # An operator may create it beforehand (retention, replicas, max age): then it is used as it is.
            await self.js.add_stream(
                name=self.target.stream,
                subjects=[f"{self.target.subject}.>"],
                duplicate_window=self.target.duplicate_window,
            )

    async def close(self) -> None:
        if self.position is not None:
            await asyncio.to_thread(self.positions.release)
            self.position = None
        if self._nc is not None:
            await self._nc.close()

    async def stream_position(self) -> int:
        """The log position of the stream's last message (its Msg-Id), 0 if it has none."""
        info = await self.js.stream_info(self.target.stream)
        if not info.state.last_seq:
            return 0
        try:
            last = await self.js.get_msg(self.target.stream, info.state.last_seq)
        except NotFoundError:
            return 0
        msg_id = (last.headers or {}).get(MSG_ID, "")
        return int(msg_id) if msg_id.isdigit() else 0

    async def _hold(self) -> int | None:
        """The position to publish after, taking or renewing the lease when due."""
        if self.position is not None and time.monotonic() < self.renew_at:
            return self.position
        stored = await asyncio.to_thread(self.positions.claim)
        if stored is None:
            if self.position is not None:
                log.warning("nats_relay_lease_lost", stream=self.target.stream)
            self.position = None
            return None
        if self.position is None:
            # Newly active: what the stream holds beyond the row was acked before a crash.
            in_stream = await self.stream_position()
            if in_stream > stored and await asyncio.to_thread(self.positions.advance, in_stream, 0):
                log.info("nats_relay_resumed_from_stream", stored=stored, stream_position=in_stream)
                stored = in_stream
            log.info("nats_relay_active", stream=self.target.stream, position=stored, owner=self.positions.owner)
        self.position = max(stored, self.position or 0)
        self.renew_at = time.monotonic() + self.positions.lease / 3
        return self.position

    async def run_once(self) -> int:
        """Publish one page after the position; the number published (0: at the head, or standing by)."""
        position = await self._hold()
        if position is None or await asyncio.to_thread(self.feed.head) <= position:
            return 0
        page = await asyncio.to_thread(self.feed.page, EventFilter(), position, self.batch)
        acked, published = position, 0
        try:
            for event in page.events:
                await self._publish(event)
                acked, published = int(event["sequence"]), published + 1
            acked = max(acked, page.next_after)  # rows after the last event that are not case events
        finally:
            # After an error too: what was acked is kept, the rest is published again next pass.
            if acked > position:
                if await asyncio.to_thread(self.positions.advance, acked, published):
                    self.position = acked
                    self.renew_at = time.monotonic() + self.positions.lease / 3
                else:
                    log.warning("nats_relay_lease_lost", stream=self.target.stream, position=acked)
                    self.position = None
        self.published += published
        return published

    async def _publish(self, event: dict[str, Any]) -> None:
        headers = {MSG_ID: str(int(event["sequence"])), "Content-Type": "application/cloudevents+json"}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                ack = await self.js.publish(
                    self.target.subject_of(event), encode(event), stream=self.target.stream, headers=headers
                )
            except nats.errors.TimeoutError:
                # The message may have arrived and only the ack been lost: the same Msg-Id makes a resend safe.
                if attempt == ATTEMPTS:
                    raise
                log.warning("nats_relay_ack_timeout", position=headers[MSG_ID], attempt=attempt)
                continue
            if ack.duplicate:
                self.duplicates += 1
            return

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                published = await self.run_once()
            except Exception as e:  # NATS or the database away for a moment: start the pass again
                log.warning("nats_relay_pass_failed", error=repr(e))
                published = 0
                await _wait(stop, 1.0)
            if not published:
                await _wait(stop, self.poll)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
