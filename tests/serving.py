"""Waiting for a `minqing serve` subprocess: shared by the CLI tests and bench/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from commands.settings import Settings

MINQING = [sys.executable, "-m", "cli"]


def environment(settings: Settings) -> dict[str, str]:
    """The environment of a `minqing` subprocess on the test's store."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop("MINQING_DATABASE_URL", None)
    env.update(
        MINQING_JWT_SECRET=settings.jwt_secret or "",
        MINQING_MASTER_KEY=settings.master_key or "",
        MINQING_RATE_LIMIT_PER_MINUTE=str(settings.rate_limit_per_minute),
    )
    if settings.database_url:
        env["MINQING_DATABASE_URL"] = settings.database_url
    else:
        env["MINQING_SQLITE_PATH"] = str(settings.sqlite_path)
    return env


def serve(settings: Settings, *args: str, **extra_env: str) -> Iterator[str]:
    """A real `minqing serve` on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [*MINQING, "serve", "--port", str(port), *args],
        env={**environment(settings), **extra_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, timeout=60)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until GET /healthz answers 200; fails if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"minqing serve exited with {process.returncode}: {output}")
    raise TimeoutError(f"minqing serve did not become healthy within {timeout} s")
