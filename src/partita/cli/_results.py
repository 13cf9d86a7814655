"""``partita results`` (the results table) and ``partita explain`` (why a job exists).

Also the pieces ``partita jobs show`` adds about a job: what it reported, where it ran and
what it cost (its environment record), and whether its task's code changed since it ran.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from partita._jobenv import fingerprint_file
from partita.analysis import ResultRows, draw_plot, plot_data, plot_output, result_rows
from partita.analysis._table import STATES as RESULT_STATES
from partita.cli import _format as fmt
from partita.cli._app import (
    CliError,
    UsageFailure,
    echo_json,
    find_workspace,
    get_console,
    job_json,
    job_paths,
    json_option,
    open_index,
    workdir_option,
)
from partita.cli._filters import parse_tag
from partita.cli._params import Change, diff, load_params
from partita.errors import PartitaError
from partita.workspace import (
    JobInfo,
    JobPaths,
    Workspace,
    describe_migration,
    read_job_environment,
    read_json,
    read_migration,
    read_status,
)

__all__ = [
    "code_change",
    "environment_rows",
    "explain",
    "results_command",
    "run_environment_lines",
]


# --- the table ----------------------------------------------------------------------------


def _cell(value: Any, *, exact: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if exact else f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


@click.command("results")
@workdir_option
@click.option("--experiment", "-e", help="Jobs submitted by a run of this experiment.")
@click.option("--task", "-t", help="Jobs of this task (a type id, or part of one).")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="NAME=VALUE",
    help="Jobs with this tag (repeatable); VALUE is JSON when it can be (lr=0.1 is a float).",
)
@click.option(
    "--state",
    "-s",
    "states",
    multiple=True,
    default=("done",),
    show_default=True,
    type=click.Choice([*RESULT_STATES, "all"]),
    help="Jobs in this state (repeatable); 'all' for every state.",
)
@click.option("--varying", is_flag=True, help="Leave out parameters that are the same everywhere.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (every column, full identifiers).")
@json_option
@click.option(
    "--plot",
    "metric",
    metavar="METRIC",
    help="Draw this result (a column) into an image instead of printing the table.",
)
@click.option(
    "--by",
    metavar="PARAM",
    help="With --plot: the x axis, a parameter or tag column (without: by step).",
)
@click.option(
    "--hue",
    "hues",
    multiple=True,
    metavar="PARAM",
    help="With --plot: one line per value of this column (repeatable: per combination).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --plot: the image file, .png, .svg or .pdf [default: ./METRIC.png].",
)
@click.option("--logx", is_flag=True, help="With --plot: a log scale on the x axis.")
@click.option("--logy", is_flag=True, help="With --plot: a log scale on the y axis.")
def results_command(
    workdir: Path | None,
    experiment: str | None,
    task: str | None,
    tags: tuple[str, ...],
    states: tuple[str, ...],
    varying: bool,
    as_csv: bool,
    as_json: bool,
    metric: str | None,
    by: str | None,
    hues: tuple[str, ...],
    output: Path | None,
    logx: bool,
    logy: bool,
) -> None:
    """The results table: one row per job, its parameters, tags and reported results.

    Parameters follow the tasks that produced a job's inputs (an Evaluate row has
    model.lr and model.split.seed); the columns that vary come first. The same
    table is partita.results() in Python (a pandas DataFrame).

    --plot METRIC --by PARAM draws the metric's last value against a parameter
    into an image (PNG, SVG or PDF, from the suffix of --output) and prints its
    path: the jobs sharing a value (seeds) give the mean and a min-max band;
    --hue PARAM draws one line per value. Without --by, the metric's series
    (reported once per epoch, say) against its step, a curve per job or per hue
    value. Needs matplotlib (pip install 'partita[analysis]').

    \b
    Examples:
      partita results --task train
      partita results -e sweep --tag lr=0.1 --varying
      partita results --state all --csv > results.csv
      partita results --json
      partita results -t eval --plot accuracy --by lr --hue layers
      partita results -t train --plot loss --hue lr -o loss.svg
    """
    if as_csv and as_json:
        raise click.UsageError("give --csv or --json, not both.")
    workspace = find_workspace(workdir)
    if metric is None:
        given = [
            name for name, value in (("--by", by), ("--hue", hues), ("--output", output)) if value
        ]
        given += [name for name, flag in (("--logx", logx), ("--logy", logy)) if flag]
        if given:
            raise click.UsageError(f"{given[0]} goes with --plot METRIC; give --plot too.")
    else:
        if as_csv or as_json:
            raise click.UsageError("--plot draws an image: give --plot or --csv/--json.")
        try:
            path = plot_output(output, metric)  # a wrong suffix fails before reading jobs
            data = plot_data(
                workspace.root,
                metric,
                by=by,
                hue=hues,
                experiment=experiment,
                task=task,
                tags=dict(parse_tag(text) for text in tags),
                state=list(states) or None,
            )
            for note in data.skipped:
                click.echo(f"note: left out: {note}", err=True)
            draw_plot(data, path, log_x=logx, log_y=logy)
        except PartitaError as exc:
            raise UsageFailure(str(exc)) from None
        click.echo(str(path))
        return
    table = result_rows(
        workspace.root,
        experiment=experiment,
        task=task,
        tags=dict(parse_tag(text) for text in tags),
        state=list(states) or None,
        varying_only=varying,
    )
    for item in table.damage:
        click.echo(f"warning: {item}", err=True)
    if as_json:
        echo_json(
            {
                "columns": table.columns,
                "varying": table.varying,
                "rows": [_json_value(row) for row in table.rows],
                "damage": table.damage,
            }
        )
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([_cell(row.get(name), exact=True) for name in table.columns])
        return
    constant = [
        name
        for name in table.columns
        if name not in table.varying and name not in META_COLUMNS and not _reported(table, name)
    ]
    shown = [name for name in table.columns if name not in constant and name not in HIDDEN]
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in shown:
        upper = name.upper() if name in ("id", "task", "state", "duration") else name
        grid.add_column(upper, no_wrap=name in ("id", "state"), overflow="fold")
    for row in table.rows:
        cells: list[str | Text] = []
        for name in shown:
            value = row.get(name)
            if name == "id":
                cells.append(str(value)[:12])
            elif name == "state":
                cells.append(fmt.state_text(str(value)))
            elif name == "duration":
                cells.append(fmt.duration(value))
            elif value is None and name in row:
                cells.append(Text("null", style="dim"))  # a None value, not a missing one
            else:
                cells.append(_cell(value))
        grid.add_row(*cells)
    console = get_console()
    console.print(grid)
    same = [
        f"{name}={'null' if row[name] is None else _cell(row[name])}"
        for name in constant
        for row in table.rows[:1] + [r for r in table.rows if name in r][:1]
        if name in row
    ]
    if same:
        console.print(Text("same in every job that has it: " + ", ".join(dict.fromkeys(same))))
    console.print(Text(f"{fmt.plural(len(table.rows), 'job')}; --csv or --json for every column"))


META_COLUMNS = ("id", "task", "state", "submitted", "started", "ended", "duration")
HIDDEN = ("submitted", "started", "ended")


def _reported(table: ResultRows, name: str) -> bool:
    """Whether ``name`` is a column of reported results (shown even when constant)."""
    return name in table.results


# --- code and environment -----------------------------------------------------------------


def code_change(paths: JobPaths) -> dict[str, Any] | None:
    """Whether the task's code changed since the job ran (``None`` if nothing was recorded).

    ``{"class": "Train", "file": ..., "class_changed": bool, "file_changed": bool,
    "missing": bool, "message": str | None}``: ``message`` is set when the code changed.
    """
    recorded = read_job_environment(paths).get("code")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("file"), str):
        return None
    name = str(recorded.get("class") or "?")
    now = fingerprint_file(recorded["file"], name)
    renamed = None
    moved_to = None
    if now["class_sha256"] is None:
        types = _job_type_ids(paths)
        if now["file_sha256"] is not None:
            renamed = _renamed_class(recorded["file"], types)
            if renamed is not None:
                now = fingerprint_file(recorded["file"], renamed)
        if renamed is None:
            # Moved to another module (the migrated params.json names it): look there.
            moved_to = _module_file(paths, recorded.get("module"))
            renamed = _renamed_class(moved_to, types) if moved_to else None
            if renamed is not None and moved_to is not None:
                now = fingerprint_file(moved_to, renamed)
            else:
                moved_to = None
    missing = now["file_sha256"] is None or now["class_sha256"] is None
    class_changed = now["class_sha256"] != recorded.get("class_sha256")
    file_changed = now["file_sha256"] != recorded.get("file_sha256")
    message = None
    short = name.rpartition(".")[2]
    if renamed is not None and not missing:
        now_short = renamed.rpartition(".")[2]
        what = f"is now {now_short}" if now_short != short else "moved"
        where = (f" in {moved_to}" if now_short != short else f" to {moved_to}") if moved_to else ""
        message = f"{short} {what}{where} (the same task: its id= or renamed_from=), and "
        message += (
            "its class changed since this job ran (at least its name); the identity does not "
            "include code: bump a Constant to rerun if more than the names changed"
            if class_changed
            else "its code did not change since this job ran"
        )
    elif missing:
        where = (
            "its file is gone" if now["file_sha256"] is None else "its file no longer defines it"
        )
        message = f"{short}'s code cannot be compared: {where} ({recorded['file']})"
    elif class_changed:
        message = (
            f"{short}'s code changed since this job ran; the identity does not include "
            "code: bump a Constant to rerun"
        )
    elif file_changed:
        message = (
            f"the module of {short} ({recorded['file']}) changed since this job ran, its "
            "class did not; the identity does not include code: bump a Constant to rerun "
            "if the change matters"
        )
    return {
        "class": name,
        "file": recorded["file"],
        "renamed_to": renamed,
        "moved_to": moved_to,
        "class_changed": class_changed,
        "file_changed": file_changed,
        "missing": missing,
        "message": message,
    }


def _job_type_ids(paths: JobPaths) -> set[str]:
    """The type ids a job folder goes by: its folder's, and its task's in ``params.json``."""
    ids = {paths.type_id}
    document = read_json(paths.params)
    with contextlib.suppress(KeyError, IndexError, TypeError):
        kind = document["objects"][document["root"]]["type"]  # type: ignore[index]
        if isinstance(kind, str):
            ids.add(kind)
    return ids


def _module_file(paths: JobPaths, recorded_module: Any) -> str | None:
    """The file of the module ``params.json`` names for the job's task, if it is another
    module than the one the job ran from (found without importing it)."""
    import os
    from importlib.machinery import PathFinder

    document = read_json(paths.params)
    try:
        reference = document["objects"][document["root"]]["class"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return None
    module = str(reference).partition(":")[0]
    if not module or module == "__main__" or module == recorded_module:
        return None
    search: list[str] | None = [*sys.path, os.getcwd()]
    spec = None
    for part in module.split("."):  # found part by part: no package is imported
        spec = PathFinder.find_spec(part, search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    origin = spec.origin if spec is not None else None
    return origin if origin and origin.endswith(".py") else None


def _renamed_class(file: str, type_ids: set[str]) -> str | None:
    """The qualified name of the class of ``file`` that has one of ``type_ids`` as its
    ``id=`` or in its ``renamed_from=`` (read from the source, nothing imported)."""
    import ast

    try:
        tree = ast.parse(Path(file).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None

    def names(node: ast.expr) -> list[str]:
        items = node.elts if isinstance(node, ast.Tuple | ast.List) else [node]
        return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]

    def walk(body: list[ast.stmt], prefix: str) -> str | None:
        for node in body:
            if not isinstance(node, ast.ClassDef):
                continue
            for keyword in node.keywords:
                if keyword.arg in ("id", "renamed_from") and type_ids & set(names(keyword.value)):
                    return prefix + node.name
            found = walk(node.body, f"{prefix}{node.name}.")
            if found is not None:
                return found
        return None

    return walk(tree.body, "")


def environment_rows(paths: JobPaths) -> list[tuple[str, str]]:
    """Lines for ``jobs show``: where the job ran and what it cost."""
    env = read_job_environment(paths)
    rows: list[tuple[str, str]] = []
    if env.get("host"):
        rows.append(("host", f"{env['host']} (pid {env.get('pid', '?')})"))
    gpus = env.get("gpus")
    if isinstance(gpus, list) and gpus:
        names = [
            f"{g.get('index', '?')}: {g.get('name', '?')}" for g in gpus if isinstance(g, dict)
        ]
        rows.append(("gpus", ", ".join(names)))
    elif env.get("visible_devices"):
        rows.append(("gpus", f"CUDA_VISIBLE_DEVICES={env['visible_devices']}"))
    if isinstance(env.get("wall_seconds"), int | float):
        rows.append(("wall time", fmt.duration(env["wall_seconds"])))
    if isinstance(env.get("cpu_seconds"), int | float):
        rows.append(("cpu time", fmt.duration(env["cpu_seconds"])))
    if isinstance(env.get("peak_memory_bytes"), int):
        peak = env["peak_memory_bytes"]
        children = env.get("peak_children_memory_bytes")
        text = fmt.size(peak)
        if isinstance(children, int) and children:
            text += f" (child processes: {fmt.size(children)})"
        rows.append(("peak memory", text))
    energy = fmt.energy_text(env.get("energy"))
    if energy:
        meter = env["energy"].get("meter")
        rows.append(("energy", f"{energy}{f'  [{meter}]' if meter else ''}"))
    if env.get("python"):
        rows.append(("python", str(env["python"])))
    for item in env.get("damage", []):
        rows.append(("damaged", str(item)))
    return rows


def _git_text(git: Any) -> str:
    if not isinstance(git, dict):
        return "not in a git repository"
    commit = str(git.get("commit") or "no commit")[:12]
    if git.get("dirty"):
        changed = len(str(git.get("diff") or "").splitlines())
        untracked = len(git.get("untracked") or [])
        extra = f", diff of {changed} lines" if changed else ""
        extra += f", {untracked} untracked files" if untracked else ""
        return f"{commit} with uncommitted changes{extra}"
    return f"{commit} (clean)"


def run_environment_lines(env: dict[str, Any]) -> list[str]:
    """Lines for ``experiments show``: a run's ``environment.json`` for people."""
    lines = []
    if env.get("host"):
        lines.append(f"host         {env['host']}")
    if env.get("argv"):
        lines.append(f"command      {' '.join(str(a) for a in env['argv'])}")
    if env.get("python"):
        lines.append(f"python       {str(env['python']).split()[0]} ({env.get('executable', '?')})")
    if env.get("script"):
        lines.append(f"script       {env['script']}: {_git_text(env.get('git'))}")
    packages = env.get("packages")
    if isinstance(packages, dict):
        lines.append(f"packages     {len(packages)} installed (--json lists them)")
    editable = env.get("editable")
    if isinstance(editable, dict):
        for name, item in editable.items():
            if isinstance(item, dict):
                lines.append(
                    f"editable     {name} {item.get('version', '?')}: {_git_text(item.get('git'))}"
                )
    return lines


