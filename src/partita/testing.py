"""Test helpers: run the scheduler in-process, without job processes.

A :class:`FakeLauncher` plays scripted outcomes instead of starting runners. It speaks the
job-folder protocol like a real runner does (it takes the job lock, checks that its
attempt is current, records the outcome), so the scheduler, the work directory and every
view of it behave as with real jobs; only ``execute()`` is not called.

::

    from partita import experiment
    from partita.testing import Done, Fails, FakeLauncher, Killed

    fake = FakeLauncher({"demo.train": [Killed("timeout"), Done()]})
    with experiment(tmp_path, "demo", launcher=fake) as xp:
        Train(lr=0.1).submit(retries=1)
    assert fake.attempts("demo.train") == 2

Scripts are looked up by type id (or identifier, or identifier prefix); each attempt of a
job (counted per job) plays the next entry of its script and the last entry repeats.
Jobs without a script play ``default`` (:class:`Done` unless told otherwise).

:func:`submission` builds what ``Scheduler.submit`` takes, for tests that drive a
``Scheduler`` directly.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from partita.config import Task, dumps, freeze, identifier
from partita.errors import LauncherError
from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.scheduler._job import Job, Retry, Submission
from partita.workspace import FileLock, JobState, Reason, Workspace, claim_attempt
from partita.workspace._state import write_final

__all__ = [
    "Done",
    "ExitsEarly",
    "Fails",
    "FakeLauncher",
    "Hangs",
    "Killed",
    "LaunchFails",
    "Play",
    "Slow",
    "submission",
]


@dataclass(frozen=True, kw_only=True)
class Play:
    """One scripted attempt (use one of the subclasses)."""

    delay: float = 0.0
    """Seconds the attempt runs before its outcome."""

    gate: threading.Event | None = field(default=None, compare=False)
    """When given, the attempt plays only once this event is set (at most 60 s later), so
    a test orders events without sleeping."""


@dataclass(frozen=True)
class Done(Play):
    """The attempt succeeds: ``done``."""


@dataclass(frozen=True)
class Slow(Done):
    """The attempt succeeds after ``delay`` seconds (default 0.2)."""

    delay: float = 0.2


@dataclass(frozen=True)
class Fails(Play):
    """The task raises: ``failed(error)`` (or another ``reason`` the runner records)."""

    reason: str = Reason.ERROR.value
    detail: str = "RuntimeError: scripted failure"
    code: int = 1


@dataclass(frozen=True)
class Killed(Play):
    """The runner is killed without recording anything; the launcher saw ``reason``.

    ``Killed()`` is a lost job (the process vanished); ``Killed("timeout")``,
    ``Killed("preempted")``... are what a cluster reports.
    """

    reason: str | None = None
    code: int = -9


@dataclass(frozen=True)
class ExitsEarly(Play):
    """The runner exits with ``code`` before it even claims its attempt (a broken setup)."""

    code: int = 1


@dataclass(frozen=True)
class Hangs(Play):
    """The attempt runs until it is cancelled (then it records ``cancelled``)."""


@dataclass(frozen=True)
class LaunchFails(Play):
    """The launcher cannot start the attempt (``failed(launch)``)."""

    message: str = "scripted launch failure"


class FakeLauncher(Launcher, kind="fake"):
    """A launcher that plays scripted outcomes in-process (no job processes).

    Args:
        scripts: per type id (or identifier, or identifier prefix), the plays of its
            successive attempts; the last one repeats.
        default: what a job without a script plays.
        capacity: how many jobs run at once (``None``: no bound).
        on_launch: called with each request as it is launched (to observe or to act, for
            instance submitting more work), in the scheduler's thread.
        on_exit: called with each request once its play released the job lock and before
            its exit is reported (a test can take the lock there), in the scheduler's thread.
        queues_dependencies: accept ``depends_on`` like a cluster: the attempt starts once
            the attempts it depends on are done, and never starts if one of them failed.
    """

    def __init__(
        self,
        scripts: Mapping[str, Play | Sequence[Play]] | None = None,
        *,
        default: Play | None = None,
        capacity: int | None = None,
        on_launch: Callable[[LaunchRequest], None] | None = None,
        on_exit: Callable[[LaunchRequest], None] | None = None,
        queues_dependencies: bool = False,
    ) -> None:
        self._queues = queues_dependencies
        self._on_exit = on_exit
        self._scripts = {
            key: (list(plays) if isinstance(plays, Sequence) else [plays])
            for key, plays in (scripts or {}).items()
        }
        self._default = default or Done()
        self._capacity = capacity
        self._on_launch = on_launch
        self._ids = itertools.count(1)
        self._runs: dict[int, _Run] = {}
        self._lock = threading.Lock()
        self.launched: list[LaunchRequest] = []
        """Every request launched, in order."""
        self.running = 0
        """Attempts playing right now."""
        self.peak = 0
        """The most attempts that played at once."""

    @property
    def capacity(self) -> int | None:
        """How many jobs may run at once through this launcher."""
        return self._capacity

    @property  # type: ignore[misc]
    def queues_dependencies(self) -> bool:  # type: ignore[override]
        """Whether it accepts ``depends_on`` (as given to the constructor)."""
        return self._queues

    def describe(self) -> str:
        """A short human description."""
        return "fake (scripted outcomes)"

    def attempts(self, key: str) -> int:
        """How many attempts were launched for jobs matching ``key`` (a type id, an
        identifier or an identifier prefix)."""
        return sum(1 for r in self.launched if self._matches(key, r))

    @staticmethod
    def _matches(key: str, request: LaunchRequest) -> bool:
        paths = request.paths
        return key in (paths.type_id, paths.identifier) or paths.identifier.startswith(key)

    def _play_for(self, request: LaunchRequest) -> Play:
        for key, plays in self._scripts.items():
            if self._matches(key, request):
                done = sum(1 for r in self.launched[:-1] if r.paths == request.paths)
                return plays[min(done, len(plays) - 1)]
        return self._default

    async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
        """Start each request's scripted play; raises ``LauncherError`` for ``LaunchFails``."""
        handles = []
        for request in requests:
            with self._lock:
                self.launched.append(request)
                play = self._play_for(request)
            if self._on_launch is not None:
                self._on_launch(request)
            if isinstance(play, LaunchFails):
                raise LauncherError(play.message)
            number = next(self._ids)
            after = [
                self._runs[int(h["fake"])] for h in request.depends_on if h.get("kind") == self.kind
            ]
            run = _Run(request, play, after)
            self._runs[number] = run
            run.task = asyncio.get_running_loop().create_task(self._play(run))
            handles.append({"kind": self.kind, "fake": number, "owner": os.getpid()})
        return handles

    async def _play(self, run: _Run) -> Exit:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            exit_ = await _perform(run)
        finally:
            self.running -= 1
        if self._on_exit is not None:
            self._on_exit(run.request)
        return exit_

    async def wait(self, handle: dict[str, Any]) -> Exit:
        """The scripted exit of the attempt of ``handle``."""
        run = self._runs[int(handle["fake"])]
        assert run.task is not None
        return await asyncio.shield(run.task)

    async def alive(self, handle: dict[str, Any]) -> bool | None:
        """Whether the attempt of ``handle`` still plays (``False`` for unknown handles)."""
        run = self._runs.get(int(handle.get("fake", 0)))
        if run is None:
            return False if handle.get("owner") == os.getpid() else None
        return run.task is not None and not run.task.done()

    async def cancel(self, handle: dict[str, Any], grace: float) -> None:
        """Stop the attempt of ``handle``, as SIGTERM stops a runner."""
        run = self._runs.get(int(handle["fake"]))
        if run is not None:
            run.stop.set()


