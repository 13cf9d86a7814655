"""``Config`` and ``Task``: typed, validated, freezable parameter objects."""

from __future__ import annotations

import threading
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar, dataclass_transform

from partita import _layout
from partita.config import _runtime
from partita.config._classdef import is_classvar, marker_of, type_id_of
from partita.config._fields import (
    MISSING,
    Field,
    FieldKind,
    PathGenerator,
    Tagged,
    _FieldSpec,
    field,
)
from partita.config._identity import digest, encode_value, identifier, plan
from partita.config._kinds import ConfigNode
from partita.config._types import field_type
from partita.config._values import (
    differs_from_default,
    freeze_value,
    is_enum,
    same_value,
    shareable,
    tag_value,
)
from partita.errors import (
    ConfigDefinitionError,
    ConfigTypeError,
    ConstantFieldError,
    CycleError,
    FrozenConfigError,
    MissingFieldError,
    NoExperimentError,
    PendingPathError,
    UnknownFieldError,
)

C = TypeVar("C", bound="Config")

STATE = "__partita__"

#: Names that fields may not use: they are methods of every config or task.
RESERVED = frozenset(
    {
        "submit",
        "execute",
        "outputs",
        "tag",
        "tags",
        "jobdir",
        "stdout",
        "stderr",
        "job",
    }
)


class _State:
    """Per-instance bookkeeping, stored under ``__partita__`` in the instance dict."""

    __slots__ = ("digest", "frozen", "job", "paths_of", "producer", "tags", "workspace")

    def __init__(self) -> None:
        self.frozen = False
        self.tags: dict[str, Any] = {}
        self.producer: Config | None = None
        self.job: Any = None
        self.workspace: Path | None = None
        self.digest: bytes | None = None
        #: The job folder this config's generated paths were resolved into.
        self.paths_of: Path | None = None


def state_of(cfg: Config) -> _State:
    """The bookkeeping record of ``cfg``."""
    return cfg.__dict__[STATE]  # type: ignore[no-any-return]


#: Pairs of configs being compared by ``==`` in this thread (to refuse loops).
_comparing = threading.local()


def resolve_fields(cls: type[Config]) -> dict[str, Field]:
    """Resolve (once) the fields of ``cls``, including inherited ones."""
    cached = cls.__dict__.get("_partita_fields")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        if isinstance(base, type) and issubclass(base, Config) and base is not Config:
            fields.update(resolve_fields(base))
    specs: dict[str, _FieldSpec] = cls.__dict__.get("_partita_specs", {})
    if specs:
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except NameError as exc:
            if "<locals>" in cls.__qualname__:
                raise ConfigDefinitionError(
                    f"{cls.__qualname__} is defined inside a function, so its annotations "
                    f"(strings, with 'from __future__ import annotations') cannot be resolved "
                    f"({exc}), and a job process could not import it. Define it at the top "
                    "level of a module or of the script."
                ) from None
            raise ConfigDefinitionError(
                f"{cls.__qualname__}: cannot resolve the annotation of a field ({exc}). "
                "Define the referenced class before creating instances, or import it."
            ) from None
        for name, spec in specs.items():
            annotation = hints.get(name)
            if annotation is None or is_classvar(annotation):
                continue
            where = f"{cls.__qualname__}.{name}"
            marker, inner = marker_of(annotation)
            if marker is None:
                raise ConfigDefinitionError(
                    f"{where}: expected the annotation to be Param[...], Meta[...] or "
                    f"Constant[...], found {annotation!r}. Write e.g. "
                    f"'{name}: Param[{getattr(annotation, '__name__', annotation)}]' "
                    "(use ClassVar[...] for class attributes that are not fields)."
                )
            if name in RESERVED or name.startswith("_"):
                raise ConfigDefinitionError(
                    f"{where}: the name {name!r} is reserved "
                    f"({'a method of every task' if name in RESERVED else 'private names'}). "
                    "Choose another field name."
                )
            ftype = field_type(inner, where)
            default = spec.default
            factory = spec.default_factory
            if default is not MISSING:
                if not shareable(default):
                    raise ConfigDefinitionError(
                        f"{where}: default {default!r} is mutable and would be shared by "
                        f"every instance. Use field(default_factory=...) instead."
                    )
                try:
                    default = ftype.validate(default, where)
                except ConfigTypeError as exc:
                    raise ConfigDefinitionError(f"invalid default: {exc}") from None
            if marker.kind is FieldKind.CONSTANT and default is MISSING:
                raise ConfigDefinitionError(
                    f"{where}: a Constant needs a value, e.g. '{name}: Constant[int] = 1'."
                )
            if isinstance(factory, PathGenerator) and marker.kind is FieldKind.CONSTANT:
                raise ConfigDefinitionError(f"{where}: a Constant cannot be a generated path.")
            fields[name] = Field(name, marker.kind, inner, ftype, default, factory, spec.help, cls)
    _install(cls, fields)
    return fields


