"""The interactive API docs at /docs, from Swagger UI files shipped in the
package: on an intranet without internet the page still works, and it asks
no other host for anything (no CDN, no online validator)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.requests import Request
from starlette.staticfiles import StaticFiles

SWAGGER = Path(__file__).parent / "static" / "swagger"
ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Plain Starlette routes, like FastAPI's own docs: public, outside the
    OpenAPI document and so outside the rules table, as /openapi.json is."""

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} · API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_route("/docs", docs, include_in_schema=False)
    app.mount(ASSETS, StaticFiles(directory=SWAGGER), name="swagger-ui")
