"""Field types: turning an annotation into a validator.

A :class:`FieldType` checks (and lightly coerces) one value at construction time. Identity and
JSON encodings are value-driven and live in ``_identity`` and ``_serial``.
"""

from __future__ import annotations

import enum
import os
import types
import typing
from pathlib import Path, PurePath
from typing import Any

from partita.config._identity import check_encodable, encode_value
from partita.config._kinds import ConfigNode
from partita.errors import ConfigDefinitionError, ConfigTypeError

_NoneType = type(None)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _found(value: Any) -> str:
    return f"{type(value).__name__} {_short(value)}"


class FieldType:
    """Validates values of one annotation."""

    #: Whether values of this type may contain configs (so walks must look inside).
    may_hold_configs = False
    #: Whether values may hold a ``Box[int]``-like config whose bound parameters are checked
    #: only when the value is given (so sealing checks them again, see ``_seal``).
    binds_parameters = False

    def describe(self) -> str:
        raise NotImplementedError

    def validate(self, value: Any, path: str) -> Any:
        """Return the value to store, or raise :class:`ConfigTypeError`."""
        raise NotImplementedError

    def accepts_exactly(self, value: Any) -> bool:
        """Whether ``value`` is of this type without any coercion (used by unions)."""
        try:
            return self.validate(value, "") is value
        except ConfigTypeError:
            return False

    def error(self, value: Any, path: str, hint: str = "") -> ConfigTypeError:
        message = f"{path}: expected {self.describe()}, found {_found(value)}."
        if hint:
            message += " " + hint
        return ConfigTypeError(message)


