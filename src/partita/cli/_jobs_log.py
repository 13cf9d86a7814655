"""``partita jobs log``: print or follow the output of a job."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import BinaryIO

import click

from partita.cli._app import (
    CliError,
    find_workspace,
    job_paths,
    open_index,
    workdir_option,
)
from partita.launchers import handle_gone
from partita.workspace import (
    read_status,
)


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


@click.command("log")
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
        if not follow and not use_stderr and position == 0 and info.state == "failed":
            # An empty stdout of a failed job: the researcher wants the traceback next.
            click.echo(
                f"{info.name} failed and wrote nothing to stdout; its error is in stderr: "
                f"partita jobs log {job} --stderr",
                err=True,
            )
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
