"""Run jobs as processes on this machine, one per job, in their own session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.workspace import identity, is_alive


class LocalLauncher(Launcher, kind="local"):
    """Runs each job as a child process of the experiment, at most ``max_jobs`` at once.

    Jobs start in their own process session, so a Ctrl-C in the terminal reaches only the
    experiment (which then decides what to do with them) and a job survives the death of
    the experiment process. Completion is detected from the process exit, without polling.

    Args:
        max_jobs: how many jobs run at once (default: the number of CPUs).
    """

    def __init__(self, max_jobs: int | None = None) -> None:
        if max_jobs is None:
            max_jobs = os.cpu_count() or 1
        if not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 1:
            raise LauncherOptionError(
                f"max_jobs: expected a positive int, found {max_jobs!r}. "
                "Use e.g. max_jobs=4 (default: the number of CPUs)."
            )
        self.max_jobs = max_jobs
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._limits: dict[int, float] = {}

    @property
    def capacity(self) -> int | None:
        return self.max_jobs

    def describe(self) -> str:
        return f"local ({self.max_jobs} at once)"

    async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
        handles = []
        for request in requests:
            paths = request.paths
            env = {**os.environ, **request.env, "PARTITA_ATTEMPT": str(request.attempt)}
            limit = request.resources.get("time")
            if limit:
                env["PARTITA_DEADLINE"] = str(time.time() + float(limit))
            if request.resources.get("mem"):
                env["PARTITA_MEMORY_LIMIT"] = str(int(request.resources["mem"]))
            mode = "ab" if request.append_logs else "wb"
            try:
                with open(paths.stdout, mode) as out, open(paths.stderr, mode) as err:
                    process = subprocess.Popen(
                        request.command(),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        cwd=paths.root,
                        env=env,
                        start_new_session=True,
                        close_fds=True,
                    )
            except OSError as exc:
                raise LauncherError(
                    f"cannot start the job process for {request.name}: {exc}. "
                    f"Check that {request.python} exists and the job folder is writable."
                ) from exc
            self._children[process.pid] = process
            if limit:
                self._limits[process.pid] = float(limit)
            handle: dict[str, Any] = {"kind": self.kind, **identity(process.pid)}
            if limit:
                handle["deadline"] = float(env["PARTITA_DEADLINE"])
            handles.append(handle)
        return handles

    async def wait(self, handle: dict[str, Any]) -> Exit:
        process = self._children.get(int(handle["pid"]))
        if process is None:
            return await self._wait_foreign(handle)
        limit = self._limits.pop(process.pid, None)
        try:
            if limit is None:
                return Exit(await _wait_child(process))
            waiting = asyncio.ensure_future(_wait_child(process))
            done, _ = await asyncio.wait({waiting}, timeout=limit)
            if done:
                return Exit(waiting.result())
            await self.cancel(handle, grace=5.0)
            code = await waiting
            return Exit(code, "timeout", f"stopped at its time limit of {limit:g} s")
        finally:
            self._children.pop(process.pid, None)

    async def _wait_foreign(self, handle: dict[str, Any]) -> Exit:
        delay = 0.05
        while is_alive(handle) is not False:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        return Exit(None)

    async def alive(self, handle: dict[str, Any]) -> bool | None:
        return is_alive(handle)

    async def cancel(self, handle: dict[str, Any], grace: float) -> None:
        pid = int(handle["pid"])
        if is_alive(handle) is not True:
            return
        _signal_group(pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + grace
        while is_alive(handle) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if is_alive(handle):
            _signal_group(pid, signal.SIGKILL)

    # --- about handles, from any process ------------------------------------------------

    @classmethod
    def started(cls, handle: Mapping[str, Any]) -> bool:
        return "pid" in handle

    @classmethod
    def describe_handle(cls, handle: Mapping[str, Any]) -> str:
        if "pid" not in handle:
            return "local (starting)"
        host = f" on {handle['host']}" if handle.get("host") else ""
        return f"local, pid {handle['pid']}{host}"

    @classmethod
    def host(cls, handle: Mapping[str, Any]) -> str | None:
        host = handle.get("host")
        return host if isinstance(host, str) else None

    @classmethod
    def probe(cls, handle: Mapping[str, Any]) -> bool | None:
        """From this machine: whether that process (same boot, same start time) runs."""
        return is_alive(dict(handle))

    @classmethod
    def kill(cls, handle: Mapping[str, Any], grace: float = 10.0) -> None:
        """SIGTERM to the job's process group, SIGKILL after ``grace`` seconds."""
        record = dict(handle)
        if is_alive(record) is not True:
            return
        pid = int(record["pid"])
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while is_alive(record) and time.monotonic() < deadline:
            time.sleep(0.05)
        if is_alive(record):
            _signal_group(pid, signal.SIGKILL)

    @classmethod
    def time_left(cls, handle: Mapping[str, Any]) -> float | None:
        deadline = handle.get("deadline")
        if not isinstance(deadline, int | float):
            return None
        return max(0.0, float(deadline) - time.time())

    @classmethod
    def follower(cls, handle: Mapping[str, Any]) -> LocalLauncher:
        return cls(1)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _wait_child(process: subprocess.Popen[bytes]) -> int:
    """Wait for a child without blocking the loop: a pidfd where possible, else a thread."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        loop.add_reader(fd, _resolve, done)
        try:
            await done
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        return process.wait()

    def waiter() -> None:
        process.wait()
        loop.call_soon_threadsafe(_resolve, done)

    threading.Thread(target=waiter, name=f"partita-wait-{process.pid}", daemon=True).start()
    await done
    return process.wait()
