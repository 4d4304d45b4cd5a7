"""Group commit: the saves of concurrent commands in one process go to the log together.

Every save on PostgreSQL takes the log table's EXCLUSIVE lock (so that positions follow commit
order and no tailing reader skips an event), sends NOTIFY and commits: one transaction, one lock
and one WAL flush per command. Here the commands that arrive while a save is under way wait for
it and are then saved together, in ONE call of the library's save: one transaction, one
acquisition of the lock, one insert, one commit. Nothing changes for a reader: the batch is one
transaction under the same lock, so positions still follow commit order.

Each command is still its own: it was decided on its case as loaded (the unique constraint on
`(originator_id, originator_version)` refuses any event decided on a stale version), and it gets
its own answer — its own recordings (versions, positions) or its own `IntegrityError`, on which
the command reloads and re-runs exactly as it did when it saved alone. A batch that fails on a
conflict is not failed as a whole: the conflicting commands are found (one query for the
versions already taken), answered with their conflict, and the others are saved again without
them. Any other failure (the database gone) is every waiting command's failure.

No extra thread: the first thread to arrive leads, saves the batch, answers the others and hands
the lead to the next waiting thread if more arrived meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Recording
from eventsourcing.persistence import IntegrityError

from commands.wakeup import Wakeup

MAX_BATCH = 64


class _Pending:
    __slots__ = ("done", "error", "events", "ids", "lead", "recordings", "wake")

    def __init__(self, objs: Sequence[Any]) -> None:
        # Collected once, here: a failed save would otherwise have emptied the aggregates.
        self.events: list[Any] = []
        for obj in objs:
            if obj is None:
                continue
            self.events.extend(obj.collect_events() if hasattr(obj, "collect_events") else [obj])
        self.ids = {e.originator_id for e in self.events}
        self.wake = Wakeup()
        self.lead = False
        self.recordings: list[Recording[Any]] = []
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """`save(*objs)` behaves like `Application.save(*objs)` for one command (its recordings, or
    `IntegrityError` if one of its events conflicts) while concurrent callers share transactions.

    `save_many(objs)` is the application's own save of several objects in one transaction;
    `taken(keys)` returns which `(originator_id, version)` pairs the log already holds; `isolate(error)`
    says an error other than a conflict belongs to one command of the batch (the batch is then
    saved one by one, each with its own outcome) rather than to all (the database gone)."""

    def __init__(
        self,
        save_many: Callable[[list[Any]], list[Recording[Any]]],
        taken: Callable[[list[tuple[UUID, int]]], set[tuple[UUID, int]]],
        max_batch: int = MAX_BATCH,
        isolate: Callable[[BaseException], bool] = lambda error: False,
    ) -> None:
        self._save_many = save_many
        self._taken = taken
        self._isolate = isolate
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches = 0  # counters, for the benchmark's report and the tests
        self.saved = 0

    def save(self, *objs: Any) -> list[Recording[Any]]:
        pending = _Pending(objs)
        with self._lock:
            self._queue.append(pending)
            if not self._busy:
                self._busy = pending.lead = True
        if not pending.lead:
            pending.wake.wait()
        if not pending.done:  # asked to lead: this thread saves the next batch (its own among them)
            self._lead()
        if pending.error is not None:
            raise pending.error
        return pending.recordings

    def _lead(self) -> None:
        with self._lock:
            batch: list[_Pending] = []
            ids: set[UUID] = set()
            later: list[_Pending] = []
            for p in self._queue:
                # Two commands on one stream in one insert would fail together: the second waits.
                if len(batch) < self._max_batch and not (p.ids & ids):
                    batch.append(p)
                    ids |= p.ids
                else:
                    later.append(p)
            self._queue = later
        try:
            self._flush(batch)
        except BaseException as error:  # e.g. the database gone while looking for the conflicts
            for p in batch:
                if p.error is None and not p.recordings:
                    p.error = error
        finally:
            for p in batch:
                p.done = True
                p.wake.set()
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._busy = False

    def _flush(self, batch: list[_Pending]) -> None:
        while batch:
            try:
                recordings = self._save_many([e for p in batch for e in p.events])
            except IntegrityError as error:
                conflicted = self._conflicted(batch)
                if not conflicted:
                    # Not a version taken by someone else: save one by one, each with its own outcome.
                    self._one_by_one(batch)
                    return
                for p in conflicted:
                    p.error = IntegrityError(str(error))
                batch = [p for p in batch if p not in conflicted]
                continue
            except BaseException as error:
                if len(batch) > 1 and self._isolate(error):
                    self._one_by_one(batch)  # an error of one command's own (`isolate`): each its own outcome
                    return
                for p in batch:
                    p.error = error
                return
            self.batches += 1
            self.saved += len(batch)
            for p in batch:
                p.recordings = [r for r in recordings if r.domain_event.originator_id in p.ids]
            return

    def _conflicted(self, batch: list[_Pending]) -> list[_Pending]:
        wanted: dict[tuple[UUID, int], _Pending] = {}
        for p in batch:
            for event in p.events:
                wanted[(event.originator_id, event.originator_version)] = p
        taken = self._taken(list(wanted))
        found: list[_Pending] = []
        for key in taken:
            if wanted[key] not in found:
                found.append(wanted[key])
        return found

    def _one_by_one(self, batch: list[_Pending]) -> None:
        for p in batch:
            try:
                p.recordings = self._save_many(p.events)
            except BaseException as error:
                p.error = error
            else:
                self.batches += 1
                self.saved += 1
