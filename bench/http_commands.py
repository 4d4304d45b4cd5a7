"""Command benchmark on PostgreSQL: commands/s in-process and over HTTP, and
the orjson transcoder against the library's default.

    python bench/http_commands.py [--runs 3] [--commands 600] [--requests 1500] [--clients 16]

1. In-process, one thread: registrations/s and "load + command + save"
   commands/s (classify, assign, accept on fresh cases).
2. Transcoder: encode+decode of a stored Registered event, stdlib JSON vs
   orjson, and registrations/s with each on PostgreSQL.
3. HTTP: `minqing serve --workers 2 --projections external` on 127.0.0.1, then
   a bounded closed loop of --clients concurrent clients: POST /cases, then
   POST /cases/{id}/classify; requests/s and latency p50/p95/p99.
Each figure is the median of --runs runs in fresh throw-away schemas.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from uuid import UUID

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.projections import PG, drop, machine, schema  # noqa: E402
from cases.actor import Actor  # noqa: E402
from cases.vocabulary import HandlingType, Role, Tier  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.serving import free_port, wait_healthy  # noqa: E402

CLERK = Actor("CL001", Role.INTAKE_CLERK)
LEADER = Actor("GL0001", Role.GRID_LEADER)
GRIDS = ("35010500100101", "35010500200101", "35010510100101", "35010510200101")
REGISTRATION = {
    "channel": "hotline",
    "category": "housing",
    "title": "楼顶渗水",
    "description": "业主违章搭建导致居民住宅楼顶渗水，雨天屋内漏水严重。",
    "location": "马限社区3栋",
    "petitioner_name": "张秀英",
    "petitioner_phone": "13812341234",
}
# The benchmark's own deployment secrets: production mode (PostgreSQL) needs them.
BENCH_SECURITY = {"jwt_secret": "bench-secret-" + "x" * 32, "master_key": base64.b64encode(b"b" * 32).decode()}
TRANSCODERS = {"json": "eventsourcing.persistence:JSONTranscoder", "orjson": "commands.transcoder:OrjsonTranscoder"}


def in_process(commands: int, transcoder: str) -> dict[str, float]:
    name = schema()
    settings = Settings(database_url=f"{PG}?schema={name}", **BENCH_SECURITY)
    env = {**settings.eventsourcing_env(), "TRANSCODER_TOPIC": TRANSCODERS[transcoder]}
    from commands.cases import Cases
    from reference.model import ReferenceData, load_policy
    from security.vault import Vault

    cases = Cases(
        env, reference=ReferenceData.load(settings.reference_path), policy=load_policy(), vault=Vault.open(settings)
    )
    try:
        for _ in range(20):
            cases.register(CLERK, **REGISTRATION, grid=GRIDS[0])
        started = time.perf_counter()
        ids = [UUID(cases.register(CLERK, **REGISTRATION, grid=GRIDS[0]).case_id) for _ in range(commands)]
        registrations = commands / (time.perf_counter() - started)
        started = time.perf_counter()
        for case_id in ids[: commands // 3]:
            cases.classify(case_id, CLERK, handling_type=HandlingType.COMMITTED, tier=Tier.SMALL)
            cases.assign(case_id, CLERK, assignee="GL0001")
            cases.accept(case_id, LEADER)
        followups = 3 * (commands // 3) / (time.perf_counter() - started)
        stored = cases.recorder.select_events(ids[0])[0]
        state = cases.mapper.transcoder.decode(stored.state)
        started = time.perf_counter()
        for _ in range(20_000):
            cases.mapper.transcoder.decode(cases.mapper.transcoder.encode(state))
        codec = 20_000 / (time.perf_counter() - started)
        return {"registrations_per_s": registrations, "commands_per_s": followups, "codec_events_per_s": codec}
    finally:
        cases.close()
        drop(name)


def http(requests: int, clients: int) -> dict[str, float]:
    name = schema()
    port = free_port()
    env = {**os.environ, "MINQING_DATABASE_URL": f"{PG}?schema={name}", "PYTHONPATH": str(ROOT),
           "MINQING_JWT_SECRET": BENCH_SECURITY["jwt_secret"], "MINQING_MASTER_KEY": BENCH_SECURITY["master_key"],
           "MINQING_RATE_LIMIT_PER_MINUTE": "100000000"}  # fmt: skip
    from security.tokens import TokenKeys

    token = TokenKeys.from_settings(Settings(**BENCH_SECURITY)).issue(Role.INTAKE_CLERK, "CL001", ttl=86400)
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--workers", "2", "--projections", "external"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server)
        latencies: dict[str, list[float]] = {"register": [], "classify": []}
        ids: list[str] = []
        lock = threading.Lock()
        failures: list[str] = []

        def client(k: int, phase: str, share: int) -> None:
            with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as session:
                for _ in range(share):
                    started = time.perf_counter()
                    if phase == "register":
                        body = {**REGISTRATION, "grid": GRIDS[k % len(GRIDS)]}
                        response = session.post("/cases", json=body)
                    else:
                        with lock:
                            case_id = ids.pop()
                        body = {"handling_type": "committed", "tier": "small"}
                        response = session.post(f"/cases/{case_id}/classify", json=body)
                    elapsed = time.perf_counter() - started
                    with lock:
                        if response.status_code not in (200, 201):
                            failures.append(f"{response.status_code} {response.text[:200]}")
                        latencies[phase].append(elapsed)
                        if phase == "register" and response.status_code == 201:
                            ids.append(response.json()["case_id"])

        result: dict[str, float] = {}
        for phase in ("register", "classify"):
            threads = [threading.Thread(target=client, args=(k, phase, requests // clients)) for k in range(clients)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            values = sorted(latencies[phase])
            result[f"{phase}_requests_per_s"] = len(values) / elapsed
            for p in (50, 95, 99):
                result[f"{phase}_p{p}_ms"] = values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000
        if failures:
            raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[:3]}")
        return result
    finally:
        server.terminate()
        server.wait(timeout=20)
        drop(name)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=600)
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    results: dict[str, object] = {"machine": machine(), "args": vars(args)}
    for transcoder in TRANSCODERS:
        runs = [in_process(args.commands, transcoder) for _ in range(args.runs)]
        results[f"in_process_{transcoder}"] = {"median": median_of(runs), "runs": runs}
    runs = [http(args.requests, args.clients) for _ in range(args.runs)]
    results["http"] = {"median": median_of(runs), "runs": runs}
    out = ROOT / "bench" / "results" / "commands-postgres.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(json.dumps({k: v["median"] if isinstance(v, dict) and "median" in v else v for k, v in results.items()},
                     ensure_ascii=False, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
