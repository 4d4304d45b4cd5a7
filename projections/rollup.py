"""The ledger's roll-up (ledger_rollup): the per-case counts of projections.counts
summed per key, so the rates, the reports and the whistle evaluation of a
province sum a few thousand rows instead of scanning a million.

It is kept by the ledger projection in the batch's own transaction (so it
commits with the rows and the position, exactly once) and only ever by delta,
in SQL: before the batch's cases are written back their old contribution is
subtracted, afterwards their new one is added, and a key left with no case is
deleted. The counting rules are therefore never written again in Python: a
roll-up row is always the sum of what projections.counts says of its cases.

The key holds every column a figure groups or filters by, and every column an
area is judged on (grid, assignee, street): a department's area (the cases it
leads or was whistled to) is not, so its figures still read the ledger rows.
A NULL column is kept as '' (a key column must be NOT NULL) and read back as NULL.
"""

from __future__ import annotations

from typing import Any

from projections.area import Area
from projections.counts import ROLLUP_COUNTS
from storage.views import Cursor, PostgresViews, SqliteViews, dialect_of

TABLE = "ledger_rollup"
# due_month: the first month at whose end the case is past its resolve limit (resolve_due + 1 day), so
# a past month's report judges "overdue at the end" from the roll-up (docs/read-models.md).
KEY = (
    "registered_month", "closed_month", "due_month", "district", "district_name", "street", "street_name",
    "community", "community_name", "grid", "grid_name", "lead_department", "assignee", "assignee_name",
    "channel", "category",
)  # fmt: skip
COUNT_COLUMNS = tuple(ROLLUP_COUNTS)
DUE_MONTH = {
    "postgres": "CASE WHEN resolve_due ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' "
    "THEN to_char(CAST(resolve_due AS date) + 1, 'YYYY-MM') ELSE '' END",
    "sqlite": "COALESCE(strftime('%Y-%m', resolve_due, '+1 day'), '')",
}

TABLES = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    + ", ".join(f"{c} TEXT NOT NULL DEFAULT ''" for c in KEY)
    + ", "
    + ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in COUNT_COLUMNS)
    + f", PRIMARY KEY ({', '.join(KEY)}))",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_month ON {TABLE} (registered_month)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_closed ON {TABLE} (closed_month)",
    # The keys a batch emptied, found and deleted without a scan.
    f"CREATE INDEX IF NOT EXISTS {TABLE}_empty ON {TABLE} (received) WHERE received = 0",
    # What the roll-up cannot sum (a per-day judgement, a median) is read from the rows through these.
    "CREATE INDEX IF NOT EXISTS ledger_cases_unclosed ON ledger_cases (resolve_due) WHERE closed_date IS NULL",
    "CREATE INDEX IF NOT EXISTS ledger_cases_closed_date ON ledger_cases (closed_date)",
    "CREATE INDEX IF NOT EXISTS ledger_whistles_month ON ledger_whistles (blown_month, department)",
    "CREATE INDEX IF NOT EXISTS ledger_whistles_seconds ON ledger_whistles (department, seconds_to_report)",
]


# The whistle evaluation's counts per department, month and whole hours taken to report in (-1: not
# reported in), so the province's evaluation sums a few thousand keys instead of grouping every whistle.
# "Reported within H hours" (seconds ≤ H × 3600) is exactly "report_hours ≤ H" with the hours rounded
# up, whatever H the policy in force names. Only the everywhere area reads it (a whistle's street and
# grid are those of its case when it was blown; an area's whistles are those of its cases now).
WHISTLE_TABLE = "whistle_rollup"
WHISTLE_KEY = ("department", "blown_month", "report_hours")
WHISTLE_COUNTS = {
    "whistled": "COUNT(*)",
    "transferred": "SUM(CASE WHEN seconds_to_report IS NULL AND transferred_at IS NOT NULL THEN 1 ELSE 0 END)",
}
REPORT_HOURS = (
    "CASE WHEN seconds_to_report IS NULL THEN -1 WHEN seconds_to_report <= 0 THEN 0 "
    "ELSE (seconds_to_report + 3599) / 3600 END"
)
TABLES.append(
    f"CREATE TABLE IF NOT EXISTS {WHISTLE_TABLE} (department TEXT NOT NULL, blown_month TEXT NOT NULL, "
    "report_hours INTEGER NOT NULL, whistled BIGINT NOT NULL DEFAULT 0, transferred BIGINT NOT NULL DEFAULT 0, "
    f"PRIMARY KEY ({', '.join(WHISTLE_KEY)}))"
)


