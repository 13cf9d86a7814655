"""``partita jobs list``, ``show`` and ``path``: what the index knows about jobs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from partita.cli import _format as fmt
from partita.cli._app import (
    echo_json,
    find_workspace,
    get_console,
    job_json,
    job_paths,
    json_option,
    open_index,
    stream_json,
    workdir_argument,
    workdir_option,
)
from partita.cli._filters import Filters, filter_options
from partita.cli._params import flatten, load_params, to_plain
from partita.cli._results import code_change, environment_rows
from partita.errors import JobLookupError
from partita.workspace import (
    Index,
    JobInfo,
    JobPaths,
    Workspace,
    describe_migration,
    read_job_environment,
    read_migration,
    read_outputs,
    read_results,
    read_shared_refs,
    read_status,
)


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
        if info.transient:
            state.append(" transient", style="dim")
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


@click.command("list")
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
        if as_json:
            # As echo_json would print the list, a job at a time: the first come at once.
            stream_json(job_json(workspace, info) for info in filters.iterate(index))
            return
        infos = filters.select(index)
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
    named = _param_types(workspace, info)
    for identifier in dict.fromkeys([*info.depends, *referenced_jobs(workspace, info)]):
        try:
            dep = index.job(identifier)
        except JobLookupError:
            # Its folder is gone (gc, jobs clean, a transient input): params.json still
            # says which task it was.
            found.append({"id": identifier, "type": named.get(identifier), "state": "missing"})
            continue
        found.append({"id": dep.identifier, "type": dep.type_id, "state": dep.state})
    return found


@click.command("show")
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
    reported = read_results(paths)
    outputs = _outputs(paths)
    if outputs:
        files[paths.outputs.name] = str(paths.outputs)
    code = code_change(paths)
    migration = read_migration(paths)
    if as_json:
        environment = read_job_environment(paths)
        echo_json(
            {
                **job_json(workspace, info),
                "migration": migration or None,
                "params": to_plain(document) if document else None,
                "results": reported,
                "outputs": outputs,
                "environment": environment,
                "code": code,
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
    if info.transient:
        rows.append(("transient", "yes: 'partita gc' removes it once its dependents are done"))
    shared = read_shared_refs(paths)
    if shared:
        rows.append(("shared", ", ".join(shared)))
    rows += environment_rows(paths)
    if code is not None and code["message"] and (code["class_changed"] or code["missing"]):
        rows.append(("code", Text(code["message"], style="yellow")))
    for note in describe_migration(migration):
        rows.append(("migration", Text(note, style="yellow")))
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

    if reported["values"] or reported["damage"]:
        console.print(Text("\nresults", style="bold"))
        for name, value in reported["values"].items():
            points = len(reported["series"].get(name, ()))
            series = f"  ({points} points)" if points > 1 else ""
            console.print(Text(f"  {name} = {value!r}{series}"))
        for item in reported["damage"]:
            console.print(Text(f"  damaged: {item}", style="red"))

    if outputs:
        console.print(Text("\noutputs", style="bold"))
        for output in outputs[-20:]:
            line = Text(f"  {fmt.when(output['time'])}  {output['name']} #{output['seq']}  ")
            line.append(_output_text(output["value"]), style="dim")
            console.print(line)
        if len(outputs) > 20:
            console.print(Text(f"  ... {len(outputs) - 20} earlier in {paths.outputs}"))

    if dependencies:
        console.print(Text("\ndependencies", style="bold"))
        for dep in dependencies:
            line = Text(f"  {dep['type'] or '?'}/{dep['id'][:12]}  ")
            line.append_text(fmt.state_text(dep["state"]))
            if dep["state"] == "missing":
                line.append(" (its folder was deleted; submitted again, it runs again)")
            console.print(line)

    if history:
        console.print(Text("\nhistory", style="bold"))
        for entry in history:
            line = Text(f"  {fmt.when(entry.get('time'))}  ")
            line.append_text(fmt.state_text(str(entry.get("state")), entry.get("reason")))
            if entry.get("attempt") is not None:
                line.append(f"  (attempt {entry['attempt']})")
            console.print(line)


def _param_types(workspace: Workspace, info: JobInfo) -> dict[str, str]:
    """The type id of each config ``info``'s params.json holds, by identifier."""
    document = load_params(job_paths(workspace, info))
    if document is None:
        return {}
    out = {}
    for entry in document["objects"]:
        if isinstance(entry, dict) and entry.get("type") and entry.get("id"):
            out[str(entry["id"])] = str(entry["type"])
    return out


def _outputs(paths: JobPaths) -> list[dict[str, Any]]:
    """What the job published (``partita.publish``), as plain JSON, each once, in order."""
    found = []
    for entry in read_outputs(paths, once=True):
        document = entry.get("config")
        try:
            value = to_plain(document) if isinstance(document, dict) else entry.get("value")
        except (KeyError, TypeError, IndexError):
            value = None
        found.append(
            {
                "name": entry["name"],
                "seq": entry.get("seq"),
                "attempt": entry.get("attempt"),
                "time": entry.get("time"),
                "value": value,
            }
        )
    return found


def _output_text(value: Any) -> str:
    if isinstance(value, dict):
        kind = str(value.get("$type", ""))
        fields = ", ".join(f"{k}={v!r}" for k, v in value.items() if not k.startswith("$"))
        text = f"{kind}({fields})"
    else:
        text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def referenced_jobs(workspace: Workspace, info: JobInfo) -> list[str]:
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


# --- path -------------------------------------------------------------------------------


@click.command("path")
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
