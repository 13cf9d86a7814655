"""Who a process is, in a way that survives pid reuse: host, boot, pid and start time."""

from __future__ import annotations

import os
from functools import cache
from typing import Any


@cache
def hostname() -> str:
    """This machine's host name."""
    return os.uname().nodename


@cache
def boot_id() -> str:
    """An identifier of the current boot (empty where the system does not give one)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return file.read().strip()
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; ``None`` if it is gone or a zombie."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 4096)  # one line, a few hundred bytes
        finally:
            os.close(fd)
    except OSError:
        if not os.path.isdir("/proc/self"):
            return _start_time_portable(pid)
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _start_time_portable(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return 0


_own: dict[str, Any] = {}
"""This process's identity, once known (replaced as a whole, never changed in place)."""


def identity(pid: int | None = None) -> dict[str, Any]:
    """A record naming process ``pid`` (default: this one) for :func:`is_alive`."""
    global _own
    if pid is None:
        pid = os.getpid()
        own = _own
        if own.get("pid") != pid:  # a start time never changes; a fork has another pid
            own = _own = {
                "host": hostname(),
                "boot": boot_id(),
                "pid": pid,
                "start": start_time(pid),
            }
        return dict(own)
    return {"host": hostname(), "boot": boot_id(), "pid": pid, "start": start_time(pid)}


def is_alive(record: dict[str, Any] | None) -> bool | None:
    """Whether the process named by ``record`` still runs.

    Returns ``True`` or ``False`` when this can be proved from this machine, ``None`` when
    the process runs on another host (its liveness must be asked elsewhere).
    """
    if not record or "pid" not in record:
        return False
    if record.get("host") != hostname():
        return None
    if record.get("boot") and boot_id() and record["boot"] != boot_id():
        return False
    current = start_time(int(record["pid"]))
    if current is None:
        return False
    expected = record.get("start")
    return expected is None or current == expected or current == 0