def _whistle_contribution(where: str, sign: str = "") -> str:
    counts = ", ".join(f"{sign}({expression})" for expression in WHISTLE_COUNTS.values())
    return (
        f"INSERT INTO {WHISTLE_TABLE} ({', '.join((*WHISTLE_KEY, *WHISTLE_COUNTS))}) "
        f"SELECT department, COALESCE(blown_month, ''), {REPORT_HOURS}, {counts} FROM ledger_whistles "
        f"WHERE {where} GROUP BY 1, 2, 3 ON CONFLICT ({', '.join(WHISTLE_KEY)}) DO UPDATE SET "
        + ", ".join(f"{c} = {WHISTLE_TABLE}.{c} + excluded.{c}" for c in WHISTLE_COUNTS)
    )


def fill_whistles(views: SqliteViews | PostgresViews, cur: Cursor) -> None:
    """`minqing migrate` on a ledger that had no whistle roll-up: summed from every whistle at once."""
    cur.execute(_whistle_contribution("1 = 1"))


def _contribution(dialect: str, where: str, sign: str = "") -> str:
    """INSERT the cases' counts per key (negated with sign '-'), adding to the keys already there."""
    keys = [DUE_MONTH[dialect] if c == "due_month" else f"COALESCE({c}, '')" for c in KEY]
    counts = [f"{sign}({expression})" for expression in ROLLUP_COUNTS.values()]
    columns = (*KEY, *COUNT_COLUMNS)
    return (
        f"INSERT INTO {TABLE} ({', '.join(columns)}) SELECT {', '.join(keys + counts)} FROM ledger_cases "
        f"WHERE {where} GROUP BY {', '.join(str(i) for i in range(1, len(KEY) + 1))} "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
        + ", ".join(f"{c} = {TABLE}.{c} + excluded.{c}" for c in COUNT_COLUMNS)
    )


def _apply(cur: Cursor, case_ids: list[str], sign: str) -> None:
    dialect = dialect_of(cur)
    for i in range(0, len(case_ids), 500):
        chunk = case_ids[i : i + 500]
        of_chunk = f"case_id IN ({','.join('?' * len(chunk))})"
        cur.execute(_contribution(dialect, of_chunk, sign), chunk)
        cur.execute(_whistle_contribution(of_chunk, sign), chunk)


def withdraw(cur: Cursor, case_ids: list[str]) -> None:
    """Before the cases' rows (and their whistles) are written: take their present contribution out."""
    _apply(cur, case_ids, "-")


def add(cur: Cursor, case_ids: list[str]) -> None:
    """After the cases' rows are written: put their new contribution in, drop the emptied keys."""
    _apply(cur, case_ids, "")
    cur.execute(f"DELETE FROM {TABLE} WHERE received = 0")
    cur.execute(f"DELETE FROM {WHISTLE_TABLE} WHERE whistled = 0")


def fill(views: SqliteViews | PostgresViews, cur: Cursor) -> None:
    """`minqing migrate` on a ledger that had no roll-up: every row's contribution in one statement."""
    cur.execute(_contribution(views.dialect, "1 = 1"))


# While a catch-up from empty holds it back (projections.catch_up), projection_tracking holds this
# row: the roll-up is then summed once from the rows at the end, not moved by delta every batch.
# Should that catch-up stop before its end, the next batch applied the live way finds the row and
# sums the roll-up first (`summed_if_stale`), in its own transaction: never a delta on stale sums.
STALE = "ledger_rollup:stale"