def _install(cls: type, fields: dict[str, Field]) -> None:
    type_id = type_id_of(cls)
    setattr_ = type.__setattr__
    setattr_(cls, "_partita_fields", fields)
    setattr_(cls, "_partita_type_id", type_id)
    setattr_(cls, "_partita_plan", plan(type_id, fields))
    walk = tuple(n for n in sorted(fields) if fields[n].type.may_hold_configs)
    setattr_(cls, "_partita_walk", walk)
    # Defaults that are immutable all the way down are shared by every instance. Others
    # (a tuple default of a list field is validated into a list) are copied per instance.
    simple = {n for n, f in fields.items() if f.default is not MISSING and shareable(f.default)}
    setattr_(
        cls,
        "_partita_simple_defaults",
        tuple((n, f.default) for n, f in fields.items() if n in simple),
    )
    setattr_(
        cls,
        "_partita_other_defaults",
        tuple(f for n, f in fields.items() if n not in simple),
    )


def _unknown(cls: type[Config], name: str) -> UnknownFieldError:
    fields = resolve_fields(cls)
    import difflib

    close = difflib.get_close_matches(name, list(fields), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    known = ", ".join(sorted(fields)) or "(none)"
    return UnknownFieldError(
        f"{cls.__qualname__} has no field {name!r}.{hint} Its fields are: {known}."
    )


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class Config(ConfigNode):
    """A typed set of parameters with a stable identity.

    Subclass it and declare fields with ``Param[T]`` (part of the identity), ``Meta[T]``
    (stored, not part of the identity) or ``Constant[T]`` (fixed by the class, part of the
    identity). Instances are built with keyword arguments, validated at once::

        class Adam(Config, id="optim.adam"):
            '''The Adam optimiser.'''
            lr: Param[float] = 1e-3
            '''Learning rate.'''

        Adam(lr=0.01)

    The class keyword ``id=`` fixes the type id used in identifiers and folder names; without
    it the id is ``module.QualName``.
    """

    _partita_fields: ClassVar[dict[str, Field]]
    _partita_type_id: ClassVar[str]
    _partita_plan: ClassVar[Any]
    _partita_walk: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, *, id: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if id is not None and (not isinstance(id, str) or not id or "/" in id or id != id.strip()):
            raise ConfigDefinitionError(
                f"{cls.__qualname__}: id must be a non-empty str without '/' or surrounding "
                f"spaces, found {id!r}. Use dotted names such as 'project.train'."
            )
        type.__setattr__(cls, "_partita_explicit_id", id)
        specs: dict[str, _FieldSpec] = {}
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if is_classvar(annotation):
                continue
            value = cls.__dict__.get(name, MISSING)
            if isinstance(value, _FieldSpec):
                spec = value
            elif value is not MISSING:
                if callable(value) and not isinstance(value, type) and not is_enum(value):
                    raise ConfigDefinitionError(
                        f"{cls.__qualname__}.{name}: the default is a function; "
                        f"use field(default_factory={getattr(value, '__name__', value)}) "
                        "for computed defaults."
                    )
                spec = _FieldSpec(default=value)
            else:
                spec = _FieldSpec()
            if name in cls.__dict__:
                type.__delattr__(cls, name)
            specs[name] = spec
        type.__setattr__(cls, "_partita_specs", specs)
        try:
            resolve_fields(cls)
        except ConfigDefinitionError as exc:
            unresolved = ("cannot resolve the annotation", "cannot be resolved")
            if not any(text in str(exc) for text in unresolved):
                raise  # annotations that name a later class are resolved on first use

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        fields = cls.__dict__.get("_partita_fields") or resolve_fields(cls)
        d = self.__dict__
        st = _State()
        d[STATE] = st
        qual = cls.__qualname__
        for name, value in values.items():
            f = fields.get(name)
            if f is None:
                raise _unknown(cls, name)
            if f.kind is FieldKind.CONSTANT:
                raise ConstantFieldError(
                    f"{qual}.{name} is a Constant ({f.default!r}) and cannot be given a value. "
                    "Constants version a task; change the class to change them."
                )
            if type(value) is Tagged:
                value = value.value
                st.tags[name] = tag_value(qual, name, value)
            d[name] = f.type.validate(value, f"{qual}.{name}")
        for name, default in cls._partita_simple_defaults:  # type: ignore[attr-defined]
            if name not in d:
                d[name] = default
        missing = []
        for f in cls._partita_other_defaults:  # type: ignore[attr-defined]
            if f.name in d or f.generator is not None:
                continue
            if f.default is not MISSING:
                # validate() rebuilds containers: a fresh copy of a list or dict default.
                d[f.name] = f.type.validate(f.default, f"{qual}.{f.name}")
            elif f.default_factory is not None:
                d[f.name] = f.type.validate(f.default_factory(), f"{qual}.{f.name}")
            else:
                missing.append(f)
        if missing:
            listing = ", ".join(f"{f.name}: {f.type.describe()}" for f in missing)
            raise MissingFieldError(
                f"{qual}: missing value for required field{'s' if len(missing) > 1 else ''} "
                f"{listing}. Pass {'them' if len(missing) > 1 else 'it'} as keyword "
                f"argument{'s' if len(missing) > 1 else ''}, e.g. {qual}({missing[0].name}=...)."
            )

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        f = cls._partita_fields.get(name)
        st: _State = self.__dict__[STATE]
        if f is None:
            # Private names, and any name on a submitted or loaded config (a task caching
            # things in execute()): plain attributes, never part of the identity or params.
            if name.startswith("_") or (st.frozen and name not in RESERVED):
                object.__setattr__(self, name, value)
                return
            if st.frozen:
                raise FrozenConfigError(
                    f"{cls.__qualname__}.{name} is a method of every task and cannot be "
                    "replaced. Store the value under another name."
                )
            raise _unknown(cls, name)
        qual = cls.__qualname__
        if st.frozen:
            raise FrozenConfigError(
                f"{qual}.{name} cannot change: this config was submitted (or loaded) and is "
                "frozen. Build a new config instead."
            )
        if f.kind is FieldKind.CONSTANT:
            raise ConstantFieldError(f"{qual}.{name} is a Constant and cannot be set.")
        if type(value) is Tagged:
            value = value.value
            st.tags[name] = tag_value(qual, name, value)
        self.__dict__[name] = f.type.validate(value, f"{qual}.{name}")
        st.digest = None

    def __delattr__(self, name: str) -> None:
        raise FrozenConfigError(f"{type(self).__qualname__}.{name}: fields cannot be deleted.")

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found normally: pending generated paths, and
        # properties whose getter raised an AttributeError (such as PendingPathError from
        # ``jobdir``): call the getter again so that its own error reaches the user.
        prop = getattr(type(self), name, None)
        if isinstance(prop, property) and prop.fget is not None:
            return prop.fget(self)
        fields = type(self).__dict__.get("_partita_fields") or {}
        f = fields.get(name)
        if f is not None and f.generator is not None:
            raise PendingPathError(
                f"{type(self).__qualname__}.{name} is generated inside the job folder "
                f"({f.generator!r}) and has no value until the task is submitted. "
                "Read it after .submit(), or inside execute()."
            )
        raise AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        fields = type(self)._partita_fields
        parts = []
        for name, f in fields.items():
            if name in self.__dict__ and f.kind is not FieldKind.CONSTANT:
                value = self.__dict__[name]
                if f.required or differs_from_default(value, f):
                    parts.append(f"{name}={value!r}")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Config):
            return NotImplemented
        if type(self)._partita_type_id != type(other)._partita_type_id:
            return False
        # Kind-aware (True != 1 != 1.0, NaN == NaN) so that equal configs have equal
        # identifiers, hence equal hashes; a task output also compares its producer.
        active: set[tuple[int, int]] = _comparing.__dict__.setdefault("pairs", set())
        pair = (id(self), id(other))
        if pair in active:
            raise CycleError(
                f"{type(self).__qualname__} contains itself (through its fields), so it "
                "cannot be compared. Break the loop: a config cannot be its own parameter."
            )
        active.add(pair)
        try:
            fields = type(self)._partita_fields
            mine = {k: v for k, v in self.__dict__.items() if k in fields}
            theirs = {k: v for k, v in other.__dict__.items() if k in type(other)._partita_fields}
            if mine.keys() != theirs.keys() or not all(
                same_value(v, theirs[k]) for k, v in mine.items()
            ):
                return False
            return same_value(state_of(self).producer, state_of(other).producer)
        finally:
            active.discard(pair)

    def __hash__(self) -> int:
        return hash(digest(self))

    def tag(self: C, name: str, value: Any) -> C:
        """Attach the tag ``name=value`` (not part of the identity); returns ``self``."""
        st = state_of(self)
        if st.frozen:
            raise FrozenConfigError(
                f"{type(self).__qualname__}: tags must be set before submitting; this config "
                "is already submitted."
            )
        if not isinstance(name, str) or not name:
            raise ConfigTypeError(f"tag name: expected a non-empty str, found {name!r}.")
        st.tags[name] = tag_value(type(self).__qualname__, name, value)
        return self

    def tags(self) -> dict[str, Any]:
        """Tags of this config, of every config it contains and of the tasks that produced
        them (an output carries its task's tags). Its own tags win over those it holds."""
        collected: dict[str, Any] = {}
        seen: set[int] = set()

        def visit(cfg: Config) -> None:
            if id(cfg) in seen:
                return
            seen.add(id(cfg))
            st = state_of(cfg)
            if st.producer is not None:
                visit(st.producer)
            for child in iter_children(cfg):
                visit(child)
            collected.update(st.tags)

        visit(self)
        return dict(sorted(collected.items()))


