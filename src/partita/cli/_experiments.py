"""``partita experiments ...`` and ``partita status``: experiments, their runs, a summary."""

from __future__ import annotations

import dataclasses
import time
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
    PartitaGroup,
    echo_json,
    find_workspace,
    get_console,
    job_json,
    json_option,
    open_index,
    workdir_argument,
    workdir_option,
)
from partita.cli._results import run_environment_lines
from partita.launchers import settle_jobs
from partita.workspace import (
    Index,
    JobInfo,
    RunInfo,
    RunPaths,
    Workspace,
    read_environment,
    read_services,
)


@click.group(cls=PartitaGroup)
def experiments() -> None:
    """List experiments and inspect their runs.

    \b
    Examples:
      partita experiments list
      partita experiments show helloworld
      partita experiments show helloworld --json
    """


def _latest_jobs(index: Index, run: RunInfo) -> list[tuple[str, JobInfo | None]]:
    """``(identifier, info)`` of every job the run submitted (info ``None``: deleted).

    A job that never started (its dependency failed, or the run was interrupted) has no
    state on disk; for a run that has ended, the state the run recorded for it is shown.
    """
    known = {info.identifier: info for info in index.jobs(experiment=run.experiment)}
    recorded: dict[str, str] = {}
    if run.status != "running":
        recorded = index.recorded_states(run.experiment, run.run)
    out: list[tuple[str, JobInfo | None]] = []
    for identifier in index.run_jobs(run.experiment, run.run):
        info = known.get(identifier)
        final = recorded.get(identifier)
        if info is not None and info.state == "waiting" and final in ("failed", "cancelled"):
            info = dataclasses.replace(info, state=final, reason=info.reason or "not run")
        out.append((identifier, info))
    return out


def _latest_real(runs: list[RunInfo]) -> RunInfo:
    """The most recent run that was not a dry run (a dry run if there are only those)."""
    return next((run for run in runs if not run.dry_run), runs[0])


def _status_text(run: dict[str, Any] | RunInfo) -> Text:
    status, dry = (
        (run.status, run.dry_run) if isinstance(run, RunInfo) else (run["status"], run["dry_run"])
    )
    text = fmt.state_text(status or "?")
    if dry:
        text.append(" (dry run)")
    return text


def _run_states(index: Index, run: RunInfo) -> dict[str, int]:
    """Jobs of ``run`` by state, counted as :func:`_latest_jobs` reports them (in SQL)."""
    counts, waiting = index.run_counts(run.experiment, run.run)
    if waiting and run.status != "running":
        recorded = index.recorded_states(run.experiment, run.run)
        for identifier in waiting:
            final = recorded.get(identifier)
            if final in ("failed", "cancelled"):
                counts["waiting"] -= 1
                counts[final] = counts.get(final, 0) + 1
    counts = {state: n for state, n in counts.items() if n}
    return {state: counts[state] for state in fmt.ordered_states(counts)}


def _summaries(index: Index) -> list[dict[str, Any]]:
    """One entry per experiment: run count and its latest run with job counts."""
    runs: dict[str, list[RunInfo]] = {}
    for run in index.runs():
        runs.setdefault(run.experiment, []).append(run)
    out = []
    for name in sorted(runs):
        latest = _latest_real(runs[name])
        out.append(
            {
                "name": name,
                "runs": len(runs[name]),
                "latest": {
                    **latest.to_json(),
                    "states": _run_states(index, latest),
                },
            }
        )
    return out


