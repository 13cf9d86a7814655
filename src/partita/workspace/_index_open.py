"""Opening the index: rebuilt when corrupt, private or in memory when it cannot be written."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path

from partita.workspace._index import Index, is_corrupt, sqlite_code
from partita.workspace._jobinfo import Probe
from partita.workspace._paths import Workspace


def open_index(workspace: Workspace, probe: Probe | None = None) -> Index:
    """The index of ``workspace``, brought up to date with the files.

    ``probe`` tells which running jobs are certainly gone (see :func:`read_job`).

    The index is a cache, so a problem with it never stops a reader:

    * a corrupt ``index.sqlite``, or one written by another version, is rebuilt;
    * a work directory this user cannot write (a colleague's, a read-only mount) is indexed
      into a private file in the temporary directory instead;
    * when no index can be written at all (a full disk, a directory where the index should
      be), the index is built in memory from the files, and :attr:`Index.warning` says why.
    """
    problem: str | None = None
    if workspace.index_path.is_dir():
        problem = (
            f"{workspace.index_path} is a directory, not partita's index: remove it "
            f"(rm -r {workspace.index_path}) to get the index back"
        )
    else:
        try:
            return _refreshed(workspace, probe=probe)
        except (sqlite3.OperationalError, OSError) as exc:
            if _writable(workspace):
                why = _describe(exc, workspace)
                problem = f"cannot update the index {workspace.index_path} ({why})"
    try:
        index = _refreshed(workspace, path=_private_path(workspace), probe=probe)
    except (sqlite3.OperationalError, OSError):
        index = _refreshed(workspace, memory=True, probe=probe)
        if problem is None:
            problem = f"cannot write an index for {workspace.root}"
    if problem is not None:
        index.warning = f"{problem}; reading the job folders directly"
    return index


def _refreshed(
    workspace: Workspace,
    *,
    path: Path | None = None,
    memory: bool = False,
    probe: Probe | None = None,
) -> Index:
    index = Index(workspace, path=path, memory=memory, probe=probe)
    try:
        try:
            index.refresh()
        except sqlite3.DatabaseError as exc:
            if memory or not is_corrupt(exc):
                raise
            index.rebuild()
            index.refresh()
    except BaseException:
        index.close()
        raise
    return index


def _writable(workspace: Workspace) -> bool:
    """Whether this user may write the work directory (and its index, if there is one)."""
    if not os.access(workspace.root, os.W_OK):
        return False
    return not workspace.index_path.exists() or os.access(workspace.index_path, os.W_OK)


def _describe(exc: BaseException, workspace: Workspace) -> str:
    """Why the index could not be written, in words (``the disk is full``)."""
    full = (isinstance(exc, sqlite3.Error) and sqlite_code(exc) == sqlite3.SQLITE_FULL) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    )
    if not full and isinstance(exc, sqlite3.Error) and sqlite_code(exc) == sqlite3.SQLITE_IOERR:
        # SQLite reports a failed write of its shared memory as an I/O error: look.
        with contextlib.suppress(OSError):
            stats = os.statvfs(workspace.root)
            full = stats.f_bavail * stats.f_frsize < 1 << 20
    if full:
        return "the disk is full"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _private_path(workspace: Workspace) -> Path:
    digest = hashlib.sha256(str(workspace.root).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"partita-index-{os.getuid()}-{digest}.sqlite"