def iter_values(value: Any) -> Iterator[Config]:
    """Configs found directly in ``value`` (not inside those configs)."""
    if isinstance(value, Config):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Config | list | tuple | dict | frozenset):
                yield from iter_values(item)
    elif isinstance(value, frozenset | set):
        # In encoding order, not hash order: the same set gives the same walk (and tags).
        for item in sorted(value, key=encode_value):
            if isinstance(item, Config | list | tuple | dict | frozenset):
                yield from iter_values(item)
    elif isinstance(value, dict):
        for key in sorted(value):
            item = value[key]
            if isinstance(item, Config | list | tuple | dict | frozenset):
                yield from iter_values(item)


def iter_children(cfg: Config) -> Iterator[Config]:
    """Configs held by the fields of ``cfg``, in field-name order."""
    d = cfg.__dict__
    for name in type(cfg)._partita_walk:
        value = d.get(name)
        if value is not None:
            yield from iter_values(value)


def walk(cfg: Config, *, into_tasks: bool = True) -> Iterator[tuple[str, Config]]:
    """Every config reachable from ``cfg`` (depth first, each once) with its field path."""
    seen: set[int] = set()

    def visit(current: Config, path: str) -> Iterator[tuple[str, Config]]:
        if id(current) in seen:
            return
        seen.add(id(current))
        yield path, current
        if current is not cfg and not into_tasks and isinstance(current, Task):
            return
        d = current.__dict__
        for name in type(current)._partita_walk:
            value = d.get(name)
            if value is not None:
                yield from _visit_value(value, f"{path}.{name}" if path else name, visit)

    yield from visit(cfg, "")


