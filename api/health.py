"""Liveness (`/healthz`), readiness (`/readyz`) and what both report: the log's head,
each projection's position and lag, and the webhook subscriptions' states."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, cast

from eventsourcing.domain import DomainEvent
from fastapi import APIRouter

from api.dependencies import CasesDep
from api.read_dependencies import PlainReadSideDep
from api.responses import JSONBody, error_body
from commands.cases import Cases
from projections.runtime import ReadSide

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and database reachability")
def healthz(cases: CasesDep) -> Any:
    try:
        position = cases.recorder.max_notification_id()
    except Exception as e:
        return JSONBody(error_body("database_unavailable", f"数据库不可用：{type(e).__name__}"), status_code=503)
    return {"status": "ok", "store": cases.factory.__class__.__module__.rsplit(".", 1)[-1], "position": position or 0}


def max_lag() -> int:
    return int(os.environ.get("MINQING_READY_MAX_LAG", "1000"))


def lag_seconds(cases: Cases, position: int, head: int) -> float:
    """How long the oldest event the projection has not applied has waited (0 when caught up)."""
    if position >= head:
        return 0.0
    for n in cases.recorder.select_notifications(start=position + 1, limit=1):
        try:
            stamp = cast(DomainEvent, cases.mapper.to_domain_event(n)).timestamp
        except Exception:  # a bookkeeping record, not an event
            return 0.0
        return max(0.0, (datetime.now(UTC) - stamp).total_seconds())
    return 0.0


def snapshot(cases: Cases, read_side: ReadSide) -> dict[str, Any]:
    """The log head, each projection's position and lag, and webhook subscriptions by state."""
    head = cases.recorder.max_notification_id() or 0
    projections = {}
    for runner in read_side.runners:
        position = runner.position
        projections[runner.projection.name] = {
            "position": position,
            "lag": max(0, head - position),
            "lag_seconds": round(lag_seconds(cases, position, head), 3),
        }
    rows = read_side.views.query(
        "SELECT status, COUNT(*) AS n, COALESCE(SUM(? - position), 0) AS backlog FROM webhook_subscriptions "
        "WHERE deleted_at IS NULL GROUP BY status",
        [head],
    )
    webhooks = {row["status"]: {"subscriptions": int(row["n"]), "backlog": int(row["backlog"])} for row in rows}
    return {"head": head, "projections": projections, "webhooks": webhooks}


@router.get("/readyz", summary="Readiness: the database answers and the ledger is not too far behind")
def readyz(cases: CasesDep, read: PlainReadSideDep) -> Any:
    try:
        status = snapshot(cases, read)
    except Exception as e:
        return JSONBody(error_body("database_unavailable", f"数据库不可用：{type(e).__name__}"), status_code=503)
    limit = max_lag()
    status["max_lag"] = limit
    status["dead_letters"] = status["webhooks"].get("dead_letter", {}).get("subscriptions", 0)
    ledger = status["projections"]["ledger"]["lag"]
    if ledger > limit:
        body = error_body("projection_behind", f"台账落后日志 {ledger} 条事件（上限 {limit}），暂不接收读请求。")
        return JSONBody({**body, **status}, status_code=503)
    return {"status": "ready", **status}
