"""``partita COMMAND ssh://host/path``: the same command, run on the host, relayed here.

The command runs where the work directory is (``python -m partita.cli`` with the plain
path), so its output is the one a local run gives; stdout, stderr and the exit code come
back unchanged (``--json`` included). ``partita monitor`` runs the monitor on the host,
on its loopback, and forwards a local port to it through the connection.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from typing import Any

from partita.ssh._connector import SSHWorkdir, parse_url

__all__ = ["find_remote", "relay"]

_URL = re.compile(rb"partita monitor: http://[^/]+:(\d+)/\?token=(\S+)")


def find_remote(
    argv: list[str], environ: dict[str, str]
) -> tuple[SSHWorkdir, list[str], dict[str, str]] | None:
    """The remote work directory named by ``argv`` (or ``$PARTITA_WORKDIR``), if any.

    Returns it with the arguments and environment for the remote command, where the URL
    is replaced by the plain path. ``partita run`` is never relayed: its arguments are the
    script's, and a script with a remote work directory runs remotely by itself.
    """
    if argv[:1] == ["run"]:
        return None
    for index, arg in enumerate(argv):
        if arg == "--":
            break
        prefix = ""
        value = arg
        if arg.startswith("--workdir="):
            prefix, value = "--workdir=", arg[len("--workdir=") :]
        if value.startswith("ssh://"):
            workdir = parse_url(value)
            rest = [*argv[:index], prefix + str(workdir.path), *argv[index + 1 :]]
            return workdir, rest, {}
    value = environ.get("PARTITA_WORKDIR", "")
    if value.startswith("ssh://"):
        workdir = parse_url(value)
        return workdir, list(argv), {"PARTITA_WORKDIR": str(workdir.path)}
    return None


def _command(workdir: SSHWorkdir, argv: list[str], env: dict[str, str]) -> str:
    settings = dict(env)
    # Tables are as wide as this side's terminal, as they would be locally.
    if os.environ.get("COLUMNS"):
        settings.setdefault("COLUMNS", os.environ["COLUMNS"])
    elif sys.stdout.isatty():
        settings.setdefault("COLUMNS", str(os.get_terminal_size().columns))
    for name in ("NO_COLOR", "PARTITA_DEBUG"):
        if name in os.environ:
            settings.setdefault(name, os.environ[name])
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(settings.items()))
    line = workdir.ssh.python_command("-m", "partita.cli", *argv)
    return f"cd / && exec {'env ' + prefix + ' ' if prefix else ''}{line}"


def _until_stdin_closes(command: str) -> str:
    """A shell line that runs ``command`` until it ends or its standard input closes.

    Without a terminal, a command of a closed SSH session gets no SIGHUP: a server such as
    the monitor would outlive the ``partita monitor`` that started it. ``command`` is a
    line of :func:`_command` (``cd / && exec ...``).
    """
    prefix = "cd / && exec "
    assert command.startswith(prefix)
    program = command[len(prefix) :]
    # A background list reads /dev/null unless told otherwise: the watcher reads the
    # session's standard input through fd 3.
    script = (
        "cd / || exit 1; exec 3<&0; "
        f"{program} </dev/null 3<&- & pid=$!; "
        '{ cat <&3; kill "$pid"; } >/dev/null 2>&1 & watch=$!; exec 3<&-; '
        'wait "$pid"; status=$?; kill "$watch" 2>/dev/null; exit "$status"'
    )
    return "sh -c " + shlex.quote(script)


async def _copy(source: Any, target: Any) -> None:
    while True:
        data = await source.read(1 << 16)
        if not data:
            return
        target.write(data)
        target.flush()


def relay(workdir: SSHWorkdir, argv: list[str], env: dict[str, str]) -> int:
    """Run ``partita ARGV`` on the host; copy its output here; return its exit code."""
    if argv and argv[0] == "monitor":
        return monitor(workdir, argv, env)
    # `jobs log --follow` runs until interrupted: it must end with this side, as the monitor.
    command = _until_stdin_closes(_command(workdir, argv, env))

    async def work(conn: Any) -> int:
        process = await conn.create_process(command, encoding=None)
        try:
            await asyncio.gather(
                _copy(process.stdout, sys.stdout.buffer), _copy(process.stderr, sys.stderr.buffer)
            )
            await process.wait_closed()
        finally:
            process.close()
        status = process.exit_status
        return 255 if status is None else int(status)

    try:
        return workdir.ssh.connection().call(work)
    except KeyboardInterrupt:
        return 130
    finally:
        workdir.ssh.close()


def monitor(workdir: SSHWorkdir, argv: list[str], env: dict[str, str]) -> int:
    """Serve the monitor on the host's loopback; forward a local port to it."""
    local_port = 0
    remote_argv = [argv[0]]
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--port":
            local_port = int(next(rest, "0"))
        elif arg.startswith("--port="):
            local_port = int(arg.partition("=")[2])
        elif arg == "--host":
            next(rest, None)  # the remote monitor listens on its loopback only
        elif not arg.startswith("--host="):
            remote_argv.append(arg)
    command = _until_stdin_closes(
        _command(workdir, [*remote_argv, "--host", "127.0.0.1", "--port", "0"], env)
    )
    host = workdir.ssh.host

    async def work(conn: Any) -> int:
        # stdin stays open while this side runs: its end (this process exits, or the
        # connection drops) stops the monitor on the host, which would otherwise go on.
        process = await conn.create_process(command, encoding=None)
        copying = asyncio.ensure_future(_copy(process.stdout, sys.stdout.buffer))
        try:
            buffer = b""
            while True:
                data = await process.stderr.read(1 << 12)
                if not data:
                    await process.wait_closed()
                    status = process.exit_status
                    return 255 if status is None else int(status)
                buffer += data
                found = _URL.search(buffer)
                if found is None:
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        sys.stderr.buffer.write(line + b"\n")
                    sys.stderr.flush()
                    continue
                listener = await conn.forward_local_port(
                    "127.0.0.1", local_port, "127.0.0.1", int(found.group(1))
                )
                token = found.group(2).decode()
                sys.stderr.write(
                    f"partita monitor: http://127.0.0.1:{listener.get_port()}/?token={token} "
                    f"(the monitor of {workdir.url}, runs on {host}, reached through SSH)\n"
                )
                sys.stderr.flush()
                await _copy(process.stderr, sys.stderr.buffer)
                await process.wait_closed()
                status = process.exit_status
                return 255 if status is None else int(status)
        finally:
            copying.cancel()
            process.close()

    try:
        return workdir.ssh.connection().call(work)
    except KeyboardInterrupt:
        return 130
    finally:
        workdir.ssh.close()
