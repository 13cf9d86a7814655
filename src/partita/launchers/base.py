"""The launcher contract: how a job's runner process is started, followed and stopped."""

from __future__ import annotations

import abc
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from partita.launchers._registry import generic_description, register_launcher
from partita.workspace import JobPaths

if TYPE_CHECKING:
    from partita.workspace import JobInfo


@dataclass
class LaunchRequest:
    """What a launcher needs to start one attempt of a job."""

    paths: JobPaths
    attempt: int
    name: str
    """Display name: ``<type id>/<short identifier>``."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables for the job process."""
    python: str = sys.executable
    resources: dict[str, Any] = field(default_factory=dict)
    """What the task asked for (cpus, mem, gpus, time), for cluster launchers."""
    append_logs: bool = False
    """Keep the logs of earlier attempts (resumable tasks) instead of starting afresh."""
    depends_on: list[dict[str, Any]] = field(default_factory=list)
    """Handles of unfinished dependencies on the same launcher (see ``queues_dependencies``)."""
    previous_failures: list[str] = field(default_factory=list)
    """Reasons of the earlier failed attempts in this experiment (to grow limits, say)."""

    def command(self, *, redirect: bool = False) -> list[str]:
        """The runner command line: ``python -m partita.run JOBDIR --attempt N``."""
        argv = [
            self.python,
            "-m",
            "partita.run",
            str(self.paths.root),
            "--attempt",
            str(self.attempt),
        ]
        if redirect:
            argv.append("--redirect")
        return argv


@dataclass
class Exit:
    """How a launched job ended, as far as the launcher knows."""

    code: int | None
    """Exit code of the runner (negative: killed by that signal), if known."""
    reason: str | None = None
    """A failure reason the launcher observed (``timeout``, ``memory``...), if any."""
    detail: str = ""
    started: bool = True
    """``False``: the job's runner never started (a packed task whose worker died before its
    turn); the scheduler then launches it again without counting a failed attempt."""


