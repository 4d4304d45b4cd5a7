"""What a database's client backends wait on, sampled (issue 15): polls `pg_stat_activity` every
INTERVAL seconds until interrupted (SIGINT or SIGTERM), then prints the average number of backends
in each (state, wait event, statement), most first. Run it beside a load (wrk, bench.asgi_cpu).

    python -m bench.pg_waits DATABASE [INTERVAL] &  …load…; kill %1
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from typing import Any

import psycopg

URL = "postgresql://postgres@127.0.0.1:5432/postgres"
QUERY = (
    "SELECT state, coalesce(wait_event_type, '-'), coalesce(wait_event, '-'), "
    "left(regexp_replace(query, '\\s+', ' ', 'g'), 28) FROM pg_stat_activity "
    "WHERE datname = %s AND backend_type = 'client backend'"
)


def main(database: str, interval: float) -> None:
    stopped = False

    def stop(*_: Any) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    counts: Counter[tuple[str, str, str, str]] = Counter()
    samples = 0
    with psycopg.connect(URL, autocommit=True) as conn:
        while not stopped:
            for state, kind, event, query in conn.execute(QUERY, (database,)).fetchall():
                counts[(state, kind, event, "(idle)" if (state, event) == ("idle", "ClientRead") else query)] += 1
            samples += 1
            time.sleep(interval)
    print(f"{samples} samples, {sum(counts.values()) / max(samples, 1):.1f} backends on average")
    for (state, kind, event, query), n in counts.most_common(25):
        print(f"{n / samples:6.2f} backends  {state:20s} {kind:8s} {event:18s} {query}")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.01)
