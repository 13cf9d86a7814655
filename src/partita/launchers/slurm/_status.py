"""Reading ``squeue``/``sacct`` output and mapping Slurm job states to partita's.

partita knows four phases: ``queued``, ``running``, ``done`` and ``failed``; a failed
job also has a reason (``timeout``, ``memory``, ``node_fail``, ``preempted``,
``cancelled`` or ``error``). The table is :class:`SlurmState`.

Where a failure shows (Slurm 22.05, seen on a real cluster):

- ``exit 3`` in the job: ``FAILED``, ExitCode ``3:0``.
- ``scancel``: ``CANCELLED`` (sacct may say ``CANCELLED by 0``), ExitCode ``0:15`` if
  it was running, ``0:0`` if it was pending.
- time limit: ``TIMEOUT``, ``0:15``.
- over ``--mem`` with cgroups: ``OUT_OF_MEMORY``. Without cgroups, with
  ``JobAcctGatherParams=OverMemoryKill``, the job ends ``FAILED`` with ExitCode ``0:9``
  and only its output file says "exceeded memory limit": sacct cannot tell it from any
  other SIGKILL, so that case maps to ``error``.
- a dependency that can never be met, with ``--kill-on-invalid-dep=yes``:
  ``CANCELLED`` with ExitCode ``0:0`` (squeue's reason: ``DependencyNeverSatisfied``).

When the exit code is known (:func:`combine`, :class:`EndWatch`): squeue shows the
state slurmctld holds, at once, but no exit code. sacct's record comes from slurmdbd and
can lag behind: a job that just left the queue may be missing, or known only from its
start record. When slurmdbd hears of the start after the job already ended (a just
started or loaded cluster), that record already has the final state (``FAILED``) but
still ExitCode ``0:0`` and no end time (``End`` is ``Unknown``) until the completion
record arrives. An exit code is therefore read only from a record with an end time;
until then it is unknown, and the runner's own final marker in the job folder (which
holds the exit code of the task) is preferred anyway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from partita.errors import LauncherError

__all__ = [
    "AcctEntry",
    "EndWatch",
    "JobStatus",
    "QueueEntry",
    "SlurmState",
    "combine",
    "normalise_state",
    "parse_sacct",
    "parse_squeue",
    "phase_of",
    "reason_for",
]

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
UNKNOWN = "unknown"


class SlurmState(StrEnum):
    """Slurm's job states, each with partita's phase and failure reason."""

    # waiting for resources, a dependency, a hold, or to start again
    PENDING = "PENDING"
    CONFIGURING = "CONFIGURING"
    REQUEUED = "REQUEUED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    RESIZING = "RESIZING"
    SUSPENDED = "SUSPENDED"
    # holding resources
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    STOPPED = "STOPPED"
    # finished
    COMPLETED = "COMPLETED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    CANCELLED = "CANCELLED"
    REVOKED = "REVOKED"
    FAILED = "FAILED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    SPECIAL_EXIT = "SPECIAL_EXIT"

    @property
    def phase(self) -> str:
        """``queued``, ``running``, ``done`` or ``failed``."""
        return _PHASES[self]

    @property
    def reason(self) -> str | None:
        """Why the job failed, or ``None`` if it has not failed."""
        return _REASONS.get(self)

    @classmethod
    def parse(cls, raw: str) -> SlurmState | None:
        """The state in squeue/sacct text (``"CANCELLED by 0"`` included), or ``None``."""
        try:
            return cls(normalise_state(raw))
        except ValueError:
            return None


_QUEUED_STATES = {
    SlurmState.PENDING,
    SlurmState.CONFIGURING,
    SlurmState.REQUEUED,
    SlurmState.REQUEUE_HOLD,
    SlurmState.REQUEUE_FED,
    SlurmState.RESIZING,
    SlurmState.SUSPENDED,
}
_RUNNING_STATES = {
    SlurmState.RUNNING,
    SlurmState.COMPLETING,
    SlurmState.SIGNALING,
    SlurmState.STAGE_OUT,
    SlurmState.STOPPED,
}
_PHASES: dict[SlurmState, str] = {
    state: (
        DONE
        if state is SlurmState.COMPLETED
        else QUEUED
        if state in _QUEUED_STATES
        else RUNNING
        if state in _RUNNING_STATES
        else FAILED
    )
    for state in SlurmState
}

_REASONS: dict[SlurmState, str] = {
    SlurmState.TIMEOUT: "timeout",
    SlurmState.OUT_OF_MEMORY: "memory",
    SlurmState.NODE_FAIL: "node_fail",
    SlurmState.PREEMPTED: "preempted",
    SlurmState.CANCELLED: "cancelled",
    SlurmState.REVOKED: "cancelled",
    SlurmState.FAILED: "error",
    SlurmState.BOOT_FAIL: "error",
    SlurmState.DEADLINE: "error",
    SlurmState.SPECIAL_EXIT: "error",
}


def normalise_state(raw: str) -> str:
    """``"CANCELLED by 0"`` -> ``"CANCELLED"``; ``"running"`` -> ``"RUNNING"``.

    Also drops the ``+`` that sacct appends to a state it had to shorten.
    """
    words = raw.strip().split()
    return words[0].rstrip("+").upper() if words else ""


def phase_of(state: str) -> str:
    """partita's phase of a Slurm state, or ``unknown`` for a state this table lacks."""
    parsed = SlurmState.parse(state)
    return parsed.phase if parsed is not None else UNKNOWN


