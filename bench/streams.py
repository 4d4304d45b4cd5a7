"""Live stream benchmark on PostgreSQL: 100 SSE subscribers over real HTTP.

    python bench/streams.py [--subscribers 100] [--rate 100] [--seconds 20] [--preload 12000] [--runs 3]

A `minqing serve --workers 2` on a throw-away schema; subscribers are async
httpx clients spread over two processes.

1. Replay: --preload case events are in the log; every subscriber connects
   with after=0 and reads them all. Events/s delivered = subscribers x events
   / wall time from the first connection to the last subscriber done.
2. Live: every subscriber follows the stream from now while two sender
   processes register petitions over HTTP at --rate commands/s for --seconds.
   Each delivery's delay runs from the moment the sender got its 201 to the
   moment the subscriber read the event (same host, same clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.projections import drop, fill, session  # noqa: E402
from config.settings import Settings  # noqa: E402
from service import build_cases  # noqa: E402
from tests.factories import CLERK, actor_json, registration  # noqa: E402
from tests.serving import free_port, wait_healthy  # noqa: E402

SUBJECT = b'"subject":"cases/'


def _auth(role: str, sub: str) -> dict[str, str]:
    """The throw-away server runs in development mode: tokens from the dev secret, in any process."""
    from cases.vocabulary import Role
    from security.tokens import TokenKeys

    keys = TokenKeys.from_settings(Settings(environment="development"))
    return {"Authorization": f"Bearer {keys.issue(Role(role), sub, ttl=86400)}"}


async def _subscribe(base: str, params: dict, want: Any, deadline: float, seen: list, ready: asyncio.Event) -> None:
    timeout = httpx.Timeout(10, read=30)
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout, headers=_auth("integrator", "bench")) as http,
        http.stream("GET", "/events/stream", params=params) as response,
    ):
        ready.set()
        count = 0
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                now = time.time()
                raw = line.encode()
                i = raw.find(SUBJECT) + len(SUBJECT)
                seen.append((raw[i : i + 36].decode(), now))
                count += 1
            # Checked on heartbeats too: the sender sets `want` once it knows how many it sent.
            if count >= want.value or time.time() > deadline:
                return


def subscribers(base: str, n: int, params: dict, want: Any, seconds: float, out: multiprocessing.Queue) -> None:
    """One process holding `n` stream connections; reports (connected_at, [(subject, received_at)] per client)."""

    async def run() -> None:
        deadline = time.time() + seconds
        seen: list[list] = [[] for _ in range(n)]
        readies = [asyncio.Event() for _ in range(n)]
        started = time.time()
        tasks = [asyncio.create_task(_subscribe(base, params, want, deadline, seen[i], readies[i])) for i in range(n)]
        await asyncio.gather(*(r.wait() for r in readies))
        out.put(("ready", time.time()))
        await asyncio.wait(tasks, timeout=max(1.0, deadline - time.time() + 5))
        for task in tasks:
            task.cancel()
        out.put(("done", started, seen))

    asyncio.run(run())


def send(base: str, rate: float, seconds: float, start_at: float, out: multiprocessing.Queue) -> None:
    """Open loop over four threads: registration n is due at start + n/rate, whatever
    the answers' latency; reports {case_id: (sent_at, acked_at)}."""
    acked: dict[str, tuple[float, float]] = {}
    threads = 4

    def worker(k: int) -> None:
        with httpx.Client(base_url=base, timeout=10, headers=_auth("intake_clerk", "CL001")) as http:
            n = k
            while (due := start_at + n / rate) - start_at < seconds:
                if (wait := due - time.time()) > 0:
                    time.sleep(wait)
                sent = time.time()
                body = {"actor": actor_json(CLERK), **registration(title=f"压测{n}")}
                response = http.post("/cases", json=body)
                if response.status_code == 201:
                    acked[response.json()["case_id"]] = (sent, time.time())
                n += threads

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(acked)


