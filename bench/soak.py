"""Soak: a steady load on a real `minqing serve` over PostgreSQL, for --minutes
(10 by default), printing the resident memory of each server process at the
start and at the end. Not a timed test: run it by hand before a release.

    python bench/soak.py [--minutes 10] [--rate 50] [--workers 2]

The load is open-loop at --rate requests/s from four threads, bounded in time:
registrations, reads of the case just registered, ledger pages and a live
event stream kept open throughout. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.http_commands import BENCH_SECURITY, REGISTRATION  # noqa: E402
from bench.projections import PG, drop, schema  # noqa: E402
from cases.vocabulary import Role  # noqa: E402
from config.settings import Settings  # noqa: E402
from security.tokens import TokenKeys  # noqa: E402
from tests.serving import free_port, wait_healthy  # noqa: E402

GRID = "35010500100101"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def family(pid: int) -> list[int]:
    """The server and its workers (children), by pid."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry.name))
    return [pid, *sorted(children)]


def memory(pid: int) -> dict[int, int]:
    return {p: rss_kib(p) for p in family(pid) if Path(f"/proc/{p}").exists()}


def load(base: str, token: str, rate: float, until: float, counts: dict[str, int], lock: threading.Lock) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        n = 0
        started = time.monotonic()
        while time.monotonic() < until:
            wait = started + n / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            n += 1
            try:
                created = http.post("/cases", json={**REGISTRATION, "grid": GRID})
                outcome = str(created.status_code)
                if created.status_code == 201:
                    http.get(f"/cases/{created.json()['case_id']}")
                    http.get("/ledger", params={"limit": 20})
            except httpx.HTTPError as e:
                outcome = type(e).__name__
            with lock:
                counts[outcome] = counts.get(outcome, 0) + 1


def listen(base: str, token: str, until: float, counts: dict[str, int]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < until:
        try:
            with (
                httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=30), headers=headers) as http,
                http.stream("GET", "/events/stream", params={"heartbeat": 5}) as response,
            ):
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        counts["streamed"] = counts.get("streamed", 0) + 1
                    if time.monotonic() >= until:
                        return
        except httpx.HTTPError:
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=50, help="registrations per second, in all")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    name = schema()
    url = f"{PG}?schema={name}"
    keys = TokenKeys.from_settings(Settings(**BENCH_SECURITY))
    clerk = keys.issue(Role.INTAKE_CLERK, "CL001", ttl=86400)
    auditor = keys.issue(Role.AUDITOR, "AU001", ttl=86400)
    env = {
        **os.environ,
        "MINQING_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "MINQING_RATE_LIMIT_PER_MINUTE": "1000000",
        "MINQING_JWT_SECRET": BENCH_SECURITY["jwt_secret"],
        "MINQING_MASTER_KEY": BENCH_SECURITY["master_key"],
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_healthy(base, server)
            time.sleep(2)
            start = memory(server.pid)
            print(f"RSS at start (KiB): {start}", flush=True)
            until = time.monotonic() + args.minutes * 60
            counts: dict[str, int] = {}
            lock = threading.Lock()
            threads = [
                threading.Thread(target=load, args=(base, clerk, args.rate / 4, until, counts, lock)) for _ in range(4)
            ]
            threads.append(threading.Thread(target=listen, args=(base, auditor, until, counts)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            end = memory(server.pid)
            print(f"RSS at end (KiB):   {end}", flush=True)
            print(f"outcomes: {counts}", flush=True)
            for pid, kib in end.items():
                print(f"  pid {pid}: {start.get(pid, 0)} -> {kib} KiB ({kib - start.get(pid, 0):+d})", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
            drop(name)


if __name__ == "__main__":
    main()