def reason_for(state: str, exit_code: str) -> str | None:
    """Why a job in ``state`` with sacct's ``exit_code`` (``"3:0"``) failed, or ``None``.

    ``None`` means it has not failed (queued, running or completed). A ``COMPLETED``
    job with a non-zero exit code, which Slurm should never report, counts as
    ``error``; an unknown state counts as ``error`` only with a non-zero exit code.
    """
    parsed = SlurmState.parse(state)
    if parsed is not None and parsed.reason is not None:
        return parsed.reason
    if parsed is None or parsed is SlurmState.COMPLETED:
        code = exit_code.strip()
        if code and code not in ("0", "0:0"):
            return "error"
    return None


# ---------------------------------------------------------------------- entries


@dataclass(frozen=True)
class QueueEntry:
    """One job (or array task) as squeue lists it."""

    job_id: str
    state: str
    """Slurm's state name, e.g. ``PENDING``."""
    reason: str | None
    """Why it waits (``Resources``, ``Dependency``...), or ``None``."""

    @property
    def phase(self) -> str:
        return phase_of(self.state)


@dataclass(frozen=True)
class AcctEntry:
    """One job (or array task) as sacct records it."""

    job_id: str
    state: str
    """Slurm's state name without decoration: ``CANCELLED``, not ``CANCELLED by 0``."""
    raw_state: str
    exit_code: int
    """The exit status of the batch script (``3`` for ``exit 3``)."""
    signal: int
    """The signal that ended it (``9``, ``15``), or ``0``."""
    elapsed: timedelta | None
    end: datetime | None = None
    """When it ended, or ``None`` while sacct has no completion record (``Unknown``)."""

    @property
    def phase(self) -> str:
        return phase_of(self.state)

    @property
    def reason(self) -> str | None:
        return reason_for(self.state, f"{self.exit_code}:{self.signal}")

    @property
    def complete(self) -> bool:
        """Whether this is the job's completion record: a final state and an end time.

        Only then are :attr:`exit_code` and :attr:`signal` Slurm's last word; a final
        state without an end time comes from a start record written after the job
        ended, whose ExitCode is still ``0:0``.
        """
        return self.phase in (DONE, FAILED) and self.end is not None


