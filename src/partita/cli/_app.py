"""What every command shares: error handling, the console, the work directory, the index."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console

from partita.errors import PartitaError
from partita.launchers import probe_handle
from partita.workspace import Index, JobInfo, JobPaths, Workspace
from partita.workspace import open_index as workspace_open_index

ENV_WORKDIR = "PARTITA_WORKDIR"

EXIT_FAILURE = 1
"""The command could not do what was asked (unknown job, broken work directory...)."""
EXIT_USAGE = 2
"""The command line is wrong (bad option value, no work directory found...)."""


class CliError(click.ClickException):
    """A failure, shown as one ``error: ...`` line on stderr (no traceback)."""

    exit_code = EXIT_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class UsageFailure(CliError):
    """A wrong command line (exit code 2), shown like any other error."""

    exit_code = EXIT_USAGE


class PartitaGroup(click.Group):
    """A command group that turns partita's own errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PartitaError as exc:
            raise CliError(str(exc)) from None
        except BrokenPipeError:
            # `partita jobs list | head`: the reader went away; that is not an error.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            raise click.exceptions.Exit(0) from None
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            raise CliError(f"{exc.strerror}: {exc.filename}") from None
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise CliError(
                    f"the work directory is on a read-only file system ({exc.filename}): "
                    "reading commands work, but this one changes files. Run it where the "
                    "work directory is writable."
                ) from None
            if exc.errno == errno.ENOSPC:
                raise CliError(
                    f"no space left on the device of {exc.filename}: free some space and "
                    "run the command again."
                ) from None
            raise


# --- the console ------------------------------------------------------------------------


def make_console() -> Console:
    """A console on stdout; no colours unless it is a terminal.

    Output that is not a terminal gets a wide fixed width (unless ``COLUMNS`` says
    otherwise), so tables stay one line per row in files and pipes.
    """
    console = Console(highlight=False, markup=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, markup=False, width=160)
    return console


def get_console() -> Console:
    """The console of the current invocation (``obj=Console(...)`` in tests)."""
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, Console):
        root.obj = make_console()
    console: Console = root.obj
    return console


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (never through rich: no wrapping, no markup)."""
    import json

    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def stream_json(items: Iterable[Any], *, batch: int = 200) -> None:
    """Print ``items`` as :func:`echo_json` prints a list, written as they come."""
    import json

    out = sys.stdout
    chunk: list[str] = []
    first = True
    for item in items:
        text = json.dumps(item, indent=2, ensure_ascii=False, default=str)
        chunk.append(("[\n  " if first else ",\n  ") + text.replace("\n", "\n  "))
        first = False
        if len(chunk) >= batch:
            out.write("".join(chunk))
            out.flush()
            chunk.clear()
    chunk.append("[]\n" if first else "\n]\n")
    out.write("".join(chunk))
    out.flush()


# --- the work directory -----------------------------------------------------------------

WORKDIR_HELP = (
    "The work directory. Default: $PARTITA_WORKDIR, else ./workdir if it is a partita "
    "work directory, else the current directory if it is one."
)

workdir_option = click.option(
    "-w",
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=WORKDIR_HELP,
)
"""``-w/--workdir DIR`` (every command that reads a work directory)."""

workdir_argument = click.argument(
    "workdir_arg",
    metavar="[WORKDIR]",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
)
"""An optional positional ``WORKDIR`` (same meaning as ``-w``)."""

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def remote_command(argv: list[str]) -> Callable[[], int] | None:
    """For a work directory ``ssh://host/path`` (argument, ``-w`` or ``$PARTITA_WORKDIR``):
    a function that runs the command there and relays it (see docs/ssh.md)."""
    if not any("ssh://" in arg for arg in argv) and not os.environ.get(ENV_WORKDIR, "").startswith(
        "ssh://"
    ):
        return None
    from partita.ssh._cli import find_remote, relay

    try:
        found = find_remote(argv, dict(os.environ))
    except PartitaError as exc:
        raise SystemExit(f"partita: {exc}") from None
    if found is None:
        return None
    workdir, rest, env = found

    def run() -> int:
        try:
            return relay(workdir, rest, env)
        except PartitaError as exc:
            print(f"partita: {exc}", file=sys.stderr)
            return 1

    return run


def is_workdir(path: Path) -> bool:
    """Whether ``path`` looks like a partita work directory."""
    return Workspace.looks_like(path)


def find_workspace(*given: Path | None) -> Workspace:
    """The work directory named on the command line, or found by the default rules."""
    chosen = [path for path in given if path is not None]
    origin = ""
    if len(chosen) > 1 and chosen[0].resolve() != chosen[1].resolve():
        raise UsageFailure(
            f"two work directories given ({chosen[0]} and {chosen[1]}): give it once, "
            "as WORKDIR or as -w."
        )
    if chosen:
        path = chosen[0]
    elif os.environ.get(ENV_WORKDIR):
        path, origin = Path(os.environ[ENV_WORKDIR]), f" (from ${ENV_WORKDIR})"
    else:
        for candidate in (Path("workdir"), Path(".")):
            if is_workdir(candidate):
                path = candidate
                break
        else:
            raise UsageFailure(
                f"no work directory: none given, ${ENV_WORKDIR} is not set, and neither "
                f"./workdir nor the current directory ({Path.cwd()}) is a partita work "
                "directory. Give one, e.g. 'partita status path/to/workdir' or "
                "'partita jobs show -w path/to/workdir JOB'."
            )
    if not path.exists():
        raise UsageFailure(
            f"work directory {path}{origin} does not exist. Check the path: it is the "
            "directory given to experiment(...)."
        )
    if not path.is_dir() or not is_workdir(path):
        raise UsageFailure(
            f"{path}{origin} is not a partita work directory (no .partita file, no jobs/ "
            "folder). Give the directory passed to experiment(...)."
        )
    return Workspace(path, create=False)


@contextlib.contextmanager
def open_index(workspace: Workspace) -> Iterator[Index]:
    """The work directory's index, brought up to date with the files.

    The index is a cache: a corrupt one is rebuilt, a work directory this user cannot write
    is indexed into a private temporary file, and when no index can be written (a full
    disk) the files are read directly, with one warning on stderr.
    """
    index = workspace_open_index(workspace, probe_handle)
    if index.warning:
        click.echo(f"warning: {index.warning}", err=True)
    try:
        yield index
    finally:
        index.close()


def job_json(workspace: Workspace, info: JobInfo) -> dict[str, Any]:
    """``info.to_json()``, with the folder as seen from this work directory."""
    return {**info.to_json(), "path": str(job_paths(workspace, info).root)}


def job_paths(workspace: Workspace, info: JobInfo) -> JobPaths:
    """The folder of ``info`` in ``workspace``.

    Derived from the work directory (never from the path cached in the index), so a work
    directory that was moved or copied is never confused with its original.
    """
    return workspace.job(info.type_id, info.identifier)
