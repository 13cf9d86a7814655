"""Reading a config class: field markers in annotations, the class's type id, and its
resolved fields (:func:`resolve_fields`, with inherited, redeclared and bound fields)."""

from __future__ import annotations

import sys
import typing
import warnings
from typing import Any, ClassVar

from partita.config import _migrations, _runtime
from partita.config._fields import MISSING, Field, FieldKind, PathGenerator, _FieldSpec, _Marker
from partita.config._generic import check_redeclared, specialise
from partita.config._identity import plan
from partita.config._shared import check_groups
from partita.config._types import field_type
from partita.config._values import shareable
from partita.errors import ConfigDefinitionError, ConfigTypeError, PartitaWarning


def marker_of(annotation: Any) -> tuple[_Marker | None, Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        for item in meta:
            if isinstance(item, _Marker):
                return item, inner
    return None, annotation


def is_classvar(annotation: Any) -> bool:
    if annotation is ClassVar or typing.get_origin(annotation) is ClassVar:
        return True
    return isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar"))


def type_id_of(cls: type) -> str:
    """The type id of a config class: explicit ``id=`` or ``module.qualname``."""
    explicit = cls.__dict__.get("_partita_explicit_id")
    if explicit:
        return str(explicit)
    module = cls.__module__
    if module in ("__main__", _runtime.SCRIPT_MODULE):
        stem = _runtime.script_stem(sys.modules.get(module)) or "main"
        if module == "__main__" and not cls.__dict__.get("_partita_warned"):
            type.__setattr__(cls, "_partita_warned", True)
            warnings.warn(
                f"{cls.__qualname__} is defined in the script {stem}.py and has no explicit "
                f"id, so its identity uses the script's name ('{stem}.{cls.__qualname__}'): "
                "renaming the script or moving the class changes every identifier. Give it one: "
                f'class {cls.__name__}(..., id="{stem}.{cls.__name__.lower()}").',
                PartitaWarning,
                stacklevel=5,
            )
        module = stem
    return f"{module}.{cls.__qualname__}"


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
        "replace",
        "shared",
        "shared_folder",
        "add_pretasks",
        "pretasks",
        "publish",
    }
)


def resolve_fields(cls: type) -> dict[str, Field]:
    """Resolve (once) the fields of ``cls``, including inherited ones."""
    cached = cls.__dict__.get("_partita_fields")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        if "_partita_specs" in base.__dict__:  # a subclass of Config (not Config itself)
            fields.update(resolve_fields(base))
    if fields and "__orig_bases__" in cls.__dict__:
        fields = specialise(cls, fields)  # class IntBox(Box[int])
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
            if spec.count_default and marker.kind is not FieldKind.PARAM:
                raise ConfigDefinitionError(
                    f"{where}: count_default=True applies to Param fields only, found a "
                    f"{marker.kind.value.capitalize()}. Remove it (a Constant always counts, "
                    "a Meta never does)."
                )
            inherited = fields.get(name)
            if inherited is not None:
                check_redeclared(where, inherited, marker.kind, inner, spec.override)
            elif spec.override:
                raise ConfigDefinitionError(
                    f"{where}: field(override=True), but no base class of "
                    f"{cls.__qualname__} declares {name!r}. Remove override=True."
                )
            fields[name] = Field(
                name,
                marker.kind,
                inner,
                ftype,
                default,
                factory,
                spec.help,
                cls,
                count_default=spec.count_default,
                renamed_from=spec.renamed_from,
            )
    _migrations.check_field_renames(cls.__qualname__, fields)
    _install(cls, fields)
    return fields


def _install(cls: type, fields: dict[str, Field]) -> None:
    check_groups(cls, fields)
    type_id = type_id_of(cls)
    former = _migrations.check_type_ids(cls, cls.__dict__.get("_partita_renamed_raw"), type_id)
    setattr_ = type.__setattr__
    setattr_(cls, "_partita_renamed_from", former)
    _migrations.register(cls, type_id, former)
    setattr_(cls, "_partita_fields", fields)
    setattr_(cls, "_partita_type_id", type_id)
    setattr_(cls, "_partita_renames", _migrations.field_renames(fields))
    setattr_(cls, "_partita_plan", plan(_migrations.identity_type_id(cls, type_id), fields))
    walk = tuple(n for n in sorted(fields) if fields[n].type.may_hold_configs)
    setattr_(cls, "_partita_post_init", getattr(cls, "__post_init__", None))
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
