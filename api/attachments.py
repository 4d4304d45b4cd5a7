"""Attachments (附件): POST a photo or document to a case, list a case's, read one back.

The command is the table's `attach` row (cases/commands.py), so its access rule, its place in the
roles matrix and the workbench follow from the row; only the route is its own, because the file
is the body: raw (`Content-Type` of the file, `?stage=…&name=…`) or `multipart/form-data` with a
part named `file` (and `stage`, `name` parts). Reading follows the case's access rules; a file
that carries the petitioner's data is readable only by roles that see personal data in clear.
"""

from __future__ import annotations

import hashlib
import inspect
from email.parser import BytesParser
from email.policy import HTTP
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import ValidationError
from starlette.types import Scope

from api.access import CMD, AccessDeniedError, PrincipalDep, admit, sees_personal_data
from api.dependencies import CommandHeadersDep
from api.errors import reason
from cases.case import Case
from cases.commands import BY_NAME
from cases.evidence import Stage, carries_personal_data
from cases.inputs import AttachIn
from commands.errors import InvalidInputError
from commands.evidence import Evidence
from replay.records import resolve_case
from security.tokens import Principal

router = APIRouter(prefix="/cases", tags=["attachments"])
COMMAND = BY_NAME["attach"]
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The file's sha256 (hex), as the case lists it.")]
CaseRef = Annotated[str, Path(min_length=1, max_length=64, description="The case's id or its receipt number.")]


def get_evidence(request: Request) -> Evidence:
    return request.app.state.evidence


EvidenceDep = Annotated[Evidence, Depends(get_evidence)]


async def admit_upload(scope: Scope) -> Response | None:
    """Run by the input guard before it reads an upload's body: an anonymous caller, a bad token or
    a role that may not attach is answered (401/403, as the route would) without the server
    holding the file in memory first. The route's full access check (the case, its area) follows."""
    request = Request(scope)
    key = CMD + COMMAND.path
    if scope["path"].startswith("/workbench/"):
        key = "POST /workbench" + key.removeprefix("POST ")
    try:
        admit(request, key)
    except Exception as e:
        handlers = request.app.exception_handlers
        handler = next((handlers[c] for c in type(e).__mro__ if c in handlers), None)
        if handler is None:
            raise
        answer = handler(request, e)
        return await answer if inspect.isawaitable(answer) else answer
    return None


def upload(
    content_type: str, body: bytes, stage: str | None, name: str | None
) -> tuple[AttachIn, bytes, dict[str, str]]:
    """The fields and the file of an upload, raw or multipart (with its other parts); 422 naming
    the field otherwise."""
    fields: dict[str, str] = {}
    if content_type.lower().startswith("multipart/form-data"):
        fields, data, filename = _multipart(content_type, body)
        stage = fields.get("stage", stage)
        name = fields.get("name") or name or filename
    else:
        data = body
    try:
        return AttachIn.model_validate({"stage": stage, "name": name or ""}), data, fields
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "stage"
        said = "须为以下之一：" + "、".join(s.value for s in Stage) if field == "stage" else reason(dict(first))
        raise InvalidInputError(field, said) from None


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], bytes, str]:
    """Parsed with the standard library's MIME parser: the body is already bounded by the input
    guard, so no streaming parser (python-multipart) is needed for it."""
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise InvalidInputError("file", "multipart 表单无法解析，请检查 boundary")
    fields: dict[str, str] = {}
    data: bytes | None = None
    filename = ""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if name == "file":
            data, filename = payload, part.get_filename() or ""
        else:
            fields[name] = payload.decode("utf-8", "replace")
    if data is None:
        raise InvalidInputError("file", "须有一个名为 file 的文件部分")
    return fields, data, filename


def attach(
    evidence: Evidence,
    principal: Principal,
    case_id: UUID,
    given: AttachIn,
    data: bytes,
    headers: Any,
) -> dict[str, Any]:
    fingerprinted = {
        **given.model_dump(mode="json", exclude={"actor"}),
        "sha256": hashlib.sha256(data).hexdigest(),
        "actor": principal.actor.as_dict(),
    }
    options = headers.options(COMMAND.path, case_id, fingerprinted)
    result = evidence.attach(case_id, principal.actor, stage=given.stage, name=given.name, data=data, **options)
    added = evidence.cases.get_case(case_id, version=result.version).evidence()
    return {**result.as_dict(), "attachment": _shown(case_id, added[-1]) if added else None}


