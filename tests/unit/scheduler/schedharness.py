"""The harness of the scheduler tests: a real ``Scheduler`` on a real work directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from partita import Param, Task
from partita.launchers import Launcher
from partita.scheduler import Job, Scheduler
from partita.testing import submission
from partita.workspace import Workspace


class Step(Task, id="schedtest.step"):
    """A task that does nothing (the fake launcher plays its outcome)."""

    n: Param[int]

    def execute(self) -> None:  # pragma: no cover - never executed in these tests
        pass


class Harness:
    """A started scheduler and helpers to submit ``Step`` tasks to it."""

    def __init__(self, root: Path) -> None:
        self.workspace = Workspace(root)
        self.schedulers: list[Scheduler] = []
        self.scheduler = self.new_scheduler("first")

    def new_scheduler(self, name: str) -> Scheduler:
        scheduler = Scheduler(self.workspace, owner={"experiment": name, "run": "r1"}, grace=1.0)
        scheduler.start()
        self.schedulers.append(scheduler)
        return scheduler

    def submit(
        self,
        n: int,
        launcher: Launcher,
        *,
        after: list[Job] = (),  # type: ignore[assignment]
        scheduler: Scheduler | None = None,
        **options: Any,
    ) -> Job:
        task = Step(n=n)
        spec = submission(self.workspace, task, launcher, dependencies=list(after), **options)
        return (scheduler or self.scheduler).submit(spec)

    @staticmethod
    def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            time.sleep(0.005)

    def close(self) -> None:
        for scheduler in self.schedulers:
            scheduler.cancel_all()
            scheduler.close()
