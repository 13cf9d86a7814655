"""``Job``: one task identity inside a running experiment, as seen by the user.

The public :class:`Job` is a read-only view; the scheduler alone changes the private
:class:`Record` behind it (state, attempts, launcher handle, the jobs it is queued after).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partita.workspace import JobPaths, JobState, JobStatus

if TYPE_CHECKING:
    from partita.config import Task
    from partita.launchers import Launcher
    from partita.scheduler._tokens import Token


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
class Submission:
    """What the experiment hands to :meth:`Scheduler.submit` for one task.

    Args:
        task: the (frozen) task.
        identifier: its identity.
        paths: its job folder.
        launcher: how to run it.
        dependencies: jobs of the same scheduler it waits for.
        tags: its tags (recorded in ``state.json``).
        retry: when to run it again after a failure.
        tokens: units of tokens it holds while it runs.
        resources: what it asks of the launcher (cpus, mem, gpus, time).
        resumable: whether a new attempt continues the previous one's files.
        params: the ``params.json`` bytes, if already computed.
        params_recorded: what the job folder held when ``params`` were computed: ``True``
            those bytes, ``None`` no ``params.json``, ``False`` other bytes or unknown (the
            scheduler then compares them itself).
        found_done: the job folder's ``done`` marker was seen when the task was sealed: the
            job ends as reused without another look at the folder.
    """

    task: Task
    identifier: str
    paths: JobPaths
    launcher: Launcher
    dependencies: Sequence[Job] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)
    retry: Retry = field(default_factory=Retry)
    tokens: dict[Token, int] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    resumable: bool = False
    params: bytes | None = None
    params_recorded: bool | None = False
    found_done: bool = False


#: Shared by every job's :class:`_Final` (a job ending wakes the few threads waiting).
_ended = threading.Condition(threading.Lock())
#: How many threads wait in :meth:`_Final.wait` (changed under ``_ended``).
_waiting = [0]


class _Final:
    """A job's "it is final" flag: ``threading.Event``'s ``set``/``is_set``/``wait``,
    without a lock and a condition per job (a rerun holds thousands of jobs)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True
        # Nobody waits, mostly (a rerun ends thousands of done jobs at once): no notify then.
        # A waiter counts itself under the lock before it looks at the flag, so one that
        # is not counted yet will see the flag set.
        if _waiting[0]:
            with _ended:
                _ended.notify_all()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        with _ended:
            _waiting[0] += 1
            try:
                return _ended.wait_for(lambda: self._set, timeout)
            finally:
                _waiting[0] -= 1


class Record:
    """The scheduler's mutable record of one job (private: only the scheduler writes it)."""

    # Slots: a rerun holds 100,000 records. ``__dict__`` stays for any other attribute.
    __slots__ = (
        "__dict__",
        "attempts",
        "callbacks",
        "callbacks_fired",
        "deferred",
        "dependencies",
        "detail",
        "elsewhere",
        "ended",
        "failures",
        "final",
        "fresh",
        "handle",
        "identifier",
        "job",
        "launcher",
        "lock",
        "owner",
        "paths",
        "queued_on",
        "reason",
        "requeue",
        "reused",
        "run_callbacks",
        "spec",
        "started",
        "state",
        "submitted",
        "tags",
        "warned_foreign",
        "watch_output",
        "watched",
        "watches",
    )

    def __init__(self, spec: Submission, dependencies: Sequence[Record], owner: object) -> None:
        self.spec = spec
        self.identifier = spec.identifier
        self.paths = spec.paths
        self.launcher = spec.launcher
        self.dependencies = dependencies
        self.tags = dict(spec.tags)
        self.owner = owner
        """The scheduler owning this record."""
        self.state: JobState = JobState.WAITING
        self.reason: str | None = None
        self.detail = ""
        self.attempts = 0
        self.reused = False
        self.elsewhere = False
        self.submitted = time.time()
        self.started: float | None = None
        self.ended: float | None = None
        self.handle: dict[str, Any] | None = None
        self.failures: list[str] = []
        self.queued_on: list[Record] = []
        self.requeue = False
        self.warned_foreign = False
        self.fresh: JobStatus | None = None
        """What the folder said when the job was prepared, until its first attempt looks."""
        self.watched: int | None = None
        """The attempt this scheduler last saw running in the folder (launched or not)."""
        self.final = _Final()
        self.callbacks: list[Callable[[Job], Any]] = []
        self.callbacks_fired = False
        self.lock = threading.Lock()
        self.run_callbacks: Callable[[Record, list[Callable[[Job], Any]]], None] | None = None
        self.watch_output: (
            Callable[[Record, str, Callable[[dict[str, Any]], None]], None] | None
        ) = None
        """Starts a watch of the job's live outputs (set by the scheduler that runs it)."""
        self.watches = 0
        """Watches of its outputs not ended yet (under ``lock``)."""
        self.deferred: list[Callable[[Job], Any]] = []
        """``on_completed`` callbacks waiting for the last watch to end (under ``lock``)."""
        self.job = Job(self)

    @property
    def name(self) -> str:
        """``<type id>/<first 12 characters of the identifier>``."""
        return self.job.name

    def take_callbacks(self) -> list[Callable[[Job], Any]]:
        """The callbacks to run now that the job is final (each is taken once)."""
        with self.lock:
            if self.callbacks_fired:
                return []
            self.callbacks_fired = True
            callbacks, self.callbacks = self.callbacks, []
            return callbacks

    def __repr__(self) -> str:
        return f"<Record {self.name} {self.state.value}>"


