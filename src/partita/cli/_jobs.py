"""``partita jobs ...``: list, show, log, path, kill and clean jobs."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from partita.cli import _format as fmt
from partita.cli._app import (
    CliError,
    PartitaGroup,
    UsageFailure,
    echo_json,
    find_workspace,
    get_console,
    job_json,
    job_paths,
    json_option,
    open_index,
    workdir_argument,
    workdir_option,
)
from partita.cli._filters import Filters, filter_options
from partita.cli._params import flatten, load_params, to_plain
from partita.errors import JobLookupError, PartitaError
from partita.launchers import handle_gone, probe_handle
from partita.workspace import (
    FileLock,
    Index,
    JobInfo,
    JobPaths,
    Workspace,
    read_job,
    read_status,
)


@click.group(cls=PartitaGroup)
def jobs() -> None:
    """List, inspect, follow, kill and clean jobs.

    JOB is a unique prefix of a job identifier (3f2a), TYPE/PREFIX
    (demo.train/3f2a) or the path of a job folder.

    \b
    Examples:
      partita jobs list --state failed
      partita jobs show 3f2a
      partita jobs log 3f2a --follow
      partita jobs kill --task demo.train --yes
      partita jobs clean --state failed
    """


def _resolve(index: Index, references: tuple[str, ...] | list[str]) -> list[JobInfo]:
    infos: dict[str, JobInfo] = {}
    for reference in references:
        info = index.job(reference)
        infos.setdefault(info.identifier, info)
    return list(infos.values())


def _jobs_table(infos: list[JobInfo]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("TASK", overflow="fold")
    table.add_column("ID", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("TAGS", overflow="fold")
    table.add_column("DURATION", justify="right", no_wrap=True)
    table.add_column("PROGRESS", overflow="fold")
    for info in infos:
        state = fmt.state_text(info.state, info.reason)
        if info.damage and info.state != "damaged":
            state.append(" damaged", style="bold red")
        table.add_row(
            info.type_id,
            info.short,
            state,
            Text(fmt.tags_text(info.tags)),
            fmt.duration(info.duration),
            fmt.progress_text(info.state, info.progress, info.message),
        )
    return table


def _count_line(infos: list[JobInfo]) -> Text:
    counts = Counter(info.state for info in infos)
    text = Text(f"{fmt.plural(len(infos), 'job')}: ")
    text.append_text(fmt.counts_text(counts))
    return text


# --- list -------------------------------------------------------------------------------


@jobs.command("list")
@workdir_argument
@filter_options
@workdir_option
@json_option
def list_jobs(
    workdir_arg: Path | None, workdir: Path | None, filters: Filters, as_json: bool
) -> None:
    """List jobs, most recent first, with their state, tags and progress.

    \b
    Examples:
      partita jobs list                         every job of ./workdir
      partita jobs list runs/wd --state failed  failed jobs of runs/wd
      partita jobs list -s running -s waiting   running or never launched
      partita jobs list --task train --since 2h
      partita jobs list --experiment sweep --tag lr=0.01 --tag 'model="bert"'
      partita jobs list --json | jq '.[].id'

    Tag values are JSON when they can be: y=1 matches the int 1 but not the
    string "1" (write --tag 'y="1"' for that one).
    """
    workspace = find_workspace(workdir_arg, workdir)
    with open_index(workspace) as index:
        infos = filters.select(index)
    if as_json:
        echo_json([job_json(workspace, info) for info in infos])
        return
    console = get_console()
    if not infos:
        what = "matches these filters" if filters.given else "exists yet"
        console.print(Text(f"no job {what} in {workspace.root}"))
        return
    console.print(_jobs_table(infos))
    console.print(_count_line(infos))
    print_damage(console, infos)


def print_damage(console: Console, infos: list[JobInfo]) -> None:
    """List the jobs whose files cannot be read, and what is wrong with them."""
    damaged = [info for info in infos if info.damage]
    if not damaged:
        return
    console.print(
        Text(
            f"{fmt.plural(len(damaged), 'job')} with files that cannot be read "
            "(repair or delete them; 'partita jobs show JOB' for details):",
            style="bold red",
        )
    )
    for info in damaged:
        for line in fmt.damage_lines(info.name, info.damage):
            console.print(line)


# --- show -------------------------------------------------------------------------------


def _history(paths: JobPaths) -> list[dict[str, Any]]:
    return list(read_status(paths).record.get("history") or [])


def _dependencies(index: Index, workspace: Workspace, info: JobInfo) -> list[dict[str, Any]]:
    """The jobs ``info`` depends on: recorded by its runs, or named in its params.json."""
    found = []
    for identifier in dict.fromkeys([*info.depends, *_referenced_jobs(workspace, info)]):
        try:
            dep = index.job(identifier)
        except JobLookupError:
            found.append({"id": identifier, "type": None, "state": "missing"})
            continue
        found.append({"id": dep.identifier, "type": dep.type_id, "state": dep.state})
    return found


@jobs.command("show")
@click.argument("job")
@workdir_option
@json_option
def show(job: str, workdir: Path | None, as_json: bool) -> None:
    """Everything about one job: state, parameters, tags, history, files.

    \b
    Examples:
      partita jobs show 3f2a
      partita jobs show demo.train/3f2a --json
      partita jobs show workdir/jobs/demo.train/3f2a...   (a job folder)
    """
    workspace = find_workspace(workdir)
    with open_index(workspace) as index:
        info = index.job(job)
        dependencies = _dependencies(index, workspace, info)
    paths = job_paths(workspace, info)
    document = load_params(paths)
    history = _history(paths)
    files = {"folder": str(paths.root), "params": str(paths.params)}
    for stream in (paths.stdout, paths.stderr):
        # Logs that do not exist are not listed (the job never ran), unless it runs now.
        if stream.exists() or info.state == "running":
            files[stream.name] = str(stream)
    if as_json:
        echo_json(
            {
                **job_json(workspace, info),
                "params": to_plain(document) if document else None,
                "history": history,
                "dependencies": dependencies,
                "files": files,
            }
        )
        return
    console = get_console()
    title = Text(f"{info.type_id}/{info.identifier}  ", style="bold")
    title.append_text(fmt.state_text(info.state, info.reason))
    console.print(title)
    rows: list[tuple[str, str | Text]] = []
    if info.detail:
        rows.append(("detail", info.detail))
    for item in info.damage:
        rows.append(("damaged", Text(item, style="red")))
    rows += list(files.items())
    rows.append(("attempt", str(info.attempt) if info.attempt is not None else "-"))
    rows.append(("launched", fmt.when(info.submitted)))
    rows.append(("started", fmt.when(info.started)))
    if info.state != "running":
        rows.append(("ended", fmt.when(info.ended)))
    rows.append(("duration", fmt.duration(info.duration)))
    rows.append(("launcher", fmt.launcher_text(info.launcher)))
    progress = fmt.progress_text(info.state, info.progress, info.message, width=20)
    if progress:
        rows.append(("progress", progress))
    rows.append(("tags", fmt.tags_text(info.tags) or "-"))
    rows.append(("experiments", ", ".join(info.experiments) or "-"))
    for name, value in rows:
        line = Text(f"{name:<12} ", style="bold")
        line.append_text(value if isinstance(value, Text) else Text(value))
        console.print(line)

    console.print(Text("\nparameters", style="bold"))
    if document is None:
        console.print(Text(f"  (no readable params.json in {paths.root})"))
    else:

        def own_job(entry: dict[str, Any]) -> bool:
            type_id, identifier = str(entry.get("type")), str(entry.get("id"))
            return workspace.job(type_id, identifier).root.is_dir()

        leaves = [
            (p, leaf) for p, leaf in flatten(document, stop=own_job).items() if not leaf.container
        ]
        limit = 60
        for path, leaf in leaves[:limit]:
            console.print(Text(f"  {path} = {leaf.text}"))
        if len(leaves) > limit:
            console.print(Text(f"  ... {len(leaves) - limit} more in {paths.params}"))
        if not leaves:
            console.print("  (none)")

    if dependencies:
        console.print(Text("\ndependencies", style="bold"))
        for dep in dependencies:
            line = Text(f"  {dep['type'] or '?'}/{dep['id'][:12]}  ")
            line.append_text(fmt.state_text(dep["state"]))
            console.print(line)

    if history:
        console.print(Text("\nhistory", style="bold"))
        for entry in history:
            line = Text(f"  {fmt.when(entry.get('time'))}  ")
            line.append_text(fmt.state_text(str(entry.get("state")), entry.get("reason")))
            if entry.get("attempt") is not None:
                line.append(f"  (attempt {entry['attempt']})")
            console.print(line)


# --- log --------------------------------------------------------------------------------


def _tail(path: Path, lines: int) -> bytes:
    """The last ``lines`` lines of ``path`` (reads from the end: cheap on big logs)."""
    if lines <= 0:
        return b""
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        position = file.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            step = min(65536, position)
            position -= step
            file.seek(position)
            data = file.read(step) + data
    kept = data.splitlines(keepends=True)[-lines:]
    return b"".join(kept)


def _copy(path: Path, start: int, out: BinaryIO) -> int:
    """Write ``path`` from byte ``start`` to ``out``; return the new position."""
    with open(path, "rb") as file:
        file.seek(start)
        while chunk := file.read(65536):
            out.write(chunk)
            start += len(chunk)
    out.flush()
    return start


@jobs.command("log")
@click.argument("job")
@click.option("--stderr", "use_stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option(
    "--follow", "-f", is_flag=True, help="Keep printing what the job writes, until it ends."
)
@click.option(
    "--lines", "-n", type=click.IntRange(min=0), help="Only the last N lines (then follow)."
)
@workdir_option
def log(job: str, use_stderr: bool, follow: bool, lines: int | None, workdir: Path | None) -> None:
    """Print the output of a job (stdout, or stderr with --stderr).

    \b
    Examples:
      partita jobs log 3f2a                  its stdout
      partita jobs log 3f2a --stderr -n 50   the end of its stderr (tracebacks)
      partita jobs log 3f2a -f               follow it until the job ends (Ctrl-C stops)
    """
    workspace = find_workspace(workdir)
    with open_index(workspace) as index:
        info = index.job(job)
    paths = job_paths(workspace, info)
    path = paths.stderr if use_stderr else paths.stdout
    sys.stdout.flush()
    out: BinaryIO = sys.stdout.buffer
    position = 0
    if path.exists():
        if lines is not None:
            out.write(_tail(path, lines))
            out.flush()
            position = path.stat().st_size
        else:
            position = _copy(path, 0, out)
    elif not follow:
        raise CliError(
            f"{info.name} has no {path.name} yet (it is {info.state}). Use --follow to wait for it."
        )
    if not follow:
        return
    try:
        while True:
            current_status = read_status(paths)
            status = current_status.state
            # Over when an outcome is written, or when its process is gone without one.
            ended = (status is not None and status.final) or handle_gone(
                current_status.record.get("launcher")
            )
            if path.exists():
                current = path.stat().st_size
                if current < position:  # a new attempt started a new file
                    click.echo(f"--- {path.name} restarted ---", err=True)
                    position = 0
                if current > position:
                    position = _copy(path, position, out)
            if ended:
                return
            time.sleep(0.25)
    except KeyboardInterrupt:
        return


# --- path -------------------------------------------------------------------------------


@jobs.command("path")
@click.argument("job")
@workdir_option
def path_command(job: str, workdir: Path | None) -> None:
    """Print the folder of a job.

    \b
    Example:
      cd "$(partita jobs path 3f2a)"
    """
    workspace = find_workspace(workdir)
    with open_index(workspace) as index:
        info = index.job(job)
    click.echo(str(job_paths(workspace, info).root))


# --- kill -------------------------------------------------------------------------------


@jobs.command("kill")
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
        for dependency in [*keeper.depends, *_referenced_jobs(workspace, keeper)]:
            if dependency not in reasons:
                reasons[dependency] = f"a dependency of {keeper.name}, which is kept"
                pending.append(dependency)
    return reasons


def _referenced_jobs(workspace: Workspace, info: JobInfo) -> list[str]:
    """Identifiers of the jobs whose configs appear in ``info``'s params.json."""
    document = load_params(job_paths(workspace, info))
    if document is None:
        return []
    found = []
    for position, entry in enumerate(document["objects"]):
        if position == document["root"] or not isinstance(entry, dict):
            continue
        type_id, identifier = str(entry.get("type", "")), str(entry.get("id", ""))
        if type_id and identifier and workspace.job(type_id, identifier).root.is_dir():
            found.append(identifier)
    return found


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


@jobs.command("clean")
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
