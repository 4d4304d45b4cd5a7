"""One reader of the log's head per process, shared by every live subscriber.

A hundred SSE clients must not mean a hundred database polls: the tail polls
once, decodes once, serialises once, and keeps the most recent events in a
ring. A subscriber behind the ring (resuming from an old Last-Event-ID) reads
pages from the log itself until it reaches the ring, then follows it.

The tail also reads the log's erasure records: the ring's bodies of an erased
petitioner's events are serialised again, so the ring serves what the log now
gives (erased), not the masked values it held before.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from functools import partial
from typing import cast

import anyio
import structlog
from eventsourcing.utils import get_topic

from cases.case import Case
from commands.records import PersonErased
from streams.cloudevents import CASE_TOPICS, encode
from streams.feed import EventFilter, Feed

log = structlog.get_logger()
ERASURE_TOPIC = get_topic(PersonErased)


@dataclass(frozen=True)
class Item:
    position: int
    event: Case.Event
    body: bytes  # the CloudEvent, serialised once for every subscriber


class Tail:
    def __init__(self, feed: Feed, *, poll: float = 0.05, keep: int = 20_000, batch: int = 1000) -> None:
        self.feed = feed
        self.poll = poll
        self.batch = batch
        self.keep = keep
        self.items: list[Item] = []
        self.positions: list[int] = []  # items' positions, for bisecting
        self.head = 0  # every case event at or before `head` has been read
        self.floor = 0  # the ring holds every case event after `floor`, up to `head`
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    def close_streams(self) -> None:
        """Shutting down: every subscriber's stream ends now instead of holding the server open."""
        self.closing = True
        self._changed.set()

    async def start(self) -> None:
        """Idempotent, also for many subscribers arriving at once: one reader, started once."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-tail")
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def since(self, after: int) -> list[Item] | None:
        """Events after `after` from the ring, or None if the ring no longer reaches back that far."""
        if after < self.floor:
            return None
        return self.items[bisect.bisect_right(self.positions, after) :]

    def changed(self) -> asyncio.Event:
        """Set when the head next moves. Take it before reading, then wait on it."""
        return self._changed

    async def _run(self) -> None:
        while True:
            try:
                if not self._ready.is_set():
                    self.head = self.floor = await anyio.to_thread.run_sync(self.feed.head)
                    self._ready.set()
                items, head, refreshed = await anyio.to_thread.run_sync(self._read)
            except Exception as e:  # a database blip must not end every stream
                log.warning("event_tail_error", error=repr(e))
                await asyncio.sleep(1.0)
                continue
            for item in refreshed:
                # Same position, body serialised again after an erasure (read while the ring stood still).
                self.items[bisect.bisect_left(self.positions, item.position)] = item
            if head > self.head:
                self.items += items
                self.positions += [item.position for item in items]
                if len(self.items) > 2 * self.keep:
                    # Trim in halves: amortised O(1) per event, and `since` stays a bisect.
                    drop = len(self.items) - self.keep
                    self.floor = self.positions[drop - 1]
                    del self.items[:drop], self.positions[:drop]
                self.head = head
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()
            if len(items) < self.batch:
                await asyncio.sleep(self.poll)

    def _read(self) -> tuple[list[Item], int, list[Item]]:
        """New items, the new head, and ring items serialised again because their petitioner was erased."""
        cases = self.feed.cases
        topics = (*CASE_TOPICS, ERASURE_TOPIC)
        notifications = cases.recorder.select_notifications(start=self.head + 1, limit=self.batch, topics=topics)
        items, erased = [], set()
        for n in notifications:
            stored = cases.mapper.to_domain_event(n)
            if n.topic == ERASURE_TOPIC:
                erased.add(cast(PersonErased, stored).person_id)
                continue
            event = cast(Case.Event, stored)  # the other topics are the case's
            items.append(Item(n.id, event, encode(self.feed.cloud_event(n.id, event))))
        refreshed = [
            replace(item, body=encode(self.feed.cloud_event(item.position, item.event)))
            for item in self.items
            if erased and _person(item.event) in erased
        ]
        if erased:
            # Events read in this very batch were serialised before or after the key went: again, to be sure.
            items = [replace(i, body=encode(self.feed.cloud_event(i.position, i.event))) for i in items]
        return items, (notifications[-1].id if notifications else self.head), refreshed


def _person(event: Case.Event) -> str | None:
    petitioner = getattr(event, "petitioner", None)
    return petitioner.get("person") if isinstance(petitioner, dict) else None


async def follow(
    tail: Tail, flt: EventFilter, after: int, heartbeat: float, *, clear: bool = False, until: float | None = None
) -> AsyncGenerator[bytes, None]:
    """One subscriber's SSE frames after `after`: from the log while behind the
    ring, then from the ring. `clear`: the reader may see personal data; the
    ring's shared bodies are masked, so its events are serialised again for
    this reader alone. `until`: the stream ends then (epoch seconds: its token's
    expiry); the client reconnects with a new token and Last-Event-ID."""
    feed = tail.feed
    last = after
    # The reconnection delay rides on the first event: a frame of `retry:` alone reaches
    # some clients (httpx-sse) as an event with empty data.
    retry = b"retry: 2000\n"
    yield b": open\n\n"
    while not tail.closing:  # on shutdown every stream ends; clients resume with Last-Event-ID
        if until is not None and time.time() >= until:
            return
        changed = tail.changed()
        items = tail.since(last)
        if items is None:
            # Behind the ring: read the log itself until caught up.
            page = await anyio.to_thread.run_sync(partial(feed.page, flt, last, 500, clear=clear))
            if page.events:
                yield retry + b"".join(_frame(int(event["sequence"]), encode(event)) for event in page.events)
                retry = b""
            last = page.next_after
            continue
        head = tail.head
        if flt.unit is not None:
            # A unit's scope may need the case's earlier events: off the event loop.
            items = await anyio.to_thread.run_sync(_matching, feed, items, flt)
        elif flt.types or flt.case:
            items = _matching(feed, items, flt)
        if items and clear:
            yield retry + await anyio.to_thread.run_sync(_clear_frames, feed, items)
            retry = b""
        elif items:
            # One write per wake-up, not one per event: 100 subscribers x a burst adds up.
            yield retry + b"".join(_frame(item.position, item.body) for item in items)
            retry = b""
        last = max(last, head)
        wait = heartbeat if until is None else min(heartbeat, max(0.0, until - time.time()))
        if not await _wait(changed, wait) and (until is None or time.time() < until):
            yield b": heartbeat\n\n"


def _clear_frames(feed: Feed, items: list[Item]) -> bytes:
    return b"".join(_frame(i.position, encode(feed.cloud_event(i.position, i.event, clear=True))) for i in items)


def _matching(feed: Feed, items: list[Item], flt: EventFilter) -> list[Item]:
    return [i for i in items if feed.matches(i.event, flt)]


async def _wait(changed: asyncio.Event, timeout: float) -> bool:
    with anyio.move_on_after(timeout):
        await changed.wait()
        return True
    return False


def _frame(position: int, body: bytes) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (position, body)
