"""Job states on disk: ``state.json`` (the current record) and the final markers.

States form one machine::

    waiting ──► ready ──► running ──► done
                  ▲          │
                  └──────────┼──► failed(reason)   (retried → ready)
                             └──► cancelled

``waiting`` and ``ready`` only exist in a scheduler's memory; the files record ``running``
and the final states. A final marker (``done``, ``failed`` or ``cancelled``) is written
atomically and last, so a job killed at any point is never seen as done.

This module is the writer side of the job-folder protocol; it is the only code that
changes the files of a job folder:

- :func:`begin_attempt` (launcher side, under the job lock) starts attempt ``n + 1``;
- :func:`claim_attempt` (runner side, under the job lock) checks that its attempt is
  still the current one and records that it runs;
- :func:`record_final` writes a final state only if the attempt is still current;
- :func:`set_aside` moves what an earlier attempt left to ``.attempts/<n>/``;
- :func:`keep_environment` puts where and how an attempt ran into its final record;
- :func:`append_history` keeps the bounded history of ``state.json``.
"""

from __future__ import annotations

import contextlib
import enum
import os
import time
from typing import Any, NamedTuple

from partita.workspace._atomic import read_json, write_json
from partita.workspace._journal import note_change
from partita.workspace._locks import hold
from partita.workspace._paths import JobPaths
from partita.workspace._process import boot_id, hostname, identity

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
    """Why a job failed (or, for ``dependency``, why it was cancelled without running)."""

    ERROR = "error"
    """``execute()`` raised, or the process exited with a non-zero code."""
    DEPENDENCY = "dependency"
    """A job it depends on failed (then it is ``failed``) or was cancelled (then it is
    ``cancelled``); it did not run."""
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


#: How many transitions ``state.json`` keeps in its ``history`` (oldest dropped first).
HISTORY_LIMIT = 50


def append_history(
    record: dict[str, Any],
    state: JobState | str,
    *,
    attempt: int | None,
    reason: str | None = None,
    at: float | None = None,
) -> None:
    """Append a transition to ``record["history"]``, keeping the last :data:`HISTORY_LIMIT`."""
    history = list(record.get("history") or [])
    history.append(
        {
            "state": str(state),
            "time": now() if at is None else at,
            "attempt": attempt,
            "reason": reason,
        }
    )
    record["history"] = history[-HISTORY_LIMIT:]


def read_state(paths: JobPaths) -> dict[str, Any]:
    """The ``state.json`` record (empty dict if absent)."""
    record = read_json(paths.state)
    return record if isinstance(record, dict) else {}


def write_state(paths: JobPaths, record: dict[str, Any], *, fsync: bool = False) -> None:
    """Replace ``state.json`` (call only while holding the job lock)."""
    write_json(paths.state, record, fsync=fsync)
    note_change(paths.root)  # after the write: the index reads the folder itself


#: The fields of a final marker (see :func:`marker_fields`).
MARKER_KEYS = ("time", "attempt", "reason", "exit_code", "detail")


def marker_fields(document: Any) -> Any:
    """What a final marker says, whichever of its two forms it has.

    A marker is either a hard link to the final ``state.json`` (a record: it has a
    ``state``), or a small object of its own (``time``, ``attempt``, and ``reason``,
    ``exit_code``, ``detail`` when set), written where no link can be made (and by earlier
    versions of partita). A record reads as the small object would: ``time`` is its
    ``ended``. Anything else (not an object, a small marker) is returned as it is.
    """
    if not isinstance(document, dict) or "state" not in document:
        return document
    out: dict[str, Any] = {}
    when = document.get("time", document.get("ended"))
    if when is not None:
        out["time"] = when
    for key in MARKER_KEYS[1:]:
        value = document.get(key)
        if value is not None or key == "attempt":
            out[key] = value
    return out


def final_marker(paths: JobPaths) -> tuple[JobState, dict[str, Any]] | None:
    """The final state recorded by markers, if any (``done`` wins)."""
    for state, path in (
        (JobState.DONE, paths.done),
        (JobState.FAILED, paths.failed),
        (JobState.CANCELLED, paths.cancelled),
    ):
        if os.path.lexists(path):
            return state, marker_fields(read_json(path)) or {}
    return None


def _marker(paths: JobPaths, state: JobState) -> Any:
    return {JobState.DONE: paths.done, JobState.FAILED: paths.failed}.get(state, paths.cancelled)


