"""A ``params.json`` document read under the current names of its classes and fields.

A job recorded before a rename (``renamed_from=``) names former type ids and field names
until ``partita migrate`` rewrites it. To compare such a job with one recorded under the
new names (``partita diff``), :func:`under_current_names` renames, in a copy of the
document, each type id and field that its class now calls otherwise, and the paths into
job folders under a former type id. Values are not rebuilt and nothing is converted
(``deprecated=`` conversions are ``partita migrate``'s): a class that cannot be imported
leaves its entries as they are.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from partita import _layout
from partita.config import _migrations
from partita.config._config import Config, resolve_fields
from partita.config._serial import import_class
from partita.errors import PartitaError

__all__ = ["under_current_names"]


def _current_class(entry: dict[str, Any]) -> type | None:
    recorded = entry.get("type")
    cls: Any = None
    reference = entry.get("class")
    if isinstance(reference, str):
        try:
            cls = import_class(reference, entry.get("file"))
        except (PartitaError, ImportError, AttributeError):
            cls = None
    if isinstance(recorded, str):
        # Importing the module registered its classes: the class that took over the
        # recorded type id (renamed_from=) is the one the job belongs to.
        claimant = _migrations.claimant(recorded)
        if claimant is not None:
            cls = claimant
    return cls if isinstance(cls, type) and issubclass(cls, Config) else None


def under_current_names(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``document`` under the current names, and what was renamed, in words."""
    out = copy.deepcopy(document)
    notes: list[str] = []
    types: dict[str, str] = {}
    objects = out.get("objects")
    for entry in objects if isinstance(objects, list) else ():
        if not isinstance(entry, dict):
            continue
        cls = _current_class(entry)
        if cls is None:
            continue
        try:
            resolve_fields(cls)
        except PartitaError:
            continue
        type_id = getattr(cls, "_partita_type_id", None)
        if not isinstance(type_id, str):
            continue
        recorded = entry.get("type")
        if isinstance(recorded, str) and recorded != type_id:
            if recorded not in _migrations.former_ids(cls):
                continue  # another class now: not a rename
            types[recorded] = type_id
            entry["type"] = type_id
            note = f"type id {recorded} is now {type_id}"
            if note not in notes:
                notes.append(note)
        renames: dict[str, str] = cls.__dict__.get("_partita_renames") or {}
        fields = entry.get("fields")
        if renames and isinstance(fields, dict):
            renamed = {}
            for name, value in fields.items():
                if name in renames and renames[name] not in fields:
                    note = f"field {type_id}.{name} is now {renames[name]}"
                    if note not in notes:
                        notes.append(note)
                    name = renames[name]
                renamed[name] = value
            entry["fields"] = renamed
    if types and isinstance(objects, list):
        _follow_paths(objects, types)
    if isinstance(objects, list):
        _follow_enums(objects, notes)
    return out, notes


def _current_enum(raw: dict[str, Any]) -> tuple[type, str] | None:
    """The current enum class and member name of a recorded ``$enum`` value, if it was
    recorded under a former name (``renamed_enum``)."""
    reference, name = raw.get("$enum"), raw.get("name")
    if not isinstance(reference, str) or not isinstance(name, str):
        return None
    renamed = False
    try:
        kind = import_class(reference, raw.get("file"))
    except (PartitaError, ImportError, AttributeError):
        module, _, qualname = reference.partition(":")
        file = raw.get("file")
        if module == "__main__" and isinstance(file, str):
            module = os.path.splitext(os.path.basename(file))[0]
        kind = _migrations.former_enum(f"{module}.{qualname}")
        if kind is None:
            return None
        renamed = True
    members = getattr(kind, "__members__", None)
    if members is None:
        return None
    if name not in members:
        current = _migrations.enum_member(kind, name)
        if current is None:
            return None
        name, renamed = current, True
    return (kind, name) if renamed else None


def _follow_enums(value: Any, notes: list[str]) -> None:
    """Enum values recorded under former names (``renamed_enum``) name the current ones."""
    if isinstance(value, list):
        for item in value:
            _follow_enums(item, notes)
        return
    if not isinstance(value, dict):
        return
    if "$enum" in value:
        found = _current_enum(value)
        if found is not None:
            kind, name = found
            old = f"{str(value['$enum']).rpartition(':')[2]}.{value['name']}"
            note = f"enum value {old} is now {kind.__qualname__}.{name}"
            if note not in notes:
                notes.append(note)
            value["$enum"], value["name"] = f"{kind.__module__}:{kind.__qualname__}", name
        return
    for item in value.values():
        _follow_enums(item, notes)


def _follow_paths(value: Any, types: dict[str, str]) -> None:
    """Paths into ``jobs/<former type id>/...`` name the current type id instead."""
    if isinstance(value, list):
        for item in value:
            _follow_paths(item, types)
        return
    if not isinstance(value, dict):
        return
    path = value.get("$path")
    if value.get("base") == "workspace" and isinstance(path, str):
        parts = path.split("/")
        if len(parts) > 2 and parts[0] == _layout.JOBS and parts[1] in types:
            value["$path"] = "/".join([parts[0], types[parts[1]], *parts[2:]])
    for item in value.values():
        _follow_paths(item, types)
