"""The launcher contract: how a job's runner process is started, followed and stopped."""

from __future__ import annotations

import abc
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from partita.workspace import JobPaths


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


class Launcher(abc.ABC):
    """Starts job runners somewhere, tells when they end, stops them.

    Contract:

    - ``launch(requests)`` starts every request (the scheduler holds each job's lock
      meanwhile) and returns one handle per request: a JSON-serialisable ``dict`` with at
      least ``"kind"``, stored in the job's ``state.json`` so any process can follow it.
    - ``wait(handle)`` returns an :class:`Exit` when that job's runner is gone.
    - ``alive(handle)`` tells, possibly from another process, whether it still runs or is
      queued (``None`` when this cannot be known from here).
    - ``cancel(handle, grace)`` asks it to stop (SIGTERM-like), then forces it after
      ``grace`` seconds.
    - ``capacity`` bounds how many jobs run at once through this launcher (``None``: no bound).
    """

    #: Short name of the kind of launcher (``"local"``, ``"slurm"``), stored in handles.
    kind: str = "abstract"
    #: Whether a job can be queued before its dependencies end (``depends_on`` is honoured).
    queues_dependencies: bool = False

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

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release resources (pollers, connections) at the end of the experiment."""
