"""CPU per command inside one worker, without the network or a load generator (issue 15).

Drives the ASGI app the way uvicorn does (lifespan, then one request at a time, or C at once)
against PostgreSQL with tokens and per-person encryption on, and prints the worker's own CPU
time per request (time.process_time: this process only) and the wall time; and, when PostgreSQL
runs on this machine, its backends' CPU per request (utime + stime in /proc/<pid>/stat of this
database's backends, read before and after each phase) and its commits per request.

    MINQING_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/x python bench/asgi_cpu.py [N] [C]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

from config.settings import Settings
from service import create_app, migrate

BODY = orjson.dumps(
    {
        "channel": "hotline",
        "category": "housing",
        "title": "楼顶渗水",
        "description": "业主违章搭建导致居民住宅楼顶渗水，雨天屋内漏水严重。",
        "location": "马限社区3栋",
        "grid": "35010500100101",
        "petitioner_name": "张秀英",
        "petitioner_phone": "13812341234",
    }
)
CLASSIFY = orjson.dumps({"handling_type": "committed", "tier": "small"})


async def request(app: Any, path: str, body: bytes, token: str) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9000),
        "state": {},
    }
    sent = False
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"]


TICKS = os.sysconf("SC_CLK_TCK")


def database_load(url: str) -> tuple[float | None, int]:
    """CPU seconds spent so far by this database's backends (None if /proc does not show them)
    and the commits of the database so far."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
        commits = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        committed = int(commits.fetchone()[0])  # type: ignore[index]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None, committed
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / TICKS, committed


async def main(n: int, concurrency: int) -> None:
    settings = Settings.from_environ()
    url = settings.database_url
    assert url, "MINQING_DATABASE_URL: the benchmark runs on PostgreSQL"
    migrate(settings)
    app = create_app(settings)
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    done = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            done.set()
        elif message["type"].endswith("failed"):
            raise RuntimeError(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    lifespan = asyncio.create_task(app(scope, startup.get, lifespan_send))
    await done.wait()
    assert not lifespan.done()
    token = app.state.token_keys.issue("intake_clerk", "CL001")
    ids: list[str] = []

    async def phase(name: str, make: Any) -> None:
        queue = list(range(n))
        statuses: dict[int, int] = {}

        async def client() -> None:
            while queue:
                i = queue.pop()
                status, body = await make(i)
                statuses[status] = statuses.get(status, 0) + 1
                if name == "register" and status == 201:
                    ids.append(orjson.loads(body)["case_id"])

        pg_cpu, commits = database_load(url)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        pg_after, commits_after = database_load(url)
        pg = f"{(pg_after - pg_cpu) / n * 1e6:5.0f} µs" if pg_cpu is not None and pg_after is not None else "?"
        print(
            f"{name:9s} n={n} c={concurrency} cpu/request={cpu / n * 1e6:7.0f} µs "
            f"wall/request={wall / n * 1e6:7.0f} µs  {n / wall:6.0f}/s  statuses={statuses}  "
            f"postgres cpu/request={pg} commits/request={(commits_after - commits) / n:.2f}",
            file=sys.stderr,
        )

    await phase("register", lambda i: request(app, "/cases", BODY, token))
    await phase("classify", lambda i: request(app, f"/cases/{ids[i]}/classify", CLASSIFY, token))
    group = app.state.cases.group_commit
    print(f"group commit: {group.saved} saves in {group.batches} transactions", file=sys.stderr)
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500, int(sys.argv[2]) if len(sys.argv) > 2 else 1))
