"""Migrations that keep identities: renamed classes and fields, deprecated configs.

A class declares its former type ids with ``renamed_from=`` and a field its former names
with ``field(renamed_from=...)``. The identity keeps using the *oldest* names, so renaming
keeps every identifier (docs/identity.md, "Renaming and replacing"). A deprecated class
declares ``deprecated=convert``: ``convert(old) -> new config``, applied by
``partita migrate`` when it rewrites job folders (identifiers then change, and folders move).

This module keeps the registry of type ids of the classes defined in the process, so that
a ``params.json`` recorded under a former type id or class name finds its class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from partita.errors import ConfigDefinitionError, ConfigError

#: Type id → the class that has it now (the latest definition wins: reloads, notebooks).
_current: dict[str, type] = {}
#: Former type id → the class that declares it in ``renamed_from=``.
_former: dict[str, type] = {}


def _reference(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def check_type_ids(cls: type, names: Any, own: str) -> tuple[str, ...]:
    """Validate the ``renamed_from=`` of ``cls`` (type id ``own``): former ids, oldest first."""
    if names is None:
        return ()
    listed = (names,) if isinstance(names, str) else names
    if not isinstance(listed, tuple | list) or not listed:
        raise ConfigDefinitionError(
            f"{cls.__qualname__}: renamed_from= expected a former type id or a tuple of them "
            f"(oldest first), found {names!r}. Write e.g. renamed_from='project.old_train'."
        )
    out = []
    for name in listed:
        if not isinstance(name, str) or not name or "/" in name or name != name.strip():
            raise ConfigDefinitionError(
                f"{cls.__qualname__}: renamed_from= expected type ids (non-empty str without "
                f"'/' or surrounding spaces), found {name!r}."
            )
        if name == own:
            raise ConfigDefinitionError(
                f"{cls.__qualname__}: renamed_from= lists its own type id {own!r}. List only "
                "the ids the class had before."
            )
        if name in out:
            raise ConfigDefinitionError(
                f"{cls.__qualname__}: renamed_from= lists {name!r} twice. List each former "
                "id once, oldest first."
            )
        out.append(name)
    return tuple(out)


def register(cls: type, type_id: str, former: tuple[str, ...]) -> None:
    """Record the type id and former ids of ``cls``.

    Raises:
        ConfigDefinitionError: another class (not a redefinition of this one) already
            declares one of these former ids.
    """
    reference = _reference(cls)
    for name in former:
        known = _former.get(name)
        if known is not None and known is not cls and _reference(known) != reference:
            raise ConfigDefinitionError(
                f"{reference} and {_reference(known)} both declare renamed_from={name!r}: "
                f"the jobs of {name!r} can only become the jobs of one class. Remove it from "
                "one of them (to split a config, deprecate the old class with deprecated=)."
            )
    for name in former:
        _former[name] = cls
    _current[type_id] = cls


def former_ids(cls: type) -> tuple[str, ...]:
    """The former type ids of ``cls``, oldest first (not inherited)."""
    return cls.__dict__.get("_partita_renamed_from", ())  # type: ignore[no-any-return]


def identity_type_id(cls: type, type_id: str) -> str:
    """The type id the identity of ``cls`` encodes: its oldest former id, else ``type_id``."""
    former = former_ids(cls)
    return former[0] if former else type_id


def conversion_of(cls: type) -> Callable[[Any], Any] | None:
    """The conversion function of a deprecated class (``deprecated=``), else ``None``."""
    return cls.__dict__.get("_partita_deprecated")  # type: ignore[no-any-return]


def field_renames(fields: dict[str, Any]) -> dict[str, str]:
    """Former field name → current name, for the resolved ``fields`` of a class."""
    return {old: f.name for f in fields.values() for old in f.renamed_from}


def check_field_renames(qualname: str, fields: dict[str, Any]) -> None:
    """Refuse former field names that are current names, or claimed by two fields."""
    claimed: dict[str, str] = {}
    for f in fields.values():
        for old in f.renamed_from:
            if old in fields:
                raise ConfigDefinitionError(
                    f"{qualname}.{f.name}: renamed_from={old!r}, but {old!r} is a field of "
                    f"{qualname} too. A former name must be free: rename or remove the other "
                    "field."
                )
            if old in claimed:
                raise ConfigDefinitionError(
                    f"{qualname}: the fields {claimed[old]!r} and {f.name!r} both declare "
                    f"renamed_from={old!r}. Only one field can take over the old values."
                )
            claimed[old] = f.name


def lookup(type_id: str) -> type | None:
    """The class that declares ``type_id`` as a former id, else the one that has it now."""
    return _former.get(type_id) or _current.get(type_id)


def claimant(type_id: str) -> type | None:
    """The class that declares ``type_id`` as one of its former ids."""
    return _former.get(type_id)


def check_not_claimed(cls: type, type_id: str) -> None:
    """Refuse a class whose type id another class declares as its former id.

    Raises:
        ConfigError: both exist; their jobs would share folders and identifiers.
    """
    other = _former.get(type_id)
    if other is not None and other is not cls and _reference(other) != _reference(cls):
        raise ConfigError(
            f"{_reference(cls)} has the type id {type_id!r}, which {_reference(other)} declares "
            "as its former id (renamed_from=): both would claim the same jobs. Remove the old "
            "class, or remove renamed_from= from the new one."
        )
