"""Following a job run by another process: is it alive, and wait for its outcome."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from typing import Any

from partita.launchers import Launcher, handle_kind, launcher_for_handle
from partita.scheduler import _attempt as disk
from partita.scheduler._bridge import LoopThread
from partita.scheduler._job import Record
from partita.scheduler._outcome import Finished, FollowResult, Vanished
from partita.workspace import JobState, JobStatus


class Follower:
    """Asks launchers about handles found in job folders, and waits on foreign runs."""

    def __init__(
        self,
        bridge: LoopThread,
        launchers: set[Launcher],
        lock: threading.Lock,
        stopping: Callable[[], bool],
    ) -> None:
        self._bridge = bridge
        self._launchers = launchers
        self._lock = lock
        self._stopping = stopping

    def launcher_for(self, handle: dict[str, Any], rec: Record) -> Launcher:
        """A launcher that can follow ``handle`` (it may come from another experiment)."""
        kind: str = handle_kind(handle) or rec.launcher.kind
        if kind == rec.launcher.kind:
            return rec.launcher
        with self._lock:
            known = list(self._launchers)
        for launcher in known:
            if launcher.kind == kind:
                return launcher
        follower = launcher_for_handle(handle).follower(handle)
        with self._lock:
            self._launchers.add(follower)
        return follower

    async def alive(self, rec: Record, status: JobStatus, *, locked: bool = False) -> bool:
        """Whether the attempt recorded in the folder (``state.json``) still runs."""
        handle = disk.handle_of(status)
        launcher = self.launcher_for(handle, rec)
        if not launcher.started(handle):
            # A launch in progress elsewhere (state written, handle not yet), or one that
            # died half-way: the lock tells which.
            if locked:
                return False
            return not await self._bridge.io(disk.lock_is_free, rec.paths)
        alive = await launcher.alive(handle)
        if alive is None:
            if not rec.warned_foreign:
                rec.warned_foreign = True
                print(
                    f"partita: {rec.name} is running ({launcher.describe_handle(handle)}) "
                    "according to its state; waiting for it. If that machine is gone, cancel "
                    "it with 'partita jobs kill'.",
                    file=sys.stderr,
                )
            return True
        return alive

    async def follow(self, rec: Record) -> FollowResult:
        """Wait while another process runs the job, until it ends or vanishes."""
        delay = 0.05
        while not self._stopping():
            status = await self._bridge.io(disk.inspect, rec.paths)
            if status.state is not None and status.state is not JobState.RUNNING:
                return disk.outcome_of(status)
            if status.state is JobState.RUNNING:
                rec.watched = status.record.get("attempt")
                if not await self.alive(rec, status):
                    # Its process is gone: a runner writes its outcome before it exits, so
                    # look once more before calling it vanished (never rerun what ended).
                    status = await self._bridge.io(disk.inspect, rec.paths)
                    if status.state is not None and status.state.final:
                        return disk.outcome_of(status)
                    return Vanished()
            elif await self._bridge.io(disk.lock_is_free, rec.paths):
                return Vanished()
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        return Finished(JobState.CANCELLED, None, "the experiment was stopping")