@router.post(
    "/{case_id}/attachments",
    status_code=201,
    summary=COMMAND.summary,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "stage": {"type": "string", "enum": [s.value for s in Stage]},
                            "name": {"type": "string"},
                        },
                    }
                },
            },
        }
    },
    responses={
        403: {"description": "The role, the area or the stage's rule does not allow it (stable `code`)."},
        404: {"description": "Unknown case."},
        409: {"description": "The case's status does not take this stage's files."},
        413: {"description": "The file is larger than MINQING_ATTACHMENT_MAX_BYTES."},
        422: {"description": "Not a JPEG, PNG, WebP or PDF by its content; a missing or unknown stage."},
    },
)
async def add_attachment(
    case_id: UUID,
    request: Request,
    evidence: EvidenceDep,
    headers: CommandHeadersDep,
    principal: PrincipalDep,
    response: Response,
    stage: Annotated[str | None, Query(description="registration, progress, before, after or verification")] = None,
    name: Annotated[str | None, Query(max_length=200, description="The file's original name")] = None,
) -> dict[str, Any]:
    given, data, _ = upload(request.headers.get("content-type", ""), await request.body(), stage, name)
    answer = await anyio.to_thread.run_sync(lambda: attach(evidence, principal, case_id, given, data, headers))
    response.headers["ETag"] = f'"{answer["version"]}"'
    if answer["attachment"]:
        response.headers["Location"] = answer["attachment"]["href"]
    if not answer["changed"]:
        response.status_code = 200
    return answer


@router.get("/{case_id}/attachments", summary="The case's attachments: stage, type, size, who added them, erased")
def list_attachments(case_id: CaseRef, evidence: EvidenceDep, principal: PrincipalDep) -> dict[str, Any]:
    found = resolve_case(evidence.cases, case_id)
    case = evidence.cases.get_case(found)
    items = [
        {**_shown(found, a), "erased": a["erased"], "readable": _may_read(principal, a) and not a["erased"]}
        for a in evidence.listing(case)
    ]
    return {"case_id": str(found), "number": case.number, "attachments": items}


@router.get(
    "/{case_id}/attachments/{sha256}",
    summary="One attachment's bytes, with its type (nosniff); 410 once erased with the petitioner",
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}, "application/pdf": {}}},
        403: {"description": "Not in the caller's area, or a petitioner's file and the role sees no personal data."},
        404: {"description": "The case has no such attachment."},
        410: {"description": "The file was erased with the petitioner's personal data."},
    },
)
def read_attachment(case_id: CaseRef, sha256: Sha256, evidence: EvidenceDep, principal: PrincipalDep) -> Response:
    return file_response(evidence, principal, evidence.cases.get_case(resolve_case(evidence.cases, case_id)), sha256)


def file_response(evidence: Evidence, principal: Principal, case: Case, sha256: str) -> Response:
    meta = next((a for a in case.evidence() if a["sha256"] == sha256), None)
    if meta is not None and not _may_read(principal, meta):
        raise AccessDeniedError("personal_data", "该附件含诉求人的个人信息，只有可查看个人信息的角色才能打开。")
    meta, data = evidence.read(case, sha256)
    inline = meta["content_type"].startswith("image/")
    disposition = "inline" if inline else "attachment"
    return Response(
        data,
        media_type=meta["content_type"],
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(meta['name'])}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
            "ETag": f'"{sha256}"',
        },
    )


def _may_read(principal: Principal, attachment: dict[str, Any]) -> bool:
    personal = carries_personal_data(attachment["stage"], (attachment.get("added_by") or {}).get("role", ""))
    return not personal or sees_personal_data(principal)


def _shown(case_id: UUID, a: dict[str, Any]) -> dict[str, Any]:
    shown = {k: a[k] for k in ("stage", "sha256", "content_type", "size", "name", "location_removed", "url")}
    shown |= {"added_at": a["added_at"], "added_by": a["added_by"]}
    shown["href"] = f"/cases/{case_id}/attachments/{a['sha256']}" if a["sha256"] else None
    return shown
