"""One multiplexed SSH connection per host, driven from synchronous code.

asyncssh runs on an event loop in a daemon thread; :class:`Connection` offers blocking
calls (``run``, ``put``, ``open_stream``) that the experiment and the command line use.
Every remote command counts in :attr:`Connection.commands` (the benchmark reports it).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from partita.ssh._errors import (
    HostKeyError,
    RemoteWorkdirError,
    SSHAuthError,
    SSHConnectError,
    SSHError,
)

__all__ = ["Connection", "Result", "Stream", "Target", "require_asyncssh"]

_T = TypeVar("_T")

SSH_EXTRA = "the SSH connector needs asyncssh: pip install 'partita[ssh]'"


def require_asyncssh() -> Any:
    """Import asyncssh, or say how to install it."""
    try:
        import asyncssh
    except ImportError:
        raise SSHError(SSH_EXTRA) from None
    return asyncssh


@dataclass(frozen=True)
class Target:
    """Where to connect: a ``Host`` of the ssh configuration, or ``[user@]host[:port]``."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        """``gpu-box``, ``me@gpu-box``, ``me@10.0.0.2:2222``."""
        if not isinstance(text, str) or not text or any(c.isspace() for c in text):
            raise SSHConnectError(
                f"SSH host: expected a Host of ~/.ssh/config or user@host[:port], found {text!r}."
            )
        user, _, rest = text.rpartition("@")
        host, port = rest, None
        if rest.count(":") == 1:
            host, _, digits = rest.partition(":")
            if not digits.isdigit() or not 0 < int(digits) < 65536:
                raise SSHConnectError(
                    f"SSH host {text!r}: expected a port number after ':', found {digits!r}."
                )
            port = int(digits)
        if not host:
            raise SSHConnectError(f"SSH host {text!r}: no host name.")
        return cls(host, user or None, port)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"


@dataclass
class Result:
    """The outcome of one remote command."""

    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def error_text(self) -> str:
        return self.stderr.decode(errors="replace").strip()


class _Loop:
    """The event loop thread shared by every connection of the process."""

    lock = threading.Lock()
    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls.lock:
            if cls.loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="partita-ssh", daemon=True)
                thread.start()
                cls.loop = loop
            return cls.loop


def _call(coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
    """Run ``coro`` on the SSH loop and wait for it (Ctrl-C stays responsive)."""
    future = asyncio.run_coroutine_threadsafe(coro, _Loop.get())
    deadline = None if timeout is None else time.monotonic() + timeout
    import concurrent.futures

    while True:
        try:
            return future.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            if deadline is not None and time.monotonic() > deadline:
                future.cancel()
                raise TimeoutError from None
        except BaseException:
            if not future.done():
                future.cancel()
            raise


def config_file(explicit: str | os.PathLike[str] | None) -> list[str] | None:
    """The OpenSSH client configuration to honour (``PARTITA_SSH_CONFIG``, ~/.ssh/config)."""
    chosen = explicit or os.environ.get("PARTITA_SSH_CONFIG")
    if chosen:
        return [str(chosen)]
    default = Path.home() / ".ssh" / "config"
    return [str(default)] if default.is_file() else None


def known_hosts_file(explicit: str | os.PathLike[str] | None) -> str | None:
    """The ``known_hosts`` file host keys are checked against.

    None: the ssh configuration's ``UserKnownHostsFile``, else ``~/.ssh/known_hosts``
    (what asyncssh does by default, for jump hosts too).
    """
    chosen = explicit or os.environ.get("PARTITA_SSH_KNOWN_HOSTS")
    return str(chosen) if chosen else None


class Connection:
    """One SSH connection to ``target`` (commands and SFTP share it), reopened on demand."""

    def __init__(
        self,
        target: Target,
        *,
        config: str | os.PathLike[str] | None = None,
        known_hosts: str | os.PathLike[str] | None = None,
        connect_timeout: float = 20.0,
    ) -> None:
        self.target = target
        self.config = config_file(config)
        self.known_hosts = known_hosts_file(known_hosts)
        self.connect_timeout = connect_timeout
        self.commands = 0
        self.connects = 0
        self._conn: Any = None

    # --- connecting ----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection if it is not open; errors are :class:`SSHError`."""
        if self._conn is not None and not self._closed():
            return
        self._conn = None
        self._conn = _call(self._connect())
        self.connects += 1

    def _closed(self) -> bool:
        transport = getattr(self._conn, "_transport", None)
        return transport is None or transport.is_closing()

    async def _connect(self) -> Any:
        asyncssh = require_asyncssh()
        options: dict[str, Any] = {
            "config": self.config,
            "connect_timeout": self.connect_timeout,
            "keepalive_interval": 10,
            "keepalive_count_max": 3,
        }
        if self.known_hosts is not None:
            options["known_hosts"] = self.known_hosts
        if self.target.user:
            options["username"] = self.target.user
        if self.target.port:
            options["port"] = self.target.port
        where = str(self.target)
        known_default = "known_hosts (UserKnownHostsFile, else ~/.ssh/known_hosts)"
        try:
            return await asyncssh.connect(self.target.host, **options)
        except socket.gaierror as exc:
            raise SSHConnectError(
                f"cannot connect to {where}: the host name is unknown ({exc.strerror}). "
                "Expected a Host of your ssh configuration"
                + (f" ({', '.join(self.config)})" if self.config else "")
                + " or a resolvable name: check its spelling and 'HostName'."
            ) from None
        except ConnectionRefusedError:
            raise SSHConnectError(
                f"cannot connect to {where}: connection refused. The host answers but no SSH "
                "server listens on that port: check 'Port' in your ssh configuration and "
                "that sshd runs there."
            ) from None
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyError(
                f"refusing {where}: its host key is not trusted ({exc.reason}). Expected a "
                f"key recorded in {self.known_hosts or known_default}; either the host is "
                "not there, or its key changed (which may mean someone is intercepting the "
                "connection). "
                f"Check the key with the host's administrator, then run 'ssh {where}' once "
                "to record it."
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise SSHAuthError(
                f"cannot log in to {where}: authentication failed ({exc.reason}). Expected a "
                "key accepted by the server, from the SSH agent or 'IdentityFile' in your "
                f"ssh configuration; check that 'ssh {where}' works without a password."
            ) from None
        except TimeoutError:
            raise SSHConnectError(
                f"cannot connect to {where}: no answer within {self.connect_timeout:g} s. "
                "Check that the host is up and reachable (VPN, ProxyJump)."
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                reason = f"{reason}: the host is unreachable from here"
            raise SSHConnectError(
                f"cannot connect to {where}: {reason}. Check the host name, your network "
                "and 'ProxyJump' in your ssh configuration."
            ) from None
        except asyncssh.Error as exc:
            raise SSHConnectError(f"cannot connect to {where}: {exc.reason}.") from None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is not None:

            async def closing() -> None:
                conn.close()
                try:
                    await asyncio.wait_for(conn.wait_closed(), 5)
                except Exception:
                    pass

            try:
                _call(closing(), timeout=10)
            except Exception:
                pass

    def reconnect(self, patience: float, say: Callable[[str], None] | None = None) -> None:
        """Reopen the connection, retrying with backoff for up to ``patience`` seconds."""
        self.close()
        deadline = time.monotonic() + patience
        delay = 0.2
        while True:
            try:
                self.connect()
                return
            except (HostKeyError, SSHAuthError):
                raise
            except SSHError as exc:
                if time.monotonic() + delay > deadline:
                    raise SSHConnectError(
                        f"lost the connection to {self.target} and could not reconnect "
                        f"within {patience:g} s: {exc}"
                    ) from None
                if say is not None:
                    say(f"reconnecting to {self.target} in {delay:.1f} s")
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    # --- commands --------------------------------------------------------------------------

    def run(self, command: str, input: bytes | None = None, timeout: float | None = None) -> Result:
        """Run one shell command remotely and wait for it."""
        self.connect()
        self.commands += 1
        conn = self._conn

        async def running() -> Result:
            done = await conn.run(command, input=input, encoding=None, check=False)
            status = done.exit_status if done.exit_status is not None else 255
            return Result(status, done.stdout or b"", done.stderr or b"")

        try:
            return _call(running(), timeout)
        except SSHError:
            raise
        except Exception as exc:
            raise _lost(self.target, exc) from None

    def call(self, work: Callable[[Any], Coroutine[Any, Any, _T]], *, command: bool = True) -> _T:
        """Run ``work(asyncssh_connection)`` on the SSH loop (counted as a command)."""
        self.connect()
        if command:
            self.commands += 1
        try:
            return _call(work(self._conn))
        except (SSHError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise _lost(self.target, exc) from None

    def open_stream(self, command: str) -> Stream:
        """Start a long-running command whose output is read as it comes."""
        self.connect()
        self.commands += 1
        conn = self._conn

        async def opening() -> Any:
            return await conn.create_process(command, encoding=None)

        try:
            return Stream(self, _call(opening()))
        except Exception as exc:
            raise _lost(self.target, exc) from None

    def put(self, files: dict[str, bytes]) -> None:
        """Write remote files (absolute paths) through one SFTP session, each atomically."""
        if not files:
            return
        self.connect()
        conn = self._conn
        asyncssh = require_asyncssh()

        async def putting() -> None:
            async with conn.start_sftp_client() as sftp:
                for path, data in files.items():
                    folder = path.rpartition("/")[0] or "/"
                    await sftp.makedirs(folder, exist_ok=True)
                    temporary = f"{path}.part-{uuid.uuid4().hex[:8]}"
                    async with sftp.open(temporary, "wb") as handle:
                        await handle.write(data)
                    await sftp.posix_rename(temporary, path)

        try:
            _call(putting())
        except asyncssh.SFTPError as exc:
            raise RemoteWorkdirError(
                f"cannot write to {self.target}: {exc.reason} (while uploading "
                f"{', '.join(sorted(files))}). Expected a writable directory with free space: "
                "check its permissions and 'df' there."
            ) from None
        except SSHError:
            raise
        except Exception as exc:
            raise _lost(self.target, exc) from None

    def forward_local_port(self, remote_port: int) -> int:
        """Forward a free port of 127.0.0.1 here to ``127.0.0.1:remote_port`` there."""
        self.connect()
        conn = self._conn

        async def forwarding() -> int:
            listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", remote_port)
            return int(listener.get_port())

        return _call(forwarding())


class Stream:
    """A running remote command: its stdout read in chunks, its stdin written to."""

    def __init__(self, connection: Connection, process: Any) -> None:
        self.connection = connection
        self.process = process

    def read(self, size: int = 65536) -> bytes:
        """The next bytes of stdout; ``b""`` at its end. Raises :class:`SSHError` if lost."""

        async def reading() -> bytes:
            data = await self.process.stdout.read(size)
            return bytes(data)

        try:
            return _call(reading())
        except Exception as exc:
            raise _lost(self.connection.target, exc) from None

    def failure(self) -> str | None:
        """After the output ended: why the command ended, if the connection is still up.

        ``None`` when the connection itself is gone (then reconnecting is the answer);
        else the command's exit status and standard error (a remote-side failure).
        """
        if self.connection._closed():
            return None

        async def reading() -> str | None:
            try:
                data = await asyncio.wait_for(self.process.stderr.read(1 << 16), 5)
            except Exception:
                data = b""
            await asyncio.wait_for(self.process.wait_closed(), 5)
            status = self.process.exit_status
            if status is None:
                return None  # no exit status: the channel was cut, not ended
            text = bytes(data).decode(errors="replace").strip()
            return f"exit status {status}" + (f": {text}" if text else "")

        try:
            return _call(reading(), timeout=15)
        except Exception:
            return None

    def write(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin (ignored if the channel is gone)."""

        async def writing() -> None:
            self.process.stdin.write(data)

        try:
            _call(writing(), timeout=10)
        except Exception:
            pass

    def close(self) -> None:
        """Close stdin and the channel."""

        async def closing() -> None:
            try:
                self.process.stdin.write_eof()
            except Exception:
                pass
            self.process.close()

        try:
            _call(closing(), timeout=10)
        except Exception:
            pass


def _lost(target: Target, exc: BaseException) -> SSHError:
    if isinstance(exc, SSHError):
        return exc
    return SSHConnectError(f"the connection to {target} was lost ({type(exc).__name__}: {exc})")
