"""The `minqing` command as a user runs it: real processes, real HTTP."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from config.settings import Settings
from tests.factories import CLERK, SUPERVISOR, auth, registration
from tests.serving import MINQING, environment


@pytest.mark.e2e
def test_serve_answers_over_real_http_with_json_logs(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10, headers=auth(SUPERVISOR)) as http:
        created = http.post("/cases", json=registration(), headers=auth(CLERK))
        assert created.status_code == 201
        case = http.get(created.headers["location"])
        assert case.status_code == 200 and case.json()["title"] == "楼顶渗水"
        assert http.get("/openapi.json").json()["info"]["title"].startswith("Minqing")


def test_the_cli_explains_itself() -> None:
    result = subprocess.run([*MINQING, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "serve" in result.stdout and "demo" in result.stdout


@pytest.mark.e2e
def test_projection_workers_run_apart_and_only_one_is_active(settings: Settings, tmp_path: Path) -> None:
    from commands.cases import Cases
    from projections.runner import tracked_position
    from service import build_cases
    from storage.views import open_views

    cases: Cases = build_cases(settings)
    try:
        for i in range(3):
            cases.register(CLERK, **registration(title=f"第{i}件"))
        head = cases.recorder.max_notification_id()
    finally:
        cases.close()
    env = {**environment(settings), "MINQING_PROJECTIONS": "external"}
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen([*MINQING, "project"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        for log in logs
    ]

    def output() -> str:
        return "".join(log.read_text() for log in logs)

    views = open_views(settings)
    try:
        deadline = time.monotonic() + 60
        # Both workers up: one follows the log, the other says it stands by.
        while time.monotonic() < deadline and not (
            output().count("projection_worker_started") == 2 and output().count("projection_standby") == 2
        ):
            assert all(w.poll() is None for w in workers), output()
            time.sleep(0.2)
        while time.monotonic() < deadline and tracked_position(views, "ledger") < head:
            time.sleep(0.2)
        assert tracked_position(views, "ledger") == head
        assert len(views.query("SELECT case_id FROM ledger_cases")) == 3
    finally:
        views.close()
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=15)
    assert all(worker.returncode == 0 for worker in workers), output()
    # Each projection has one active runner; the other worker stands by for it.
    standby = [line for line in output().splitlines() if "projection_standby" in line]
    for name in ("ledger", "audit_chain"):
        assert sum(f'"{name}"' in line for line in standby) == 1, output()


@pytest.mark.e2e
def test_project_once_catches_up_and_exits(settings: Settings) -> None:
    result = subprocess.run(
        [*MINQING, "project", "--once"], env=environment(settings), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ledger: caught up" in result.stdout
