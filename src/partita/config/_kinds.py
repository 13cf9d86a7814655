"""What kind of value a field holds: the one rule shared by identity, validation,
equality and serialisation.

Kept a leaf (it imports nothing else from the package): ``_identity``, ``_types``,
``_config`` and ``_serial`` all decide a value's kind here, so they cannot disagree on
whether an ``IntEnum`` member is an enum or an int, or a ``bool`` an int.
"""

from __future__ import annotations

import enum
from pathlib import PurePath
from typing import Any

from partita.errors import EncodingError


class Kind(enum.Enum):
    """The kind of an encodable value (one identity tag and one JSON form each)."""

    NONE = "none"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STR = "str"
    PATH = "path"
    ENUM = "enum"
    LIST = "list"
    TUPLE = "tuple"
    DICT = "dict"
    SET = "set"
    CONFIG = "config"


class FieldKind(enum.Enum):
    """How a field takes part in the identity of its config."""

    PARAM = "param"
    """Counts in the identifier (unless equal to its default)."""
    META = "meta"
    """Stored and reloaded, but never part of the identifier."""
    CONSTANT = "constant"
    """Fixed by the class, always part of the identifier: bump it to version a task."""


class ConfigNode:
    """Base of :class:`partita.Config`: lets leaf modules recognise configs without importing it."""

    __slots__ = ()


_BY_TYPE: dict[type, Kind] = {
    type(None): Kind.NONE,
    bool: Kind.BOOL,
    int: Kind.INT,
    float: Kind.FLOAT,
    str: Kind.STR,
    list: Kind.LIST,
    tuple: Kind.TUPLE,
    dict: Kind.DICT,
    frozenset: Kind.SET,
    set: Kind.SET,
}

#: Checked in this order, so that subclasses go to the most specific kind: an enum member
#: is an enum even when it is also an int or a str, a bool is never an int.
_ORDER: tuple[tuple[Any, Kind], ...] = (
    (ConfigNode, Kind.CONFIG),
    (enum.Enum, Kind.ENUM),
    (PurePath, Kind.PATH),
    (bool, Kind.BOOL),
    (int, Kind.INT),
    (float, Kind.FLOAT),
    (str, Kind.STR),
    (list, Kind.LIST),
    (tuple, Kind.TUPLE),
    (dict, Kind.DICT),
    (frozenset | set, Kind.SET),
)

EXPECTED = (
    "Expected bool, int, float, str, None, Path, Enum, list, tuple, dict with str keys, "
    "frozenset or a Config. Store such objects in files and pass their path, or describe "
    "them with a Config."
)


def kind_or_none(value: Any) -> Kind | None:
    """The kind of ``value``, or ``None`` if it cannot be encoded."""
    cls = type(value)
    kind = _BY_TYPE.get(cls)
    if kind is not None:
        return kind
    for base, candidate in _ORDER:
        if isinstance(value, base):
            _BY_TYPE[cls] = candidate
            return candidate
    return None


def kind_of(value: Any, path: str = "") -> Kind:
    """The kind of ``value``; raises :class:`EncodingError` if it has none."""
    kind = kind_or_none(value)
    if kind is None:
        cls = type(value)
        where = f"{path}: " if path else ""
        raise EncodingError(
            f"{where}cannot encode a value of type {cls.__module__}.{cls.__qualname__} "
            f"({value!r:.60}). {EXPECTED}"
        )
    return kind