class _Run:
    def __init__(self, request: LaunchRequest, play: Play, after: list[_Run]) -> None:
        self.request = request
        self.play = play
        self.after = after
        self.stop = asyncio.Event()
        self.task: asyncio.Task[Exit] | None = None


async def _perform(run: _Run) -> Exit:
    """Play one attempt like a runner: lock, claim, (wait), record the outcome."""
    play, request = run.play, run.request
    for dep in run.after:
        assert dep.task is not None
        if (await asyncio.shield(dep.task)).code != 0:
            await run.stop.wait()  # never starts: like a cluster job whose dependency failed
            return Exit(-15, "cancelled")
    if isinstance(play, ExitsEarly):
        return Exit(play.code)
    lock = FileLock(request.paths.lock, note={"role": "fake runner"})
    # The launching scheduler holds the lock until ``launch`` returns: wait for it.
    await asyncio.to_thread(lock.acquire)
    try:
        claim = await asyncio.to_thread(claim_attempt, request.paths, request.attempt)
        if claim.attempt is None:
            return Exit(0 if claim.done else 75)
        attempt = claim.attempt
        if play.gate is not None:
            await asyncio.to_thread(play.gate.wait, 60)
        if isinstance(play, Hangs):
            await run.stop.wait()
        elif play.delay:
            try:
                await asyncio.wait_for(run.stop.wait(), play.delay)
            except TimeoutError:
                pass
        if run.stop.is_set():
            if request.paths.cancel_request.exists():
                await asyncio.to_thread(
                    write_final,
                    request.paths,
                    JobState.CANCELLED,
                    attempt=attempt,
                    detail="stopped by SIGTERM on request",
                )
                return Exit(143)
            return Exit(-15)
        match play:
            case Fails(reason=reason, detail=detail, code=code):
                await asyncio.to_thread(
                    write_final,
                    request.paths,
                    JobState.FAILED,
                    attempt=attempt,
                    reason=reason,
                    exit_code=code,
                    detail=detail,
                )
                return Exit(code)
            case Killed(reason=reason, code=code):
                return Exit(code, reason)
            case _:
                await asyncio.to_thread(
                    write_final, request.paths, JobState.DONE, attempt=attempt, exit_code=0
                )
                return Exit(0)
    finally:
        lock.release()


def submission(
    workspace: Workspace,
    task: Task,
    launcher: Launcher,
    *,
    dependencies: Sequence[Job] = (),
    retry: Retry | int = 0,
    tokens: Mapping[Any, int] | None = None,
    tags: Mapping[str, Any] | None = None,
    resumable: bool = False,
) -> Submission:
    """What ``Scheduler.submit`` takes for ``task`` (outside an experiment).

    The task is frozen; its identity and ``params.json`` are computed as an experiment
    would. ``retry`` is a :class:`~partita.Retry` or a count of retries.
    """
    freeze(task)
    ident = identifier(task)
    return Submission(
        task=task,
        identifier=ident,
        paths=workspace.job(type(task)._partita_type_id, ident),
        launcher=launcher,
        dependencies=list(dependencies),
        tags=dict(tags or {}),
        retry=retry if isinstance(retry, Retry) else Retry(count=retry),
        tokens=dict(tokens or {}),
        resumable=resumable,
        params=dumps(task),
    )
