"""The scheduler: one asyncio loop in a background thread owns every job's life.

Public methods are synchronous and thread-safe. Every coroutine it starts is tracked; an
unexpected error in one marks that job ``failed(internal)`` and is reported at the end.
File work that may wait (for a job lock held by someone else, for the run's environment)
runs in the loop's I/O pool, never on the loop thread: one contended job folder does not
stall the others. The steps of a launch that never wait (a lock taken without blocking,
a look at the folder, the write of its state, the read of its outcome) run on the loop:
a few small file operations each, cheaper than a trip to the pool and back.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from partita.config._serial import dumps as params_bytes
from partita.errors import ExperimentError, LauncherError
from partita.launchers import Exit, Launcher, LaunchRequest
from partita.scheduler import _attempt as disk
from partita.scheduler._bridge import LoopThread
from partita.scheduler._callbacks import Callbacks
from partita.scheduler._dispatch import Dispatcher
from partita.scheduler._follow import Follower
from partita.scheduler._graph import can_queue_after, settled
from partita.scheduler._job import Job, JobEvent, Record, Submission
from partita.scheduler._outcome import (
    Busy,
    Finished,
    Launched,
    LaunchResult,
    Outcome,
    Requeue,
    Vanished,
)
from partita.scheduler._outputs import OutputWatches
from partita.scheduler._slots import Slots
from partita.scheduler._tokens import TokenStore
from partita.workspace import (
    EXIT_SUPERSEDED,
    JobState,
    JobStatus,
    Reason,
    Workspace,
    no_space,
)

Listener = Callable[[JobEvent], None]

#: How many submitted jobs one trip to the I/O pool looks at (a burst is split so that
#: the first jobs of a large sweep start while the folders of the others are read).
PREPARE_BATCH = 256

#: While submissions keep coming, how often (seconds) the loop picks up the new ones. The
#: first submission after a pause wakes the loop at once.
COLLECT_INTERVAL = 0.002
#: The outcome of a job found done when submitted.
_REUSED = Finished(JobState.DONE)
P = ParamSpec("P")
T = TypeVar("T")


class Scheduler:
    """Runs submitted jobs along their dependencies, each exactly once.

    Args:
        workspace: the work directory.
        owner: who launches (experiment name and run id), recorded in ``state.json``.
        grace: seconds between SIGTERM and SIGKILL when cancelling.
        env: extra environment variables for job processes.
        before_launch: called (blocking, in the I/O pool) before the first attempt is
            begun; the experiment waits there for its run's ``environment.json``.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        owner: dict[str, Any],
        grace: float = 10.0,
        env: dict[str, str] | None = None,
        before_launch: Callable[[], None] | None = None,
    ) -> None:
        self.workspace = workspace
        self._before_launch = before_launch
        #: The launchers told to get ready (``Launcher.warm``), by ``id``.
        self._warmed: set[int] = set()
        self.owner = owner
        self.grace = grace
        self.env = env or {}
        self._records: dict[str, Record] = {}
        self._order: list[Record] = []
        self._to_start: list[Record] = []
        """Submitted jobs the loop has not started yet (one wake-up starts them all)."""
        self._collecting = False
        """Whether the loop will look at ``_to_start`` again by itself (no wake-up needed)."""
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._bridge = LoopThread()
        self._loop = self._bridge.loop
        self._finals: dict[str, asyncio.Future[None]] = {}
        self._launched: dict[str, asyncio.Future[None]] = {}
        self._unfinished = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = False
        self._cancelling = False
        self._internal_errors: list[str] = []
        self._callbacks = Callbacks(self._idle)
        self._watches = OutputWatches(
            self._bridge, self._callbacks, self._idle, self._final_future, self._spawn
        )
        # Bound once: every record holds the same two (not two bound methods per job).
        self._run_callbacks = self._callbacks.run
        self._watch_output = self._watches.watch
        self._launchers: set[Launcher] = set()
        self._tokens = TokenStore(workspace)
        self._slots = Slots(self._loop, Dispatcher(self._tokens))
        self._follower = Follower(self._bridge, self._launchers, self._lock, self._is_stopping)

    # --- lifecycle (any thread) ---------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread."""
        self._bridge.start()

    def warm(self, launcher: Launcher) -> None:
        """Let ``launcher`` get ready for its first launch now (``Launcher.warm``), in the
        loop thread, while the script builds and submits its tasks."""
        with self._lock:
            self._launchers.add(launcher)  # closed with the others at the end
        self._bridge.call_soon(self._warm, launcher)

    def _warm(self, launcher: Launcher) -> None:
        if id(launcher) in self._warmed:
            return
        self._warmed.add(id(launcher))
        try:
            launcher.warm(self.env)
        except Exception:  # an optimisation only: the launch itself reports problems
            pass

    def close(self) -> None:
        """Stop the loop thread (after :meth:`wait_idle` or :meth:`cancel_all`)."""

        async def close_launchers() -> None:
            with self._lock:
                launchers = list(self._launchers)
            for launcher in launchers:
                try:
                    await launcher.close()
                except Exception:
                    pass

        was_running = self._bridge.alive
        self._bridge.close(close_launchers)
        if was_running:
            self._callbacks.shutdown()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` (in the scheduler thread) at every state change."""
        self._listeners.append(listener)

    @property
    def jobs(self) -> list[Job]:
        """Every job submitted so far, in submission order."""
        with self._lock:
            return [rec.job for rec in self._order]

    def owns(self, job: Job) -> bool:
        """Whether ``job`` was submitted to this scheduler."""
        return job._record.owner is self

    def statistics(self) -> dict[str, int]:
        """Counts of jobs by state (plus ``reused`` and ``ran``)."""
        counts: dict[str, int] = {state.value: 0 for state in JobState}
        reused = ran = 0
        for job in self.jobs:
            counts[job.state.value] += 1
            reused += job.reused
            ran += job.attempts > 0
        counts["reused"] = reused
        counts["ran"] = ran
        return counts

    # --- submission (caller thread) -------------------------------------------------------

    def submit(self, spec: Submission) -> Job:
        """Register a task; if the same identifier is known, return the known job."""
        with self._lock:
            known = self._records.get(spec.identifier)
            if known is not None:
                known.tags.update(spec.tags)
                return known.job
            if self._stopping:
                raise ExperimentError("the experiment is stopping; no more jobs are accepted.")
            dependencies = spec.dependencies
            if dependencies:
                foreign = [d for d in dependencies if d._record.owner is not self]
                if foreign:
                    raise ExperimentError(
                        f"{spec.identifier[:12]} depends on {foreign[0].name}, a job of another "
                        "scheduler. Submit that task in this experiment too."
                    )
            rec = Record(spec, [d._record for d in dependencies] if dependencies else (), self)
            rec.run_callbacks = self._run_callbacks
            rec.watch_output = self._watch_output
            self._records[rec.identifier] = rec
            self._order.append(rec)
            self._unfinished += 1
            self._launchers.add(rec.launcher)
            self._to_start.append(rec)
            wake, self._collecting = not self._collecting, True
        if wake:  # a stream of submissions wakes the loop once, not once per job
            self._bridge.call_soon(self._start_submitted)
        return rec.job

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every job is final and every callback ran; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unfinished > 0 or self._callbacks.pending > 0 or self._watches.open:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                # Short waits keep Ctrl-C responsive in the main thread.
                self._idle.wait(0.5 if remaining is None else min(remaining, 0.5))
        return True

    def wait_settled(self) -> None:
        """Block until every job is final, running (or queued), or waits for a running one.

        Used when detaching: at that point everything that can be launched now was.
        """
        while True:
            with self._lock:
                records = list(self._order)
            if all(settled(rec) for rec in records):
                with self._idle:
                    if self._callbacks.pending == 0:
                        return
            time.sleep(0.05)

    def cancel_all(self, *, kill_running: bool = True) -> None:
        """Stop: cancel waiting and ready jobs; with ``kill_running``, stop running ones too.

        Blocks until that is done (at most about ``grace`` seconds).
        """
        with self._lock:
            self._stopping = True
        self._bridge.run(self._cancel_all(kill_running))

    def stop_submitting(self) -> None:
        """Refuse further submissions and launches (running jobs go on)."""
        with self._lock:
            self._stopping = True

    def _is_stopping(self) -> bool:
        return self._stopping

    @property
    def internal_errors(self) -> list[str]:
        """Unexpected errors inside the scheduler (each also failed its job)."""
        return list(self._internal_errors)

    @property
    def callback_errors(self) -> list[str]:
        """Exceptions raised by ``on_completed`` callbacks."""
        return list(self._callbacks.errors)

    # --- inside the loop: bookkeeping -----------------------------------------------------

    def _spawn(self, coroutine: Any, rec: Record | None = None) -> None:
        self._bridge.spawn(coroutine, lambda exc, text: self._failed(rec, exc, text))

    def _failed(self, rec: Record | None, exc: BaseException, text: str) -> None:
        """An unexpected error while driving ``rec``: it fails (``no_space`` or ``internal``)."""
        if no_space(exc):
            # Not a bug: say so plainly (once per job), without a traceback.
            if rec is not None and not rec.state.final:
                detail = f"no space left on device in the work directory {self.workspace.root}"
                self._finish(rec, Finished(JobState.FAILED, Reason.NO_SPACE.value, detail))
            return
        self._internal_errors.append(text)
        if rec is not None and not rec.state.final:
            self._finish(rec, Finished(JobState.FAILED, Reason.INTERNAL.value, str(exc)))

    async def _io(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking file step in the I/O pool (never on the loop thread)."""
        return await self._bridge.io(functools.partial(function, *args, **kwargs))

    def _launched_future(self, rec: Record) -> asyncio.Future[None]:
        """Resolved when ``rec`` has a launcher handle of this process, or is final."""
        future = self._launched.get(rec.identifier)
        if future is None or (future.done() and not rec.state.final and rec.handle is None):
            future = self._loop.create_future()
            if rec.state.final or (rec.handle is not None and rec.state is JobState.RUNNING):
                future.set_result(None)
            self._launched[rec.identifier] = future
        return future

    def _mark_launched(self, rec: Record) -> None:
        future = self._launched.get(rec.identifier)
        if future is not None and not future.done():
            future.set_result(None)

    def _final_future(self, rec: Record) -> asyncio.Future[None]:
        future = self._finals.get(rec.identifier)
        if future is None:
            future = self._loop.create_future()
            if rec.state.final:
                future.set_result(None)
            self._finals[rec.identifier] = future
        return future

    def _emit(self, rec: Record, state: JobState, previous: JobState | None) -> None:
        event = JobEvent(rec.job, state, previous, time.time())
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                self._internal_errors.append(traceback.format_exc())

    def _set_state(self, rec: Record, state: JobState) -> None:
        previous = rec.state
        if previous is state:
            return
        rec.state = state
        if state is JobState.RUNNING and rec.started is None:
            rec.started = time.time()
        self._emit(rec, state, previous)

    def _finish(self, rec: Record, outcome: Finished, *, count: bool = True) -> bool:
        """End ``rec`` with ``outcome`` (if it is not final yet); returns whether it ended.

        ``count=False``: the caller subtracts it from the unfinished jobs itself (a burst of
        done jobs does so once).
        """
        if rec.state.final:
            return False
        previous = rec.state
        rec.state = outcome.state
        rec.reason = outcome.reason
        rec.detail = outcome.detail
        rec.ended = time.time()
        self._emit(rec, outcome.state, previous)
        # A future nobody asked for is not made: one asked for later is made resolved.
        future = self._finals.get(rec.identifier)
        if future is not None and not future.done():
            future.set_result(None)
        self._mark_launched(rec)
        callbacks = rec.take_callbacks()
        if callbacks and outcome.state is JobState.DONE and not self._watches.defer(rec, callbacks):
            self._callbacks.run(rec, callbacks)
        rec.final.set()
        if count:
            self._count_finished(1)
        return True

    def _count_finished(self, ended: int) -> None:
        with self._idle:
            self._unfinished -= ended
            if self._unfinished <= 0:
                # Only ``wait_idle`` waits here, for none left: waking it at every job's
                # end (a thread switch each) would only have it look and wait again.
                self._idle.notify_all()

    # --- inside the loop: a job's life ----------------------------------------------------

    def _start_submitted(self) -> None:
        with self._lock:
            submitted, self._to_start = self._to_start, []
            # While submissions flow, the loop looks again shortly by itself: waking it
            # from the submitting thread (a write to its self-pipe, a thread switch) for
            # each small burst cost more than the jobs' own bookkeeping.
            self._collecting = bool(submitted)
        if submitted:
            self._loop.call_later(COLLECT_INTERVAL, self._start_submitted)
        for start in range(0, len(submitted), PREPARE_BATCH):
            self._spawn(self._prepare(submitted[start : start + PREPARE_BATCH]))

    async def _prepare(self, recs: list[Record]) -> None:
        """Look at the folders of a burst of submissions in one trip to the I/O pool.

        Done jobs end here (a re-check of thousands of done jobs costs one trip per
        :data:`PREPARE_BATCH` jobs, no coroutine each); the others start their life.
        """
        ended = 0
        found = [rec for rec in recs if rec.spec.found_done]
        if found:  # seen done when sealed: nothing more to read
            try:
                for rec in found:
                    rec.reused = True
                    ended += self._finish(rec, _REUSED, count=False)
            finally:
                self._count_finished(ended)
                ended = 0
            recs = [rec for rec in recs if not rec.spec.found_done]
            if not recs:
                return
        jobs = [
            (rec.paths, rec.spec.params or params_bytes(rec.spec.task), rec.spec.params_recorded)
            for rec in recs
        ]
        results: list[JobStatus | BaseException]
        try:
            results = await self._io(disk.prepare_all, jobs)
        except Exception as exc:  # the step itself failed: every job of the burst fails
            results = [exc] * len(recs)
        try:
            for rec, result in zip(recs, results, strict=True):
                if isinstance(result, BaseException):
                    self._failed(rec, result, "".join(traceback.format_exception(result)))
                elif result.done:
                    rec.reused = True
                    ended += self._finish(rec, _REUSED, count=False)
                else:
                    self._spawn(self._drive(rec, result), rec)
        finally:
            if ended:
                self._count_finished(ended)

    async def _drive(self, rec: Record, status: JobStatus) -> None:
        if status.state is JobState.RUNNING:
            rec.watched = status.record.get("attempt")  # another process runs it: follow
        # Its first attempt need not look again before it takes a slot: the lock step
        # looks under the lock anyway (a job done or run elsewhere meanwhile is seen there).
        rec.fresh = status
        if self._stopping:
            self._finish(rec, Finished(JobState.CANCELLED, None, "the experiment was stopping"))
            return
        self._emit(rec, JobState.WAITING, None)
        while True:
            if not await self._wait_dependencies(rec):
                return
            match await self._attempts(rec):
                case Requeue():
                    self._set_state(rec, JobState.WAITING)
                case Finished() as outcome:
                    self._finish(rec, outcome)
                    return

    async def _wait_dependencies(self, rec: Record) -> bool:
        """Wait until dependencies are done (or queued, for launchers that queue them).

        Returns ``False`` (having ended the job) if one of them failed or was cancelled: the
        job is then ``failed(dependency)``, or ``cancelled(dependency)`` after a cancelled
        one, in memory and in its folder (see docs/workspace.md).
        """
        rec.queued_on = []
        for dep in rec.dependencies:
            if can_queue_after(rec, dep):
                await self._launched_future(dep)
                if (
                    not dep.state.final
                    and dep.handle is not None
                    and not dep.elsewhere
                    and can_queue_after(rec, dep)
                ):
                    rec.queued_on.append(dep)
                    continue
            await self._final_future(dep)
        if rec.state.final:
            return False  # the experiment stopped it meanwhile
        broken = [d for d in rec.dependencies if d.state.final and d.state is not JobState.DONE]
        if not broken:
            return True
        dep = broken[0]
        why = f"dependency {dep.name} {dep.state.value}" + (
            f" ({dep.reason})" if dep.reason else ""
        )
        state = JobState.CANCELLED if dep.state is JobState.CANCELLED else JobState.FAILED
        outcome = Finished(state, Reason.DEPENDENCY.value, why)
        await self._io(disk.not_run, rec.paths, outcome)
        self._finish(rec, outcome)
        return False

    async def _attempts(self, rec: Record) -> Outcome:
        """Attempts until one ends the job (retrying what ``retry`` allows), or a requeue."""
        while True:
            if self._stopping:
                return Finished(JobState.CANCELLED, None, "the experiment was stopping")
            self._set_state(rec, JobState.READY)
            outcome = await self._attempt(rec)
            match outcome:
                case Finished(state=JobState.FAILED, reason=reason, detail=detail):
                    rec.failures.append(reason or "error")
                    self._attempt_failed(rec)
                    if not self._stopping and rec.spec.retry.allows(reason, rec.attempts):
                        rec.reason, rec.detail = reason, detail  # shown as "retrying"
                        continue
            return outcome

    def _attempt_failed(self, rec: Record) -> None:
        """Jobs queued on the cluster after ``rec``'s failed attempt must not wait forever."""
        for other in self._order:
            if (
                rec in other.queued_on
                and other.handle is not None
                and other.state is JobState.RUNNING
                and not other.elsewhere
            ):
                other.requeue = True
                self._spawn(other.launcher.cancel(other.handle, 0.0))

    async def _attempt(self, rec: Record) -> Outcome:
        """One attempt: reuse, wait for a foreign run, or launch. Returns the outcome."""
        while True:
            fresh, rec.fresh = rec.fresh, None
            status = fresh if fresh is not None else disk.inspect(rec.paths)
            if status.state is JobState.DONE:
                rec.elsewhere = True
                return Finished(JobState.DONE)
            if status.state is JobState.RUNNING:
                rec.watched = status.record.get("attempt")
            if status.state is JobState.RUNNING and await self._follower.alive(rec, status):
                match await self._follow(rec):
                    case Finished() as outcome:
                        return outcome
                    case Vanished():
                        continue
            ticket = await self._slots.acquire(rec)
            exit_: Exit | None = None
            try:
                if self._stopping:
                    return Finished(JobState.CANCELLED, None, "the experiment was stopping")
                result = await self._launch_locked(rec)
                if isinstance(result, Launched):
                    self._set_state(rec, JobState.RUNNING)
                    try:
                        exit_ = await rec.launcher.wait(result.handle)
                    except LauncherError as exc:
                        return Finished(JobState.FAILED, Reason.LAUNCH.value, str(exc))
                    finally:
                        # The handle names an attempt that is over: jobs queued after this
                        # one must wait for the next attempt's handle, not this one.
                        rec.handle = None
            finally:
                self._slots.release(ticket)
            match result:
                case Finished() as outcome:
                    return outcome
                case Busy():
                    # Another process holds the job: wait for it without holding a slot.
                    match await self._follow(rec):
                        case Finished() as outcome:
                            return outcome
                        case Vanished():
                            continue
                case Launched(attempt=attempt):
                    assert exit_ is not None
                    ended = await self._conclude(rec, attempt, exit_)
                    if ended is not None:
                        return ended

    async def _follow(self, rec: Record) -> Finished | Vanished:
        rec.elsewhere = True
        self._set_state(rec, JobState.RUNNING)
        return await self._follower.follow(rec)

    async def _conclude(self, rec: Record, attempt: int, exit_: Exit) -> Outcome | None:
        """What attempt ``attempt`` led to, once its runner is gone (``None``: superseded)."""
        paths = rec.paths
        if rec.requeue:
            rec.requeue = False
            await self._io(disk.requeued, paths, attempt)
            return Requeue()
        final = disk.written_final(paths, attempt)
        if final is None and not exit_.started:
            # Its turn never came (a packed worker died first): not a failure of the job.
            await self._io(disk.requeued, paths, attempt, f"requeued: {exit_.detail}")
            return Requeue()
        if final is not None:
            reason = exit_.reason or final.reason
            detail = final.detail or exit_.detail
            if reason != final.reason and final.state is JobState.FAILED:
                detail = f"{exit_.detail}; {detail}" if exit_.detail else detail
                amended: Finished = await self._io(disk.amend, paths, attempt, reason, detail)
                return amended
            return Finished(final.state, reason, detail)
        if exit_.code == EXIT_SUPERSEDED:
            return None
        lost: Finished = await self._io(
            disk.record_lost,
            paths,
            attempt,
            exit_.code,
            exit_.reason,
            exit_.detail,
            cancelling=self._cancelling,
        )
        return lost

    async def _launch_locked(self, rec: Record) -> LaunchResult:
        """Under the job lock: re-check the disk, then start a new attempt."""
        paths = rec.paths

        def begin(status: JobStatus) -> tuple[int, dict[str, Any]]:
            return disk.begin(
                paths,
                owner=self.owner,
                placeholder=rec.launcher.placeholder(),
                tags=rec.tags,
                resumable=rec.spec.resumable,
                write=not rec.launcher.record_after_launch,
                status=status,
            )

        self._warm(rec.launcher)  # e.g. a fork server starts while the folder is read
        # Lock, look and begin in one step: jobs that became ready together reach the
        # launcher together (Slurm submits them as one array). It never waits for the lock,
        # so it runs on the loop, except for the first launches, which wait for the run's
        # environment.json (``before``) in the I/O pool.
        note = {"role": "launcher", **self.owner}
        if self._before_launch is not None:
            opened = await self._io(
                disk.open_attempt,
                paths,
                note,
                lambda status: self._may_begin(rec, status),
                begin,
                before=self._before_launch,
            )
            self._before_launch = None  # passed once: later launches need not ask
        else:
            opened = disk.open_attempt(
                paths, note, lambda status: self._may_begin(rec, status), begin
            )
        if opened.lock is None:
            return Busy()
        lock = opened.lock
        try:
            status = opened.status
            if opened.begun is not None:
                attempt, record = opened.begun
            else:
                if status.state is JobState.DONE:
                    rec.elsewhere = True
                    return Finished(JobState.DONE)
                if _ended_while_watched(rec, status):
                    # The attempt seen running here ended meanwhile (its outcome landed after
                    # its process was gone): that outcome is the answer, not a new attempt.
                    rec.elsewhere = True
                    return disk.outcome_of(status)
                if status.state is JobState.RUNNING and await self._follower.alive(
                    rec, status, locked=True
                ):
                    return Busy()
                if self._stopping:
                    return Finished(JobState.CANCELLED, None, "the experiment was stopping")
                attempt, record = begin(status)
            request = LaunchRequest(
                paths=paths,
                attempt=attempt,
                name=rec.name,
                env=self.env,
                resources=rec.spec.resources,
                append_logs=rec.spec.resumable,
                depends_on=[d.handle for d in rec.queued_on if d.handle is not None],
                previous_failures=list(rec.failures),
            )
            try:
                handles = await rec.launcher.launch([request])
            except LauncherError as exc:
                rec.attempts += 1
                failed: Finished = await self._io(disk.launch_failed, paths, attempt, str(exc))
                return failed
            handle = handles[0]
            # With ``record_after_launch``, the attempt itself is written now, with its handle
            # (one write): the runner blocks on the lock until then.
            disk.launched(paths, record, handle, started=rec.launcher.record_after_launch)
            if rec.spec.tokens:
                await self._io(self._tokens.attach, rec.identifier, rec.spec.tokens, handle)
            rec.attempts += 1
            rec.handle = handle
            rec.elsewhere = False
            self._mark_launched(rec)
            return Launched(attempt, handle)
        finally:
            lock.release()

    def _may_begin(self, rec: Record, status: JobStatus) -> bool:
        # Called under the job lock (maybe in the I/O pool): plain reads only.
        return not self._stopping and _never_ran_or_ended(rec, status)

    # --- cancellation ---------------------------------------------------------------------

    async def _cancel_all(self, kill_running: bool) -> None:
        self._cancelling = kill_running
        self._slots.cancel_waiting()
        stops = []
        unrun = []
        stopped = Finished(JobState.CANCELLED, None, "the experiment was stopped")
        for rec in list(self._order):
            if rec.state.final:
                continue
            if rec.state is JobState.RUNNING and not rec.elsewhere and rec.handle is not None:
                if kill_running:
                    stops.append(self._stop_running(rec))
            elif rec.state in (JobState.WAITING, JobState.READY) or rec.elsewhere:
                if not rec.elsewhere:
                    unrun.append(self._io(disk.not_run, rec.paths, stopped))
                self._finish(rec, stopped)
        if stops or unrun:
            await asyncio.gather(*stops, *unrun, return_exceptions=True)

    async def _stop_running(self, rec: Record) -> None:
        assert rec.handle is not None
        note = f"requested by {self.owner.get('experiment')} at {time.time()}\n"
        await self._io(_write_text, rec.paths.cancel_request, note)
        await rec.launcher.cancel(rec.handle, self.grace)
        final = await _wait_until(lambda: rec.state.final, 2 * self.grace + 5)
        if not final:
            self._finish(rec, Finished(JobState.CANCELLED, None, "stopped on request"))


def _never_ran_or_ended(rec: Record, status: JobStatus) -> bool:
    """Whether a new attempt may begin at once (no liveness to ask, nothing to adopt)."""
    if status.state is None:
        return True
    return status.state in (JobState.FAILED, JobState.CANCELLED) and not _ended_while_watched(
        rec, status
    )


def _ended_while_watched(rec: Record, status: JobStatus) -> bool:
    if status.state not in (JobState.FAILED, JobState.CANCELLED) or rec.watched is None:
        return False
    return (status.final or {}).get("attempt") == rec.watched


def _write_text(path: Any, text: str) -> None:
    try:
        path.write_text(text)
    except OSError:
        pass


async def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
