"""Shared folders: one folder for the jobs of a task that differ only in some parameters.

``class Train(Task, id="x.train", shared={"checkpoints": ("max_epochs",)})`` declares the
group ``checkpoints``: every ``Train`` whose parameters are equal except ``max_epochs``
gets the same folder, so a 20-epoch training can continue from the 10-epoch checkpoint.
The folder's identifier is a digest of the task *without* the group's fields (see
docs/identity.md, "Shared folders"); the folder lives under the work directory's
``shared/`` tree (its place is named by ``partita._layout``).

Kept dependency-free (the job runner imports it): the lock is supplied by the workspace
layer through :func:`set_lock_factory`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from partita import _layout
from partita.config import _migrations, _runtime
from partita.config._identity import _digest, _enc, _pack_len, length_prefixed
from partita.config._kinds import FieldKind
from partita.errors import ConfigDefinitionError, PendingPathError, SharedFolderTimeout

__all__ = [
    "SHARED_HEADER",
    "check_groups",
    "groups_of",
    "set_lock_factory",
    "shared_folder",
    "shared_identifier",
    "shared_lock",
    "shared_references",
]

#: The header of a shared folder's identity: never equal to a config's (``partita.config/1``).
SHARED_HEADER = b"partita.shared/1\x00"

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def parse_groups(owner: str, value: Any) -> dict[str, tuple[str, ...]] | None:
    """Check the form of a ``shared=`` class keyword (field names are checked later)."""
    if value is None:
        return None
    example = 'shared={"checkpoints": ("max_epochs",)}'
    if not isinstance(value, Mapping):
        raise ConfigDefinitionError(
            f"{owner}: shared= expected a dict of group name -> field names, found "
            f"{type(value).__name__}. Write e.g. {example}."
        )
    groups: dict[str, tuple[str, ...]] = {}
    for name, names in value.items():
        if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS or name[0] in ".-":
            raise ConfigDefinitionError(
                f"{owner}: shared= group names are folder names (letters, digits, '_', '.', "
                f"'-', not starting with '.' or '-'), found {name!r}. Use e.g. 'checkpoints'."
            )
        if isinstance(names, str):
            names = (names,)
        if not isinstance(names, tuple | list | set | frozenset) or not all(
            isinstance(n, str) for n in names
        ):
            raise ConfigDefinitionError(
                f"{owner}: shared={{{name!r}: ...}} expected a tuple of field names, found "
                f"{names!r}. Write e.g. {example}."
            )
        groups[name] = tuple(sorted(set(names)))
    return groups


def check_groups(cls: type, fields: Mapping[str, Any]) -> None:
    """Refuse groups naming a field that is not a ``Param`` of ``cls`` (class definition)."""
    groups = groups_of(cls)
    for group, names in groups.items():
        for name in names:
            f = fields.get(name)
            if f is None:
                from partita._suggest import closest

                close = closest(name, fields)
                hint = f" Did you mean {close!r}?" if close else ""
                raise ConfigDefinitionError(
                    f"{cls.__qualname__}: the shared folder {group!r} leaves out the field "
                    f"{name!r}, which {cls.__qualname__} does not have.{hint} Its fields are: "
                    f"{', '.join(sorted(fields)) or '(none)'}."
                )
            if f.kind is not FieldKind.PARAM or f.generator is not None:
                what = (
                    "a generated path"
                    if f.generator is not None
                    else f"a {f.kind.value.capitalize()} field"
                )
                raise ConfigDefinitionError(
                    f"{cls.__qualname__}: the shared folder {group!r} leaves out {name!r}, "
                    f"which is {what}; only Param fields count in an identity, so only they "
                    "can be left out. Remove it from the group."
                )


def groups_of(cls: type) -> dict[str, tuple[str, ...]]:
    """The shared folder groups of a task class (inherited unless the class declares some)."""
    # Declared with the class (shared=...), so found once per class: a rerun asks per task.
    return _runtime.per_class(cls, "_partita_groups", _declared_groups)  # type: ignore[no-any-return]


def _declared_groups(cls: type) -> dict[str, tuple[str, ...]]:
    for klass in cls.__mro__:
        groups = klass.__dict__.get("_partita_shared")
        if groups is not None:
            return groups  # type: ignore[no-any-return]
    return {}


def _group(task: Any, group: str) -> tuple[str, ...]:
    groups = groups_of(type(task))
    if group not in groups:
        known = ", ".join(repr(g) for g in sorted(groups)) or "none"
        raise ConfigDefinitionError(
            f"{type(task).__qualname__} has no shared folder {group!r} (it declares: {known}). "
            f'Declare it on the class: class {type(task).__name__}(Task, shared={{"{group}": '
            "(...)}})."
        )
    return groups[group]


def shared_digest(task: Any, group: str) -> bytes:
    """The 32-byte digest naming the shared folder ``group`` of ``task``.

    Like the task's digest (docs/identity.md), with another header, the group's name after
    the type id, and the group's fields left out. Like it, it encodes the oldest names of a
    renamed class and its fields (``renamed_from=``), so a rename keeps the folder's
    identifier.
    """
    from hashlib import sha256

    excluded = _group(task, group)
    cls = type(task)
    buf = bytearray(SHARED_HEADER)
    buf += length_prefixed(_migrations.identity_type_id(cls, cls._partita_type_id).encode())
    buf += length_prefixed(group.encode())
    st = task.__dict__["__partita__"]
    active: set[int] = set()
    if st.producer is None:
        buf += b"-"
    else:
        buf += b"o"
        buf += _digest(st.producer, active)
    if st.instance is not None:  # distinct(): as in the task's digest
        buf += b"#"
        buf += length_prefixed(st.instance.encode("utf-8", "surrogatepass"))
    for name, prefix, f, check_default in cls._partita_plan.fields:
        if name in excluded or name in st.ignored:  # ignore(): as in the task's digest
            continue
        start = len(buf)
        buf += prefix
        vstart = len(buf)
        _enc(task.__dict__[name], buf, active)
        if check_default:
            default = f.default_bytes()
            if default is not None and bytes(buf[vstart:]) == default:
                del buf[start:]
    if st.pretasks:  # pre-tasks count as in the task's digest (they change what it computes)
        buf += b"P"
        buf += _pack_len(len(st.pretasks))
        for pretask in st.pretasks:
            buf += b"c"
            buf += _digest(pretask, active)
    return sha256(buf).digest()


def shared_identifier(task: Any, group: str) -> str:
    """The identifier of the shared folder ``group`` of ``task`` (64 hexadecimal characters)."""
    return shared_digest(task, group).hex()


def shared_folder(task: Any, group: str, workdir: Path | None = None) -> Path:
    """``WORKDIR/shared/<type id>/<group>/<shared identifier>`` (not created).

    For a renamed class (``renamed_from=``) whose folder is not yet under its type id, the
    folder under a former type id if there is one (newest first): ``partita migrate`` moves
    it under the current one.
    """
    root = workdir or task.__dict__["__partita__"].workspace or _runtime.current_workspace()
    if root is None:
        raise PendingPathError(
            f"{type(task).__qualname__}: the shared folder is known once the task is submitted "
            "in an experiment (or loaded from a work directory)."
        )
    cls = type(task)
    ident = shared_identifier(task, group)
    folder = _layout.shared_folder(Path(root), cls._partita_type_id, group, ident)
    if not os.path.isdir(folder):
        for former in reversed(_migrations.former_ids(cls)):
            candidate = _layout.shared_folder(Path(root), former, group, ident)
            if os.path.isdir(candidate):
                return candidate
    return folder


def shared_references(task: Any, workdir: Path) -> list[str]:
    """The shared folders of ``task``, relative to ``workdir`` (POSIX text), by group name."""
    groups = groups_of(type(task))
    if not groups:
        return []
    return [
        shared_folder(task, group, workdir).relative_to(workdir).as_posix()
        for group in sorted(groups)
    ]


_lock_factory: list[Callable[[Path], Any]] = []


def set_lock_factory(factory: Callable[[Path], Any]) -> None:
    """Install how a shared folder's lock is made (the workspace's ``FileLock``)."""
    _lock_factory[:] = [factory]


@contextlib.contextmanager
def shared_lock(task: Any, group: str, timeout: float | None = None) -> Iterator[Path]:
    """Hold the lock of the shared folder ``group`` of ``task``; yields the folder.

    Safe against ``partita gc`` deleting the folder meanwhile (docs/gc.md): the lock
    factory's locks check that the lock file they locked is still the one at its path (gc
    unlinks it only while holding it), the folder of the lock file is made again if gc
    removed it, and the shared folder itself is made *under* the lock, so a job that waited
    for gc finds a fresh, empty folder instead of one moved away.
    """
    import time

    folder = shared_folder(task, group)
    if not _lock_factory:
        raise PendingPathError(
            "shared folders are locked through the work directory layer, which is not loaded "
            "in this process: use self.shared(...) inside execute(), in a job."
        )
    lock = _lock_factory[0](_layout.shared_lock(folder))
    deadline = None if timeout is None else time.monotonic() + timeout
    for attempt in range(100):
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            # gc removes empty group and type folders: one may vanish between two mkdirs.
            os.makedirs(folder.parent, exist_ok=True)
            acquired = lock.acquire(timeout=left)
        except FileNotFoundError:
            if attempt == 99:
                raise  # not a gc at work (e.g. a dangling link): say what failed
            continue  # gc removed the (empty) group folder just now: make it again
        break
    if not acquired:
        raise SharedFolderTimeout(
            f"{type(task).__qualname__}: the shared folder {group!r} ({folder}) stayed locked "
            f"by another job for {timeout:g} s. Wait for that job, or pass a longer timeout "
            f'(with self.shared("{group}", timeout=None) waits for as long as it takes).'
        )
    try:
        os.makedirs(folder, exist_ok=True)
        yield folder
    finally:
        lock.release()
