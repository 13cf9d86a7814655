"""The ``partita`` command: watch and steer the experiments of a work directory.

Thin by design: queries go through :class:`partita.workspace.Index`, actions through
:mod:`partita._control`; this package parses, formats and prints. See docs/cli.md.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click
from rich.text import Text

from partita import __version__
from partita.cli._app import (
    CliError,
    PartitaGroup,
    echo_json,
    find_workspace,
    get_console,
    job_json,
    job_paths,
    json_option,
    open_index,
    remote_command,
    workdir_argument,
    workdir_option,
)
from partita.cli._docs import docs
from partita.cli._experiments import experiments, status_command
from partita.cli._gc import gc, pin, unpin
from partita.cli._jobs import jobs
from partita.cli._migrate import migrate
from partita.cli._params import diff as diff_params
from partita.cli._params import load_params
from partita.cli._results import explain, results_command
from partita.cli._run import run

__all__ = ["cli", "main"]

WEB_EXTRA = "the web monitor needs the 'web' extra: pip install 'partita[web]'"


@click.group(cls=PartitaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="partita")
def cli() -> None:
    """Watch and steer the experiments of a partita work directory.

    \b
    Examples:
      partita status                       one-screen summary of ./workdir
      partita jobs list --state failed     failed jobs, most recent first
      partita jobs show 3f2a               everything about one job
      partita jobs log 3f2a --follow       its output, as it is written
      partita jobs kill 3f2a               stop it
      partita diff 3f2a 7b01               how two jobs' parameters differ
      partita results --task train         the results table (also --csv, --json)
      partita explain 3f2a                 why this job exists, did its code change
      partita migrate --yes                move jobs of renamed classes to their new names
      partita run xp.py --dry-run          what xp.py would run
      partita run xp.py lr=0.1 -m seed=0,1 values and sweeps (experiment_main)
      partita monitor                      the live web monitor

    The work directory is WORKDIR or -w DIR where a command takes one, else
    $PARTITA_WORKDIR, else ./workdir if it is a work directory, else the
    current directory. JOB is a unique prefix of a job identifier, TYPE/PREFIX
    or a job folder. Exit codes: 0 success, 1 failure, 2 wrong command line.
    """


cli.add_command(jobs)
cli.add_command(experiments)
cli.add_command(gc)
cli.add_command(pin)
cli.add_command(unpin)
cli.add_command(results_command)
cli.add_command(explain)
cli.add_command(run)
cli.add_command(docs)
cli.add_command(migrate)


@cli.command("status")
@workdir_argument
@workdir_option
@json_option
def status(workdir_arg: Path | None, workdir: Path | None, as_json: bool) -> None:
    """One screen: experiments, jobs by state, running jobs and their progress.

    \b
    Examples:
      partita status
      partita status path/to/workdir
      watch -n 2 partita status
      partita status --json
    """
    status_command(workdir_arg, workdir, as_json)


@cli.command("diff")
@click.argument("job_a")
@click.argument("job_b")
@workdir_option
@json_option
def diff(job_a: str, job_b: str, workdir: Path | None, as_json: bool) -> None:
    """Parameters that differ between two jobs, by path.

    Nested configs (and tasks given as parameters) are followed, so a change
    deep inside reads as 'strings[1].word: 'hello' → 'world''. A change of type
    shows both types: 'lr: 1 (int) → 1.0 (float)'.

    \b
    Examples:
      partita diff 3f2a 7b01
      partita diff demo.train/3f2a demo.train/7b01 --json
    """
    workspace = find_workspace(workdir)
    with open_index(workspace) as index:
        first, second = index.job(job_a), index.job(job_b)
    documents = []
    for info in (first, second):
        document = load_params(job_paths(workspace, info))
        if document is None:
            raise CliError(
                f"{info.name} has no readable params.json in {job_paths(workspace, info).root}."
            )
        documents.append(document)
    # Renamed classes and fields (renamed_from=) compare under their current names.
    from partita.config._current_names import under_current_names

    if "" not in sys.path:
        sys.path.insert(0, "")  # modules of the current directory, as python -m would
    renamed: list[str] = []
    for i, document in enumerate(documents):
        documents[i], notes = under_current_names(document)
        renamed.extend(n for n in notes if n not in renamed)
    changes = diff_params(documents[0], documents[1])
    types = [str(d["objects"][d["root"]].get("type")) for d in documents]
    if as_json:
        echo_json(
            {
                "a": job_json(workspace, first),
                "b": job_json(workspace, second),
                "renamed": renamed,
                "changes": [change.to_json() for change in changes],
            }
        )
        return
    console = get_console()
    console.print(Text(f"--- {first.name}\n+++ {second.name}"))
    if renamed:
        console.print(Text(f"compared under the current names: {'; '.join(renamed)}"))
    if types[0] != types[1]:
        console.print(Text(f"different tasks: {types[0]} → {types[1]}"))
    if first.identifier == second.identifier:
        console.print("same job: nothing differs")
        return
    if not changes:
        console.print("no parameter differs (their identities differ by constants or versions)")
        return
    for change in changes:
        console.print(Text(change.describe()))


@cli.command("monitor")
@workdir_argument
@workdir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to listen on (0: any free port; the address is printed).",
)
def monitor(workdir_arg: Path | None, workdir: Path | None, host: str, port: int) -> None:
    """Serve the live web monitor of a work directory.

    Needs the 'web' extra: pip install 'partita[web]'.

    \b
    Examples:
      partita monitor
      partita monitor path/to/workdir --port 8080
      partita monitor --host 0.0.0.0 --port 8080   reachable from other machines
    """
    workspace = find_workspace(workdir_arg, workdir)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        web = importlib.import_module("partita.web")  # imported late: it needs the extra
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("starlette", "uvicorn", "websockets"):
            raise CliError(WEB_EXTRA) from None
        raise
    web.serve(workspace.root, host=host, port=port)


@cli.group("launchers")
def launchers() -> None:
    """Which launcher runs which task (the rules file)."""


@launchers.command("explain")
@click.option("--cpus", type=int, help="CPUs the task needs.")
@click.option("--mem", help="Memory the task needs, e.g. 16G.")
@click.option("--gpus", type=int, help="GPUs the task needs.")
@click.option("--time", "duration", help="How long it runs, e.g. 2h, 90m, 1-00:00:00.")
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A rules file (default: $PARTITA_LAUNCHERS or ~/.config/partita/launchers.py).",
)
def launchers_explain(
    cpus: int | None,
    mem: str | None,
    gpus: int | None,
    duration: str | None,
    rules: Path | None,
) -> None:
    """Show which launcher the rules file chooses for a task's needs, and why.

    The rules file defines find_launcher(needs, task) (see docs/slurm.md); it
    returns a launcher, a (launcher, why) pair, or None for the local launcher.

    \b
    Examples:
      partita launchers explain --gpus 1 --time 12h
      partita launchers explain --cpus 2 --mem 4G --rules ./launchers.py
    """
    from partita.errors import PartitaError
    from partita.launchers import LocalLauncher
    from partita.launchers.finder import LauncherFinder, rules_file
    from partita.launchers.resources import Resources

    try:
        needs = Resources.parse({"cpus": cpus, "mem": mem, "gpus": gpus, "time": duration})
        path = rules or rules_file()
        console = get_console()
        console.print(f"needs: {needs.to_dict() or 'nothing in particular'}")
        if path is None:
            console.print("rules: none (no $PARTITA_LAUNCHERS, no ~/.config/partita/launchers.py)")
            console.print(f"launcher: {LocalLauncher.kind} (the experiment's default)")
            return
        choice = LauncherFinder(path).choose(needs, None)
    except PartitaError as exc:
        raise CliError(str(exc)) from None
    console.print(f"rules: {path}")
    launcher = choice.launcher.describe() if choice.launcher is not None else LocalLauncher.kind
    console.print(f"launcher: {launcher}")
    console.print(f"why: {choice.why}")


def main() -> None:
    """Entry point of the ``partita`` console script."""
    remote = remote_command(sys.argv[1:])
    if remote is not None:
        raise SystemExit(remote())
    cli.main(prog_name="partita")
