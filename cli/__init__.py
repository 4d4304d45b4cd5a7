"""The `minqing` command: serve the API, load the demo district, and more."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from config.settings import InsecureConfigurationError, Settings
from storage.views import SchemaMissingError


def _serve(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    # Before prometheus_client is imported anywhere: every worker writes its counts here, /metrics sums them.
    metrics_dir = tempfile.mkdtemp(prefix="minqing-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _run_server(args)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_server(args: argparse.Namespace) -> int:
    import uvicorn

    from api.observability import uvicorn_log_config
    from service import build_cases, migrate

    settings = Settings.from_environ()
    try:
        settings.check_secrets()  # production refuses to start on development secrets
    except InsecureConfigurationError as e:
        print(f"minqing: refusing to start: {e}", file=sys.stderr)
        return 2
    # Tables are created here, once, before any worker starts; workers only check they are there.
    migrate(settings)
    cases = build_cases(settings)
    try:
        if args.demo:
            from demo.stories import load_demo, load_imported

            if (cases.recorder.max_notification_id() or 0) == 0:
                print("Loading the demo district (马尾区) …", file=sys.stderr)
                summary = load_demo(cases, count=args.demo_cases)
                summary |= load_imported(cases)  # this morning's 12345 and 110 exports
                print(f"Demo loaded: {summary}", file=sys.stderr)
                print(f"Demo photos: {_demo_photos(settings, cases)}", file=sys.stderr)
            else:
                print("The store already holds events: demo not reloaded.", file=sys.stderr)
    finally:
        cases.close()
    os.environ["MINQING_PROJECTIONS"] = args.projections
    if args.notices:
        os.environ["MINQING_NOTICES"] = "in-process"
    where = settings.database_url.split("@")[-1] if settings.database_url else settings.sqlite_path
    print(f"Minqing on http://{args.host}:{args.port}/docs  (store: {settings.store}, {where})", file=sys.stderr)
    print(f"Workbench (工作台): open http://{args.host}:{args.port}/ in a browser and sign in", file=sys.stderr)
    if settings.jwt_secret is None and settings.jwt_public_key is None:
        print("Development mode (dev secret): `minqing token dev` prints a token per role.", file=sys.stderr)
    uvicorn.run(
        "service:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http="httptools",
        loop="uvloop",
        access_log=False,
        timeout_graceful_shutdown=5,
        log_config=uvicorn_log_config(),  # a backstop: live streams end on shutdown by themselves
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from service import migrate

    settings = Settings.from_environ()
    migrate(settings)
    print(f"minqing: schema ready ({settings.store})", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from demo.stories import load_demo, load_imported
    from service import build_cases, migrate

    settings = Settings.from_environ()
    migrate(settings)  # like `serve`: the demo is what a new store starts with
    cases = build_cases(settings)
    try:
        print(load_demo(cases, count=args.cases) | load_imported(cases))
        print({"photos": _demo_photos(settings, cases)})
    finally:
        cases.close()
    return 0


def _demo_photos(settings: Settings, cases: Any) -> dict[str, int]:
    """The demo's attachments (demo/evidence.py), in the configured attachment store."""
    from commands.evidence import Evidence
    from demo.evidence import add_photos
    from storage.blobs import open_blobs

    blobs = open_blobs(settings)
    try:
        return add_photos(Evidence(cases, blobs, max_bytes=settings.attachment_max_bytes))
    finally:
        blobs.close()


def _project(args: argparse.Namespace) -> int:
    import signal
    import threading

    import structlog

    from api.observability import configure_logging
    from projections.runtime import ReadSide
    from service import build_cases
    from storage.views import open_views

    configure_logging()
    settings = Settings.from_environ()
    cases = build_cases(settings)
    read_side = ReadSide(cases, open_views(settings))
    log = structlog.get_logger()
    try:
        if args.once:
            for runner in read_side.runners:
                if not runner.lock.acquire():
                    print(f"{runner.projection.name}: another runner is active; nothing done", file=sys.stderr)
                    continue
                try:
                    consumed = runner.catch_up()
                finally:
                    runner.lock.release()
                print(f"{runner.projection.name}: caught up {consumed} log records, at {runner.position}")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.info("projection_worker_started", projections=[r.projection.name for r in read_side.runners])
        threads = [
            threading.Thread(target=r.run_forever, args=(stop,), name=r.projection.name) for r in read_side.runners
        ]
        for thread in threads:
            thread.start()
        while not stop.wait(5):
            for runner in read_side.runners:
                head = cases.recorder.max_notification_id() or 0
                log.info("projection_lag", projection=runner.projection.name, lag=head - runner.position)
        for thread in threads:
            thread.join()
        return 0
    finally:
        read_side.close()
        cases.close()


def _deliver(args: argparse.Namespace) -> int:
    import signal
    import threading

    import structlog

    from api.observability import configure_logging
    from service import build_cases, build_deliverer
    from storage.views import open_views
    from streams.feed import Feed
    from streams.webhooks import Webhooks

    configure_logging()
    settings = Settings.from_environ()
    cases = build_cases(settings)
    views = open_views(settings)
    deliverer = build_deliverer(Feed(cases), Webhooks(views), settings, concurrency=args.concurrency)
    try:
        if args.once:
            total = 0
            while delivered := deliverer.run_once():
                total += delivered
            print(f"delivered {total} messages")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        structlog.get_logger().info("webhook_worker_started", owner=deliverer.owner)
        deliverer.run_forever(stop)
        return 0
    finally:
        deliverer.close()
        views.close()
        cases.close()


