"""The log's own PostgreSQL save (commands/recorders.py, issue 15): the library's statements sent as
binary arrays in one pipeline. Each event must get back the position the log gave it, in the order
of the batch, its topic and state must come back byte for byte, a failed batch must leave nothing
behind (and the connection usable), and every save must still wake the listeners."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from commands.cases import Cases
from commands.recorders import PostgresLog
from config.settings import Settings

# What a text dump of a composite must escape, and what a binary one must simply carry.
TOPICS = ["cases.case:Case.Registered", 'a "quoted", (parenthesised) \\ topic', "案件:受理", ""]
STATES = [b"", b"\x00\x01\xff", b'{"title": "\\u6e17\\u6c34", "q": "\\"", "p": "(,)"}', "楼顶渗水".encode() * 300]


@pytest.fixture
def log(cases: Cases, settings: Settings) -> Iterator[PostgresLog]:
    if not settings.database_url:
        pytest.skip("PostgreSQL's save")
    assert isinstance(cases.recorder, PostgresLog)
    # A table of its own, so its channel is heard from no other test sharing the database.
    recorder = PostgresLog(cases.recorder.datastore, events_table_name=f"log_{uuid4().hex[:12]}")
    recorder.create_table()
    yield recorder


def _batch(streams: list[UUID], versions: int) -> list[StoredEvent]:
    # Streams interleaved, as a group commit's batch holds several commands' events.
    return [
        StoredEvent(stream, version, TOPICS[(i + version) % len(TOPICS)], STATES[(i * version) % len(STATES)])
        for version in range(1, versions + 1)
        for i, stream in enumerate(streams)
    ]


def _positions(log: PostgresLog, events: list[StoredEvent]) -> list[int]:
    by_key = {(n.originator_id, n.originator_version): n.id for n in log.select_notifications(1, 10**6)}
    return [by_key[(e.originator_id, e.originator_version)] for e in events]


def test_each_event_of_a_batch_gets_back_its_own_position_in_the_order_of_the_batch(log: PostgresLog) -> None:
    before = log.max_notification_id() or 0
    first = _batch([uuid4() for _ in range(5)], versions=3)
    # A version past 32 bits, as a long-lived stream (or a snapshot's numbering) may reach.
    second = [*_batch([uuid4() for _ in range(2)], versions=2), StoredEvent(uuid4(), 2**40 + 1, TOPICS[2], STATES[3])]
    first_ids = log.insert_events(first)
    second_ids = log.insert_events(second)
    assert first_ids == _positions(log, first)
    assert second_ids == _positions(log, second)
    ids = [*first_ids, *second_ids]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > before
    stored = {(n.originator_id, n.originator_version): n for n in log.select_notifications(before + 1, 100)}
    for event in [*first, *second]:
        back = stored[(event.originator_id, event.originator_version)]
        assert (back.topic, back.state) == (event.topic, event.state)


def test_a_batch_with_one_conflict_saves_nothing_and_the_next_save_goes_through(log: PostgresLog) -> None:
    taken = uuid4()
    log.insert_events([StoredEvent(taken, 1, TOPICS[0], STATES[1])])
    before = log.max_notification_id()
    fresh = [uuid4() for _ in range(3)]
    with pytest.raises(IntegrityError):
        log.insert_events([*_batch(fresh, versions=1), StoredEvent(taken, 1, TOPICS[0], STATES[2])])
    assert log.max_notification_id() == before
    assert all(not log.select_events(stream) for stream in fresh)
    # The failed transaction was rolled back: the connections serve the next saves (more saves than
    # the pool holds connections, so each connection that served the failed batch serves one again).
    for _ in range(6):
        events = _batch([uuid4()], versions=2)
        assert log.insert_events(events) == _positions(log, events)


def test_every_save_notifies_the_log_channel(log: PostgresLog, settings: Settings) -> None:
    assert settings.database_url is not None
    url, _, _ = settings.database_url.partition("?")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{log.channel_name}"')
        log.insert_events(_batch([uuid4()], versions=1))
        heard = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in heard] == [log.channel_name]
