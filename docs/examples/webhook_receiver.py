"""A webhook receiver that checks Minqing's Standard Webhooks signature.

MINQING_WEBHOOK_SECRET=whsec_... python docs/examples/webhook_receiver.py [PORT]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["MINQING_WEBHOOK_SECRET"]  # shown once, when the subscription is created
seen: set[str] = set()  # at least once: drop repeats by webhook-id (keep this in your database)


def verified(headers: dict[str, str], body: bytes) -> bool:
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False  # too old or from the future: a replay
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1])
        for sig in headers["webhook-signature"].split()
        if sig.startswith("v1,")
    )


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not verified(headers, body):
            self.send_response(401)
        else:
            event = json.loads(body)
            if headers["webhook-id"] not in seen:
                seen.add(headers["webhook-id"])
                print(event["sequence"], event["type"], event["casenumber"], flush=True)
            self.send_response(204)  # any 2xx: delivered; anything else is retried with backoff
        self.end_headers()


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 9000), Receiver).serve_forever()