def _relay_nats(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from api.observability import configure_logging
    from service import build_cases
    from storage.views import missing_tables, open_views, table_names
    from streams.feed import Feed
    from streams.nats_relay import TABLES, NatsRelay, RelayTarget

    configure_logging()
    settings = Settings.from_environ()
    cases = build_cases(settings)
    views = open_views(settings)
    target = RelayTarget(settings.nats_url, settings.nats_stream, settings.nats_subject)
    relay = NatsRelay(Feed(cases), views, target)

    async def run() -> int:
        await relay.connect()
        try:
            if args.once:
                # A page may hold no case event yet end short of the head (a long run of bookkeeping rows).
                while await relay.run_once() or (relay.position is not None and relay.position < relay.feed.head()):
                    pass
                where = relay.position if relay.position is not None else "standing by: another relay holds the lease"
                print(f"published {relay.published} events to {target.stream}, at position {where}")
                return 0
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await relay.run_forever(stop)
            return 0
        finally:
            await relay.close()

    try:
        if missing := missing_tables(views, table_names(TABLES)):
            raise SchemaMissingError(missing)
        return asyncio.run(run())
    finally:
        views.close()
        cases.close()


def _notify(args: argparse.Namespace) -> int:
    import signal
    import threading

    import structlog

    from api.observability import configure_logging
    from service import build_cases, build_notifier
    from storage.views import open_views

    configure_logging()
    settings = Settings.from_environ()
    cases = build_cases(settings)
    views = open_views(settings)
    try:
        notifier = build_notifier(cases, views, settings)
        try:
            if args.once:
                counts = notifier.run_once()
                print("notices: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none due"))
                return 0
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            structlog.get_logger().info("notice_worker_started", owner=notifier.owner, sender=notifier.sender.name)
            notifier.run_forever(stop)
            return 0
        finally:
            notifier.close()
    finally:
        views.close()
        cases.close()


# The processes that open the store or the key vault; `keys new`, `token …` need no database.
SECURED = frozenset(
    {
        "serve",
        "project",
        "deliver",
        "notify",
        "migrate",
        "demo",
        "erase",
        "replay",
        "rebuild",
        "verify",
        "seal",
        "import",
        "relay-nats",
    }
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minqing", description="民情 petition case management")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API (SQLite by default; MINQING_DATABASE_URL for PostgreSQL)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="load the demo district first if the store is empty")
    serve.add_argument("--demo-cases", type=int, default=600)
    serve.add_argument(
        "--projections",
        choices=["in-process", "external"],
        default=os.environ.get("MINQING_PROJECTIONS", "in-process"),
        help="in-process (embedded) or external (run `minqing project` workers)",
    )
    serve.add_argument(
        "--notices",
        action="store_true",
        help="send notices to residents from this process too (else run `minqing notify`)",
    )
    serve.set_defaults(run=_serve)

    project = sub.add_parser(
        "project", help="run the projections as a separate worker (run several: one is active, the rest stand by)"
    )
    project.add_argument("--once", action="store_true", help="catch up to the head of the log and exit")
    project.set_defaults(run=_project)

    deliver = sub.add_parser(
        "deliver", help="deliver webhook subscriptions (run several: each subscription is leased to one at a time)"
    )
    deliver.add_argument("--once", action="store_true", help="deliver what is due now and exit")
    deliver.add_argument("--concurrency", type=int, default=8, help="subscriptions served in parallel")
    deliver.set_defaults(run=_deliver)

    notify = sub.add_parser(
        "notify", help="send notices to residents (短信; run several: each notice is leased to one at a time)"
    )
    notify.add_argument("--once", action="store_true", help="send what is due now and exit")
    notify.set_defaults(run=_notify)

    migrate = sub.add_parser(
        "migrate", help="create or update every table (idempotent; run once before `project`, `deliver` or workers)"
    )
    migrate.set_defaults(run=_migrate)

    demo = sub.add_parser("demo", help="register demo cases through every path of the lifecycle")
    demo.add_argument("--cases", type=int, default=600)
    demo.set_defaults(run=_demo)

    relay = sub.add_parser(
        "relay-nats",
        help="publish the event stream into NATS JetStream (MINQING_NATS_URL; run several: one is active)",
    )
    relay.add_argument("--once", action="store_true", help="publish up to the head of the log and exit")
    relay.set_defaults(run=_relay_nats)

    from cli.imports import add_commands as add_import_commands
    from cli.replay import add_commands
    from cli.security import add_commands as add_security_commands

    add_commands(sub)
    add_security_commands(sub)
    add_import_commands(sub)

    args = parser.parse_args(argv)
    try:
        if args.command in SECURED:
            Settings.from_environ().check_secrets()  # before any database: a bad configuration is the first thing said
        return int(args.run(args))
    except InsecureConfigurationError as e:
        print(f"minqing: refusing to start: {e}", file=sys.stderr)
        return 2
    except SchemaMissingError as e:
        print(f"minqing: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
