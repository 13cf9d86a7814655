"""Settle jobs left on Slurm by a detached experiment, from their folders and sacct."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._packing import lost_reason, read_report
from partita.launchers.slurm._status import phase_of, reason_for
from partita.workspace import (
    JobInfo,
    JobState,
    read_state,
    record_final,
)


def reconcile(infos: list[JobInfo]) -> list[str]:
    """For ``running`` jobs on Slurm whose Slurm job ended without an outcome, record one.

    Asks Slurm once per cluster (``squeue`` + ``sacct`` for all of them). Returns one line
    per job whose record changed.
    """
    by_conf: dict[str, list[JobInfo]] = defaultdict(list)
    for info in infos:
        handle = info.launcher or {}
        if info.state == "running" and handle.get("kind") == "slurm" and handle.get("job_id"):
            by_conf[handle.get("slurm_conf") or ""].append(info)
    changes: list[str] = []
    for conf, jobs in by_conf.items():
        changes += asyncio.run(_reconcile(conf, jobs))
    return changes


async def _reconcile(conf: str, jobs: list[JobInfo]) -> list[str]:
    commands = SlurmCommands(env={"SLURM_CONF": conf} if conf else None)
    ids = [str((j.launcher or {})["job_id"]) for j in jobs]
    found_states = await commands.statuses(sorted(set(ids)))
    states = {i: (s.state, s.exit_text) for i, s in found_states.items()}
    changes = []
    for info, job_id in zip(jobs, ids, strict=True):
        found = states.get(job_id)
        if found is None:
            continue
        state, exit_code = found
        phase = phase_of(state)
        if phase not in ("done", "failed"):
            continue
        handle = info.launcher or {}
        if handle.get("report") and handle.get("slot") is not None:
            # One task of a pack whose worker ended: if the worker did not record its
            # outcome (its report has no end for it), the task is lost (or cancelled).
            _, ends = read_report(str(handle["report"]))
            if int(handle["slot"]) in ends:
                continue
            cancelled = info.paths.cancel_request.exists()
            reason = "cancelled" if cancelled else lost_reason(state)
            detail = f"its pack worker (Slurm job {job_id}) ended {state}"
            change = _record(info, reason, detail)
            if change:
                changes.append(change)
            continue
        reason = reason_for(state, exit_code) or "lost"
        if reason == "error":
            # The runner records failures of the task itself; without its marker, the job
            # was killed: for memory (Slurm says so in its log), or otherwise lost.
            reason = "memory" if _memory_killed(info.launcher or {}) else "lost"
        change = _record(info, reason, f"Slurm state {state} ({exit_code})")
        if change:
            changes.append(change)
    return changes


def _memory_killed(handle: dict[str, Any]) -> bool:
    try:
        with open(handle.get("log") or "", errors="replace") as file:
            text = file.read()[-4000:]
    except OSError:
        return False
    return "exceeded memory limit" in text or "oom-kill" in text.lower()


def _record(info: JobInfo, reason: str, detail: str) -> str | None:
    paths = info.paths
    attempt = int(read_state(paths).get("attempt") or 0)
    cancelled = reason == "cancelled"
    recorded = record_final(
        paths,
        JobState.CANCELLED if cancelled else JobState.FAILED,
        attempt=attempt,
        reason=None if cancelled else reason,
        detail=detail,
        blocking=False,  # someone holding the lock runs it right now
    )
    if recorded is None or not recorded.written:
        return None
    if cancelled:
        return f"{info.name}: cancelled ({detail})"
    return f"{info.name}: failed ({reason}; {detail})"
