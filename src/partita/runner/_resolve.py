"""From defaults, config files and overrides to a config instance (and back to plain values).

Every source becomes a list of :class:`Assignment` (a field path and its value(s)), checked
against the config class as it is read: an unknown path gets a "did you mean", a
``Constant`` cannot be set, and each value is converted to its field's type at once, so
that every error is found before anything runs. Later assignments win.
"""

from __future__ import annotations

import difflib
import enum
import itertools
import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from partita.config import Config, FieldKind, fields
from partita.config import _types as t
from partita.config._fields import Field
from partita.errors import ConfigTypeError, PartitaError, RunnerError
from partita.runner._files import Layer
from partita.runner._values import Node, Value, convert, parse_value

__all__ = [
    "Assignment",
    "build",
    "combinations",
    "config_class",
    "from_files",
    "from_overrides",
    "to_plain",
]


@dataclass
class Assignment:
    """``path = value`` from one source; several values make a sweep."""

    path: tuple[str, ...]
    values: list[Any]
    """Converted to the field's type (one value, or the values of a sweep)."""
    texts: list[str]
    """Each value as typed (or as read from a file)."""
    source: str

    @property
    def key(self) -> str:
        """The dotted path."""
        return ".".join(self.path)

    @property
    def is_sweep(self) -> bool:
        """Whether several values are given."""
        return len(self.values) > 1


def config_class(f: Field) -> type[Config] | None:
    """The config class whose fields ``f.sub`` paths name (``None``: not a config field)."""
    default = f.default
    if isinstance(default, Config):
        return type(default)
    kind = f.type
    if isinstance(kind, t._Union):
        configs = [o for o in kind.options if isinstance(o, t._ConfigType)]
        kind = configs[0] if len(configs) == 1 else kind
    if isinstance(kind, t._ConfigType) and issubclass(kind.kind, Config):
        return kind.kind
    return None


def _paths(cls: type[Config], prefix: str = "", depth: int = 0) -> list[str]:
    out: list[str] = []
    for f in fields(cls):
        out.append(prefix + f.name)
        sub = config_class(f)
        if sub is not None and depth < 4:
            out.extend(_paths(sub, f"{prefix}{f.name}.", depth + 1))
    return out


def field_at(cls: type[Config], path: tuple[str, ...], source: str) -> Field:
    """The field named by ``path`` (checked: known names, config fields in between)."""
    current: type[Config] = cls
    for depth, part in enumerate(path):
        known = {f.name: f for f in fields(current)}
        f = known.get(part)
        where = ".".join(path[: depth + 1])
        renamed = next((g.name for g in known.values() if part in g.renamed_from), None)
        if f is None and renamed is not None:
            new = ".".join((*path[:depth], renamed))
            raise RunnerError(
                f"{source}: the field {where!r} of {current.__qualname__} was renamed to "
                f"{new!r} (field(renamed_from=...)). Write {new}=... instead."
            )
        if f is None:
            # Below a config that was found ('model'), compare what follows it with the
            # paths below it: the shared prefix would make every one of them look close.
            prefix = ".".join(path[:depth])
            below = [
                c[len(prefix) + 1 :] if prefix else c
                for c in _paths(cls)
                if not prefix or c.startswith(prefix + ".")
            ]
            rest = ".".join(path[depth:])
            close = [
                f"{prefix}.{c}" if prefix else c
                for c in difflib.get_close_matches(rest, below, n=1, cutoff=0.6)
            ]
            if not close:
                close = [
                    ".".join((*path[:depth], c))
                    for c in difflib.get_close_matches(part, list(known), n=1, cutoff=0.5)
                ]
            hint = f" Did you mean {close[0]!r}?" if close else ""
            names = ", ".join(known) or "(none)"
            owner = current.__qualname__
            if depth:
                owner += f" (at {'.'.join(path[:depth])!r})"
            raise RunnerError(
                f"{source}: {owner} has no field {part!r}.{hint} Its fields are: {names}. "
                "See them all with --help."
            )
        if depth == len(path) - 1:
            if f.kind is FieldKind.CONSTANT:
                raise RunnerError(
                    f"{source}: {where} is a Constant, fixed by the class {owner_name(f)}; "
                    "it cannot be set. Change the class (and its version) instead."
                )
            return f
        sub = config_class(f)
        if sub is None:
            raise RunnerError(
                f"{source}: {where} is a {f.type.describe()}, not a config: it has no field "
                f"{path[depth + 1]!r}. Set it as a whole: {where}=VALUE."
            )
        current = sub
    raise RunnerError(f"{source}: empty field name. Write KEY=VALUE, e.g. lr=0.1.")


