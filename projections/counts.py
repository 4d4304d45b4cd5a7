"""What every figure counts per case, in SQL: the single place of the counting rules.

The rates (`/scores`), the periodic reports and the whistle evaluation run these
over the ledger rows; the roll-up (projections.rollup) keeps the same sums per
key, so a figure read from it equals the figure read from the rows."""

from __future__ import annotations

# A linked duplicate (重复件, main_case set) is the same problem as its main case: the problem counts
# once (dispatched, responded, closed, resolved: main cases only), the residents each (received,
# and every petitioner's rating in the satisfaction rate). docs/read-models.md, "Duplicates".
PROBLEM = "main_case IS NULL"


def _when(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


# The counts behind the three rates, name -> aggregate over ledger_cases rows.
COUNTS: dict[str, str] = {
    "received": "COUNT(*)",
    "problems": _when(PROBLEM),
    "duplicates": _when("main_case IS NOT NULL"),
    "dispatched": _when(f"{PROBLEM} AND assigned_at IS NOT NULL"),
    "responded": _when(f"{PROBLEM} AND accepted_date IS NOT NULL AND accepted_date <= accept_due"),
    "closed": _when(f"{PROBLEM} AND status = 'closed'"),
    "callbacks": _when("rating IS NOT NULL"),
    "problem_callbacks": _when(f"{PROBLEM} AND rating IS NOT NULL"),
    # 解决率 counts a first-time resolution only: a reopened case (不满意重办) never comes back into it.
    "resolved": _when(
        f"{PROBLEM} AND rating IS NOT NULL AND reopened_count = 0"
        " AND (first_verification_passed = 'yes' OR suggestion_outcome IS NOT NULL)"
    ),
    "reopened": _when("reopened_count > 0"),
    "reopens": "SUM(reopened_count)",
    "satisfied": _when("rating = 'satisfied'"),
    "basically_satisfied": _when("rating = 'basically_satisfied'"),
    "dissatisfied": _when("rating = 'dissatisfied'"),
}
COUNTS_SQL = ",\n".join(f"{expression} AS {name}" for name, expression in COUNTS.items())

# The periodic reports' per-case conditions, beside the period they are counted in (projections.reports):
# whistled and supervised count the problems registered in the period, closed_on_time those closed in it.
REPORT_CONDITIONS: dict[str, str] = {
    "whistled": f"whistle_count > 0 AND {PROBLEM}",
    "supervised": f"supervision_count > 0 AND {PROBLEM}",
    "closed_on_time": f"closed_date <= resolve_due AND {PROBLEM}",
}
# The whistle evaluation's cases led (projections.evaluation): every led case, duplicates too.
LED_CONDITIONS: dict[str, str] = {
    "led_closed": "status = 'closed'",
    "led_satisfied": "rating IN ('satisfied', 'basically_satisfied')",
    "led_dissatisfied": "rating = 'dissatisfied'",
}
# Everything the roll-up keeps per key.
ROLLUP_COUNTS: dict[str, str] = {
    **COUNTS,
    **{name: _when(condition) for name, condition in {**REPORT_CONDITIONS, **LED_CONDITIONS}.items()},
}
