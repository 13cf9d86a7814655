"""Type parameters of configs and redeclared fields.

``class Box(Config, Generic[T]): item: Param[T]`` declares a config generic in ``T``.
``Box[int](item=1)`` checks ``item`` as an ``int``; ``Box(item=...)`` checks it against the
bound of ``T`` (any encodable value without one). The binding is a check at construction
only: it is not part of the identity (``Box[int](item=1)`` is ``Box(item=1)``) and not
recorded in ``params.json``. ``class IntBox(Box[int])`` binds ``T`` for a subclass.

A subclass that redeclares an inherited field must keep it valid for the base class: the
same kind (``Param``, ``Meta``, ``Constant``) and a type that narrows the inherited one
(``Optimizer`` to ``Adam``, ``int | None`` to ``int``). Anything else is refused at class
definition unless the field says ``field(override=True)``.
"""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

from partita.config._fields import Field, FieldKind
from partita.config._kinds import ConfigNode
from partita.config._types import FieldType, field_type
from partita.config._values import same_value
from partita.errors import ConfigDefinitionError, ConfigTypeError

_UNIONS = (typing.Union, types.UnionType)


def substitute(annotation: Any, mapping: dict[Any, Any]) -> Any:
    """``annotation`` with the type variables of ``mapping`` replaced."""
    if isinstance(annotation, TypeVar):
        return mapping.get(annotation, annotation)
    params = getattr(annotation, "__parameters__", ())
    if params and any(p in mapping for p in params):
        return annotation[tuple(mapping.get(p, p) for p in params)]
    return annotation


def _with_type(f: Field, annotation: Any, owner: type) -> Field:
    where = f"{owner.__qualname__}.{f.name}"
    return Field(
        f.name,
        f.kind,
        annotation,
        field_type(annotation, where),
        f.default,
        f.generator or f.default_factory,
        f._help,
        f.owner,
        count_default=f.count_default,
    )


def _specialised(
    fields: dict[str, Field], mapping: dict[Any, Any], owner: type
) -> dict[str, Field]:
    out = {}
    for name, f in fields.items():
        annotation = substitute(f.annotation, mapping)
        if annotation is f.annotation:
            out[name] = f
        else:
            out[name] = _with_type(f, annotation, owner)
            _check_default(out[name], owner)
    return out


def _check_default(f: Field, owner: type) -> None:
    from partita.config._fields import MISSING

    if f.default is MISSING:
        return
    try:
        f.type.validate(f.default, f"{owner.__qualname__}.{f.name}")
    except ConfigTypeError as exc:
        raise ConfigDefinitionError(f"invalid default for the bound type: {exc}") from None


def _mapping(alias: Any) -> dict[Any, Any]:
    origin = typing.get_origin(alias)
    params = getattr(origin, "__parameters__", ())
    return dict(zip(params, typing.get_args(alias), strict=False))


def specialise(cls: type, fields: dict[str, Field]) -> dict[str, Field]:
    """Inherited ``fields`` of ``cls`` with the type parameters its bases bind."""
    mapping: dict[Any, Any] = {}
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, ConfigNode):
            mapping.update(_mapping(base))
    if not mapping:
        return fields
    return _specialised(fields, mapping, cls)


def bound_fields(origin: type, args: tuple[Any, ...], fields: dict[str, Field]) -> dict[str, Field]:
    """``fields`` (of ``origin``) with its type parameters bound to ``args``."""
    params = getattr(origin, "__parameters__", ())
    return _specialised(fields, dict(zip(params, args, strict=False)), origin)


class BoundAlias(typing._GenericAlias, _root=True):  # type: ignore[call-arg,misc,name-defined]
    """``Box[int]``: calling it builds a ``Box`` whose parameter fields are checked as ``int``."""

    def __call__(self, *args: Any, **values: Any) -> Any:
        origin = self.__origin__
        if args:
            return origin(*args, **values)  # the error of the class itself
        cfg = origin._partita_build(values, self.__args__)
        object.__setattr__(cfg, "__orig_class__", self)
        return cfg


def bind(alias: Any) -> Any:
    """The :class:`BoundAlias` of ``Box[...]`` (as returned by ``Generic``)."""
    origin = typing.get_origin(alias)
    if origin is None:
        return alias
    return BoundAlias(origin, typing.get_args(alias))


# --- redeclared fields --------------------------------------------------------------------


def _fits(value: Any, base: Any) -> bool:
    """Whether a field of type ``base`` keeps ``value`` as it is (no conversion)."""
    try:
        ftype: FieldType = field_type(base, "")
        kept = ftype.validate(value, "")
    except (ConfigTypeError, ConfigDefinitionError):
        return False
    return type(kept) is type(value) and same_value(kept, value)


def binding_of(annotation: Any, generic: type) -> tuple[Any, ...]:
    """The arguments that ``annotation`` (a config class or ``Box[...]``) gives to the type
    parameters of its generic base ``generic``: ``(int,)`` for ``IntBox`` (``class
    IntBox(Box[int])``) and for ``Box[int]``; the bare parameters where nothing binds them."""
    origin = typing.get_origin(annotation) or annotation
    mapping: dict[Any, Any] = dict(
        zip(getattr(origin, "__parameters__", ()), typing.get_args(annotation), strict=False)
    )
    return _binding(origin, generic, mapping)


