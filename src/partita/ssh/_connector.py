"""``partita.SSH``: computers reached over SSH, and work directories on them."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from partita.ssh._connection import Connection, Result, Target
from partita.ssh._errors import SSHError

__all__ = ["SSH", "SSHWorkdir", "is_remote", "parse_url"]

#: Set in the processes partita starts on the SSH host: a remote work directory is then
#: used by its plain path (the experiment runs next to its files).
HERE = "PARTITA_SSH_HERE"


class SSH:
    """Computers reached over SSH, all sharing the same files.

    ``SSH("gpu-box")`` names a ``Host`` of ``~/.ssh/config`` (its ``HostName``, ``User``,
    ``Port``, ``IdentityFile`` and ``ProxyJump`` are honoured) or ``user@host:port``. Keys
    come from the SSH agent and ``IdentityFile``; host keys are checked against
    ``~/.ssh/known_hosts`` and a mismatch is refused.

    Nothing connects until an experiment (or a command) needs it.

    Args:
        hosts: one host, or several that share a file system (the first one runs the
            experiment).
        python: the interpreter on the hosts (default: ``$PARTITA_SSH_PYTHON``, else
            ``python3`` on the remote ``PATH``).
        ship: local packages (importable names, e.g. ``["mylib"]``) to upload into the
            remote work directory and put on the jobs' path; ``True`` ships every
            package that defines a task of the script and is not installed in
            site-packages. The script itself is always shipped.
        config: an OpenSSH client configuration file (default: ``$PARTITA_SSH_CONFIG``,
            else ``~/.ssh/config``).
        known_hosts: the known hosts file (default: ``$PARTITA_SSH_KNOWN_HOSTS``, else
            ``~/.ssh/known_hosts``).
        reconnect_patience: how long (seconds) to keep reconnecting after the connection
            drops while following an experiment; the remote experiment goes on anyway.
        min_free: bytes that must be free in the remote work directory before anything
            launches.
    """

    def __init__(
        self,
        hosts: str | Sequence[str],
        *,
        python: str | None = None,
        ship: bool | Sequence[str] = (),
        config: str | os.PathLike[str] | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        connect_timeout: float = 20.0,
        reconnect_patience: float = 600.0,
        min_free: int = 1 << 20,
    ) -> None:
        names = [hosts] if isinstance(hosts, str) else list(hosts)
        if not names:
            raise SSHError("SSH: expected at least one host, found an empty list.")
        self.targets = [Target.parse(name) for name in names]
        self.python = python or os.environ.get("PARTITA_SSH_PYTHON") or "python3"
        if isinstance(ship, str):
            ship = [ship]
        self.ship: bool | list[str] = ship if isinstance(ship, bool) else list(ship)
        self.config = config
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self.reconnect_patience = reconnect_patience
        self.min_free = min_free
        self._connections: dict[int, Connection] = {}

    def __repr__(self) -> str:
        hosts = [str(t) for t in self.targets]
        return f"SSH({hosts[0] if len(hosts) == 1 else hosts!r})"

    @property
    def host(self) -> Target:
        """The host that runs the experiment (the first one)."""
        return self.targets[0]

    def workdir(self, path: str | os.PathLike[str]) -> SSHWorkdir:
        """A work directory on these hosts: ``experiment(gpu.workdir("/data/me/xp"), ...)``."""
        return SSHWorkdir(self, path)

    def launcher(
        self,
        slots_per_host: int = 1,
        *,
        cuda_devices: Sequence[str] | None = None,
        poll_interval: float = 0.5,
    ) -> Any:
        """A launcher spreading jobs over these hosts, ``slots_per_host`` at once on each.

        ``CUDA_VISIBLE_DEVICES`` is the slot's index (or ``cuda_devices[slot]``). The
        hosts must share the work directory's file system. See docs/ssh.md.
        """
        from partita.ssh._launcher import HostsLauncher

        return HostsLauncher(
            [self.connection(i) for i in range(len(self.targets))],
            python=self.python,
            slots_per_host=slots_per_host,
            cuda_devices=cuda_devices,
            poll_interval=poll_interval,
        )

    def connection(self, index: int = 0) -> Connection:
        """The connection to host ``index`` (opened on first use, then shared)."""
        conn = self._connections.get(index)
        if conn is None:
            conn = Connection(
                self.targets[index],
                config=self.config,
                known_hosts=self.known_hosts,
                connect_timeout=self.connect_timeout,
            )
            self._connections[index] = conn
        return conn

    def run(self, command: str, index: int = 0) -> Result:
        """Run a shell command on host ``index``."""
        return self.connection(index).run(command)

    def python_command(self, *args: str) -> str:
        """A shell command line running the remote interpreter with ``args``."""
        return " ".join(shlex.quote(part) for part in (self.python, *args))

    def close(self) -> None:
        """Close every open connection."""
        for conn in self._connections.values():
            conn.close()


class SSHWorkdir:
    """A work directory on an SSH host (``ssh://host/path``)."""

    def __init__(self, ssh: SSH, path: str | os.PathLike[str]) -> None:
        text = os.fspath(path)
        if not isinstance(text, str) or not text.startswith("/"):
            raise SSHError(
                f"remote work directory: expected an absolute path on {ssh.host}, found "
                f"{text!r}. Use e.g. ssh.workdir('/data/me/xp')."
            )
        self.ssh = ssh
        self.path = PurePosixPath(text)

    @property
    def url(self) -> str:
        """``ssh://host/path``."""
        return f"ssh://{self.ssh.host}{self.path}"

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"SSHWorkdir({self.url!r})"

    def here(self) -> Path | None:
        """The plain path when this process runs on the host itself, else None."""
        return Path(str(self.path)) if os.environ.get(HERE) == "1" else None


def parse_url(url: str) -> SSHWorkdir:
    """``ssh://[user@]host[:port]/absolute/path[?python=/path/to/python]``."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.netloc or not parts.path.startswith("/"):
        raise SSHError(
            f"remote work directory: expected ssh://[user@]host[:port]/absolute/path, found "
            f"{url!r}."
        )
    query = parse_qs(parts.query)
    python = query.get("python", [None])[0]
    return SSH(unquote(parts.netloc), python=python).workdir(unquote(parts.path))


def is_remote(workdir: Any) -> bool:
    """Whether ``workdir`` names a remote work directory (an :class:`SSHWorkdir`, ``ssh://``)."""
    if isinstance(workdir, SSHWorkdir):
        return True
    return isinstance(workdir, str) and workdir.startswith("ssh://")


def main_script() -> Path | None:
    """The running script's file (what a remote experiment ships and runs)."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return Path(file).resolve() if file else None
