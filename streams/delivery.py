"""The webhook delivery worker (`minqing deliver`).

Each pass takes every due subscription on a lease (a row-level claim that
works on SQLite and PostgreSQL, so any number of workers can run), reads the
matching events after its position from the feed, and POSTs them one by one.
A 2xx moves the position and logs the delivery in one transaction, guarded by
the lease; a crash between the POST and that commit only means the same
message (same webhook-id) is sent again. A failure stops the subscription at
that event until its backoff has passed; after the last attempt it goes to
`dead_letter` and waits for an operator.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from streams.cloudevents import encode
from streams.feed import Feed
from streams.webhooks import Status, Subscription, Webhooks, headers

log = structlog.get_logger()

# Seconds before each retry: the Standard Webhooks reference schedule (about a
# day in all); the attempt after the last step dead-letters the subscription.
BACKOFF = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
PRUNE_EVERY = 3600.0  # seconds between delivery-log clean-ups


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class Deliverer:
    def __init__(
        self,
        feed: Feed,
        webhooks: Webhooks,
        *,
        backoff: Sequence[float] = BACKOFF,
        batch: int = 100,
        lease: float = 60.0,
        timeout: float = 10.0,
        concurrency: int = 8,
        log_days: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.feed = feed
        self.webhooks = webhooks
        self.views = webhooks.views
        self.backoff = tuple(backoff)
        self.batch = batch
        self.lease = lease
        self.log_days = log_days
        self.clock = clock
        self.owner = f"deliver-{uuid.uuid4().hex[:12]}"
        self.http = httpx.Client(timeout=timeout, follow_redirects=False, headers={"user-agent": "minqing-webhooks/1"})
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.close()

    def start_in_thread(self) -> Callable[[], None]:
        """The embedded setup: deliver from a thread of the HTTP process; returns its stop."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run_forever, args=(stop,), name="webhook-delivery", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(timeout=15)
            self.close()

        return halt

    def run_once(self) -> int:
        """One pass over every due subscription, in parallel; returns messages delivered."""
        now, head = self.clock(), self.feed.head()
        # A subscription already at the head has nothing to send: skip it without claiming it.
        due = self.views.query(
            "SELECT id FROM webhook_subscriptions WHERE status = ? AND deleted_at IS NULL AND position < ? "
            "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
            "AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)",
            [str(Status.ACTIVE), head, now, now, self.owner],
        )
        return sum(self.pool.map(self._serve, [r["id"] for r in due]))

    def prune_log(self) -> int:
        """Forget delivery-log entries older than `log_days`."""
        return self.webhooks.prune(datetime.now(UTC) - timedelta(days=self.log_days))

    def run_forever(self, stop: threading.Event, *, idle: float = 0.2) -> None:
        pruned_at = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() - pruned_at > PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    if pruned := self.prune_log():
                        log.info("webhook_log_pruned", entries=pruned, older_than_days=self.log_days)
                delivered = self.run_once()
            except Exception as e:  # a database blip must not end the worker
                log.warning("webhook_pass_failed", error=repr(e))
                stop.wait(1.0)
                continue
            if not delivered:
                stop.wait(idle)

    # --- one subscription ----------------------------------------------------------

    def _claim(self, subscription_id: str) -> Subscription | None:
        now = self.clock()
        with self.views.transaction() as cur:
            rows = cur.execute(
                "UPDATE webhook_subscriptions SET lease_owner = ?, lease_until = ? "
                "WHERE id = ? AND status = ? AND deleted_at IS NULL "
                "AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?) RETURNING *",
                [self.owner, now + self.lease, subscription_id, str(Status.ACTIVE), now, self.owner],
            )
        return Subscription.of(rows[0]) if rows else None

    def _release(self, subscription_id: str) -> None:
        with self.views.transaction() as cur:
            cur.execute(
                "UPDATE webhook_subscriptions SET lease_owner = NULL, lease_until = NULL "
                "WHERE id = ? AND lease_owner = ?",
                [subscription_id, self.owner],
            )

    def _serve(self, subscription_id: str) -> int:
        subscription = self._claim(subscription_id)
        if subscription is None:
            return 0
        delivered = 0
        try:
            page = self.feed.page(subscription.filter, subscription.position, self.batch, clear=subscription.personal)
            for event in page.events:
                position = int(event["sequence"])
                attempt = self._post(subscription, event)
                if not self._record(subscription, event, position, attempt):
                    return delivered  # failed (backing off) or the lease was lost
                delivered += 1
            if page.next_after > subscription.position:
                # Rows after the last delivery that did not match: skip them so the next pass starts there.
                self._advance(subscription, page.next_after)
            return delivered
        finally:
            self._release(subscription_id)

    def _post(self, subscription: Subscription, event: dict[str, Any]) -> Attempt:
        body = encode(event)
        now = time.time()
        signed = headers(subscription.secrets(now), event["id"], int(now), body)
        started = time.perf_counter()
        try:
            response = self.http.post(subscription.url, content=body, headers=signed)
        except httpx.HTTPError as e:
            return Attempt(False, None, f"{type(e).__name__}: {e}"[:500], _ms(started))
        ok = 200 <= response.status_code < 300
        error = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
        return Attempt(ok, response.status_code, error, _ms(started))

    def _record(self, subscription: Subscription, event: dict[str, Any], position: int, attempt: Attempt) -> bool:
        """Log the attempt and move the subscription on, or back off; False stops this pass."""
        number = subscription.attempts + 1
        now = self.clock()
        if attempt.ok:
            sets = "position = ?, attempts = 0, next_attempt_at = NULL, last_error = NULL, "
            sets += "delivered = delivered + 1, lease_until = ?"
            params = [position, now + self.lease]
            outcome = "delivered"
        elif number > len(self.backoff):
            sets, params = "status = ?, attempts = ?, last_error = ?", [str(Status.DEAD_LETTER), number, attempt.error]
            outcome = "dead_letter"
        else:
            sets = "attempts = ?, next_attempt_at = ?, last_error = ?"
            params = [number, now + self.backoff[number - 1], attempt.error]
            outcome = "failed"
        with self.views.transaction() as cur:
            moved = cur.execute(
                f"UPDATE webhook_subscriptions SET {sets} WHERE id = ? AND lease_owner = ? AND position = ? "
                "AND status = ? RETURNING id",
                [*params, subscription.id, self.owner, subscription.position, str(Status.ACTIVE)],
            )
            if not moved:
                return False  # paused, moved or taken over meanwhile: this event will be sent again
            cur.execute(
                "INSERT INTO webhook_deliveries (id, subscription, position, event_id, event_type, attempt, at, "
                "outcome, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [str(uuid.uuid4()), subscription.id, position, event["id"], event["type"], number,
                 datetime.now(UTC).isoformat(), outcome, attempt.status_code, attempt.error, attempt.duration_ms],
            )  # fmt: skip
        if outcome != "delivered":
            log.warning("webhook_failed", subscription=subscription.id, position=position, outcome=outcome,
                        attempt=number, error=attempt.error)  # fmt: skip
            return False
        subscription.position, subscription.attempts = position, 0
        return True

    def _advance(self, subscription: Subscription, to: int) -> None:
        with self.views.transaction() as cur:
            cur.execute(
                "UPDATE webhook_subscriptions SET position = ? WHERE id = ? AND lease_owner = ? AND position = ?",
                [to, subscription.id, self.owner, subscription.position],
            )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
