"""Sealing a task: everything the config layer decides when a task is submitted.

:func:`seal` validates the task graph, resolves generated paths, freezes the graph,
computes the identity, collects tags and dependencies, marks the task's outputs and
produces the ``params.json`` bytes, in one pass. The experiment hands the resulting
:class:`Sealed` to the scheduler; nothing about a task's identity is decided elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partita import _layout
from partita.config import _migrations, _runtime
from partita.config._config import (
    Config,
    Task,
    classes_in,
    collect_tags,
    freeze,
    freeze_all,
    iter_values,
    state_of,
    walk,
)
from partita.config._identity import identifier
from partita.config._instance import forget_memos
from partita.config._serial import class_reference, dumps
from partita.config._types import FieldType, _BoundConfigType
from partita.errors import ConfigError, ConfigTypeError, PartitaWarning, TagConflictWarning

__all__ = ["Sealed", "generated_folders", "seal"]


@dataclass(frozen=True)
class Sealed:
    """A task ready to be scheduled: its identity, folder, tags, dependencies and bytes."""

    task: Task
    """The submitted task (now frozen)."""
    type_id: str
    """The type id of the task's class (the first folder level under ``jobs/``)."""
    identifier: str
    """The task's identifier (64 hexadecimal characters)."""
    jobdir: Path
    """``WORKDIR/jobs/<type id>/<identifier>``."""
    tags: dict[str, Any]
    """Tags of the task, of every config it holds and of the tasks that produced them."""
    dependencies: tuple[Task, ...]
    """Tasks this task waits for: sub-tasks and producers of outputs it holds."""
    outputs: Any
    """What ``submit()`` returns: ``task.outputs()`` (marked as produced by the task)."""
    encoded: bytes | None
    """The bytes of ``params.json`` if they were made (see :attr:`params`)."""
    recorded: bool | None = None
    """Whether the job folder held these very bytes when sealed (``None``: no file)."""
    matched: str | None = None
    """How the job folder was found through a migration (a former type id or field name,
    see ``renamed_from=``), in words; ``None`` when it was found under the current names."""
    done: bool = False
    """Whether the job was found done when sealed (its ``params.json`` bytes were then not
    made: nothing will write them)."""

    @property
    def params(self) -> bytes:
        """The bytes of ``params.json`` (made now if sealing did not need them)."""
        return self.encoded if self.encoded is not None else dumps(self.task)


#: Type id → (class, its ``module:qualname``) of every class sealed in this process.
_classes: dict[str, tuple[type, str]] = {}


def _class_name(cls: type) -> str:
    """``class_reference(cls)["class"]`` (cached per class, except for scripts' classes)."""
    cached = cls.__dict__.get("_partita_class_name")
    if cached is not None and cached[0] == cls.__module__ and cached[1] == cls.__qualname__:
        return cached[2]  # type: ignore[no-any-return]
    name = class_reference(cls)["class"]
    if not name.startswith("__main__:"):  # a script's module may be renamed: not cached
        type.__setattr__(cls, "_partita_class_name", (cls.__module__, cls.__qualname__, name))
    return name