def _experiments_table(summaries: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("EXPERIMENT", overflow="fold")
    table.add_column("RUNS", justify="right")
    table.add_column("LATEST RUN", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("STARTED", no_wrap=True)
    table.add_column("JOBS", overflow="fold")
    for entry in summaries:
        latest = entry["latest"]
        table.add_row(
            Text(entry["name"]),
            str(entry["runs"]),
            latest["run"],
            _status_text(latest),
            fmt.ago(latest["started"]),
            fmt.counts_text(latest["states"]),
        )
    return table


@experiments.command("list")
@workdir_argument
@workdir_option
@json_option
def list_experiments(workdir_arg: Path | None, workdir: Path | None, as_json: bool) -> None:
    """List experiments: runs, latest run status and its jobs by state.

    \b
    Examples:
      partita experiments list
      partita experiments list path/to/workdir --json
    """
    workspace = find_workspace(workdir_arg, workdir)
    with open_index(workspace) as index:
        summaries = _summaries(index)
        runs_damage = [run for run in index.runs() if run.damage]
    if as_json:
        echo_json(summaries)
        return
    console = get_console()
    if not summaries:
        console.print(Text(f"no experiment has run in {workspace.root} yet"))
        return
    console.print(_experiments_table(summaries))
    print_run_damage(console, runs_damage)


def print_run_damage(console: Console, runs: list[RunInfo]) -> None:
    """List the runs whose records cannot be read, and what is wrong with them."""
    if not runs:
        return
    console.print(
        Text(f"{fmt.plural(len(runs), 'run')} with records that cannot be read:", style="bold red")
    )
    for run in runs:
        for line in fmt.damage_lines(f"{run.experiment}/{run.run}", run.damage):
            console.print(line)


@experiments.command("show")
@click.argument("name")
@workdir_option
@json_option
@click.option(
    "--config",
    "show_config",
    is_flag=True,
    help="How a run was configured (experiment_main): NAME is a run id, NAME/RUN, or an "
    "experiment for its latest run.",
)
def show_experiment(name: str, workdir: Path | None, as_json: bool, show_config: bool) -> None:
    """Runs of one experiment, and the jobs of its latest run by state.

    \b
    Examples:
      partita experiments show helloworld
      partita experiments show helloworld --json | jq '.jobs.failed'
      partita experiments show 20240501-141203-3f2a1c --config
    """
    workspace = find_workspace(workdir)
    if show_config:
        from partita.cli._run import print_run_config

        print_run_config(workspace, name, as_json)
        return
    with open_index(workspace) as index:
        runs = index.runs(name)
        if not runs:
            names = sorted({run.experiment for run in index.runs()})
            known = f" Experiments: {', '.join(names)}." if names else " No experiment ran yet."
            raise CliError(f"no experiment named {name!r} in {workspace.root}.{known}")
        latest = _latest_real(runs)
        jobs = _latest_jobs(index, latest)
    grouped: dict[str, list[tuple[str, JobInfo | None]]] = {}
    for identifier, info in jobs:
        grouped.setdefault(info.state if info else "missing", []).append((identifier, info))
    order = fmt.ordered_states(grouped)
    if as_json:
        echo_json(
            {
                "name": name,
                "runs": [run.to_json() for run in runs],
                "latest": latest.run,
                "environment": read_environment(RunPaths.of(workspace, name, latest.run)),
                "jobs": {
                    state: [
                        job_json(workspace, info)
                        if info
                        else {"id": identifier, "state": "missing"}
                        for identifier, info in grouped[state]
                    ]
                    for state in order
                },
            }
        )
        return
    console = get_console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title_justify="left")
    for column in ("RUN", "STATUS", "STARTED", "DURATION", "HOST", "PID"):
        table.add_column(column, no_wrap=True)
    table.add_column("JOBS", justify="right")
    for run in runs:
        end = run.ended
        if end is None and run.status == "running":
            end = time.time()
        took = end - run.started if end is not None and run.started is not None else None
        table.add_row(
            run.run,
            _status_text(run),
            fmt.when(run.started),
            fmt.duration(took),
            run.host or "-",
            str(run.pid) if run.pid is not None else "-",
            str(run.jobs),
        )
    console.print(Text(f"experiment {name}: {fmt.plural(len(runs), 'run')}", style="bold"))
    console.print(table)
    print_run_damage(console, [run for run in runs if run.damage])
    environment = read_environment(RunPaths.of(workspace, name, latest.run))
    if environment:
        console.print(Text(f"environment of the latest run ({latest.run})", style="bold"))
        for entry in run_environment_lines(environment):
            console.print(Text(f"  {entry}"))
    console.print(Text(f"jobs of the latest run ({latest.run})", style="bold"))
    for state in order:
        header = Text("  ")
        header.append_text(fmt.state_text(state))
        header.append(f" ({len(grouped[state])})")
        console.print(header)
        for identifier, info in grouped[state]:
            if info is None:
                console.print(Text(f"    {identifier[:12]} (its folder was deleted)"))
                continue
            line = Text(f"    {info.name}")
            if info.reason and info.state != "done":
                line.append(f"  {info.reason}")
            if info.tags:
                line.append(f"  {fmt.tags_text(info.tags)}")
            if info.damage:
                line.append("  damaged: " + "; ".join(info.damage), style="red")
            if info.state == "running":
                line.append("  ")
                line.append_text(fmt.progress_text(info.state, info.progress, info.message))
            console.print(line)


# --- status -----------------------------------------------------------------------------


def running_services(workspace: Workspace, runs: list[RunInfo]) -> list[dict[str, Any]]:
    """The services running now, of the runs still running (``xp.add_service``)."""
    found = []
    for run in runs:
        if run.status != "running" or run.dry_run:
            continue
        for entry in read_services(RunPaths.of(workspace, run.experiment, run.run)):
            if entry.get("state") == "running":
                found.append(
                    {
                        "experiment": run.experiment,
                        "run": run.run,
                        "name": entry["name"],
                        "url": entry.get("url"),
                        "pid": entry.get("pid"),
                        "host": entry.get("host"),
                        "kind": entry.get("kind"),
                        "started": entry.get("started"),
                    }
                )
    return found


def status_command(workdir_arg: Path | None, workdir: Path | None, as_json: bool) -> None:
    """The body of ``partita status`` (registered in ``partita.cli``)."""
    workspace = find_workspace(workdir_arg, workdir)
    settled: list[str] = []
    with open_index(workspace) as index:
        running = index.jobs(states=["running"])
        # Jobs left on a cluster by a detached run: their launchers tell how they ended.
        settled = settle_jobs(running)
        if settled:
            index.refresh()
            running = index.jobs(states=["running"])
        summaries = _summaries(index)
        counts = index.counts()
        damaged = index.jobs(damaged=True)
        all_runs = index.runs()
        runs_damage = [run for run in all_runs if run.damage]
    services = running_services(workspace, all_runs)
    for change in settled:
        click.echo(f"settled from the launcher: {change}", err=True)
    ordered = {state: counts[state] for state in fmt.ordered_states(counts)}
    total = sum(counts.values())
    if as_json:
        echo_json(
            {
                "workdir": str(workspace.root),
                "experiments": summaries,
                "jobs": ordered,
                "running": [job_json(workspace, info) for info in running],
                "services": services,
                "damaged": [
                    {"id": info.identifier, "type": info.type_id, "damage": info.damage}
                    for info in damaged
                ],
            }
        )
        return
    console = get_console()
    console.print(Text(f"work directory {workspace.root}", style="bold"))
    if summaries:
        console.print(_experiments_table(summaries))
    else:
        console.print("no experiment has run here yet")
    line = Text(f"{fmt.plural(total, 'job')}: ")
    line.append_text(fmt.counts_text(ordered) if total else Text("none"))
    console.print(line)
    if damaged:
        console.print(
            Text(
                f"{fmt.plural(len(damaged), 'job')} with files that cannot be read: "
                "'partita jobs list' shows what is wrong",
                style="bold red",
            )
        )
    print_run_damage(console, runs_damage)
    if services:
        console.print(Text("services", style="bold"))
        grid = Table.grid(padding=(0, 2))
        for _ in range(3):
            grid.add_column(no_wrap=True)
        for service in services:
            grid.add_row(
                Text(service["name"]),
                Text(service.get("url") or "-", style="cyan"),
                Text(f"{service['experiment']} · run {service['run']}", style="dim"),
            )
        console.print(grid)
    if running:
        console.print(Text("running", style="bold"))
        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column(no_wrap=False)
        for info in running:
            table.add_row(
                Text(info.name),
                fmt.duration(info.duration),
                fmt.progress_text(info.state, info.progress, info.message, width=20),
                Text(fmt.tags_text(info.tags)),
            )
        console.print(table)
