"""Atomic file writes: write a temporary file, flush it to disk, rename it over the target."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

_FSYNC = os.environ.get("PARTITA_FSYNC", "1") != "0"


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never part.

    With ``fsync`` (the default, unless ``PARTITA_FSYNC=0``), the data reaches the disk
    before the rename, so a machine crash cannot leave an empty file behind.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if fsync and _FSYNC:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # E.g. a full disk: leave the old file, and no temporary file behind.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: Path, value: Any, *, fsync: bool = True) -> None:
    """Atomically write ``value`` as JSON (sorted keys, one trailing newline)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
    atomic_write(path, (text + "\n").encode("utf-8"), fsync=fsync)


def read_bytes(path: os.PathLike[str] | str) -> bytes:
    """The whole content of the small file ``path``: open, fstat, read, close (no file object).

    Raises ``OSError`` as ``open`` does (``IsADirectoryError`` for a folder).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)  # one byte more: tells a file that grew meanwhile
        if len(data) <= size:
            return data
        chunks = [data]
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    """Read a JSON file; ``None`` if it does not exist or is not valid JSON (being replaced)."""
    try:
        data = read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None