@dataclass(frozen=True)
class JobStatus:
    """What squeue and sacct together tell of one job (see :func:`combine`)."""

    state: str
    """Slurm's state name."""
    exit_code: int | None
    """The exit status of the batch script, or ``None`` while it is not known."""
    signal: int | None
    """The signal that ended it (``0`` for none), or ``None`` while it is not known."""
    settled: bool
    """True once the state is final and the exit code is Slurm's last word."""
    source: str = "slurm"
    """Where the exit code comes from: ``squeue``, ``sacct`` or ``runner``."""

    @property
    def phase(self) -> str:
        return phase_of(self.state)

    @property
    def final(self) -> bool:
        """Whether the job has ended (whether or not its exit code is known)."""
        return self.phase in (DONE, FAILED)

    @property
    def exit_text(self) -> str:
        """``"3:0"`` as sacct writes it, or ``"unknown"``."""
        if self.exit_code is None or self.signal is None:
            return UNKNOWN
        return f"{self.exit_code}:{self.signal}"

    @property
    def returncode(self) -> int | None:
        """The exit code as a process's return code: ``-signal`` if killed, ``None`` if unknown."""
        if self.exit_code is None or self.signal is None:
            return None
        return -self.signal if self.signal else self.exit_code

    @property
    def reason(self) -> str | None:
        return reason_for(self.state, "" if self.exit_code is None else self.exit_text)


def combine(queue: QueueEntry | None, acct: AcctEntry | None) -> JobStatus | None:
    """One job's status from its squeue entry and its sacct record (either may be missing).

    - A job squeue shows queued or running is queued or running, whatever sacct says
      (sacct may still hold the record of an attempt before a requeue).
    - sacct's completion record (:attr:`AcctEntry.complete`) gives the final state and
      the exit code. A ``FAILED`` record with ExitCode ``0:0`` contradicts itself: its
      exit code counts as unknown.
    - Otherwise a final state in squeue is final, but only ``COMPLETED`` tells the exit
      code (``0:0``); for any other final state it stays unknown until sacct has the
      completion record. The same holds for a final state in a sacct record without an
      end time.
    - ``None`` if neither knows the job.
    """
    if queue is not None and phase_of(queue.state) not in (DONE, FAILED):
        return JobStatus(queue.state, None, None, settled=False, source="squeue")
    if acct is not None and acct.complete:
        if acct.state == SlurmState.FAILED and (acct.exit_code, acct.signal) == (0, 0):
            return JobStatus(acct.state, None, None, settled=True, source="sacct")
        return JobStatus(acct.state, acct.exit_code, acct.signal, settled=True, source="sacct")
    state = queue.state if queue is not None else acct.state if acct is not None else None
    if state is None:
        return None
    if state == SlurmState.COMPLETED:
        return JobStatus(state, 0, 0, settled=True, source="squeue" if queue else "sacct")
    return JobStatus(state, None, None, settled=False, source="squeue" if queue else "sacct")


class EndWatch:
    """Decides, poll after poll, when a job's end is known well enough to report it.

    A job is reported ended when :func:`combine` says it is settled, or when the runner
    recorded its exit code in the job folder (``runner_code``: the truth for a job that
    ran), or when accounting stayed incomplete for ``patience`` seconds after the job
    was first seen ended: it is then reported with an unknown exit code, never a
    guessed one. ``clock`` gives the time in seconds (``time.monotonic``).
    """

    def __init__(
        self, patience: float = 120.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.patience = patience
        self.clock = clock
        self._ended_at: dict[str, float] = {}

    def settle(
        self, job_id: str, status: JobStatus | None, runner_code: int | None = None
    ) -> JobStatus | None:
        """The job's final status if it can be reported now, else ``None`` (ask again)."""
        if status is None:
            return None
        if not status.final:
            self.forget(job_id)  # queued or running (again, after a requeue)
            return None
        if runner_code is not None:
            self.forget(job_id)
            signal = -runner_code if runner_code < 0 else 0
            code = 0 if runner_code < 0 else runner_code
            return replace(status, exit_code=code, signal=signal, settled=True, source="runner")
        if status.settled:
            self.forget(job_id)
            return status
        first = self._ended_at.setdefault(job_id, self.clock())
        if self.clock() - first >= self.patience:
            self.forget(job_id)
            return status
        return None

    def waiting(self, job_id: str) -> bool:
        """Whether the job was seen ended and its exit code is still awaited."""
        return job_id in self._ended_at

    def forget(self, job_id: str) -> None:
        """Drop what is remembered of this job."""
        self._ended_at.pop(job_id, None)


# ---------------------------------------------------------------------- parsing

_E = TypeVar("_E", "QueueEntry", "AcctEntry")

_ARRAY_RANGE_RE = re.compile(r"([0-9]+)_\[([^\]]*)\]")
_RANGE_ITEM_RE = re.compile(r"([0-9]+)(?:-([0-9]+)(?::([0-9]+))?)?")
_EXIT_RE = re.compile(r"([0-9]+):([0-9]+)")
_ELAPSED_RE = re.compile(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]+)(?:\.[0-9]+)?")


