"""The ledger projection (民情工作台账): one row per case, one per whistled
department, folded from the case events only.

A batch of events is folded in memory over the rows it touches and written
back once, so catching up costs one read and one write per case per batch,
not one round trip per event.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from cases.case import Case
from cases.clock import local_date
from commands.cases import PersonalDataVault
from projections import board_states, rollup
from projections.catch_up import CachedRows, Derived, StoredRows, caching_rows
from projections.checkpoints import CHECKPOINTS, next_due
from security.personal import reveal_masked_many
from storage.views import Cursor, PostgresViews, Row, SqliteViews

NAME = "ledger"

CASE_COLUMNS: tuple[str, ...] = (
    "case_id", "number", "registered_at", "registered_date", "registered_month", "channel", "category",
    "title", "description", "location", "district", "district_name", "street", "street_name", "community",
    "community_name", "grid", "grid_name", "micro_grid", "petitioner_name", "petitioner_phone", "petitioner_id",
    "handling_type",
    "tier", "policy_version", "status", "assignee", "assignee_name", "assigned_at", "returned_count",
    "accepted_at", "accepted_date", "progress_date", "whistle_count", "lead_department", "leader", "leader_name",
    "measures", "responsible_unit", "responsible_person", "rectification_deadline", "accept_due", "progress_due",
    "resolve_due", "deadlines_provisional", "extended_count", "rectified_at", "resolved_date",
    "first_verification_passed", "failed_verifications", "verified_at", "closed_at", "closed_date",
    "closed_month", "suggestion_outcome", "feedback_method", "feedback_at", "rating", "rated_at",
    "supervision_count", "supervision_due", "next_due", "last_event", "version", "position",
    # second handling, transfers and approvals (issue 17)
    *("reopened_count", "reopened_at", "follow_up_at", "follow_up_resolved", "reassigned_count",
      "transferred_count", "pending_requests", "approved_requests", "refused_requests"),
    # Imported hotline work orders (issue 17): the platform, its order number and its registration time.
    "external_platform", "external_id", "received_at",
    "latitude", "longitude", "media_url",
    # Duplicates (重复件 / 并案): on a duplicate, the main case it follows; on a main case, how many follow it.
    "main_case", "main_number", "linked_at", "duplicate_count",
    "attachment_count",
)  # fmt: skip
# What a reopened case's new round starts without (its fresh checkpoints are unmet).
ROUND_COLUMNS = (
    "accepted_at", "accepted_date", "progress_date", "resolved_date", "rectified_at", "verified_at", "closed_at",
    "closed_date", "closed_month", "suggestion_outcome", "follow_up_at", "follow_up_resolved",
)  # fmt: skip
# Issue 17's columns: counters, and the moments and outcomes a second handling turns on.
REOPEN_COUNTERS = ("reopened_count", "reassigned_count", "transferred_count", "pending_requests",
                   "approved_requests", "refused_requests")  # fmt: skip
COORDINATES = ("latitude", "longitude")  # WGS-84 degrees, numbers (a bounding box compares them)
WHISTLE_COLUMNS = (
    "case_id", "whistle_no", "department", "street", "grid", "blown_at", "blown_month",
    "reported_at", "seconds_to_report",
    "transferred_at",  # handed on (转办) before reporting in: not a failure to report
)  # fmt: skip
# Each table's key: rows kept between batches while catching up are looked up by it.
KEYS = {"ledger_cases": ("case_id",), "ledger_whistles": ("case_id", "whistle_no", "department")}
COUNTERS = (
    "returned_count", "whistle_count", "extended_count", "failed_verifications", "supervision_count",
    *REOPEN_COUNTERS,
    "duplicate_count", "attachment_count",
)  # fmt: skip


EMPTY_ROW: Row = dict.fromkeys(CASE_COLUMNS) | dict.fromkeys(COUNTERS, 0)  # a case's row before its first event
UNIT_COLUMNS = ("district", "district_name", "street", "street_name", "community", "community_name", "grid",
                "grid_name", "micro_grid")  # fmt: skip
# What projections.checkpoints.next_due reads of a row.
DUE_INPUTS = itemgetter(*(c for pair in CHECKPOINTS.values() for c in pair if c != "clear_due"), "supervision_due")
WHISTLE_EVENTS = (Case.WhistleBlown, Case.DepartmentReported, Case.Transferred)
DUPLICATE_EVENTS = (Case.DuplicateAttached, Case.DuplicateDetached)


def _case_column_type(column: str) -> str:
    if column in COUNTERS:
        return "INTEGER NOT NULL DEFAULT 0"
    if column in ("version", "position"):
        return "BIGINT"
    return "DOUBLE PRECISION" if column in COORDINATES else "TEXT"


TABLES = [
    "CREATE TABLE IF NOT EXISTS ledger_cases ("
    + ", ".join(f"{c} {_case_column_type(c)}" for c in CASE_COLUMNS)
    + ", PRIMARY KEY (case_id))",
    "CREATE TABLE IF NOT EXISTS ledger_whistles ("
    + ", ".join(f"{c} {'INTEGER' if c in ('whistle_no', 'seconds_to_report') else 'TEXT'}" for c in WHISTLE_COLUMNS)
    + ", PRIMARY KEY (case_id, whistle_no, department))",
    "CREATE INDEX IF NOT EXISTS ledger_cases_registered ON ledger_cases (registered_at)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_street ON ledger_cases (street, status)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_grid ON ledger_cases (grid, status)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_status ON ledger_cases (status, resolve_due)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_number ON ledger_cases (number)",
    "CREATE INDEX IF NOT EXISTS ledger_whistles_department ON ledger_whistles (department)",
    # The board reads open cases only, judged on next_due (projections.checkpoints.colour_sql).
    "CREATE INDEX IF NOT EXISTS ledger_cases_open ON ledger_cases (street, next_due) WHERE status <> 'closed'",
    "CREATE INDEX IF NOT EXISTS ledger_cases_district ON ledger_cases (district)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_community ON ledger_cases (community)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_lead_department ON ledger_cases (lead_department)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_month ON ledger_cases (registered_month, street)",
    # A page of the quarterly notice: each month's cases in number order (projections.reports).
    "CREATE INDEX IF NOT EXISTS ledger_cases_month_number ON ledger_cases (registered_month, number)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_registered_date ON ledger_cases (registered_date)",
    "CREATE INDEX IF NOT EXISTS ledger_cases_external ON ledger_cases (external_id, external_platform)",
    # The bounding-box filter (bbox=) seeks on longitude, then checks latitude in the index.
    "CREATE INDEX IF NOT EXISTS ledger_cases_place ON ledger_cases (longitude, latitude)",
    # A main case's duplicates, read back by the fold when the main case moves.
    "CREATE INDEX IF NOT EXISTS ledger_cases_main_case ON ledger_cases (main_case)",
    # Keyset pages of /ledger sort on COALESCE(column, '') (projections.ledger_query): one index per sort.
    *(
        f"CREATE INDEX IF NOT EXISTS ledger_cases_by_{c} ON ledger_cases (COALESCE({c}, ''), case_id)"
        for c in ("registered_at", "number", "resolve_due", "closed_at", "status")
    ),
]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _day(moment: datetime) -> str:
    return local_date(moment).isoformat()


# The board's counts read open cases only (projections.board): with every column they touch in
# the index, they are an index-only scan of the open cases instead of a visit to each one's page.
BOARD_COVERED = (
    "accept_due", "status", "supervision_count", "district", "district_name", "street_name", "community",
    "community_name", "grid", "grid_name", "lead_department", "assignee", "handling_type", "tier", "channel",
    "reopened_count", "main_case", "resolve_due", "number", "case_id",
)  # fmt: skip
# Chinese search (issue 16): `q` matches substrings of these columns (projections.ledger_query).
SEARCHED = ("title", "description", "location")
# Every character and every pair of neighbouring characters of the searched text: a term of one or
# two characters is found by one GIN lookup, a longer one by its pairs (then rechecked by LIKE);
# pg_trgm's trigrams cannot find one- or two-character Chinese words. The pairs come from two
# regular-expression passes (pairs from the first character, pairs from the second) cut at a line
# feed: a line feed joins the columns, and since terms are split on whitespace no term holds one,
# so no pair a term needs is lost and no pair spans two columns. Six to twenty times cheaper than
# a generate_series over the characters (0.8 ms a row), which matters where PostgreSQL rechecks it.
# A new body needs a new name: an index built by the old body would silently disagree with it.
GRAMS_FUNCTION = """CREATE OR REPLACE FUNCTION minqing_grams(body text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
    SELECT array_remove(
        string_to_array(body, NULL)
        || string_to_array(regexp_replace(body, '(..)', '\\1' || chr(10), 'g'), chr(10))
        || string_to_array(regexp_replace(substr(body, 2), '(..)', '\\1' || chr(10), 'g'), chr(10)),
        '')
$$"""
SEARCH_GRAMS = "minqing_grams(" + " || chr(10) || ".join(f"COALESCE({c}, '')" for c in SEARCHED) + ")"

POSTGRES_INDEXES = [
    # Its predecessor lacked main_case (issue 17's duplicates, which the board leaves out) and the
    # listed rows' order, so the board fell back to visiting every open case's page.
    "DROP INDEX IF EXISTS ledger_cases_open_covering",
    "CREATE INDEX IF NOT EXISTS ledger_cases_board ON ledger_cases (street, next_due) "
    f"INCLUDE ({', '.join(BOARD_COVERED)}) WHERE status <> 'closed'",
    GRAMS_FUNCTION,
    f"CREATE INDEX IF NOT EXISTS ledger_cases_grams ON ledger_cases USING gin ({SEARCH_GRAMS})",
]

# Every column a ledger made by an older release may lack: `minqing migrate` adds the missing ones,
# so a column appended to CASE_COLUMNS needs no migration of its own; their values (and
# board_states) come from `minqing rebuild ledger` (docs/read-models.md).
ADDED_COLUMNS = {
    "ledger_cases": {c: _case_column_type(c) for c in CASE_COLUMNS if c != "case_id"},
    "ledger_whistles": {"transferred_at": "TEXT"},
    "board_states": {
        c: board_states.NUMBERS.get(c, "TEXT")
        for c in board_states.STATE_COLUMNS
        if c not in ("case_id", "since_version")
    },
}


def _summoned(key: tuple[str, int, str], row: Row, at: datetime) -> Row:
    """A department's row for one whistle, summoned at `at` (blown, or transferred to it)."""
    case_id, whistle_no, department = key
    return {
        "case_id": case_id, "whistle_no": whistle_no, "department": department, "street": row["street"],
        "grid": row["grid"], "blown_at": _iso(at), "blown_month": _day(at)[:7], "reported_at": None,
        "seconds_to_report": None, "transferred_at": None,
    }  # fmt: skip


# --- the fold: one function per event class, found by the event's class (or a base of it) ---------


def _registered(row: Row, e: Any, shown_of: dict[int, Any]) -> None:
    at = e.timestamp
    units = e.units
    shown = shown_of[id(e)]
    day = _day(at)
    row.update(
        case_id=str(e.originator_id),
        number=e.number,
        registered_at=_iso(at),
        registered_date=day,
        registered_month=day[:7],
        channel=e.channel,
        category=e.category,
        title=e.title,
        description=e.description,
        location=e.location,
        # Masked here, never clear: erasure later overwrites these (security.erasure).
        petitioner_name=shown.get("name") if shown else None,
        petitioner_phone=shown.get("phone") if shown else None,
        petitioner_id=e.petitioner.get("person"),
        status="registered",
        latitude=e.latitude,
        longitude=e.longitude,
        media_url=e.media_url,
        **{k: units.get(k) for k in UNIT_COLUMNS},
    )


def _deadlines(row: Row, e: Any, _: Any = None) -> None:
    row["policy_version"] = e.policy_version
    deadlines = e.deadlines
    for name in ("accept", "progress", "resolve"):
        row[f"{name}_due"] = deadlines.get(name, {}).get("due")
    provisional = any(d.get("provisional") for d in deadlines.values())
    row["deadlines_provisional"] = "yes" if provisional else "no"


def _classified(row: Row, e: Any, _: Any) -> None:
    row.update(handling_type=e.handling_type, tier=e.tier, status="classified")
    _deadlines(row, e)


def _assigned(row: Row, e: Any, _: Any) -> None:
    row.update(assignee=e.assignee, assignee_name=e.assignee_name, assigned_at=_iso(e.timestamp), status="assigned")


def _returned(row: Row, e: Any, _: Any) -> None:
    row.update(assignee=None, assignee_name=None, status="returned")
    row["returned_count"] += 1


def _accepted(row: Row, e: Any, _: Any) -> None:
    at = e.timestamp
    row.update(accepted_at=_iso(at), accepted_date=_day(at), status="in_progress")


def _progress_reported(row: Row, e: Any, _: Any) -> None:
    row["progress_date"] = row["progress_date"] or _day(e.timestamp)


def _whistle_blown(row: Row, e: Any, _: Any) -> None:
    row["whistle_count"] += 1


def _consultation_held(row: Row, e: Any, _: Any) -> None:
    row["lead_department"] = e.lead_department


def _leader_took_case(row: Row, e: Any, _: Any) -> None:
    row.update(leader=e.leader, leader_name=e.leader_name)


def _rectification_planned(row: Row, e: Any, _: Any) -> None:
    row.update(
        measures=e.measures,
        responsible_unit=e.responsible_unit,
        responsible_person=e.responsible_person,
        rectification_deadline=e.deadline,
        status="rectifying",
    )


def _deadline_extended(row: Row, e: Any, _: Any) -> None:
    row[f"{e.deadline}_due"] = e.new_due
    row["extended_count"] += 1


def _rectified(row: Row, e: Any, _: Any) -> None:
    at = e.timestamp
    row.update(rectified_at=_iso(at), status="rectified")
    row["resolved_date"] = row["resolved_date"] or _day(at)
    row["progress_date"] = row["progress_date"] or _day(at)


def _resident_verified(row: Row, e: Any, _: Any) -> None:
    if row["first_verification_passed"] is None:
        row["first_verification_passed"] = "yes" if e.passed else "no"
    if e.passed:
        row.update(verified_at=_iso(e.timestamp), status="verified")
    else:
        row["failed_verifications"] += 1
        row["status"] = "rectifying"


def _closed(row: Row, e: Any, _: Any) -> None:
    at = e.timestamp
    day = _day(at)
    row.update(
        closed_at=_iso(at),
        closed_date=day,
        closed_month=day[:7],
        suggestion_outcome=e.suggestion_outcome,
        status="closed",
    )
    row["resolved_date"] = row["resolved_date"] or day
    row["progress_date"] = row["progress_date"] or day


def _feedback_given(row: Row, e: Any, _: Any) -> None:
    if e.reached:
        row.update(feedback_method=e.method, feedback_at=_iso(e.timestamp))


def _rated(row: Row, e: Any, _: Any) -> None:
    row.update(rating=e.satisfaction, rated_at=_iso(e.timestamp))


def _supervision_notice_issued(row: Row, e: Any, _: Any) -> None:
    row["supervision_count"] += 1
    row["supervision_due"] = e.new_due


def _order_imported(row: Row, e: Any, _: Any) -> None:
    row.update(external_platform=e.platform, external_id=e.external_id, received_at=e.received_at)


def _located(row: Row, e: Any, _: Any) -> None:
    row.update(latitude=e.latitude, longitude=e.longitude)


def _linked_as_duplicate(row: Row, e: Any, _: Any) -> None:
    # The duplicate shows the main case's status while it follows it (Ledger._follow).
    row.update(main_case=e.main_case, main_number=e.main_number, linked_at=_iso(e.timestamp), status=e.main_status)


def _duplicate_unlinked(row: Row, e: Any, _: Any) -> None:
    row.update(main_case=None, main_number=None, linked_at=None, status=e.status)


def _duplicate_attached(row: Row, e: Any, _: Any) -> None:
    row["duplicate_count"] += 1


def _duplicate_detached(row: Row, e: Any, _: Any) -> None:
    row["duplicate_count"] = max(0, row["duplicate_count"] - 1)


def _attachment_added(row: Row, e: Any, _: Any) -> None:
    row["attachment_count"] += 1
    # Open311's media_url (open311/media.py): the stored file once fetched, else the link kept.
    if e.stage == "registration" and e.url and (e.sha256 or row["media_url"] is None):
        row["media_url"] = f"/cases/{e.originator_id}/attachments/{e.sha256}" if e.sha256 else e.url


# Issue 17: follow-up calls, reopening, reassignment, transfer, requests and decisions.


def _follow_up_called(row: Row, e: Any, _: Any) -> None:
    if e.reached:
        row.update(follow_up_at=_iso(e.timestamp), follow_up_resolved="yes" if e.resolved else "no")


def _reopened(row: Row, e: Any, _: Any) -> None:
    # Back to handling on fresh deadlines: the checkpoints of the new round start unmet.
    row["reopened_count"] = e.reopen_no
    row["pending_requests"] = 0  # the closed round's requests lapse
    row.update(
        reopened_at=_iso(e.timestamp),
        status="assigned" if row["assignee"] else "returned",
        policy_version=e.policy_version,
        deadlines_provisional="yes" if any(d.get("provisional") for d in e.deadlines.values()) else "no",
        **{f"{n}_due": e.deadlines.get(n, {}).get("due") for n in ("accept", "progress", "resolve")},
        **dict.fromkeys(ROUND_COLUMNS),
    )


def _reassigned(row: Row, e: Any, _: Any) -> None:
    row.update(assignee=e.assignee, assignee_name=e.assignee_name)
    row["reassigned_count"] += 1


def _transferred(row: Row, e: Any, _: Any) -> None:
    if e.lead:
        row["lead_department"] = e.to_department
    row["transferred_count"] += 1


def _requested(row: Row, e: Any, _: Any) -> None:
    row["pending_requests"] += 1


def _request_decided(row: Row, e: Any, _: Any) -> None:
    row["pending_requests"] = max(0, row["pending_requests"] - 1)
    row["approved_requests" if e.approved else "refused_requests"] += 1


def _unfolded(row: Row, e: Any, _: Any) -> None:
    """An event that changes no ledger column (a department reporting in: its whistle row only)."""


Fold = Callable[[Row, Any, dict[int, Any]], None]
FOLDS: dict[type, Fold] = {
    Case.Registered: _registered,
    Case.Classified: _classified,
    Case.DeadlinesRecomputed: _deadlines,
    Case.Assigned: _assigned,
    Case.Returned: _returned,
    Case.Accepted: _accepted,
    Case.ProgressReported: _progress_reported,
    Case.WhistleBlown: _whistle_blown,
    Case.ConsultationHeld: _consultation_held,
    Case.LeaderTookCase: _leader_took_case,
    Case.RectificationPlanned: _rectification_planned,
    Case.DeadlineExtended: _deadline_extended,
    Case.Rectified: _rectified,
    Case.ResidentVerified: _resident_verified,
    Case.Closed: _closed,
    Case.FeedbackGiven: _feedback_given,
    Case.Rated: _rated,
    Case.SupervisionNoticeIssued: _supervision_notice_issued,
    Case.OrderImported: _order_imported,
    Case.Located: _located,
    Case.LinkedAsDuplicate: _linked_as_duplicate,
    Case.DuplicateUnlinked: _duplicate_unlinked,
    Case.DuplicateAttached: _duplicate_attached,
    Case.DuplicateDetached: _duplicate_detached,
    Case.AttachmentAdded: _attachment_added,
    Case.FollowUpCalled: _follow_up_called,
    Case.Reopened: _reopened,
    Case.Reassigned: _reassigned,
    Case.Transferred: _transferred,
    Case.ExtensionRequested: _requested,
    Case.ReturnRequested: _requested,
    Case.RequestDecided: _request_decided,
}


# A subclass folds as its nearest folded base (Case.ClosedWithMain as Case.Closed), as `match` on the
# classes did; an event that changes no column (a department reporting in) folds to nothing.
FOLDS |= {
    cls: next((FOLDS[base] for base in cls.__mro__ if base in FOLDS), _unfolded)
    for cls in vars(Case).values()
    if isinstance(cls, type) and issubclass(cls, Aggregate.Event) and cls not in FOLDS
}


class Ledger:
    name = NAME
    tables = TABLES + board_states.TABLES + rollup.TABLES
    added_columns = ADDED_COLUMNS
    postgres_indexes = POSTGRES_INDEXES
    # Tables summed from the rows, filled from them by `minqing migrate` when it first creates them.
    derived_tables: ClassVar = {rollup.TABLE: rollup.fill, rollup.WHISTLE_TABLE: rollup.fill_whistles}

    def __init__(self, vault: PersonalDataVault | None = None) -> None:
        # The rows hold the petitioner masked, read through the vault of the process that runs
        # the projection (passed in: no global lookup). Without one, sealed fields are withheld.
        self.vault = vault
        self.rows: StoredRows = StoredRows()  # how a batch reads and writes its rows; see caching()

    def apply_batch(self, cur: Cursor, events: list[tuple[int, Any]]) -> None:
        case_of = [str(e.originator_id) for _, e in events]  # once per event: str(UUID) is Python code
        registered = [e for _, e in events if isinstance(e, Case.Registered)]
        # A case registered in this batch has no rows yet: only older cases are
        # read back (while catching up that is a handful per batch, not all).
        case_ids = sorted(set(case_of).difference(str(e.originator_id) for e in registered))
        rows = self._load(cur, "ledger_cases", case_ids)
        whistles = {
            (r["case_id"], r["whistle_no"], r["department"]): r
            for r in self._load_many(cur, "ledger_whistles", case_ids)
        }
        touched_whistles: set[tuple[str, int, str]] = set()
        shown = dict(
            zip(map(id, registered), reveal_masked_many([e.petitioner for e in registered], self.vault), strict=True)
        )
        states = board_states.StateKeeper()
        duplicates = self._duplicates(cur, rows)
        folds = FOLDS
        for (position, event), case_id in zip(events, case_of, strict=True):
            row = rows.get(case_id)
            if row is None:
                if not isinstance(event, Case.Registered):
                    continue  # a case registered before this view's first event cannot be folded
                row = rows[case_id] = EMPTY_ROW.copy()
                before, linked_before, due_inputs = None, False, None
            else:
                before = states.before(case_id, row)
                linked_before = bool(row.get("main_case"))
                # next_due depends on these columns only: recomputed when they move, and after a
                # case's first event in a batch (a row read back is taken as stored, not trusted).
                due_inputs = DUE_INPUTS(row) if case_id in states.last else None
            if isinstance(event, WHISTLE_EVENTS):
                touched_whistles |= self._whistle(whistles, case_id, row, event)
            folds.get(type(event), _unfolded)(row, event, shown)
            if isinstance(event, DUPLICATE_EVENTS):
                self._attach(cur, rows, duplicates, case_id, event)
            linked = duplicates.get(case_id)
            if linked:
                self._follow(rows, linked, row)
            if due_inputs is None or due_inputs != DUE_INPUTS(row):
                row["next_due"] = next_due(row)
            row["version"], row["position"], row["last_event"] = (
                event.originator_version,
                position,
                type(event).__name__,
            )
            states.step(case_id, before, row, event, linked_before=linked_before)
        self.rows.write_states(cur, states)
        if not rows:
            return
        # The roll-ups' sums move with the rows and whistles, by delta (projections.rollup); a catch-up from
        # empty sums them once at its end instead. A whistle's case is always among the rows.
        by_delta, touched = not self.rows.sums_rollup_at_end, list(rows)
        if by_delta:
            rollup.summed_if_stale(cur)  # a catch-up that held it back stopped before its end
            rollup.withdraw(cur, touched)
        self._upsert(cur, "ledger_cases", CASE_COLUMNS, ("case_id",), list(rows.values()))
        if touched_whistles:
            self._upsert(
                cur,
                "ledger_whistles",
                WHISTLE_COLUMNS,
                ("case_id", "whistle_no", "department"),
                [whistles[k] for k in sorted(touched_whistles)],
            )
        if by_delta:
            rollup.add(cur, touched)

    def _duplicates(self, cur: Cursor, rows: dict[str, Row]) -> dict[str, set[str]]:
        """The linked duplicates of the batch's main cases, their rows loaded beside the others."""
        mains = sorted(case_id for case_id, row in rows.items() if row.get("duplicate_count"))
        found: dict[str, set[str]] = {}
        for i in range(0, len(mains), 500):
            chunk = mains[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in cur.execute(f"SELECT * FROM ledger_cases WHERE main_case IN ({marks})", chunk):
                rows.setdefault(row["case_id"], row)
                found.setdefault(row["main_case"], set()).add(row["case_id"])
        return found

    def _attach(self, cur: Cursor, rows: dict[str, Row], duplicates: dict[str, set[str]], main: str, e: Any) -> None:
        linked = duplicates.setdefault(main, set())
        if isinstance(e, Case.DuplicateDetached):
            linked.discard(e.duplicate_case)
            return
        linked.add(e.duplicate_case)
        if e.duplicate_case not in rows:  # linked in an earlier batch than the main case's record of it
            rows.update(self._load(cur, "ledger_cases", [e.duplicate_case]))

    @staticmethod
    def _follow(rows: dict[str, Row], duplicates: set[str] | tuple[()], main: Row) -> None:
        """A linked duplicate's row shows the status of its main case; it closes by its own event."""
        if main["status"] == "closed":
            return
        for case_id in duplicates:
            row = rows.get(case_id)
            if row is not None and row["status"] != "closed":
                row["status"] = main["status"]

    @staticmethod
    def _whistle(whistles: dict[tuple[str, int, str], Row], case_id: str, row: Row, e: Any) -> set:
        if isinstance(e, Case.WhistleBlown):
            keys = {(case_id, e.whistle_no, d) for d in e.departments}
            for key in keys:
                whistles[key] = _summoned(key, row, e.timestamp)
            return keys
        if isinstance(e, Case.Transferred):
            # The department a part is transferred to is summoned from the transfer (转办); the
            # one that handed it on before reporting in is counted as transferred, not as silent.
            keys = {(case_id, no, e.to_department) for no in e.whistle_nos}
            for key in keys:
                whistles[key] = _summoned(key, row, e.timestamp)
            gave = {(case_id, no, e.from_department) for no in e.whistle_nos}
            for key in gave & whistles.keys():
                if whistles[key]["reported_at"] is None:
                    whistles[key]["transferred_at"] = _iso(e.timestamp)
            return keys | gave
        key = (case_id, e.whistle_no, e.department)
        if key in whistles:
            whistles[key].update(reported_at=_iso(e.timestamp), seconds_to_report=e.seconds_to_report)
        return {key}

    def _load(self, cur: Cursor, table: str, case_ids: list[str]) -> dict[str, Row]:
        return {r["case_id"]: r for r in self._load_many(cur, table, case_ids)}

    def _load_many(self, cur: Cursor, table: str, case_ids: list[str]) -> list[Row]:
        return self.rows.load(cur, table, case_ids)

    def _upsert(self, cur: Cursor, table: str, columns: tuple[str, ...], key: tuple[str, ...], rows: list[Row]) -> None:
        self.rows.write(cur, table, columns, key, rows)

    def resume(self, views: SqliteViews | PostgresViews) -> None:
        """Before a runner goes on (Runner.catch_up): the roll-up summed again if a catch-up from
        empty held it back and stopped before its end (projections.rollup.STALE)."""
        with views.transaction() as cur:
            rollup.summed_if_stale(cur)

    def caching(self, views: SqliteViews | PostgresViews, ahead: int = 0) -> AbstractContextManager[CachedRows | None]:
        """While a runner catches up `ahead` records: the rows kept between batches (projections.catch_up)."""
        return caching_rows(self, views, KEYS, ahead=ahead, derived=Derived(rollup.hold_back, rollup.summed_again))