def hold_back(cur: Cursor) -> None:
    cur.execute("INSERT INTO projection_tracking (projection, position) VALUES (?, 0) ON CONFLICT DO NOTHING", [STALE])


def summed_again(cur: Cursor) -> None:
    """The roll-ups made again from every row and whistle, one statement each, and no longer held back."""
    cur.execute(f"DELETE FROM {TABLE}")
    cur.execute(_contribution(dialect_of(cur), "1 = 1"))
    cur.execute(f"DELETE FROM {WHISTLE_TABLE}")
    cur.execute(_whistle_contribution("1 = 1"))
    cur.execute("DELETE FROM projection_tracking WHERE projection = ?", [STALE])


def summed_if_stale(cur: Cursor) -> None:
    if cur.execute("SELECT 1 AS stale FROM projection_tracking WHERE projection = ?", [STALE]):
        summed_again(cur)


# --- reading ------------------------------------------------------------------------


def whistle_counts(views: SqliteViews | PostgresViews, within_hours: int, month: str | None) -> list[Any]:
    """Per department: whistled, reported_in, on_time (within `within_hours`), transferred."""
    in_month, params = ("WHERE blown_month = ?", [month]) if month else ("", [])
    return views.query(
        "SELECT department, SUM(whistled) AS whistled, "
        "SUM(CASE WHEN report_hours >= 0 THEN whistled ELSE 0 END) AS reported_in, "
        "SUM(CASE WHEN report_hours >= 0 AND report_hours <= ? THEN whistled ELSE 0 END) AS on_time, "
        f"SUM(transferred) AS transferred FROM {WHISTLE_TABLE} {in_month} GROUP BY department",
        [within_hours, *params],
    )


def covers(area: Area) -> bool:
    """Whether the area is a condition on key columns (a department's whistled cases are not)."""
    return area.department is None


def grouped(key: str, label: str, counts: list[str], where: str) -> str:
    """Per value of `key` (NULL for ''), the sums of `counts` over the roll-up rows `where` selects."""
    sums = ", ".join(f"SUM({c}) AS {c}" for c in counts)
    return (
        f"SELECT NULLIF({key}, '') AS unit, MAX(NULLIF({label}, '')) AS name, {sums} "
        f"FROM {TABLE} WHERE {where} GROUP BY {key}"
    )


def grouped_at_once(
    views: SqliteViews | PostgresViews,
    groupings: list[tuple[str, str]],
    counts: list[str],
    where: str,
    params: list[Any],
) -> dict[str, list[dict[str, Any]]]:
    """`grouped` for several keys over the same rows: {key: its rows}. On PostgreSQL one scan of the
    roll-up with GROUPING SETS (a year's report groups the same keys five ways); SQLite has none."""
    keys = list(dict.fromkeys(groupings))
    if views.dialect != "postgres" or len(keys) == 1:
        return {key: views.query(grouped(key, label, counts, where), params) for key, label in keys}
    columns = []
    for i, (key, label) in enumerate(keys):
        columns += [f"GROUPING({key}) AS g{i}", f"NULLIF({key}, '') AS u{i}", f"MAX(NULLIF({label}, '')) AS n{i}"]
    sql = (
        f"SELECT {', '.join(columns)}, {', '.join(f'SUM({c}) AS {c}' for c in counts)} FROM {TABLE} "
        f"WHERE {where} GROUP BY GROUPING SETS ({', '.join(f'({key})' for key, _ in keys)})"
    )
    found: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in keys}
    for row in views.query(sql, params):
        i = next(i for i in range(len(keys)) if row[f"g{i}"] == 0)
        found[keys[i][0]].append({"unit": row[f"u{i}"], "name": row[f"n{i}"], **{c: row[c] for c in counts}})
    return found


def month_range(start: Any, end: Any) -> tuple[str, str]:
    """The months of a period made of whole months (its first and last day)."""
    return start.isoformat()[:7], end.isoformat()[:7]