def write_final(
    paths: JobPaths,
    state: JobState,
    *,
    attempt: int,
    reason: str | None = None,
    exit_code: int | None = None,
    detail: str = "",
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a final state: update ``state.json``, then make the marker, last.

    The marker is a hard link to the new ``state.json`` (flushed to disk before its
    rename, so the link names complete contents); where no link can be made, a small
    marker of its own is written instead. Either way it appears atomically, after the
    record. No state file is ever changed in place afterwards (every write replaces the
    file), so the marker keeps what it linked to.

    Call it while holding the job lock, having checked that ``attempt`` is current (or use
    :func:`record_final`, which does both). ``record``: ``state.json`` as this lock holder
    last wrote it (the runner, since its claim), instead of reading it again; it is
    updated in place.
    """
    ended = now()
    if record is None:
        record = read_state(paths)
    append_history(record, state, attempt=attempt, reason=reason, at=ended)
    record.update(
        state=state.value,
        reason=reason,
        attempt=attempt,
        ended=ended,
        exit_code=exit_code,
        detail=detail or None,
    )
    # One journal line, after the marker, for both writes: if this process dies between
    # them, the index still re-reads the folder, as it re-reads every running job.
    write_json(paths.state, record, fsync=True)
    target = _marker(paths, state)
    try:
        os.link(paths.state, target)
    except OSError:  # no hard links here (or a marker in the way): a marker of its own
        marker: dict[str, Any] = {"time": ended, "attempt": attempt}
        if reason is not None:
            marker["reason"] = reason
        if exit_code is not None:
            marker["exit_code"] = exit_code
        if detail:
            marker["detail"] = detail
        write_json(target, marker, fsync=True)
    note_change(paths.root)
    return record


def clear_final(paths: JobPaths) -> None:
    """Remove ``failed``/``cancelled`` markers before a new attempt (under the job lock)."""
    removed = False
    for marker in (paths.failed, paths.cancelled):
        try:
            marker.unlink()
            removed = True
        except FileNotFoundError:
            pass
    if removed:
        note_change(paths.root)


class Recorded(NamedTuple):
    """What the job folder records after :func:`record_final`."""

    state: JobState
    """The final state now on disk (``written`` says whether it is the one asked for)."""
    reason: str | None
    detail: str
    written: bool
    """Whether this call wrote it (``False``: another writer had already recorded one)."""


def record_final(
    paths: JobPaths,
    state: JobState,
    *,
    attempt: int | None,
    reason: str | None = None,
    exit_code: int | None = None,
    detail: str = "",
    amend: bool = False,
    blocking: bool = True,
    timeout: float | None = 5.0,
) -> Recorded | None:
    """Take the job lock, then record a final state only if ``attempt`` is current.

    ``attempt`` is current when no final marker exists and ``state.json`` does not say
    that another attempt runs. ``attempt=None`` means "a job that was never launched":
    it is recorded only if no attempt runs at all (its number stays the last one's).
    With ``amend``, an existing marker of the same attempt is replaced (a launcher knows
    better why it ended: a time limit, say).

    Returns the final state on disk afterwards, or ``None`` if nothing final is recorded
    (the lock was not obtained, or another attempt is in charge). Blocks: never call it
    on an event loop thread.
    """
    with hold(paths.lock, blocking=blocking, timeout=timeout) as held:
        if not held:
            return None
        final = final_marker(paths)
        if final is not None:
            known, info = final
            if not (amend and info.get("attempt", attempt) == attempt):
                return Recorded(known, info.get("reason"), info.get("detail") or "", False)
            clear_final(paths)
        record = read_state(paths)
        if record.get("state") == JobState.RUNNING.value and (
            attempt is None or record.get("attempt") != attempt
        ):
            return None
        number = int(record.get("attempt") or 0) if attempt is None else attempt
        write_final(paths, state, attempt=number, reason=reason, exit_code=exit_code, detail=detail)
        return Recorded(state, reason, detail, True)


#: The key of ``state.json`` under which the runner records where and how the attempt
#: ran (``partita._jobenv``): written with the final state, in the same file, rather than
#: in a file of its own (one file fewer to create per job). Older folders have it in
#: ``environment.json``; :func:`partita.workspace.read_job_environment` reads either.
ENVIRONMENT = "environment"


def keep_environment(record: dict[str, Any], info: dict[str, Any]) -> None:
    """Put ``info`` (where and how this attempt ran) in ``record``, the runner's
    ``state.json``: it reaches the disk with the attempt's final state (:func:`write_final`)."""
    record[ENVIRONMENT] = info


def set_aside(paths: JobPaths, previous: int, record: dict[str, Any] | None = None) -> None:
    """Move what attempt ``previous`` left in the folder to ``.attempts/<previous>/``.

    Logs, outputs and markers of an earlier attempt are kept, not lost; ``params.json``,
    ``state.json`` and the lock stay. The environment the attempt recorded in ``record``
    (``state.json``, updated in place) goes there too, as ``environment.json``. Call it
    under the job lock.
    """
    kept = paths.kept_between_attempts()
    entries = [p for p in paths.root.iterdir() if p.name not in kept and not p.name.startswith(".")]
    environment = record.pop(ENVIRONMENT, None) if record is not None else None
    if not entries and not isinstance(environment, dict):
        return
    target = paths.attempt_dir(previous)
    target.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        with contextlib.suppress(OSError):
            os.replace(entry, target / entry.name)
    if isinstance(environment, dict):
        with contextlib.suppress(OSError, ValueError):
            write_json(target / paths.environment.name, environment, fsync=False)


def begin_attempt(
    paths: JobPaths,
    record: dict[str, Any],
    *,
    owner: dict[str, Any],
    placeholder: dict[str, Any],
    tags: dict[str, Any],
    keep_previous: bool,
    write: bool = True,
) -> int:
    """Start a new attempt, under the job lock: returns its number.

    ``record`` is ``state.json`` as just read under the lock; it is updated in place and
    written. A previous attempt still recorded as running (its process vanished) is noted
    ``failed(lost)`` in the history; old ``failed``/``cancelled`` markers are removed; unless
    ``keep_previous`` (resumable tasks), what the previous attempt left is set aside.
    ``placeholder`` is the launcher handle recorded until the launch gives the real one.

    With ``write=False``, ``record`` is only updated in memory: the caller launches the
    runner and then writes the attempt and its handle at once (:func:`record_handle`),
    still under the lock, so no runner can claim the attempt before it is on disk.
    """
    if record.get("state") == JobState.RUNNING.value:
        append_history(record, JobState.FAILED, attempt=record.get("attempt"), reason="lost")
    clear_final(paths)
    attempt = int(record.get("attempt") or 0) + 1
    if attempt > 1 and not keep_previous:
        set_aside(paths, attempt - 1, record)
    record.update(
        state=JobState.RUNNING.value,
        reason=None,
        detail=None,
        attempt=attempt,
        launched=now(),
        started=None,
        ended=None,
        exit_code=None,
        owner={**owner, **identity()},
        launcher=dict(placeholder),
        tags=tags,
    )
    if write:
        write_state(paths, record)
    return attempt


def record_handle(
    paths: JobPaths, record: dict[str, Any], handle: dict[str, Any], *, started: bool = False
) -> None:
    """Store the launcher handle of the attempt just launched (under the job lock).

    ``record`` is what :func:`begin_attempt` made: written or not, it is written now.
    With ``started`` (a launcher whose runner is a process started just now, blocked on
    the lock: the local launcher), the record also says that the attempt runs, as the
    runner's claim would (``started``, ``runner``: the process the handle names, and a
    ``running`` history entry); the runner then finds itself recorded and writes no claim.
    """
    record["launcher"] = handle
    if started and "pid" in handle:
        at = now()
        record["started"] = at
        record["runner"] = {key: handle[key] for key in _IDENTITY_KEYS if key in handle}
        append_history(record, JobState.RUNNING, attempt=record.get("attempt"), at=at)
    write_state(paths, record)


#: The fields of a process identity (:func:`partita.workspace.identity`).
_IDENTITY_KEYS = ("host", "boot", "pid", "start")


def _names_me(runner: Any) -> bool:
    """Whether the ``runner`` of a record names this process (host, boot and pid)."""
    if not isinstance(runner, dict) or runner.get("pid") != os.getpid():
        return False
    if runner.get("host") != hostname():
        return False
    boot = runner.get("boot")
    return not boot or not boot_id() or boot == boot_id()


class Claim(NamedTuple):
    """What :func:`claim_attempt` found: run ``attempt``, or nothing to do (``why``)."""

    attempt: int | None
    """The attempt to run; ``None`` when another attempt is in charge or the job is final."""
    why: str = ""
    done: bool = False
    """Whether the job is already done (success for whoever waits on this runner)."""
    record: dict[str, Any] | None = None
    """``state.json`` as the claim wrote it (for :func:`write_final`, under the same lock)."""


def claim_attempt(paths: JobPaths, attempt: int | None) -> Claim:
    """Runner side, under the job lock: check that ``attempt`` is current, record it runs.

    A runner that the launcher already recorded as running this attempt (a local one:
    :func:`record_handle` with ``started``) writes nothing.
    """
    final = final_marker(paths)
    record = read_state(paths)
    current = record.get("attempt")
    if final is not None:
        return Claim(None, f"already {final[0].value}", final[0] is JobState.DONE)
    if attempt is not None and current != attempt:
        return Claim(None, f"attempt {current} is in charge")
    attempt = int(current or 0) if attempt is None else attempt
    if (
        record.get("state") == JobState.RUNNING.value
        and record.get("started") is not None
        and _names_me(record.get("runner"))
    ):
        # The launcher recorded this very process as the attempt's runner when it started
        # it (:func:`record_handle`): the claim is on disk already.
        return Claim(attempt, record=record)
    started = now()
    record.update(state=JobState.RUNNING.value, started=started, runner=identity(), attempt=attempt)
    append_history(record, JobState.RUNNING, attempt=attempt, at=started)
    write_state(paths, record)
    return Claim(attempt, record=record)
