"""Typed configs and tasks, their identity and their serialisation.

This package imports nothing from the rest of partita except ``partita.errors`` and the
file names of ``partita._layout``, so the job runner can load a task quickly.
"""

from partita.config._classdef import resolve_fields
from partita.config._config import (
    Config,
    Task,
    freeze,
    is_frozen,
    iter_children,
    walk,
)
from partita.config._fields import (
    Constant,
    Field,
    FieldKind,
    Meta,
    Param,
    PathGenerator,
    field,
    ignore,
    tag,
)
from partita.config._identity import digest, identifier
from partita.config._migrations import renamed_enum
from partita.config._serial import dumps, from_document, load, to_document
from partita.config._variants import distinct

__all__ = [
    "Config",
    "Constant",
    "Field",
    "FieldKind",
    "Meta",
    "Param",
    "PathGenerator",
    "Task",
    "attribute_docs",
    "digest",
    "distinct",
    "dumps",
    "field",
    "fields",
    "freeze",
    "from_document",
    "identifier",
    "ignore",
    "is_frozen",
    "iter_children",
    "load",
    "renamed_enum",
    "tag",
    "to_document",
    "walk",
]


def attribute_docs(klass: type) -> dict[str, str]:
    """Map field name → the string literal that follows its annotation in ``klass``."""
    from partita.config._describe import attribute_docs as read  # inspect: only when asked

    return read(klass)


def fields(config: "Config | type[Config]") -> tuple[Field, ...]:
    """The fields of a config class or instance, in declaration order (inherited first).

    Each :class:`Field` tells its ``kind``, ``type``, ``default``, ``help`` and whether
    ``count_default`` is set (the default then counts toward the identity; its ``repr``
    says so too).
    """
    cls = config if isinstance(config, type) else type(config)
    return tuple(resolve_fields(cls).values())
