"""``partita jobs kill`` and ``clean``: stop running jobs, delete job folders."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from partita.cli import _format as fmt
from partita.cli._app import (
    UsageFailure,
    find_workspace,
    get_console,
    job_paths,
    open_index,
    workdir_option,
)
from partita.cli._filters import Filters, filter_options
from partita.cli._jobs_view import referenced_jobs
from partita.errors import PartitaError
from partita.launchers import probe_handle
from partita.workspace import (
    FileLock,
    Index,
    JobInfo,
    JobPaths,
    Workspace,
    read_job,
)


def _resolve(index: Index, references: tuple[str, ...] | list[str]) -> list[JobInfo]:
    infos: dict[str, JobInfo] = {}
    for reference in references:
        info = index.job(reference)
        infos.setdefault(info.identifier, info)
    return list(infos.values())


@click.command("kill")
@click.argument("references", nargs=-1, metavar="[JOB]...")
@filter_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL.",
)
@workdir_option
def kill(
    references: tuple[str, ...],
    filters: Filters,
    yes: bool,
    grace: float,
    workdir: Path | None,
) -> None:
    """Stop running jobs: name them, or select them with filters.

    The job ends 'cancelled'; its experiment reports it as not completed. Killing
    several jobs asks for confirmation unless --yes is given.

    \b
    Examples:
      partita jobs kill 3f2a
      partita jobs kill 3f2a 7b01 --yes
      partita jobs kill --task demo.train --tag lr=0.1
      partita jobs kill --experiment sweep --yes     every running job of 'sweep'
    """
    if references and filters.given:
        raise UsageFailure("give jobs or filters, not both.")
    if not references and not filters.given:
        raise UsageFailure(
            "say which jobs to kill: 'partita jobs kill 3f2a' or filters such as "
            "'partita jobs kill --task demo.train'."
        )
    if filters.states and "running" not in filters.states:
        raise UsageFailure("only running jobs can be killed: use --state running or no --state.")
    workspace = find_workspace(workdir)
    with open_index(workspace) as index:
        if references:
            selected = _resolve(index, references)
        else:
            selected = filters.select(index, states=("running",))
    console = get_console()
    targets = [info for info in selected if info.state == "running"]
    failures = 0
    for info in selected:
        if info.state != "running":
            console.print(Text(f"{info.name} is {info.state}: nothing to kill"))
            failures += 1
    if not targets:
        if not references:
            console.print("no running job matches these filters")
        raise click.exceptions.Exit(1 if failures else 0)
    if len(targets) > 1 and not yes:
        for info in targets:
            console.print(Text(f"  {info.name}  {fmt.tags_text(info.tags)}"))
        click.confirm(f"Kill these {len(targets)} jobs?", abort=True, err=True)
    failures += _kill_all(workspace, targets, grace, console)
    if failures:
        raise click.exceptions.Exit(1)


def _kill_all(workspace: Workspace, targets: list[JobInfo], grace: float, console: Console) -> int:
    from partita._control import kill_job

    def one(info: JobInfo) -> tuple[JobInfo, str | None]:
        # The folder as seen from this work directory (the index may know an older path).
        here = dataclasses.replace(info, path=job_paths(workspace, info).root)
        try:
            kill_job(here, grace=grace)
            return info, None
        except PartitaError as exc:
            return info, str(exc)

    failures = 0
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        for info, error in pool.map(one, targets):
            state = read_job(job_paths(workspace, info), probe_handle).state
            if error is not None:
                console.print(Text(f"{info.name}: could not kill it: {error}"))
                failures += 1
            elif state == "running":
                console.print(
                    Text(
                        f"{info.name}: cancellation requested, but it is still running "
                        f"({fmt.launcher_text(info.launcher)})"
                    )
                )
                failures += 1
            else:
                line = Text(f"{info.name} ")
                line.append_text(fmt.state_text(state))
                console.print(line)
    return failures


# --- clean ------------------------------------------------------------------------------


def _protected(
    index: Index, workspace: Workspace, everything: dict[str, JobInfo], include_referenced: bool
) -> dict[str, str]:
    """Jobs that must not be deleted, with the reason."""
    reasons: dict[str, str] = {}
    for info in everything.values():
        if info.state == "running":
            reasons[info.identifier] = "running"
        elif _unsure(info):
            # What cannot be read may be running, or be needed: never deleted blindly.
            reasons[info.identifier] = _damage_reason(info)
    latest: dict[str, str] = {}
    in_progress = []
    for run in index.runs():
        if run.dry_run:
            continue  # it launched nothing: it neither protects nor unprotects a job
        latest.setdefault(run.experiment, run.run)
        if run.status == "running":
            in_progress.append(f"run {run.run} of experiment '{run.experiment}'")
            for identifier in index.run_jobs(run.experiment, run.run):
                reasons.setdefault(
                    identifier,
                    f"submitted by run {run.run} of experiment '{run.experiment}', "
                    "which is still running",
                )
    if in_progress:
        # A run in progress may launch any job it submitted that has not started yet, and
        # its record of submissions may lag behind: never-launched jobs stay.
        for info in everything.values():
            if info.state == "waiting":
                reasons.setdefault(
                    info.identifier, f"not launched yet, and {in_progress[0]} is in progress"
                )
    if not include_referenced:
        for experiment, run_id in latest.items():
            for identifier in index.run_jobs(experiment, run_id):
                reasons.setdefault(
                    identifier, f"used by the latest run of experiment '{experiment}'"
                )
    # What a kept job depends on is kept too (its results are its inputs): the
    # dependencies its runs recorded, and every job its params.json refers to.
    pending = list(reasons)
    while pending:
        keeper = everything.get(pending.pop())
        if keeper is None:
            continue
        for dependency in [*keeper.depends, *referenced_jobs(workspace, keeper)]:
            if dependency not in reasons:
                reasons[dependency] = f"a dependency of {keeper.name}, which is kept"
                pending.append(dependency)
    return reasons


def _unsure(info: JobInfo) -> bool:
    """Whether the state of ``info`` rests on files that cannot be read (never deleted then).

    Only ``progress.json`` is not needed to know a job's state: its damage alone does not
    keep a job.
    """
    return any(not item.startswith("progress.json:") for item in info.damage)


def _damage_reason(info: JobInfo) -> str:
    return (
        f"its files cannot be read ({'; '.join(info.damage)}): repair or delete {info.path} by hand"
    )


def _delete(workspace: Workspace, paths: JobPaths) -> str | None:
    """Delete a job folder; returns why it was kept instead, if it was.

    The folder is first renamed out of ``jobs/`` (under its lock, after checking it is not
    running), so nobody ever sees a half-deleted job.
    """
    lock = FileLock(paths.lock)
    if not paths.root.is_dir():
        return None
    if not lock.acquire(blocking=False):
        return "busy (being launched or run right now)"
    try:
        current = read_job(paths, probe_handle)
        if current.state == "running":
            return "running"
        if _unsure(current):
            return _damage_reason(current)
        trash = workspace.root / f".deleting-{paths.type_id}-{paths.identifier}"
        os.replace(paths.root, trash)
    finally:
        lock.release()
    shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):
        paths.root.parent.rmdir()  # the task type folder, if now empty
    return None


@click.command("clean")
@click.argument("references", nargs=-1, metavar="[JOB]...")
@filter_options
@click.option("--yes", "-y", is_flag=True, help="Really delete (default: only list).")
@click.option(
    "--include-referenced",
    is_flag=True,
    help="Also delete jobs used by the latest run of an experiment.",
)
@workdir_option
def clean(
    references: tuple[str, ...],
    filters: Filters,
    yes: bool,
    include_referenced: bool,
    workdir: Path | None,
) -> None:
    """Delete job folders (a dry run unless --yes is given).

    Selects jobs like 'jobs list' (every job without filters), then keeps
    running jobs, jobs of runs still in progress, jobs used by the latest run
    of any experiment (unless --include-referenced) and what kept jobs depend
    on. Prints what would be deleted and how much space it takes, and what is
    kept and why.

    \b
    Examples:
      partita jobs clean --state failed             what would go
      partita jobs clean --state failed --yes       delete them
      partita jobs clean --task demo.train --since 30d
      partita jobs clean --yes                      every job no experiment uses now
    """
    if references and filters.given:
        raise UsageFailure("give jobs or filters, not both.")
    workspace = find_workspace(workdir)
    with open_index(workspace) as index:
        if references:
            selected = _resolve(index, references)
        else:
            selected = filters.select(index)
        everything = {info.identifier: info for info in index.jobs()}
        protected = _protected(index, workspace, everything, include_referenced)
    console = get_console()
    doomed = [info for info in selected if info.identifier not in protected]
    kept = [(info, protected[info.identifier]) for info in selected if info.identifier in protected]
    sizes = {info.identifier: fmt.folder_size(job_paths(workspace, info).root) for info in doomed}
    if not selected:
        console.print("no job matches these filters")
        return
    deleted: list[JobInfo] = []
    if yes:
        for info in doomed:
            reason = _delete(workspace, job_paths(workspace, info))
            if reason is None:
                deleted.append(info)
            else:
                kept.append((info, reason))
        if deleted:
            console.print(f"deleted {fmt.plural(len(deleted), 'job')}:")
    elif doomed:
        console.print(f"would delete {fmt.plural(len(doomed), 'job')}:")
    listed = deleted if yes else doomed
    if listed:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column in ("TASK", "ID", "STATE", "TAGS"):
            table.add_column(column, overflow="fold")
        table.add_column("SIZE", justify="right", no_wrap=True)
        for info in listed:
            table.add_row(
                info.type_id,
                info.short,
                fmt.state_text(info.state, info.reason),
                Text(fmt.tags_text(info.tags)),
                fmt.size(sizes[info.identifier]),
            )
        console.print(table)
    if kept:
        console.print(f"kept {fmt.plural(len(kept), 'job')}:")
        for info, reason in kept:
            console.print(Text(f"  {info.name} ({info.state}): {reason}"))
    total = fmt.size(sum(sizes[info.identifier] for info in listed))
    if yes:
        console.print(f"freed {total}")
    elif doomed:
        console.print(
            f"dry run: nothing deleted. Add --yes to delete "
            f"{fmt.plural(len(doomed), 'job')} ({total})."
        )
    else:
        console.print("nothing to delete")
