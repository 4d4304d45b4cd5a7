from typing import Any

from fastapi import APIRouter

from api.dependencies import CasesDep
from api.errors import JSONBody, error_body

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and database reachability")
def healthz(cases: CasesDep) -> Any:
    try:
        position = cases.recorder.max_notification_id()
    except Exception as e:
        return JSONBody(error_body("database_unavailable", f"数据库不可用：{type(e).__name__}"), status_code=503)
    return {"status": "ok", "store": cases.factory.__class__.__module__.rsplit(".", 1)[-1], "position": position or 0}
