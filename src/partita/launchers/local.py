"""Run jobs as processes on this machine, one per job, each in its own session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers._forkclient import ForkServer, ServerGone, can_inherit, reap_later
from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.workspace import JobPaths, final_marker, identity, is_alive


class LocalLauncher(Launcher, kind="local"):
    """Runs each job as a child process of the experiment, at most ``max_jobs`` at once.

    Jobs start in their own process session, so a Ctrl-C in the terminal reaches only the
    experiment (which then decides what to do with them) and a job survives the death of
    the experiment process. Completion is detected from the process exit, without polling.

    When a job's runner exits, the processes it leaves behind in its process group (a
    server, a data loader started by the task) are ended too: SIGTERM at once, SIGKILL
    after ``leftover_grace`` seconds. A process meant to outlive its job must start in a
    session of its own (``subprocess.Popen(..., start_new_session=True)``).

    Jobs start, where that is safe, as forks of a warm process (a fork server that has
    imported the runner and the tasks' modules), about a millisecond each instead of a
    fresh interpreter's tens; see docs/forkserver.md for when it is used and what it
    isolates. ``isolation="spawn"`` starts every job in a fresh interpreter.

    Args:
        max_jobs: how many jobs run at once (default: the number of CPUs).
        leftover_grace: seconds between SIGTERM and SIGKILL for processes a finished job
            left in its process group.
        isolation: ``"fork"`` (warm processes where safe) or ``"spawn"`` (a fresh
            interpreter per job); default: ``$PARTITA_ISOLATION``, else ``"fork"``.
    """

    #: A runner started here blocks on the job lock at once: the attempt and its handle
    #: are recorded in one write (see ``Launcher.record_after_launch``).
    record_after_launch = True

    def __init__(
        self,
        max_jobs: int | None = None,
        *,
        leftover_grace: float = 5.0,
        isolation: str | None = None,
    ) -> None:
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
        if isolation is None:
            isolation = os.environ.get("PARTITA_ISOLATION") or "fork"
        if isolation not in ("fork", "spawn"):
            raise LauncherOptionError(
                f"isolation: expected 'fork' or 'spawn', found {isolation!r}. Use "
                "isolation='spawn' to start every job in a fresh interpreter (default: 'fork', "
                "a fork of a warm process where that is safe; see docs/forkserver.md)."
            )
        self.isolation = isolation
        self._servers: dict[tuple[str, str | None], ForkServer] = {}
        self._retired: list[ForkServer] = []
        self._refused: set[str] = set()
        #: Forked children: their server, job folder, and whether the word that their runner
        #: finished may end the wait (:meth:`_wait_forked`).
        self._forked: dict[int, tuple[ForkServer, JobPaths, bool]] = {}
        #: Forked children whose runner finished, waited for until they exit (_after_exit).
        self._exiting: set[int] = set()
        self._crashes = 0
        self._sweeps: set[asyncio.Task[None]] = set()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._limits: dict[int, float] = {}
        self._env_cache: tuple[dict[Any, Any], dict[str, str], dict[str, str]] | None = None

    @property
    def capacity(self) -> int | None:
        return self.max_jobs

    def describe(self) -> str:
        spawn = ", spawned" if self.isolation == "spawn" else ""
        return f"local ({self.max_jobs} at once{spawn})"

    async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
        handles = []
        for request in requests:
            base = self._environment(request.env)
            own = {"PARTITA_ATTEMPT": str(request.attempt)}
            limit = request.resources.get("time")
            if limit:
                own["PARTITA_DEADLINE"] = str(time.time() + float(limit))
                # Stopping.remaining in the task: the time left until the SIGKILL.
                own["PARTITA_KILL_AT"] = str(float(own["PARTITA_DEADLINE"]) + LIMIT_GRACE)
            if request.resources.get("mem"):
                own["PARTITA_MEMORY_LIMIT"] = str(int(request.resources["mem"]))
            handle = await self._fork(request, base, own) if self._forking() else None
            if handle is None:
                handle = self._spawn(request, {**base, **own})
            if limit:
                self._limits[int(handle["pid"])] = float(limit)
                handle["deadline"] = float(own["PARTITA_DEADLINE"])
            handles.append(handle)
        return handles

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        """``os.environ`` with ``extra``: one dict, shared by the launches (never modified),
        made again only when either changed (a copy of ``os.environ`` decodes every
        variable: it cost more than the rest of a launch)."""
        data = getattr(os.environ, "_data", None)  # the raw variables (CPython)
        cached = self._env_cache
        if cached is not None and data is not None and cached[0] == data and cached[1] == extra:
            return cached[2]
        env = {**os.environ, **extra}
        if data is not None:
            self._env_cache = (dict(data), dict(extra), env)
        return env

    def warm(self, env: Mapping[str, str]) -> None:
        """Start the fork server of the default interpreter now, before the first launch.

        Called by the experiment as it is entered, before it starts any thread: if this
        process is single-threaded and safe to fork then, the server is a fork of it (ready
        at once, with the modules the script imported); otherwise a fresh interpreter that
        imports the job runner while the script submits its tasks (docs/forkserver.md).
        Called again later (from the scheduler's loop), it does nothing more.
        """
        if not self._forking():
            return
        full = {**os.environ, **env}
        key = (LaunchRequest.python, full.get("PYTHONPATH"))
        known = self._servers.get(key)
        if known is not None and known.alive and not known.retiring:
            return
        inherit = key[0] == sys.executable and can_inherit() is None
        self._start_server(key, full, None, inherit=inherit)

    def _spawn(self, request: LaunchRequest, env: dict[str, str]) -> dict[str, Any]:
        paths = request.paths
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
        return {"kind": self.kind, **identity(process.pid)}

    # --- warm processes: a fork server per interpreter and PYTHONPATH --------------------

    def _forking(self) -> bool:
        return self.isolation == "fork" and _FORK_SUPPORTED and self._crashes < _MAX_CRASHES

    async def _fork(
        self, request: LaunchRequest, base: dict[str, str], own: dict[str, str]
    ) -> dict[str, Any] | None:
        """Start the job as a fork of a warm server; ``None``: spawn it instead.

        Its environment is ``base`` (from :meth:`_environment`) with the job's ``own``
        variables, told to the server as what differs from the server's environment.
        """
        key = (request.python, base.get("PYTHONPATH"))
        for _ in range(2):  # a server whose modules changed on disk is replaced once
            server = self._server(key, base)
            if server is None:
                return None
            changes, unset = server.differences(base)
            if own:
                unset = [k for k in unset if k not in own]
                changes = {**changes, **{k: v for k, v in own.items() if server.env.get(k) != v}}
            reply = await server.request(
                {
                    "op": "run",
                    "jobdir": str(request.paths.root),
                    "attempt": request.attempt,
                    "env": changes,
                    "unset": unset,
                    "append_logs": request.append_logs,
                }
            )
            if reply is None:  # the server died: this job (and no other) is spawned
                self._crashes += 1
                self._servers.pop(key, None)
                return None
            if "pid" in reply:
                pid = int(reply["pid"])
                # A GPU is free only once the process holding its context is gone.
                early = not request.resources.get("gpus")
                self._forked[pid] = (server, request.paths, early)
                return {"kind": self.kind, **reply["identity"]}
            if reply.get("retire") or "stale" in reply:
                self._retire(key)
            if "stale" in reply:
                continue
            if reply.get("key"):
                self._refused.add(str(reply["key"]))
            return None
        return None

    def _server(self, key: tuple[str, str | None], env: Mapping[str, str]) -> ForkServer | None:
        loop = asyncio.get_running_loop()
        server = self._servers.get(key)
        if server is not None and server.alive and not server.retiring:
            if server.loop is None:
                server.attach(loop)  # started by ``warm`` before the loop ran
            if server.loop is loop:
                return server
        return self._start_server(key, env, loop, inherit=False)

    def _start_server(
        self,
        key: tuple[str, str | None],
        env: Mapping[str, str],
        loop: asyncio.AbstractEventLoop | None,
        *,
        inherit: bool,
    ) -> ForkServer | None:
        self._retire(key)
        base = {k: v for k, v in env.items() if k not in _PER_JOB}
        try:
            server = ForkServer(key[0], base, self._refused, loop, inherit=inherit)
        except OSError:
            if inherit:
                return self._start_server(key, env, loop, inherit=False)
            self._crashes = _MAX_CRASHES  # this interpreter cannot run it: spawn from now on
            return None
        self._servers[key] = server
        return server

    def _retire(self, key: tuple[str, str | None]) -> None:
        server = self._servers.pop(key, None)
        if server is None:
            return
        if server.loop is None:
            server.discard()  # never asked anything: it exits at once
            return
        server.retire()
        if server.exits:
            self._retired.append(server)
        else:
            server.release()

    async def wait(self, handle: dict[str, Any]) -> Exit:
        pid = int(handle["pid"])
        forked = self._forked.pop(pid, None)
        if forked is not None:
            return await self._wait_forked(handle, *forked)
        process = self._children.get(pid)
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
            await self.cancel(handle, grace=LIMIT_GRACE)
            code = await waiting
            return Exit(code, "timeout", f"stopped at its time limit of {limit:g} s")
        finally:
            self._children.pop(process.pid, None)
            if process.returncode is not None:
                self._sweep(process.pid)

    async def _wait_forked(
        self, handle: dict[str, Any], server: ForkServer, paths: JobPaths, early_end: bool
    ) -> Exit:
        """Wait for the fork server's word that the child ended (or, if it died, for the pid).

        The server tells first that the child's runner finished, then that the child
        exited (most of a millisecond later: a warm interpreter's address space is torn
        down). Once the job's outcome is on disk, the first word is enough: a dependant
        starts without waiting for the exit, and what the job left in its process group is
        swept when the exit comes (:meth:`_after_exit`). Not for a job that asked for GPUs
        (``early_end`` false): its devices are free only once its process is gone.
        """
        pid = int(handle["pid"])
        limit = self._limits.pop(pid, None)
        ended = server.exits[pid]
        early = server.endings.get(pid) if early_end else None
        timed_out = False
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        try:
            if early is not None:
                either: set[asyncio.Future[Any]] = {ended, early}
                done, _ = await asyncio.wait(
                    either, timeout=limit, return_when=asyncio.FIRST_COMPLETED
                )
                # Trusted only once the outcome is recorded (a task could write anything).
                if (
                    early in done
                    and early.exception() is None
                    and not ended.done()
                    and final_marker(paths) is not None
                ):
                    self._after_exit(pid, server, ended)  # which forgets the child
                    return Exit(early.result())
            if deadline is not None:
                finished, _ = await asyncio.wait({ended}, timeout=max(0.0, deadline - loop.time()))
                if not finished:
                    timed_out = True
                    await self.cancel(handle, grace=LIMIT_GRACE)
            code = await ended
        except ServerGone:
            # The child runs on, reparented; it ends (and records its outcome) by itself.
            await _wait_gone(handle)
            code = None
        else:
            # The server reaped it after ending what it left in its group; sweep the rest.
            self._sweep(pid)
        finally:
            server.endings.pop(pid, None)
            if pid not in self._exiting:
                server.exits.pop(pid, None)
        if timed_out:
            return Exit(code, "timeout", f"stopped at its time limit of {limit:g} s")
        return Exit(code)

    def _after_exit(self, pid: int, server: ForkServer, ended: asyncio.Future[int | None]) -> None:
        """Once child ``pid`` (whose runner finished) has exited: sweep its process group."""

        async def sweep() -> None:
            try:
                await ended
            except ServerGone:
                pass  # reparented, it ends by itself; it ran its runner's own sweep
            else:
                self._sweep(pid)
            finally:
                self._exiting.discard(pid)
                server.exits.pop(pid, None)

        self._exiting.add(pid)
        task = asyncio.ensure_future(sweep())
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

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
        """Wait until the processes finished jobs left behind are gone (``leftover_grace``).

        Fork servers are told to stop: each exits once its last child has ended.
        """
        for key in list(self._servers):
            self._retire(key)
        for server in self._retired:
            server.retire()
        servers, self._retired = self._retired, []
        while self._sweeps:  # a child's exit awaited (_after_exit) may start a sweep
            await asyncio.gather(*list(self._sweeps))
        for server in servers:
            await server.finish()
            server.release()
        reap_later()  # the servers that have exited already; the others at the next close

    async def _wait_foreign(self, handle: dict[str, Any]) -> Exit:
        await _poll_gone(handle)
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


async def _poll_gone(handle: dict[str, Any]) -> None:
    delay = 0.05
    while is_alive(handle) is not False:
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)


async def _wait_gone(handle: dict[str, Any]) -> None:
    """Wait until a process that is not our child ends: a pidfd where possible, else polls."""
    try:
        fd = os.pidfd_open(int(handle["pid"]))
    except (AttributeError, OSError):
        await _poll_gone(handle)
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    try:
        if is_alive(handle) is not True:
            return  # it ended (or the pid names another process now)
        loop.add_reader(fd, _resolve, done)
        try:
            await done
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


#: Whether this system can fork a warm interpreter safely (macOS and Linux).
_FORK_SUPPORTED = hasattr(os, "fork") and hasattr(os, "waitid") and sys.platform != "win32"
#: After this many fork servers died, jobs are spawned.
_MAX_CRASHES = 3
#: Environment variables set per job, not part of a fork server's own environment.
_PER_JOB = ("PARTITA_ATTEMPT", "PARTITA_DEADLINE", "PARTITA_KILL_AT", "PARTITA_MEMORY_LIMIT")
#: Seconds between the SIGTERM at a job's time limit and the SIGKILL.
LIMIT_GRACE = 5.0
