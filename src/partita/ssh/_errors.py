"""The errors of the SSH connector (all :class:`partita.PartitaError`)."""

from __future__ import annotations

from partita.errors import PartitaError

__all__ = [
    "HostKeyError",
    "RemoteEnvironmentError",
    "RemoteWorkdirError",
    "SSHAuthError",
    "SSHConnectError",
    "SSHError",
]


class SSHError(PartitaError):
    """An SSH connection or a remote command failed."""


class SSHConnectError(SSHError):
    """The host cannot be reached: unknown name, refused or unreachable, timeout."""


class SSHAuthError(SSHError):
    """The server refused every key offered (from the agent and ``IdentityFile``)."""


class HostKeyError(SSHError):
    """The server's host key is not in ``known_hosts`` or differs from it: refused."""


class RemoteEnvironmentError(SSHError):
    """The remote interpreter is missing, too old, or lacks partita or a task module."""


class RemoteWorkdirError(SSHError):
    """The remote work directory cannot be created or written (permissions, full disk)."""
