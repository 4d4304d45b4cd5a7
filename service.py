"""Composition: build the application in lifespan and wire HTTP to it."""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import attachments as attachment_routes
from api import (
    audit,
    errors,
    events,
    figures,
    health,
    imports,
    ledger,
    metrics,
    open311,
    persons,
    recurring,
    webhooks,
)
from api import cases as cases_routes
from api import docs as api_docs
from api.access import authorize
from api.command_path import CommandPath
from api.limits import InputGuard, RateLimiter
from api.metrics import Metrics, RequestMetrics
from api.observability import RequestLog, configure_logging
from api.read_dependencies import ReadYourWrites
from commands.cases import Cases
from commands.evidence import Evidence
from config.settings import Settings
from projections.runner import create_tables as create_projection_tables
from projections.runner import required_tables
from projections.runtime import PROJECTIONS, ReadSide
from reference.model import ReferenceData, load_policy
from security.tokens import TokenKeys
from security.vault import TABLES as VAULT_TABLES
from security.vault import Vault
from security.vault import create_tables as create_vault_tables
from security.vault import open_store as vault_store
from storage.blobs import open_blobs
from storage.views import (
    PostgresViews,
    SchemaMissingError,
    SqliteViews,
    missing_tables,
    open_views,
    schema_lock,
    table_names,
)
from streams.delivery import BACKOFF, Deliverer
from streams.feed import Feed
from streams.nats_relay import create_tables as create_relay_tables
from streams.notify import BACKOFF as NOTICE_BACKOFF
from streams.notify import TABLES as NOTICE_TABLES
from streams.notify import Notifier, Texts
from streams.notify import create_tables as create_notice_tables
from streams.senders import HttpSmsSender, LogSender, Sender
from streams.tail import Tail
from streams.webhooks import TABLES as WEBHOOK_TABLES
from streams.webhooks import Webhooks
from streams.webhooks import create_tables as create_webhook_tables
from web import evidence as workbench_evidence
from web import pages as workbench

UPLOAD_PATHS = re.compile(r"(/workbench)?/cases/[^/]+/attachments")

# Declares the scheme in OpenAPI (the Authorize button in /docs); `authorize` does the checking.
bearer = HTTPBearer(auto_error=False, description="`minqing token issue --role …` (docs/security.md)")


async def access(
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    __: Annotated[None, Depends(authorize)],
) -> None:
    return None


def build_cases(settings: Settings) -> Cases:
    """The application on a migrated store; SchemaMissingError names what `minqing migrate` would create."""
    check_schema(settings)
    return Cases(
        settings.eventsourcing_env(),
        reference=ReferenceData.load(settings.reference_path),
        policy=load_policy(settings.policy_path),
        vault=Vault.open(settings),
    )


def migrate(settings: Settings) -> None:
    """Every table, once and idempotently, one migration at a time: the only place tables are created."""
    with schema_lock(settings):
        Cases(
            settings.eventsourcing_env(create_table=True),
            reference=ReferenceData.load(settings.reference_path),
            policy=load_policy(settings.policy_path),
        ).close()
        keys = vault_store(settings)
        views = open_views(settings)
        try:
            create_vault_tables(keys)
            for projection in PROJECTIONS:
                create_projection_tables(views, projection())
            create_webhook_tables(views)
            create_notice_tables(views)
            create_relay_tables(views)
        finally:
            views.close()
            keys.close()


def check_schema(settings: Settings) -> None:
    keys = vault_store(settings)
    views = open_views(settings)
    try:
        # eventsourcing names the log `<application>_events` on PostgreSQL, `stored_events` on SQLite.
        events = f"{Cases.name}_events" if settings.database_url else "stored_events"
        missing = missing_tables(keys, [events, *table_names(VAULT_TABLES)])
        view_tables = [*table_names(WEBHOOK_TABLES), *table_names(NOTICE_TABLES)]
        for projection in PROJECTIONS:
            view_tables += [t for t in required_tables(projection()) if t not in view_tables]
        missing += missing_tables(views, view_tables)
    finally:
        views.close()
        keys.close()
    if missing:
        raise SchemaMissingError(missing)


def build_deliverer(feed: Feed, hooks: Webhooks, settings: Settings, **options: Any) -> Deliverer:
    return Deliverer(
        feed,
        hooks,
        backoff=settings.webhook_backoff or BACKOFF,
        lease=settings.webhook_lease,
        log_days=settings.webhook_log_days,
        allow_local=settings.local_webhooks,
        **options,
    )


def build_sender(settings: Settings) -> Sender:
    settings.check_notices()
    if settings.notice_sender == "http":
        assert settings.sms_url and settings.sms_secret  # check_notices refused otherwise
        return HttpSmsSender(settings.sms_url, settings.sms_secret, timeout=settings.sms_timeout)
    return LogSender()


