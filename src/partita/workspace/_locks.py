"""Advisory file locks (``flock``): released by the kernel when their holder dies.

No lock file is ever "stale": a lock held by a process that died is free again at once,
so recovery never has to guess from ages. See docs/workspace.md for NFS.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from partita.workspace._process import hostname


class FileLock:
    """An exclusive lock on ``path`` (created if needed).

    ``acquire(blocking=False)`` returns ``False`` at once if another process holds it.
    The holder's host and pid (and ``note``) are written into the file for diagnostics.
    """

    def __init__(
        self, path: Path, *, note: dict[str, Any] | None = None, check_path: bool = False
    ) -> None:
        self.path = path
        self.note = note or {}
        self.check_path = check_path
        """Whether the lock counts only if ``path`` still names the locked file (see
        :meth:`acquire`): for lock files that a deleter may unlink."""
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, *, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; with ``blocking=False`` give up at once if it is held.

        With ``check_path``, a lock obtained on a file that ``path`` no longer names (a
        deleter unlinked it while holding it, and perhaps another process created a new one)
        is dropped and the lock is taken again on the file ``path`` names now. So a deleter
        may unlink a lock file *while holding the lock*: whoever waited on the old file
        never believes it holds the lock of the new one. Raises :class:`FileNotFoundError`
        if the folder of ``path`` does not exist (the caller recreates it and tries again).
        """
        if self._fd is not None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            if not self._lock(fd, blocking, deadline):
                os.close(fd)
                return False
            if not self.check_path or self._names(fd):
                break
            os.close(fd)  # unlinked by its deleter meanwhile: lock what the path names now
        self._fd = fd
        try:
            # Overwrite, then cut what is left of a longer note: truncating to zero first
            # makes ext4 flush the file to disk when it is closed (``auto_da_alloc``).
            # Who holds it: host and pid (diagnostics only, so no start time to read).
            data = json.dumps({"host": hostname(), "pid": os.getpid(), **self.note}).encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError:
            pass
        return True

    def _names(self, fd: int) -> bool:
        """Whether ``path`` still names the open file ``fd``."""
        try:
            here = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

    @staticmethod
    def _lock(fd: int, blocking: bool, deadline: float | None) -> bool:
        """``flock`` the open file ``fd``; ``False`` if it is held and waiting is over."""
        if blocking and deadline is None:
            # A plain blocking wait: one call, the kernel wakes us (and retries after a
            # signal whose handler returned).
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            return True
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def release(self) -> None:
        """Release the lock (no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@contextmanager
def hold(
    path: Path,
    *,
    note: dict[str, Any] | None = None,
    blocking: bool = True,
    timeout: float | None = None,
) -> Iterator[bool]:
    """``with hold(paths.lock, blocking=False) as held:``: take a lock for a block.

    Yields whether the lock is held (always ``True`` for a plain blocking wait); it is
    released at the end of the block. This is how partita takes every lock of a folder.
    """
    lock = FileLock(path, note=note)
    held = lock.acquire(blocking=blocking, timeout=timeout)
    try:
        yield held
    finally:
        lock.release()


def holder(path: Path) -> dict[str, Any] | None:
    """Who last took the lock at ``path`` (diagnostics only: it may have been released)."""
    try:
        data = path.read_bytes()
        return json.loads(data) if data else None
    except (OSError, ValueError):
        return None
