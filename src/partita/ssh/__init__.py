"""Run experiments on other computers over SSH (see docs/ssh.md).

``SSH("gpu-box").workdir("/data/me/xp")`` is a work directory on another computer: an
experiment given it runs its script there, next to the files, and this side follows it.
The command line accepts ``ssh://host/path`` wherever it takes a work directory.

Importing this package is light: asyncssh is imported when a connection opens (extra
``ssh``), and the remote-side helpers (``partita.ssh._remote``) use the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from partita.ssh._errors import (
    HostKeyError,
    RemoteEnvironmentError,
    RemoteWorkdirError,
    SSHAuthError,
    SSHConnectError,
    SSHError,
)

if TYPE_CHECKING:
    from partita.ssh._connector import SSH, SSHWorkdir

__all__ = [
    "SSH",
    "HostKeyError",
    "RemoteEnvironmentError",
    "RemoteWorkdirError",
    "SSHAuthError",
    "SSHConnectError",
    "SSHError",
    "SSHWorkdir",
    "is_remote",
    "parse_url",
    "resolve_workdir",
]


def is_remote(workdir: Any) -> bool:
    """Whether ``workdir`` names a remote work directory (``SSHWorkdir`` or ``ssh://...``)."""
    from partita.ssh._connector import is_remote as check

    return check(workdir)


def parse_url(url: str) -> SSHWorkdir:
    """``ssh://[user@]host[:port]/path[?python=...]`` as an :class:`SSHWorkdir`."""
    from partita.ssh._connector import parse_url as parse

    return parse(url)


def resolve_workdir(workdir: Any, name: str, *, detach: bool) -> Any:
    """The local path of a remote work directory, or run the experiment remotely.

    On the host itself (in the processes partita starts there) the plain path is
    returned. Elsewhere the running script is started on the host and followed, and
    this function exits the process with the remote experiment's exit code.
    """
    from partita.ssh._connector import SSHWorkdir
    from partita.ssh._connector import parse_url as parse

    remote = workdir if isinstance(workdir, SSHWorkdir) else parse(str(workdir))
    here = remote.here()
    if here is not None:
        return here
    from partita.ssh._driver import run_remote

    run_remote(remote, name, detach=detach)


def __getattr__(name: str) -> Any:
    if name in ("SSH", "SSHWorkdir"):
        from partita.ssh import _connector

        return getattr(_connector, name)
    raise AttributeError(f"module 'partita.ssh' has no attribute {name!r}")