def _reference(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _check_type_id(cls: type) -> None:
    """Two distinct classes may not share a type id in one process."""
    type_id: str = cls._partita_type_id  # type: ignore[attr-defined]
    known = _classes.get(type_id)
    if known is not None and known[0] is cls:
        # The common case: this class was sealed before (and warned about if deprecated);
        # a class declaring its id as a former one may have been defined since.
        _migrations.check_not_claimed(cls, type_id)
        return
    reference = _reference(cls)
    if known is not None and known[0] is not cls and known[1] != reference:
        raise ConfigError(
            f"two classes declare the type id {type_id!r}: {known[1]} and {reference}. "
            "They would share job folders, so one would silently reuse the other's results. "
            "Give one of them another id=."
        )
    # A class redefined under the same module and name (a reload, a notebook cell) replaces
    # the previous one.
    _classes[type_id] = (cls, reference)
    _migrations.check_not_claimed(cls, type_id)
    if _migrations.conversion_of(cls) is not None and cls not in _warned_deprecated:
        _warned_deprecated.add(cls)
        warnings.warn(
            f"{cls.__qualname__} ({type_id}) is deprecated: its class declares a conversion "
            "to the config that replaces it. Build the new config instead, and run "
            "'partita migrate WORKDIR' to convert the jobs recorded with the old one.",
            PartitaWarning,
            stacklevel=5,
        )


#: Deprecated classes already warned about in this process.
_warned_deprecated: set[type] = set()


def _former_folder(workspace: Path, cls: type, ident: str) -> tuple[Path, str] | None:
    """The job folder of ``ident`` under a former type id of ``cls`` (newest first)."""
    for former in reversed(_migrations.former_ids(cls)):
        candidate = _layout.job_folder(workspace, former, ident)
        if os.path.isdir(candidate):
            return candidate, f"found under the former type id {former!r} (renamed_from=)"
    return None


def _recorded_renames(jobdir: Path, classes: dict[str, type]) -> str | None:
    """Whether the job folder's ``params.json`` uses former names of these classes."""
    try:
        with open(os.path.join(jobdir, _layout.PARAMS), "rb") as file:
            objects = json.loads(file.read())["objects"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    found: list[str] = []
    former_of = {old: cls for cls in classes.values() for old in _migrations.former_ids(cls)}
    for entry in objects if isinstance(objects, list) else ():
        if not isinstance(entry, dict):
            continue
        type_id, fields = entry.get("type"), entry.get("fields")
        cls = classes.get(type_id) if isinstance(type_id, str) else None
        if cls is None and isinstance(type_id, str) and type_id in former_of:
            cls = former_of[type_id]
            found.append(f"type id {type_id!r} is now {cls._partita_type_id!r}")  # type: ignore[attr-defined]
        renames: dict[str, str] = getattr(cls, "_partita_renames", None) or {}
        for name in fields if isinstance(fields, dict) and renames else ():
            if name in renames:
                found.append(f"field {name!r} is now {renames[name]!r}")
    if not found:
        return None
    return "recorded under former names: " + ", ".join(dict.fromkeys(found))


def _read_rest(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_recorded(jobdir: Path) -> bytes | None:
    """The bytes of the folder's ``params.json`` (``None``: it has none, or it cannot be read)."""
    try:
        # Low-level reads: this runs once per submission, thousands of times on a rerun.
        # (A job folder's path never ends with a separator: no os.path.join needed.)
        fd = os.open(f"{os.fspath(jobdir)}/{_layout.PARAMS}", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, _READ_SIZE)
        # A short read of a regular file is its end: one read for the usual small file.
        return data if len(data) < _READ_SIZE else data + _read_rest(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


_READ_SIZE = 1 << 16


_CLASS_KEY = b'"class": '
#: ``module:qualname`` → the bytes ``params.json`` holds for it: ``"class": "module:qualname"``.
_class_entries: dict[str, bytes] = {}


def _class_entry(name: str) -> bytes:
    entry = _class_entries.get(name)
    if entry is None:
        entry = _CLASS_KEY + json.dumps(name, ensure_ascii=False).encode("utf-8")
        if len(_class_entries) < 4096:
            _class_entries[name] = entry
    return entry


def _check_recorded_classes(
    jobdir: Path, types: dict[str, str], params: bytes | None, recorded_bytes: bytes | None
) -> bool | None:
    """Warn if the job folder was created by other classes with the same type ids.

    ``params`` are the bytes this submission would write (``None``: not made): a folder
    holding the same bytes was written by the same classes (the common case of a rerun),
    with nothing to parse. ``recorded_bytes`` are those of the folder's ``params.json``.
    Returns whether the folder's ``params.json`` holds these bytes (``None``: it has none,
    or it cannot be read), so that the scheduler need not read it again.
    """
    if recorded_bytes is None:
        return None
    if recorded_bytes == params:
        return True
    if len(types) == 1:
        # The common rerun (a graph of one class): if every "class" key of the file names
        # the current class, nothing is to be said, and the file need not be parsed. (The
        # bytes '"class": "' can only be a key: a quote inside a JSON string is escaped.)
        (only,) = types.values()
        count = recorded_bytes.count(_CLASS_KEY)
        if count and count == recorded_bytes.count(_class_entry(only)):
            return False
    try:
        document = json.loads(recorded_bytes)
        objects = document["objects"]
    except (ValueError, KeyError, TypeError):
        return False
    for entry in objects if isinstance(objects, list) else ():
        if not isinstance(entry, dict):
            continue
        type_id, recorded = entry.get("type"), entry.get("class")
        current = types.get(type_id) if isinstance(type_id, str) else None
        if current is None or recorded == current or not isinstance(recorded, str):
            continue
        if recorded.startswith("__main__:") and current.startswith("__main__:"):
            continue  # the same script-level class, run from another file name
        warnings.warn(
            f"{jobdir} was created by the class {recorded} and is now submitted by "
            f"{current} (both with type id {type_id!r}). If the class moved, this is "
            "expected; if its id was copied from another class, the two share results: "
            "give one of them another id=.",
            PartitaWarning,
            stacklevel=4,
        )
    return False


def _bound_name(ftype: FieldType) -> str:
    """``Box[int]``, for a field type that is or holds one."""
    if isinstance(ftype, _BoundConfigType):
        return ftype.describe()
    inner = [getattr(ftype, a, None) for a in ("item", "value", "rest")]
    inner += [*(getattr(ftype, "items", None) or ()), *(getattr(ftype, "options", None) or ())]
    for t in inner:
        if isinstance(t, FieldType) and t.binds_parameters:
            return _bound_name(t)
    return ftype.describe()


def _check_bindings(task: Task, path: str, cfg: Config) -> None:
    """Check again the fields of ``cfg`` typed ``Box[int]`` (or holding one).

    A ``Box[int]`` field checks a plain ``Box`` when it is given; the box (or a list holding
    boxes) may change afterwards, until the task is submitted.
    """
    st = state_of(cfg)
    if st.frozen:
        return  # checked when it was sealed, and cannot change
    fields = st.bound or type(cfg)._partita_fields
    d = cfg.__dict__
    root = type(task).__qualname__
    for name in type(cfg)._partita_walk:
        f = fields.get(name)
        if f is None or not f.type.binds_parameters or name not in d:
            continue
        where = f"{root}.{path}.{name}" if path else f"{root}.{name}"
        try:
            f.type.validate(d[name], where)
        except ConfigTypeError as exc:
            raise ConfigTypeError(
                f"{exc} This is checked again when the task is submitted: the value was "
                f"changed after it was given to {where}. Change it back, or build the "
                f"config with its type parameters ({_bound_name(f.type)}(...)) so that "
                "every change is checked at once."
            ) from None


def _generated_fields(cls: type[Config]) -> list[tuple[str, Any]]:
    """The fields of ``cls`` with a generated path (computed once per class)."""
    cached = cls.__dict__.get("_partita_generated")
    if cached is None or cached[0] is not cls._partita_fields:
        fields = cls._partita_fields
        cached = (fields, [(n, f) for n, f in fields.items() if f.generator])
        type.__setattr__(cls, "_partita_generated", cached)
    return cached[1]  # type: ignore[no-any-return]


def _resolve_generated(
    task: Task, jobdir: Path, own: list[tuple[str, Config]] | None = None
) -> None:
    """Give the generated paths of ``task`` (and of the configs it holds) their value.

    ``own`` is ``list(walk(task, into_tasks=False))`` when the caller has it already.
    """
    for path, cfg in walk(task, into_tasks=False) if own is None else own:
        if cfg is not task and isinstance(cfg, Task):
            continue
        generated = _generated_fields(type(cfg))
        if not generated:
            continue
        d = cfg.__dict__
        st = state_of(cfg)
        base = jobdir
        if path:
            base = jobdir / re.sub(r"[\[\]'\"{}]+", ".", path).strip(".")
        if cfg is not task and st.paths_of is not None and st.paths_of != jobdir:
            raise ConfigError(
                f"{type(task).__qualname__}.{path} is a {type(cfg).__qualname__} with a "
                f"generated path, already used by the task of {st.paths_of}: both tasks "
                "would write the same file. A config with generated paths belongs to one "
                f"task: build one {type(cfg).__qualname__}(...) per task."
            )
        for name, f in generated:
            assert f.generator is not None
            if name not in d:
                d[name] = base / f.generator.relative if f.generator.relative else base
        st.paths_of = jobdir


def generated_folders(task: Config, jobdir: Path) -> list[Path]:
    """The folders the generated paths of ``task`` need, inside its job folder ``jobdir``.

    The parent of each generated path (``optimizer/`` of ``optimizer/state.pt``, for a
    config held in the field ``optimizer``), or the path itself when the generator names
    the folder (``PathGenerator()``). The job runner creates them before ``execute()``, so
    a nested config's file can be written as a top-level one's. Paths given by hand, and
    those of sub-tasks and producers (other job folders), are left alone.
    """
    folders: dict[Path, None] = {}
    root = Path(jobdir)
    for _, cfg in walk(task, into_tasks=False):
        if cfg is not task and isinstance(cfg, Task):
            continue
        for name, f in type(cfg)._partita_fields.items():
            value = cfg.__dict__.get(name)
            if f.generator is None or not isinstance(value, Path):
                continue
            folder = value if not f.generator.relative else value.parent
            if folder != root and folder.is_relative_to(root):
                folders.setdefault(folder, None)
    return list(folders)


def _mark_outputs(task: Task, value: Any, inside: set[int]) -> Any:
    """``value`` with every config it holds marked as produced by ``task``.

    A config that is part of the task itself (``return self.checkpoint``) is copied: its
    identity then includes the task's, while the task's own field keeps its identity.
    """
    if isinstance(value, Config):
        if value is task:
            return value
        st = state_of(value)
        if st.producer is not None:
            return value
        if id(value) in inside:
            copy = type(value).__new__(type(value))
            copy.__dict__.update(value.__dict__)
            copy.__dict__["__partita__"] = fresh = type(st)()
            fresh.tags = dict(st.tags)
            fresh.workspace = st.workspace
            fresh.paths_of = st.paths_of
            fresh.ignored, fresh.instance, fresh.bound = st.ignored, st.instance, st.bound
            value, st = copy, fresh
        if st.frozen:
            # A config frozen before (held by another graph) now carries a producer: what
            # was kept about the graphs holding it no longer holds.
            forget_memos()
        st.producer = task
        st.digest = None
        st.memo = None
        freeze(value)
        return value
    if isinstance(value, list):
        return [_mark_outputs(task, v, inside) for v in value]
    if isinstance(value, tuple):
        return tuple(_mark_outputs(task, v, inside) for v in value)
    if isinstance(value, dict):
        return {k: _mark_outputs(task, v, inside) for k, v in value.items()}
    return value


def _outputs_method(cls: type) -> Any:
    """``getattr(cls, "outputs", None)``, looked up once per class (a rerun asks this of
    each task; an ``AttributeError`` made and dropped per task cost more than the rest)."""
    return _runtime.per_class(cls, "_partita_outputs", lambda c: getattr(c, "outputs", None))


def outputs_of(task: Task) -> Any:
    """``task.outputs()``, each config it holds marked as produced by ``task``."""
    method = _outputs_method(type(task))
    if method is None:
        return task
    result = method(task)
    if result is task:
        return task
    inside = {id(cfg) for _, cfg in walk(task, into_tasks=False)}
    return _mark_outputs(task, result, inside)


def _dependencies(task: Task, own: list[tuple[str, Config]] | None = None) -> tuple[Task, ...]:
    found: dict[int, Task] = {}
    for path, child in walk(task, into_tasks=False) if own is None else own:
        if child is task:
            continue
        st = state_of(child)
        if isinstance(child, Task):
            if not st.frozen:
                raise ConfigError(
                    f"{type(task).__qualname__}.{path} is a {type(child).__qualname__} that "
                    "was never submitted, so it will never run and its results will not "
                    f"exist. Submit it first (done = {type(child).__qualname__}(...).submit()) "
                    "and pass what submit() returns."
                )
            found.setdefault(id(child), child)
        elif st.producer is not None and isinstance(st.producer, Task):
            found.setdefault(id(st.producer), st.producer)
    return tuple(found.values())


def seal(
    task: Task,
    workspace: Path,
    *,
    check_class: Callable[[type], None] | None = None,
    is_done: Callable[[Path], bool] | None = None,
) -> Sealed:
    """Seal ``task`` for submission in the work directory ``workspace``.

    Args:
        task: the task to submit (it and everything it holds is frozen).
        workspace: the work directory root (job folders are under its ``jobs/``).
        check_class: called once per config class of the graph, to refuse classes the job
            process cannot import.
        is_done: whether the job folder says the job is done (asked only of a folder that
            has a ``params.json``). A done job's ``params.json`` bytes are not made: its
            recorded classes are checked from the folder's file, and ``Sealed.done`` is set.

    Raises:
        CycleError, EncodingError: a value has no identity.
        ConfigError: two classes share a type id, a sub-task was never submitted, or a
            config with generated paths already belongs to another task.
        ConfigTypeError: a config held by a ``Box[int]`` field was changed, since it was
            given, to a value its type parameters refuse.
    """
    ident = identifier(task)  # cycles and unencodable values fail first
    types: dict[str, str] = {}
    st = state_of(task)
    # A task holding no config (the common task of a sweep): its walk is itself, it has no
    # dependency, and its tags are its own (no conflict). Those steps are skipped.
    leaf = not st.pretasks and st.producer is None
    if leaf:
        d = task.__dict__
        for name in type(task)._partita_walk:
            if d.get(name) is not None:
                leaf = False
                break
    # One walk serves every step below (the graph's configs do not change while sealing;
    # only generated paths, which are not configs, are set). It stops at frozen configs
    # (submitted tasks, their outputs): nothing below them changes, and the classes below
    # them are kept on them (classes_in), so that submitting a chain of tasks, each
    # holding the previous one, does not walk the whole chain again at each link.
    every: list[tuple[str, Config]] = [("", task)] if leaf else list(walk(task, into_frozen=False))
    inner_task = False
    classes: dict[str, type] = {}
    seen: set[type] = set()
    migrated = False
    for path, cfg in every:
        if not leaf:  # a leaf's fields that are checked again hold None: nothing to check
            _check_bindings(task, path, cfg)
        frozen = not leaf and state_of(cfg).frozen
        for cls in classes_in(cfg) if frozen else (type(cfg),):
            if cls in seen:
                continue
            seen.add(cls)
            if check_class is not None:
                check_class(cls)
            _check_type_id(cls)
            types[cls._partita_type_id] = _class_name(cls)
            classes[cls._partita_type_id] = cls
            migrated = migrated or bool(
                cls.__dict__.get("_partita_renamed_from") or cls.__dict__.get("_partita_renames")
            )
        # A frozen config is listed, not what it holds: the walk that stops at sub-tasks
        # is made on its own then.
        inner_task = inner_task or frozen or (cfg is not task and isinstance(cfg, Task))
    # Without a sub-task, the walk that stops at sub-tasks is the same walk.
    own = list(walk(task, into_tasks=False)) if inner_task else every
    dependencies = () if leaf else _dependencies(task, own)
    type_id = type(task)._partita_type_id
    jobdir = _layout.job_folder(workspace, type_id, ident)
    matched: str | None = None
    if migrated and _migrations.former_ids(type(task)) and not os.path.isdir(jobdir):
        former = _former_folder(workspace, type(task), ident)
        if former is not None:
            jobdir, matched = former
    if not leaf or _generated_fields(type(task)):
        _resolve_generated(task, jobdir, own)
    freeze_all([cfg for _, cfg in every])
    st.workspace = workspace
    outputs = outputs_of(task)
    if leaf:
        tags = dict(sorted(st.tags.items())) if st.tags else {}
    else:
        tags, conflicts = collect_tags(task)
        for conflict in conflicts:
            _runtime.warn_caller(conflict, TagConflictWarning)
    recorded_bytes = _read_recorded(jobdir)
    if recorded_bytes is not None and not migrated and is_done is not None and is_done(jobdir):
        # A rerun of a done task: nothing will write params.json, so it is not encoded.
        recorded = _check_recorded_classes(jobdir, types, None, recorded_bytes)
        return Sealed(
            task,
            type_id,
            ident,
            jobdir,
            tags,
            dependencies,
            outputs,
            None,
            recorded,
            matched=matched,
            done=True,
        )
    params = dumps(task)
    recorded = _check_recorded_classes(jobdir, types, params, recorded_bytes)
    if migrated and recorded is False:
        renames = _recorded_renames(jobdir, classes)
        if renames is not None:
            matched = f"{matched}; {renames}" if matched else renames
    return Sealed(
        task, type_id, ident, jobdir, tags, dependencies, outputs, params, recorded, matched
    )


def producer_of(cfg: Config) -> Config | None:
    """The task whose ``outputs()`` returned ``cfg`` (``None`` for other configs)."""
    producer: Config | None = state_of(cfg).producer
    return producer


def configs_in(value: Any) -> list[Config]:
    """Configs found directly in ``value`` (a config, or lists, tuples and dicts of them)."""
    return list(iter_values(value))
