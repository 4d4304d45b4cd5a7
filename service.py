"""Composition: build the application in lifespan and wire HTTP to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import cases as cases_routes
from api import errors, health
from api.observability import configure_logging, request_log
from commands.cases import Cases
from commands.settings import Settings
from reference.model import ReferenceData, load_policy


def build_cases(settings: Settings) -> Cases:
    return Cases(
        settings.eventsourcing_env(),
        reference=ReferenceData.load(settings.reference_path),
        policy=load_policy(settings.policy_path),
    )


def create_app(settings: Settings | None = None, *, log_cache: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(cache=log_cache)
        app.state.cases = build_cases(settings or Settings.from_environ())
        try:
            yield
        finally:
            app.state.cases.close()

    app = FastAPI(
        title="Minqing 民情",
        summary="Event-sourced petition case management: every action on a case is an immutable event.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.middleware("http")(request_log)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(cases_routes.router)
    return app
