"""How a notice leaves Minqing (docs/notices.md): a log line (the default, for
development and for offices whose SMS goes out another way), or an HTTP SMS
gateway (MINQING_SMS_URL), signed with MINQING_SMS_SECRET.

The phone number reaches the sender and, for the gateway, the request body;
it is never logged in clear (138****1234), and the gateway's answer is kept
only as a short code, never as text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
import orjson
import structlog

from security.masking import mask_phone

log = structlog.get_logger()

MAX_ANSWER = 4096  # bytes of the gateway's answer read, for its code only
SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")


@dataclass(frozen=True)
class Message:
    id: str  # the notice's id: the gateway's idempotency key, so a resend after a crash is one SMS
    phone: str
    text: str


@dataclass(frozen=True)
class Answer:
    ok: bool
    code: str  # "200", "200:OK", "503", "timeout", "connect", "transport"


class Sender(Protocol):
    name: str

    def send(self, message: Message) -> Answer: ...
    def close(self) -> None: ...


class LogSender:
    """Writes the notice as a structlog line: the text, and the number masked."""

    name = "log"

    def send(self, message: Message) -> Answer:
        log.info("notice_sms", notice=message.id, to=mask_phone(message.phone), text=message.text)
        return Answer(True, "logged")

    def close(self) -> None:
        return None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-Minqing-Signature`: sha256=HMAC-SHA256(secret, "<timestamp>." + body), hex."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class HttpSmsSender:
    """POSTs `{"id", "to", "text"}` as JSON to the gateway. 2xx is sent; anything else, or no
    answer within the timeout, is a failure to retry. The gateway may answer `{"code": …}`:
    that code is recorded beside the HTTP status (only if it is a short plain token)."""

    name = "http"

    def __init__(self, url: str, secret: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            follow_redirects=False,
            headers={"user-agent": "minqing-notify/1"},
        )

    def close(self) -> None:
        self.http.close()

    def send(self, message: Message) -> Answer:
        body = orjson.dumps({"id": message.id, "to": message.phone, "text": message.text})
        now = int(time.time())
        headers = {
            "content-type": "application/json",
            "idempotency-key": message.id,
            "x-minqing-timestamp": str(now),
            "x-minqing-signature": signature(self.secret, now, body),
        }
        try:
            with self.http.stream("POST", self.url, content=body, headers=headers) as response:
                status = response.status_code
                answer = b""
                for chunk in response.iter_bytes():
                    answer += chunk
                    if len(answer) >= MAX_ANSWER:
                        break
        except httpx.HTTPError as e:
            kind = "timeout" if isinstance(e, httpx.TimeoutException) else "transport"
            kind = "connect" if isinstance(e, httpx.ConnectError) else kind
            # The detail (no phone in it: the URL is the gateway's) for the operator's log only.
            log.info("notice_gateway_error", notice=message.id, error=repr(e))
            return Answer(False, kind)
        code = str(status)
        if own := _gateway_code(answer):
            code += f":{own}"
        return Answer(200 <= status < 300, code)


def _gateway_code(answer: bytes) -> str | None:
    try:
        parsed = orjson.loads(answer[:MAX_ANSWER])
    except orjson.JSONDecodeError:
        return None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    code = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
    return code if code and SAFE_CODE.match(code) else None
