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

    When a job's runner exits, the processes it leaves behind in its process group (a
    server, a data loader started by the task) are ended too: SIGTERM at once, SIGKILL
    after ``leftover_grace`` seconds. A process meant to outlive its job must start in a
    session of its own (``subprocess.Popen(..., start_new_session=True)``).

    Args:
        max_jobs: how many jobs run at once (default: the number of CPUs).
        leftover_grace: seconds between SIGTERM and SIGKILL for processes a finished job
            left in its process group.
    """

    def __init__(self, max_jobs: int | None = None, *, leftover_grace: float = 5.0) -> None:
        if max_jobs is None:
            max_jobs = os.cpu_count() or 1
        if not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 1:
            raise LauncherOptionError(
                f"max_jobs: expected a positive int, found {max_jobs!r}. "
                "Use e.g. max_jobs=4 (default: the number of CPUs)."
            )
        self.max_jobs = max_jobs
        if not isinstance(leftover_grace, int | float) or not leftover_grace >= 0:
            raise LauncherOptionError(
                f"leftover_grace: expected seconds >= 0, found {leftover_grace!r}. "
                "Use e.g. leftover_grace=5.0 (the default)."
            )
        self.leftover_grace = float(leftover_grace)
        self._sweeps: set[asyncio.Task[None]] = set()
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
            if process.returncode is not None:
                self._sweep(process.pid)

    def _sweep(self, pgid: int) -> None:
        """End what the job left in its process group (already sent SIGTERM at its exit)."""
        if not _group_exists(pgid):
            return  # the usual case: nothing was left, or it obeyed the runner's SIGTERM
        task = asyncio.ensure_future(self._end_group(pgid))
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    async def _end_group(self, pgid: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.leftover_grace
        while _group_exists(pgid):
            if loop.time() >= deadline:
                _kill_group(pgid, signal.SIGKILL)
                return
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Wait until the processes finished jobs left behind are gone (``leftover_grace``)."""
        if self._sweeps:
            await asyncio.gather(*list(self._sweeps))

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


def _group_exists(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member.

    Called for the group of a runner just reaped: while any member lives, the kernel keeps
    the id reserved, so it cannot name a newer, unrelated group.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours to end
    return True


def _kill_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


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
    if process.returncode is not None:
        return process.returncode  # already reaped: its group id may belong to others now
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    held = [True]  # whether the exited runner is still unreaped (a zombie)
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
    else:

        def waiter() -> None:
            try:
                os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            except OSError:
                held[0] = False
                process.wait()
            loop.call_soon_threadsafe(_resolve, done)

        name = f"partita-wait-{process.pid}"
        threading.Thread(target=waiter, name=name, daemon=True).start()
        await done
    # The runner has exited but is not reaped yet, so its process group id cannot be
    # reused: end what it left in its group (it did so itself, unless it was killed).
    if held[0] and process.returncode is None:
        _kill_group(process.pid, signal.SIGTERM)
    return process.wait()
