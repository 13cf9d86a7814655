"""Field values: which are shareable, how they freeze, compare and serve as tags."""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Any

from partita.config._fields import Field
from partita.config._identity import encode_value
from partita.config._kinds import Kind, kind_or_none
from partita.errors import ConfigTypeError, FrozenConfigError

_IMMUTABLE = (bool, int, float, str, bytes, type(None), tuple, frozenset, Path)


class FrozenList(list):  # type: ignore[type-arg]
    """A list inside a submitted config: reading works, changing raises."""

    def _frozen(self, *args: Any, **kwargs: Any) -> Any:
        raise FrozenConfigError(
            "this list belongs to a submitted config and cannot change. Copy it first: list(value)."
        )

    append = extend = insert = remove = pop = clear = sort = reverse = _frozen
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _frozen

    def __reduce__(self) -> Any:
        # Copy and pickle through the constructor (the default calls the blocked extend).
        return (type(self), (list(self),))


class FrozenDict(dict):  # type: ignore[type-arg]
    """A dict inside a submitted config: reading works, changing raises."""

    def _frozen(self, *args: Any, **kwargs: Any) -> Any:
        raise FrozenConfigError(
            "this dict belongs to a submitted config and cannot change. Copy it first: dict(value)."
        )

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _frozen
    __ior__ = _frozen

    def __reduce__(self) -> Any:
        return (type(self), (dict(self),))


def freeze_value(value: Any) -> Any:
    if type(value) is list:
        return FrozenList(freeze_value(v) for v in value)
    if type(value) is dict:
        return FrozenDict({k: freeze_value(v) for k, v in value.items()})
    if type(value) is tuple:
        return tuple(freeze_value(v) for v in value)
    return value


def is_enum(value: Any) -> bool:
    return isinstance(value, enum.Enum)


def shareable(value: Any) -> bool:
    """Whether ``value`` is immutable all the way down, so instances may share it."""
    if isinstance(value, tuple | frozenset):
        return all(shareable(item) for item in value)
    return isinstance(value, _IMMUTABLE) or is_enum(value)


def same_value(a: Any, b: Any) -> bool:
    """Equality of field values that agrees with their identity encoding."""
    if a is b:
        return True
    kind = kind_or_none(a)
    if kind is not kind_or_none(b):
        return False
    if kind is Kind.FLOAT:
        return bool(a == b or (a != a and b != b))
    if kind is Kind.LIST or kind is Kind.TUPLE:
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if kind is Kind.DICT:
        return bool(a.keys() == b.keys()) and all(same_value(v, b[k]) for k, v in a.items())
    if kind is Kind.SET:
        try:
            return sorted(map(encode_value, a)) == sorted(map(encode_value, b))
        except Exception:
            return bool(a == b)
    return bool(a == b)


def differs_from_default(value: Any, f: Field) -> bool:
    try:
        return encode_value(value) != f.default_bytes()
    except Exception:
        return True


def tag_value(qual: str, name: str, value: Any) -> Any:
    """A tag value, checked: it must be stored as JSON and in SQLite, and filtered on."""
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is float and not math.isfinite(value):
        raise ConfigTypeError(
            f"{qual}: tag {name!r} is {value!r}, which no tag filter can match and JSON "
            "cannot store. Tag a finite number, or a str such as 'inf'."
        )
    if kind is int:
        try:
            str(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits()
            raise ConfigTypeError(
                f"{qual}: tag {name!r} is an int of about "
                f"{value.bit_length() * 30103 // 100000} digits, too large for a tag. "
                "Tag a shorter value that identifies the variant."
            ) from None
    if kind is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigTypeError(
                f"{qual}: tag {name!r} is {value!r}, which holds a lone surrogate (not "
                "valid text). Tag valid text."
            ) from None
    if kind in (int, float, str):
        return value
    raise ConfigTypeError(
        f"{qual}: tag {name!r} must be a bool, int, float, str or None, found "
        f"{type(value).__name__} {value!r}. Tag a simple value that identifies the variant."
    )
