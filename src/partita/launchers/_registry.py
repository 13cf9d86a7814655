"""The registry of launcher kinds: ``kind`` (stored in every handle) → launcher class.

A launcher class registers its kind once, when it is defined::

    class MyLauncher(Launcher, kind="mine"):
        ...

(or with :func:`register_launcher`). Every other part of partita asks the class of a
handle's kind about that handle (:func:`launcher_for_handle`), and never tests a kind or a
handle key itself.

The built-in kinds (``local``, ``slurm``) are found without importing their modules
first; kinds of other packages are found through the ``partita.launchers`` entry-point
group (name: the kind, value: ``module:Class``), loaded when a handle of an unknown kind
is met.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from partita.errors import LauncherError

if TYPE_CHECKING:
    from partita.launchers.base import Launcher
    from partita.workspace import JobInfo

__all__ = [
    "describe_handle",
    "handle_gone",
    "handle_host",
    "handle_kind",
    "launcher_for_handle",
    "launcher_for_kind",
    "probe_handle",
    "register_launcher",
    "registered_kinds",
    "settle_jobs",
]

#: The built-in kinds and the module that defines (and so registers) each.
_BUILTIN = {
    "local": "partita.launchers.local",
    "slurm": "partita.launchers.slurm._launcher",
    "ssh": "partita.ssh._launcher",
}
#: The handle key naming the kind (the one key every handle has).
_KIND_KEY = "kind"
_ENTRY_POINTS = "partita.launchers"
_ADVICE = (
    "Import the module that defines that launcher (or install the package that provides "
    "it, entry-point group 'partita.launchers') before following such jobs."
)

_kinds: dict[str, type[Launcher]] = {}
_lock = threading.RLock()


def register_launcher(cls: type[Launcher]) -> type[Launcher]:
    """Register ``cls`` as the launcher of handles of kind ``cls.kind``; return ``cls``.

    Usable as a class decorator. Defining a subclass with ``kind=...`` does this already.
    Registering another class under a kind that is taken raises :class:`LauncherError`;
    registering a class of the same module and name again (a reloaded module) replaces it.
    """
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind or kind == "abstract":
        raise LauncherError(
            f"register_launcher({cls.__qualname__}): expected a class with a non-empty "
            f"'kind' string, found kind={kind!r}. Define it as "
            f"class {cls.__name__}(Launcher, kind='name')."
        )
    with _lock:
        known = _kinds.get(kind)
        if known is not None and known is not cls and _qualname(known) != _qualname(cls):
            raise LauncherError(
                f"launcher kind {kind!r} is already registered by {_qualname(known)}; "
                f"{_qualname(cls)} cannot take it. Choose another kind name."
            )
        _kinds[kind] = cls
    return cls


def registered_kinds() -> list[str]:
    """The kinds known in this process (built-in ones included), sorted."""
    with _lock:
        return sorted(set(_kinds) | set(_BUILTIN))


def handle_kind(handle: Mapping[str, Any] | None) -> str | None:
    """The kind a handle names, or ``None`` for a missing or malformed handle."""
    if not isinstance(handle, Mapping):
        return None
    kind = handle.get(_KIND_KEY)
    return kind if isinstance(kind, str) and kind else None


def launcher_for_kind(kind: str) -> type[Launcher]:
    """The launcher class registered for ``kind`` (raises :class:`LauncherError` if none)."""
    found = _lookup(kind)
    if found is None:
        raise LauncherError(
            f"no launcher of kind {kind!r} is registered; known: "
            f"{', '.join(registered_kinds())}. {_ADVICE}"
        )
    return found


def launcher_for_handle(handle: Mapping[str, Any] | None) -> type[Launcher]:
    """The launcher class that understands ``handle`` (a job's ``state.json`` record).

    Raises :class:`LauncherError` when the handle names no kind, or a kind that no
    launcher registered.
    """
    kind = handle_kind(handle)
    if kind is None:
        raise LauncherError(
            f"expected a launcher handle with a {_KIND_KEY!r} string, found {handle!r}. "
            "The job's state.json is damaged or was written by another program."
        )
    found = _lookup(kind)
    if found is None:
        raise LauncherError(
            f"handle of kind {kind!r} in state.json: no launcher of that kind is registered; "
            f"known: {', '.join(registered_kinds())}. {_ADVICE}"
        )
    return found


def describe_handle(handle: Mapping[str, Any] | None) -> str:
    """A one-line description of a handle, for people (``-`` for none).

    Never raises: a handle of an unknown kind is shown with its fields.
    """
    if not handle:
        return "-"
    try:
        cls = launcher_for_handle(handle)
    except LauncherError:
        return generic_description(handle) + " (no launcher of this kind is registered)"
    return cls.describe_handle(handle)


def handle_host(handle: Mapping[str, Any] | None) -> str | None:
    """The machine the job of ``handle`` runs on, when known. Never raises."""
    try:
        cls = launcher_for_handle(handle)
    except LauncherError:
        return None
    assert handle is not None
    return cls.host(handle)


def generic_description(handle: Mapping[str, Any]) -> str:
    """``kind, key=value, ...``: how a handle is shown when its launcher says nothing better."""
    kind = handle.get(_KIND_KEY, "?")
    details = ", ".join(
        f"{key}={value}" for key, value in sorted(handle.items()) if key != _KIND_KEY
    )
    return f"{kind}, {details}" if details else str(kind)


def probe_handle(handle: Mapping[str, Any] | None) -> bool | None:
    """Whether the job of ``handle`` still runs, as cheaply seen from this process.

    ``None`` when this cannot be told from here (another host, a cluster that would have
    to be asked, an unknown kind, a launch in progress). Never raises.
    """
    try:
        cls = launcher_for_handle(handle)
    except LauncherError:
        return None
    assert handle is not None
    if not cls.started(handle):
        return None
    try:
        return cls.probe(handle)
    except Exception:  # a probe must never break a reader
        return None


def handle_gone(handle: Mapping[str, Any] | None) -> bool:
    """True only when it is certain that the job of ``handle`` no longer runs.

    This is the one rule behind "its process is gone without an outcome, so the job is
    lost", used by the index, the dry run and the CLI.
    """
    return probe_handle(handle) is False


def settle_jobs(jobs: Sequence[JobInfo]) -> list[str]:
    """Let each launcher record how its jobs ended that are ``running`` on disk only.

    Jobs are grouped by the kind of their handle and handed to that launcher's
    :meth:`~partita.launchers.Launcher.settle` (one query per kind, not per job). Jobs of
    unknown kinds are left as they are. Returns one line per job whose record changed.
    """
    groups: dict[str, list[JobInfo]] = {}
    for job in jobs:
        kind = handle_kind(job.launcher)
        if job.state == "running" and kind is not None:
            groups.setdefault(kind, []).append(job)
    changes: list[str] = []
    for kind, members in sorted(groups.items()):
        try:
            cls = launcher_for_kind(kind)
        except LauncherError:
            continue
        changes += cls.settle(members)
    return changes


def _lookup(kind: str) -> type[Launcher] | None:
    with _lock:
        found = _kinds.get(kind)
    if found is not None:
        return found
    module = _BUILTIN.get(kind)
    if module is not None:
        importlib.import_module(module)  # defining the class registers it
    else:
        _load_entry_point(kind)
    with _lock:
        return _kinds.get(kind)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _load_entry_point(kind: str) -> None:
    try:
        from importlib.metadata import entry_points

        found = [ep for ep in entry_points(group=_ENTRY_POINTS) if ep.name == kind]
    except Exception:  # broken metadata of some installed package
        return
    for point in found:
        try:
            cls = point.load()
        except Exception as exc:
            raise LauncherError(
                f"the launcher of kind {kind!r} ({point.value}, entry point of group "
                f"{_ENTRY_POINTS!r}) cannot be imported: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(cls, type) and getattr(cls, "kind", None) == kind:
            register_launcher(cls)
