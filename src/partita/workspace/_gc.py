"""Retention: which jobs and runs a work directory keeps, and how the rest is deleted.

What is kept (:func:`plan`):

* every job that runs, or that an experiment still running submitted (and, while a run is
  in progress, every job not launched yet: its record of submissions may lag behind);
* every job whose files cannot be read (listed as damage, never deleted blindly);
* the runs the policy keeps — pinned runs, the last ``keep_last`` runs of each experiment,
  runs newer than ``keep_days`` days, runs in progress, runs whose record cannot be read —
  and every job they submitted;
* pinned jobs;
* transitively, what a kept job depends on: the dependencies its runs recorded, and every
  job its ``params.json`` refers to (its inputs are their results);
* but a transient job (submitted with ``transient=True``) only while it runs, is pinned, or
  a kept job that is not done depends on it;
* every shared folder that a job folder which stays refers to (``shared.json``).

Everything else is proposed for deletion: job folders and run folders (the run history).
Deleting (:func:`delete_job`, :func:`delete_run`) first renames the folder out of the way in
one ``rename(2)`` — under the job lock, after reading the job again — then removes it, so no
reader ever sees half a job, and a crash leaves only a ``.deleting-*`` folder that the next
:func:`sweep_leftovers` removes. A deleted job is simply launched again if submitted later.

The policy's defaults and the pins live in one file of the work directory
(:attr:`partita.workspace.Workspace.retention`), written atomically under its lock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partita.errors import WorkspaceError
from partita.workspace._atomic import read_json, write_json
from partita.workspace._locks import FileLock
from partita.workspace._paths import JobPaths, Workspace
from partita.workspace._runs import RunPaths, read_run, read_submissions
from partita.workspace._shared import (
    delete_shared,
    read_shared_refs,
    shared_folders,
    shared_in_use,
)

if TYPE_CHECKING:
    from partita.workspace._index import Index
    from partita.workspace._jobinfo import JobInfo, Probe, RunInfo

__all__ = [
    "DEFAULT_KEEP_DAYS",
    "DEFAULT_KEEP_LAST",
    "Plan",
    "Policy",
    "Retention",
    "delete_job",
    "delete_run",
    "delete_unused_shared",
    "job_references",
    "plan",
    "read_retention",
    "shared_of",
    "sweep_leftovers",
    "unsure",
    "unused_shared",
    "update_retention",
]

#: The policy when the work directory stores none: the last 3 runs of each experiment,
#: and every run of the last 30 days.
DEFAULT_KEEP_LAST = 3
DEFAULT_KEEP_DAYS = 30.0

_DELETING = ".deleting-"


@dataclass(frozen=True)
class Policy:
    """Which runs to keep: the last ``keep_last`` of each experiment, those newer than
    ``keep_days`` days (``None``: no age rule), and the pinned ones."""

    keep_last: int = DEFAULT_KEEP_LAST
    keep_days: float | None = DEFAULT_KEEP_DAYS

    def to_json(self) -> dict[str, Any]:
        """The policy as stored and printed."""
        return {"keep_last": self.keep_last, "keep_days": self.keep_days}


@dataclass
class Retention:
    """The stored policy defaults and pins of a work directory."""

    policy: Policy = field(default_factory=Policy)
    pinned_runs: list[str] = field(default_factory=list)
    """``experiment/run`` of each pinned run."""
    pinned_jobs: list[str] = field(default_factory=list)
    """Full identifiers of the pinned jobs."""

    def to_json(self) -> dict[str, Any]:
        """The document stored in the work directory."""
        return {
            **self.policy.to_json(),
            "pins": {"runs": self.pinned_runs, "jobs": self.pinned_jobs},
        }


def _retention_path(workspace: Workspace) -> Path:
    return workspace.retention


def read_retention(workspace: Workspace) -> Retention:
    """The stored retention settings (defaults if there are none).

    Raises :class:`WorkspaceError` if the file exists but cannot be understood: pins that
    cannot be read must stop a deletion, not be taken as "nothing pinned".
    """
    path = _retention_path(workspace)
    if not path.exists():
        return Retention()
    value = read_json(path)
    problem = None
    if not isinstance(value, dict):
        problem = "expected a JSON object"
    else:
        last, days, pins = value.get("keep_last"), value.get("keep_days"), value.get("pins", {})
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            problem = "expected 'keep_last' to be an integer >= 0"
        elif days is not None and (
            not isinstance(days, int | float) or isinstance(days, bool) or days < 0
        ):
            problem = "expected 'keep_days' to be a number >= 0 or null"
        elif not isinstance(pins, dict) or not all(
            isinstance(pins.get(k, []), list) and all(isinstance(x, str) for x in pins.get(k, []))
            for k in ("runs", "jobs")
        ):
            problem = 'expected \'pins\' to be {"runs": [...], "jobs": [...]} of strings'
    if problem is not None:
        raise WorkspaceError(
            f"the retention settings {path} cannot be read: {problem}. Fix the file (or "
            "delete it to forget every pin and go back to the default policy)."
        )
    assert isinstance(value, dict)
    pins, days = value.get("pins", {}), value.get("keep_days")
    return Retention(
        Policy(value["keep_last"], None if days is None else float(days)),
        list(pins.get("runs", [])),
        list(pins.get("jobs", [])),
    )


def update_retention(workspace: Workspace, change: Callable[[Retention], None]) -> Retention:
    """Read, ``change`` and write the retention settings under their lock; returns them."""
    path = _retention_path(workspace)
    lock = FileLock(path.with_name(path.name + ".lock"))
    lock.acquire()
    try:
        settings = read_retention(workspace)
        change(settings)
        try:
            write_json(path, settings.to_json())
        except OSError as exc:
            raise WorkspaceError(
                f"cannot write the retention settings {path}: {exc.strerror or exc}. "
                "Check that the work directory is writable."
            ) from None
        return settings
    finally:
        lock.release()


# --- what is kept --------------------------------------------------------------------------


def unsure(info: JobInfo) -> bool:
    """Whether the state of ``info`` rests on files that cannot be read (never deleted then).

    Only ``progress.json`` is not needed to know a job's state: its damage alone does not
    keep a job.
    """
    return any(not item.startswith("progress.json:") for item in info.damage)


def damage_reason(info: JobInfo) -> str:
    """Why a damaged job is kept, and what to do."""
    return (
        f"its files cannot be read ({'; '.join(info.damage)}): repair or delete {info.path} by hand"
    )


def job_references(workspace: Workspace, type_id: str, identifier: str) -> list[str] | None:
    """Identifiers of the existing jobs whose configs appear in a job's ``params.json``.

    ``None`` if the document cannot be read (a missing one counts as no reference).
    """
    paths = workspace.job(type_id, identifier)
    if not paths.params.exists():
        return []
    document = read_json(paths.params)
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("objects"), list)
        or not isinstance(document.get("root"), int)
    ):
        return None
    found = []
    for position, entry in enumerate(document["objects"]):
        if position == document["root"] or not isinstance(entry, dict):
            continue
        kind, ident = str(entry.get("type", "")), str(entry.get("id", ""))
        if not kind or not ident:
            continue
        with contextlib.suppress(WorkspaceError):
            if workspace.job(kind, ident).root.is_dir():
                found.append(ident)
    return found


@dataclass
class Plan:
    """What :func:`plan` decided: kept jobs and runs with a reason, the rest to delete."""

    policy: Policy
    jobs: dict[str, JobInfo]
    """Every job of the work directory, by identifier."""
    kept_jobs: dict[str, str] = field(default_factory=dict)
    """Kept job identifier → why."""
    kept_runs: dict[tuple[str, str], str] = field(default_factory=dict)
    """Kept ``(experiment, run)`` → why."""
    doomed_runs: list[RunInfo] = field(default_factory=list)
    """Runs the policy drops, most recent first."""
    damage: list[str] = field(default_factory=list)
    """What could not be read (kept, listed), one sentence each."""
    pins_missing: list[str] = field(default_factory=list)
    """Pins that name a job or run that no longer exists."""
    doomed_shared: list[Path] = field(default_factory=list)
    """Shared folders no kept job refers to (deleted after the jobs)."""

    @property
    def doomed_jobs(self) -> list[JobInfo]:
        """Jobs the policy drops, most recent first."""
        return [info for ident, info in self.jobs.items() if ident not in self.kept_jobs]


def _active(index: Index, jobs: dict[str, JobInfo], reasons: dict[str, str]) -> list[RunInfo]:
    """Keep what runs or may run; returns the runs in progress."""
    for info in jobs.values():
        if info.state == "running":
            reasons[info.identifier] = "running"
        elif unsure(info):
            reasons[info.identifier] = damage_reason(info)
    in_progress = [run for run in index.runs() if run.status == "running" and not run.dry_run]
    for run in in_progress:
        for identifier in index.run_jobs(run.experiment, run.run):
            reasons.setdefault(
                identifier,
                f"submitted by run {run.run} of experiment '{run.experiment}', "
                "which is still running",
            )
    if in_progress:
        # A run in progress may launch any job it submitted that has not started yet, and
        # its record of submissions may lag behind: never-launched jobs stay.
        first = in_progress[0]
        for info in jobs.values():
            if info.state == "waiting":
                reasons.setdefault(
                    info.identifier,
                    f"not launched yet, and run {first.run} of experiment "
                    f"'{first.experiment}' is in progress",
                )
    return in_progress


def close_over_dependencies(
    workspace: Workspace,
    jobs: dict[str, JobInfo],
    reasons: dict[str, str],
    damage: list[str] | None = None,
) -> None:
    """Add to ``reasons`` what every kept job depends on, transitively.

    A dependency is one its runs recorded or a job its ``params.json`` refers to. A kept
    job whose ``params.json`` cannot be read is listed in ``damage`` (its recorded
    dependencies are still followed).
    """
    pending = list(reasons)
    while pending:
        keeper = jobs.get(pending.pop())
        if keeper is None:
            continue
        referenced = job_references(workspace, keeper.type_id, keeper.identifier)
        if referenced is None:
            referenced = []
            if damage is not None:
                damage.append(
                    f"job {keeper.name}: its params.json cannot be read, so what it depends "
                    "on is known only from its runs' records"
                )
        for dependency in [*keeper.depends, *referenced]:
            needed = jobs.get(dependency)
            if needed is not None and needed.transient and keeper.state == "done":
                continue  # a transient input of a done job is no longer needed
            if dependency not in reasons:
                reasons[dependency] = f"a dependency of {keeper.name}, which is kept"
                pending.append(dependency)


def protect(
    index: Index,
    workspace: Workspace,
    jobs: dict[str, JobInfo],
    *,
    latest: bool,
    pins: Retention | None = None,
) -> dict[str, str]:
    """The jobs ``partita jobs clean`` must keep, with the reason.

    What runs or may run, damaged jobs, pinned jobs and runs, with ``latest`` the jobs of
    each experiment's latest run, and what all of these depend on.
    """
    reasons: dict[str, str] = {}
    _active(index, jobs, reasons)
    pins = pins if pins is not None else read_retention(workspace)
    _keep_pins(index, jobs, pins, reasons, [])
    if latest:
        seen: set[str] = set()
        for run in index.runs():
            if run.dry_run or run.experiment in seen:
                continue
            seen.add(run.experiment)
            why = f"used by the latest run of experiment '{run.experiment}'"
            _keep_run(index, jobs, reasons, run, why)
    close_over_dependencies(workspace, jobs, reasons)
    return reasons


def _keep_run(
    index: Index,
    jobs: dict[str, JobInfo],
    reasons: dict[str, str],
    run: RunInfo | tuple[str, str],
    why: str,
) -> None:
    """Keep the jobs a kept run submitted, for ``why`` — except its transient jobs.

    A transient job is kept only while it runs, is pinned itself, belongs to a run in
    progress, or a kept job that is not done depends on it (:func:`close_over_dependencies`):
    the run that submitted it does not keep it. ``gc`` and ``jobs clean`` both decide so.
    """
    experiment, name = run if isinstance(run, tuple) else (run.experiment, run.run)
    for identifier in index.run_jobs(experiment, name):
        submitted = jobs.get(identifier)
        if submitted is not None and submitted.transient:
            continue  # kept only while a job that is not done needs it
        reasons.setdefault(identifier, why)


def _keep_pins(
    index: Index,
    jobs: dict[str, JobInfo],
    pins: Retention,
    reasons: dict[str, str],
    missing: list[str],
) -> None:
    runs = {f"{r.experiment}/{r.run}" for r in index.runs()}
    for name in pins.pinned_runs:
        if name not in runs:
            missing.append(f"run {name}")
            continue
        experiment, _, run = name.partition("/")
        _keep_run(index, jobs, reasons, (experiment, run), f"submitted by the pinned run {name}")
    for identifier in pins.pinned_jobs:
        if identifier in jobs:
            reasons.setdefault(identifier, "pinned")
        else:
            missing.append(f"job {identifier[:12]}")


def plan(
    index: Index,
    workspace: Workspace,
    policy: Policy,
    *,
    now: float | None = None,
) -> Plan:
    """Decide what the work directory keeps under ``policy`` (nothing is deleted here).

    ``index`` must be fresh. Raises :class:`WorkspaceError` if the pins cannot be read.
    """
    now = time.time() if now is None else now
    settings = read_retention(workspace)
    jobs = {info.identifier: info for info in index.jobs()}
    result = Plan(policy, jobs)
    reasons = result.kept_jobs
    _active(index, jobs, reasons)
    for info in jobs.values():
        if unsure(info):
            result.damage.append(f"job {info.name}: {'; '.join(info.damage)}")
    pinned = set(settings.pinned_runs)
    _keep_pins(index, jobs, settings, reasons, result.pins_missing)
    counted: dict[str, int] = {}
    horizon = None if policy.keep_days is None else now - policy.keep_days * 86400
    for run in index.runs():  # most recent first
        key, name = (run.experiment, run.run), f"{run.experiment}/{run.run}"
        why = None
        if name in pinned:
            why = "pinned"
        elif run.status == "running":
            why = "in progress"
        elif run.damage:
            why = f"its record cannot be read ({'; '.join(run.damage)})"
            result.damage.append(f"run {name}: {'; '.join(run.damage)}")
        elif not run.dry_run and counted.get(run.experiment, 0) < policy.keep_last:
            why = (
                f"the latest run of experiment '{run.experiment}'"
                if policy.keep_last == 1
                else f"one of the last {policy.keep_last} runs of experiment '{run.experiment}'"
            )
        elif horizon is not None and run.started is not None and run.started >= horizon:
            why = f"newer than {policy.keep_days:g} days"
        elif run.started is None:
            why = "its start time is unknown"
        if not run.dry_run:
            counted[run.experiment] = counted.get(run.experiment, 0) + 1
        if why is None:
            result.doomed_runs.append(run)
            continue
        result.kept_runs[key] = why
        if run.dry_run:
            continue  # it launched nothing: it protects no job
        _keep_run(index, jobs, reasons, key, f"submitted by run {name} ({why})")
    close_over_dependencies(workspace, jobs, reasons, result.damage)
    # Jobs no readable run record mentions may belong to a run whose record is damaged.
    damaged_runs = [r for r in index.runs() if r.damage]
    if damaged_runs:
        known = {
            identifier
            for run in index.runs()
            if not run.damage
            for identifier in index.run_jobs(run.experiment, run.run)
        }
        first = damaged_runs[0]
        for identifier in jobs:
            if identifier not in known:
                reasons.setdefault(
                    identifier,
                    f"may belong to run {first.experiment}/{first.run}, whose record "
                    "cannot be read",
                )
        close_over_dependencies(workspace, jobs, reasons)
    result.doomed_shared = unused_shared(
        workspace, [info.identifier for info in result.doomed_jobs], result.damage
    )
    return result


def unused_shared(
    workspace: Workspace,
    doomed: Iterable[str] = (),
    damage: list[str] | None = None,
    *,
    among: Iterable[Path] | None = None,
) -> list[Path]:
    """Shared folders that no job folder refers to, once the ``doomed`` jobs are gone.

    Only those in ``among`` if it is given (``jobs clean``: the folders of the jobs it
    deletes); ``gc`` looks at every shared folder. None if a job's record of its shared
    folders cannot be read (listed in ``damage``).
    """
    used, readable = shared_in_use(workspace, doomed)
    if not readable:
        if damage is not None:
            damage.append(
                "a job's record of its shared folders (shared.json) cannot be read: no "
                "shared folder is deleted"
            )
        return []
    candidates = shared_folders(workspace)
    if among is not None:
        wanted = set(among)
        candidates = [folder for folder in candidates if folder in wanted]
    return [folder for folder in candidates if folder not in used]


def shared_of(workspace: Workspace, jobs: Iterable[JobPaths]) -> set[Path]:
    """The shared folders that the job folders ``jobs`` refer to (read now)."""
    found: set[Path] = set()
    for paths in jobs:
        found.update(workspace.root / ref for ref in read_shared_refs(paths) or [])
    return found


def delete_unused_shared(
    workspace: Workspace, listed: Iterable[Path]
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Delete the ``listed`` shared folders that no job folder refers to *now*.

    Decided again from every job folder, after the jobs are deleted: a folder that a job
    submitted since refers to stays, and so does one that appeared since the listing (it is
    decided next time). Returns the deleted folders, and the kept ones with why.
    """
    deleted: list[Path] = []
    kept: list[tuple[Path, str]] = []
    wanted = set(listed)
    for folder in unused_shared(workspace, among=wanted):
        reason = delete_shared(workspace, folder)
        if reason is None:
            deleted.append(folder)
        else:
            kept.append((folder, reason))
    return deleted, kept


