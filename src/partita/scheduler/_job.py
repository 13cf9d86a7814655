"""``Job``: one task identity inside a running experiment, as seen by the user."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from partita.workspace import JobPaths, JobState

if TYPE_CHECKING:
    from partita.config import Task
    from partita.launchers import Launcher


@dataclass(frozen=True)
class Retry:
    """When to run a failed job again within the same experiment.

    Args:
        count: how many extra attempts (0: never retry).
        on: the failure reasons that are retried (default: ``lost``, ``timeout``,
            ``preempted``, ``node_fail``: failures that are not the task's own fault).
    """

    count: int = 0
    on: frozenset[str] = field(
        default_factory=lambda: frozenset({"lost", "timeout", "preempted", "node_fail"})
    )

    def __post_init__(self) -> None:
        from partita.errors import ConfigTypeError

        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 0:
            raise ConfigTypeError(f"Retry.count: expected an int >= 0, found {self.count!r}.")
        object.__setattr__(self, "on", frozenset(self.on))

    def allows(self, reason: str | None, attempts_done: int) -> bool:
        """Whether a job that failed with ``reason`` after ``attempts_done`` tries runs again."""
        return reason in self.on and attempts_done <= self.count


@dataclass(frozen=True)
class JobEvent:
    """A job changed state (delivered to event listeners, in order)."""

    job: Job
    state: JobState
    previous: JobState | None
    time: float


class Job:
    """A submitted task: its identity, folder, dependencies and live state.

    Obtained from ``task.job`` after ``task.submit()``. Thread-safe to read.
    """

    def __init__(
        self,
        task: Task,
        identifier: str,
        paths: JobPaths,
        launcher: Launcher,
        dependencies: list[Job],
        tags: dict[str, Any],
        retry: Retry,
        tokens: dict[Any, int],
        resources: dict[str, Any],
        resumable: bool = False,
    ) -> None:
        self.task = task
        self.identifier = identifier
        self.type_id: str = type(task)._partita_type_id
        self.paths = paths
        self.launcher = launcher
        self.dependencies = dependencies
        self.tags = tags
        self.retry = retry
        self.tokens = tokens
        self.resources = resources
        self.resumable = resumable
        self.state: JobState = JobState.WAITING
        self.reason: str | None = None
        self.detail: str = ""
        self.attempts = 0
        """Attempts launched by this experiment."""
        self.reused = False
        """Whether it was already done before this experiment submitted it."""
        self.elsewhere = False
        """Whether its last attempt was run by another process (this one waited for it)."""
        self.submitted = time.time()
        self.started: float | None = None
        self.ended: float | None = None
        self.handle: dict[str, Any] | None = None
        self.failures: list[str] = []
        """Reasons of this experiment's failed attempts, oldest first."""
        self.queued_on: list[Job] = []
        """Dependencies still running that the launcher was asked to wait for."""
        self.requeue = False
        self.warned_foreign = False
        self.params: bytes | None = None
        """The ``params.json`` bytes, when the submitter already computed them."""
        self._final = threading.Event()
        self._callbacks: list[Callable[[Job], Any]] = []
        self._callbacks_fired = False
        self._lock = threading.Lock()
        self._scheduler: Any = None

    @property
    def name(self) -> str:
        """``<type id>/<first 12 characters of the identifier>``."""
        return f"{self.type_id}/{self.identifier[:12]}"

    @property
    def jobdir(self) -> Any:
        """The job folder."""
        return self.paths.root

    def wait(self, timeout: float | None = None) -> JobState:
        """Block until the job reaches a final state (or ``timeout``); return its state."""
        self._final.wait(timeout)
        return self.state

    def on_completed(self, callback: Callable[[Job], Any]) -> None:
        """Call ``callback(job)`` once when the job is done (never if it fails).

        Callbacks run in a dedicated thread, in completion order, and may submit new tasks;
        the experiment waits for them. If the job is already done, the callback is queued
        at once.
        """
        with self._lock:
            if not self._callbacks_fired:
                self._callbacks.append(callback)
                return
            fire_now = self.state is JobState.DONE
        if fire_now and self._scheduler is not None:
            self._scheduler._run_callbacks(self, [callback])

    def _take_callbacks(self) -> list[Callable[[Job], Any]]:
        with self._lock:
            if self._callbacks_fired:
                return []
            self._callbacks_fired = True
            callbacks, self._callbacks = self._callbacks, []
            return callbacks

    def __repr__(self) -> str:
        reason = f", {self.reason}" if self.reason else ""
        return f"<Job {self.name} {self.state.value}{reason}>"
