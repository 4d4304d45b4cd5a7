"""Scale-out on one PostgreSQL: a mixed read/write load against 1, 2 and 4 HTTP processes.

    python bench/scaleout.py [--servers 1,2,4] [--seconds 15] [--runs 3] [--connections 16] [--cases 300]

1. A database of its own (`bench_scaleout`, dropped at the end): `minqing migrate`, then
   `minqing demo --cases N` (every path of the lifecycle, so the board has every colour).
2. `minqing project` and `minqing deliver` run apart, as separate processes, for the whole
   benchmark; one webhook subscription (every event) to a sink in this process gives the
   deliverer real work, as in production.
3. For each count N: N `minqing serve --workers 1 --projections external` processes, each on
   its own port. Not `--workers N`: separate processes are what "more servers" means (more
   machines behind a load balancer), each one's CPU and memory can be read from /proc by its
   pid, and wrk spreads its connections exactly evenly over them (bench/scaleout.lua gives each
   wrk thread one server, like a round-robin balancer), where `--workers N` shares one socket
   and the kernel's accept order decides which worker gets wrk's long-lived connections.
4. wrk (4 threads, --connections connections) runs the mix of bench/scaleout.lua: 10 %
   registrations, 5 % classify, 25 % board, 25 % ledger, 25 % case and history reads, 10 %
   scores. --runs runs of --seconds each; throughput and p50/p99 are the median of the runs.
   During each run: the CPU of every process (/proc/<pid>/stat: servers, project, deliver,
   this database's PostgreSQL backends, wrk), what the active backends wait on
   (pg_stat_activity sampled every 50 ms), and the resident memory of every process at the
   start and the end of its configuration.
5. With --nats (default: if a NATS server answers at MINQING_NATS_URL or 127.0.0.1:4222),
   before the servers start: the relay of `minqing relay-nats`, in this process, publishes the
   whole log into a throw-away JetStream stream, timed (events/s, its CPU per event), and the
   stream is deleted. `--servers ""` measures only that.

Results: bench/results/scaleout.json and the table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.server
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine as machine_of  # noqa: E402
from cases.vocabulary import Role  # noqa: E402
from config.settings import Settings  # noqa: E402
from security.tokens import TokenKeys  # noqa: E402
from tests.serving import free_port, wait_healthy  # noqa: E402

PG_ROOT = os.environ.get("MINQING_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "bench_scaleout"
URL = f"{PG_ROOT}/{DATABASE}"
SECRET = "bench-scaleout-secret-" + "x" * 32
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
SCRIPT = ROOT / "bench" / "scaleout.lua"
MINQING = [sys.executable, "-m", "cli"]
TICKS = os.sysconf("SC_CLK_TCK")
RESULT = re.compile(r"RESULT rps=([\d.]+) p50=([\d.]+) p99=([\d.]+) errors=(\d+) non2xx=(\d+) n=(\d+)")


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "MINQING_DATABASE_URL": URL, "MINQING_JWT_SECRET": SECRET,
            "MINQING_MASTER_KEY": MASTER_KEY, "MINQING_RATE_LIMIT_PER_MINUTE": "100000000",
            "MINQING_WEBHOOK_ALLOW_LOCAL": "y"}  # fmt: skip


def token(role: Role, sub: str) -> str:
    return TokenKeys.from_settings(Settings(jwt_secret=SECRET)).issue(role, sub, ttl=86400)


def admin_sql(sql: str) -> None:
    with psycopg.connect(f"{PG_ROOT}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def create_database() -> None:
    drop_database()
    admin_sql(f"CREATE DATABASE {DATABASE}")


def drop_database() -> None:
    admin_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{DATABASE}'")
    admin_sql(f"DROP DATABASE IF EXISTS {DATABASE}")


# --- /proc ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine: every helper's load included."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def postgres_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _comm(p) == "postgres"]


def _comm(p: Path) -> str:
    try:
        return (p / "comm").read_text().strip()
    except OSError:
        return ""


# --- the database's side -------------------------------------------------------------


def backend_pids(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (DATABASE,)).fetchall()
    return [r[0] for r in rows]


def database_counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(
        "SELECT xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched, tup_inserted, "
        "tup_updated FROM pg_stat_database WHERE datname = %s",
        (DATABASE,),
    ).fetchone()
    assert row is not None
    names = ("commits", "rollbacks", "blocks_read", "blocks_hit", "rows_returned", "rows_fetched", "rows_inserted",
             "rows_updated")  # fmt: skip
    return dict(zip(names, (int(v) for v in row), strict=True))


class WaitSampler:
    """What this database's active backends are doing, every `every` seconds: 'CPU' when
    they wait on nothing, else the wait event (Lock:relation is the events table's lock)."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(URL, autocommit=True) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(
                    "SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU'), COUNT(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1",
                    (DATABASE,),
                ).fetchall()
                self.samples += 1
                for state, count in rows:
                    self.counts[state] += count

    def average(self) -> dict[str, float]:
        """Mean number of active backends in each state."""
        return {k: round(v / max(1, self.samples), 2) for k, v in self.counts.most_common()}


