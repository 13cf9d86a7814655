"""Job states on disk: ``state.json`` (the current record) and the final markers.

States form one machine::

    waiting ──► ready ──► running ──► done
                  ▲          │
                  └──────────┼──► failed(reason)   (retried → ready)
                             └──► cancelled

``waiting`` and ``ready`` only exist in a scheduler's memory; the files record ``running``
and the final states. A final marker (``done``, ``failed`` or ``cancelled``) is written
atomically and last, so a job killed at any point is never seen as done.
"""

from __future__ import annotations

import enum
import time
from typing import Any

from partita.workspace._atomic import read_json, write_json
from partita.workspace._paths import JobPaths

#: Exit code of a job runner that found another attempt in charge (nothing was executed).
EXIT_SUPERSEDED = 75


class JobState(enum.StrEnum):
    """The state of a job."""

    WAITING = "waiting"
    """Submitted; some dependencies are not done yet."""
    READY = "ready"
    """Dependencies done; waiting for a free slot or tokens."""
    RUNNING = "running"
    """Launched (queued on a cluster, or executing)."""
    DONE = "done"
    """Finished successfully; its results are reused by every later submission."""
    FAILED = "failed"
    """Finished without success; ``reason`` says why. Submitting it again reruns it."""
    CANCELLED = "cancelled"
    """Stopped on request (Ctrl-C or ``partita jobs kill``). Submitting it again reruns it."""

    @property
    def final(self) -> bool:
        """Whether no further transition happens without a new submission."""
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    def __str__(self) -> str:
        return self.value


class Reason(enum.StrEnum):
    """Why a job failed."""

    ERROR = "error"
    """``execute()`` raised, or the process exited with a non-zero code."""
    DEPENDENCY = "dependency"
    """A job it depends on failed or was cancelled; it did not run."""
    LOST = "lost"
    """Its process disappeared without a marker (killed, out of memory, reboot)."""
    TIMEOUT = "timeout"
    """The launcher stopped it at its time limit."""
    MEMORY = "memory"
    """The launcher stopped it for exceeding its memory."""
    NODE_FAIL = "node_fail"
    """The machine running it failed."""
    PREEMPTED = "preempted"
    """The cluster preempted it."""
    LAUNCH = "launch"
    """It could not be started (launcher error)."""
    INTERNAL = "internal"
    """A bug in partita; the message says more."""
    NO_SPACE = "no_space"
    """The work directory's disk is full: its files could not be written."""

    def __str__(self) -> str:
        return self.value


def now() -> float:
    """Wall-clock time, as recorded in state files."""
    return time.time()


def read_state(paths: JobPaths) -> dict[str, Any]:
    """The ``state.json`` record (empty dict if absent)."""
    record = read_json(paths.state)
    return record if isinstance(record, dict) else {}


def write_state(paths: JobPaths, record: dict[str, Any], *, fsync: bool = False) -> None:
    """Replace ``state.json`` (call only while holding the job lock)."""
    write_json(paths.state, record, fsync=fsync)


def final_marker(paths: JobPaths) -> tuple[JobState, dict[str, Any]] | None:
    """The final state recorded by markers, if any (``done`` wins)."""
    if paths.done.exists():
        return JobState.DONE, read_json(paths.done) or {}
    if paths.failed.exists():
        return JobState.FAILED, read_json(paths.failed) or {}
    if paths.cancelled.exists():
        return JobState.CANCELLED, read_json(paths.cancelled) or {}
    return None


def is_done(paths: JobPaths) -> bool:
    """Whether the job finished successfully (its ``done`` marker exists)."""
    return paths.done.exists()


def write_final(
    paths: JobPaths,
    state: JobState,
    *,
    attempt: int,
    reason: str | None = None,
    exit_code: int | None = None,
    detail: str = "",
) -> dict[str, Any]:
    """Record a final state: update ``state.json``, then write the marker, last."""
    ended = now()
    record = read_state(paths)
    history = list(record.get("history", []))
    history.append({"state": state.value, "time": ended, "attempt": attempt, "reason": reason})
    record.update(
        state=state.value,
        reason=reason,
        attempt=attempt,
        ended=ended,
        exit_code=exit_code,
        detail=detail or None,
        history=history[-50:],
    )
    write_state(paths, record)
    marker: dict[str, Any] = {"time": ended, "attempt": attempt}
    if reason is not None:
        marker["reason"] = reason
    if exit_code is not None:
        marker["exit_code"] = exit_code
    if detail:
        marker["detail"] = detail
    target = {JobState.DONE: paths.done, JobState.FAILED: paths.failed}.get(state, paths.cancelled)
    write_json(target, marker, fsync=True)
    return record


def clear_final(paths: JobPaths) -> None:
    """Remove ``failed``/``cancelled`` markers before a new attempt (under the job lock)."""
    for marker in (paths.failed, paths.cancelled):
        try:
            marker.unlink()
        except FileNotFoundError:
            pass


def disk_state(paths: JobPaths) -> tuple[JobState | None, dict[str, Any]]:
    """What the files say: a final state, ``running``, or ``None`` (never launched)."""
    final = final_marker(paths)
    record = read_state(paths)
    if final is not None:
        return final[0], {**record, **final[1]}
    if record.get("state") == JobState.RUNNING.value:
        return JobState.RUNNING, record
    return None, record
