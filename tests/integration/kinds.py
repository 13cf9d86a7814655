"""A launcher kind defined outside partita, for tests: it registers itself like any other.

``ProcessLauncher`` starts the job runner with :mod:`subprocess` itself and names its jobs
by a "ticket" (the process id) in handles whose keys partita has never seen.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any

from partita.launchers import Exit, Launcher, LaunchRequest
from partita.workspace import identity, is_alive

KIND = "test-process"


class ProcessLauncher(Launcher, kind=KIND):
    """Runs each job as a child process, with handles ``{"kind", "ticket", "machine", "since"}``."""

    def __init__(self, budget: float | None = None) -> None:
        self.budget = budget
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
        handles = []
        for request in requests:
            mode = "ab" if request.append_logs else "wb"
            env = {**os.environ, **request.env, "PARTITA_ATTEMPT": str(request.attempt)}
            with open(request.paths.stdout, mode) as out, open(request.paths.stderr, mode) as err:
                child = subprocess.Popen(
                    request.command(),
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    cwd=request.paths.root,
                    env=env,
                    start_new_session=True,
                )
            self._children[child.pid] = child
            record = identity(child.pid)
            handle = {
                "kind": self.kind,
                "ticket": child.pid,
                "machine": record["host"],
                "since": record["start"],
            }
            if self.budget is not None:
                handle["ends_at"] = time.time() + self.budget
            handles.append(handle)
        return handles

    async def wait(self, handle: dict[str, Any]) -> Exit:
        child = self._children.pop(int(handle["ticket"]), None)
        if child is None:  # launched by another process: watch it
            while self.probe(handle) is not False:
                await asyncio.sleep(0.05)
            return Exit(None)
        return Exit(await asyncio.to_thread(child.wait))

    async def alive(self, handle: dict[str, Any]) -> bool | None:
        return self.probe(handle)

    async def cancel(self, handle: dict[str, Any], grace: float) -> None:
        await asyncio.to_thread(self.kill, handle, grace)

    @classmethod
    def started(cls, handle: Mapping[str, Any]) -> bool:
        return "ticket" in handle

    @classmethod
    def probe(cls, handle: Mapping[str, Any]) -> bool | None:
        return is_alive(
            {"host": handle["machine"], "pid": handle["ticket"], "start": handle["since"]}
        )

    @classmethod
    def describe_handle(cls, handle: Mapping[str, Any]) -> str:
        return f"{KIND}, ticket {handle.get('ticket')}"

    @classmethod
    def kill(cls, handle: Mapping[str, Any], grace: float = 10.0) -> None:
        if cls.probe(handle) is not True:
            return
        os.killpg(int(handle["ticket"]), signal.SIGTERM)
        deadline = time.monotonic() + grace
        while cls.probe(handle) and time.monotonic() < deadline:
            time.sleep(0.05)
        if cls.probe(handle):
            os.killpg(int(handle["ticket"]), signal.SIGKILL)

    @classmethod
    def time_left(cls, handle: Mapping[str, Any]) -> float | None:
        ends_at = handle.get("ends_at")
        return None if ends_at is None else max(0.0, float(ends_at) - time.time())

    @classmethod
    def follower(cls, handle: Mapping[str, Any]) -> ProcessLauncher:
        return cls()
