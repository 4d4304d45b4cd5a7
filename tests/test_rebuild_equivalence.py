"""A catch-up from empty (rows kept between batches, new rows copied in, the log read
in bulk) builds exactly the ledger, whistles and board states that the live way builds
batch by batch, on SQLite and PostgreSQL, at several batch sizes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from commands.cases import Cases
from config.settings import Settings
from demo.stories import load_demo
from projections import catch_up, rollup
from projections.catch_up import CachedRows
from projections.ledger import Ledger
from projections.runner import Runner, create_tables
from storage.views import PostgresViews, SqliteViews
from tests.conftest import PG_URL

NOW = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
TABLES = {
    "ledger_cases": "case_id",
    "ledger_whistles": "case_id, whistle_no, department",
    "board_states": "case_id, since_version",
    # Summed from the rows once at the end of a catch-up from empty, by delta the live way.
    rollup.TABLE: ", ".join(rollup.KEY),
    rollup.WHISTLE_TABLE: ", ".join(rollup.WHISTLE_KEY),
}


class WatchedLedger(Ledger):
    """The ledger, telling whether each catch-up kept its rows between batches."""

    def __init__(self, cases: Cases) -> None:
        super().__init__(cases.vault)
        self.cached: list[CachedRows | None] = []

    @contextmanager
    def caching(self, views: SqliteViews | PostgresViews, ahead: int = 0) -> Iterator[CachedRows | None]:
        with super().caching(views, ahead) as cached:
            self.cached.append(cached)
            yield cached


@pytest.fixture
def demo(cases: Cases) -> Cases:
    # Every path of the lifecycle: whistles, transfers, reopening, duplicates, returns, supervision.
    load_demo(cases, count=60, now=NOW)
    return cases


@pytest.fixture
def fresh_views(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """Makes empty, migrated view stores beside the test's own, and removes them afterwards."""
    made: list[tuple[SqliteViews | PostgresViews, str | None]] = []

    def make() -> SqliteViews | PostgresViews:
        views: SqliteViews | PostgresViews
        schema = None
        if settings.database_url:
            schema = f"rebuild_eq_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            views = PostgresViews(f"{PG_URL}?schema={schema}")
        else:
            views = SqliteViews(tmp_path / f"views-{len(made)}.sqlite3")
        made.append((views, schema))
        create_tables(views, Ledger())
        return views

    yield make
    for views, schema in made:
        views.close()
        if schema:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


def contents(views: SqliteViews | PostgresViews) -> dict[str, list[dict[str, Any]]]:
    tables = {table: views.query(f"SELECT * FROM {table} ORDER BY {order}") for table, order in TABLES.items()}
    # Nothing left marked stale once a catch-up has ended (projections.rollup.STALE).
    return tables | {"tracking": views.query("SELECT projection FROM projection_tracking ORDER BY projection")}


def built_the_live_way(cases: Cases, views: SqliteViews | PostgresViews, batch_size: int) -> None:
    runner = Runner(cases, views, Ledger(cases.vault), batch_size=batch_size)
    while runner.run_once():
        pass


@pytest.mark.parametrize("batch_size", [1, 37, 250])
def test_a_catch_up_from_empty_equals_the_live_way(demo: Cases, fresh_views: Any, batch_size: int) -> None:
    live = fresh_views()
    built_the_live_way(demo, live, batch_size=97)
    expected = contents(live)
    assert len(expected["ledger_cases"]) == 60 and expected["ledger_whistles"] and expected["board_states"]

    fast = fresh_views()
    ledger = WatchedLedger(demo)
    runner = Runner(demo, fast, ledger, batch_size=batch_size, catch_up_batch=batch_size)
    assert runner.catch_up() > 0
    assert ledger.cached and ledger.cached[0] is not None and ledger.cached[0].complete  # the fast way was taken
    assert ledger.rows.__class__ is not CachedRows  # and left when done
    assert runner.position == (demo.recorder.max_notification_id() or 0)
    assert contents(fast) == expected


