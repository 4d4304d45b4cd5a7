"""Erasing a person: destroy the key, then scrub the masked copies the read
side keeps (the ledger rows). The events are never touched."""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError

from cases.actor import Actor
from commands.cases import Cases
from commands.errors import CaseNotFoundError
from commands.evidence import Evidence
from commands.records import PersonErased
from security.personal import ERASED
from storage.views import PostgresViews, SqliteViews

log = structlog.get_logger()


class PersonNotFoundError(CaseNotFoundError):
    code = "person_not_found"

    def __init__(self, person_id: object) -> None:
        super().__init__(person_id)
        self.message = f"没有标识为 {person_id} 的诉求人。"


def erase_person(
    cases: Cases, views: SqliteViews | PostgresViews | None, person_id: str, *, by: Actor
) -> dict[str, Any]:
    vault = cases.vault
    if vault is None or not vault.knows(person_id):
        raise PersonNotFoundError(person_id)
    destroyed = vault.erase(person_id)
    position = None
    if destroyed:
        # After the key is gone, so the log never claims an erasure that did not happen.
        erased = PersonErased(
            originator_id=PersonErased.stream_id(person_id),
            originator_version=1,
            timestamp=cases.clock(),
            person_id=person_id,
            by=by.as_dict(),
        )
        with suppress(IntegrityError):  # erased before: the first record stands
            position = cases.save(erased)[0].notification.id
    scrubbed = 0
    if views is not None and _has_ledger(views):
        with views.transaction() as cur:
            rows = cur.execute("SELECT case_id FROM ledger_cases WHERE petitioner_id = ?", (person_id,))
            cur.execute(
                "UPDATE ledger_cases SET petitioner_name = ?, petitioner_phone = ? WHERE petitioner_id = ?",
                (ERASED, ERASED, person_id),
            )
            scrubbed = len(rows)
    log.info("person_erased", person=person_id, by=by.id, key_destroyed=destroyed, ledger_rows=scrubbed)
    return {
        "person_id": person_id,
        "erased": True,
        "key_destroyed": destroyed,
        "ledger_rows_scrubbed": scrubbed,
        "position": position,
    }


def _has_ledger(views: SqliteViews | PostgresViews) -> bool:
    """The read side may not exist yet (projections not run): nothing to scrub then."""
    if views.dialect == "sqlite":
        return bool(views.query("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'ledger_cases'"))
    return views.query("SELECT to_regclass('ledger_cases') IS NOT NULL AS x")[0]["x"]


# --- attachments (commands/evidence.py) ---------------------------------------------------------


def erase_attachments(evidence: Evidence, views: SqliteViews | PostgresViews | None, person_id: str) -> list[str]:
    """After `erase_person`: the files that carry the person's data (what was registered for them,
    what they added themselves) are removed from the store; the events keep only their hashes.
    Their cases are found in the ledger; a case it does not know yet is caught when a file of it
    is next read (Evidence.read erases it then, and answers 410)."""
    if views is None or not _has_ledger(views):
        return []
    rows = views.query("SELECT case_id FROM ledger_cases WHERE petitioner_id = ?", [person_id])
    erased = evidence.erase_person([UUID(r["case_id"]) for r in rows])
    log.info("person_attachments_erased", person=person_id, files=len(erased))
    return erased