def build_notifier(cases: Cases, views: SqliteViews | PostgresViews, settings: Settings, **options: Any) -> Notifier:
    """The notice worker (docs/notices.md); `options` override the settings (tests: sender, clock)."""
    chosen: dict[str, Any] = {
        "sender": build_sender(settings) if "sender" not in options else options.pop("sender"),
        "texts": Texts(settings.notice_sign, settings.notice_hotline, settings.notice_link),
        "backoff": settings.notice_backoff or NOTICE_BACKOFF,
        "max_attempts": settings.notice_max_attempts,
        "lease": settings.notice_lease,
    }
    return Notifier(cases, views, **(chosen | options))


def on_exit_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` on the event loop when the server is told to stop (SIGINT/SIGTERM), then let
    uvicorn's own handler run: uvicorn waits for open connections before the lifespan ends, and a
    live stream never closes by itself. Returns what restores the handlers (a no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(sig: int, frame: Any) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)
        elif chained == signal.SIG_DFL:
            signal.signal(sig, chained)
            signal.raise_signal(sig)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, chained in previous.items():
            signal.signal(sig, chained)

    return restore


def create_app(settings: Settings | None = None, *, log_cache: bool = True) -> FastAPI:
    config = settings or Settings.from_environ()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(cache=log_cache)
        app.state.settings = config
        app.state.token_keys = TokenKeys.from_settings(config)  # refuses production without secrets
        app.state.rate_limiter = RateLimiter(config.rate_limit_per_minute)
        app.state.cases = build_cases(config)
        app.state.read_side = ReadSide(app.state.cases, open_views(config))
        app.state.read_your_writes = ReadYourWrites(app.state.read_side)
        app.state.feed = Feed(app.state.cases)
        app.state.tail = Tail(app.state.feed)
        app.state.stream_slots = events.StreamSlots(config.stream_max_per_token)
        restore_signals = on_exit_signal(app.state.tail.close_streams)
        app.state.webhooks = Webhooks(app.state.read_side.views, max_per_owner=config.webhook_max_per_owner)
        app.state.open311_keys = config.api_keys()
        app.state.blobs = open_blobs(config)
        app.state.evidence = Evidence(app.state.cases, app.state.blobs, max_bytes=config.attachment_max_bytes)
        stop_delivery = stop_notices = None
        if config.notices == "in-process":
            # Off by default: `minqing notify` sends them; `minqing serve --notices` runs it here (the demo).
            stop_notices = build_notifier(app.state.cases, app.state.read_side.views, config).start_in_thread()
        if config.projections == "in-process":
            # The embedded setup; in production `minqing project` and `minqing deliver` run apart.
            app.state.read_side.start_in_process()
            stop_delivery = build_deliverer(app.state.feed, app.state.webhooks, config).start_in_thread()
        try:
            yield
        finally:
            restore_signals()
            if stop_delivery is not None:
                stop_delivery()
            if stop_notices is not None:
                stop_notices()
            await app.state.tail.stop()
            app.state.read_side.close()
            app.state.blobs.close()
            app.state.cases.close()

    app = FastAPI(
        title="Minqing 民情",
        summary="Event-sourced petition case management: every action on a case is an immutable event.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(access)],
        docs_url=None,  # served from the package's own files (api/docs.py), not a CDN
        redoc_url=None,
    )
    # Innermost: the command table's own ASGI path (api/command_path.py), inside the log, metrics and guard.
    app.add_middleware(CommandPath)
    app.add_middleware(RequestLog)
    app.state.metrics = Metrics()
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    # A file's request may be as large as an attachment (plus a multipart envelope); every other stays small.
    uploads = (UPLOAD_PATHS, max(config.max_body_bytes, config.attachment_max_bytes + 64 * 1024))
    app.add_middleware(
        InputGuard,
        max_bytes=config.max_body_bytes,
        larger={"/imports": config.max_import_bytes},
        uploads=uploads,
        admit=attachment_routes.admit_upload,
    )
    errors.install(app)
    api_docs.install(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(attachment_routes.router)
    app.include_router(cases_routes.router)
    app.include_router(ledger.router)
    app.include_router(figures.router)
    app.include_router(recurring.router)
    app.include_router(audit.router)
    app.include_router(events.router)
    app.include_router(persons.router)
    app.include_router(webhooks.router)
    app.include_router(open311.router)
    app.include_router(imports.router)
    app.include_router(workbench_evidence.router)
    workbench.install(app)  # the browser pages (工作台), after the error handlers it shows as pages
    return app
