"""The CPU of the log's save alone (issue 15): the library's PostgresApplicationRecorder against
PostgresLog (commands/recorders.py), alternated, on batches shaped like a group commit's (four
registrations: the case, its number, its notice; real states from a benchmark database).

    MINQING_DATABASE_URL=postgresql://… python -m bench.log_insert [BATCHES]   # after bench.asgi_cpu filled it
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from commands.recorders import PostgresLog

SCHEMA = "bench_log_insert"


def main(batches: int, url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT topic, state FROM cases_events ORDER BY notification_id LIMIT 400").fetchall()
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        dbname = conn.info.dbname
    states = {topic: bytes(state) for topic, state in rows}
    registration = [t for t in states if t.endswith(("Registered", "CaseNumberIssued", "NoticeQueued"))]
    info = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(url).items()}
    datastore = PostgresDatastore(
        dbname,
        info.get("host", "127.0.0.1"),
        info.get("port", "5432"),
        info.get("user", "postgres"),
        info.get("password", ""),
        schema=SCHEMA,
        pool_size=2,
    )
    recorders = {
        "library": PostgresApplicationRecorder(datastore, events_table_name="library_events"),
        "PostgresLog": PostgresLog(datastore, events_table_name="log_events"),
    }
    for recorder in recorders.values():
        recorder.create_table()

    def batch() -> list[StoredEvent]:
        return [StoredEvent(uuid.uuid4(), 1, t, states[t]) for _ in range(4) for t in registration]

    for _ in range(3):
        for name, recorder in recorders.items():
            work = [batch() for _ in range(batches + 20)]
            for events in work[:20]:  # connections open, statements prepared
                recorder.insert_events(events)
            cpu, wall = time.process_time(), time.perf_counter()
            for events in work[20:]:
                recorder.insert_events(events)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"{name:12s} {len(work[0])} events a batch: cpu {cpu / batches * 1e6:5.0f} µs, "
                f"wall {wall / batches * 1e6:5.0f} µs a batch",
                flush=True,
            )
    datastore.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 300,
        os.environ["MINQING_DATABASE_URL"],
    )
