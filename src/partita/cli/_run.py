"""``partita run``: run an experiment script, or repeat a recorded run (``--rerun RUN``).

Also how a run's configuration is shown (``partita experiments show RUN --config``). The
script's own command line (``KEY=VALUE``, ``--config``, ``--multirun``, ``--show``,
``--help``) is parsed by ``experiment_main`` in the script's process (docs/runner.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from partita.cli._app import (
    CliError,
    UsageFailure,
    echo_json,
    find_workspace,
    get_console,
)
from partita.workspace import RunPaths, Workspace, iter_runs, read_config, read_run

__all__ = ["find_run", "print_run_config", "run"]

ENV_RERUN = "PARTITA_RERUN"  # read by partita.runner (experiment_main)
ENV_RUN_SCRIPT = "PARTITA_RUN_SCRIPT"  # the script started: its --help says 'partita run'

RUN_HELP = """Run an experiment script with this Python; exit with its exit code.

\b
Examples (scripts written with @experiment_main take KEY=VALUE and more):
  partita run xp.py                             defaults
  partita run xp.py C=[1,10] kernel=linear      overrides, checked first
  partita run xp.py --config paper.yaml seeds=5 a YAML file, then overrides
  partita run xp.py --multirun kernel=linear,rbf  one run per combination
  partita run xp.py --show                      the resolved values, nothing run
  partita run xp.py --help                      the script's parameters
  partita run --rerun 20240501-141203-3f2a1c    repeat a recorded run exactly

\b
Options of this command (before or after the script):
  --detach    exit once every job is launched or queued (PARTITA_DETACH=1)
  --monitor   serve the web monitor meanwhile (PARTITA_MONITOR=1)
  --dry-run   print what would run, launch nothing (PARTITA_DRY_RUN=1)
  --rerun RUN repeat run RUN (a run id, a unique prefix of one, NAME/RUN, or
              an experiment NAME for its latest run) with its recorded values
  -w DIR      the work directory (passed on to the script)

