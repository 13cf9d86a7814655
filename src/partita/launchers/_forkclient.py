"""The local launcher's side of a fork server (``python -m partita._forkserver``)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any


class ServerGone(Exception):
    """The fork server died before it told what was asked."""


class ForkServer:
    """The launcher's side of one fork server (``python -m partita._forkserver``).

    Requests and replies are JSON lines; the server answers requests in order and reports
    the exit of each child it forked (see the module ``partita._forkserver``).
    """

    def __init__(
        self,
        python: str,
        env: dict[str, str],
        refused: set[str],
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        inherit: bool = False,
    ) -> None:
        """Start the server: a fresh ``python -m partita._forkserver``, or with ``inherit``
        a fork of this process (which must be single-threaded: see :func:`can_inherit`).

        Without ``loop`` it is attached to an event loop at its first use (:meth:`attach`).
        """
        self.env = env
        self.inherited = inherit
        self.process: subprocess.Popen[bytes] | _Forked
        if inherit:
            self.process = _Forked(env, refused)
        else:
            self.process = subprocess.Popen(
                [python, "-m", "partita._forkserver", json.dumps(sorted(refused))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # Not the experiment's stderr: a server outliving the experiment (detached
                # jobs) must not hold the pipe of whoever reads the experiment's output.
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=os.sep,
                start_new_session=True,
                close_fds=True,
                bufsize=0,
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin = self.process.stdin
        self._stdout = self.process.stdout
        os.set_blocking(self._stdin.fileno(), False)
        os.set_blocking(self._stdout.fileno(), False)
        self.alive = True
        self.retiring = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.replies: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
        self.exits: dict[int, asyncio.Future[int | None]] = {}
        #: Per child, the server's word that its runner finished (before the exit itself):
        #: the code it exits with.
        self.endings: dict[int, asyncio.Future[int]] = {}
        self._pending = bytearray()
        self._received = b""
        self._writing = False
        self._differences: tuple[dict[str, str], dict[str, str], list[str]] | None = None
        if loop is not None:
            self.attach(loop)

    def differences(self, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """What ``env`` sets differently from the server's environment, and what it lacks.

        Remembered for the last ``env`` (the launcher passes the same dict while the
        environment does not change): not compared again for every job.
        """
        known = self._differences
        if known is not None and known[0] is env:
            return known[1], known[2]
        changes = {k: v for k, v in env.items() if self.env.get(k) != v}
        unset = [k for k in self.env if k not in env]
        self._differences = (env, changes, unset)
        return changes, unset

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Follow the server from ``loop`` (once, before the first request)."""
        assert self.loop is None
        self.loop = loop
        self.gone: asyncio.Future[None] = loop.create_future()
        if self.alive:
            loop.add_reader(self._stdout.fileno(), self._readable)

    def discard(self) -> None:
        """Stop a server never attached to a loop (nothing was asked of it), without waiting:
        end its input (it exits when it sees that); it is reaped later (:func:`reap_later`)."""
        self.retiring = True
        self.alive = False
        self._close_input()
        self._stdout.close()
        self.release()

    def release(self) -> None:
        """Forget a server told to stop whose children have all been reported: it is reaped
        when it has exited (:func:`reap_later`), without waiting for it here."""
        if isinstance(self.process, _Forked):
            if self.process.returncode is None and self.process.pid not in _unreaped:
                _unreaped.append(self.process.pid)
            reap_later()
        else:
            self._reap()  # a Popen left unreaped is reaped by the subprocess module later

    async def request(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Send one request; its reply, or ``None`` if the server died first."""
        if not self.alive or self.retiring:
            return None
        assert self.loop is not None
        reply: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self.replies.append(reply)
        self._pending += (json.dumps(message) + "\n").encode()
        self._flush()
        try:
            return await reply
        except ServerGone:
            return None

    def retire(self) -> None:
        """Fork no more: end its input; it exits once its children have ended."""
        self.retiring = True
        if not self._pending:
            self._close_input()

    async def finish(self, timeout: float = 5.0) -> None:
        """Wait (a bounded time) for the server to exit, once all its children are reported."""
        if self.loop is None:  # never used: it exits as soon as it sees its input end
            self.discard()
            return
        if self.exits or not self.alive:
            self._reap()
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.gone), timeout)
        except TimeoutError:
            pass
        self._reap()

    def _close_input(self) -> None:
        if self._writing and self.loop is not None:
            self.loop.remove_writer(self._stdin.fileno())
            self._writing = False
        if not self._stdin.closed:
            self._stdin.close()

    def _flush(self) -> None:
        if self._stdin.closed:
            return
        try:
            while self._pending:
                written = os.write(self._stdin.fileno(), self._pending)
                del self._pending[:written]
        except BlockingIOError:
            if not self._writing and self.loop is not None:
                self.loop.add_writer(self._stdin.fileno(), self._flush)
                self._writing = True
            return
        except OSError:
            self._gone()
            return
        if self._writing and self.loop is not None:
            self.loop.remove_writer(self._stdin.fileno())
            self._writing = False
        if self.retiring:
            self._close_input()

    def _readable(self) -> None:
        try:
            data = os.read(self._stdout.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._gone()
            return
        *lines, self._received = (self._received + data).split(b"\n")
        for line in lines:
            self._dispatch(json.loads(line))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "ended" in message:
            ending = self.endings.get(int(message["ended"]))
            if ending is not None and not ending.done():
                ending.set_result(int(message["code"]))
            return
        if "exit" in message:
            ended = self.exits.get(int(message["exit"]))
            if ended is not None and not ended.done():
                code = message.get("code")
                ended.set_result(None if code is None else int(code))
            return
        if "pid" in message:
            assert self.loop is not None
            self.exits[int(message["pid"])] = self.loop.create_future()
            self.endings[int(message["pid"])] = self.loop.create_future()
        if self.replies:
            reply = self.replies.popleft()
            if not reply.done():
                reply.set_result(message)

    def _gone(self) -> None:
        if not self.alive:
            return
        self.alive = False
        if self.loop is not None:
            self.loop.remove_reader(self._stdout.fileno())
        self._close_input()
        self._stdout.close()
        futures: list[asyncio.Future[Any]] = [
            *self.replies,
            *self.exits.values(),
            *self.endings.values(),
        ]
        for future in futures:
            if not future.done():
                future.set_exception(ServerGone())
                future.exception()  # retrieved: a job nobody waits for must not warn
        self.replies.clear()
        if self.loop is not None and not self.gone.done():
            self.gone.set_result(None)
        self._reap()

    def _reap(self) -> None:
        """Reap the server if it has exited. A server forked from this process is not waited
        for: it closes its output before it exits, and the teardown of its address space
        that follows takes milliseconds; it is reaped later (:func:`reap_later`)."""
        forked = isinstance(self.process, _Forked)
        try:
            self.process.wait(timeout=0 if self.alive or forked else 1.0)
        except subprocess.TimeoutExpired:
            if forked:
                self.release()


#: Forked servers told to stop but not reaped yet (they exit at once when unused). Not
#: waited for: each is reaped by the next server start or experiment end of this process
#: once it has exited (until then it is a zombie, holding no resource but its pid).
_unreaped: list[int] = []


def reap_later() -> None:
    """Reap, without waiting, the forked servers that have exited since they were told to stop."""
    for pid in list(_unreaped):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _unreaped.remove(pid)


#: How a server forked from this process serves (``serve(inp, out, env, refused)``, which
#: never returns into the caller's code) and why forking this process is unsafe now
#: (``unsafe() -> str | None``): installed by the job side (``partita._forkserver``, a layer
#: above this one) through :func:`install_inherited_server`.
_inherited: list[tuple[Callable[[int, int, dict[str, str], set[str]], int], Callable[[], Any]]] = []


def install_inherited_server(
    serve: Callable[[int, int, dict[str, str], set[str]], int], unsafe: Callable[[], Any]
) -> None:
    """Let launchers fork their server from this process (see :func:`can_inherit`)."""
    _inherited[:] = [(serve, unsafe)]


#: The largest resident size of the experiment process that its fork server may inherit:
#: beyond it (a script that loaded a data set before entering), the server is fresh.
INHERIT_MAX_RSS = 512 * 2**20


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def can_inherit() -> str | None:
    """Why this process cannot be the fork server's parent image now (``None``: it can).

    A forked server inherits this process's memory: it must have only one thread (the
    child of a threaded process may inherit a lock another thread held) and nothing that
    forbids forking (``partita._forkserver.unsafe_reason``).
    """
    if not sys.platform.startswith("linux"):
        # Elsewhere (macOS) threads of system libraries cannot be counted, and some of
        # them do not survive a fork: the server is a fresh interpreter there.
        return "the experiment process is forked from on Linux only"
    if not _inherited:
        return "no server to run in a fork of this process"
    resident = _resident_bytes()
    if resident is not None and resident > INHERIT_MAX_RSS:
        # Its jobs would hold (and count, against ``mem=`` too) what the script loaded.
        return f"the experiment process holds {resident >> 20} MiB"
    why = _inherited[0][1]()
    return None if why is None else str(why)


class _Forked:
    """A fork server forked from this process (``serve`` of :func:`install_inherited_server`),
    with the parts of ``subprocess.Popen`` that :class:`ForkServer` uses."""

    def __init__(self, env: dict[str, str], refused: set[str]) -> None:
        reap_later()  # the servers of earlier experiments of this process
        serve = _inherited[0][0]
        server_in, to_server = os.pipe()
        from_server, server_out = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # not written twice by the child
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        try:
            pid = os.fork()
        except OSError:
            for fd in (server_in, to_server, from_server, server_out):
                os.close(fd)
            raise
        if pid == 0:  # the server: it never returns into the caller
            code = 1
            try:
                os.close(to_server)
                os.close(from_server)
                code = serve(server_in, server_out, env, refused)
            finally:
                os._exit(code)
        os.close(server_in)
        os.close(server_out)
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = os.fdopen(to_server, "wb", buffering=0)
        self.stdout = os.fdopen(from_server, "rb", buffering=0)

    def wait(self, timeout: float | None = None) -> int:
        """Reap it (as ``Popen.wait``: ``subprocess.TimeoutExpired`` after ``timeout``)."""
        import time

        if self.returncode is not None:
            return self.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                pid, status = os.waitpid(self.pid, 0 if timeout is None else os.WNOHANG)
            except ChildProcessError:
                self.returncode = 0
                return 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return self.returncode
            assert deadline is not None
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired("partita fork server", timeout or 0.0)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