class Launcher(abc.ABC):
    """Starts job runners somewhere, tells when they end, stops them.

    A concrete launcher names its kind when it is defined, which registers it
    (``partita.launchers.register_launcher``)::

        class MyLauncher(Launcher, kind="mine"): ...

    Contract of an instance (used by the scheduler of the experiment that launches):

    - ``launch(requests)`` starts every request (the scheduler holds each job's lock
      meanwhile) and returns one handle per request: a JSON-serialisable ``dict`` with at
      least ``"kind"``, stored in the job's ``state.json`` so any process can follow it.
    - ``wait(handle)`` returns an :class:`Exit` when that job's runner is gone.
    - ``alive(handle)`` tells, possibly from another process, whether it still runs or is
      queued (``None`` when this cannot be known from here).
    - ``cancel(handle, grace)`` asks it to stop (SIGTERM-like), then forces it after
      ``grace`` seconds.
    - ``capacity`` bounds how many jobs run at once through this launcher (``None``: no bound).

    Contract of the class (usable from any process, synchronous: the command line, the
    index and the monitor ask these about handles written by other processes):

    - ``placeholder()``: the handle recorded while a launch is in progress;
      ``started(handle)``: whether a handle names a started job (not a placeholder).
    - ``describe_handle(handle)``: one line for people; ``host(handle)``: its machine.
    - ``probe(handle)``: whether it still runs, cheaply, from here (``None``: cannot tell).
    - ``kill(handle, grace)``: stop it from here.
    - ``time_left(handle)``: seconds before the launcher stops it (``None``: no limit known).
    - ``follower(handle)``: an instance able to ``wait``/``alive``/``cancel`` that handle.
    - ``settle(jobs)``: for jobs whose records say ``running`` but whose launcher job
      ended without an outcome, record one (used by ``partita status``).
    """

    #: Short name of the kind of launcher (``"local"``, ``"slurm"``), stored in handles.
    kind: ClassVar[str] = "abstract"
    #: Whether a job can be queued before its dependencies end (``depends_on`` is honoured).
    queues_dependencies: ClassVar[bool] = False
    #: Whether a new attempt is written to ``state.json`` once, after ``launch()`` returned,
    #: with its handle (the scheduler holds the job lock meanwhile: the runner cannot claim
    #: it before). ``False``: the attempt is written first with :meth:`placeholder`, and the
    #: handle after the launch, for runners that may start long after it (a cluster queue).
    record_after_launch: ClassVar[bool] = False

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
            register_launcher(cls)

    def queues_after(self, handle: dict[str, Any]) -> bool:
        """Whether a job can be queued behind the running job of ``handle`` (``depends_on``).

        By default: :attr:`queues_dependencies`. A launcher some of whose jobs cannot be
        waited for by the cluster (a task packed with others in one Slurm job) says no
        for those: their dependents are launched once they are done.
        """
        return bool(self.queues_dependencies)

    @property
    def capacity(self) -> int | None:
        """How many jobs may run at once through this launcher (``None``: unbounded)."""
        return None

    @abc.abstractmethod
    async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
        """Start the requests; return their handles (raise ``LauncherError`` on failure)."""

    @abc.abstractmethod
    async def wait(self, handle: dict[str, Any]) -> Exit:
        """Wait until the job of ``handle`` is over."""

    @abc.abstractmethod
    async def alive(self, handle: dict[str, Any]) -> bool | None:
        """Whether the job of ``handle`` still runs or is queued."""

    @abc.abstractmethod
    async def cancel(self, handle: dict[str, Any], grace: float) -> None:
        """Stop the job of ``handle``: politely, then by force after ``grace`` seconds."""

    def describe(self) -> str:
        """A short human description, e.g. ``local (4 at once)``."""
        return self.kind

    def warm(self, env: Mapping[str, str]) -> None:  # noqa: B027 - optional hook
        """Get ready for a first launch with these extra variables (on the event loop).

        Called once, just before the scheduler prepares the first launch of a run (while the
        run's ``environment.json`` may still be being written): a launcher may start what
        its launches need meanwhile. It must not block, and never fails a launch. (The
        experiment's default local launcher is also called earlier, in the main thread as
        the experiment is entered: see ``LocalLauncher.warm``.)
        """

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release resources (pollers, connections) at the end of the experiment."""

    # --- about handles, from any process ------------------------------------------------

    @classmethod
    def placeholder(cls) -> dict[str, Any]:
        """The handle recorded in ``state.json`` before ``launch()`` returns the real one."""
        return {"kind": cls.kind}

    @classmethod
    def started(cls, handle: Mapping[str, Any]) -> bool:
        """Whether ``handle`` names a started job (``False`` for :meth:`placeholder`)."""
        return any(key != "kind" for key in handle)

    @classmethod
    def describe_handle(cls, handle: Mapping[str, Any]) -> str:
        """One line for people, e.g. ``local, pid 1234 on node1``."""
        return generic_description(handle)

    @classmethod
    def host(cls, handle: Mapping[str, Any]) -> str | None:
        """The machine the job runs on, when the handle tells (``None``: not known)."""
        return None

    @classmethod
    def probe(cls, handle: Mapping[str, Any]) -> bool | None:
        """Whether the job still runs, told cheaply from this process (``None``: cannot tell).

        Must be quick (the index calls it for every running job at each refresh): a
        launcher that would have to ask a remote service returns ``None`` and answers in
        :meth:`alive` or :meth:`settle` instead.
        """
        return None

    @classmethod
    def kill(cls, handle: Mapping[str, Any], grace: float = 10.0) -> None:
        """Stop the job of ``handle`` from this process; returns when that is done.

        The default runs :meth:`cancel` of a :meth:`follower` in a fresh event loop.
        """
        import asyncio

        follower = cls.follower(handle)

        async def stop() -> None:
            try:
                await follower.cancel(dict(handle), grace)
            finally:
                await follower.close()

        asyncio.run(stop())

    @classmethod
    def time_left(cls, handle: Mapping[str, Any]) -> float | None:
        """Seconds before the launcher stops this job (``None``: no limit known)."""
        return None

    @classmethod
    def follower(cls, handle: Mapping[str, Any]) -> Launcher:
        """An instance that can ``wait``, ``alive`` and ``cancel`` a handle launched elsewhere."""
        return cls()

    @classmethod
    def settle(cls, jobs: Sequence[JobInfo]) -> list[str]:
        """Record how jobs ended whose records say ``running`` but whose launcher job ended.

        For a launcher whose jobs outlive the experiment that launched them (a detached
        run on a cluster): asks once for all ``jobs`` (all of this kind) and writes a
        final outcome for each that ended without one. Returns one line per job whose
        record changed. The default knows nothing and changes nothing.
        """
        return []