def _spread(base: str, count: int, params: dict, want: Any, seconds: float) -> tuple[list, multiprocessing.Queue]:
    out: multiprocessing.Queue = multiprocessing.Queue()
    halves = [count // 2, count - count // 2]
    processes = [
        multiprocessing.Process(target=subscribers, args=(base, k, params, want, seconds, out)) for k in halves if k
    ]
    for p in processes:
        p.start()
    return processes, out


def replay(base: str, count: int, events: int) -> dict[str, float]:
    processes, out = _spread(base, count, {"after": 0, "heartbeat": 1}, multiprocessing.Value("q", events), 600)
    messages = [out.get(timeout=900) for _ in range(2 * len(processes))]
    for p in processes:
        p.join(timeout=30)
    done = [m for m in messages if m[0] == "done"]
    started = min(m[1] for m in done)
    ended = max(seen[-1][1] for m in done for seen in m[2] if seen)
    delivered = sum(len(seen) for m in done for seen in m[2])
    return {"subscribers": count, "events": events, "delivered": delivered,
            "seconds": round(ended - started, 2), "events_per_s": round(delivered / (ended - started))}  # fmt: skip


def live(base: str, count: int, rate: float, seconds: float) -> dict[str, float]:
    # Subscribers stop once they have every event sent (or after a generous deadline: then `missing` counts).
    want = multiprocessing.Value("q", 10**12)
    processes, out = _spread(base, count, {"heartbeat": 1}, want, seconds + 60)
    ready = [out.get(timeout=120) for _ in processes]
    assert all(r[0] == "ready" for r in ready)
    start_at = time.time() + 1
    acks: multiprocessing.Queue = multiprocessing.Queue()
    senders = [multiprocessing.Process(target=send, args=(base, rate / 2, seconds, start_at, acks)) for _ in range(2)]
    for p in senders:
        p.start()
    acked: dict[str, tuple[float, float]] = {}
    for _ in senders:
        acked.update(acks.get(timeout=seconds + 60))
    want.value = len(acked)
    done = [out.get(timeout=seconds + 180) for _ in processes]
    for p in [*senders, *processes]:
        p.join(timeout=30)
    delays, from_send, missing, repeated, unasked = [], [], 0, 0, 0
    for message in done:
        for seen in message[2]:
            got: dict[str, float] = {}
            for subject, at in seen:
                got.setdefault(subject, at)
            repeated += len(seen) - len(got)
            unasked += len(got.keys() - acked.keys())
            for case_id, (sent, ack) in acked.items():
                if case_id in got:
                    delays.append(got[case_id] - ack)
                    from_send.append(got[case_id] - sent)
                else:
                    missing += 1
    delays.sort()
    from_send.sort()

    def pct(values: list[float], p: float) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)

    return {"subscribers": count, "commands_per_s": round(len(acked) / seconds, 1),
            "events_per_s_delivered": round(len(delays) / seconds),
            "missing": missing, "repeated": repeated, "not_acked": unasked,
            "delay_after_ack_p50_ms": pct(delays, 0.5), "delay_after_ack_p95_ms": pct(delays, 0.95),
            "delay_after_ack_p99_ms": pct(delays, 0.99), "delay_after_ack_max_ms": pct(delays, 1.0),
            "delay_from_send_p50_ms": pct(from_send, 0.5), "delay_from_send_p99_ms": pct(from_send, 0.99)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--preload", type=int, default=12_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    name, url, results = session(args)
    port = free_port()
    server = None
    try:
        cases = build_cases(Settings(database_url=url, environment="development"))
        preloaded = fill(cases, args.preload)
        cases.close()
        env = {**os.environ, "MINQING_DATABASE_URL": url, "PYTHONPATH": str(ROOT), "MINQING_ENV": "development",
               "MINQING_RATE_LIMIT_PER_MINUTE": "100000000"}  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", "2", "--projections", "external"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # Drain the server's log so a full pipe never stalls it.
        threading.Thread(target=lambda: server.stdout.read(), daemon=True).start()  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server)
        replays = [replay(base, args.subscribers, preloaded) for _ in range(args.runs)]
        results["replay"] = {
            "runs": replays,
            "median_events_per_s": statistics.median(r["events_per_s"] for r in replays),
        }
        lives = [live(base, args.subscribers, args.rate, args.seconds) for _ in range(args.runs)]
        results["live"] = {
            "runs": lives,
            "median_events_per_s_delivered": statistics.median(r["events_per_s_delivered"] for r in lives),
            "median_delay_after_ack_p50_ms": statistics.median(r["delay_after_ack_p50_ms"] for r in lives),
            "median_delay_after_ack_p99_ms": statistics.median(r["delay_after_ack_p99_ms"] for r in lives),
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        drop(name)
    out = ROOT / "bench" / "results" / "streams-postgres.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
