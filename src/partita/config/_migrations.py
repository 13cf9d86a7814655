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


def renamed_ids() -> dict[str, str]:
    """Every former type id declared in this process → the current type id of its class."""
    ids = {old: getattr(cls, "_partita_type_id", None) for old, cls in _former.items()}
    return {old: new for old, new in ids.items() if isinstance(new, str)}


# --- enums ----------------------------------------------------------------------------------

#: Former ``module.QualName`` of an enum class → the enum class that declares it.
_former_enums: dict[str, type] = {}


def _names(owner: str, what: str, value: Any) -> tuple[str, ...]:
    listed = (value,) if isinstance(value, str) else value
    if (
        not isinstance(listed, tuple | list)
        or not listed
        or not all(isinstance(n, str) and n and n == n.strip() for n in listed)
        or len(set(listed)) != len(listed)
    ):
        raise ConfigDefinitionError(
            f"{owner}: {what} expected a former name or a tuple of distinct former names "
            f"(oldest first), found {value!r}. Write e.g. renamed_enum('project.Colour')."
        )
    return tuple(listed)


def renamed_enum(
    renamed_from: str | tuple[str, ...] | None = None,
    *,
    members: dict[str, str | tuple[str, ...]] | None = None,
) -> Callable[[Any], Any]:
    """Class decorator: an enum class renamed or moved, or some of its members renamed,
    that keeps the identifiers of the configs holding its values.

    ``renamed_from`` is the enum's former ``module.QualName`` (as identities encode it; a
    script's module is its file's stem), or a tuple of them, oldest first; ``members`` maps
    a current member name to its former name(s). Identities encode the oldest names, as for
    ``renamed_from=`` on a config class (docs/identity.md).

    Raises:
        ConfigDefinitionError: not an enum, a former member name that is a current member
            or claimed twice, a member that does not exist, or a former name another enum
            declares.
    """

    def decorate(cls: Any) -> Any:
        import enum

        owner = getattr(cls, "__qualname__", repr(cls))
        if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
            raise ConfigDefinitionError(
                f"renamed_enum() decorates Enum classes, found {owner}. For a config class "
                "write renamed_from= in its class line."
            )
        former = () if renamed_from is None else _names(owner, "renamed_enum()", renamed_from)
        current: dict[str, str] = {}
        oldest: dict[str, str] = {}
        for name, olds in (members or {}).items():
            if name not in cls.__members__:
                raise ConfigDefinitionError(
                    f"{owner}: renamed_enum(members=...) names {name!r}, which is not a member "
                    f"of {owner} (its members: {', '.join(cls.__members__)})."
                )
            listed = _names(f"{owner}.{name}", "members=", olds)
            for old in listed:
                if old in cls.__members__ or old in current:
                    raise ConfigDefinitionError(
                        f"{owner}: the former member name {old!r} is "
                        + ("a current member" if old in cls.__members__ else "claimed twice")
                        + ". A former name must be free and taken over by one member."
                    )
                current[old] = name
            oldest[name] = listed[0]
        reference = _reference(cls)
        for name in former:
            known = _former_enums.get(name)
            if known is not None and _reference(known) != reference:
                raise ConfigDefinitionError(
                    f"{reference} and {_reference(known)} both declare the former enum name "
                    f"{name!r}: its values can only become the values of one enum."
                )
        for name in former:
            _former_enums[name] = cls
        type.__setattr__(cls, "_partita_enum_former", former)
        type.__setattr__(cls, "_partita_enum_oldest", oldest)
        type.__setattr__(cls, "_partita_enum_current", current)
        from partita.config import _identity

        _identity._enum_names.pop(cls, None)
        return cls

    return decorate


def former_enum(name: str) -> type | None:
    """The enum class that declares ``name`` (``module.QualName``) as its former name."""
    return _former_enums.get(name)


def enum_member(kind: type, name: str) -> str | None:
    """The current member of ``kind`` that was called ``name`` (``renamed_enum``), if any."""
    current: dict[str, str] = kind.__dict__.get("_partita_enum_current") or {}
    return current.get(name)
