"""Waiting for a `minqing serve` subprocess: shared by the CLI tests and bench/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from config.settings import Settings

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
    """A real `minqing serve` on a free port; yields its base URL. Its output goes to a file,
    never to a pipe nobody reads (a chatty server would fill it and stall)."""
    with Server(settings, *args, **extra_env) as server:
        yield server.base


class Server:
    """`minqing serve` in a subprocess, its output in a temporary file (shown when it dies)."""

    def __init__(self, settings: Settings, *args: str, **extra_env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="minqing-serve-", suffix=".log")[1])
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*MINQING, "serve", "--port", str(self.port), *args],
                env={**environment(settings), **extra_env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self) -> Server:
        try:
            wait_healthy(self.base, self.process, timeout=60, log=self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def wait_healthy(base: str, process: subprocess.Popen, timeout: float = 60, *, log: Path | None = None) -> None:
    """Until GET /healthz answers 200; fails if the process exits or time runs out (with its log's tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
        if process.poll() is not None:
            output = tail(log) if log else ""
            raise RuntimeError(f"minqing serve exited with {process.returncode}:\n{output}")
    raise TimeoutError(f"minqing serve did not become healthy within {timeout} s:\n{tail(log) if log else ''}")
