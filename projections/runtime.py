"""The read side as the service sees it: the views, the projections that
keep them, and (in the embedded setup) a thread that runs those projections."""

from __future__ import annotations

import threading
from datetime import date

from cases.clock import local_date
from cases.policy import PolicyVersion
from commands.cases import Cases
from projections.chain import AuditChain
from projections.ledger import Ledger
from projections.runner import Runner
from storage.views import PostgresViews, SqliteViews


class ProjectionBehindError(TimeoutError):
    code = "projection_behind"

    def __init__(self, position: int, reached: int) -> None:
        super().__init__(f"读模型尚未追上位置 {position}（当前 {reached}），请稍后重试。")
        self.message = str(self.args[0])


PROJECTIONS = (Ledger, AuditChain)  # what the read side runs; `minqing migrate` creates their tables


class ReadSide:
    def __init__(self, cases: Cases, views: SqliteViews | PostgresViews) -> None:
        self.cases = cases
        self.views = views
        self.runners = [Runner(cases, views, p) for p in (Ledger(cases.vault), AuditChain())]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def ledger(self) -> Runner:
        return self.runners[0]

    def today(self) -> date:
        return local_date(self.cases.clock())

    def policy(self, day: date | None = None) -> PolicyVersion:
        return self.cases.policy.in_force(day or self.today())

    def position(self) -> int:
        """The log position every view has reached (read-your-writes waits for it)."""
        return min(runner.position for runner in self.runners)

    def head(self) -> int:
        return self.cases.recorder.max_notification_id() or 0

    def start_in_process(self) -> None:
        for runner in self.runners:
            thread = threading.Thread(
                target=runner.run_forever, args=(self._stop,), name=f"projection-{runner.projection.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop_in_process(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def close(self) -> None:
        self.stop_in_process()
        self.views.close()
