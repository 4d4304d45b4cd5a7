"""What a benchmark ran on, recorded beside its figures: cores, CPU, versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import psycopg


def machine(database_url: str, *, wrk: bool = False) -> dict[str, str]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    with psycopg.connect(database_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    found = {"cpus": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(), "postgresql": pg,
             "eventsourcing": version("eventsourcing"), "psycopg": version("psycopg")}  # fmt: skip
    if wrk:
        found["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return found
