"""The file side of one attempt: the steps of the job-folder protocol the scheduler runs.

They speak the protocol of ``partita.workspace``. Those that may wait for a job lock held
by someone else (``record_lost``, ``amend``, ``requeued``, ``not_run``, ``lock_is_free`` is
quick but is a lock) run in the scheduler's I/O pool (``LoopThread.io``), never on the
loop thread. ``inspect``, ``open_attempt`` (the lock taken without blocking), ``begin``,
``launched`` and ``written_final`` never wait: the scheduler runs them on the loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from partita.scheduler._outcome import Finished
from partita.workspace import (
    FileLock,
    JobPaths,
    JobState,
    JobStatus,
    Reason,
    begin_attempt,
    read_json,
    read_state,
    read_status,
    record_final,
    record_handle,
)
from partita.workspace._atomic import atomic_write
from partita.workspace._state import write_final

#: How long a step waits for a job lock held by someone else before giving up.
LOCK_TIMEOUT = 5.0


def inspect(paths: JobPaths) -> JobStatus:
    """What the job folder says (a final state, ``running`` or ``None``), validated."""
    return read_status(paths)


def handle_of(status: JobStatus) -> dict[str, Any]:
    """The launcher handle recorded in ``state.json`` (empty if none)."""
    handle = status.record.get("launcher")
    return dict(handle) if isinstance(handle, dict) else {}


def outcome_of(status: JobStatus) -> Finished:
    """The final outcome a folder records (``status.state`` must be final)."""
    assert status.state is not None
    final = status.final or {}
    detail = final.get("detail") or status.record.get("detail") or ""
    reason = status.reason.value if status.reason is not None else None
    return Finished(status.state, reason, str(detail))


def prepare(paths: JobPaths, params: bytes, recorded: bool | None = False) -> JobStatus:
    """What the folder says; unless the job is done, make it ready with these ``params.json``.

    Not done: the next attempt runs with this submission's ``Meta`` values (the identity,
    hence the folder, is the same), so its ``params.json`` replaces an older one, unless a
    run recorded as in progress (maybe another experiment's) started with the old one.
    ``recorded`` is what sealing saw: ``True`` when the folder held these very bytes, so
    they need not be read again; ``None`` when it had no ``params.json``.
    """
    if recorded is None and _made(paths):
        # Sealing saw no ``params.json``, and the folder did not exist: this call made it,
        # so there is nothing in it to read (no state, no marker, no lock).
        atomic_write(paths.params, params, fsync=False)
        # Its (empty) lock file is made now too, at submission: creating a file costs more
        # than the rest of taking the lock, and the launch (when a dependency has just
        # ended: a chain's next link) need not wait for it.
        with contextlib.suppress(OSError):
            os.close(os.open(paths.lock, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        return _ABSENT
    status = read_status(paths, details=False)
    if status.done or recorded is True:
        return status
    if recorded is None and status.state is None:
        write = True  # a new folder (or one never launched): nothing to compare
    else:
        write = not paths.params.exists() or (
            paths.params.read_bytes() != params and status.state is not JobState.RUNNING
        )
    if write:
        paths.root.mkdir(parents=True, exist_ok=True)
        atomic_write(paths.params, params, fsync=False)
    return status


#: What :func:`read_status` says of a folder that does not exist.
_ABSENT = JobStatus(state=None, reason=None, record=MappingProxyType({}), final=None, damage=())


def _made(paths: JobPaths) -> bool:
    """Make the job folder; whether it was made here (``False``: it existed)."""
    try:
        os.mkdir(paths.root)
    except FileExistsError:
        return False
    except FileNotFoundError:  # the first job of its type: make the type folder too
        paths.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(paths.root)
        except FileExistsError:
            return False
    return True


def prepare_all(
    jobs: Sequence[tuple[JobPaths, bytes, bool | None]],
) -> list[JobStatus | BaseException]:
    """:func:`prepare` for each of a burst of submissions; a job's error is its result."""
    results: list[JobStatus | BaseException] = []
    for paths, params, recorded in jobs:
        try:
            results.append(prepare(paths, params, recorded))
        except Exception as exc:
            results.append(exc)
    return results


def try_lock(paths: JobPaths, note: dict[str, Any]) -> FileLock | None:
    """The job lock if it is free now (the caller releases it), else ``None``."""
    lock = FileLock(paths.lock, note=note)
    return lock if lock.acquire(blocking=False) else None


@dataclass(frozen=True)
class Opened:
    """What :func:`open_attempt` found: the lock (``None``: busy), and maybe a begun attempt."""

    lock: FileLock | None
    status: JobStatus
    begun: tuple[int, dict[str, Any]] | None = None
    """``(attempt, record)`` when the attempt was begun at once."""


def open_attempt(
    paths: JobPaths,
    note: dict[str, Any],
    may_begin: Callable[[JobStatus], bool],
    begin: Callable[[JobStatus], tuple[int, dict[str, Any]]],
    *,
    before: Callable[[], None] | None = None,
) -> Opened:
    """Take the job lock without waiting, look at the folder, and begin if ``may_begin``.

    The caller releases the returned lock. Without the lock, ``status`` is what the folder
    said just before (another process holds the job). ``before`` is called first (it may
    block: the first launch of a run waits there for the run's ``environment.json``).
    """
    if before is not None:
        before()
    lock = try_lock(paths, note)
    if lock is None:
        return Opened(None, read_status(paths))
    try:
        status = read_status(paths)
        if not may_begin(status):
            return Opened(lock, status)
        return Opened(lock, status, begin(status))
    except BaseException:
        lock.release()
        raise


def lock_is_free(paths: JobPaths) -> bool:
    """Whether nobody holds the job lock right now."""
    lock = FileLock(paths.lock)
    if lock.acquire(blocking=False):
        lock.release()
        return True
    return False


def begin(
    paths: JobPaths,
    *,
    owner: dict[str, Any],
    placeholder: dict[str, Any],
    tags: dict[str, Any],
    resumable: bool,
    write: bool = True,
    status: JobStatus | None = None,
) -> tuple[int, dict[str, Any]]:
    """Start the next attempt (under the lock held by the caller).

    Returns its number and the ``state.json`` record (for :func:`launched`): written now,
    or (``write=False``) written by :func:`launched` with the handle, in one write.
    ``status`` is what the folder said, read under the same lock: when nothing in it was
    damaged, its record is ``state.json`` as it is (no writer can change it meanwhile),
    and the file is not read again.
    """
    if status is not None and not status.damage:
        record = dict(status.record)
        if "history" in record:
            record["history"] = list(record["history"])
    else:
        record = read_state(paths)
    attempt = begin_attempt(
        paths,
        record,
        owner=owner,
        placeholder=placeholder,
        tags=tags,
        keep_previous=resumable,
        write=write,
    )
    return attempt, record


def launched(
    paths: JobPaths, record: dict[str, Any], handle: dict[str, Any], *, started: bool = False
) -> None:
    """Store the handle of the attempt just launched (under the lock held by the caller);
    with the attempt itself when :func:`begin` did not write it. ``started``: the runner is
    the process the handle names, started now (``record_after_launch``): it is recorded
    as running, and writes no claim of its own."""
    record_handle(paths, record, handle, started=started)


def launch_failed(paths: JobPaths, attempt: int, detail: str) -> Finished:
    """The launcher could not start the attempt: ``failed(launch)`` (under the caller's lock)."""
    write_final(paths, JobState.FAILED, attempt=attempt, reason=Reason.LAUNCH.value, detail=detail)
    return Finished(JobState.FAILED, Reason.LAUNCH.value, detail)


def written_final(paths: JobPaths, attempt: int) -> Finished | None:
    """The outcome the runner of ``attempt`` recorded, if it recorded one."""
    # The usual end first: a readable ``done`` marker of this very attempt says it all
    # (its ``detail`` is the one ``state.json`` got in the same write): nothing else read.
    marker = read_json(paths.done)
    if isinstance(marker, dict):
        number, detail = marker.get("attempt"), marker.get("detail")
        if number == attempt and type(number) is int and (detail is None or type(detail) is str):
            return Finished(JobState.DONE, None, detail or "")
    status = read_status(paths)
    if status.state is None or not status.state.final:
        return None
    if (status.final or {}).get("attempt", attempt) != attempt:
        return None
    return outcome_of(status)


def lost_detail(code: int | None) -> str:
    """How a runner that recorded nothing ended, in words."""
    if code is None:
        return "the job process disappeared without recording an outcome"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"the job process was killed by {signal.Signals(-code).name}"
    return f"the job process ended (exit code {code}) without recording an outcome"


def record_lost(
    paths: JobPaths,
    attempt: int,
    code: int | None,
    reason: str | None,
    detail: str,
    *,
    cancelling: bool,
) -> Finished:
    """The runner ended without a marker: write ``failed(lost)`` unless superseded.

    ``cancelling`` (the experiment is stopping its jobs) or a launcher reason
    ``cancelled`` record ``cancelled`` instead.
    """
    reason = reason or Reason.LOST.value
    detail = detail or lost_detail(code)
    state = JobState.FAILED
    if cancelling or reason == "cancelled":
        state, reason = JobState.CANCELLED, None
    recorded = record_final(
        paths,
        state,
        attempt=attempt,
        reason=reason,
        exit_code=code,
        detail=detail,
        timeout=LOCK_TIMEOUT,
    )
    if recorded is not None:
        return Finished(recorded.state, recorded.reason, recorded.detail)
    return Finished(state, reason, detail)


def amend(paths: JobPaths, attempt: int, reason: str | None, detail: str) -> Finished:
    """The launcher knows better why the attempt ended (time limit, memory, scancel)."""
    state = JobState.CANCELLED if reason == "cancelled" else JobState.FAILED
    reason = None if state is JobState.CANCELLED else reason
    record_final(
        paths,
        state,
        attempt=attempt,
        reason=reason,
        detail=detail,
        amend=True,
        timeout=LOCK_TIMEOUT,
    )
    return Finished(state, reason, detail)


def requeued(
    paths: JobPaths, attempt: int, detail: str = "requeued: a dependency's attempt failed"
) -> None:
    """Close an attempt that will be launched again: a dependency it was queued after
    failed, or its runner never started (``detail`` says which)."""
    record_final(
        paths,
        JobState.CANCELLED,
        attempt=attempt,
        detail=detail,
        timeout=LOCK_TIMEOUT,
    )


def not_run(paths: JobPaths, outcome: Finished) -> None:
    """Record the final state of a job this experiment decided not to run.

    Written only if the folder shows no running attempt and no final state, and only if
    the lock is free at once (otherwise someone else is in charge of the job).
    """
    record_final(
        paths,
        outcome.state,
        attempt=None,
        reason=outcome.reason,
        detail=outcome.detail,
        blocking=False,
        timeout=None,
    )
