"""The change journal ``jobs/.changes``: which job folders changed, for the index.

Every writer of a job folder's state (``state.json``, the final markers) appends the job's
name, ``<type id>/<identifier>``, to the journal *after* its write. The index reads the
journal from where it stopped last time and re-reads only the folders named there, so a
refresh costs O(changes), not O(jobs).

The journal is a hint, never the truth: the index always reads the job folder itself. A
lost line (a writer killed between its write and its append) can only leave the index
behind, never ahead, and the index re-reads every job it believes running anyway. A
missing, replaced or damaged journal makes the index scan every folder once (see
docs/workspace.md, "The index").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

JOURNAL = ".changes"
"""Its name inside ``jobs/``."""

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*/[A-Za-z0-9_][A-Za-z0-9_.\-]*"


def note_change(job_root: Path) -> None:
    """Append the name of the job folder ``job_root`` to its work directory's journal.

    Call it after the write it reports. One ``write`` of a short line with ``O_APPEND``:
    appends of several processes do not interleave on a local file system. Never raises
    (a journal that cannot be written only costs the index a full scan).
    """
    line = f"{job_root.parent.name}/{job_root.name}\n".encode()
    try:
        fd = os.open(job_root.parent.parent / JOURNAL, _FLAGS, 0o666)
    except OSError:
        return
    try:
        os.write(fd, line)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Changes:
    """What :func:`read_changes` found after an offset."""

    names: set[tuple[str, str]]
    """``(type id, identifier)`` of the folders that changed."""
    offset: int
    """Where the next read starts (after the last complete line)."""
    damaged: bool = False
    """A line is not a job name: the journal cannot be trusted (scan everything)."""


def journal_mark(path: Path) -> tuple[str, int] | None:
    """``(identity, size)`` of the journal, or ``None`` if it does not exist.

    The identity (device and inode) changes when the journal is deleted and created again,
    or replaced, which tells a reader that its offset no longer means anything.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}", st.st_size


def read_changes(path: Path, offset: int, *, end: int | None = None) -> Changes:
    """The job names appended to the journal from ``offset`` (up to ``end``, if given)."""
    import re  # reader side only: the job runner, a writer, does not load it

    pattern = re.compile(_NAME)
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read() if end is None else file.read(max(0, end - offset))
    except OSError:
        return Changes(set(), offset, damaged=True)
    last = data.rfind(b"\n")
    if last < 0:
        return Changes(set(), offset)  # nothing complete yet
    names: set[tuple[str, str]] = set()
    try:
        lines = data[:last].decode("ascii").split("\n")
    except UnicodeDecodeError:
        return Changes(set(), offset, damaged=True)
    for line in lines:
        if not pattern.fullmatch(line):
            return Changes(set(), offset, damaged=True)
        type_id, _, identifier = line.partition("/")
        names.add((type_id, identifier))
    return Changes(names, offset + last + 1)


def reset_journal(path: Path) -> None:
    """Replace the journal with an empty one (readers see a new identity: they scan once)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    os.close(fd)
    os.replace(tmp, path)
