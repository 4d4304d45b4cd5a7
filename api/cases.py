"""Case routes: POST /cases registers; POST /cases/{id}/<command> acts; GET reads.

Routes only parse, call the application and shape the answer. The command
routes are declared from one table so every command gets the same headers
(Idempotency-Key, If-Match), the same answer and the same errors.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from fastapi import Path as PathParam

from api import schemas
from api.access import PrincipalDep, StrictJSONRoute, acting, sees_personal_data
from api.dependencies import CasesDep, CommandHeaders, CommandHeadersDep, TokenKeysDep
from api.responses import JSONBody
from cases.case import Case
from cases.clock import in_china
from cases.commands import COMMANDS, CaseCommand
from cases.inputs import Command
from cases.vocabulary import STATUS_LABELS, Role
from commands.cases import Cases, CommandResult, PersonalDataVault
from commands.errors import InvalidInputError
from commands.records import MAX_POSITION
from replay.history import case_at, history
from replay.records import resolve_case
from security.personal import reveal
from security.tokens import Principal, TokenKeys

router = APIRouter(prefix="/cases", tags=["cases"], route_class=StrictJSONRoute)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token (WWW-Authenticate says why)."},
    403: {"description": "The token's role or area may not do this (stable `code`)."},
    404: {"description": "Unknown case."},
    409: {"description": "The command breaks a rule of the case (stable `code`)."},
    412: {"description": "If-Match names a version that is no longer current."},
    422: {"description": "Invalid input: each field with its reason."},
}


def _answer(result: CommandResult, *, status_code: int = 200, resident_token: str | None = None) -> JSONBody:
    """The answer, serialised once by orjson (issue 15: no response-model pass; its shape is
    `schemas.CommandOut`, which the routes still declare for OpenAPI)."""
    headers = {"ETag": f'"{result.version}"'}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if status_code == status.HTTP_201_CREATED:
        headers["Location"] = f"/cases/{result.case_id}"
    return JSONBody({**result.as_dict(), "resident_token": resident_token}, status_code=status_code, headers=headers)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
    summary="Register a petition (登记)",
    response_model=schemas.CommandOut,
)
def register(
    body: schemas.RegisterIn,
    cases: CasesDep,
    headers: CommandHeadersDep,
    principal: PrincipalDep,
    keys: TokenKeysDep,
) -> Response:
    return registered(body, cases, headers, principal, keys)


def registered(
    body: schemas.RegisterIn, cases: Cases, headers: CommandHeaders, principal: Principal, keys: TokenKeys
) -> JSONBody:
    """The registration and its answer: the route's, and the command path's (api/command_path.py)."""
    idempotency = None
    if headers.idempotency_key:
        # Every field counts, the petitioner's too: the same key with another person's details is a
        # new petition, never a replay of someone else's (which would hand over their case and token).
        # The fingerprint is stored in the log, so it is keyed by the vault's secret, not a plain hash.
        fingerprinted = {**body.fingerprinted(), "actor": principal.actor.as_dict()}
        keyed = cases.vault.fingerprint if cases.vault is not None else None
        idempotency = headers.options("register", None, fingerprinted, keyed)["idempotency"]
    result = cases.register(acting(principal, body.actor), **body.fields(), idempotency=idempotency)
    token = keys.issue(Role.RESIDENT, f"R-{result.number}", case=result.case_id) if keys.can_issue else None
    return _answer(result, status_code=status.HTTP_201_CREATED, resident_token=token)


def acted(
    command: CaseCommand, case_id: UUID, given: Command, cases: Cases, headers: CommandHeaders, principal: Principal
) -> JSONBody:
    """A command of the table on a case, and its answer: the route's, and the command path's."""
    fingerprinted: dict[str, Any] = {}
    if headers.idempotency_key:  # the fingerprint only serves to compare a retry with the first
        fingerprinted = {**given.model_dump(mode="json", exclude={"actor"}), "actor": principal.actor.as_dict()}
    options = headers.options(command.path, case_id, fingerprinted)
    result = cases.act(command, case_id, acting(principal, given.actor), given.fields(), **options)
    return _answer(result)


def _command_route(command: CaseCommand) -> Callable[..., Response]:
    body_model = command.body

    def endpoint(
        case_id: UUID,
        body: body_model,  # type: ignore[valid-type]
        cases: CasesDep,
        headers: CommandHeadersDep,
        principal: PrincipalDep,
    ) -> Response:
        return acted(command, case_id, body, cases, headers, principal)  # FastAPI reads the model from the annotation

    endpoint.__name__ = command.name
    return endpoint


for _command in COMMANDS:  # every command of the table, with the same headers, answer and errors
    if getattr(_command.body, "file_body", False):
        continue  # the file is the body: its own route (api/attachments.py), same rule and same case method
    router.add_api_route(
        f"/{{case_id}}/{_command.path}",
        _command_route(_command),
        methods=["POST"],
        summary=_command.summary,
        responses=ERRORS,
        response_model=schemas.CommandOut,
    )


# Reads take the case's id or the number printed on the resident's receipt (350105001-20260302-K7Q2M).
CaseRef = Annotated[str, PathParam(min_length=1, max_length=64, description="The case's id or its receipt number.")]


@router.get(
    "/{case_id}",
    summary="The case's state: current, or as it stood at a version or a moment (replayed)",
    responses=ERRORS,
)
def get_case(
    case_id: CaseRef,
    cases: CasesDep,
    principal: PrincipalDep,
    response: Response,
    as_of: Annotated[
        datetime | None,
        Query(description="ISO time; the case as it stood then. Without a zone it is China time (UTC+8)."),
    ] = None,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_POSITION, description="The case as it stood after this version.")
    ] = None,
) -> dict[str, Any]:
    if as_of is not None and version is not None:
        raise InvalidInputError("as_of", "as_of 与 version 只能指定其一")
    found = resolve_case(cases, case_id)
    if as_of is None and version is None:
        case = cases.get_case(found)
    else:
        case = case_at(cases, found, version=version, as_of=in_china(as_of) if as_of else None)
        response.headers["Cache-Control"] = "max-age=31536000, immutable"  # the past does not change
    response.headers["ETag"] = f'"{case.version}"'
    response.headers["Cache-Control"] = "private, " + response.headers.get("Cache-Control", "no-cache")
    return present(case, clear=sees_personal_data(principal), vault=cases.vault)


@router.get(
    "/{case_id}/history",
    summary="Every event of the case in order (Chinese labels), and time spent per state and per holder",
    responses={404: ERRORS[404]},
)
def case_history(case_id: CaseRef, cases: CasesDep, principal: PrincipalDep) -> dict[str, Any]:
    return history(cases, resolve_case(cases, case_id), clear=sees_personal_data(principal))


def present(case: Case, *, clear: bool = False, vault: PersonalDataVault | None = None) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(case.id),
        "number": case.number,
        "version": case.version,
        "status": str(case.status),
        "status_label": STATUS_LABELS[case.status],
        "channel": case.channel,
        "category": case.category,
        "title": case.title,
        "description": case.description,
        "location": case.location,
        "latitude": case.latitude,  # WGS-84 (issue 18); None when the case has no point
        "longitude": case.longitude,
        "media_url": case.media_url,
        "units": case.units,
        "petitioner": reveal(case.petitioner, clear=clear, vault=vault),
        # Pseudonymous: what an administrator needs to erase the person, without seeing who it is.
        "petitioner_id": case.petitioner.get("person") if isinstance(case.petitioner, dict) else None,
        "registered_at": iso(case.registered_at),
        "registered_by": case.registered_by,
        "handling_type": case.handling_type,
        "tier": case.tier,
        "policy_version": case.policy_version,
        "deadlines": case.deadlines,
        "assignee": case.assignee,
        "accepted_at": iso(case.accepted_at),
        "progress_reports": case.progress_reports,
        "whistles": case.whistles,
        "lead_department": case.lead_department,
        "leaders": case.leaders,
        "rectification": case.rectification,
        "rectified_at": iso(case.rectified_at),
        "verifications": case.verifications,
        "attachments": case.evidence(),  # hashes and types; the files: GET /cases/{id}/attachments/{sha256}
        "closed_at": iso(case.closed_at),
        "suggestion_outcome": case.suggestion_outcome,
        "feedback": case.feedback,
        "rating": case.rating,
        "supervision_notices": case.supervision_notices,
        "reopened_count": case.reopened_count,
        "follow_ups": case.follow_ups,
        "requests": case.requests,
        "modified_at": iso(case.modified_on),
        "imported": case.imported,  # the hotline platform and its order number, if imported
        # Duplicates (重复件 / 并案): the main case this one follows, or the duplicates following it.
        "main_case": case.main_case,
        "main_number": case.main_number,
        "duplicates": list(case.duplicates),
    }
