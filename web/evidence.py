"""The workbench's attachments: upload from the case page (a multipart form, which works without
JavaScript) and the files themselves for its thumbnails and links, through the same access rules
as the API's routes (api/access.py WORKBENCH) and the same checks (commands/evidence.py)."""

from __future__ import annotations

import hmac
from typing import Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.access import AccessDeniedError, PrincipalDep
from api.attachments import COMMAND, EvidenceDep, Sha256, attach, file_response, upload
from api.dependencies import CasesDep, CommandHeaders
from api.read_dependencies import ReadSideDep
from cases.errors import ActorNotAllowedError, CaseError
from cases.evidence import STAGES, carries_personal_data
from commands.errors import InvalidInputError, StaleVersionError
from web import labels
from web.pages import _case_context, page, query, templates
from web.session import csrf_token


def stages_for(role: str, status: str) -> dict[str, str]:
    """The stages this role may add files at in this status (the case stays the judge)."""
    return {s.value: labels.STAGES[s.value] for s, r in STAGES.items() if role in r.roles and status in r.when}


def personal(attachment: dict[str, Any]) -> bool:
    return carries_personal_data(attachment["stage"], (attachment.get("added_by") or {}).get("role", ""))


templates.env.globals.update(attach_stages=stages_for, personal_attachment=personal)

# Not the pages' router: its CSRF check reads urlencoded forms only; this one checks the multipart part.
router = APIRouter(include_in_schema=False)


@router.post(f"/workbench/cases/{{case_id}}/{COMMAND.path}", response_class=HTMLResponse)
async def upload_page(
    request: Request,
    case_id: UUID,
    read: ReadSideDep,
    cases: CasesDep,
    evidence: EvidenceDep,
    principal: PrincipalDep,
) -> Any:
    problems: list[str] = []
    status_code = 200
    try:
        given, data, fields = upload(request.headers.get("content-type", ""), await request.body(), None, None)
        sent = fields.get("csrf") or request.headers.get("x-csrf-token") or ""
        if not hmac.compare_digest(sent, csrf_token(request)):
            raise AccessDeniedError("csrf_failed", "表单已失效（跨站请求校验未通过）：请刷新页面后重新提交。")
        version = fields.get("version", "")
        headers = CommandHeaders(fields.get("idempotency_key") or None, int(version) if version.isdigit() else None)
        answer = await anyio.to_thread.run_sync(lambda: attach(evidence, principal, case_id, given, data, headers))
    except InvalidInputError as e:
        problems, status_code = [f"{e.field}：{e.reason}"], 413 if e.code == "attachment_too_large" else 422
    except StaleVersionError as e:
        problems, status_code = [e.message], 412
    except CaseError as e:
        problems, status_code = [e.message], 403 if isinstance(e, ActorNotAllowedError) else 409
    else:
        target = query(f"/workbench/cases/{case_id}", done=COMMAND.label, wait_for=answer["position"])
        return RedirectResponse(target, status_code=303)
    context = await anyio.to_thread.run_sync(lambda: _case_context(read, cases, case_id, principal))
    return page(request, "case.html", principal, status_code, done="", problems=problems, **context)


@router.get("/workbench/cases/{case_id}/attachments/{sha256}")
def file_page(case_id: UUID, sha256: Sha256, evidence: EvidenceDep, principal: PrincipalDep) -> Response:
    return file_response(evidence, principal, evidence.cases.get_case(case_id), sha256)
