"""The ledger projection (民情工作台账): one row per case, one per whistled
department, folded from the case events only.

A batch of events is folded in memory over the rows it touches and written
back once, so catching up costs one read and one write per case per batch,
not one round trip per event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cases.case import Case
from cases.clock import local_date
from commands.cases import PersonalDataVault
from projections import board_states
from projections.checkpoints import next_due
from security.personal import reveal_masked_many
from storage.views import Cursor, Row, upsert

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
    "attachment_count", "media_url",
)  # fmt: skip
WHISTLE_COLUMNS = (
    "case_id", "whistle_no", "department", "street", "grid", "blown_at", "blown_month",
    "reported_at", "seconds_to_report",
)  # fmt: skip
COUNTERS = ("returned_count", "whistle_count", "extended_count", "failed_verifications", "supervision_count",
            "attachment_count")  # fmt: skip

TABLES = [
    "CREATE TABLE IF NOT EXISTS ledger_cases ("
    + ", ".join(
        f"{c} {'INTEGER NOT NULL DEFAULT 0' if c in COUNTERS else 'BIGINT' if c in ('version', 'position') else 'TEXT'}"
        for c in CASE_COLUMNS
    )
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
    "CREATE INDEX IF NOT EXISTS ledger_cases_registered_date ON ledger_cases (registered_date)",
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


# Added to a ledger made before them by `minqing migrate`; their values (and board_states) come
# from `minqing rebuild ledger` (docs/read-models.md).
ADDED_COLUMNS = {"ledger_cases": {"next_due": "TEXT", "attachment_count": "INTEGER NOT NULL DEFAULT 0",
                                   "media_url": "TEXT"}}  # fmt: skip


class Ledger:
    name = NAME
    tables = TABLES + board_states.TABLES
    added_columns = ADDED_COLUMNS

    def __init__(self, vault: PersonalDataVault | None = None) -> None:
        # The rows hold the petitioner masked, read through the vault of the process that runs
        # the projection (passed in: no global lookup). Without one, sealed fields are withheld.
        self.vault = vault

    def apply_batch(self, cur: Cursor, events: list[tuple[int, Any]]) -> None:
        # A case registered in this batch has no rows yet: only older cases are
        # read back (while catching up that is a handful per batch, not all).
        born_here = {str(e.originator_id) for _, e in events if isinstance(e, Case.Registered)}
        case_ids = sorted({str(e.originator_id) for _, e in events} - born_here)
        rows = self._load(cur, "ledger_cases", case_ids)
        whistles = {
            (r["case_id"], r["whistle_no"], r["department"]): r
            for r in self._load_many(cur, "ledger_whistles", case_ids)
        }
        touched_whistles: set[tuple[str, int, str]] = set()
        registered = [e for _, e in events if isinstance(e, Case.Registered)]
        shown = dict(
            zip(map(id, registered), reveal_masked_many([e.petitioner for e in registered], self.vault), strict=True)
        )
        states = board_states.StateKeeper()
        for position, event in events:
            case_id = str(event.originator_id)
            row = rows.get(case_id)
            before = states.state(row)
            if row is None:
                if not isinstance(event, Case.Registered):
                    continue  # a case registered before this view's first event cannot be folded
                row = rows[case_id] = dict.fromkeys(CASE_COLUMNS) | dict.fromkeys(COUNTERS, 0)
            if isinstance(event, (Case.WhistleBlown, Case.DepartmentReported)):
                touched_whistles |= self._whistle(whistles, case_id, row, event)
            self._fold(row, event, shown)
            row["next_due"] = next_due(row)
            row["version"], row["position"], row["last_event"] = (
                event.originator_version,
                position,
                type(event).__name__,
            )
            states.step(case_id, before, row, event)
        states.write(cur)
        if rows:
            self._upsert(cur, "ledger_cases", CASE_COLUMNS, ("case_id",), list(rows.values()))
        if touched_whistles:
            self._upsert(
                cur,
                "ledger_whistles",
                WHISTLE_COLUMNS,
                ("case_id", "whistle_no", "department"),
                [whistles[k] for k in sorted(touched_whistles)],
            )

    @staticmethod
    def _fold(row: Row, e: Any, shown_of: dict[int, Any]) -> None:
        at = e.timestamp
        match e:
            case Case.Registered():
                units = e.units
                shown = shown_of[id(e)]
                row.update(
                    case_id=str(e.originator_id),
                    number=e.number,
                    registered_at=_iso(at),
                    registered_date=_day(at),
                    registered_month=_day(at)[:7],
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
                    **{k: units.get(k) for k in ("district", "district_name", "street", "street_name")},
                    **{k: units.get(k) for k in ("community", "community_name", "grid", "grid_name", "micro_grid")},
                )
            case Case.Classified() | Case.DeadlinesRecomputed():
                if isinstance(e, Case.Classified):
                    row.update(handling_type=e.handling_type, tier=e.tier, status="classified")
                row["policy_version"] = e.policy_version
                for name in ("accept", "progress", "resolve"):
                    row[f"{name}_due"] = e.deadlines.get(name, {}).get("due")
                provisional = any(d.get("provisional") for d in e.deadlines.values())
                row["deadlines_provisional"] = "yes" if provisional else "no"
            case Case.Assigned():
                row.update(assignee=e.assignee, assignee_name=e.assignee_name, assigned_at=_iso(at), status="assigned")
            case Case.Returned():
                row.update(assignee=None, assignee_name=None, status="returned")
                row["returned_count"] += 1
            case Case.Accepted():
                row.update(accepted_at=_iso(at), accepted_date=_day(at), status="in_progress")
            case Case.ProgressReported():
                row["progress_date"] = row["progress_date"] or _day(at)
            case Case.WhistleBlown():
                row["whistle_count"] += 1
            case Case.ConsultationHeld():
                row["lead_department"] = e.lead_department
            case Case.LeaderTookCase():
                row.update(leader=e.leader, leader_name=e.leader_name)
            case Case.RectificationPlanned():
                row.update(
                    measures=e.measures,
                    responsible_unit=e.responsible_unit,
                    responsible_person=e.responsible_person,
                    rectification_deadline=e.deadline,
                    status="rectifying",
                )
            case Case.DeadlineExtended():
                row[f"{e.deadline}_due"] = e.new_due
                row["extended_count"] += 1
            case Case.Rectified():
                row.update(rectified_at=_iso(at), status="rectified")
                row["resolved_date"] = row["resolved_date"] or _day(at)
                row["progress_date"] = row["progress_date"] or _day(at)
            case Case.ResidentVerified():
                if row["first_verification_passed"] is None:
                    row["first_verification_passed"] = "yes" if e.passed else "no"
                if e.passed:
                    row.update(verified_at=_iso(at), status="verified")
                else:
                    row["failed_verifications"] += 1
                    row["status"] = "rectifying"
            case Case.Closed():
                row.update(
                    closed_at=_iso(at),
                    closed_date=_day(at),
                    closed_month=_day(at)[:7],
                    suggestion_outcome=e.suggestion_outcome,
                    status="closed",
                )
                row["resolved_date"] = row["resolved_date"] or _day(at)
                row["progress_date"] = row["progress_date"] or _day(at)
            case Case.FeedbackGiven() if e.reached:
                row.update(feedback_method=e.method, feedback_at=_iso(at))
            case Case.Rated():
                row.update(rating=e.satisfaction, rated_at=_iso(at))
            case Case.SupervisionNoticeIssued():
                row["supervision_count"] += 1
                row["supervision_due"] = e.new_due
            case Case.AttachmentAdded():
                row["attachment_count"] += 1
                if e.stage == "registration" and row["media_url"] is None:  # Open311's media_url (open311/media.py)
                    row["media_url"] = f"/cases/{e.originator_id}/attachments/{e.sha256}" if e.sha256 else e.url

    @staticmethod
    def _whistle(whistles: dict[tuple[str, int, str], Row], case_id: str, row: Row, e: Any) -> set:
        if isinstance(e, Case.WhistleBlown):
            keys = {(case_id, e.whistle_no, d) for d in e.departments}
            for key in keys:
                whistles[key] = {
                    "case_id": case_id,
                    "whistle_no": e.whistle_no,
                    "department": key[2],
                    "street": row["street"],
                    "grid": row["grid"],
                    "blown_at": _iso(e.timestamp),
                    "blown_month": _day(e.timestamp)[:7],
                    "reported_at": None,
                    "seconds_to_report": None,
                }
            return keys
        key = (case_id, e.whistle_no, e.department)
        if key in whistles:
            whistles[key].update(reported_at=_iso(e.timestamp), seconds_to_report=e.seconds_to_report)
        return {key}

    @staticmethod
    def _load(cur: Cursor, table: str, case_ids: list[str]) -> dict[str, Row]:
        return {r["case_id"]: r for r in Ledger._load_many(cur, table, case_ids)}

    @staticmethod
    def _load_many(cur: Cursor, table: str, case_ids: list[str]) -> list[Row]:
        rows: list[Row] = []
        for i in range(0, len(case_ids), 500):
            chunk = case_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows += cur.execute(f"SELECT * FROM {table} WHERE case_id IN ({marks})", chunk)
        return rows

    @staticmethod
    def _upsert(cur: Cursor, table: str, columns: tuple[str, ...], key: tuple[str, ...], rows: list[Row]) -> None:
        upsert(cur, table, columns, key, [tuple(r.get(c) for c in columns) for r in rows])
