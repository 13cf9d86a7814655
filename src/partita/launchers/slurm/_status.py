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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from partita.errors import LauncherError

__all__ = [
    "AcctEntry",
    "QueueEntry",
    "SlurmState",
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

    @property
    def phase(self) -> str:
        return phase_of(self.state)

    @property
    def reason(self) -> str | None:
        return reason_for(self.state, f"{self.exit_code}:{self.signal}")


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
    """Output of ``sacct -X -n -P -o JobID,State,ExitCode,Elapsed``, by job id.

    Pending array ranges are expanded as in :func:`parse_squeue`.
    """
    explicit: dict[str, AcctEntry] = {}
    ranged: dict[str, AcctEntry] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 4:
            raise LauncherError(
                f"cannot read this sacct line (expected JobID|State|ExitCode|Elapsed): {line!r}"
            )
        job_id, raw_state, exit_code, elapsed = (part.strip() for part in fields)
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
            )
    return _merge(explicit, ranged)


def _parse_elapsed(text: str) -> timedelta | None:
    match = _ELAPSED_RE.fullmatch(text)
    if match is None:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
