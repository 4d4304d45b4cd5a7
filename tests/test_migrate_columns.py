"""`minqing migrate` brings a ledger made by an older release up to today's columns, so a column
appended to the ledger needs no hand-written migration (docs/read-models.md)."""

from __future__ import annotations

from config.settings import Settings
from projections.ledger import CASE_COLUMNS
from service import migrate
from storage.views import open_views

OLD_RELEASE = ("case_id", "number", "status", "returned_count", "version", "position")


def test_migrate_adds_every_ledger_column_an_older_release_lacked(settings: Settings) -> None:
    views = open_views(settings)
    try:
        with views.transaction() as cur:
            cur.execute("DROP TABLE ledger_cases")
            columns = ", ".join(f"{c} TEXT" for c in OLD_RELEASE)
            cur.execute(f"CREATE TABLE ledger_cases ({columns}, PRIMARY KEY (case_id))")
            cur.execute("INSERT INTO ledger_cases (case_id, number, status) VALUES ('c1', 'MW1', 'closed')")
        migrate(settings)
        migrate(settings)  # idempotent
        rows = views.query(f"SELECT {', '.join(CASE_COLUMNS)} FROM ledger_cases")
    finally:
        views.close()
    assert len(rows) == 1
    assert rows[0]["number"] == "MW1"  # kept
    assert rows[0]["whistle_count"] == 0  # a counter the old release lacked starts at zero
    assert rows[0]["next_due"] is None  # filled by `minqing rebuild ledger`


def test_postgres_gets_the_boards_covering_index(settings: Settings) -> None:
    views = open_views(settings)
    try:
        if views.dialect == "sqlite":
            rows = views.query("SELECT name FROM sqlite_master WHERE name = 'ledger_cases_board'")
            assert rows == []  # SQLite has no INCLUDE: it keeps the plain partial index
        else:
            rows = views.query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexname = 'ledger_cases_board'"
            )
            assert "INCLUDE" in rows[0]["indexdef"] and "WHERE (status <> 'closed'::text)" in rows[0]["indexdef"]
    finally:
        views.close()
