"""``partita migrate``: move job folders recorded under former names to the current ones."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.text import Text

from partita.cli import _format as fmt
from partita.cli._app import (
    CliError,
    echo_json,
    find_workspace,
    get_console,
    json_option,
    open_index,
    workdir_argument,
    workdir_option,
)


@click.command("migrate")
@workdir_argument
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE|FILE.py",
    help="Import this module or script first: it defines the current classes (repeatable).",
)
@click.option(
    "--dry-run/--yes",
    "dry_run",
    default=True,
    help="--dry-run (default): only list what would change. --yes: do it.",
)
@json_option
@workdir_option
def migrate(
    workdir_arg: Path | None,
    imports: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    workdir: Path | None,
) -> None:
    """Rewrite the job folders recorded under former class or field names.

    A class declares its former type ids with renamed_from=, a field its former
    names with field(renamed_from=...): identifiers keep the oldest names, so
    experiments already reuse the old jobs (and say so: 'partita jobs show').
    This command moves each such job folder under the current type id and
    rewrites its params.json with the current names. A deprecated class
    (deprecated=convert) is replaced by its conversion: those jobs get new
    identifiers and move too. Paths into moved folders follow them.

    Every folder is read under the current code first, so nothing is written
    if a conversion fails. Then each folder is migrated on its own (note,
    rename, params.json), so a migration interrupted by a crash is finished by
    running the command again. Running or locked jobs, and folders whose new
    place is taken, are skipped and listed; while an experiment of the work
    directory runs, --yes refuses.

    The classes come from the modules that params.json names (imported as it is
    read); name others, or a script, with --import.

    \b
    Examples:
      partita migrate                         what would change in ./workdir
      partita migrate workdir --yes           do it
      partita migrate --import project.tasks --yes
      partita migrate --import xp.py --json   the plan as JSON
    """
    from partita.workspace import _migrate

    workspace = find_workspace(workdir_arg, workdir)
    if "" not in sys.path:
        sys.path.insert(0, "")  # modules of the current directory, as python -m would
    _migrate.import_code(imports)
    plan = _migrate.plan(workspace)
    if not dry_run and (plan.changes or plan.shared):
        with open_index(workspace) as index:
            live = [
                f"{run.experiment} (run {run.run})"
                for run in index.runs()
                if run.status == "running" and not run.dry_run
            ]
        if live:
            raise CliError(
                f"an experiment is running in {workspace.root}: {', '.join(live)}. It may "
                "submit the jobs this would move; migrate once it has ended (nothing was "
                "migrated)."
            )
    done, skipped = ([], []) if dry_run else _migrate.apply(plan)
    if as_json:
        out = plan.to_json()
        out["dry_run"] = dry_run
        out["migrated"] = [c.to_json() for c in done]
        out["skipped"] += [s.to_json() for s in skipped]
        echo_json(out)
        return
    console = get_console()
    listed = plan.changes if dry_run else done
    verb = "would migrate" if dry_run else "migrated"
    for change in listed:
        source, target = change.source, change.target
        line = Text(f"{source.type_id}/{source.identifier[:12]}", style="bold")
        if change.moves:
            line.append(f" -> {target.type_id}/{target.identifier[:12]}")
        line.append(f"  ({change.state})")
        console.print(line)
        for note in change.changes:
            console.print(Text(f"    {note}"))
    for item in plan.skipped + skipped:
        console.print(
            Text(f"skipped {item.job.type_id}/{item.job.identifier[:12]}: {item.reason}", "yellow")
        )
    summary = f"{verb} {fmt.plural(len(listed), 'job folder')}"
    summary += f", {plan.unchanged} already under the current names"
    console.print(Text(summary))
    refs = plan.references
    if refs.runs or refs.pins:
        what = "would rename" if dry_run else "renamed"
        console.print(
            Text(
                f"{what} the moved jobs in the records of {fmt.plural(len(refs.runs), 'run')} "
                f"and in {fmt.plural(refs.pins, 'pin')}"
            )
        )
    root = workspace.root
    left = {entry.partition(": ")[0] for entry in plan.shared_left}
    for old, new in plan.shared:
        name = old.relative_to(root).as_posix()
        if name not in left:
            what = "would move" if dry_run else "moved"
            console.print(
                Text(f"{what} the shared folder {name} -> {new.relative_to(root).as_posix()}")
            )
    for entry in plan.shared_left:
        console.print(Text(f"left the shared folder {entry}", "yellow"))
    for name in refs.left:
        console.print(
            Text(f"left the records of run {name} as they are: it is in progress", "yellow")
        )
    if dry_run and (listed or refs.runs or refs.pins or plan.shared):
        console.print(Text("dry run: nothing written. Add --yes to migrate."))