def _binding(cls: type, generic: type, mapping: dict[Any, Any]) -> tuple[Any, ...]:
    params = tuple(getattr(generic, "__parameters__", ()))
    if cls is generic:
        return tuple(mapping.get(p, p) for p in params)
    for base in cls.__dict__.get("__orig_bases__", cls.__bases__):
        base_origin = typing.get_origin(base) or base
        if not (isinstance(base_origin, type) and issubclass(base_origin, generic)):
            continue
        inner = dict(
            zip(
                getattr(base_origin, "__parameters__", ()),
                (substitute(a, mapping) for a in typing.get_args(base)),
                strict=False,
            )
        )
        return _binding(base_origin, generic, inner)
    return params


def narrows(sub: Any, base: Any) -> bool:
    """Whether every value of annotation ``sub`` is, unchanged, a value of ``base``."""
    if sub == base or base is Any:
        return True
    if isinstance(base, TypeVar):
        if base.__constraints__:
            return any(narrows(sub, c) for c in base.__constraints__)
        return narrows(sub, base.__bound__ if base.__bound__ is not None else Any)
    if isinstance(sub, TypeVar):
        if sub.__constraints__:
            return all(narrows(c, base) for c in sub.__constraints__)
        return sub.__bound__ is not None and narrows(sub.__bound__, base)
    sub_origin, base_origin = typing.get_origin(sub), typing.get_origin(base)
    if sub_origin in _UNIONS:
        return all(narrows(a, base) for a in typing.get_args(sub))
    if sub_origin is typing.Literal:
        return all(_fits(v, base) for v in typing.get_args(sub))
    if base_origin in _UNIONS:
        return any(narrows(sub, b) for b in typing.get_args(base))
    if base_origin is typing.Literal or sub is Any:
        return False
    if sub_origin is None and base_origin is None:
        if sub in (None, type(None)) or base in (None, type(None)):
            return sub in (None, type(None)) and base in (None, type(None))
        if not (isinstance(sub, type) and isinstance(base, type)):
            return False
        if sub is bool and base is not bool:
            return False  # a bool is refused by int and float fields
        if base is float:
            return sub is float
        return issubclass(sub, base)
    sub_class = sub_origin or sub
    base_class = base_origin or base
    if isinstance(sub_class, type) and issubclass(sub_class, ConfigNode):
        if not (isinstance(base_class, type) and issubclass(sub_class, base_class)):
            return False
        if base_origin is None:
            return True  # Box[int] and IntBox narrow Box
        bound = binding_of(sub, base_class)
        base_args = typing.get_args(base)
        return len(bound) == len(base_args) and all(
            narrows(s, b) for s, b in zip(bound, base_args, strict=True)
        )
    if sub_class is not base_class:
        return False
    base_args = typing.get_args(base)
    if not base_args:
        return True  # list[int] narrows list
    sub_args = typing.get_args(sub)
    if not sub_args or len(sub_args) != len(base_args):
        return False
    return all(
        s is b if b is Ellipsis or s is Ellipsis else narrows(s, b)
        for s, b in zip(sub_args, base_args, strict=True)
    )


def _name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is None and isinstance(annotation, type):
        return annotation.__qualname__
    if isinstance(origin, type) and issubclass(origin, ConfigNode):  # Box[int]
        args = ", ".join(_name(a) for a in typing.get_args(annotation))
        return f"{origin.__qualname__}[{args}]"
    return repr(annotation).replace("typing.", "")


def _spell(kind: FieldKind, annotation: Any) -> str:
    return f"{kind.value.capitalize()}[{_name(annotation)}]"


def check_redeclared(
    where: str, inherited: Field, kind: FieldKind, annotation: Any, override: bool
) -> None:
    """Refuse a redeclaration that a value of the base class could not hold."""
    if override:
        return
    if kind is inherited.kind and narrows(annotation, inherited.annotation):
        return
    base = f"{inherited.owner.__qualname__}.{inherited.name}"
    raise ConfigDefinitionError(
        f"{where} redeclares {base} ({_spell(inherited.kind, inherited.annotation)}) as "
        f"{_spell(kind, annotation)}, which does not narrow it: an instance would not be a "
        f"valid {inherited.owner.__qualname__}. Keep the kind and use the same or a narrower "
        "type, or write '= field(..., override=True)' if the change is intended."
    )


def check_bare_defaults(cls: type) -> None:
    """Refuse ``lr = 0.2`` in a subclass: a new default for an inherited field needs an
    annotation, else the class attribute is silently ignored by every instance."""
    inherited: set[str] = set()
    for base in cls.__mro__[1:]:
        inherited.update(base.__dict__.get("_partita_specs", ()))
    annotations = cls.__dict__.get("__annotations__", {})
    for name, value in cls.__dict__.items():
        if name not in inherited or name in annotations:
            continue
        if callable(value) or isinstance(value, property | classmethod | staticmethod):
            continue
        raise ConfigDefinitionError(
            f"{cls.__qualname__}.{name} = {value!r} sets an inherited field without an "
            "annotation, which a config would ignore (instances keep the inherited default). "
            f"Redeclare the field: '{name}: Param[...] = {value!r}' (with its kind and type)."
        )
