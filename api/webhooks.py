"""Webhook subscriptions: create, list, read, pause, resume (from any position), delete, and the delivery log.
Deliveries themselves run in `minqing deliver` (or in-process in the embedded setup).

A subscription belongs to the token `sub` that created it: an integrator sees and manages its own
only (another's answers 404, as if it did not exist), an administrator every one."""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import Field, HttpUrl

from api.access import PrincipalDep, sees_personal_data
from api.dependencies import FeedDep, SettingsDep, WebhooksDep
from cases.inputs import Code, Short, Strict
from cases.vocabulary import Role
from commands.errors import InvalidInputError
from commands.records import MAX_POSITION
from streams.feed import EventFilter
from streams.webhooks import AddressRefusedError, checked_addresses

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SubscriptionId = Annotated[str, Path(max_length=36, description="The subscription's id.")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown or deleted subscription, or another owner's."},
    422: {"description": "Invalid input: each field with its reason."},
}


class SubscriptionIn(Strict):
    url: HttpUrl = Field(description="Where to POST each event (http or https).")
    types: list[Code] = Field(default_factory=list, max_length=30, description="Event types; empty: all.")
    unit: Code | None = Field(None, description="A grid, community, street, district or department code.")
    case: UUID | None = Field(None, description="Only this case's events.")
    after: int | None = Field(
        None,
        ge=0,
        le=MAX_POSITION,
        description="Deliver events after this log position; without it, from now on (0: the whole log).",
    )
    description: Short | None = None


class ResumeIn(Strict):
    after: int | None = Field(
        None, ge=0, le=MAX_POSITION, description="Move the position first: replay from or skip to here."
    )


def owner_scope(principal: PrincipalDep) -> str | None:
    """Whose subscriptions the caller sees: its own (the token's `sub`); an administrator, every one."""
    return None if principal.role == Role.ADMIN else principal.actor.id


OwnerScope = Annotated[str | None, Depends(owner_scope)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=ERRORS, summary="Subscribe a URL to case events")
def create(
    body: SubscriptionIn,
    response: Response,
    principal: PrincipalDep,
    hooks: WebhooksDep,
    feed: FeedDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    flt = EventFilter.parse(body.types, body.unit, body.case)
    if not settings.local_webhooks:
        try:
            checked_addresses(body.url.host or "", allow_local=False)
        except AddressRefusedError as e:
            raise InvalidInputError("url", f"{e.reason}（MINQING_WEBHOOK_ALLOW_LOCAL）") from None
    after = feed.head() if body.after is None else body.after
    # Deliveries carry personal data in clear only if whoever subscribed may read it (the `pii` grant).
    personal = sees_personal_data(principal)
    created = hooks.create(str(body.url), flt, after, body.description, owner=principal.actor.id, personal=personal)
    response.headers["Location"] = f"/webhooks/{created['id']}"
    return created


@router.get("", summary="Every subscription with its position and state (secrets are never listed)")
def list_all(hooks: WebhooksDep, owner: OwnerScope) -> dict[str, Any]:
    return {"items": hooks.subscriptions(owner=owner)}


@router.get("/{subscription_id}", responses=ERRORS, summary="One subscription")
def read(subscription_id: SubscriptionId, hooks: WebhooksDep, owner: OwnerScope) -> dict[str, Any]:
    return hooks.get(subscription_id, owner=owner)


@router.post("/{subscription_id}/pause", responses=ERRORS, summary="Stop delivering; the position is kept")
def pause(subscription_id: SubscriptionId, hooks: WebhooksDep, owner: OwnerScope) -> dict[str, Any]:
    return hooks.pause(subscription_id, owner=owner)


@router.post(
    "/{subscription_id}/resume",
    responses=ERRORS,
    summary="Deliver again (also out of dead_letter), optionally from another position",
)
def resume(
    subscription_id: SubscriptionId, hooks: WebhooksDep, owner: OwnerScope, body: ResumeIn | None = None
) -> dict[str, Any]:
    return hooks.resume(subscription_id, body.after if body else None, owner=owner)


class RotateIn(Strict):
    overlap_hours: float = Field(
        default=24, ge=0, le=168, description="How long the old secret keeps signing beside the new one (0: stop now)."
    )


@router.post(
    "/{subscription_id}/rotate-secret",
    responses=ERRORS,
    summary="A new signing secret (shown once); the old one keeps signing beside it for a while",
)
def rotate_secret(
    subscription_id: SubscriptionId, hooks: WebhooksDep, owner: OwnerScope, body: RotateIn | None = None
) -> dict[str, Any]:
    overlap = (body or RotateIn()).overlap_hours
    return hooks.rotate_secret(subscription_id, overlap, time.time(), owner=owner)


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS, summary="Unsubscribe")
def delete(subscription_id: SubscriptionId, hooks: WebhooksDep, owner: OwnerScope) -> Response:
    hooks.delete(subscription_id, owner=owner)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{subscription_id}/deliveries", responses=ERRORS, summary="The delivery log, newest first")
def deliveries(
    subscription_id: SubscriptionId,
    hooks: WebhooksDep,
    owner: OwnerScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"items": hooks.deliveries(subscription_id, limit, owner=owner)}