# --- processes -----------------------------------------------------------------------


class Process:
    def __init__(self, name: str, args: list[str], logs: Path, port: int = 0) -> None:
        self.name = name
        self.port = port  # a server's
        self.log = logs / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen([*MINQING, *args], env=environment(), stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def run(args: list[str]) -> str:
    return subprocess.run([*MINQING, *args], env=environment(), check=True, capture_output=True, text=True).stdout


class Sink(http.server.BaseHTTPRequestHandler):
    """The webhook receiver: every delivery answered 204 at once."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Sink.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def start_sink() -> tuple[http.server.ThreadingHTTPServer, int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def case_ids(path: Path) -> int:
    with psycopg.connect(URL) as conn:
        rows = conn.execute(
            "SELECT originator_id FROM cases_events WHERE originator_version = 1 AND topic LIKE %s",
            ("%Case.Registered",),
        ).fetchall()
    path.write_text("".join(f"{r[0]}\n" for r in rows))
    return len(rows)


# --- one configuration ---------------------------------------------------------------


def wrk(ports: list[int], ids: Path, bearer: str, seconds: int, connections: int) -> dict[str, float]:
    env = {**os.environ, "PORTS": ",".join(map(str, ports)), "TOKEN": bearer, "IDS": str(ids)}
    command = [
        "wrk",
        "-t4",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        f"http://127.0.0.1:{ports[0]}",
    ]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    match = RESULT.search(out)
    if not match:
        raise RuntimeError(f"wrk said: {out}")
    rps, p50, p99, errors, non2xx, n = match.groups()
    return {"rps": float(rps), "p50_ms": float(p50), "p99_ms": float(p99), "errors": int(errors),
            "non2xx": int(non2xx), "requests": int(n)}  # fmt: skip


def measure_run(
    servers: list[Process], workers: list[Process], ids: Path, bearer: str, args: argparse.Namespace
) -> dict[str, Any]:
    with psycopg.connect(URL, autocommit=True) as conn:
        backends = backend_pids(conn)
        counters = database_counters(conn)
    pg_all = postgres_pids()
    processes = {p.name: p.pid for p in [*servers, *workers]}
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    before_backends = {pid: cpu_seconds(pid) for pid in backends}
    before_pg = {pid: cpu_seconds(pid) for pid in pg_all}
    busy, total = machine_busy()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = load_average()
    started = time.perf_counter()
    with WaitSampler() as waits:
        figures = wrk([s.port for s in servers], ids, bearer, args.seconds, args.connections)
    wall = time.perf_counter() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy2, total2 = machine_busy()
    with psycopg.connect(URL, autocommit=True) as conn:
        counters2 = database_counters(conn)

    def share(seconds: float) -> float:  # % of one core over the run
        return round(100 * seconds / wall, 1)

    cpu = {name: share(cpu_seconds(pid) - before[name]) for name, pid in processes.items()}
    cpu["postgres (this database's backends)"] = share(sum(cpu_seconds(p) - c for p, c in before_backends.items()))
    cpu["postgres (every process, all databases)"] = share(sum(cpu_seconds(p) - c for p, c in before_pg.items()))
    wrk_cpu = (after_children.ru_utime + after_children.ru_stime) - (children.ru_utime + children.ru_stime)
    cpu["wrk"] = share(wrk_cpu)
    figures |= {
        "load_average_before": load,
        "machine_busy_pct": round(100 * (busy2 - busy) / max(1, total2 - total), 1),
        "cpu_pct_of_one_core": cpu,
        # What a request of the mix costs each part, whatever else the machine runs meanwhile.
        "cpu_ms_per_request": {k: round(v * 10 / max(figures["rps"], 0.1), 2) for k, v in cpu.items()},
        "active_backends_by_wait": waits.average(),
        "database_per_s": {k: round((counters2[k] - counters[k]) / wall) for k in counters},
    }
    return figures


def configuration(count: int, workers: list[Process], ids: Path, logs: Path, args: argparse.Namespace) -> dict:
    servers = []
    for i in range(count):
        port = free_port()
        serve = ["serve", "--port", str(port), "--workers", "1", "--projections", "external"]
        servers.append(Process(f"serve-{count}-{i}", serve, logs, port))
    try:
        for server in servers:
            wait_healthy(f"http://127.0.0.1:{server.port}", server.popen, timeout=120)
        bearer = token(Role.INTAKE_CLERK, "CL001")
        wrk([s.port for s in servers], ids, bearer, 3, args.connections)
        rss_start = {p.name: rss_mib(p.pid) for p in [*servers, *workers]}
        runs = []
        for k in range(args.runs):
            runs.append(measure_run(servers, workers, ids, bearer, args))
            runs[-1]["rss_mib_after"] = {p.name: rss_mib(p.pid) for p in [*servers, *workers]}
            r = runs[-1]
            print(f"servers={count} run {k + 1}: {r['rps']:.0f} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                  f"non-2xx {r['non2xx']}, load {r['load_average_before']}", file=sys.stderr)  # fmt: skip
        rss_end = {p.name: rss_mib(p.pid) for p in [*servers, *workers]}
    finally:
        for server in servers:
            server.stop()
    median = {k: round(statistics.median(r[k] for r in runs), 2) for k in ("rps", "p50_ms", "p99_ms")}
    middle = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]  # the median run's profile
    return {"servers": count, "median": median, "profile_of_median_run": middle, "runs": runs,
            "rss_mib": {name: [rss_start[name], rss_end[name]] for name in rss_start}}  # fmt: skip


# --- the NATS relay ------------------------------------------------------------------


def nats_reachable(url: str) -> bool:
    host, _, port = url.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=1).close()
        return True
    except OSError:
        return False


def relay(nats_url: str) -> dict[str, Any]:
    """The whole log published by the relay's loop, in this process (no process start counted)."""
    from service import build_cases
    from storage.views import PostgresViews
    from streams.feed import Feed
    from streams.nats_relay import NatsRelay, RelayTarget

    stream = f"BENCH_SCALEOUT_{uuid.uuid4().hex[:8].upper()}"
    cases = build_cases(Settings(database_url=URL, jwt_secret=SECRET, master_key=MASTER_KEY))
    views = PostgresViews(URL)
    relay = NatsRelay(Feed(cases), views, RelayTarget(nats_url, stream, stream.lower()))

    async def publish_all() -> dict[str, Any]:
        await relay.connect()
        try:
            started, cpu = time.perf_counter(), time.process_time()
            while await relay.run_once():
                pass
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            await relay.js.delete_stream(stream)
        finally:
            await relay.close()
        return {"log_head": cases.recorder.max_notification_id(), "published": relay.published,
                "seconds": round(seconds, 2), "events_per_s": round(relay.published / seconds),
                "relay_cpu_ms_per_event": round(1000 * cpu / max(1, relay.published), 3),
                "load_average_after": load_average()}  # fmt: skip

    try:
        return asyncio.run(publish_all())
    finally:
        with views.transaction() as cur:
            cur.execute("DELETE FROM relay_positions WHERE name = ?", [stream])
        views.close()
        cases.close()


# --- main ----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    return machine_of(URL, wrk=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="1,2,4", help='counts of servers; "" measures only the relay')
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--cases", type=int, default=300, help="demo cases loaded first")
    parser.add_argument("--nats", choices=["auto", "yes", "no"], default="auto")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    create_database()
    results: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "args": vars(args)}  # fmt: skip
    sink, sink_port = start_sink()
    workers: list[Process] = []
    try:
        run(["migrate"])
        started = time.perf_counter()
        run(["demo", "--cases", str(args.cases)])
        ids = logs / "ids"
        results["preload"] = {"cases": case_ids(ids), "seconds": round(time.perf_counter() - started, 1)}
        print(f"preload: {results['preload']}", file=sys.stderr)
        nats_url = os.environ.get("MINQING_NATS_URL", "nats://127.0.0.1:4222")
        if args.nats == "yes" or (args.nats == "auto" and nats_reachable(nats_url)):
            results["relay_nats"] = relay(nats_url)
            print(f"relay-nats: {results['relay_nats']}", file=sys.stderr)
        workers = [Process("project", ["project"], logs), Process("deliver", ["deliver"], logs)]
        # One subscription to every event, from now on, through a throw-away server.
        port = free_port()
        subscriber = Process("serve-setup", ["serve", "--port", str(port), "--projections", "external"], logs)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", subscriber.popen, timeout=120)
            answer = httpx.post(f"http://127.0.0.1:{port}/webhooks", json={"url": f"http://127.0.0.1:{sink_port}/"},
                                headers={"Authorization": f"Bearer {token(Role.INTEGRATOR, 'bench')}"})  # fmt: skip
            answer.raise_for_status()
        finally:
            subscriber.stop()
        results["configurations"] = [configuration(int(n), workers, ids, logs, args) for n in args.servers.split(",")]
        results["webhook_deliveries"] = Sink.received
    finally:
        for worker in workers:
            worker.stop()
        sink.shutdown()
        drop_database()
    out = ROOT / "bench" / "results" / ("scaleout.json" if args.servers else "scaleout-relay.json")
    out.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(report(results))


