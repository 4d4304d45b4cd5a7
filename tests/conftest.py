"""Every store-backed test runs twice: on a SQLite file and on PostgreSQL.

PostgreSQL tests each get a fresh schema, so they are isolated without
truncating anything. With MINQING_REQUIRE_POSTGRES=1 (as in CI) an unreachable
PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from commands.cases import Cases
from config.settings import Settings
from service import build_cases, create_app, migrate
from tests.api_steps import Driver
from tests.factories import SECURITY, DefaultReader
from tests.serving import serve

PG_URL = os.environ.get("MINQING_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("MINQING_REQUIRE_POSTGRES", "") not in ("", "0", "n", "no")


class Clock:
    """A settable clock: tests decide what time it is."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


# Monday 2026-03-02, 09:00 in China: an ordinary working week.
MONDAY_MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_MORNING)


def _postgres_schema() -> Iterator[str]:
    try:
        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but unreachable at {PG_URL}: {e}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield schema
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A migrated store (`minqing migrate`), as every process but `migrate` expects."""
    if request.param == "sqlite":
        settings = Settings(sqlite_path=tmp_path / "minqing.sqlite3", **SECURITY)
        migrate(settings)
        yield settings
        return
    for schema in _postgres_schema():
        settings = Settings(database_url=f"{PG_URL}?schema={schema}&pool_size=4&max_overflow=8", **SECURITY)
        migrate(settings)
        yield settings


@pytest.fixture
def cases(settings: Settings, clock: Clock) -> Iterator[Cases]:
    app = build_cases(settings)
    app.clock = clock
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient]:
    app = create_app(settings, log_cache=False)
    with TestClient(app) as test_client:
        app.state.cases.clock = clock
        # A request without its own Authorization goes as a reader: an auditor (everything, personal
        # data masked), or an integrator for its webhook subscriptions. Commands send their actor's token.
        test_client.auth = DefaultReader()
        yield test_client


@pytest.fixture
def driver(client: TestClient) -> Driver:
    return Driver(client)


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """`minqing serve` in a subprocess with two workers: real HTTP."""
    yield from serve(settings, "--workers", "2")
