"""The notice worker (`minqing notify`): sends the notices the log queued.

Each pass first reads the log after its cursor: every `NoticeQueued` becomes a
row of `notices` (the worker's index of the outbox) and every
`Case.NoticesOptedOut` a row of `notice_opt_outs`, with the cursor, in one
transaction; a pass is therefore resumable and the index can be rebuilt from
the log. Then it takes each due notice on a lease (a row-level claim that works
on SQLite and PostgreSQL, so any number of workers can run), reads the
notice's stream, and:

- stops it if the person opted out (on any of their cases) or was erased (the
  key is gone: the phone cannot be unsealed, so nothing can be sent);
- else renders the text, sends it, and records `NoticeSent` or `NoticeFailed`
  (the attempt, the gateway's code; a failure is retried after its backoff,
  the last one is final).

The outcome is appended to the notice's stream at the next version, so two
workers can never record two outcomes of one attempt; the row follows. A crash
after sending and before recording means the same notice (same id, which the
gateway receives as its idempotency key) is sent again: at least once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from cases.case import Case
from commands.cases import Cases
from commands.notices import (
    NOTIFIER,
    NoticeFailed,
    NoticeQueued,
    NoticeSent,
    NoticeStopped,
    render_text,
)
from security.personal import is_sealed
from storage.views import PostgresViews, SqliteViews, create_schema
from streams.leases import LeasedQueue
from streams.senders import Message, Sender

log = structlog.get_logger()

# Seconds before each retry; the attempt after the last step is the last one.
BACKOFF = (30.0, 120.0, 600.0, 1800.0, 7200.0)
MAX_ATTEMPTS = len(BACKOFF) + 1

TABLES = [
    "CREATE TABLE IF NOT EXISTS notices ("
    "id TEXT PRIMARY KEY, case_id TEXT NOT NULL, case_version INTEGER NOT NULL, kind TEXT NOT NULL, "
    "person TEXT NOT NULL, position BIGINT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
    "next_attempt_at DOUBLE PRECISION, lease_owner TEXT, lease_until DOUBLE PRECISION, last_code TEXT, "
    "updated_at TEXT)",
    "CREATE INDEX IF NOT EXISTS notices_due ON notices (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS notices_by_case ON notices (case_id)",
    "CREATE TABLE IF NOT EXISTS notice_opt_outs (person TEXT PRIMARY KEY, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS notice_cursor (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
]
INGESTED = (get_topic(NoticeQueued), get_topic(Case.NoticesOptedOut))
PENDING, SENT, FAILED, STOPPED = "pending", "sent", "failed", "stopped"


def create_tables(views: SqliteViews | PostgresViews) -> None:
    """Part of `minqing migrate`."""
    create_schema(views, TABLES)


@dataclass(frozen=True)
class Texts:
    sign: str = "民情"
    hotline: str = "12345"
    link: str = ""  # the office's page where a number is looked up; may hold {number}

    def render(self, kind: str, number: str) -> str:
        return render_text(kind, number, sign=self.sign, hotline=self.hotline, link=self.link)


Outcome = NoticeSent | NoticeFailed | NoticeStopped


def _final(event: Any) -> bool:
    return isinstance(event, NoticeSent | NoticeStopped) or (isinstance(event, NoticeFailed) and event.final)


class Notifier:
    def __init__(
        self,
        cases: Cases,
        views: SqliteViews | PostgresViews,
        sender: Sender,
        *,
        texts: Texts = Texts(),
        backoff: Sequence[float] = BACKOFF,
        max_attempts: int = MAX_ATTEMPTS,
        lease: float = 60.0,
        batch: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cases = cases
        self.views = views
        self.sender = sender
        self.texts = texts
        self.backoff = tuple(backoff) or (0.0,)
        self.max_attempts = max(1, max_attempts)
        self.lease = lease
        self.batch = batch
        self.clock = clock
        self.queue = LeasedQueue(views, "notices", worker="notify", lease=lease, clock=lambda: self.clock())

    @property
    def owner(self) -> str:
        return self.queue.owner

    def close(self) -> None:
        self.sender.close()

    # --- passes ----------------------------------------------------------------------

    def run_once(self) -> Counter[str]:
        """Index what the log queued, then try every due notice once; counts by outcome."""
        self.ingest()
        counts: Counter[str] = Counter()
        tried: set[str] = set()
        while fresh := [i for i in self._due(self.batch + len(tried)) if i not in tried]:
            for notice in fresh:
                tried.add(notice)
                counts[self.serve(notice)] += 1
        return counts

    def run_forever(self, stop: threading.Event, *, idle: float = 1.0) -> None:
        while not stop.is_set():
            try:
                if counts := self.run_once():
                    log.info("notices_pass", **counts)
            except Exception as e:  # a database blip must not end the worker
                log.warning("notices_pass_failed", error=repr(e))
            stop.wait(idle)

    def start_in_thread(self) -> Callable[[], None]:
        """The embedded setup (MINQING_NOTICES=in-process): a thread of the HTTP process."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run_forever, args=(stop,), name="notices", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(timeout=15)
            self.close()

        return halt

    # --- the outbox's index ------------------------------------------------------------

    def ingest(self) -> int:
        """Rows for the notices and opt-outs the log holds after the cursor, with the cursor."""
        rows = self.views.query("SELECT position FROM notice_cursor WHERE name = 'log'")
        after, total = (int(rows[0]["position"]) if rows else 0), 0
        while True:
            # Everything at or below the head read now has committed (positions follow commit order,
            # streams/feed.py): a short batch means the cursor may move to it, past other events.
            head = self.cases.recorder.max_notification_id() or 0
            batch = self.cases.recorder.select_notifications(start=after + 1, limit=self.batch, topics=INGESTED)
            reached = batch[-1].id if len(batch) == self.batch else max(head, batch[-1].id if batch else 0)
            if reached <= after:
                break
            with self.views.transaction() as cur:
                for n in batch:
                    event = self.cases.mapper.to_domain_event(n)
                    if isinstance(event, NoticeQueued):
                        cur.execute(
                            "INSERT INTO notices (id, case_id, case_version, kind, person, position, status, "
                            "attempts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING",
                            [str(event.originator_id), event.case_id, event.case_version, event.kind, event.person,
                             n.id, PENDING, _now()],
                        )  # fmt: skip
                    elif isinstance(event, Case.NoticesOptedOut) and (person := self._person(event.originator_id)):
                        cur.execute(
                            "INSERT INTO notice_opt_outs (person, position) VALUES (?, ?) "
                            "ON CONFLICT (person) DO NOTHING",
                            [person, n.id],
                        )
                cur.execute(
                    "INSERT INTO notice_cursor (name, position) VALUES ('log', ?) ON CONFLICT (name) DO UPDATE "
                    "SET position = excluded.position WHERE notice_cursor.position < excluded.position",
                    [reached],
                )
            after, total = reached, total + len(batch)
            if len(batch) < self.batch:
                break
        return total

    def _person(self, case_id: UUID) -> str | None:
        """The pseudonym of a case's petitioner (from its registration)."""
        petitioner = self.cases.get_case(case_id, version=1).petitioner
        return str(petitioner["person"]) if is_sealed(petitioner) else None

    def _due(self, limit: int) -> list[str]:
        due = "status = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        rows = self.queue.due("id", due, [PENDING, self.clock()], "ORDER BY position LIMIT ?", [limit])
        return [r["id"] for r in rows]

    def _claim(self, notice: str) -> bool:
        due = "status = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        return bool(self.queue.claim(notice, due, [PENDING, self.clock()]))

    def _release(self, notice: str) -> None:
        self.queue.release(notice)

    # --- one notice ----------------------------------------------------------------------

    def serve(self, notice: str) -> str:
        """Claim, decide, send, record; returns what happened (sent, failed, stopped, …)."""
        if not self._claim(notice):
            return "taken"
        settled = False
        try:
            events = list(self.cases.events.get(UUID(notice)))
            queued = events[0]
            assert isinstance(queued, NoticeQueued)
            if _final(events[-1]):
                settled = self._settle(notice, events[-1])  # recorded by a worker that stopped before the row
                return "settled"
            attempt = 1 + sum(isinstance(e, NoticeFailed) for e in events)
            outcome = self._attempt(queued, attempt, len(events) + 1)
            try:
                self.cases.save(outcome)
            except IntegrityError:
                return "raced"  # another worker recorded this attempt (its lease had run out): it stands
            settled = self._settle(notice, outcome)
            return _name(outcome)
        except Exception as e:  # the lease runs out and a later pass tries again
            log.warning("notice_serve_failed", notice=notice, error=repr(e))
            return "error"
        finally:
            if not settled:
                self._release(notice)

    def _attempt(self, queued: NoticeQueued, attempt: int, version: int) -> Outcome:
        common: dict[str, Any] = {
            "originator_id": queued.originator_id,
            "originator_version": version,
            "timestamp": self.cases.clock(),
            "case_id": queued.case_id,
            "case_version": queued.case_version,
            "number": queued.number,
            "units": queued.units,
            "actor": NOTIFIER,
            "kind": queued.kind,
        }
        if self.views.query("SELECT 1 AS x FROM notice_opt_outs WHERE person = ?", [queued.person]):
            return NoticeStopped(**common, stop_reason="opted_out")
        phone = self._phone(queued)
        if phone is None:
            vault = self.cases.vault
            erased = vault is not None and vault.erased(queued.person)
            return NoticeStopped(**common, stop_reason="erased" if erased else "unavailable")
        text = self.texts.render(queued.kind, queued.number)
        answer = self.sender.send(Message(str(queued.originator_id), phone, text))
        if answer.ok:
            return NoticeSent(**common, sender=self.sender.name, attempt=attempt, code=answer.code, text=text)
        final = attempt >= self.max_attempts
        log.warning("notice_failed", notice=str(queued.originator_id), attempt=attempt, code=answer.code, final=final)
        return NoticeFailed(**common, sender=self.sender.name, attempt=attempt, code=answer.code, final=final)

    def _phone(self, queued: NoticeQueued) -> str | None:
        """The petitioner's phone, unsealed now; None once their key is destroyed."""
        registered = self.cases.get_case(UUID(queued.case_id), version=1)
        envelope = registered.petitioner
        if self.cases.vault is None or not is_sealed(envelope) or envelope["person"] != queued.person:
            return None
        fields = self.cases.vault.unseal(envelope)
        phone = fields.get("phone") if fields else None
        return str(phone) if phone else None

    def _settle(self, notice: str, outcome: Any) -> bool:
        """The row follows the log, and the lease is given back, in one statement."""
        now = self.clock()
        if isinstance(outcome, NoticeFailed) and not outcome.final:
            delay = self.backoff[min(outcome.attempt, len(self.backoff)) - 1]
            status, attempts, code, next_at = PENDING, outcome.attempt, outcome.code, now + delay
        elif isinstance(outcome, NoticeStopped):
            status, attempts, code, next_at = STOPPED, 0, outcome.stop_reason, None
        else:
            status = SENT if isinstance(outcome, NoticeSent) else FAILED
            attempts, code, next_at = outcome.attempt, outcome.code, None
        with self.views.transaction() as cur:
            cur.execute(
                "UPDATE notices SET status = ?, attempts = ?, last_code = ?, next_attempt_at = ?, updated_at = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE id = ?",
                [status, attempts, code, next_at, _now(), notice],
            )
        return True


def _name(outcome: Outcome) -> str:
    if isinstance(outcome, NoticeFailed) and not outcome.final:
        return "retrying"
    return {NoticeSent: SENT, NoticeFailed: FAILED, NoticeStopped: STOPPED}[type(outcome)]


def _now() -> str:
    return datetime.now(UTC).isoformat()
