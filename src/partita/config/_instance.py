"""One config instance: its bookkeeping record and how it is filled at construction.

Every config holds a :class:`_State` under ``__partita__`` in its instance dict: whether it
is frozen, its tags, producer, cached digest, and the per-instance identity marks
(``ignore()``, ``distinct()``, bound type parameters). :func:`construct` is the body of
``Config.__init__``; :func:`run_post_init` calls ``__post_init__``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from partita.config._fields import MISSING, Field, FieldKind, Ignored, Tagged
from partita.config._values import tag_value
from partita.errors import ConstantFieldError, MissingFieldError, UnknownFieldError

STATE = "__partita__"


#: The ignored fields of most configs (one shared empty set, not one per config).
_NONE_IGNORED: frozenset[str] = frozenset()


class _State:
    """Per-instance bookkeeping, stored under ``__partita__`` in the instance dict."""

    __slots__ = (
        "bound",
        "digest",
        "frozen",
        "held",
        "ignored",
        "instance",
        "job",
        "memo",
        "paths_of",
        "post_init",
        "pretasks",
        "producer",
        "tags",
        "workspace",
    )

    def __init__(self) -> None:
        self.frozen = False
        self.tags: dict[str, Any] = {}
        self.producer: Any = None
        self.job: Any = None
        #: Submitted with ``transient=True`` and not launched (yet): it has no job.
        self.held = False
        self.workspace: Path | None = None
        self.digest: bytes | None = None
        #: The job folder this config's generated paths were resolved into.
        self.paths_of: Path | None = None
        #: Fields whose value is not part of this instance's identity (``ignore()``).
        self.ignored: frozenset[str] = _NONE_IGNORED
        #: The key of a distinct instance (``distinct()``): part of its identity.
        self.instance: str | None = None
        #: Fields checked against bound type parameters (``Box[int](...)``), if any.
        self.bound: dict[str, Field] | None = None
        #: Whether ``__post_init__`` is running (it may set plain attributes only).
        self.post_init = False
        #: Light configs whose ``execute()`` runs before a task's (see config/_pretasks.py).
        self.pretasks: tuple[Any, ...] = ()
        #: What was worked out about the graph below this config once it was frozen
        #: (:class:`Memo`; ``None``: nothing yet).
        self.memo: Memo | None = None


class Memo:
    """What submitting works out about the graph below a frozen config, kept for reuse.

    A frozen config and every config it holds no longer change, so what each submission
    would otherwise find again by walking the whole graph below it (every class in it,
    whether it holds any tag, its ``params.json`` entry) is kept on it. Without this,
    submitting a chain of dependent tasks walks the chain again at each link (quadratic).
    Only frozen configs get one (:func:`memo_of`), and one made before
    :func:`forget_memos` is ignored.
    """

    __slots__ = ("classes", "entry", "epoch", "listing", "tagless")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        #: Classes of every config :func:`walk` reaches from it, in the order first met.
        self.classes: tuple[Any, ...] | None = None
        #: Whether it, the configs it holds and the tasks producing them have no tag.
        self.tagless: bool | None = None
        #: Its ``params.json`` entry and the work directories it was made with:
        #: ``(roots, len(roots), template)`` (see ``config/_serial.py``).
        self.entry: tuple[list[str], int, Any] | None = None
        #: The ``objects`` of its ``params.json``, for a config referring to one config
        #: only (a link of a chain), until the next link takes them over:
        #: ``(roots, len(roots), text, count, its position, scripts' files)``.
        self.listing: tuple[list[str], int, str, int, int, Any] | None = None


#: Incremented by :func:`forget_memos`: memos made before are stale.
_epoch = [0]


def memo_of(cfg: Any, make: bool = True) -> Memo | None:
    """The memo of ``cfg`` (made now if needed, unless ``make`` is false), ``None`` if it
    is not frozen."""
    st: _State = cfg.__dict__[STATE]
    if not st.frozen:
        return None
    memo = st.memo
    if memo is None or memo.epoch != _epoch[0]:
        if not make:
            return None
        memo = st.memo = Memo(_epoch[0])
    return memo


def forget_memos() -> None:
    """Make every memo stale: a frozen config was changed (a producer given to it)."""
    _epoch[0] += 1


def state_of(cfg: Any) -> _State:
    """The bookkeeping record of ``cfg``."""
    return cfg.__dict__[STATE]  # type: ignore[no-any-return]


def run_post_init(cfg: Any) -> None:
    """Call ``cfg.__post_init__()`` (after construction and after every load)."""
    hook = type(cfg)._partita_post_init
    if hook is None:
        return
    st = state_of(cfg)
    st.post_init = True
    try:
        hook(cfg)
    finally:
        st.post_init = False


def unknown_field(cls: type, name: str) -> UnknownFieldError:
    """The error for ``name``, which is not a field of ``cls`` (with a "did you mean")."""
    fields = cls.__dict__.get("_partita_fields") or {}
    from partita._suggest import closest

    close = closest(name, fields)
    hint = f" Did you mean {close!r}?" if close else ""
    known = ", ".join(sorted(fields)) or "(none)"
    return UnknownFieldError(
        f"{cls.__qualname__} has no field {name!r}.{hint} Its fields are: {known}."
    )


def construct(cfg: Any, values: dict[str, Any], fields: dict[str, Field], bound: bool) -> None:
    """Fill a new config's fields from ``values`` and defaults (``Config.__init__``).

    ``fields``: the resolved fields of its class or, with ``bound``, those of a class with
    bound type parameters (``Box[int](...)``), checked instead of the class's own.
    """
    cls = type(cfg)
    d = cfg.__dict__
    st = _State()
    if bound:
        st.bound = fields
    d[STATE] = st
    qual = cls.__qualname__
    ignored: list[str] = []
    for name, value in values.items():
        f = fields.get(name)
        if f is None:
            raise unknown_field(cls, name)
        if f.kind is FieldKind.CONSTANT:
            raise ConstantFieldError(
                f"{qual}.{name} is a Constant ({f.default!r}) and cannot be given a value. "
                "Constants version a task; change the class to change them."
            )
        if type(value) is Ignored:
            value = value.value
            ignored.append(name)
        if type(value) is Tagged:
            value = value.value
            st.tags[name] = tag_value(qual, name, value)
        d[name] = f.type.validate(value, f"{qual}.{name}")
    if ignored:
        st.ignored = frozenset(ignored)
    for name, default in cls._partita_simple_defaults:  # type: ignore[attr-defined]
        if name not in d:
            # a bound type parameter converts the default like a given value
            d[name] = fields[name].type.validate(default, f"{qual}.{name}") if bound else default
    missing = []
    for f in cls._partita_other_defaults:  # type: ignore[attr-defined]
        if f.name in d or f.generator is not None:
            continue
        f = fields[f.name]
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
