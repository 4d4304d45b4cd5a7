"""Follow Minqing's case events live and resume exactly where we left off.

    MINQING_TOKEN=… python docs/examples/follow_events.py [BASE_URL] [--max N] [--state FILE]

MINQING_TOKEN is an integrator's (or auditor's) bearer token:
`minqing token issue --role integrator --sub my-system`.

Keeps the last handled position in a file; after a crash, a network cut or a
restart it reconnects with Last-Event-ID and receives every event once.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import httpx


def handle(event: dict) -> None:
    # Your integration goes here. Keep it idempotent on event["id"]: a crash
    # after handling but before saving the position replays that one event.
    print(event["sequence"], event["type"].rsplit(".", 1)[-1], event["casenumber"], flush=True)


def follow(base: str, state: Path, limit: int | None) -> None:
    handled = 0
    while limit is None or handled < limit:
        last = state.read_text().strip() if state.exists() else "0"
        try:
            headers = {"Last-Event-ID": last, "Authorization": f"Bearer {os.environ.get('MINQING_TOKEN', '')}"}
            with httpx.stream(
                "GET", f"{base}/events/stream", headers=headers, timeout=httpx.Timeout(10, read=60)
            ) as response:
                response.raise_for_status()
                event_id, data = None, []
                for line in response.iter_lines():
                    if line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        handle(json.loads("\n".join(data)))
                        state.write_text(event_id or last)  # our place in the log
                        data, handled = [], handled + 1
                        if limit is not None and handled >= limit:
                            return
        except httpx.TransportError as e:
            print(f"disconnected ({e!r}); resuming after {last}", flush=True)
            time.sleep(2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--max", type=int, default=None, help="stop after this many events")
    parser.add_argument("--state", type=Path, default=Path("minqing-position.txt"))
    args = parser.parse_args()
    follow(args.base.rstrip("/"), args.state, args.max)
