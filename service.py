"""Composition: build the application in lifespan and wire HTTP to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import audit, errors, events, figures, health, ledger
from api import cases as cases_routes
from api.observability import configure_logging, request_log
from commands.cases import Cases
from commands.settings import Settings
from projections.runtime import ReadSide
from projections.store import open_views
from reference.model import ReferenceData, load_policy
from streams.feed import Feed
from streams.tail import Tail


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
        config = settings or Settings.from_environ()
        app.state.cases = build_cases(config)
        app.state.read_side = ReadSide(app.state.cases, open_views(config))
        app.state.feed = Feed(app.state.cases)
        app.state.tail = Tail(app.state.feed)
        if config.projections == "in-process":
            # The embedded setup; in production `minqing project` runs them apart.
            app.state.read_side.start_in_process()
        try:
            yield
        finally:
            await app.state.tail.stop()
            app.state.read_side.close()
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
    app.include_router(ledger.router)
    app.include_router(figures.router)
    app.include_router(audit.router)
    app.include_router(events.router)
    return app
