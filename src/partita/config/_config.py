"""``Config`` and ``Task``: typed, validated, freezable parameter objects."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar, dataclass_transform

from partita import _layout
from partita.config import _generic, _migrations, _runtime
from partita.config._classdef import RESERVED as RESERVED
from partita.config._classdef import is_classvar, type_id_of
from partita.config._classdef import resolve_fields as resolve_fields
from partita.config._fields import (
    MISSING,
    Field,
    FieldKind,
    Ignored,
    Tagged,
    _FieldSpec,
    field,
)
from partita.config._identity import digest, encode_value, identifier
from partita.config._instance import STATE as STATE
from partita.config._instance import Memo, memo_of, unknown_field
from partita.config._instance import _State as _State
from partita.config._instance import construct as construct
from partita.config._instance import run_post_init as run_post_init
from partita.config._instance import state_of as state_of
from partita.config._kinds import ConfigNode
from partita.config._pretasks import add_pretasks
from partita.config._shared import parse_groups, shared_folder, shared_lock
from partita.config._values import (
    differs_from_default,
    freeze_value,
    is_enum,
    same_value,
    tag_value,
)
from partita.errors import (
    ConfigDefinitionError,
    ConfigError,
    ConfigTypeError,
    ConstantFieldError,
    CycleError,
    FrozenConfigError,
    NoExperimentError,
    PendingPathError,
    PretaskError,
)

C = TypeVar("C", bound="Config")
T = TypeVar("T", bound="Task")

#: Pairs of configs being compared by ``==`` in this thread (to refuse loops).
_comparing = threading.local()


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
    it the id is ``module.QualName``. ``renamed_from=`` lists the class's former type ids
    (oldest first): identifiers keep using the oldest, so renaming or moving a class keeps
    its jobs. ``deprecated=convert`` marks a class replaced by another: ``partita migrate``
    turns its recorded configs into ``convert(old)`` (see docs/identity.md).
    """

    _partita_fields: ClassVar[dict[str, Field]]
    _partita_type_id: ClassVar[str]
    _partita_plan: ClassVar[Any]
    _partita_walk: ClassVar[tuple[str, ...]]
    _partita_post_init: ClassVar[Callable[[Any], None] | None]

    def __init_subclass__(
        cls,
        *,
        id: str | None = None,
        shared: dict[str, Any] | None = None,
        renamed_from: str | tuple[str, ...] | None = None,
        deprecated: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if id is not None and (not isinstance(id, str) or not id or "/" in id or id != id.strip()):
            raise ConfigDefinitionError(
                f"{cls.__qualname__}: id must be a non-empty str without '/' or surrounding "
                f"spaces, found {id!r}. Use dotted names such as 'project.train'."
            )
        if deprecated is not None and not callable(deprecated):
            raise ConfigDefinitionError(
                f"{cls.__qualname__}: deprecated= expected a conversion function (old config "
                f"-> new config), found {deprecated!r}. Write e.g. deprecated=to_adamw."
            )
        type.__setattr__(cls, "_partita_explicit_id", id)
        type.__setattr__(cls, "_partita_renamed_raw", renamed_from)
        type.__setattr__(cls, "_partita_deprecated", deprecated)
        if shared is not None:
            if not issubclass(cls, Task):
                raise ConfigDefinitionError(
                    f"{cls.__qualname__}: shared= declares folders of a task's jobs; "
                    f"{cls.__qualname__} is a Config, not a Task. Declare it on the task class."
                )
            type.__setattr__(cls, "_partita_shared", parse_groups(cls.__qualname__, shared))
        _generic.check_bare_defaults(cls)
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
            if renamed_from is not None:
                # Its former ids are known at once, for params.json recorded under them.
                type_id = type_id_of(cls)
                former = _migrations.check_type_ids(cls, renamed_from, type_id)
                _migrations.register(cls, type_id, former)

    def __class_getitem__(cls, params: Any) -> Any:
        getitem = getattr(super(), "__class_getitem__", None)
        if getitem is None:
            raise ConfigDefinitionError(
                f"{cls.__qualname__} has no type parameters, so {cls.__qualname__}[...] means "
                "nothing. Declare them with class "
                f"{cls.__name__}(..., Generic[T]), or drop the brackets."
            )
        try:
            alias = getitem(params)
        except TypeError as exc:  # Box[int, str] for one parameter, Box[1], ...
            raise ConfigDefinitionError(
                f"{cls.__qualname__}[...]: {exc}. Give one type per type parameter of "
                f"{cls.__qualname__} ({', '.join(map(str, cls.__parameters__))})."  # type: ignore[attr-defined]
            ) from None
        return _generic.bind(alias)

    @classmethod
    def _partita_bound_fields(cls, args: tuple[Any, ...]) -> dict[str, Field]:
        """The fields of ``cls`` with its type parameters bound to ``args`` (cached)."""
        cache: dict[tuple[Any, ...], dict[str, Field]] = cls.__dict__.get("_partita_bound", {})
        found = cache.get(args)
        if found is None:
            found = _generic.bound_fields(cls, args, resolve_fields(cls))
            type.__setattr__(cls, "_partita_bound", {**cache, args: found})
        return found

    @classmethod
    def _partita_build(cls: type[C], values: dict[str, Any], args: tuple[Any, ...]) -> C:
        """``cls[*args](**values)``: an instance checked against the bound parameters."""
        cfg = cls.__new__(cls)
        construct(cfg, values, cls._partita_bound_fields(args), True)
        run_post_init(cfg)
        return cfg

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        construct(self, values, cls.__dict__.get("_partita_fields") or resolve_fields(cls), False)
        if type(self)._partita_post_init is not None:
            run_post_init(self)

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        st: _State = self.__dict__[STATE]
        f = (st.bound or cls._partita_fields).get(name)
        if st.post_init:
            if f is not None:
                raise ConfigError(
                    f"{cls.__qualname__}.__post_init__ sets the field {name!r}: "
                    "__post_init__ may only set attributes that are not fields (derived "
                    "state, rebuilt after every load). Compute the field's value before "
                    "building the config, or store the result under another name."
                )
            if name in RESERVED:
                raise ConfigError(
                    f"{cls.__qualname__}.__post_init__ sets {name!r}, a method of every "
                    "task. Store the value under another name."
                )
            object.__setattr__(self, name, value)
            return
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
            raise unknown_field(cls, name)
        qual = cls.__qualname__
        if st.frozen:
            raise FrozenConfigError(
                f"{qual}.{name} cannot change: this config was submitted (or loaded) and is "
                "frozen. Build a new config instead."
            )
        if f.kind is FieldKind.CONSTANT:
            raise ConstantFieldError(f"{qual}.{name} is a Constant and cannot be set.")
        if type(value) is Ignored:
            value = value.value
            st.ignored = st.ignored | {name}
        elif name in st.ignored:
            st.ignored = st.ignored - {name}
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
            mine_st, theirs_st = state_of(self), state_of(other)
            if mine_st.ignored != theirs_st.ignored or mine_st.instance != theirs_st.instance:
                return False
            if not same_value(mine_st.pretasks, theirs_st.pretasks):
                return False
            return same_value(mine_st.producer, theirs_st.producer)
        finally:
            active.discard(pair)

    def __hash__(self) -> int:
        return hash(digest(self))

    def replace(self: C, **changes: Any) -> C:
        """A new, unfrozen copy of this config with some fields changed.

        ``changes`` name fields of this config or, with dots, of the configs it holds:
        ``train.replace(lr=0.01, **{"model.layers": 4})``. Values are checked as at
        construction. Sub-configs not on a changed path are shared with the original
        (sub-configs with generated paths are copied without them: their paths belong to
        the original's job folder). This config, submitted or not, is left untouched.

        Raises:
            UnknownFieldError: a name is not a field (with a "did you mean").
            ConfigTypeError: a value does not fit its field.
        """
        return _replacer[0](self, changes)  # type: ignore[no-any-return]

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
        them (an output carries its task's tags). Its own tags win over those it holds;
        among the configs it holds, the last field (in name order) wins. Submitting warns
        (:class:`partita.errors.TagConflictWarning`) when one name meets two values."""
        return collect_tags(self)[0]


def _same_tag(a: Any, b: Any) -> bool:
    """Tag values are scalars; ``1``, ``1.0`` and ``True`` are three values."""
    return type(a) is type(b) and a == b


def _collect_tags_of(
    current: Config,
    path: str,
    cfg: Config,
    root: str,
    seen: set[int],
    seen_values: dict[str, list[tuple[Any, str]]],
) -> None:
    if id(current) in seen:
        return
    seen.add(id(current))
    memo = memo_of(current)
    if memo is not None and _tagless(current, memo):
        return  # a submitted graph without tags: nothing to collect in it
    st = state_of(current)
    if st.producer is not None:
        _collect_tags_of(st.producer, path, cfg, root, seen, seen_values)
    d = current.__dict__
    for name in type(current)._partita_walk:
        value = d.get(name)
        if value is not None:
            for child in iter_values(value):
                child_path = f"{path}.{name}" if path else name
                _collect_tags_of(child, child_path, cfg, root, seen, seen_values)
    for i, pretask in enumerate(st.pretasks):  # after the fields, in the order they run
        pretask_path = f"{path}.pretasks[{i}]" if path else f"pretasks[{i}]"
        _collect_tags_of(pretask, pretask_path, cfg, root, seen, seen_values)
    where = f"{root} itself" if current is cfg else f"the {type(current).__qualname__} at {path}"
    for name, value in st.tags.items():
        seen_values.setdefault(name, []).append((value, where))


def _tagless(cfg: Config, memo: Memo) -> bool:
    """Whether the frozen ``cfg``, the configs it holds and their producers have no tag."""
    if memo.tagless is None:
        st = state_of(cfg)
        related = iter_children(cfg)
        if st.producer is not None:
            related = itertools.chain((st.producer,), related)
        memo.tagless = not st.tags and all(_no_tags(other) for other in related)
    return memo.tagless


def _no_tags(cfg: Config) -> bool:
    memo = memo_of(cfg)
    if memo is None:  # not frozen (a frozen config holds frozen ones): not kept
        tags, _ = collect_tags(cfg)
        return not tags
    return _tagless(cfg, memo)


def classes_in(cfg: Config) -> tuple[type[Config], ...]:
    """The classes of the configs :func:`walk` reaches from ``cfg``, in the order first met.

    Kept on a frozen config: submitting a task that holds it (a chain of tasks, each
    holding the previous one) asks this of it instead of walking the graph below it.
    """
    memo = memo_of(cfg)
    if memo is None:
        return tuple(dict.fromkeys(type(current) for _, current in walk(cfg)))
    if memo.classes is None:
        found: dict[type[Config], None] = {type(cfg): None}
        for child in iter_children(cfg):
            for cls in classes_in(child):
                found[cls] = None
        classes = tuple(found)
        # Most graphs hold a few classes: one tuple each, shared by the configs holding them.
        memo.classes = _class_tuples.setdefault(classes, classes)
    return memo.classes


#: The distinct tuples of :func:`classes_in` (a chain shares one).
_class_tuples: dict[tuple[type[Config], ...], tuple[type[Config], ...]] = {}


def collect_tags(cfg: Config) -> tuple[dict[str, Any], list[str]]:
    """``cfg.tags()`` and a sentence per tag name given two values on the way.

    The configs are visited depth first, post-order (a producer, then the held configs in
    field-name order, then the config itself): the value seen last wins.
    """
    seen_values: dict[str, list[tuple[Any, str]]] = {}
    seen: set[int] = set()
    root = type(cfg).__qualname__

    # A module-level helper, not a closure: a recursive closure refers to itself, and each
    # call would leave a reference cycle for the garbage collector.
    _collect_tags_of(cfg, "", cfg, root, seen, seen_values)
    collected: dict[str, Any] = {}
    conflicts: list[str] = []
    for name, values in seen_values.items():
        winner, won_by = values[-1]
        collected[name] = winner
        others: list[tuple[Any, str]] = []
        for value, where in values[:-1]:
            if not _same_tag(value, winner) and not any(_same_tag(value, v) for v, _ in others):
                others.append((value, where))
        if others:
            lost = ", ".join(f"{value!r} (from {where})" for value, where in others)
            conflicts.append(
                f"{root}: the tag {name!r} is given {len(others) + 1} values, {lost} and "
                f"{winner!r} (from {won_by}); {winner!r} wins (a config's own tags win over "
                "those of the configs it holds, a later field (in name order) or list item over "
                f"an earlier one). Give the tag one value, or choose it: task.tag({name!r}, ...)."
            )
    return dict(sorted(collected.items())), conflicts


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
    yield from d[STATE].pretasks


def walk(
    cfg: Config, *, into_tasks: bool = True, into_frozen: bool = True
) -> Iterator[tuple[str, Config]]:
    """Every config reachable from ``cfg`` (depth first, each once) with its field path.

    ``into_tasks=False`` stops at the tasks ``cfg`` holds, ``into_frozen=False`` at the
    frozen configs (``cfg`` too, if frozen): they are listed, not what they hold.
    """
    # A small object rather than a recursive closure: a closure refers to itself, and every
    # walk (thousands per second while submitting) would leave a cycle for the collector.
    return _Walk(cfg, into_tasks, into_frozen).visit(cfg, "")


class _Walk:
    __slots__ = ("into_frozen", "into_tasks", "root", "seen")

    def __init__(self, root: Config, into_tasks: bool, into_frozen: bool = True) -> None:
        self.root = root
        self.into_tasks = into_tasks
        self.into_frozen = into_frozen
        self.seen: set[int] = set()

    def visit(self, current: Config, path: str) -> Iterator[tuple[str, Config]]:
        seen = self.seen
        if id(current) in seen:
            return
        seen.add(id(current))
        yield path, current
        if current is not self.root and not self.into_tasks and isinstance(current, Task):
            return
        d = current.__dict__
        if not self.into_frozen and d[STATE].frozen:
            return
        for name in type(current)._partita_walk:
            value = d.get(name)
            if value is not None:
                yield from _visit_value(value, f"{path}.{name}" if path else name, self.visit)
        for i, pretask in enumerate(d[STATE].pretasks):
            yield from self.visit(pretask, f"{path}.pretasks[{i}]" if path else f"pretasks[{i}]")


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

#: ``partita.config._variants.replace``, installed when the package is imported.
_replacer: list[Callable[[Any, dict[str, Any]], Any]] = []


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
        ``{token: units}``, ``retries=`` a :class:`partita.Retry` policy or an int,
        ``pretasks=`` a list of pre-tasks (the same as :meth:`add_pretasks` first).
        """
        if not _submitter:
            raise NoExperimentError(
                f"{type(self).__qualname__}.submit() was called outside of an experiment. "
                "Submit tasks inside 'with partita.experiment(workdir, name):'."
            )
        pretasks = options.pop("pretasks", None)
        if pretasks is not None:
            if isinstance(pretasks, Config) or not isinstance(pretasks, list | tuple):
                raise PretaskError(
                    f"{type(self).__qualname__}.submit(pretasks=...): expected a list of "
                    f"light configs, found {type(pretasks).__qualname__}. Write "
                    "submit(pretasks=[SetSeed(seed=1), ...])."
                )
            self.add_pretasks(*pretasks)
        return _submitter[0](self, **options)

    def add_pretasks(self: T, *pretasks: Config) -> T:
        """Run these light configs' ``execute()`` in the job process before this task's.

        A pre-task is a :class:`Config` (not a ``Task``) that defines ``execute(self)``:
        setting seeds, loading weights, configuring logging. Pre-tasks are part of the
        task's identity, in order (adding one, or reordering them, gives another job), and
        are stored in ``params.json``. Call it before ``submit()``; returns ``self``::

            Train(lr=0.1).add_pretasks(SetSeed(seed=1), Logging(level="INFO")).submit()

        Raises:
            PretaskError: a value is a ``Task``, not a config, or has no ``execute()``.
            FrozenConfigError: the task was already submitted (or loaded).
        """
        add_pretasks(self, pretasks)
        return self

    def pretasks(self) -> tuple[Config, ...]:
        """The pre-tasks of this task, in the order they run (see :meth:`add_pretasks`)."""
        return state_of(self).pretasks

    def publish(self, name: str, value: Any) -> None:
        """Publish an output while the job runs (``partita.publish``): a checkpoint saved.

        The experiment reacts with ``job.watch_output(name, callback)``; see
        docs/configs.md, "Live outputs".
        """
        _runtime.publish(name, value)

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

    def shared_folder(self, group: str) -> Path:
        """The shared folder ``group`` declared with ``shared=`` on the class (created).

        Every task of this class whose parameters differ only in the group's fields gets
        the same folder, ``WORKDIR/shared/<type id>/<group>/<shared identifier>``. Write it
        only while holding its lock: ``with self.shared(group) as folder:``.
        """
        folder = shared_folder(self, group)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def shared(
        self, group: str, *, timeout: float | None = None
    ) -> contextlib.AbstractContextManager[Path]:
        """``with self.shared("checkpoints") as folder:``: hold the shared folder's lock.

        Blocks until no other job holds it (``timeout=None``, the default), or raises
        :class:`partita.errors.SharedFolderTimeout` after ``timeout`` seconds. The lock is
        released at the end of the block, and by the kernel if the job dies.
        """
        return shared_lock(self, group, timeout)

    @property
    def job(self) -> Any:
        """The :class:`partita.Job` of this task in the current experiment (after submit)."""
        st = state_of(self)
        job = st.job
        if job is None and st.held:
            name = type(self).__qualname__
            raise NoExperimentError(
                f"{name} was submitted with transient=True and is held: it gets a job (and "
                "runs) only when a task that needs it, and is not done, is submitted in this "
                f"experiment. Submit that task first, or submit {name} without transient=True "
                "to run it anyway."
            )
        if job is None:
            raise NoExperimentError(
                f"{type(self).__qualname__} has not been submitted in this process."
            )
        return job