class _Simple(FieldType):
    def __init__(self, kind: type, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint

    def describe(self) -> str:
        return self.kind.__name__

    def validate(self, value: Any, path: str) -> Any:
        if type(value) is self.kind:
            return value
        raise self.error(value, path, self.hint)


class _Int(FieldType):
    def describe(self) -> str:
        return "int"

    def validate(self, value: Any, path: str) -> Any:
        if type(value) is int:
            return value
        if isinstance(value, int) and not isinstance(value, bool | enum.Enum):
            return int(value)
        hint = "Booleans are not integers in partita." if isinstance(value, bool) else ""
        if isinstance(value, float) and value.is_integer():
            hint = f"Use {int(value)} (an int) if you meant an integer."
        raise self.error(value, path, hint)


class _Float(FieldType):
    def describe(self) -> str:
        return "float"

    def validate(self, value: Any, path: str) -> Any:
        if type(value) is float:
            return value
        if isinstance(value, int) and not isinstance(value, bool | enum.Enum):
            try:
                return float(value)
            except OverflowError:
                raise self.error(value, path, "The integer is too large for a float.") from None
        if isinstance(value, float):
            return float(value)
        raise self.error(value, path)

    def accepts_exactly(self, value: Any) -> bool:
        return type(value) is float


class _Str(FieldType):
    def describe(self) -> str:
        return "str"

    def validate(self, value: Any, path: str) -> Any:
        if type(value) is str:
            return value
        if isinstance(value, str) and not isinstance(value, enum.Enum):
            return str(value)
        hint = (
            "Wrap it with str(...) if a text is really wanted."
            if isinstance(value, int | float | PurePath)
            else ""
        )
        raise self.error(value, path, hint)


class _Path(FieldType):
    def describe(self) -> str:
        return "Path"

    def validate(self, value: Any, path: str) -> Any:
        if type(value) is Path or isinstance(value, Path):
            return value
        if isinstance(value, str | os.PathLike) and not isinstance(value, bytes):
            return Path(value)
        raise self.error(value, path, "Give a pathlib.Path or a str.")

    def accepts_exactly(self, value: Any) -> bool:
        return isinstance(value, Path)


class _None(FieldType):
    def describe(self) -> str:
        return "None"

    def validate(self, value: Any, path: str) -> Any:
        if value is None:
            return None
        raise self.error(value, path)


class _Enum(FieldType):
    def __init__(self, kind: type[enum.Enum]) -> None:
        self.kind = kind

    def describe(self) -> str:
        return self.kind.__qualname__

    def validate(self, value: Any, path: str) -> Any:
        if isinstance(value, self.kind):
            return value
        names = ", ".join(f"{self.kind.__name__}.{m.name}" for m in self.kind)
        # The same enum class imported twice (script vs module) is still that enum.
        if isinstance(value, enum.Enum) and type(value).__qualname__ == self.kind.__qualname__:
            try:
                return self.kind[value.name]
            except KeyError:
                pass
        raise self.error(value, path, f"Use one of {names}.")


class _Literal(FieldType):
    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def validate(self, value: Any, path: str) -> Any:
        for allowed in self.values:
            if type(allowed) is type(value) and allowed == value:
                return value
        raise self.error(value, path)


class _Any(FieldType):
    may_hold_configs = True

    def describe(self) -> str:
        return "any encodable value"

    def validate(self, value: Any, path: str) -> Any:
        return check_encodable(value, path)


class _List(FieldType):
    may_hold_configs = True

    def __init__(self, item: FieldType) -> None:
        self.item = item
        self.may_hold_configs = item.may_hold_configs
        self.binds_parameters = item.binds_parameters

    def describe(self) -> str:
        return f"list[{self.item.describe()}]"

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise self.error(value, path, "Give a list.")
        validate = self.item.validate
        return [validate(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def accepts_exactly(self, value: Any) -> bool:
        return isinstance(value, list) and all(self.item.accepts_exactly(v) for v in value)


class _Set(FieldType):
    may_hold_configs = True

    def __init__(self, item: FieldType) -> None:
        self.item = item
        self.binds_parameters = item.binds_parameters

    def describe(self) -> str:
        return f"frozenset[{self.item.describe()}]"

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, set | frozenset | list | tuple):
            raise self.error(value, path, "Give a set or a frozenset.")
        return frozenset(self.item.validate(v, f"{path}{{{i}}}") for i, v in enumerate(value))

    def accepts_exactly(self, value: Any) -> bool:
        return isinstance(value, frozenset) and all(self.item.accepts_exactly(v) for v in value)


class _Tuple(FieldType):
    may_hold_configs = True

    def __init__(self, items: tuple[FieldType, ...] | None, rest: FieldType | None) -> None:
        self.items = items
        self.rest = rest
        self.binds_parameters = any(t.binds_parameters for t in (*(items or ()), rest) if t)

    def describe(self) -> str:
        if self.items is None:
            assert self.rest is not None
            return f"tuple[{self.rest.describe()}, ...]"
        return "tuple[" + ", ".join(t.describe() for t in self.items) + "]"

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, tuple | list):
            raise self.error(value, path, "Give a tuple.")
        if self.items is not None:
            if len(value) != len(self.items):
                raise self.error(
                    value, path, f"Give exactly {len(self.items)} items, not {len(value)}."
                )
            return tuple(
                t.validate(v, f"{path}[{i}]")
                for i, (t, v) in enumerate(zip(self.items, value, strict=True))
            )
        assert self.rest is not None
        return tuple(self.rest.validate(v, f"{path}[{i}]") for i, v in enumerate(value))

    def accepts_exactly(self, value: Any) -> bool:
        if not isinstance(value, tuple):
            return False
        if self.items is not None:
            return len(value) == len(self.items) and all(
                t.accepts_exactly(v) for t, v in zip(self.items, value, strict=True)
            )
        assert self.rest is not None
        return all(self.rest.accepts_exactly(v) for v in value)


class _Dict(FieldType):
    may_hold_configs = True

    def __init__(self, value: FieldType) -> None:
        self.value = value
        self.binds_parameters = value.binds_parameters

    def describe(self) -> str:
        return f"dict[str, {self.value.describe()}]"

    def validate(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise self.error(value, path, "Give a dict with str keys.")
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise ConfigTypeError(
                    f"{path}: dict keys must be str, found {_found(k)}. Convert keys with str()."
                )
            out[k] = self.value.validate(v, f"{path}[{k!r}]")
        return out

    def accepts_exactly(self, value: Any) -> bool:
        return isinstance(value, dict) and all(
            type(k) is str and self.value.accepts_exactly(v) for k, v in value.items()
        )


class _ConfigType(FieldType):
    may_hold_configs = True

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def describe(self) -> str:
        return self.kind.__qualname__

    def validate(self, value: Any, path: str) -> Any:
        if isinstance(value, self.kind):
            return value
        hint = ""
        if isinstance(value, ConfigNode) and type(value).__qualname__ == self.kind.__qualname__:
            hint = (
                "Both classes have this name but are different objects: is the module "
                "imported twice (as a script and as a module)?"
            )
        elif isinstance(value, type) and issubclass(value, self.kind):
            hint = f"Give an instance, e.g. {value.__qualname__}(...), not the class."
        raise self.error(value, path, hint)

    def accepts_exactly(self, value: Any) -> bool:
        return isinstance(value, self.kind)


class _BoundConfigType(_ConfigType):
    """A field annotated ``Box[int]``: a ``Box`` whose parameter fields hold ``int`` values."""

    binds_parameters = True

    def __init__(self, kind: type, args: tuple[Any, ...]) -> None:
        super().__init__(kind)
        self.args = args

    def describe(self) -> str:
        inner = ", ".join(getattr(a, "__name__", repr(a)) for a in self.args)
        return f"{self.kind.__qualname__}[{inner}]"

    def validate(self, value: Any, path: str) -> Any:
        value = super().validate(value, path)
        bound = self.kind._partita_bound_fields(self.args)  # type: ignore[attr-defined]
        own = type(value)._partita_fields
        d = value.__dict__
        for name, f in bound.items():
            if own.get(name) is f or name not in d:
                continue
            try:
                checked = f.type.validate(d[name], f"{path}.{name}")
            except ConfigTypeError as exc:
                raise ConfigTypeError(f"{path}: expected {self.describe()}: {exc}") from None
            if encode_value(checked) != encode_value(d[name]):
                raise ConfigTypeError(
                    f"{path}: expected {self.describe()}, found a {type(value).__qualname__} "
                    f"whose {name} is {d[name]!r}. Build it as {self.describe()}(...)."
                )
        return value


class _Union(FieldType):
    def __init__(self, options: tuple[FieldType, ...]) -> None:
        self.options = options
        self.may_hold_configs = any(o.may_hold_configs for o in options)
        self.binds_parameters = any(o.binds_parameters for o in options)

    def describe(self) -> str:
        return " | ".join(o.describe() for o in self.options)

    def validate(self, value: Any, path: str) -> Any:
        for option in self.options:
            if option.accepts_exactly(value):
                return option.validate(value, path)
        for option in self.options:
            try:
                return option.validate(value, path)
            except ConfigTypeError:
                continue
        raise self.error(value, path)


_SIMPLE: dict[Any, FieldType] = {
    bool: _Simple(bool, "Use True or False."),
    int: _Int(),
    float: _Float(),
    str: _Str(),
    Path: _Path(),
    PurePath: _Path(),
    _NoneType: _None(),
    None: _None(),
    Any: _Any(),
}


def field_type(annotation: Any, where: str) -> FieldType:
    """Build the validator of ``annotation``; ``where`` names the field for errors."""
    simple = _SIMPLE.get(annotation)
    if simple is not None:
        return simple
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return field_type(args[0], where)
    if isinstance(annotation, typing.TypeVar):  # a config's type parameter (Generic[T])
        if annotation.__constraints__:
            return _Union(tuple(field_type(a, where) for a in annotation.__constraints__))
        if annotation.__bound__ is not None:
            return field_type(annotation.__bound__, where)
        return _SIMPLE[Any]
    if isinstance(origin, type) and issubclass(origin, ConfigNode):  # Box[int]
        return _BoundConfigType(origin, args)
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _Enum(annotation)
        if issubclass(annotation, ConfigNode):
            return _ConfigType(annotation)
        if annotation is list:
            return _List(_SIMPLE[Any])
        if annotation is dict:
            return _Dict(_SIMPLE[Any])
        if annotation is tuple:
            return _Tuple(None, _SIMPLE[Any])
        if annotation is frozenset or annotation is set:
            return _Set(_SIMPLE[Any])
    if origin is list:
        return _List(field_type(args[0], where) if args else _SIMPLE[Any])
    if origin in (set, frozenset):
        return _Set(field_type(args[0], where) if args else _SIMPLE[Any])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Tuple(None, field_type(args[0], where))
        if args == ((),):
            return _Tuple((), None)
        return _Tuple(tuple(field_type(a, where) for a in args), None)
    if origin is dict:
        if args and args[0] is not str:
            raise ConfigDefinitionError(
                f"{where}: dict keys must be str, found {args[0]!r}. "
                "Use dict[str, ...] (JSON objects have text keys)."
            )
        return _Dict(field_type(args[1], where) if args else _SIMPLE[Any])
    if origin is typing.Union or origin is types.UnionType:
        return _Union(tuple(field_type(a, where) for a in args))
    if origin is typing.Literal:
        return _Literal(tuple(args))
    raise ConfigDefinitionError(
        f"{where}: unsupported type {annotation!r}. Supported: bool, int, float, str, Path, "
        "Enum, None/Optional, Literal, list, tuple, frozenset, dict[str, ...], Any, and "
        "Config/Task classes, nested in any combination."
    )