# --- deleting ------------------------------------------------------------------------------


def _trash(workspace: Workspace, kind: str, *names: str) -> Path:
    return workspace.root / (_DELETING + "-".join((kind, *names)))


def delete_job(workspace: Workspace, paths: JobPaths, probe: Probe | None) -> str | None:
    """Delete a job folder; returns why it was kept instead, if it was.

    The folder is first renamed out of ``jobs/`` (under its lock, after reading it again to
    check it is not running and can be read), so nobody ever sees a half-deleted job.
    """
    from partita.workspace._jobinfo import read_job

    lock = FileLock(paths.lock)
    if not paths.root.is_dir():
        return None
    if not lock.acquire(blocking=False):
        return "busy (being launched or run right now)"
    try:
        current = read_job(paths, probe)
        if current.state == "running":
            return "running"
        if unsure(current):
            return damage_reason(current)
        trash = _trash(workspace, "job", paths.type_id, paths.identifier)
        os.replace(paths.root, trash)
    finally:
        lock.release()
    shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):
        paths.root.parent.rmdir()  # the task type folder, if now empty
    return None


def delete_run(workspace: Workspace, paths: RunPaths) -> str | None:
    """Delete a run folder (its record and submissions); returns why it was kept, if it was.

    Read again first: a run that is in progress or whose record cannot be read stays. When
    the experiment has no run left, its folder goes too.
    """
    record = read_run(paths)
    if not record.exists:
        return None if not paths.root.exists() else "its record is missing"
    if record.damage or read_submissions(paths).damage:
        return "its record cannot be read"
    if record.status == "running":
        from partita.workspace._process import is_alive

        process = record.process
        if not process or is_alive(process) is not False:
            return "in progress"
    trash = _trash(workspace, "run", paths.experiment, paths.run)
    os.replace(paths.root, trash)
    shutil.rmtree(trash, ignore_errors=True)
    runs = paths.root.parent
    with contextlib.suppress(OSError):
        if not any(runs.iterdir()):
            runs.rmdir()
            paths.latest.unlink(missing_ok=True)
            runs.parent.rmdir()
    if runs.is_dir():
        _repoint_latest(paths)
    return None


def _repoint_latest(paths: RunPaths) -> None:
    """Keep the experiment's latest-run pointer on a run that exists."""
    pointer = read_json(paths.latest)
    if not isinstance(pointer, dict) or pointer.get("run") != paths.run:
        return
    candidates = []
    for folder in paths.root.parent.iterdir():
        record = read_run(RunPaths(folder))
        if record.exists and not record.dry_run:
            candidates.append((record.started or 0.0, folder.name))
    if candidates:
        write_json(paths.latest, {"run": max(candidates)[1]}, fsync=False)
    else:
        paths.latest.unlink(missing_ok=True)


def sweep_leftovers(workspace: Workspace) -> list[Path]:
    """Remove what an interrupted deletion left (``.deleting-*`` folders); returns them."""
    swept = []
    with contextlib.suppress(OSError):
        for entry in workspace.root.iterdir():
            if entry.name.startswith(_DELETING) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
                swept.append(entry)
    return swept
