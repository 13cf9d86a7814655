"""The scheduler: one asyncio loop in a background thread owns every job's life.

Public methods are synchronous and thread-safe. Every coroutine it starts is tracked; an
unexpected error in one marks that job ``failed(internal)`` and is reported at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from partita.config._serial import dumps as params_bytes
from partita.errors import LauncherError
from partita.launchers import Launcher, LaunchRequest, handle_kind, launcher_for_handle
from partita.scheduler._job import Job, JobEvent
from partita.scheduler._tokens import TokenStore
from partita.workspace import (
    EXIT_SUPERSEDED,
    FileLock,
    JobState,
    Reason,
    Workspace,
    atomic_write,
    clear_final,
    disk_state,
    final_marker,
    identity,
    is_done,
    no_space,
    write_final,
    write_state,
)

Listener = Callable[[JobEvent], None]


class Scheduler:
    """Runs submitted jobs along their dependencies, each exactly once.

    Args:
        workspace: the work directory.
        owner: who launches (experiment name and run id), recorded in ``state.json``.
        grace: seconds between SIGTERM and SIGKILL when cancelling.
        env: extra environment variables for job processes.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        owner: dict[str, Any],
        grace: float = 10.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.owner = owner
        self.grace = grace
        self.env = env or {}
        self._jobs: dict[str, Job] = {}
        self._order: list[Job] = []
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, name="partita-scheduler", daemon=True
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ready: list[tuple[Job, asyncio.Future[None]]] = []
        self._running_by_launcher: dict[int, int] = {}
        self._finals: dict[str, asyncio.Future[None]] = {}
        self._launched: dict[str, asyncio.Future[None]] = {}
        self._unfinished = 0
        self._idle = threading.Condition(self._lock)
        self._stopping = False
        self._cancelling = False
        self._internal_errors: list[str] = []
        self._callbacks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="partita-cb")
        self._callback_errors: list[str] = []
        self._pending_callbacks = 0
        self._launchers: set[Launcher] = set()
        self._tokens = TokenStore(workspace)
        self._token_poll: asyncio.TimerHandle | None = None

    # --- lifecycle (any thread) ---------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread."""
        self._thread.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def close(self) -> None:
        """Stop the loop thread (after :meth:`wait_idle` or :meth:`cancel_all`)."""
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            for launcher in list(self._launchers):
                with contextlib.suppress(Exception):
                    await launcher.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._callbacks.shutdown(wait=True)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` (in the scheduler thread) at every state change."""
        self._listeners.append(listener)

    @property
    def jobs(self) -> list[Job]:
        """Every job submitted so far, in submission order."""
        with self._lock:
            return list(self._order)

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

    def submit(self, job: Job) -> Job:
        """Register ``job``; if the same identifier is known, return the known job."""
        with self._lock:
            known = self._jobs.get(job.identifier)
            if known is not None:
                known.tags.update(job.tags)
                return known
            if self._stopping:
                from partita.errors import ExperimentError

                raise ExperimentError("the experiment is stopping; no more jobs are accepted.")
            self._jobs[job.identifier] = job
            self._order.append(job)
            self._unfinished += 1
            self._launchers.add(job.launcher)
        job._scheduler = self
        self._loop.call_soon_threadsafe(self._start_job, job)
        return job

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every job is final and every callback ran; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unfinished > 0 or self._pending_callbacks > 0:
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
            jobs = self.jobs
            if all(_settled(job) for job in jobs):
                with self._idle:
                    if self._pending_callbacks == 0:
                        return
            time.sleep(0.05)

    def cancel_all(self, *, kill_running: bool = True) -> None:
        """Stop: cancel waiting and ready jobs; with ``kill_running``, stop running ones too.

        Blocks until that is done (at most about ``grace`` seconds).
        """
        with self._lock:
            self._stopping = True
        future = asyncio.run_coroutine_threadsafe(self._cancel_all(kill_running), self._loop)
        future.result()

    def stop_submitting(self) -> None:
        """Refuse further submissions and launches (running jobs go on)."""
        with self._lock:
            self._stopping = True

    @property
    def internal_errors(self) -> list[str]:
        """Unexpected errors inside the scheduler (each also failed its job)."""
        return list(self._internal_errors)

    @property
    def callback_errors(self) -> list[str]:
        """Exceptions raised by ``on_completed`` callbacks."""
        return list(self._callback_errors)

    # --- inside the loop ------------------------------------------------------------------

    def _spawn(self, coroutine: Any, job: Job | None = None) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)

        def finished(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None and no_space(exc):
                # Not a bug: say so plainly (once per job), without a traceback.
                if job is not None and not job.state.final:
                    self._finish(
                        job,
                        JobState.FAILED,
                        Reason.NO_SPACE.value,
                        f"no space left on device in the work directory {self.workspace.root}",
                    )
                return
            if exc is not None:
                text = "".join(traceback.format_exception(exc))
                self._internal_errors.append(text)
                if job is not None and not job.state.final:
                    self._finish(job, JobState.FAILED, Reason.INTERNAL.value, str(exc))

        task.add_done_callback(finished)

    def _launched_future(self, job: Job) -> asyncio.Future[None]:
        """Resolved when ``job`` has a launcher handle of this process, or is final."""
        future = self._launched.get(job.identifier)
        if future is None or (future.done() and not job.state.final and job.handle is None):
            future = self._loop.create_future()
            if job.state.final or (job.handle is not None and job.state is JobState.RUNNING):
                future.set_result(None)
            self._launched[job.identifier] = future
        return future

    def _mark_launched(self, job: Job) -> None:
        future = self._launched.get(job.identifier)
        if future is not None and not future.done():
            future.set_result(None)

    def _write_requeued(self, job: Job, attempt: int) -> None:
        lock = FileLock(job.paths.lock)
        if lock.acquire(timeout=5.0):
            try:
                if final_marker(job.paths) is None:
                    write_final(
                        job.paths,
                        JobState.CANCELLED,
                        attempt=attempt,
                        detail="requeued: a dependency's attempt failed",
                    )
            finally:
                lock.release()

    def _final_future(self, job: Job) -> asyncio.Future[None]:
        future = self._finals.get(job.identifier)
        if future is None:
            future = self._loop.create_future()
            if job.state.final:
                future.set_result(None)
            self._finals[job.identifier] = future
        return future

    def _emit(self, job: Job, state: JobState, previous: JobState | None) -> None:
        event = JobEvent(job, state, previous, time.time())
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                self._internal_errors.append(traceback.format_exc())

    def _set_state(self, job: Job, state: JobState) -> None:
        previous = job.state
        if previous is state:
            return
        job.state = state
        if state is JobState.RUNNING and job.started is None:
            job.started = time.time()
        self._emit(job, state, previous)

    def _finish(
        self, job: Job, state: JobState, reason: str | None = None, detail: str = ""
    ) -> None:
        if job.state.final:
            return
        previous = job.state
        job.state = state
        job.reason = reason
        job.detail = detail
        job.ended = time.time()
        self._emit(job, state, previous)
        future = self._final_future(job)
        if not future.done():
            future.set_result(None)
        self._mark_launched(job)
        callbacks = job._take_callbacks()
        if callbacks and state is JobState.DONE:
            self._run_callbacks(job, callbacks)
        job._final.set()
        with self._idle:
            self._unfinished -= 1
            self._idle.notify_all()

    def _run_callbacks(self, job: Job, callbacks: list[Callable[[Job], Any]]) -> None:
        with self._idle:
            self._pending_callbacks += len(callbacks)

        def call(callback: Callable[[Job], Any]) -> None:
            try:
                callback(job)
            except BaseException:
                self._callback_errors.append(
                    f"on_completed callback {getattr(callback, '__qualname__', callback)!r} "
                    f"of {job.name} raised:\n{traceback.format_exc()}"
                )
            finally:
                with self._idle:
                    self._pending_callbacks -= 1
                    self._idle.notify_all()

        for callback in callbacks:
            self._callbacks.submit(call, callback)

    def _start_job(self, job: Job) -> None:
        self._spawn(self._drive(job), job)

    async def _drive(self, job: Job) -> None:
        paths = job.paths
        if is_done(paths):
            job.reused = True
            self._finish(job, JobState.DONE)
            return
        if self._stopping:
            self._finish(job, JobState.CANCELLED, detail="the experiment was stopping")
            return
        # Not done: the next attempt runs with this submission's Meta values (the identity,
        # hence the folder, is the same), so its params.json replaces an older one, unless
        # a run recorded as in progress (maybe another experiment's) started with the old one.
        params = job.params or params_bytes(job.task)
        if not paths.params.exists() or (
            paths.params.read_bytes() != params and disk_state(paths)[0] is not JobState.RUNNING
        ):
            paths.root.mkdir(parents=True, exist_ok=True)
            atomic_write(paths.params, params, fsync=False)
        self._emit(job, JobState.WAITING, None)
        while True:
            if not await self._wait_dependencies(job):
                return
            outcome = await self._attempts(job)
            if outcome is not _REQUEUE:
                return
            self._set_state(job, JobState.WAITING)

    async def _wait_dependencies(self, job: Job) -> bool:
        """Wait until dependencies are done (or queued, for launchers that queue them).

        Returns ``False`` (having failed the job) if one of them failed or was cancelled.
        """
        job.queued_on = []
        for dep in job.dependencies:
            if self._can_queue_after(job, dep):
                await self._launched_future(dep)
                if not dep.state.final and dep.handle is not None and not dep.elsewhere:
                    job.queued_on.append(dep)
                    continue
            await self._final_future(dep)
        broken = [d for d in job.dependencies if d.state.final and d.state is not JobState.DONE]
        if broken:
            dep = broken[0]
            why = f"{dep.name} {dep.state.value}" + (f" ({dep.reason})" if dep.reason else "")
            self._record_dependency_failure(job, f"dependency {why}")
            self._finish(job, JobState.FAILED, Reason.DEPENDENCY.value, f"dependency {why}")
            return False
        return True

    def _record_dependency_failure(self, job: Job, detail: str) -> None:
        """Write ``failed(dependency)`` so every view agrees (unless someone else has it)."""
        lock = FileLock(job.paths.lock)
        if not lock.acquire(blocking=False):
            return
        try:
            state, record = disk_state(job.paths)
            if state is None:
                write_final(
                    job.paths,
                    JobState.FAILED,
                    attempt=int(record.get("attempt") or 0),
                    reason=Reason.DEPENDENCY.value,
                    detail=detail,
                )
        finally:
            lock.release()

    @staticmethod
    def _can_queue_after(job: Job, dep: Job) -> bool:
        return job.launcher.queues_dependencies and dep.launcher is job.launcher

    async def _attempts(self, job: Job) -> Any:
        while True:
            if self._stopping:
                self._finish(job, JobState.CANCELLED, detail="the experiment was stopping")
                return None
            self._set_state(job, JobState.READY)
            outcome = await self._attempt(job)
            if outcome is _REQUEUE:
                return _REQUEUE
            state, reason, detail = outcome
            if state is JobState.DONE:
                self._finish(job, JobState.DONE)
                return None
            if state is JobState.FAILED:
                job.failures.append(reason or "error")
                self._attempt_failed(job)
                if not self._stopping and job.retry.allows(reason, job.attempts):
                    job.reason, job.detail = reason, detail  # shown as "retrying"
                    continue
            self._finish(job, state, reason, detail)
            return None

    def _attempt_failed(self, job: Job) -> None:
        """Jobs queued on the cluster after ``job``'s failed attempt must not wait forever."""
        for other in self._order:
            if (
                job in getattr(other, "queued_on", ())
                and other.handle is not None
                and (other.state is JobState.RUNNING and not other.elsewhere)
            ):
                other.requeue = True
                self._spawn(other.launcher.cancel(other.handle, 0.0))

    async def _attempt(self, job: Job) -> Any:
        """One attempt: reuse, wait for a foreign run, or launch. Returns the outcome."""
        paths = job.paths
        while True:
            state, record = disk_state(paths)
            if state is JobState.DONE:
                job.elsewhere = True
                return JobState.DONE, None, ""
            if state is JobState.RUNNING and await self._handle_alive(job, record):
                outcome = await self._wait_foreign(job)
                if outcome is not None:
                    return outcome
                continue
            await self._acquire_slot(job)
            try:
                if self._stopping:
                    return JobState.CANCELLED, None, "the experiment was stopping"
                launched = await self._launch_locked(job)
                if launched is not _BUSY and len(launched) == 2:
                    attempt, handle = launched  # type: ignore[misc]
                    self._set_state(job, JobState.RUNNING)
                    try:
                        exit_ = await job.launcher.wait(handle)
                    except LauncherError as exc:
                        return JobState.FAILED, Reason.LAUNCH.value, str(exc)
            finally:
                self._release_slot(job)
            if launched is _BUSY:
                # Another process holds the job: wait for it without holding a slot.
                outcome = await self._wait_foreign(job)
                if outcome is not None:
                    return outcome
                continue
            if len(launched) == 3:
                return launched  # type: ignore[no-any-return]
            if job.requeue:
                job.requeue = False
                self._write_requeued(job, attempt)
                return _REQUEUE
            final = final_marker(paths)
            if final is not None and final[1].get("attempt", attempt) == attempt:
                state, info = final
                reason = exit_.reason or info.get("reason")
                detail = info.get("detail", "") or exit_.detail
                if reason != info.get("reason") and state is JobState.FAILED:
                    detail = f"{exit_.detail}; {detail}" if exit_.detail else detail
                    state, reason = self._amend_reason(job, attempt, reason, detail)
                return state, reason, detail
            if exit_.code == EXIT_SUPERSEDED:
                continue
            return self._record_lost(job, attempt, exit_.code, exit_.reason, exit_.detail)

    async def _launch_locked(self, job: Job) -> Any:
        """Under the job lock: re-check the disk, then start a new attempt.

        Returns ``(attempt, handle)``, a final outcome ``(state, reason, detail)``, or
        ``_BUSY`` when another process holds the job.
        """
        paths = job.paths
        lock = FileLock(paths.lock, note={"role": "launcher", **self.owner})
        if not lock.acquire(blocking=False):
            return _BUSY
        try:
            state, record = disk_state(paths)
            if state is JobState.DONE:
                job.elsewhere = True
                return JobState.DONE, None, ""
            if state is JobState.RUNNING:
                if await self._handle_alive(job, record, locked=True):
                    return _BUSY
                # Its process vanished without a marker: record that, then run it again.
                history = list(record.get("history", []))
                history.append(
                    {
                        "state": "failed",
                        "reason": Reason.LOST.value,
                        "time": time.time(),
                        "attempt": record.get("attempt"),
                    }
                )
                record["history"] = history[-50:]
            clear_final(paths)
            attempt = int(record.get("attempt") or 0) + 1
            if attempt > 1 and not job.resumable:
                _set_aside(paths, attempt - 1)
            record.update(
                state=JobState.RUNNING.value,
                reason=None,
                detail=None,
                attempt=attempt,
                launched=time.time(),
                started=None,
                ended=None,
                exit_code=None,
                owner={**self.owner, **identity()},
                launcher=job.launcher.placeholder(),
                tags=job.tags,
            )
            write_state(paths, record)
            request = LaunchRequest(
                paths=paths,
                attempt=attempt,
                name=job.name,
                env=self.env,
                resources=job.resources,
                append_logs=job.resumable,
                depends_on=[d.handle for d in job.queued_on if d.handle is not None],
                previous_failures=list(job.failures),
            )
            try:
                handles = await job.launcher.launch([request])
            except LauncherError as exc:
                job.attempts += 1
                write_final(
                    paths,
                    JobState.FAILED,
                    attempt=attempt,
                    reason=Reason.LAUNCH.value,
                    detail=str(exc),
                )
                return JobState.FAILED, Reason.LAUNCH.value, str(exc)
            handle = handles[0]
            record["launcher"] = handle
            write_state(paths, record)
            if job.tokens:
                self._tokens.attach(job.identifier, job.tokens, handle)
            job.attempts += 1
            job.handle = handle
            job.elsewhere = False
            self._mark_launched(job)
            return attempt, handle
        finally:
            lock.release()

    async def _handle_alive(
        self, job: Job, record: dict[str, Any], *, locked: bool = False
    ) -> bool:
        handle = record.get("launcher") or {}
        launcher = self._launcher_for(handle, job)
        if not launcher.started(handle):
            # A launch in progress elsewhere (state written, handle not yet), or one that
            # died half-way: the lock tells which.
            if locked:
                return False
            lock = FileLock(job.paths.lock)
            if lock.acquire(blocking=False):
                lock.release()
                return False
            return True
        alive = await launcher.alive(handle)
        if alive is None:
            if not job.warned_foreign:
                job.warned_foreign = True
                print(
                    f"partita: {job.name} is running ({launcher.describe_handle(handle)}) "
                    "according to its state; waiting for it. If that machine is gone, cancel "
                    "it with 'partita jobs kill'.",
                    file=sys.stderr,
                )
            return True
        return alive

    def _launcher_for(self, handle: dict[str, Any], job: Job) -> Launcher:
        """A launcher that can follow ``handle`` (it may come from another experiment)."""
        kind: str = handle_kind(handle) or job.launcher.kind
        if kind == job.launcher.kind:
            return job.launcher
        for launcher in self._launchers:
            if launcher.kind == kind:
                return launcher
        follower = launcher_for_handle(handle).follower(handle)
        with self._lock:
            self._launchers.add(follower)
        return follower

    async def _wait_foreign(self, job: Job) -> tuple[JobState, str | None, str] | None:
        """Wait while another process runs the job. ``None``: look again (it vanished)."""
        job.elsewhere = True
        self._set_state(job, JobState.RUNNING)
        delay = 0.05
        while not self._stopping:
            state, record = disk_state(job.paths)
            if state is not None and state is not JobState.RUNNING:
                return state, record.get("reason"), record.get("detail") or ""
            if state is JobState.RUNNING:
                if not await self._handle_alive(job, record):
                    return None
            else:
                lock = FileLock(job.paths.lock)
                if lock.acquire(blocking=False):
                    lock.release()
                    return None
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        return JobState.CANCELLED, None, "the experiment was stopping"

    def _record_lost(
        self, job: Job, attempt: int, code: int | None, reason: str | None, detail: str
    ) -> tuple[JobState, str | None, str]:
        """The runner ended without a marker: write ``failed(lost)`` unless superseded."""
        reason = reason or Reason.LOST.value
        if not detail:
            detail = (
                f"the job process ended (exit code {code}) without recording an outcome"
                if code is not None
                else "the job process disappeared without recording an outcome"
            )
            if code is not None and code < 0:
                import signal

                with contextlib.suppress(ValueError):
                    detail = f"the job process was killed by {signal.Signals(-code).name}"
        lock = FileLock(job.paths.lock)
        if lock.acquire(timeout=5.0):
            try:
                state, record = disk_state(job.paths)
                if state is None or (
                    state is JobState.RUNNING and record.get("attempt") == attempt
                ):
                    final_state = JobState.FAILED
                    if self._cancelling or reason == "cancelled":
                        final_state, reason = JobState.CANCELLED, None
                    write_final(
                        job.paths,
                        final_state,
                        attempt=attempt,
                        reason=reason,
                        exit_code=code,
                        detail=detail,
                    )
                    return final_state, reason, detail
                if state is not None and state.final:
                    return state, record.get("reason"), record.get("detail") or ""
            finally:
                lock.release()
        if reason == "cancelled":
            return JobState.CANCELLED, None, detail
        return JobState.FAILED, reason, detail

    def _amend_reason(
        self, job: Job, attempt: int, reason: str | None, detail: str
    ) -> tuple[JobState, str | None]:
        """The launcher knows better why the attempt ended (time limit, memory, scancel)."""
        state = JobState.CANCELLED if reason == "cancelled" else JobState.FAILED
        lock = FileLock(job.paths.lock)
        if lock.acquire(timeout=5.0):
            try:
                clear_final(job.paths)
                write_final(
                    job.paths,
                    state,
                    attempt=attempt,
                    reason=None if state is JobState.CANCELLED else reason,
                    detail=detail,
                )
            finally:
                lock.release()
        return state, None if state is JobState.CANCELLED else reason

    # --- slots ----------------------------------------------------------------------------

    async def _acquire_slot(self, job: Job) -> None:
        future: asyncio.Future[None] = self._loop.create_future()
        self._ready.append((job, future))
        self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            self._ready = [(j, f) for j, f in self._ready if f is not future]
            if future.done() and not future.cancelled():
                self._release_slot(job)
            raise

    def _release_slot(self, job: Job) -> None:
        key = id(job.launcher)
        self._running_by_launcher[key] = self._running_by_launcher.get(key, 1) - 1
        if job.tokens:
            self._tokens.release(job.identifier, job.tokens)
        self._dispatch()

    def _dispatch(self) -> None:
        """Start ready jobs, in submission order, while slots and tokens allow."""
        if not self._ready:
            return
        remaining = []
        waiting_for_tokens = False
        for job, future in self._ready:
            if future.done():
                continue
            key = id(job.launcher)
            used = self._running_by_launcher.get(key, 0)
            capacity = job.launcher.capacity
            if capacity is not None and used >= capacity:
                remaining.append((job, future))
                continue
            if job.tokens and not self._tokens.try_acquire(job.identifier, job.tokens):
                waiting_for_tokens = True
                remaining.append((job, future))
                continue
            self._running_by_launcher[key] = used + 1
            future.set_result(None)
        self._ready = remaining
        if waiting_for_tokens and self._token_poll is None:
            # Units may be freed by other processes: look again soon.
            def again() -> None:
                self._token_poll = None
                self._dispatch()

            self._token_poll = self._loop.call_later(0.2, again)

    # --- cancellation ---------------------------------------------------------------------

    async def _cancel_all(self, kill_running: bool) -> None:
        self._cancelling = kill_running
        for _job, future in self._ready:
            if not future.done():
                future.cancel()
        self._ready = []
        stops = []
        for job in list(self._order):
            if job.state.final:
                continue
            if job.state is JobState.RUNNING and not job.elsewhere and job.handle is not None:
                if kill_running:
                    stops.append(self._stop_running(job))
            elif job.state in (JobState.WAITING, JobState.READY) or job.elsewhere:
                self._finish(job, JobState.CANCELLED, detail="the experiment was stopped")
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)

    async def _stop_running(self, job: Job) -> None:
        assert job.handle is not None
        with contextlib.suppress(OSError):
            job.paths.cancel_request.write_text(
                f"requested by {self.owner.get('experiment')} at {time.time()}\n"
            )
        await job.launcher.cancel(job.handle, self.grace)
        final = await _wait_until(lambda: job.state.final, 2 * self.grace + 5)
        if not final:
            self._finish(job, JobState.CANCELLED, detail="stopped on request")


_KEEP = {"params.json", "state.json", "lock", ".attempts", "cancel-requested"}


def _set_aside(paths: Any, previous: int) -> None:
    """Move what an earlier attempt left in the folder to ``.attempts/<n>/`` (kept, not lost)."""
    entries = [
        p for p in paths.root.iterdir() if p.name not in _KEEP and not p.name.startswith(".")
    ]
    if not entries:
        return
    target = paths.root / ".attempts" / str(previous)
    target.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        with contextlib.suppress(OSError):
            os.replace(entry, target / entry.name)


def _settled(job: Job) -> bool:
    state = job.state
    if state.final or state is JobState.RUNNING:
        return True
    if state is JobState.READY:
        return False
    pending = [d for d in job.dependencies if not d.state.final]
    if not pending:
        return False  # about to become ready
    for dep in pending:
        queueable = job.launcher.queues_dependencies and dep.launcher is job.launcher
        if queueable and dep.state is JobState.RUNNING and not dep.elsewhere:
            return False  # about to be queued after it
    return all(_settled(dep) for dep in pending)


async def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


_BUSY: Any = object()
_REQUEUE: Any = object()


def environment_for_jobs() -> dict[str, str]:
    """Environment so that the job process imports what the experiment imports."""
    import json

    entries = [p for p in (sys.path[0] if sys.path else "",) if p]
    current = os.environ.get("PYTHONPATH")
    if current:
        entries.append(current)
    env = {"PARTITA_SCRIPT_ARGV": json.dumps(sys.argv)}
    if entries:
        env["PYTHONPATH"] = os.pathsep.join(entries)
    return env
