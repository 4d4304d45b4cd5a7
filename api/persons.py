"""Erasure on request (crypto-shredding): destroy a petitioner's key.

The case events stay, so histories, figures and the hash chain are intact;
the personal fields read as erased everywhere from then on.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.access import PrincipalDep
from api.attachments import EvidenceDep
from api.dependencies import CasesDep, ViewsDep
from security.erasure import erase_attachments, erase_person

router = APIRouter(prefix="/persons", tags=["personal data"])

PersonId = Annotated[str, Path(pattern=r"^P[0-9a-f]{32}$", description="The petitioner's id (`person` of a case).")]


@router.post("/{person_id}/erase", summary="Erase a petitioner's personal data by destroying their key (删除个人信息)")
def erase(
    person_id: PersonId, cases: CasesDep, principal: PrincipalDep, views: ViewsDep, evidence: EvidenceDep
) -> dict[str, Any]:
    erased = erase_person(cases, views, person_id, by=principal.actor)
    return erased | {"attachments_erased": erase_attachments(evidence, views, person_id)}