def expand_job_id(job_id: str) -> list[str]:
    """``"123_[5-9%2]"`` -> ``["123_5", ..., "123_9"]``; any other id -> ``[job_id]``.

    Pending array tasks are listed as one range; ``%N`` (at most N at once) and
    ``:step`` are understood.
    """
    match = _ARRAY_RANGE_RE.fullmatch(job_id)
    if match is None:
        return [job_id]
    base, spec = match.groups()
    spec = spec.split("%", 1)[0]
    ids: list[str] = []
    for item in spec.split(","):
        part = _RANGE_ITEM_RE.fullmatch(item.strip())
        if part is None:
            raise LauncherError(f"cannot read the array task range {job_id!r} from Slurm")
        first, last, step = part.groups()
        stop = int(last) if last is not None else int(first)
        ids.extend(f"{base}_{i}" for i in range(int(first), stop + 1, int(step or 1)))
    return ids


def _merge(explicit: dict[str, _E], ranged: dict[str, _E]) -> dict[str, _E]:
    # A task listed on its own line is newer than a pending range that still names it
    # (sacct keeps e.g. "5_[6-9%2] PENDING" for a while after 5_6 started).
    return {**ranged, **explicit}


def parse_squeue(text: str) -> dict[str, QueueEntry]:
    """Output of ``squeue -h -o "%i|%T|%r"`` (any ``-t``), by job id.

    Pending array ranges (``123_[5-9%2]``) are expanded to one entry per task.
    """
    explicit: dict[str, QueueEntry] = {}
    ranged: dict[str, QueueEntry] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.strip().split("|", 2)
        if len(fields) != 3:
            raise LauncherError(
                f"cannot read this squeue line (expected JOBID|STATE|REASON): {line!r}"
            )
        job_id, state, reason = (part.strip() for part in fields)
        if job_id.upper() in ("JOBID", "JOB_ID"):
            continue
        ids = expand_job_id(job_id)
        target = explicit if ids == [job_id] else ranged
        for one in ids:
            target[one] = QueueEntry(
                job_id=one,
                state=normalise_state(state),
                reason=None if reason in ("", "None", "(null)") else reason,
            )
    return _merge(explicit, ranged)


def parse_sacct(text: str) -> dict[str, AcctEntry]:
    """Output of ``sacct -X -n -P -o JobID,State,ExitCode,Elapsed,End``, by job id.

    Pending array ranges are expanded as in :func:`parse_squeue`. ``End`` is
    ``Unknown`` for a job without a completion record (still running, or not yet
    recorded): its entry then has ``end=None``.
    """
    explicit: dict[str, AcctEntry] = {}
    ranged: dict[str, AcctEntry] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 5:
            raise LauncherError(
                f"cannot read this sacct line (expected JobID|State|ExitCode|Elapsed|End): {line!r}"
            )
        job_id, raw_state, exit_code, elapsed, end = (part.strip() for part in fields)
        if job_id == "JobID":
            continue
        code = _EXIT_RE.fullmatch(exit_code)
        if code is None:
            raise LauncherError(f"cannot read the exit code {exit_code!r} in sacct line {line!r}")
        ids = expand_job_id(job_id)
        target = explicit if ids == [job_id] else ranged
        for one in ids:
            target[one] = AcctEntry(
                job_id=one,
                state=normalise_state(raw_state),
                raw_state=raw_state,
                exit_code=int(code.group(1)),
                signal=int(code.group(2)),
                elapsed=_parse_elapsed(elapsed),
                end=_parse_time(end),
            )
    return _merge(explicit, ranged)


def _parse_elapsed(text: str) -> timedelta | None:
    match = _ELAPSED_RE.fullmatch(text)
    if match is None:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _parse_time(text: str) -> datetime | None:
    # sacct writes ISO times ("2026-12-02T06:06:26"), "Unknown" or "None" for none.
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