def owner_name(f: Field) -> str:
    """The qualified name of the class that declares ``f``."""
    return f.owner.__qualname__


def _split(key: str, source: str) -> tuple[str, ...]:
    parts = tuple(key.strip().split("."))
    if not all(part.isidentifier() for part in parts):
        raise RunnerError(
            f"{source}: {key!r} is not a field path. Use names separated by dots, e.g. "
            "model.layers=4."
        )
    return parts


def _typed(f: Field, nodes: list[Node], key: str, source: str) -> list[Any]:
    try:
        return [convert(node, f.type, key) for node in nodes]
    except ConfigTypeError as exc:
        raise RunnerError(f"{source}: {exc}") from None


def from_overrides(
    cls: type[Config], overrides: list[str], multirun: bool = True
) -> list[Assignment]:
    """``key=value`` texts, checked and converted (sweeps keep all their values).

    Without ``multirun``, a sweep is refused before its values are converted (``C=3,x``
    for a list says "a sweep", not that 3 is not a list).
    """
    out: list[Assignment] = []
    for text in overrides:
        key, sep, raw = text.partition("=")
        source = f"override {text!r}"
        if not sep or not key.strip():
            raise RunnerError(
                f"{source}: expected KEY=VALUE (e.g. lr=0.1 or model.layers=4), found "
                f"{text!r}. Options start with '--'; see --help."
            )
        path = _split(key, source)
        nodes = parse_value(raw, source)
        if not multirun and len(nodes) > 1:
            f = field_at(cls, path, source)  # an unknown key says so first
            raise _unswept(source, ".".join(path), [_node_text(n) for n in nodes], f)
        _assign(cls, path, nodes, raw, source, out)
    return out


def _assign(
    cls: type[Config],
    path: tuple[str, ...],
    nodes: list[Node],
    raw: str | None,
    source: str,
    out: list[Assignment],
) -> None:
    from partita.runner._values import Map

    f = field_at(cls, path, source)
    key = ".".join(path)
    if config_class(f) is not None and nodes and all(isinstance(n, Map) for n in nodes):
        if len(nodes) > 1:
            raise RunnerError(
                f"{source}: {key} is a {f.type.describe()}, which --multirun cannot sweep. "
                f"Sweep its fields instead, e.g. {key}.FIELD=1,2."
            )
        node = nodes[0]
        assert isinstance(node, Map)
        for name, value in node.items:
            _assign(cls, (*path, *_split(name, source)), [value], None, source, out)
        return
    values = _typed(f, nodes, key, source)
    texts = [raw] if len(nodes) == 1 and raw is not None else [_node_text(n) for n in nodes]
    out.append(Assignment(path, values, texts, source))


def _node_text(node: Node) -> str:
    from partita.runner._values import Map, Seq, Text

    if isinstance(node, Text):
        return repr(node.text) if node.quoted else node.text
    if isinstance(node, Seq):
        return "[" + ",".join(_node_text(n) for n in node.items) + "]"
    if isinstance(node, Map):
        return "{" + ",".join(f"{k}: {_node_text(v)}" for k, v in node.items) + "}"
    return repr(node.value)


def from_files(cls: type[Config], layers: list[Layer]) -> list[Assignment]:
    """The values of config files, flattened to field paths, checked and converted."""
    out: list[Assignment] = []

    def visit(
        current: type[Config], prefix: tuple[str, ...], values: dict[str, Any], file: str
    ) -> None:
        for key, value in values.items():
            path = (*prefix, *_split(str(key), f"{file}: key {key!r}"))
            f = field_at(cls, path, file)
            if isinstance(value, dict) and config_class(f) is not None:
                visit(current, path, value, file)
                continue
            key_text = ".".join(path)
            try:
                typed = _typed(f, [Value(value)], key_text, file)
            except RunnerError as exc:
                if isinstance(f.type, t._Str) and not isinstance(value, str):
                    raise RunnerError(
                        f"{exc} In YAML, quote it to make it a text: {key}: '{value}'."
                    ) from None
                raise
            out.append(Assignment(path, typed, [repr(value)], file))

    for layer in layers:
        visit(cls, (), layer.values, layer.file)
    return out


