"""The Cases application on a real store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime
from uuid import UUID

import chinese_calendar
import pytest

import commands.cases
from cases.vocabulary import HandlingType, Tier
from commands.cases import Cases, Idempotency
from commands.errors import IdempotencyKeyReusedError, InvalidReferenceError, StaleVersionError
from commands.records import CaseNumberIssued
from tests.conftest import Clock
from tests.factories import CLERK, GRID, GRID_LEADER, LEADER_OF_GRID, OTHER_STREET_GRID, TOWNSHIP, registration


def position(cases: Cases) -> int:
    return cases.recorder.max_notification_id() or 0


def accepted_case(cases: Cases) -> UUID:
    case_id = UUID(cases.register(CLERK, **registration()).case_id)
    cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.BIG)
    cases.assign(case_id, CLERK, assignee=LEADER_OF_GRID)
    cases.accept(case_id, GRID_LEADER)
    return case_id


def test_case_numbers_name_the_street_and_day_and_are_reserved(cases: Cases) -> None:
    first = cases.register(CLERK, **registration())
    elsewhere = cases.register(CLERK, **registration(grid=OTHER_STREET_GRID))
    assert re.fullmatch(r"350105001-20260302-[0-9A-HJKMNP-TV-Z]{5}", first.number)
    assert elsewhere.number.startswith("350105002-20260302-")
    reservation = cases.recorder.select_events(CaseNumberIssued.stream_id(first.number))
    assert len(reservation) == 1


def test_a_number_already_taken_is_never_given_twice(cases: Cases, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = cases.register(CLERK, **registration()).number
    suffixes = iter([taken[-5:], "ZZZZZ"])
    monkeypatch.setattr(
        commands.cases, "case_number", lambda street, day, rng: f"{street}-{day:%Y%m%d}-{next(suffixes)}"
    )
    second = cases.register(CLERK, **registration())
    assert second.number.endswith("-ZZZZZ") and second.number != taken


def test_a_registration_is_stored_and_read_back(cases: Cases) -> None:
    result = cases.register(CLERK, **registration())
    case = cases.get_case(UUID(result.case_id))
    assert case.title == "楼顶渗水" and "phone" not in case.petitioner  # only the sealed envelope
    assert cases.vault is not None and cases.vault.unseal(case.petitioner)["phone"] == "13812341234"
    assert case.registered_at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert case.units["street_name"] == "罗星街道"
    stored = cases.recorder.select_notifications(start=result.position, limit=1)[0]
    assert stored.originator_id == case.id and stored.topic == "cases.case:Case.Registered"


def test_a_micro_grid_resolves_to_its_grid_and_parents(cases: Cases) -> None:
    micro = f"{GRID}01"
    case = cases.get_case(UUID(cases.register(CLERK, **registration(grid=micro)).case_id))
    assert case.units["grid"] == GRID and case.units["micro_grid"] == micro


@pytest.mark.parametrize(
    ("override", "field"),
    [({"grid": "999"}, "grid"), ({"channel": "fax"}, "channel"), ({"category": "ufo"}, "category")],
)
def test_unknown_reference_data_is_refused_and_nothing_is_stored(cases: Cases, override: dict, field: str) -> None:
    before = position(cases)
    with pytest.raises(InvalidReferenceError) as raised:
        cases.register(CLERK, **registration(**override))
    assert raised.value.field == field
    assert position(cases) == before


def test_an_unknown_department_cannot_be_whistled(cases: Cases) -> None:
    case_id = accepted_case(cases)
    before = position(cases)
    with pytest.raises(InvalidReferenceError) as raised:
        cases.whistle(case_id, TOWNSHIP, departments=["zhujian", "nasa"], reason="r")
    assert raised.value.field == "departments[1]"
    assert position(cases) == before


def test_a_retry_with_the_same_idempotency_key_appends_nothing(cases: Cases) -> None:
    payload = registration()
    key = Idempotency.of("retry-1", "register", None, payload)
    first = cases.register(CLERK, **payload, idempotency=key)
    after_first = position(cases)
    again = cases.register(CLERK, **payload, idempotency=key)
    assert (again.case_id, again.number, again.version) == (first.case_id, first.number, first.version)
    assert again.replayed and position(cases) == after_first


def test_an_idempotency_key_reused_for_another_request_is_refused(cases: Cases) -> None:
    cases.register(CLERK, **registration(), idempotency=Idempotency.of("k", "register", None, registration()))
    other = registration(title="噪声扰民")
    with pytest.raises(IdempotencyKeyReusedError):
        cases.register(CLERK, **other, idempotency=Idempotency.of("k", "register", None, other))


def test_a_stale_expected_version_is_refused(cases: Cases) -> None:
    case_id = UUID(cases.register(CLERK, **registration()).case_id)
    cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
    with pytest.raises(StaleVersionError):
        cases.assign(case_id, CLERK, assignee=LEADER_OF_GRID, expected_version=1)
    assert cases.assign(case_id, CLERK, assignee=LEADER_OF_GRID, expected_version=2).version == 3


def test_concurrent_commands_on_one_case_all_apply_on_fresh_state(cases: Cases) -> None:
    case_id = accepted_case(cases)
    start_version = cases.get_case(case_id).version
    workers, each = 4, 5
    failures: list[BaseException] = []

    def report(n: int) -> None:
        try:
            for i in range(each):
                cases.report_progress(case_id, GRID_LEADER, progress=f"worker {n} report {i}")
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=report, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    case = cases.get_case(case_id)
    assert case.progress_reports == workers * each
    assert case.version == start_version + workers * each


def test_concurrent_registrations_never_share_a_number(cases: Cases) -> None:
    numbers: list[str] = []
    lock = threading.Lock()

    def register() -> None:
        for _ in range(5):
            number = cases.register(CLERK, **registration()).number
            with lock:
                numbers.append(number)

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(numbers) == 20 and len(set(numbers)) == 20


def test_deadlines_in_an_unannounced_year_are_provisional_and_recomputable(
    cases: Cases, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.now = datetime(2099, 3, 2, 1, 0, tzinfo=UTC)  # a Monday in a year with no table
    case_id = UUID(cases.register(CLERK, **registration()).case_id)
    cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
    deadlines = cases.get_case(case_id).deadlines
    assert deadlines["accept"] == {**deadlines["accept"], "due": "2099-03-03", "provisional": True}
    assert cases.recompute_deadlines(case_id, CLERK).changed is False

    # The State Council's table for 2099 arrives: 3 March is a holiday.
    def announced(day: date) -> bool:
        return day != date(2099, 3, 3) and day.weekday() < 5

    monkeypatch.setattr(chinese_calendar, "is_workday", announced)
    result = cases.recompute_deadlines(case_id, CLERK)
    assert result.changed
    recomputed = cases.get_case(case_id).deadlines
    assert recomputed["accept"]["due"] == "2099-03-04" and not recomputed["accept"]["provisional"]


def test_the_orjson_transcoder_round_trips_typed_values_at_any_depth() -> None:
    # UUIDs are written natively by orjson and come back as str: events hold none.
    from datetime import UTC, datetime
    from decimal import Decimal

    from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, UUIDAsHex

    from commands.transcoder import OrjsonTranscoder

    transcoder = OrjsonTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    moment = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    state = {
        "timestamp": moment,
        "nested": {"at": moment, "list": [{"at": moment}], "amount": Decimal("1.50")},
        "text": 'a description that mentions "_type_" literally',
    }
    assert transcoder.decode(transcoder.encode(state)) == state
    assert transcoder.decode(transcoder.encode({"timestamp": moment, "title": "楼顶渗水"})) == {
        "timestamp": moment,
        "title": "楼顶渗水",
    }