def report(results: dict[str, Any]) -> str:
    lines = ["| servers | req/s | p50 ms | p99 ms | non-2xx (median run) | machine busy | load before |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in results["configurations"]:
        m, p = c["median"], c["profile_of_median_run"]
        lines.append(f"| {c['servers']} | {m['rps']:.0f} | {m['p50_ms']} | {m['p99_ms']} | {p['non2xx']} "
                     f"| {p['machine_busy_pct']} % | {p['load_average_before']} |")  # fmt: skip
    lines.append("")
    lines.append("CPU, % of one core (median run):")
    for c in results["configurations"]:
        p = c["profile_of_median_run"]
        cpu = ", ".join(f"{k} {v}" for k, v in p["cpu_pct_of_one_core"].items())
        lines.append(f"  {c['servers']} servers: {cpu}")
        per = p["cpu_ms_per_request"]
        ours = sum(v for k, v in per.items() if k.startswith(("serve", "project", "deliver", "postgres (this")))
        lines.append(f"    CPU ms per request: {per}; Minqing's and its database's: {ours:.1f} ms "
                     f"(2 cores: at most ~{2000 / max(ours, 0.01):.0f} req/s)")  # fmt: skip
        lines.append(f"    active backends by wait: {p['active_backends_by_wait']}")
        lines.append(f"    database per second: {p['database_per_s']}")
        rss = ", ".join(f"{k} {a}→{b}" for k, (a, b) in c["rss_mib"].items())
        lines.append(f"    RSS MiB start→end: {rss}")
    if "relay_nats" in results:
        lines.append(f"relay-nats: {results['relay_nats']}")
    lines.append(f"webhook deliveries to the sink: {results.get('webhook_deliveries')}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
