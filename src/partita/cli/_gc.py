"""``partita gc``, ``pin`` and ``unpin``: free disk space by a retention policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from partita.cli import _format as fmt
from partita.cli._app import (
    CliError,
    UsageFailure,
    echo_json,
    find_workspace,
    get_console,
    job_paths,
    json_option,
    open_index,
    workdir_option,
)
from partita.errors import JobLookupError
from partita.launchers import probe_handle
from partita.workspace import (
    Index,
    JobInfo,
    Policy,
    Retention,
    RetentionPlan,
    RunInfo,
    RunPaths,
    Workspace,
    delete_job,
    delete_run,
    delete_unused_shared,
    plan_retention,
    read_retention,
    sweep_leftovers,
    update_retention,
)

__all__ = ["gc", "pin", "unpin"]


def _policy(stored: Policy, keep_last: int | None, keep_days: float | None) -> Policy:
    return Policy(
        stored.keep_last if keep_last is None else keep_last,
        stored.keep_days if keep_days is None else (keep_days or None),
    )


def _policy_text(policy: Policy) -> str:
    text = f"keep the last {fmt.plural(policy.keep_last, 'run')} of each experiment"
    if policy.keep_days:
        text += f", every run of the last {policy.keep_days:g} days"
    return text + ", pinned runs and jobs, and what they depend on"


def _by_task(plan: RetentionPlan, sizes: dict[str, int]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for ident, info in plan.jobs.items():
        row = table.setdefault(info.type_id, {"delete": 0, "bytes": 0, "keep": 0})
        if ident in plan.kept_jobs:
            row["keep"] += 1
        else:
            row["delete"] += 1
            row["bytes"] += sizes.get(ident, 0)
    return dict(sorted(table.items()))


def _doomed(first: RetentionPlan, second: RetentionPlan) -> tuple[list[JobInfo], list[RunInfo]]:
    """What both plans drop: a run or job that became needed in between is kept."""
    jobs = {info.identifier for info in second.doomed_jobs}
    runs = {(r.experiment, r.run) for r in second.doomed_runs}
    return (
        [info for info in first.doomed_jobs if info.identifier in jobs],
        [run for run in first.doomed_runs if (run.experiment, run.run) in runs],
    )


@click.command("gc")
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Keep the last N runs of each experiment (default: stored, else 3).",
)
@click.option(
    "--keep-days",
    type=click.FloatRange(min=0),
    default=None,
    metavar="D",
    help="Keep every run newer than D days; 0: no age rule (default: stored, else 30).",
)
@click.option(
    "--set-default",
    is_flag=True,
    help="Store --keep-last/--keep-days as this work directory's policy; delete nothing.",
)
@click.option("--yes", "-y", is_flag=True, help="Really delete (default: only list).")
@click.option("--verbose", "-v", is_flag=True, help="Also list every kept job and run, and why.")
@json_option
@workdir_option
def gc(
    keep_last: int | None,
    keep_days: float | None,
    set_default: bool,
    yes: bool,
    verbose: bool,
    as_json: bool,
    workdir: Path | None,
) -> None:
    """Delete the jobs and runs that the retention policy no longer keeps.

    Kept: pinned runs and jobs ('partita pin'), the last N runs of each
    experiment, runs newer than D days, and every job these runs submitted,
    with what those jobs depend on (transitively). Whatever runs, or belongs
    to an experiment still running, is never touched; files that cannot be
    read are listed and kept. A dry run unless --yes is given. A deleted job
    simply runs again if an experiment submits it later.

    \b
    Examples:
      partita gc                              what the stored policy would delete
      partita gc --keep-last 1 --keep-days 7  a stricter policy, once
      partita gc --yes                        delete it
      partita gc --keep-last 5 --set-default  store the policy for this work directory
    """
    workspace = find_workspace(workdir)
    console = get_console()
    if set_default:
        if keep_last is None and keep_days is None:
            raise UsageFailure("--set-default needs --keep-last N and/or --keep-days D.")
        if yes:
            raise UsageFailure("--set-default stores the policy only: drop --yes.")

        def store(settings: Retention) -> None:
            settings.policy = _policy(settings.policy, keep_last, keep_days)

        stored = update_retention(workspace, store)
        if as_json:
            echo_json({"policy": stored.policy.to_json()})
        else:
            console.print(f"stored the policy: {_policy_text(stored.policy)}")
        return
    policy = _policy(read_retention(workspace).policy, keep_last, keep_days)
    with open_index(workspace) as index:
        # Deleting rests on what every folder says now: look at all of them, not only at
        # those the change journal names (a file changed by hand is not in it).
        index.refresh(full=True)
        first = plan_retention(index, workspace, policy)
        sizes = {
            info.identifier: fmt.folder_size(job_paths(workspace, info).root)
            for info in first.doomed_jobs
        }
        # Measured before deleting: checkpoints in shared folders are often most of the space.
        shared_sizes = {folder: fmt.folder_size(folder) for folder in first.doomed_shared}
        deleted_jobs: list[JobInfo] = []
        deleted_runs: list[RunInfo] = []
        deleted_shared: list[Path] = []
        kept_late: list[tuple[str, str]] = []
        if yes:
            sweep_leftovers(workspace)
            # Decide again just before deleting: what an experiment started since uses stays.
            index.refresh(full=True)
            jobs, runs = _doomed(first, plan_retention(index, workspace, policy))
            for info in jobs:
                reason = delete_job(workspace, job_paths(workspace, info), probe_handle)
                if reason is None:
                    deleted_jobs.append(info)
                else:
                    kept_late.append((f"job {info.name}", reason))
            for run in runs:
                reason = delete_run(workspace, RunPaths.of(workspace, run.experiment, run.run))
                if reason is None:
                    deleted_runs.append(run)
                else:
                    kept_late.append((f"run {run.experiment}/{run.run}", reason))
            # Shared folders go once no job folder that is left refers to them.
            deleted_shared, busy = delete_unused_shared(workspace, first.doomed_shared)
            for folder, reason in busy:
                kept_late.append((f"shared folder {fmt.shared_name(workspace, folder)}", reason))
            index.refresh()
    jobs_listed = deleted_jobs if yes else first.doomed_jobs
    runs_listed = deleted_runs if yes else first.doomed_runs
    shared_listed = deleted_shared if yes else first.doomed_shared
    freed = sum(sizes.get(info.identifier, 0) for info in jobs_listed)
    shared_bytes = sum(shared_sizes.get(folder, 0) for folder in shared_listed)
    if as_json:
        echo_json(
            {
                "policy": policy.to_json(),
                "deleted": yes,
                "jobs": [
                    {
                        "id": info.identifier,
                        "type": info.type_id,
                        "state": info.state,
                        "bytes": sizes.get(info.identifier, 0),
                    }
                    for info in jobs_listed
                ],
                "runs": [f"{run.experiment}/{run.run}" for run in runs_listed],
                "shared": [fmt.shared_name(workspace, folder) for folder in shared_listed],
                "shared_bytes": shared_bytes,
                "bytes": freed,
                "by_task": _by_task(first, sizes),
                "kept_jobs": first.kept_jobs,
                "kept_runs": {f"{e}/{r}": why for (e, r), why in first.kept_runs.items()},
                "kept_now": [{"what": what, "reason": why} for what, why in kept_late],
                "damage": first.damage,
                "pins_missing": first.pins_missing,
            }
        )
        return
    shared_rows = [
        (fmt.shared_name(workspace, folder), shared_sizes.get(folder, 0))
        for folder in shared_listed
    ]
    _print(console, first, sizes, yes, jobs_listed, runs_listed, shared_rows, kept_late, verbose)


def _print(
    console: Console,
    plan: RetentionPlan,
    sizes: dict[str, int],
    yes: bool,
    jobs: list[JobInfo],
    runs: list[RunInfo],
    shared: list[tuple[str, int]],
    kept_late: list[tuple[str, str]],
    verbose: bool,
) -> None:
    console.print(Text(f"policy: {_policy_text(plan.policy)}"))
    by_task = _by_task(plan, sizes)
    if by_task:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column("TASK", overflow="fold")
        table.add_column("DELETED" if yes else "DELETE", justify="right")
        table.add_column("SIZE", justify="right", no_wrap=True)
        table.add_column("KEEP", justify="right")
        done = {info.identifier for info in jobs}
        for task, row in by_task.items():
            gone = [i for i, info in plan.jobs.items() if info.type_id == task and i in done]
            table.add_row(
                task,
                str(len(gone)),
                fmt.size(sum(sizes.get(i, 0) for i in gone)),
                str(row["keep"]),
            )
        console.print(table)
    if runs:
        console.print(f"{'deleted' if yes else 'would delete'} {fmt.plural(len(runs), 'run')}:")
        for run in runs:
            console.print(Text(f"  {run.experiment}/{run.run}  {fmt.when(run.started)}"))
    if shared:
        console.print(
            f"{'deleted' if yes else 'would delete'} "
            f"{fmt.plural(len(shared), 'shared folder')} no job refers to:"
        )
        for name, nbytes in shared:
            console.print(Text(f"  {name}  {fmt.size(nbytes)}"))
    if verbose:
        for (experiment, run_id), why in plan.kept_runs.items():
            console.print(Text(f"kept run {experiment}/{run_id}: {why}"))
        for ident, why in plan.kept_jobs.items():
            info = plan.jobs.get(ident)
            if info is not None:
                console.print(Text(f"kept job {info.name}: {why}"))
    for what, why in kept_late:
        console.print(Text(f"kept {what}: {why}"))
    if plan.damage:
        console.print(f"skipped {fmt.plural(len(plan.damage), 'damaged item')} (kept):")
        for line in plan.damage:
            console.print(Text(f"  {line}"))
    if plan.pins_missing:
        console.print(
            Text(f"pins of what no longer exists: {', '.join(plan.pins_missing)} ('partita unpin')")
        )
    total = fmt.size(
        sum(sizes.get(info.identifier, 0) for info in jobs) + sum(n for _, n in shared)
    )
    what = f"{fmt.plural(len(jobs), 'job')} and {fmt.plural(len(runs), 'run')}"
    if shared:
        what = (
            f"{fmt.plural(len(jobs), 'job')}, {fmt.plural(len(runs), 'run')} "
            f"and {fmt.plural(len(shared), 'shared folder')}"
        )
    if yes:
        console.print(f"deleted {what}, freed {total}")
    elif jobs or runs or shared:
        console.print(f"dry run: nothing deleted. Add --yes to delete {what} ({total}).")
    else:
        console.print("nothing to delete")


# --- pins -----------------------------------------------------------------------------------


def _find_run(index: Index, reference: str) -> RunInfo | None:
    """The run named ``EXPERIMENT``, ``EXPERIMENT/latest`` or ``EXPERIMENT/RUN-PREFIX``."""
    experiment, _, run = reference.partition("/")
    runs = [r for r in index.runs(experiment) if not r.dry_run or run]
    if not runs:
        return None
    if run in ("", "latest"):
        return runs[0]
    matches = [r for r in runs if r.run.startswith(run)]
    if len(matches) > 1:
        raise CliError(
            f"{reference!r} matches several runs ({', '.join(r.run for r in matches[:5])}). "
            "Give more characters of the run id."
        )
    if not matches:
        raise CliError(
            f"experiment '{experiment}' has no run {run!r}. "
            f"List its runs with 'partita experiments show {experiment}'."
        )
    return matches[0]


def _resolve(index: Index, reference: str) -> tuple[str, str]:
    """``("run", "experiment/run")`` or ``("job", identifier)`` for a reference."""
    run = _find_run(index, reference)
    if run is not None:
        return "run", f"{run.experiment}/{run.run}"
    try:
        return "job", index.job(reference).identifier
    except JobLookupError as exc:
        raise CliError(
            f"{reference!r} names no run (EXPERIMENT, EXPERIMENT/RUN) and no job: {exc}"
        ) from None


def _pins_json(settings: Retention) -> dict[str, Any]:
    return {"runs": settings.pinned_runs, "jobs": settings.pinned_jobs}


def _pin_command(references: tuple[str, ...], workdir: Path | None, *, add: bool) -> Retention:
    workspace = find_workspace(workdir)
    targets: list[tuple[str, str]] = []
    with open_index(workspace) as index:
        current = read_retention(workspace)
        for reference in references:
            if not add and reference in current.pinned_runs:
                targets.append(("run", reference))  # a pin of a run that is gone
            elif not add and reference in current.pinned_jobs:
                targets.append(("job", reference))
            else:
                targets.append(_resolve(index, reference))

    def change(settings: Retention) -> None:
        for kind, name in targets:
            pins = settings.pinned_runs if kind == "run" else settings.pinned_jobs
            if add and name not in pins:
                pins.append(name)
            elif not add and name in pins:
                pins.remove(name)

    return update_retention(workspace, change) if targets else current


def _print_pins(console: Console, settings: Retention, workspace: Workspace) -> None:
    if not settings.pinned_runs and not settings.pinned_jobs:
        console.print("nothing is pinned")
        return
    for name in settings.pinned_runs:
        console.print(Text(f"run {name}"))
    with open_index(workspace) as index:
        for ident in settings.pinned_jobs:
            try:
                info = index.job(ident)
                console.print(Text(f"job {info.name}  {fmt.tags_text(info.tags)}"))
            except JobLookupError:
                console.print(Text(f"job {ident[:12]} (gone)"))


@click.command("pin")
@click.argument("references", nargs=-1, metavar="[RUN|JOB]...")
@json_option
@workdir_option
def pin(references: tuple[str, ...], as_json: bool, workdir: Path | None) -> None:
    """Keep a run (and its jobs) or a job from 'partita gc' and 'jobs clean'.

    RUN is EXPERIMENT (its latest run), EXPERIMENT/latest or EXPERIMENT/RUN
    (a unique prefix of the run id); JOB is a job reference. Without
    arguments, lists the pins.

    \b
    Examples:
      partita pin sweep                      the latest run of 'sweep'
      partita pin sweep/20260301-101500      one run
      partita pin 3f2a                       one job (and what it depends on)
    """
    settings = _pin_command(references, workdir, add=True)
    if as_json:
        echo_json(_pins_json(settings))
        return
    _print_pins(get_console(), settings, find_workspace(workdir))


@click.command("unpin")
@click.argument("references", nargs=-1, required=True, metavar="RUN|JOB...")
@json_option
@workdir_option
def unpin(references: tuple[str, ...], as_json: bool, workdir: Path | None) -> None:
    """Remove pins ('partita pin' lists them).

    \b
    Example:
      partita unpin sweep/20260301-101500
    """
    settings = _pin_command(references, workdir, add=False)
    if as_json:
        echo_json(_pins_json(settings))
        return
    _print_pins(get_console(), settings, find_workspace(workdir))
