"""Shared folders in the work directory: which job uses which, and deleting unused ones.

A task class may declare groups of parameters that its shared folders do not depend on
(``shared=`` on the class, see docs/configs.md). The folders live under
``WORKDIR/shared/<type id>/<group>/<identifier>/``, each with a lock file beside it. When a
job is submitted, the folders its task uses are written into its job folder
(:attr:`JobPaths.shared_refs`), so that ``partita gc`` deletes a shared folder only once no
job folder refers to it any more.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from partita import _layout
from partita.workspace._atomic import atomic_write
from partita.workspace._locks import FileLock
from partita.workspace._paths import JobPaths, Workspace

__all__ = ["delete_shared", "read_shared_refs", "record_shared", "shared_folders", "shared_in_use"]

_DELETING = ".deleting-"


def record_shared(paths: JobPaths, folders: list[str]) -> None:
    """Record in a job folder the shared folders (relative to the work directory) it uses."""
    data = (json.dumps(sorted(folders)) + "\n").encode()
    try:
        if paths.shared_refs.read_bytes() == data:
            return
    except OSError:
        pass
    paths.root.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.shared_refs, data)


def read_shared_refs(paths: JobPaths) -> list[str] | None:
    """The shared folders a job folder refers to (``None`` if its record cannot be read)."""
    try:
        value = json.loads(paths.shared_refs.read_text("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def shared_folders(workspace: Workspace) -> list[Path]:
    """Every shared folder of the work directory."""
    found: list[Path] = []
    root = workspace.shared
    with contextlib.suppress(OSError):
        for type_dir in sorted(root.iterdir()):
            if not type_dir.is_dir() or type_dir.name.startswith("."):
                continue
            for group in sorted(type_dir.iterdir()):
                if not group.is_dir():
                    continue
                found.extend(sorted(p for p in group.iterdir() if p.is_dir()))
    return found


def shared_in_use(workspace: Workspace, skip: Iterable[str] = ()) -> tuple[set[Path], bool]:
    """Shared folders referred to by a job folder (except the jobs in ``skip``).

    Also returns whether every record could be read: when one cannot, nothing should be
    deleted (it may refer to any folder).
    """
    skipped = set(skip)
    used: set[Path] = set()
    readable = True
    with contextlib.suppress(OSError):
        for type_dir in workspace.jobs.iterdir():
            if not type_dir.is_dir() or type_dir.name.startswith("."):
                continue
            for job in type_dir.iterdir():
                if job.name in skipped or not job.is_dir():
                    continue
                refs = read_shared_refs(JobPaths(job))
                if refs is None:
                    readable = False
                    continue
                used.update(workspace.root / ref for ref in refs)
    return used, readable


def delete_shared(workspace: Workspace, folder: Path) -> str | None:
    """Delete a shared folder and its lock file; returns why it was kept instead, if it was.

    Everything happens under the folder's lock, taken without waiting (a job holding it keeps
    the folder): the folder is renamed out of the way, then the lock file is unlinked *while
    still held*. A job waiting for the lock then wakes on an unlinked file, sees that the
    path no longer names it (``FileLock(check_path=True)``) and locks the file at the path
    again, making the folder afresh under that lock; so two jobs never both believe they
    hold the lock, and no job writes into a folder being deleted. Another gc doing the same
    at once finds the folder gone and stops.
    """
    lock_path = _layout.shared_lock(folder)
    lock = FileLock(lock_path, check_path=True)
    try:
        if not lock.acquire(blocking=False):
            return "busy (a job holds its lock)"
    except FileNotFoundError:
        return None  # its group folder is gone: deleted already
    relative = folder.relative_to(workspace.shared).as_posix().replace("/", "-")
    trash = workspace.root / f"{_DELETING}shared-{relative}"
    try:
        if folder.exists():
            os.replace(folder, trash)
        lock_path.unlink(missing_ok=True)
    except OSError as exc:
        return f"cannot be moved away: {exc.strerror or exc}"
    finally:
        lock.release()
    shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # the group folder, then the type folder, if now empty
        folder.parent.parent.rmdir()
    return None


# --- renamed classes (partita migrate) ------------------------------------------------------


def _jobs_with_refs(workspace: Workspace) -> list[tuple[JobPaths, list[str]]]:
    found = []
    with contextlib.suppress(OSError):
        for type_dir in sorted(workspace.jobs.iterdir()):
            if not type_dir.is_dir() or type_dir.name.startswith("."):
                continue
            for job in sorted(type_dir.iterdir()):
                refs = read_shared_refs(JobPaths(job)) if job.is_dir() else None
                if refs:
                    found.append((JobPaths(job), refs))
    return found


def renamed_shared(workspace: Workspace, current: dict[str, str]) -> list[tuple[Path, Path]]:
    """The shared folders under a former type id (``current``: former → current type id),
    each with where it belongs."""
    moves = []
    for folder in shared_folders(workspace):
        relative = folder.relative_to(workspace.shared)
        type_id = relative.parts[0]
        if type_id in current:
            moves.append((folder, workspace.shared / current[type_id] / Path(*relative.parts[1:])))
    return moves


def refer_also(workspace: Workspace, moves: list[tuple[Path, Path]]) -> None:
    """Before moving shared folders: the jobs referring to one refer to its new place too,
    so that ``partita gc`` keeps it at every step."""
    names = {
        s.relative_to(workspace.root).as_posix(): t.relative_to(workspace.root).as_posix()
        for s, t in moves
    }
    for paths, refs in _jobs_with_refs(workspace):
        added = [names[ref] for ref in refs if ref in names and names[ref] not in refs]
        if added:
            record_shared(paths, [*refs, *added])


def move_shared(source: Path, target: Path) -> str | None:
    """Move a shared folder and drop its lock file (as :func:`delete_shared` does, under
    the lock); returns why it was left where it is, if it was."""
    lock_path = _layout.shared_lock(source)
    lock = FileLock(lock_path, check_path=True)
    try:
        if not lock.acquire(blocking=False):
            return "busy (a job holds its lock): migrate once it has ended"
    except FileNotFoundError:
        return None  # moved or deleted meanwhile
    try:
        if not source.is_dir():
            lock_path.unlink(missing_ok=True)  # made by this very look: moved already
            return None
        if target.exists():
            return f"{target} exists already (made under the new name): keep one of them"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        lock_path.unlink(missing_ok=True)
    finally:
        lock.release()
    with contextlib.suppress(OSError):
        source.parent.rmdir()  # the group folder, then the type folder, if now empty
        source.parent.parent.rmdir()
    return None


def drop_moved_refs(workspace: Workspace, current: dict[str, str]) -> int:
    """After moving: the references to shared folders under a former type id that no longer
    exist name the current place instead; returns how many job folders changed."""
    changed = 0
    for paths, refs in _jobs_with_refs(workspace):
        new = []
        for ref in refs:
            parts = ref.split("/")
            if (
                len(parts) > 2
                and parts[0] == _layout.SHARED
                and parts[1] in current
                and not (workspace.root / ref).exists()
            ):
                ref = "/".join([parts[0], current[parts[1]], *parts[2:]])
            if ref not in new:
                new.append(ref)
        if new != refs:
            record_shared(paths, new)
            changed += 1
    return changed
