"""`GET /metrics` in the Prometheus text format.

Request, command and stream counts are kept per process; under several uvicorn
workers `minqing serve` sets PROMETHEUS_MULTIPROC_DIR and every worker's
numbers are summed. The log head, projections and webhooks are read from the
store at scrape time (they are the same for every worker)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.health import snapshot

router = APIRouter(tags=["operations"])
STREAM_ROUTE = "/events/stream"


class Metrics:
    """One app's instruments (a registry of its own: tests build many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "minqing_http_requests", "HTTP requests by route template and status",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "minqing_http_request_duration_seconds", "HTTP request latency by route template",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.commands = Counter(
            "minqing_commands", "Commands by name and outcome (accepted, refused, failed)",
            ["command", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.streams = Gauge(
            "minqing_sse_streams_open", "Live /events/stream subscribers",
            registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip


def command_name(method: str, route: str) -> str | None:
    if method != "POST" or not route.startswith("/cases"):
        return None
    return "register" if route == "/cases" else route.rsplit("/", 1)[-1]


def outcome(status: int) -> str:
    return "accepted" if status < 400 else "refused" if status < 500 else "failed"


class RequestMetrics:
    """A pure ASGI middleware: counts and times every request by its route template, streams included."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._series: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streaming = False

        async def sending(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                if _route(scope) == STREAM_ROUTE and status == 200:
                    streaming = True
                    self.metrics.streams.inc()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if streaming:
                self.metrics.streams.dec()
            count, latency, command = self._children(scope["method"], _route(scope), status)
            count.inc()
            latency.observe(time.perf_counter() - started)
            if command is not None:
                command.inc()

    def _children(self, method: str, route: str, status: int) -> tuple[Any, Any, Any]:
        """The labelled series of one (method, route, status), looked up once (issue 15)."""
        key = (method, route, status)
        found = self._series.get(key)
        if found is None:
            name = command_name(method, route)
            found = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.latency.labels(method, route),
                self.metrics.commands.labels(name, outcome(status)) if name is not None else None,
            )
            if len(self._series) < 10_000:  # route templates, not raw paths: few keys
                self._series[key] = found
        return found


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"  # never the raw path: ids would explode the labels


class StoreCollector:
    """The log head, projections and webhooks, read when scraped."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def collect(self) -> Iterator[Any]:
        state = self.request.app.state
        status = snapshot(state.cases, state.read_side)
        yield GaugeMetricFamily("minqing_log_head_position", "The log's last position", value=status["head"])
        position = GaugeMetricFamily("minqing_projection_position", "Each projection's position", labels=["projection"])
        lag = GaugeMetricFamily("minqing_projection_lag_events", "Events behind the head", labels=["projection"])
        seconds = GaugeMetricFamily(
            "minqing_projection_lag_seconds", "Age of the oldest event not yet projected", labels=["projection"]
        )
        for name, p in status["projections"].items():
            position.add_metric([name], p["position"])
            lag.add_metric([name], p["lag"])
            seconds.add_metric([name], p["lag_seconds"])
        yield from (position, lag, seconds)
        subscriptions = GaugeMetricFamily("minqing_webhook_subscriptions", "Subscriptions by state", labels=["state"])
        backlog = GaugeMetricFamily("minqing_webhook_backlog_events", "Events still to deliver", labels=["state"])
        for state_name in ("active", "paused", "dead_letter"):
            found = status["webhooks"].get(state_name, {"subscriptions": 0, "backlog": 0})
            subscriptions.add_metric([state_name], found["subscriptions"])
            backlog.add_metric([state_name], found["backlog"])
        yield from (subscriptions, backlog)
        dead = status["webhooks"].get("dead_letter", {}).get("subscriptions", 0)
        yield GaugeMetricFamily("minqing_webhook_dead_letters", "Subscriptions waiting in dead_letter", value=dead)


@router.get("/metrics", summary="Prometheus metrics (a `metrics` or `admin` token)", response_class=Response)
def metrics(request: Request) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = request.app.state.metrics.registry
    body = generate_latest(registry) + generate_latest(_store_registry(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _store_registry(request: Request) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(request))
    return registry