def test_a_catch_up_stopped_halfway_is_finished_the_live_way_to_the_same_rows(demo: Cases, fresh_views: Any) -> None:
    live = fresh_views()
    built_the_live_way(demo, live, batch_size=1000)
    head = demo.recorder.max_notification_id() or 0

    views = fresh_views()
    ledger = WatchedLedger(demo)
    runner = Runner(demo, views, ledger, batch_size=50, catch_up_batch=50)
    runner.catch_up(stop=head // 2)
    # The tables now hold rows: the rest is applied the live way (nothing kept between batches).
    runner.catch_up()
    assert [c is not None for c in ledger.cached] == [True, False]
    assert runner.position == head
    assert contents(views) == contents(live)


def test_a_failed_batch_drops_the_rows_kept_and_the_catch_up_resumes_exactly(demo: Cases, fresh_views: Any) -> None:
    live = fresh_views()
    built_the_live_way(demo, live, batch_size=1000)

    class FailsOnce(WatchedLedger):
        failed = False

        def apply_batch(self, cur: Any, events: list[tuple[int, Any]]) -> None:
            super().apply_batch(cur, events)  # rows kept in memory have moved on…
            if len(self.cached) == 1 and not self.failed and events[0][0] > 200:
                self.failed = True
                raise RuntimeError("the database went away")  # …but the batch rolls back

    views = fresh_views()
    ledger = FailsOnce(demo)
    runner = Runner(demo, views, ledger, batch_size=100, catch_up_batch=100)
    with pytest.raises(RuntimeError):
        runner.catch_up()
    assert ledger.failed and runner.position > 0
    runner.catch_up()
    assert contents(views) == contents(live)


def test_a_catch_up_that_outgrows_its_memory_reads_back_what_it_forgot(
    demo: Cases, fresh_views: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = fresh_views()
    built_the_live_way(demo, live, batch_size=1000)
    monkeypatch.setattr(catch_up, "CACHE_LIMIT", 8)  # the oldest half forgotten past 8 cases

    views = fresh_views()
    ledger = WatchedLedger(demo)
    Runner(demo, views, ledger, batch_size=40, catch_up_batch=40).catch_up()
    kept = ledger.cached[0]
    assert kept is not None and not kept.complete and len(kept.known["ledger_cases"]) <= 8
    assert contents(views) == contents(live)


def test_a_long_catch_up_drops_the_indexes_meanwhile_and_makes_them_again(
    demo: Cases, fresh_views: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = fresh_views()
    built_the_live_way(demo, live, batch_size=1000)
    monkeypatch.setattr(catch_up, "INDEXES_AHEAD", 1)

    views = fresh_views()
    indexes = "SELECT * FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname"
    before = views.query(indexes) if isinstance(views, PostgresViews) else []
    seen_during: list[int] = []

    class Watching(WatchedLedger):
        def apply_batch(self, cur: Any, events: list[tuple[int, Any]]) -> None:
            if isinstance(views, PostgresViews):
                seen_during.append(len(cur.execute(indexes)))
            super().apply_batch(cur, events)

    Runner(demo, views, Watching(demo), batch_size=100, catch_up_batch=100).catch_up()
    assert contents(views) == contents(live)
    if isinstance(views, PostgresViews):
        assert before and max(seen_during) < len(before)  # only the keys while catching up
        assert views.query(indexes) == before


def test_a_catch_up_that_stops_before_summing_its_roll_up_leaves_it_to_the_next_one(
    demo: Cases, fresh_views: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = fresh_views()
    built_the_live_way(demo, live, batch_size=1000)
    summed_again = rollup.summed_again

    def dies(cur: Any) -> None:
        raise RuntimeError("the process died after its last batch")

    monkeypatch.setattr(rollup, "summed_again", dies)
    views = fresh_views()
    runner = Runner(demo, views, WatchedLedger(demo), batch_size=100, catch_up_batch=100)
    with pytest.raises(RuntimeError):
        runner.catch_up()
    assert runner.position == (demo.recorder.max_notification_id() or 0)  # every batch committed…
    stale = views.query("SELECT projection FROM projection_tracking WHERE projection = ?", [rollup.STALE])
    assert stale and not views.query(f"SELECT * FROM {rollup.TABLE}")  # …but the roll-up held back

    monkeypatch.setattr(rollup, "summed_again", summed_again)
    assert Runner(demo, views, WatchedLedger(demo)).catch_up() == 0  # nothing to read, and yet:
    assert contents(views) == contents(live)