def combinations(assignments: list[Assignment]) -> list[list[Assignment]]:
    """Each combination of the sweeps, as single-valued assignments (one if no sweep)."""
    axes = [a for a in assignments if a.is_sweep]
    if not axes:
        return [assignments]
    out = []
    for choice in itertools.product(*(range(len(a.values)) for a in axes)):
        picked = dict(zip((id(a) for a in axes), choice, strict=True))
        combo = []
        for a in assignments:
            if id(a) in picked:
                i = picked[id(a)]
                a = Assignment(a.path, [a.values[i]], [a.texts[i]], a.source)
            combo.append(a)
        out.append(combo)
    return out


def _unswept(source: str, key: str, texts: list[str], f: Field) -> RunnerError:
    """Several values without ``--multirun``."""
    joined = ",".join(texts)
    if isinstance(f.type, t._List | t._Tuple | t._Set):
        one = f"for one list, write it in brackets: {key}=[{joined}]"
    else:
        # The shell removes one level of quotes: the text's own quotes go inside others.
        single = joined.replace("'", "")
        one = f"for one text, quote it inside shell quotes: \"{key}='{single}'\""
    return RunnerError(
        f"{source}: {key} is given {len(texts)} values (a sweep). Add --multirun to run "
        f"once per value, or, {one}."
    )


def check_sweepable(cls: type[Config], assignments: list[Assignment], multirun: bool) -> None:
    """Refuse sweeps without ``--multirun`` and sweeps of fields that cannot be swept."""
    for a in assignments:
        if not a.is_sweep:
            continue
        f = field_at(cls, a.path, a.source)
        if not multirun:
            raise _unswept(a.source, a.key, a.texts, f)
        if config_class(f) is not None or isinstance(f.type, t._Dict):
            raise RunnerError(
                f"{a.source}: {a.key} is a {f.type.describe()}, which --multirun cannot "
                f"sweep. Sweep its fields instead, e.g. {a.key}.FIELD=1,2."
            )


def build(cls: type[Config], assignments: list[Assignment]) -> Config:
    """An instance of ``cls`` with the assignments applied (later ones win)."""
    values: dict[tuple[str, ...], Any] = {}
    for a in assignments:
        if a.is_sweep:
            raise RunnerError(f"{a.source}: {a.key} is a sweep; pick one value per run.")
        # A whole value replaces what was set below it before.
        for path in [p for p in values if p[: len(a.path)] == a.path and p != a.path]:
            del values[path]
        values[a.path] = a.values[0]
    try:
        return _make(cls, None, values)
    except RunnerError:
        raise
    except PartitaError as exc:
        # Name the override or file that set the value refused (the last one, the longest
        # path the message names), as the conversion errors do.
        text = str(exc)
        named = [a for a in assignments if f"{cls.__qualname__}.{a.key}" in text]
        if named:
            culprit = max(reversed(named), key=lambda a: len(a.path))
            raise RunnerError(f"{culprit.source}: {text}") from None
        raise RunnerError(f"{cls.__qualname__}: {text}") from None


def _make(cls: type[Config], base: Config | None, values: dict[tuple[str, ...], Any]) -> Config:
    kwargs: dict[str, Any] = {}
    if base is not None:
        for f in fields(base):
            if f.kind is not FieldKind.CONSTANT and f.generator is None:
                kwargs[f.name] = getattr(base, f.name)
    direct = {p[0]: v for p, v in values.items() if len(p) == 1}
    nested: dict[str, dict[tuple[str, ...], Any]] = {}
    for p, v in values.items():
        if len(p) > 1:
            nested.setdefault(p[0], {})[p[1:]] = v
    known = {f.name: f for f in fields(cls)}
    for name, sub in nested.items():
        f = known[name]
        start = direct.pop(name, kwargs.get(name, f.make_default() if not f.required else None))
        if not isinstance(start, Config):
            start = None
        kind = type(start) if start is not None else config_class(f)
        assert kind is not None
        kwargs[name] = _make(kind, start, sub)
    kwargs.update(direct)
    return cls(**kwargs)


def to_plain(value: Any) -> Any:
    """A JSON value for a field value: configs become mappings of their fields."""
    if isinstance(value, Config):
        return {f.name: to_plain(getattr(value, f.name, None)) for f in fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted((to_plain(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def tag_of(value: Any, text: str) -> Any:
    """The tag for a swept value: the value itself when it is a simple one, else its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else text
    if isinstance(value, enum.Enum):
        return value.name
    return text