def _visit_value(
    value: Any, path: str, visit: Callable[[Config, str], Iterator[tuple[str, Config]]]
) -> Iterator[tuple[str, Config]]:
    if isinstance(value, Config):
        yield from visit(value, path)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _visit_value(item, f"{path}[{i}]", visit)
    elif isinstance(value, frozenset):
        for i, item in enumerate(sorted(value, key=encode_value)):
            yield from _visit_value(item, f"{path}{{{i}}}", visit)
    elif isinstance(value, dict):
        for key in sorted(value):
            yield from _visit_value(value[key], f"{path}[{key!r}]", visit)


def freeze(cfg: Config) -> None:
    """Freeze ``cfg`` and every config it contains (lists and dicts become read-only)."""
    freeze_all(current for _, current in walk(cfg))


def freeze_all(configs: Iterable[Config]) -> None:
    """Freeze each of ``configs`` (the result of a :func:`walk` already made)."""
    for current in configs:
        st = state_of(current)
        if st.frozen:
            continue
        d = current.__dict__
        for name in type(current)._partita_fields:
            if name in d:
                d[name] = freeze_value(d[name])
        st.frozen = True


def is_frozen(cfg: Config) -> bool:
    """Whether ``cfg`` was submitted or loaded (and so cannot change)."""
    return state_of(cfg).frozen


