"""Live outputs of a job: an append-only record, one JSON object per line (``JobPaths.outputs``).

A running task publishes outputs with ``partita.publish(name, value)`` (a checkpoint saved,
say); the experiment that runs it reads them while it runs (``job.watch_output``). Every
entry is one line, written with a single ``write`` on a file opened for appending and
flushed to disk (``fsync``) before ``publish`` returns: a reader sees whole lines, and
an entry that ``publish`` returned from survives a crash of the machine.

An entry::

    {"name": "checkpoint", "key": "3f2a…", "seq": 1, "attempt": 1, "time": 1700000000.0,
     "config": {<a params.json document>}}        (or "value": <a JSON value>)

``key`` names its content (the name and the value): publishing the same thing twice is one
output. A line cut short by a crash has no newline: readers leave it until a newline ends
it, and the next append starts on a new line, so that fragment is skipped as damaged.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from partita.workspace._atomic import _FSYNC
from partita.workspace._paths import JobPaths

__all__ = ["OutputCursor", "append_output", "read_outputs"]


def append_output(paths: JobPaths, entry: dict[str, Any]) -> None:
    """Append ``entry`` to the job's outputs as one line, on disk before returning.

    Raises ``OSError`` when it cannot be written (the caller says so to the task).
    """
    line = json.dumps(entry, sort_keys=True, ensure_ascii=False, allow_nan=False)
    data = (line + "\n").encode("utf-8")
    path = paths.outputs
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            # A line left without its newline (a writer killed mid-line) stays alone.
            last = os.pread(fd, 1, size - 1)
            if last != b"\n":
                data = b"\n" + data
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if _FSYNC:
            os.fsync(fd)
    finally:
        os.close(fd)
    if size == 0 and _FSYNC:
        # A new file: its name in the folder reaches the disk too.
        with contextlib.suppress(OSError):
            folder = os.open(paths.root, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)


def _entry(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("name"), str)
        or not isinstance(entry.get("key"), str)
    ):
        return None
    return entry


class OutputCursor:
    """Reads the entries appended to a job's outputs since the last call.

    Not thread-safe: one reader per cursor. When the file is replaced (a new attempt of a
    task that is not resumable sets the previous attempt's files aside) it reads the new
    file from its start.
    """

    def __init__(self, paths: JobPaths) -> None:
        self.paths = paths
        self._offset = 0
        self._inode: tuple[int, int] | None = None
        #: Lines that could not be read (cut short by a crash, or damaged).
        self.damaged = 0

    def read_new(self) -> list[dict[str, Any]]:
        """The whole entries written since the last call (oldest first)."""
        try:
            fd = os.open(self.paths.outputs, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            info = os.fstat(fd)
            inode = (info.st_dev, info.st_ino)
            if inode != self._inode or info.st_size < self._offset:
                self._inode, self._offset = inode, 0
            if info.st_size == self._offset:
                return []
            chunks: list[bytes] = []
            at = self._offset
            while True:
                chunk = os.pread(fd, 1 << 20, at)
                if not chunk:
                    break
                chunks.append(chunk)
                at += len(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        entries = []
        for line in data[: end + 1].splitlines():
            if not line.strip():
                continue
            entry = _entry(line)
            if entry is None:
                self.damaged += 1
            else:
                entries.append(entry)
        return entries


def read_outputs(
    paths: JobPaths, name: str | None = None, *, once: bool = False
) -> list[dict[str, Any]]:
    """Every whole entry of the job's outputs (none when it published nothing), in order.

    ``name``: only the outputs of that name. ``once``: each output once (the first entry of
    each ``key``), as watchers and displays see them.
    """
    entries = OutputCursor(paths).read_new()
    if name is not None:
        entries = [entry for entry in entries if entry["name"] == name]
    if once:
        first: dict[str, dict[str, Any]] = {}
        for entry in entries:
            first.setdefault(entry["key"], entry)
        entries = list(first.values())  # in the order of each key's first entry
    return entries
