"""Group commit (issue 15): concurrent commands of one process are saved in one transaction, each
still decided on its case's current state and answered on its own; positions follow commit order,
so a reader tailing the log never skips or repeats a position, with writers in several processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from cases.case import Case
from cases.clock import local_date
from cases.vocabulary import HandlingType, Tier
from commands.cases import Cases, CommandResult
from commands.records import event_position
from config.settings import Settings
from service import build_cases
from tests.factories import CLERK, GRID_LEADER, LEADER_OF_GRID, SECURITY, registration


def held(cases: Cases, arrivals: int) -> Callable[[], None]:
    """Makes the first batch wait (at most 10 s) until `arrivals` more saves queue behind it, so the
    test knows they go together. Returns what restores the group's own save."""
    group = cases.group_commit
    original = group._save_many
    first = threading.Event()

    def waiting(events: list[Any]) -> Any:
        if not first.is_set():
            first.set()
            deadline = time.monotonic() + 10
            while len(group._queue) < arrivals and time.monotonic() < deadline:
                time.sleep(0.002)
        return original(events)

    group._save_many = waiting  # type: ignore[method-assign]
    return lambda: setattr(group, "_save_many", original)


def together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Runs the jobs in threads at once; their results (or exceptions) in order."""
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_commands_share_one_transaction_and_each_gets_its_own_answer(cases: Cases) -> None:
    ids = [UUID(cases.register(CLERK, **registration()).case_id) for _ in range(8)]
    batches, saved = cases.group_commit.batches, cases.group_commit.saved
    restore = held(cases, arrivals=7)
    try:
        results: list[CommandResult] = together(
            [(lambda c=c: cases.classify(c, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)) for c in ids]
        )
    finally:
        restore()
    assert all(isinstance(r, CommandResult) for r in results), results
    assert cases.group_commit.saved - saved == 8
    assert cases.group_commit.batches - batches < 8  # some went together (with the hold: two batches)
    for case_id, result in zip(ids, results, strict=True):
        assert result.case_id == str(case_id) and result.version == 2
        assert result.position == event_position(cases.recorder, case_id, 2)
    assert len({r.position for r in results}) == 8


def test_a_conflict_in_a_batch_fails_only_its_own_command(cases: Cases, settings: Settings) -> None:
    ids = [UUID(cases.register(CLERK, **registration()).case_id) for _ in range(5)]
    loaded = [cases.get_case(c) for c in ids]
    # Another process classifies the third case after this one loaded it: that decision is stale.
    other = build_cases(settings)
    try:
        other.classify(ids[2], CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.BIG)
    finally:
        other.close()
    for case in loaded:
        at = cases.clock()
        version = cases.policy.in_force(local_date(at))
        case.classify(
            CLERK,
            at,
            handling_type=HandlingType.COMMITTED,
            tier=Tier.SMALL,
            deadlines=version.deadlines(HandlingType.COMMITTED, Tier.SMALL, local_date(case.registered_at)),
            policy_version=version.version,
        )
    restore = held(cases, arrivals=4)
    try:
        outcomes = together([(lambda c=c: cases.save(c)) for c in loaded])
    finally:
        restore()
    assert isinstance(outcomes[2], IntegrityError)
    for i in (0, 1, 3, 4):
        recordings = outcomes[i]
        assert [r.domain_event.originator_version for r in recordings] == [2], outcomes[i]
        assert recordings[0].notification.id == event_position(cases.recorder, ids[i], 2)
    assert cases.get_case(ids[2]).tier == Tier.BIG  # the other writer's decision stands
    # And through the command cycle, the loser reloads and decides again on the current state.
    assert cases.assign(ids[2], CLERK, assignee=LEADER_OF_GRID).version == 3


def test_concurrent_commands_on_one_case_still_each_apply_once(cases: Cases) -> None:
    case_id = UUID(cases.register(CLERK, **registration()).case_id)
    cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.BIG)
    cases.assign(case_id, CLERK, assignee=LEADER_OF_GRID)
    cases.accept(case_id, GRID_LEADER)
    restore = held(cases, arrivals=5)
    try:
        results = together(
            [(lambda n=n: cases.report_progress(case_id, GRID_LEADER, progress=f"report {n}")) for n in range(6)]
        )
    finally:
        restore()
    assert all(isinstance(r, CommandResult) for r in results), results
    assert sorted(r.version for r in results) == list(range(5, 11))
    case: Case = cases.get_case(case_id)
    assert case.progress_reports == 6 and case.version == 10


# --- several writer processes and a tailing reader (PostgreSQL: the table lock is what is proven) ---


def _writer(url: str, rounds: int, out: Any) -> None:
    app = build_cases(Settings(database_url=url, **SECURITY))
    done = 0

    def work() -> None:
        nonlocal done
        for _ in range(rounds):
            case_id = UUID(app.register(CLERK, **registration()).case_id)
            app.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
            done += 2

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((done, app.group_commit.batches, app.group_commit.saved))
    app.close()


@pytest.fixture
def postgres(settings: Settings) -> Iterator[Settings]:
    if not settings.database_url:
        pytest.skip("the log table lock and several writer processes: PostgreSQL")
    yield settings


def test_a_tailing_reader_never_skips_or_repeats_a_position_with_writers_in_several_processes(
    postgres: Settings,
) -> None:
    assert postgres.database_url is not None
    reader = build_cases(postgres)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    writers = [context.Process(target=_writer, args=(postgres.database_url, 15, out)) for _ in range(3)]
    for w in writers:
        w.start()
    seen: list[int] = []
    last = 0
    try:
        # Tails the log as followers do: after the last position read, never expecting last + 1.
        while any(w.is_alive() for w in writers) or last < (reader.recorder.max_notification_id() or 0):
            for n in reader.recorder.select_notifications(last, 500, inclusive_of_start=False):
                seen.append(n.id)
                last = n.id
        for w in writers:
            w.join(timeout=60)
        reports = [out.get(timeout=10) for _ in writers]
        logged = [n.id for n in reader.recorder.select_notifications(0, 10**6)]
    finally:
        for w in writers:
            if w.is_alive():
                w.kill()
        reader.close()
    assert all(w.exitcode == 0 for w in writers)
    commands = sum(r[0] for r in reports)
    assert commands == 3 * 4 * 15 * 2
    assert len(seen) == len(set(seen))  # no position read twice
    assert seen == sorted(seen)
    assert seen == logged  # and none skipped: the tail read every position the log holds, in order
    # Registering writes three records (the case, its number, its notice to the resident), classifying one.
    assert len(logged) == commands // 2 * 4
    assert sum(r[1] for r in reports) < sum(r[2] for r in reports)  # and saves did go together


def test_concurrent_loads_are_read_together_each_getting_its_own_case(cases: Cases) -> None:
    group = cases.group_load
    if group is None:
        pytest.skip("loads are grouped on PostgreSQL")
    ids = [UUID(cases.register(CLERK, **registration(title=f"第{n}件")).case_id) for n in range(6)]
    cases.classify(ids[0], CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
    original, first = group._select_many, threading.Event()

    def waiting(keys: list[UUID]) -> Any:
        if not first.is_set():
            first.set()
            deadline = time.monotonic() + 10
            while len(group._queue) < 6 and time.monotonic() < deadline:
                time.sleep(0.002)
        return original(keys)

    group._select_many = waiting  # type: ignore[method-assign]
    batches = group.batches
    unknown = UUID(int=7)
    try:
        loaded = together([(lambda c=c: cases.get_case(c)) for c in [*ids, unknown]])
    finally:
        group._select_many = original  # type: ignore[method-assign]
    assert group.batches - batches < 7
    assert [c.id for c in loaded[:6]] == ids
    assert [c.title for c in loaded[:6]] == [f"第{n}件" for n in range(6)]
    assert loaded[0].version == 2 and loaded[0].tier == Tier.SMALL and loaded[1].version == 1
    assert type(loaded[6]).__name__ == "CaseNotFoundError"