# --- explain ------------------------------------------------------------------------------


def _attempts(paths: JobPaths) -> list[dict[str, Any]]:
    history = read_status(paths).record.get("history") or []
    return [dict(entry) for entry in history if isinstance(entry, dict)]


def _nearest(
    workspace: Workspace, info: JobInfo, siblings: list[JobInfo]
) -> tuple[JobInfo | None, list[Change]]:
    document = load_params(job_paths(workspace, info))
    if document is None:
        raise CliError(
            f"{info.name} has no readable params.json in {job_paths(workspace, info).root}: "
            "its parameters cannot be compared."
        )
    best: tuple[JobInfo | None, list[Change]] = (None, [])
    best_key: tuple[int, float] | None = None
    for other in siblings:
        theirs = load_params(job_paths(workspace, other))
        if theirs is None:
            continue
        changes = diff(theirs, document)
        key = (len(changes), -(other.ended or other.started or other.submitted or 0.0))
        if best_key is None or key < best_key:
            best, best_key = (other, changes), key
    return best


@click.command("explain")
@click.argument("job")
@workdir_option
@json_option
def explain(job: str, workdir: Path | None, as_json: bool) -> None:
    """Why a job exists next to its siblings, and whether its code changed.

    Names the nearest other job of the same task and the parameters that differ
    (following the tasks that produced its inputs), says how often it ran, and
    compares the code fingerprint recorded when it ran with the code now: the
    identity of a job does not include its code, so a changed task does not run
    again by itself.

    \b
    Examples:
      partita explain 3f2a
      partita explain demo.train/3f2a --json
    """
    workspace = find_workspace(workdir)
    with open_index(workspace) as index:
        info = index.job(job)
        siblings = [
            other
            for other in index.jobs(task=info.type_id)
            if other.type_id == info.type_id and other.identifier != info.identifier
        ]
    paths = job_paths(workspace, info)
    nearest, changes = _nearest(workspace, info, siblings)
    code = code_change(paths)
    nearest_code = None
    if nearest is not None:
        mine = read_job_environment(paths).get("code") or {}
        theirs = read_job_environment(job_paths(workspace, nearest)).get("code") or {}
        if mine.get("class_sha256") and theirs.get("class_sha256"):
            nearest_code = mine["class_sha256"] != theirs["class_sha256"]
    attempts = _attempts(paths)
    migration = read_migration(paths)
    if as_json:
        echo_json(
            {
                "job": job_json(workspace, info),
                "migration": migration or None,
                "siblings": len(siblings),
                "nearest": job_json(workspace, nearest) if nearest is not None else None,
                "changes": [change.to_json() for change in changes],
                "code": code,
                "code_differs_from_nearest": nearest_code,
                "history": attempts,
            }
        )
        return
    console = get_console()
    title = Text(f"{info.name}  ", style="bold")
    title.append_text(fmt.state_text(info.state, info.reason))
    console.print(title)
    if info.tags:
        console.print(Text(f"tags: {fmt.tags_text(info.tags)}"))
    if info.experiments:
        console.print(Text(f"submitted by: {', '.join(info.experiments)}"))
    for note in describe_migration(migration):
        console.print(Text(note, style="yellow"))
    if nearest is None:
        console.print(Text(f"the only job of {info.type_id}: no other job to compare it with."))
    else:
        others = f"{fmt.plural(len(siblings), 'other job')} of {info.type_id}"
        line = Text(f"{others}; the nearest is {nearest.name} (")
        line.append_text(fmt.state_text(nearest.state, nearest.reason))
        line.append(f", {fmt.ago(nearest.ended or nearest.started or nearest.submitted)})")
        console.print(line)
        if changes:
            noun = fmt.plural(len(changes), "parameter")
            console.print(Text(f"this job differs from it by {noun}:"))
            for change in changes:
                console.print(Text(f"  {change.describe()}"))
        else:
            console.print(
                Text("no parameter differs: their identities differ by constants or versions")
            )
        if nearest_code:
            console.print(Text(f"{nearest.name} ran other code of {info.type_id} than this job"))
    launches = [e for e in attempts if e.get("state") in ("failed", "cancelled", "done")]
    if len(launches) > 1:
        ended = ", ".join(
            f"attempt {e.get('attempt', '?')} {e.get('state')}"
            + (f" ({e['reason']})" if e.get("reason") else "")
            for e in launches
        )
        console.print(Text(f"it ran {len(launches)} times: {ended}"))
    if code is None:
        console.print(Text("no code fingerprint recorded: the job never ran"))
    elif code["message"]:
        console.print(Text(code["message"], style="yellow"))
    else:
        console.print(Text(f"the code of {code['class']} is the same as when this job ran"))
