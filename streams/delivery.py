"""The webhook delivery worker (`minqing deliver`).

Each pass takes every due subscription on a lease (a row-level claim that
works on SQLite and PostgreSQL, so any number of workers can run), reads the
matching events after its position from the feed, and POSTs them one by one.
A 2xx moves the position and logs the delivery in one transaction, guarded by
the lease; a crash between the POST and that commit only means the same
message (same webhook-id) is sent again. A failure stops the subscription at
that event until its backoff has passed; after the last attempt it goes to
`dead_letter` and waits for an operator.

Each POST resolves the receiver's host once, checks every address (the
server itself, link-local and cloud metadata are refused in production) and
connects to the checked address only, keeping the Host header and TLS name:
a name that answers differently at delivery (DNS rebinding) changes nothing.
A slow receiver delays only itself: at most `per_host` subscriptions of one
receiver host are served at a time, and timeouts are short. The receiver's
answer is never recorded, only its status code and a fixed reason.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from streams.cloudevents import encode
from streams.feed import Feed
from streams.leases import LeasedQueue
from streams.webhooks import AddressRefusedError, Status, Subscription, Webhooks, checked_addresses, headers

log = structlog.get_logger()

# Seconds before each retry: the Standard Webhooks reference schedule (about a
# day in all); the attempt after the last step dead-letters the subscription.
BACKOFF = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
PRUNE_EVERY = 3600.0  # seconds between delivery-log clean-ups
TIMEOUT = httpx.Timeout(5.0, connect=3.0)  # a receiver answers quickly or is retried later
# What a failed attempt records: the status code and one of these, never what the receiver said
# (its answer would let a subscriber read whatever service sits at the address).
REASONS = {
    "status": "接收方返回非 2xx 状态（应答内容不记录） / the receiver answered with a non-2xx status",
    "refused": "推送地址解析到本机、链路本地或云元数据地址，已拒绝 / the receiver's address is not allowed",
    "dns": "无法解析接收方主机名 / the receiver's host name does not resolve",
    "timeout": "接收方超时未应答 / the receiver timed out",
    "connect": "无法连接接收方 / could not connect to the receiver",
    "transport": "与接收方通信失败 / the exchange with the receiver failed",
}


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
        timeout: httpx.Timeout = TIMEOUT,
        concurrency: int = 8,
        per_host: int = 1,
        log_days: float = 30.0,
        allow_local: bool = False,
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
        self.per_host = per_host
        self.allow_local = allow_local
        self.queue = LeasedQueue(
            self.views, "webhook_subscriptions", worker="deliver", lease=lease, clock=lambda: self.clock()
        )
        self._serving: dict[str, str] = {}  # subscription id -> its receiver's host, while in the pool
        self._lock = threading.Lock()
        self._finished = threading.Event()  # a subscription was served: there may be more to send
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

    def dispatch(self, skip: frozenset[str] = frozenset()) -> list[Future[tuple[str, int]]]:
        """Hand every due subscription to the pool, except those already in it and those whose
        receiver host already has `per_host` in it; returns at once."""
        now, head = self.clock(), self.feed.head()
        # A subscription already at the head has nothing to send: skip it without claiming it.
        due = self.queue.due(
            "id, url",
            "status = ? AND deleted_at IS NULL AND position < ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
            [str(Status.ACTIVE), head, now],
            "ORDER BY created_at, id",
        )
        futures: list[Future[tuple[str, int]]] = []
        with self._lock:
            busy = Counter(self._serving.values())
            for row in due:
                host = (httpx.URL(row["url"]).netloc or b"").decode().lower()
                if row["id"] in self._serving or row["id"] in skip or busy[host] >= self.per_host:
                    continue
                busy[host] += 1
                self._serving[row["id"]] = host
                futures.append(self.pool.submit(self._serve_then_free, row["id"]))
        return futures

    def run_once(self) -> int:
        """Deliver what is due now, then return the number of messages delivered."""
        total, idle = 0, set[str]()
        while futures := self.dispatch(frozenset(idle)):
            for future in futures:
                subscription_id, delivered = future.result()
                total += delivered
                if not delivered:
                    idle.add(subscription_id)  # failing or nothing to send: not again in this run
        return total

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
                self.dispatch()
            except Exception as e:  # a database blip must not end the worker
                log.warning("webhook_pass_failed", error=repr(e))
                stop.wait(1.0)
                continue
            # Look again when a subscription was served (it may have more) or after `idle`;
            # served ones run on in the pool meanwhile, so a slow receiver holds up no pass.
            self._finished.wait(idle)
            self._finished.clear()

    # --- one subscription ----------------------------------------------------------

    @property
    def owner(self) -> str:
        return self.queue.owner

    def _claim(self, subscription_id: str) -> Subscription | None:
        live = "status = ? AND deleted_at IS NULL"
        rows = self.queue.claim(subscription_id, live, [str(Status.ACTIVE)], returning="*")
        return Subscription.of(rows[0]) if rows else None

    def _release(self, subscription_id: str) -> None:
        self.queue.release(subscription_id)

    def _serve_then_free(self, subscription_id: str) -> tuple[str, int]:
        try:
            return subscription_id, self._serve(subscription_id)
        except Exception as e:  # a database blip: the lease runs out and the next pass tries again
            log.warning("webhook_serve_failed", subscription=subscription_id, error=repr(e))
            raise
        finally:
            with self._lock:
                self._serving.pop(subscription_id, None)
            self._finished.set()

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
        url = httpx.URL(subscription.url)
        try:
            # Resolved once and checked; the connection goes to that very address.
            address = checked_addresses(url.host, allow_local=self.allow_local)[0]
        except AddressRefusedError as e:
            log.warning("webhook_address_refused", subscription=subscription.id, host=url.host, address=str(e.address))
            return Attempt(False, None, REASONS["refused" if e.address else "dns"], _ms(started))
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        signed["host"] = url.netloc.decode()
        try:
            # Streamed and never read: only the status counts, whatever the receiver sends after it.
            with self.http.stream(
                "POST", url.copy_with(host=str(address)), content=body, headers=signed, extensions=extensions
            ) as response:
                status = response.status_code
        except httpx.HTTPError as e:
            # The detail goes to the operator's log only.
            log.info("webhook_transport_error", subscription=subscription.id, error=repr(e))
            kind = "timeout" if isinstance(e, httpx.TimeoutException) else "transport"
            kind = "connect" if isinstance(e, httpx.ConnectError) else kind
            return Attempt(False, None, REASONS[kind], _ms(started))
        ok = 200 <= status < 300
        return Attempt(ok, status, None if ok else f"HTTP {status}: {REASONS['status']}", _ms(started))

    def _record(self, subscription: Subscription, event: dict[str, Any], position: int, attempt: Attempt) -> bool:
        """Log the attempt and move the subscription on, or back off; False stops this pass."""
        number = subscription.attempts + 1
        now = self.clock()
        if attempt.ok:
            sets = "position = ?, attempts = 0, next_attempt_at = NULL, last_error = NULL, "
            sets += "delivered = delivered + 1, lease_until = ?"
            params: list[Any] = [position, now + self.lease]
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
