"""``partita jobs kill`` and ``clean``: stop running jobs, delete job folders."""

from __future__ import annotations

import dataclasses
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
    echo_json,
    find_workspace,
    get_console,
    job_paths,
    json_option,
    open_index,
    workdir_option,
)
from partita.cli._filters import Filters, filter_options
from partita.errors import PartitaError
from partita.launchers import probe_handle
from partita.workspace import (
    Index,
    JobInfo,
    Workspace,
    delete_job,
    delete_unused_shared,
    protect_jobs,
    read_job,
    shared_of,
    unused_shared,
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


@click.command("clean")
@click.argument("references", nargs=-1, metavar="[JOB]...")
@filter_options
@click.option("--yes", "-y", is_flag=True, help="Really delete (default: only list).")
@click.option(
    "--include-referenced",
    is_flag=True,
    help="Also delete jobs used by the latest run of an experiment.",
)
@json_option
@workdir_option
def clean(
    references: tuple[str, ...],
    filters: Filters,
    yes: bool,
    include_referenced: bool,
    as_json: bool,
    workdir: Path | None,
) -> None:
    """Delete job folders (a dry run unless --yes is given).

    Selects jobs like 'jobs list' (every job without filters), then keeps
    running jobs, jobs of runs still in progress, pinned jobs and runs
    ('partita pin'), jobs used by the latest run of any experiment (unless
    --include-referenced) and what kept jobs depend on; a transient job only
    while a kept job that is not done needs it (the same rules as 'partita
    gc', which deletes by a retention policy instead). The shared folders
    that only the deleted jobs referred to go too. Prints what would be deleted and how much
    space it takes, and what is kept and why.

    \b
    Examples:
      partita jobs clean --state failed             what would go
      partita jobs clean --state failed --yes       delete them
      partita jobs clean --task demo.train --since 30d
      partita jobs clean --yes                      every job no experiment uses now
      partita jobs clean --state failed --json      the same, as JSON
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
        protected = protect_jobs(index, workspace, everything, latest=not include_referenced)
    console = get_console()
    doomed = [info for info in selected if info.identifier not in protected]
    kept = [(info, protected[info.identifier]) for info in selected if info.identifier in protected]
    sizes = {info.identifier: fmt.folder_size(job_paths(workspace, info).root) for info in doomed}
    if not selected and not as_json:
        console.print("no job matches these filters")
        return
    # The shared folders that only the doomed jobs refer to go with them (as in 'gc').
    theirs = shared_of(workspace, [job_paths(workspace, info) for info in doomed])
    damage: list[str] = []
    shared = unused_shared(workspace, [info.identifier for info in doomed], damage, among=theirs)
    # Measured before deleting: checkpoints in shared folders are often most of the space.
    shared_sizes = {folder: fmt.folder_size(folder) for folder in shared}
    deleted: list[JobInfo] = []
    shared_kept: list[tuple[Path, str]] = []
    if yes:
        for info in doomed:
            reason = delete_job(workspace, job_paths(workspace, info), probe_handle)
            if reason is None:
                deleted.append(info)
            else:
                kept.append((info, reason))
        shared, shared_kept = delete_unused_shared(workspace, shared) if shared else ([], [])
    listed = deleted if yes else doomed
    shared_bytes = sum(shared_sizes.get(folder, 0) for folder in shared)
    if as_json:
        echo_json(
            {
                "deleted": yes,
                "jobs": [
                    {
                        "id": info.identifier,
                        "type": info.type_id,
                        "state": info.state,
                        "tags": info.tags,
                        "bytes": sizes[info.identifier],
                    }
                    for info in listed
                ],
                "shared": [fmt.shared_name(workspace, folder) for folder in shared],
                "shared_bytes": shared_bytes,
                "bytes": sum(sizes[info.identifier] for info in listed),
                "kept": [
                    {
                        "id": info.identifier,
                        "type": info.type_id,
                        "state": info.state,
                        "reason": reason,
                    }
                    for info, reason in kept
                ],
                "kept_shared": [
                    {"shared": fmt.shared_name(workspace, folder), "reason": reason}
                    for folder, reason in shared_kept
                ],
                "damage": damage,
            }
        )
        return
    if yes and deleted:
        console.print(f"deleted {fmt.plural(len(deleted), 'job')}:")
    elif not yes and doomed:
        console.print(f"would delete {fmt.plural(len(doomed), 'job')}:")
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
    if shared:
        console.print(
            f"{'deleted' if yes else 'would delete'} "
            f"{fmt.plural(len(shared), 'shared folder')} no other job refers to:"
        )
        for folder in shared:
            nbytes = fmt.size(shared_sizes.get(folder, 0))
            console.print(Text(f"  {fmt.shared_name(workspace, folder)}  {nbytes}"))
    if kept:
        console.print(f"kept {fmt.plural(len(kept), 'job')}:")
        for info, reason in kept:
            console.print(Text(f"  {info.name} ({info.state}): {reason}"))
    for folder, reason in shared_kept:
        console.print(Text(f"kept shared folder {fmt.shared_name(workspace, folder)}: {reason}"))
    for line in damage:
        console.print(Text(f"skipped: {line}"))
    total = fmt.size(sum(sizes[info.identifier] for info in listed) + shared_bytes)
    if yes:
        console.print(f"freed {total}")
    elif doomed:
        what = fmt.plural(len(doomed), "job")
        if shared:
            what += f" and {fmt.plural(len(shared), 'shared folder')}"
        console.print(f"dry run: nothing deleted. Add --yes to delete {what} ({total}).")
    else:
        console.print("nothing to delete")