Anything else goes to the script; put it after '--' when it could be mistaken
for one of these options. Exit codes: the script's (with experiment_main: 0
done, 1 a job failed, 2 wrong command line or config file).
"""


def find_run(workspace: Workspace, name: str) -> RunPaths:
    """The run named ``name``: a run id or unique prefix, ``NAME/RUN``, or an experiment."""
    # In start order (run ids of one second are not ordered), the latest last.
    found_runs = list(iter_runs(workspace))
    records = {(p.experiment, p.run): read_run(p) for p in found_runs}
    runs = sorted(found_runs, key=lambda p: (records[p.experiment, p.run].started or 0.0, p.run))
    experiment, slash, run = name.rpartition("/")
    if slash:
        runs = [p for p in runs if p.experiment == experiment]
        name = run
    exact = [p for p in runs if p.run == name]
    if exact:
        return exact[0]
    if not slash:
        of_experiment = [p for p in runs if p.experiment == name]
        # Its latest run is its latest real one: a dry run launched nothing (as for 'pin').
        real = [p for p in of_experiment if not records[p.experiment, p.run].dry_run]
        if real or of_experiment:
            return (real or of_experiment)[-1]
    found = [p for p in runs if p.run.startswith(name)]
    if len(found) == 1:
        return found[0]
    if not found:
        names = sorted({p.experiment for p in runs})
        known = f" Experiments: {', '.join(names)}." if names else " No run is recorded."
        raise CliError(
            f"no run {name!r} in {workspace.root}.{known} Give a run id (see 'partita "
            "experiments show NAME') or an experiment name for its latest run."
        )
    listed = ", ".join(f"{p.experiment}/{p.run}" for p in found[:5])
    raise CliError(f"{name!r} names several runs ({listed}): give more of the run id.")


def _config_of(paths: RunPaths) -> dict[str, Any]:
    record, damage = read_config(paths)
    if damage:
        raise CliError(
            f"run {paths.experiment}/{paths.run}: its configuration record cannot be used: "
            f"{'; '.join(damage)}."
        )
    if record is None:
        raise CliError(
            f"run {paths.experiment}/{paths.run} has no recorded configuration: it was not "
            "started through @experiment_main (see docs/runner.md)."
        )
    return record


def print_run_config(workspace: Workspace, name: str, as_json: bool) -> None:
    """Print how run ``name`` was configured: files, overrides as typed, resolved values."""
    from partita.runner._main import dump_yaml

    paths = find_run(workspace, name)
    record = _config_of(paths)
    if as_json:
        echo_json({"experiment": paths.experiment, "run": paths.run, **record})
        return
    console = get_console()
    console.print(Text(f"run {paths.experiment}/{paths.run}", style="bold"))
    console.print(Text(f"script     {record.get('script')}"))
    argv = record.get("argv") or []
    console.print(Text("command    " + " ".join(["partita run", "SCRIPT", *map(str, argv)])))
    if record.get("rerun_of"):
        console.print(Text(f"rerun of   {record['rerun_of']}"))
    multirun = record.get("multirun")
    if isinstance(multirun, dict) and isinstance(multirun.get("index"), int):
        console.print(Text(f"multirun   run {multirun['index'] + 1} of {multirun.get('count')}"))
    tags = record.get("tags") or {}
    if tags:
        console.print(Text("tags       " + " ".join(f"{k}={v}" for k, v in tags.items())))
    overrides = record.get("overrides") or []
    console.print(Text("overrides  " + (" ".join(map(str, overrides)) or "(none)")))
    if record.get("assignments") != overrides:
        this = " ".join(map(str, record.get("assignments") or []))
        console.print(Text(f"this run   {this or '(none)'}"))
    for file in record.get("files") or []:
        if isinstance(file, dict):
            console.print(Text(f"--- config file {file.get('path')}", style="bold"))
            console.print(Text(str(file.get("text", "")).rstrip("\n")))
    console.print(Text("--- resolved configuration", style="bold"))
    resolved = record.get("resolved")
    console.print(Text(dump_yaml(resolved).rstrip("\n") if isinstance(resolved, dict) else "?"))


def _wait(process: subprocess.Popen[bytes]) -> int:
    code: int | None = None
    while code is None:
        try:
            code = process.wait()
        except KeyboardInterrupt:
            continue  # the script got the Ctrl-C too (same terminal): it decides what happens
    if code < 0:
        code = 128 + signal.Signals(-code).value
    return code


@click.command(
    "run",
    help=RUN_HELP,
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="SCRIPT [ARGS]... | --rerun RUN")
@click.pass_context
def run(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run an experiment script (see RUN_HELP)."""
    env = dict(os.environ)
    flags = {"--detach": "PARTITA_DETACH", "--dry-run": "PARTITA_DRY_RUN"}
    flags["--monitor"] = "PARTITA_MONITOR"
    rest: list[str] = []
    script: str | None = None
    rerun: str | None = None
    workdir: str | None = None
    items = list(args)
    i = 0
    while i < len(items):
        arg = items[i]
        i += 1
        if arg == "--" and script is not None:
            rest.extend(items[i:])  # everything after '--' goes to the script as it is
            break
        if arg in flags:
            env[flags[arg]] = "1"
        elif arg == "--rerun" or arg.startswith("--rerun="):
            if "=" in arg:
                rerun = arg.partition("=")[2]
            elif i < len(items):
                rerun, i = items[i], i + 1
            else:
                raise UsageFailure("--rerun needs a run: partita run --rerun RUN.")
        elif arg in ("-w", "--workdir") or arg.startswith("--workdir="):
            if "=" in arg:
                workdir = arg.partition("=")[2]
            elif i < len(items):
                workdir, i = items[i], i + 1
            else:
                raise UsageFailure(f"{arg} needs a directory.")
            if script is not None:
                rest += ["-w", workdir]
        elif script is None and arg in ("-h", "--help"):
            click.echo(ctx.get_help())
            return
        elif script is None and rerun is None and not arg.startswith("-"):
            script = arg
        else:
            rest.append(arg)
    if rerun is not None:
        if script is not None or rest:
            raise UsageFailure(
                "--rerun repeats a run exactly: give no script, KEY=VALUE nor --config with "
                "it (start a new run with 'partita run SCRIPT KEY=VALUE ...')."
            )
        workspace = find_workspace(Path(workdir) if workdir else None)
        paths = find_run(workspace, rerun)
        record = _config_of(paths)
        script = str(record.get("script") or "")
        if not script or not Path(script).is_file():
            raise CliError(
                f"run {paths.experiment}/{paths.run} was started from {script or '?'}, which "
                "no longer exists. Restore the script to rerun it."
            )
        env[ENV_RERUN] = str(paths.root.resolve())
        rest = ["-w", str(workspace.root.resolve())]
        cwd = record.get("cwd")
        folder = cwd if isinstance(cwd, str) and Path(cwd).is_dir() else None
        click.echo(f"partita: rerun of {paths.experiment}/{paths.run} ({script})", err=True)
    else:
        folder = None
        if script is None:
            raise UsageFailure(
                "no script given: partita run SCRIPT [KEY=VALUE ...], or partita run "
                "--rerun RUN. See partita run --help."
            )
        if not Path(script).is_file():
            raise UsageFailure(f"script {script} does not exist (or is not a file).")
        if workdir is not None and "-w" not in rest:
            rest = ["-w", workdir, *rest]
    env[ENV_RUN_SCRIPT] = script
    try:
        process = subprocess.Popen([sys.executable, script, *rest], env=env, cwd=folder)
    except OSError as exc:
        raise CliError(f"cannot start {sys.executable} {script}: {exc.strerror}.") from None
    raise click.exceptions.Exit(_wait(process))
