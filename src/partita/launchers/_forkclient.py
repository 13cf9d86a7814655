"""The local launcher's side of a fork server (``python -m partita._forkserver``)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
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
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.env = env
        self.loop = loop
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
        self.replies: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
        self.exits: dict[int, asyncio.Future[int | None]] = {}
        self.gone: asyncio.Future[None] = loop.create_future()
        self._pending = bytearray()
        self._received = b""
        self._writing = False
        loop.add_reader(self._stdout.fileno(), self._readable)

    async def request(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Send one request; its reply, or ``None`` if the server died first."""
        if not self.alive or self.retiring:
            return None
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
        if self.exits or not self.alive:
            self._reap()
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.gone), timeout)
        except TimeoutError:
            pass
        self._reap()

    def _close_input(self) -> None:
        if self._writing:
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
            if not self._writing:
                self.loop.add_writer(self._stdin.fileno(), self._flush)
                self._writing = True
            return
        except OSError:
            self._gone()
            return
        if self._writing:
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
        if "exit" in message:
            ended = self.exits.get(int(message["exit"]))
            if ended is not None and not ended.done():
                code = message.get("code")
                ended.set_result(None if code is None else int(code))
            return
        if "pid" in message:
            self.exits[int(message["pid"])] = self.loop.create_future()
        if self.replies:
            reply = self.replies.popleft()
            if not reply.done():
                reply.set_result(message)

    def _gone(self) -> None:
        if not self.alive:
            return
        self.alive = False
        self.loop.remove_reader(self._stdout.fileno())
        self._close_input()
        self._stdout.close()
        futures: list[asyncio.Future[Any]] = [*self.replies, *self.exits.values()]
        for future in futures:
            if not future.done():
                future.set_exception(ServerGone())
                future.exception()  # retrieved: a job nobody waits for must not warn
        self.replies.clear()
        if not self.gone.done():
            self.gone.set_result(None)
        self._reap()

    def _reap(self) -> None:
        try:
            self.process.wait(timeout=0 if self.alive else 1.0)
        except subprocess.TimeoutExpired:
            pass