_submitter: list[Callable[..., Any]] = []


def set_submitter(submitter: Callable[..., Any] | None) -> None:
    """Install the function ``Task.submit`` delegates to (set by the active experiment)."""
    _submitter.clear()
    if submitter is not None:
        _submitter.append(submitter)


class Task(Config):
    """A config that can be run: implement ``execute()`` and call ``submit()``.

    Inside ``execute()``, ``self.jobdir`` is the job's folder (also the working directory),
    and ``self.stdout()`` / ``self.stderr()`` are the paths of its output files. The same
    accessors work on tasks received as parameters, to read what they produced.

    A task may define ``outputs()`` to choose what ``submit()`` returns (for example a
    ``Checkpoint`` config pointing into its folder); any config returned that way carries
    the task, so using it as a parameter of another task makes that task wait for this one.
    """

    def execute(self) -> None:
        """The work of the task. Runs in the job process, in the job folder."""
        raise NotImplementedError(
            f"{type(self).__qualname__} does not define execute(self) -> None."
        )

    def submit(self, **options: Any) -> Any:
        """Submit this task to the current experiment; returns ``outputs()`` (default: self).

        Options (all optional): ``launcher=`` a launcher to run it with, ``tokens=`` a dict
        ``{token: units}``, ``retries=`` a :class:`partita.Retry` policy or an int.
        """
        if not _submitter:
            raise NoExperimentError(
                f"{type(self).__qualname__}.submit() was called outside of an experiment. "
                "Submit tasks inside 'with partita.experiment(workdir, name):'."
            )
        return _submitter[0](self, **options)

    @property
    def jobdir(self) -> Path:
        """The job folder of this task: ``WORKDIR/jobs/<type id>/<identifier>``."""
        st = state_of(self)
        root = st.workspace or _runtime.current_workspace()
        if root is None:
            raise PendingPathError(
                f"{type(self).__qualname__}: the job folder is known once the task is "
                "submitted in an experiment (or loaded from a work directory)."
            )
        return _layout.job_folder(root, type(self)._partita_type_id, identifier(self))

    def stdout(self) -> Path:
        """Path of the job's standard output file."""
        return self.jobdir / _layout.STDOUT

    def stderr(self) -> Path:
        """Path of the job's standard error file."""
        return self.jobdir / _layout.STDERR

    @property
    def job(self) -> Any:
        """The :class:`partita.Job` of this task in the current experiment (after submit)."""
        job = state_of(self).job
        if job is None:
            raise NoExperimentError(
                f"{type(self).__qualname__} has not been submitted in this process."
            )
        return job
