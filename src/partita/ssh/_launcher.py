"""``SSH([...]).launcher()``: job processes spread over hosts that share a file system.

The experiment runs on one host (see docs/ssh.md); this launcher starts each job's
runner on a free slot of one of the hosts, over SSH: one command per host per launch
batch, one command per host per poll round for every job running there, whatever their
number. A host whose connection cannot be reopened is marked down: its jobs end as
``lost`` (retried elsewhere by the retry policy) and it gets no more jobs.

Each slot is one job at a time; ``CUDA_VISIBLE_DEVICES`` is set per slot (slot ``i`` of
a host sees device ``i``, or ``cuda_devices[i]``).
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.ssh._connection import Connection, Target
from partita.ssh._errors import SSHError

__all__ = ["HostsLauncher"]


@dataclass
class _Host:
    index: int
    name: str
    slots: list[str | None]  # job name per slot, None when free
    down: str = ""
    watched: dict[int, asyncio.Future[Exit]] = field(default_factory=dict)


class HostsLauncher(Launcher, kind="ssh"):
    """Runs jobs on the hosts of an :class:`partita.SSH`, ``slots_per_host`` at a time each.

    Create it with ``SSH([...]).launcher(slots_per_host=2)``.
    """

    def __init__(
        self,
        connections: Sequence[Connection] = (),
        *,
        python: str = "python3",
        slots_per_host: int = 1,
        cuda_devices: Sequence[str] | None = None,
        poll_interval: float = 0.5,
        host_patience: float = 10.0,
    ) -> None:
        if (
            not isinstance(slots_per_host, int)
            or isinstance(slots_per_host, bool)
            or (slots_per_host < 1)
        ):
            raise LauncherOptionError(
                f"slots_per_host: expected a positive int, found {slots_per_host!r}. Use e.g. "
                "slots_per_host=2 (one per GPU)."
            )
        if cuda_devices is not None and len(cuda_devices) < slots_per_host:
            raise LauncherOptionError(
                f"cuda_devices: expected one device per slot ({slots_per_host}), found "
                f"{list(cuda_devices)!r}."
            )
        if not connections:
            raise LauncherOptionError(
                "HostsLauncher: expected the SSH hosts; create it with SSH([...]).launcher()."
            )
        self.connections = list(connections)
        self.python = python
        self.slots_per_host = slots_per_host
        self.cuda_devices = list(cuda_devices) if cuda_devices is not None else None
        self.poll_interval = poll_interval
        self.host_patience = host_patience
        self._hosts = [
            _Host(i, str(conn.target), [None] * slots_per_host)
            for i, conn in enumerate(self.connections)
        ]
        self._free = asyncio.Condition() if _has_loop() else None
        self._poller: asyncio.Task[None] | None = None
        self._wakers: set[asyncio.Future[None]] = set()

    @property
    def capacity(self) -> int | None:
        return sum(len(h.slots) for h in self._hosts if not h.down) or 1

    def describe(self) -> str:
        names = ", ".join(h.name + (" (down)" if h.down else "") for h in self._hosts)
        return f"ssh hosts {names} ({self.slots_per_host} slot(s) each)"

    # --- launching ---------------------------------------------------------------------------

    def _condition(self) -> asyncio.Condition:
        if self._free is None:
            self._free = asyncio.Condition()
        return self._free

    async def _take_slot(self, name: str) -> tuple[_Host, int]:
        condition = self._condition()
        async with condition:
            while True:
                alive = [h for h in self._hosts if not h.down]
                if not alive:
                    raise LauncherError(
                        "every SSH host is down ("
                        + "; ".join(f"{h.name}: {h.down}" for h in self._hosts)
                        + "). Check the hosts, then run the experiment again."
                    )
                # The host with the most free slots, so that jobs spread out.
                best = max(alive, key=lambda h: (h.slots.count(None), -h.index))
                if None in best.slots:
                    slot = best.slots.index(None)
                    best.slots[slot] = name
                    return best, slot
                await condition.wait()

    async def _free_slot(self, host: _Host, slot: int) -> None:
        condition = self._condition()
        async with condition:
            host.slots[slot] = None
            condition.notify_all()

    def _device(self, slot: int) -> str:
        return self.cuda_devices[slot] if self.cuda_devices is not None else str(slot)

    async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
        placed = [(request, *await self._take_slot(request.name)) for request in requests]
        by_host: dict[int, list[tuple[int, LaunchRequest, int]]] = {}
        for position, (request, host, slot) in enumerate(placed):
            by_host.setdefault(host.index, []).append((position, request, slot))
        handles: list[dict[str, Any]] = [{} for _ in requests]

        async def start(index: int, batch: list[tuple[int, LaunchRequest, int]]) -> None:
            host = self._hosts[index]
            lines = []
            for _position, request, slot in batch:
                env = {
                    **request.env,
                    "PARTITA_ATTEMPT": str(request.attempt),
                    "CUDA_VISIBLE_DEVICES": self._device(slot),
                    "PARTITA_SSH_HOST": host.name,
                }
                assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
                redirect = ">>" if request.append_logs else ">"
                folder = shlex.quote(str(request.paths.root))
                command = " ".join(shlex.quote(part) for part in request.command())
                lines.append(
                    f"(cd {folder} && exec setsid env {assignments} {command} </dev/null "
                    f"{redirect}{shlex.quote(str(request.paths.stdout))} "
                    f"2{redirect}{shlex.quote(str(request.paths.stderr))}) & echo $!"
                )
            result = await asyncio.to_thread(self._run, index, "\n".join(lines))
            pids = result.split()
            if len(pids) != len(batch):
                raise LauncherError(
                    f"could not start {len(batch)} job(s) on {host.name}: it answered {result!r}."
                )
            for (position, _request, slot), pid in zip(batch, pids, strict=True):
                handles[position] = {
                    "kind": self.kind,
                    "host": host.name,
                    "pid": int(pid),
                    "slot": slot,
                    "cuda": self._device(slot),
                    "python": self.python,
                }

        try:
            await asyncio.gather(*(start(i, batch) for i, batch in by_host.items()))
        except BaseException:
            for _request, host, slot in placed:
                await self._free_slot(host, slot)
            raise
        return handles

    def _run(self, index: int, command: str) -> str:
        """Run ``command`` on host ``index`` (a thread); reconnect once, else mark it down."""
        conn = self.connections[index]
        try:
            result = conn.run(command)
        except SSHError:
            try:
                conn.reconnect(self.host_patience)
                result = conn.run(command)
            except SSHError as exc:
                raise _HostDown(str(exc)) from None
        if result.exit_status != 0:
            raise LauncherError(
                f"a command failed on {conn.target} (exit status {result.exit_status}): "
                f"{result.error_text[:500]}"
            )
        return result.text

    # --- following ---------------------------------------------------------------------------

    def _host_of(self, handle: Mapping[str, Any]) -> _Host:
        for host in self._hosts:
            if host.name == handle.get("host"):
                return host
        raise LauncherError(f"no host {handle.get('host')!r} in {self.describe()}.")

    async def wait(self, handle: dict[str, Any]) -> Exit:
        host = self._host_of(handle)
        pid = int(handle["pid"])
        slot = handle.get("slot")
        future: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        host.watched[pid] = future
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())
        try:
            return await future
        finally:
            host.watched.pop(pid, None)
            if isinstance(slot, int) and host.slots[slot] is not None:
                await self._free_slot(host, slot)

    async def _poll(self) -> None:
        """One command per host per round: which of its watched pids still run."""
        while any(h.watched for h in self._hosts):
            await asyncio.gather(*(self._poll_host(h) for h in self._hosts if h.watched))
            await asyncio.sleep(self.poll_interval)

    async def _poll_host(self, host: _Host) -> None:
        pids = sorted(host.watched)
        try:
            text = await asyncio.to_thread(self._run, host.index, _alive_command(pids))
        except _HostDown as exc:
            self._mark_down(host, str(exc))
            return
        except LauncherError:
            return  # try again next round
        running = {int(p) for p in text.split()}
        for pid in pids:
            future = host.watched.get(pid)
            if pid not in running and future is not None and not future.done():
                future.set_result(Exit(None))

    def _mark_down(self, host: _Host, why: str) -> None:
        host.down = why
        sys.stderr.write(
            f"partita: SSH host {host.name} is down ({why}); its jobs are lost and will be "
            "retried on the other hosts if their retry policy allows\n"
        )
        sys.stderr.flush()
        for future in host.watched.values():
            if not future.done():
                future.set_result(Exit(None, "lost", f"its host {host.name} went down"))
        if self._free is not None:

            async def wake() -> None:
                async with self._condition():
                    self._condition().notify_all()

            self._wakers.add(asyncio.ensure_future(wake()))

    async def alive(self, handle: dict[str, Any]) -> bool | None:
        host = self._host_of(handle)
        try:
            text = await asyncio.to_thread(
                self._run, host.index, _alive_command([int(handle["pid"])])
            )
        except (_HostDown, LauncherError):
            return None
        return bool(text.split())

    async def cancel(self, handle: dict[str, Any], grace: float) -> None:
        host = self._host_of(handle)
        pid = int(handle["pid"])
        rounds = max(1, int(grace / 0.1))
        command = (
            f"kill -TERM -- -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; "
            f"for i in $(seq {rounds}); do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.1; done; "
            f"kill -KILL -- -{pid} 2>/dev/null; kill -KILL {pid} 2>/dev/null; true"
        )
        try:
            await asyncio.to_thread(self._run, host.index, command)
        except _HostDown as exc:
            raise LauncherError(f"cannot stop the job on {host.name}: {exc}") from None

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()

    # --- about handles, from any process ----------------------------------------------------

    @classmethod
    def describe_handle(cls, handle: Mapping[str, Any]) -> str:
        return (
            f"ssh, pid {handle.get('pid')} on {handle.get('host')} "
            f"(slot {handle.get('slot')}, CUDA_VISIBLE_DEVICES={handle.get('cuda')})"
        )

    @classmethod
    def host(cls, handle: Mapping[str, Any]) -> str | None:
        host = handle.get("host")
        return str(host) if host else None

    @classmethod
    def follower(cls, handle: Mapping[str, Any]) -> Launcher:
        python = handle.get("python")
        connection = Connection(Target.parse(str(handle["host"])))
        return cls([connection], python=str(python) if python else "python3")


class _HostDown(Exception):
    """The host's connection could not be reopened."""


def _alive_command(pids: list[int]) -> str:
    listed = " ".join(str(p) for p in pids)
    return f"for p in {listed}; do kill -0 $p 2>/dev/null && echo $p; done; true"


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
