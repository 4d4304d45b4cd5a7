"""Audit: recompute the hash chains over the stored log, and the sealed roots."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.dependencies import CasesDep
from api.read_dependencies import ReadSideDep
from commands.errors import InvalidInputError
from commands.records import MAX_POSITION
from replay.verify import last_full, verify, verify_case

router = APIRouter(prefix="/audit", tags=["audit"])

Hex64 = Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$", description="A published root hash (64 hex digits).")]


@router.get(
    "/verify",
    summary="Recompute the hash chains since the last seal (or one case's chain); name the first altered, "
    "missing, inserted or reordered event; report the last full walk (`minqing verify`)",
)
def verify_log(
    cases: CasesDep,
    read: ReadSideDep,
    root_position: Annotated[
        int | None, Query(ge=1, le=MAX_POSITION, description="Position of a published root hash.")
    ] = None,
    root_hash: Hex64 = None,
    case: Annotated[UUID | None, Query(description="Check only this case's chain.")] = None,
) -> dict[str, Any]:
    if (root_position is None) != (root_hash is None):
        raise InvalidInputError("root_hash", "root_position 与 root_hash 须同时给出")
    if case is not None:
        if root_position is not None:
            raise InvalidInputError("case", "case 与 root_position 只能指定其一")
        return verify_case(cases, read.views, case)
    published = (root_position, root_hash) if root_position is not None and root_hash is not None else None
    result = verify(cases, read.views, published_root=published, since_seal=True)
    return {**result, "last_full_verification": last_full(read.views)}


@router.get("/seals", summary="The sealed root hashes, to publish and to check against later")
def seals(read: ReadSideDep) -> dict[str, Any]:
    rows = read.views.query("SELECT seal_no, position, root_hash, events, sealed_at FROM audit_seals ORDER BY seal_no")
    return {"seals": rows}