def unscheduled_job(spec: Submission, state: JobState) -> Job:
    """A job no scheduler runs (a dry run): ``state`` as found on disk, already settled.

    ``wait()`` returns at once and ``on_completed`` callbacks are never called.
    """
    record = Record(spec, [], None)
    record.state = state
    record.reused = state is JobState.DONE
    record.callbacks_fired = True
    record.final.set()
    return record.job


@dataclass(frozen=True)
class JobEvent:
    """A job changed state (delivered to event listeners, in order)."""

    job: Job
    state: JobState
    previous: JobState | None
    time: float


class Job:
    """A submitted task: its identity, folder, dependencies and live state.

    Obtained from ``task.job`` after ``task.submit()``. Read-only and thread-safe to read:
    the scheduler that runs it changes its state.
    """

    __slots__ = ("_record",)

    def __init__(self, record: Record) -> None:
        self._record = record

    @property
    def task(self) -> Task:
        """The submitted task."""
        return self._record.spec.task

    @property
    def identifier(self) -> str:
        """The identity of the task (its folder name)."""
        return self._record.identifier

    @property
    def type_id(self) -> str:
        """The task's type id (its parent folder's name)."""
        return self._record.paths.type_id

    @property
    def name(self) -> str:
        """``<type id>/<first 12 characters of the identifier>``."""
        return f"{self.type_id}/{self.identifier[:12]}"

    @property
    def paths(self) -> JobPaths:
        """Every file of the job folder."""
        return self._record.paths

    @property
    def jobdir(self) -> Path:
        """The job folder."""
        return self._record.paths.root

    @property
    def dependencies(self) -> list[Job]:
        """The jobs it waits for."""
        return [dep.job for dep in self._record.dependencies]

    @property
    def tags(self) -> dict[str, Any]:
        """Its tags (merged over every submission of the same task)."""
        return self._record.tags

    @property
    def state(self) -> JobState:
        """Its current state."""
        return self._record.state

    @property
    def reason(self) -> str | None:
        """Why it failed (or, while retrying, why the last attempt failed)."""
        return self._record.reason

    @property
    def detail(self) -> str:
        """A human description of how it ended (empty if nothing to add)."""
        return self._record.detail

    @property
    def attempts(self) -> int:
        """Attempts launched by this experiment."""
        return self._record.attempts

    @property
    def reused(self) -> bool:
        """Whether it was already done before this experiment submitted it."""
        return self._record.reused

    @property
    def elsewhere(self) -> bool:
        """Whether its last attempt was run by another process (this one waited for it)."""
        return self._record.elsewhere

    @property
    def submitted(self) -> float:
        """When it was submitted (seconds since the epoch)."""
        return self._record.submitted

    @property
    def started(self) -> float | None:
        """When it started running, if it did."""
        return self._record.started

    @property
    def ended(self) -> float | None:
        """When it reached its final state, if it did."""
        return self._record.ended

    def wait(self, timeout: float | None = None) -> JobState:
        """Block until the job reaches a final state (or ``timeout``); return its state."""
        self._record.final.wait(timeout)
        return self._record.state

    def on_completed(self, callback: Callable[[Job], Any]) -> None:
        """Call ``callback(job)`` once when the job is done (never if it fails).

        Callbacks run in a dedicated thread, in completion order, and may submit new tasks;
        the experiment waits for them. If the job is already done, the callback is queued
        at once.
        """
        record = self._record
        with record.lock:
            if not record.callbacks_fired:
                record.callbacks.append(callback)
                return
            fire_now = record.state is JobState.DONE
            if fire_now and record.watches:  # after the callbacks of its outputs
                record.deferred.append(callback)
                return
        if fire_now and record.run_callbacks is not None:
            record.run_callbacks(record, [callback])

    def watch_output(self, name: str, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(value)`` for each output ``name`` the job publishes.

        The task publishes with ``partita.publish(name, value)`` (or ``self.publish``);
        ``value`` is what it published, a config rebuilt (e.g. a ``Checkpoint``) or a JSON
        value. Callbacks run while the job runs, in the thread of ``on_completed``
        callbacks, in publishing order, and may submit tasks; the experiment waits for
        them, and the job's ``on_completed`` callbacks come after those of every output.
        Each output is delivered once to each watch, those published before the watch
        too: a run of the experiment after a crash sees every output again, and the tasks
        its callbacks submit have the identities they had, so each runs once.
        A job of a dry run calls nothing.
        """
        if not isinstance(name, str) or not name:
            from partita.errors import ExperimentError

            raise ExperimentError(
                f"watch_output(name, callback): expected the name the task publishes "
                f"(e.g. 'checkpoint'), found {name!r}."
            )
        if not callable(callback):
            from partita.errors import ExperimentError

            raise ExperimentError(
                f"watch_output({name!r}, callback): expected a function of the published "
                f"value, found {type(callback).__name__}."
            )
        record = self._record
        if record.watch_output is None:
            return
        from partita.scheduler._outputs import output_value

        workspace = record.paths.workdir

        def deliver(entry: dict[str, Any]) -> None:
            callback(output_value(entry, workspace))

        record.watch_output(record, name, deliver)

    def outputs(self, name: str | None = None) -> list[Any]:
        """What the job published so far (of ``name``, or all), each once, in order."""
        from partita.scheduler._outputs import output_value
        from partita.workspace import read_outputs

        workspace = self._record.paths.workdir
        entries = read_outputs(self._record.paths, name, once=True)
        return [output_value(entry, workspace) for entry in entries]

    def __repr__(self) -> str:
        reason = f", {self.reason}" if self.reason else ""
        return f"<Job {self.name} {self.state.value}{reason}>"
