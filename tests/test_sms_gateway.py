"""The HTTP SMS gateway sender (docs/notices.md), against a real local HTTP server:
signed requests, a gateway that fails and then recovers, giving up, and refusing a
configuration that could not work."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from config.settings import InsecureConfigurationError, Settings
from service import build_notifier
from streams.notify import Notifier
from tests.api_steps import Driver
from tests.factories import CLERK, auth
from tests.receiver import Received, receiving

SECRET = "sms-gateway-test-secret-0123456789"


class Ticks:
    """The worker's clock (leases, backoff), moved by the test: no waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def gateway_settings(settings: Settings, url: str, **more: Any) -> Settings:
    return dataclasses.replace(settings, notice_sender="http", sms_url=url, sms_secret=SECRET, **more)


def worker(client: TestClient, settings: Settings, ticks: Ticks) -> Notifier:
    state = client.app.state  # type: ignore[attr-defined]
    return build_notifier(state.cases, state.read_side.views, settings, clock=ticks)


def signed_by_secret(received: Received) -> bool:
    # Written out again from docs/notices.md, independent of streams.senders.
    timestamp = received.headers["x-minqing-timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["x-minqing-signature"], "sha256=" + expected)


def notices_in(client: TestClient, case_id: str) -> list[dict[str, Any]]:
    events = client.get(f"/cases/{case_id}/history", headers=auth(CLERK)).json()["events"]
    return [e for e in events if e["type"] in ("NoticeSent", "NoticeFailed", "NoticeStopped")]


def answers(*script: int | tuple[int, bytes]) -> Callable[[int], int | tuple[int, bytes]]:
    return lambda attempt: script[min(attempt, len(script)) - 1]


def test_a_gateway_that_fails_then_recovers_gets_the_notice_on_the_retry(
    client: TestClient, driver: Driver, settings: Settings
) -> None:
    case_id = driver.register()
    number = client.get(f"/cases/{case_id}", headers=auth(CLERK)).json()["number"]
    ticks = Ticks()
    with receiving(answers(503, (200, b'{"code": "OK", "detail": "queued for 13812341234"}'))) as gateway:
        notifier = worker(client, gateway_settings(settings, gateway.url), ticks)
        try:
            assert notifier.run_once() == {"retrying": 1}
            assert notifier.run_once() == {}  # backing off: not yet
            ticks.now += 30
            assert notifier.run_once() == {"sent": 1}
            ticks.now += 3600
            assert notifier.run_once() == {}
        finally:
            notifier.close()
    assert gateway.attempts == 2
    [received] = gateway.accepted
    assert signed_by_secret(received)
    body = orjson.loads(received.body)
    assert body["to"] == "13812341234" and number in body["text"]
    assert received.headers["idempotency-key"] == body["id"]
    failed, sent = notices_in(client, case_id)
    assert (failed["label"], failed["payload"]["attempt"], failed["payload"]["code"]) == ("短信发送失败", 1, "503")
    assert failed["payload"]["final"] is False
    # The gateway's own code is kept, its words are not (they may hold the number).
    assert (sent["label"], sent["payload"]["attempt"], sent["payload"]["code"]) == ("已发送短信", 2, "200:OK")
    assert sent["payload"]["sender"] == "http"
    feed = client.get("/events", params={"case": case_id}).json()["events"]
    assert [e["type"].rsplit(".", 1)[1] for e in feed][-2:] == ["NoticeFailed", "NoticeSent"]
    assert "13812341234" not in repr(feed)


def test_a_gateway_that_keeps_failing_is_given_up_after_the_last_attempt(
    client: TestClient, driver: Driver, settings: Settings
) -> None:
    case_id = driver.register()
    ticks = Ticks()
    with receiving(answers(500)) as gateway:
        notifier = worker(client, gateway_settings(settings, gateway.url, notice_max_attempts=3), ticks)
        try:
            for _ in range(5):
                notifier.run_once()
                ticks.now += 100_000
        finally:
            notifier.close()
    assert gateway.attempts == 3
    attempts = [(e["payload"]["attempt"], e["payload"]["final"]) for e in notices_in(client, case_id)]
    assert attempts == [(1, False), (2, False), (3, True)]


def test_a_gateway_that_cannot_be_reached_is_a_failure_to_retry(
    client: TestClient, driver: Driver, settings: Settings
) -> None:
    case_id = driver.register()
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/sms"
    notifier = worker(client, gateway_settings(settings, url), Ticks())
    try:
        assert notifier.run_once() == {"retrying": 1}
    finally:
        notifier.close()
    [failed] = notices_in(client, case_id)
    assert (failed["type"], failed["payload"]["code"]) == ("NoticeFailed", "connect")


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"notice_sender": "carrier-pigeon"}, "MINQING_NOTICE_SENDER"),
        ({"notice_sender": "http", "sms_url": None, "sms_secret": SECRET}, "MINQING_SMS_URL"),
        ({"notice_sender": "http", "sms_url": "http://gw.example/sms", "sms_secret": "short"}, "MINQING_SMS_SECRET"),
        (
            {"notice_sender": "http", "sms_url": "http://gw.example/sms", "sms_secret": SECRET, "environment": "prod"},
            "https://",
        ),
    ],
)
def test_a_sender_configuration_that_cannot_work_is_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(InsecureConfigurationError, match=says):
        dataclasses.replace(Settings(), **changes).check_notices()
