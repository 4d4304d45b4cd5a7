"""A real HTTP webhook receiver for tests: records what arrives, fails on demand,
and checks signatures with its own reading of the Standard Webhooks spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

Answer = int | tuple[int, bytes]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return orjson.loads(self.body)


def signature_valid(secret: str, received: Received, tolerance: float = 300) -> bool:
    # Independent of streams.webhooks: the spec's steps, written out again.
    msg_id = received.headers["webhook-id"]
    timestamp = received.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(
        hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + received.body, hashlib.sha256).digest()
    ).decode()
    offered = [s.split(",", 1)[1] for s in received.headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


class Receiver:
    def __init__(self, answer: Callable[[int], Answer]) -> None:
        # attempt number (1-based, over all requests) -> HTTP status, or status and body
        self.answer = answer
        self.attempts = 0
        self.accepted: list[Received] = []
        self.refused = 0
        self.lock = threading.Lock()
        self.url = ""

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.attempts += 1
            answer = self.answer(self.attempts)
            status, content = answer if isinstance(answer, tuple) else (answer, b"")
            if 200 <= status < 300:
                self.accepted.append(Received(headers, body))
            else:
                self.refused += 1
            return status, content

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len({r.headers["webhook-id"] for r in self.accepted}) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.accepted)} of {count} messages after {timeout} s")
            time.sleep(0.05)


@contextmanager
def receiving(answer: Callable[[int], Answer] = lambda _: 204) -> Iterator[Receiver]:
    receiver = Receiver(answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status, content = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/minqing"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
