"""``params.json``: a stable, reloadable JSON form of a config graph.

The document lists every config once (children before parents), each with its class (for
import), type id, identifier and fields. Values that JSON cannot say directly are tagged
objects: ``{"$path": ...}``, ``{"$enum": ...}``, ``{"$tuple": [...]}``, ``{"$set": [...]}``,
``{"$float": "nan"}``, ``{"$ref": i}`` (a config) and ``{"$dict": {...}}`` (a dict whose keys
start with ``$``). Paths inside the work directory's ``jobs/`` are stored relative to it so
a work directory can move. Same config, same bytes: no addresses, sorted keys.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import json.encoder
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from partita import _layout
from partita.config import _migrations, _runtime
from partita.config._classdef import resolve_fields
from partita.config._config import (
    Config,
    _State,
    freeze,
    freeze_all,
    run_post_init,
    state_of,
)
from partita.config._fields import FieldKind
from partita.config._identity import digest, encode_value, identifier
from partita.config._instance import memo_of
from partita.config._kinds import Kind, kind_or_none
from partita.errors import EncodingError, LoadError, MigrationError, TaskImportError

FORMAT = "partita.params/1"


def class_reference(cls: type) -> dict[str, str]:
    """Where to import ``cls`` from: ``module:qualname``, plus the file for scripts."""
    module = cls.__module__
    ref = {"class": f"{module}:{cls.__qualname__}"}
    if module in ("__main__", _runtime.SCRIPT_MODULE):
        file = getattr(sys.modules.get(module), "__file__", None)
        if file:
            ref = {"class": f"__main__:{cls.__qualname__}", "file": os.path.abspath(file)}
    return ref


class _Values:
    """Field values as JSON; a config is written by :meth:`ref` (the subclass's)."""

    roots: list[str]

    def ref(self, cfg: Config) -> Any:
        raise NotImplementedError

    def enum(self, value: Any) -> dict[str, Any]:
        ref = class_reference(type(value))
        out = {"$enum": ref["class"], "name": value.name}
        if "file" in ref:
            out["file"] = ref["file"]
        return out

    def value(self, value: Any, path: str) -> Any:
        kind = kind_or_none(value)
        if kind is None:
            raise EncodingError(
                f"{path}: cannot write a value of type {type(value).__qualname__} to params.json."
            )
        if kind is Kind.NONE:
            return None
        if kind is Kind.BOOL:
            return bool(value)
        if kind is Kind.INT:
            return _int(value, path)
        if kind is Kind.STR:
            return str(value)
        if kind is Kind.FLOAT:
            value = float(value)
            if math.isfinite(value):
                return value
            return {"$float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
        if kind is Kind.CONFIG:
            return {"$ref": self.ref(value)}
        if kind is Kind.ENUM:
            return self.enum(value)
        if kind is Kind.PATH:
            text = value.as_posix()
            for root in self.roots:
                if text.startswith(root + "/jobs/"):
                    return {"$path": text[len(root) + 1 :], "base": "workspace"}
            return {"$path": text}
        if kind is Kind.LIST:
            return [self.value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind is Kind.TUPLE:
            return {"$tuple": [self.value(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if kind is Kind.SET:
            items = sorted(value, key=encode_value)
            return {"$set": [self.value(v, f"{path}{{}}") for v in items]}
        out = {}
        for key in sorted(value):
            if type(key) is not str:
                raise EncodingError(f"{path}: dict keys must be str, found {key!r}.")
            out[key] = self.value(value[key], f"{path}[{key!r}]")
        if any(key.startswith("$") for key in out):
            return {"$dict": out}
        return out


class _Writer(_Values):
    """The ``params.json`` document as a dict (:func:`to_document`)."""

    def __init__(self, roots: list[str]) -> None:
        self.objects: list[dict[str, Any]] = []
        self.index: dict[int, int] = {}
        #: Identifier → positions of the objects with it, and their texts once computed.
        self.by_id: dict[str, list[int]] = {}
        self.texts: dict[int, str] = {}
        self.roots = roots

    def _text(self, position: int) -> str:
        text = self.texts.get(position)
        if text is None:
            text = json.dumps(self.objects[position], sort_keys=True, ensure_ascii=False)
            self.texts[position] = text
        return text

    def _position(self, entry: dict[str, Any]) -> int:
        """The position of an equal object already listed, else of ``entry`` (appended).

        Equal objects have the same identifier, so texts are compared (and written) only
        among objects sharing one: a graph of distinct configs writes no text at all.
        """
        same = self.by_id.setdefault(entry["id"], [])
        if same:
            text = json.dumps(entry, sort_keys=True, ensure_ascii=False)
            for position in same:
                if self._text(position) == text:
                    return position
        position = len(self.objects)
        self.objects.append(entry)
        same.append(position)
        return position

    def add(self, cfg: Config) -> int:
        known = self.index.get(id(cfg))
        if known is not None:
            return known
        st = state_of(cfg)
        producer = self.add(st.producer) if st.producer is not None else None
        pretasks = [self.add(pretask) for pretask in st.pretasks]
        cls = type(cfg)
        fields = {}
        d = cfg.__dict__
        for name in sorted(cls._partita_fields):
            if name in d:
                fields[name] = self.value(d[name], f"{cls.__qualname__}.{name}")
        entry = _object_entry(
            class_reference(cls), cls, identifier(cfg), fields, producer, st, pretasks
        )
        position = self._position(entry)
        self.index[id(cfg)] = position
        return position

    def ref(self, cfg: Config) -> Any:
        return self.add(cfg)


def _int(value: Any, path: str) -> int:
    number = int(value)
    try:
        str(number)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        raise EncodingError(
            f"{path}: an int of about {number.bit_length() * 30103 // 100000} digits is too "
            "large to write. Store such numbers in a file or as a str."
        ) from None
    return number


def to_document(cfg: Config) -> dict[str, Any]:
    """The ``params.json`` document of ``cfg`` (and everything it refers to)."""
    writer = _Writer(_runtime.workspace_roots())
    root = writer.add(cfg)
    return {"format": FORMAT, "objects": writer.objects, "root": root}


class _Unusual(Exception):
    """A value :func:`_indented` does not write itself (``json.dumps`` then writes all)."""


_encode_str = json.encoder.encode_basestring  # the C function when available


def _indented(value: Any, newline: str, out: list[Any]) -> None:
    """Append the text ``json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)``
    gives, for a document made of exact dicts (str keys), lists, str, int, finite float,
    bool and None; raise :class:`_Unusual` at anything else.

    The standard encoder writes indented JSON in pure Python, one generator per
    container; this writer gives the same bytes in a fraction of its time (it runs once
    per submission, thousands of times on a rerun).
    """
    kind = type(value)
    if kind is str:
        out.append(_encode_str(value))
    elif kind is dict:
        if not value:
            out.append("{}")
            return
        inner = newline + " "
        separator = "{" + inner
        for key in sorted(value):
            if type(key) is not str:
                raise _Unusual
            out.append(separator)
            out.append(_encode_str(key))
            out.append(": ")
            _indented(value[key], inner, out)
            separator = "," + inner
        out.append(newline + "}")
    elif kind is list:
        if not value:
            out.append("[]")
            return
        inner = newline + " "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            _indented(item, inner, out)
            separator = "," + inner
        out.append(newline + "]")
    elif kind is int:
        out.append(int.__repr__(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is float and math.isfinite(value):
        out.append(float.__repr__(value))
    elif kind is _Hole:
        out.append(value.cfg)  # the position of that config, filled in by _document_text
    else:
        raise _Unusual


def _json_text(document: dict[str, Any]) -> str:
    """``json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)``."""
    out: list[str] = []
    try:
        _indented(document, "\n", out)
    except (_Unusual, RecursionError):
        return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return "".join(out)


class _Hole:
    """Where an entry refers to another config: its position, known once it is listed."""

    __slots__ = ("cfg",)

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg


def _module_file(module: str) -> Any:
    return getattr(sys.modules.get(module), "__file__", None)


class _Entry(_Values):
    """The entry of one config, as :class:`_Writer` gives it, with holes for positions."""

    def __init__(self, roots: list[str]) -> None:
        self.roots = roots
        #: The configs the entry refers to, in the order :meth:`_Writer.add` adds them.
        self.children: list[Config] = []
        #: The scripts' modules the entry names the file of (a class or an enum defined in
        #: the experiment script), with the file they had.
        self.files: list[tuple[str, Any]] = []

    def ref(self, cfg: Config) -> Any:
        self.children.append(cfg)
        return _Hole(cfg)

    def reference(self, cls: type) -> dict[str, str]:
        ref = class_reference(cls)
        if "file" in ref:
            self.files.append((cls.__module__, _module_file(cls.__module__)))
        return ref

    def enum(self, value: Any) -> dict[str, Any]:
        ref = self.reference(type(value))
        out = {"$enum": ref["class"], "name": value.name}
        if "file" in ref:
            out["file"] = ref["file"]
        return out


def _object_entry(
    reference: dict[str, str],
    cls: type[Config],
    key: str,
    fields: dict[str, Any],
    producer: Any,
    st: Any,
    pretasks: list[Any],
) -> dict[str, Any]:
    """One object of a params document: ``reference`` (its class), its type id, ``key``
    (its identifier), ``fields``, and its producer, ignored fields, instance and pretasks
    when it has them. Both encoders (the reference one and the templates) build it here."""
    entry: dict[str, Any] = {
        **reference,
        "type": cls._partita_type_id,
        "id": key,
        "fields": fields,
    }
    if producer is not None:
        entry["producer"] = producer
    if st.ignored:
        entry["ignored"] = sorted(st.ignored)
    if st.instance is not None:
        entry["instance"] = st.instance
    if pretasks:
        entry["pretasks"] = pretasks
    return entry


#: An entry with holes: ``(pieces, children, digest, files)``. ``pieces`` alternates text
#: and the configs whose positions go between (text first and last); ``children`` are the
#: configs to list before it, in order; ``digest`` is the config's (equal configs share
#: it); ``files`` the scripts' files it names (see :attr:`_Entry.files`).
_Template = tuple[tuple[Any, ...], tuple[Config, ...], bytes, tuple[tuple[str, Any], ...]]


def _make_entry(cfg: Config, roots: list[str]) -> tuple[_Template, bool]:
    """The template of ``cfg``'s entry, and whether it may be kept (see :func:`_entry_of`)."""
    writer = _Entry(roots)
    st = state_of(cfg)
    producer = writer.ref(st.producer) if st.producer is not None else None
    pretasks = [writer.ref(pretask) for pretask in st.pretasks]
    cls = type(cfg)
    fields = {}
    d = cfg.__dict__
    for name in sorted(cls._partita_fields):
        if name in d:
            fields[name] = writer.value(d[name], f"{cls.__qualname__}.{name}")
    key = digest(cfg)
    entry = _object_entry(writer.reference(cls), cls, key.hex(), fields, producer, st, pretasks)
    out: list[Any] = []
    _indented(entry, _ITEM, out)
    pieces: list[Any] = []
    text: list[str] = []
    for item in out:
        if type(item) is str:
            text.append(item)
        else:
            pieces.append("".join(text))
            pieces.append(item)
            text = []
    pieces.append("".join(text))
    # A generated path still missing is given later (sealing a task that holds it): the
    # entry would change. A script's file is written absolute: a relative one would
    # depend on the working directory.
    keep = all(n in d for n, f in cls._partita_fields.items() if f.generator)
    keep = keep and all(isinstance(f, str) and os.path.isabs(f) for _, f in writer.files)
    files = tuple(dict.fromkeys(writer.files)) if writer.files else ()
    return (tuple(pieces), tuple(writer.children), key, files), keep


def _entry_of(cfg: Config, roots: list[str], root: bool) -> tuple[_Template, bool]:
    """The template of ``cfg``'s entry, kept on a frozen config (but the root: a task of
    a sweep is written once, and its entry is kept only once another task holds it), and
    whether it may be kept."""
    memo = memo_of(cfg, not root)
    if memo is not None:
        known = memo.entry
        # Work directories are only added to the list (by register_workspace), or the
        # whole list replaced: the same list of the same length holds the same roots.
        if known is not None and known[0] is roots and known[1] == len(roots):
            template: _Template = known[2]
            if _same_files(template[3]):
                return template, True
    template, keep = _make_entry(cfg, roots)
    if memo is not None and keep and not root:
        memo.entry = (roots, len(roots), template)
    return template, keep


def _same_files(files: tuple[tuple[str, Any], ...]) -> bool:
    """Whether the scripts' modules still have these files. A script's module may be
    replaced by another one (the script imported again, from another file): an entry
    names the file the module has now."""
    return not files or all(_module_file(module) == file for module, file in files)


#: The indentation of an item of the document's ``objects`` list.
_ITEM = "\n  "
_SEPARATOR = "," + _ITEM
_HEAD = '{\n "format": ' + _encode_str(FORMAT) + ',\n "objects": [' + _ITEM
_TAIL = '\n ],\n "root": '


def _filled(pieces: tuple[Any, ...], index: dict[int, int]) -> str:
    parts = [pieces[0]]
    for i in range(1, len(pieces), 2):
        parts.append(str(index[id(pieces[i])]))
        parts.append(pieces[i + 1])
    return "".join(parts)


def _only_child(template: _Template) -> Config | None:
    """The config an entry refers to, if it refers to one config only (a link of a chain)."""
    children = template[1]
    if not children:
        return None
    first = children[0]
    return first if all(child is first for child in children) else None


def _take_listing(cfg: Config, roots: list[str], move: bool) -> tuple[str, int, int, Any] | None:
    """The ``objects`` of the document of ``cfg`` kept on it (then dropped if ``move``)."""
    memo = memo_of(cfg, False)
    listing = memo.listing if memo is not None else None
    if listing is None or listing[0] is not roots or listing[1] != len(roots):
        return None
    if not _same_files(listing[5]):
        return None
    if move:
        memo.listing = None  # type: ignore[union-attr]
    return listing[2], listing[3], listing[4], listing[5]


def _listing_below(
    cfg: Config, roots: list[str], move: bool, depth: int = 2
) -> tuple[str, int, int, Any] | None:
    """The ``objects`` of the document of ``cfg``: those kept on it, or those kept on the
    one config it refers to and its entry (a task's output refers to the task only).
    """
    listing = _take_listing(cfg, roots, move)
    if listing is not None or depth <= 1:
        return listing
    template, keep = _entry_of(cfg, roots, False)
    only = _only_child(template)
    if only is None or not keep:
        return None
    below = _listing_below(only, roots, move, depth - 1)
    if below is None:
        return None
    joined, count, position, files = below
    joined += _SEPARATOR + _filled(template[0], {id(only): position})
    return joined, count + 1, count, files + template[3]


def _keep_listing(
    cfg: Config, roots: list[str], joined: str, count: int, position: int, files: Any
) -> None:
    memo = memo_of(cfg)
    if memo is not None:
        memo.listing = (roots, len(roots), joined, count, position, files)


def _document_text(cfg: Config) -> str:
    """``_json_text(to_document(cfg))``, from the entries' templates.

    The configs are listed in the order :meth:`_Writer.add` lists them (children first,
    each once, an object equal to one already listed is not listed again), with an
    explicit stack rather than recursion. A frozen config's entry is made once and kept,
    so writing a task that holds a long chain of submitted ones costs a few operations
    per config of the chain, not the encoding of each one again.

    A frozen config that refers to one config only (a link of a chain) also keeps the
    ``objects`` of its document, until the next link takes them over: that link's
    document is them and its own entry (the one config it refers to is listed first, in
    a document still empty, as in its own). So submitting a chain of tasks costs the
    same few operations at each link, plus copying the text.
    """
    roots = _runtime.workspace_roots()
    template, keep = _entry_of(cfg, roots, True)
    only = _only_child(template)
    frozen = state_of(cfg).frozen
    if only is not None:
        listing = _listing_below(only, roots, move=frozen and keep)
        if listing is not None:
            joined, count, position, files = listing
            joined += _SEPARATOR + _filled(template[0], {id(only): position})
            if frozen and keep:
                files = tuple(dict.fromkeys(files + template[3]))
                _keep_listing(cfg, roots, joined, count + 1, count, files)
            # An entry is never equal to one of those it refers to: it is listed last.
            return _HEAD + joined + _TAIL + str(count) + "\n}"
    index: dict[int, int] = {}
    texts: list[str] = []
    by_digest: dict[bytes, list[int]] = {}
    files_used: dict[tuple[str, Any], None] = dict.fromkeys(template[3])
    stack: list[tuple[Config, _Template, int]] = [(cfg, template, 0)]
    while stack:
        current, template, next_child = stack[-1]
        children = template[1]
        while next_child < len(children) and id(children[next_child]) in index:
            next_child += 1
        if next_child < len(children):
            child = children[next_child]
            stack[-1] = (current, template, next_child + 1)
            child_template, child_keep = _entry_of(child, roots, False)
            keep = keep and child_keep
            files_used.update(dict.fromkeys(child_template[3]))
            stack.append((child, child_template, 0))
            continue
        stack.pop()
        if id(current) in index:
            continue  # listed meanwhile (a config held twice by the same entry)
        text = _filled(template[0], index)
        same = by_digest.setdefault(template[2], [])
        for position in same:
            if texts[position] == text:
                break
        else:
            position = len(texts)
            texts.append(text)
            same.append(position)
        index[id(current)] = position
    joined = _SEPARATOR.join(texts)
    position = index[id(cfg)]
    if only is not None and frozen and keep:
        _keep_listing(cfg, roots, joined, len(texts), position, tuple(files_used))
    return _HEAD + joined + _TAIL + str(position) + "\n}"


def dumps(cfg: Config) -> bytes:
    """Stable bytes of ``params.json`` for ``cfg``."""
    try:
        text = _document_text(cfg)
    except Exception:
        # A value the short way does not write (or an error, which the usual way raises
        # as it always did): the usual way.
        text = _json_text(to_document(cfg))
    # A lone surrogate (identity encodes it) is not UTF-8: write it as its JSON escape
    # (backslashreplace gives exactly \udcXX), which reading turns back into itself.
    return (text + "\n").encode("utf-8", "backslashreplace")


# --- loading ------------------------------------------------------------------------------

_class_cache: dict[tuple[str, str | None], Any] = {}


def import_class(reference: str, file: str | None = None) -> Any:
    """Import ``module:qualname`` (from ``file`` for a script's ``__main__``)."""
    key = (reference, file)
    cached = _class_cache.get(key)
    if cached is not None:
        return cached
    module_name, _, qualname = reference.partition(":")
    try:
        if module_name == "__main__":
            if not file:
                raise TaskImportError(
                    f"{reference}: the class was defined in a script whose path is unknown."
                )
            if not os.path.exists(file):
                raise TaskImportError(
                    f"{reference}: expected the experiment script {file} to define this class, "
                    "but the file does not exist any more. Restore it, or move the class to "
                    "a module."
                )
            module = _runtime.import_script(file)
        else:
            module = importlib.import_module(module_name)
    except TaskImportError:
        raise
    except Exception as exc:
        raise TaskImportError(
            f"cannot import {reference}: {type(exc).__name__}: {exc}. The job runs in a new "
            "Python process; make sure the module is importable there (installed, or on "
            "PYTHONPATH)."
        ) from exc
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            where = f"script {file}" if module_name == "__main__" else f"module {module_name}"
            hint = (
                " Classes must be defined before the 'with experiment(...)' block of the "
                "script, at top level."
                if module_name == "__main__"
                else ""
            )
            raise TaskImportError(f"{where} does not define {qualname}.{hint}")
    _class_cache[key] = target
    return target


class _Reader:
    def __init__(
        self,
        document: dict[str, Any],
        workspace: Path | None,
        source: str,
        convert: bool = False,
        paths: dict[str, str] | None = None,
    ) -> None:
        self.document = document
        self.workspace = workspace
        self.source = source
        self.objects: list[Config] = []
        #: Replace configs of deprecated classes by their conversion (``partita migrate``).
        self.convert = convert
        #: Work-directory-relative job folders that moved: old ``jobs/t/i`` → new.
        self.paths = paths or {}
        #: What reading changed: former type ids, former field names, conversions.
        self.notes: list[str] = []

    def fail(self, message: str) -> LoadError:
        return LoadError(f"{self.source}: {message}")

    def build(self) -> Config:
        doc = self.document
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise self.fail(
                f"expected a params document of format {FORMAT!r}, found {found!r}. "
                "Was it written by another version of partita?"
            )
        for entry in doc["objects"]:
            self.objects.append(self.build_one(entry))
        root = self.objects[doc["root"]]
        return root

    def find_class(self, entry: dict[str, Any]) -> type[Config]:
        """The class of an entry: its recorded class, or the one that has its type id now."""
        recorded_type = entry.get("type")
        try:
            cls = import_class(entry["class"], entry.get("file"))
        except TaskImportError:
            # Importing the module registered its classes: a renamed or moved class is
            # found by its former type id (``renamed_from=``).
            # ``partita migrate`` also follows a class that moved but kept its explicit id.
            find = _migrations.lookup if self.convert else _migrations.claimant
            found = find(recorded_type) if isinstance(recorded_type, str) else None
            if found is None:
                raise
            cls = found
            if recorded_type == getattr(cls, "_partita_type_id", None):
                where = f"{cls.__module__}:{cls.__qualname__}"
                self.note(f"class {entry['class']} is now {where}")
        if not (isinstance(cls, type) and issubclass(cls, Config)):
            raise self.fail(f"{entry['class']} is not a Config class.")
        resolve_fields(cls)
        if isinstance(recorded_type, str) and recorded_type != cls._partita_type_id:
            if recorded_type not in _migrations.former_ids(cls):
                # The recorded class now has another id: the class that took over the
                # recorded type id (renamed_from=) is the one the job belongs to.
                other = _migrations.claimant(recorded_type)
                if other is not None and issubclass(other, Config):
                    cls = other
                    resolve_fields(cls)
            if recorded_type in _migrations.former_ids(cls):
                self.note(f"type id {recorded_type} is now {cls._partita_type_id}")
        return cls

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def build_one(self, entry: dict[str, Any]) -> Config:
        cls = self.find_class(entry)
        fields = resolve_fields(cls)
        renames: dict[str, str] = cls.__dict__.get("_partita_renames") or {}
        values = {}
        for name, raw in entry["fields"].items():
            f = fields.get(name)
            if f is None and name in renames:
                f = fields[renames[name]]
                self.note(f"field {cls._partita_type_id}.{name} is now {f.name}")
                name = f.name
            if f is None:
                raise self.fail(
                    f"{cls.__qualname__} has no field {name!r} any more, but this job was "
                    "created with it. Restore the field (with a default) to load this job."
                )
            values[name] = self.value(raw)
        cfg = cls.__new__(cls)
        d = cfg.__dict__
        state_of_new = _new_state()
        d["__partita__"] = state_of_new
        qual = cls.__qualname__
        for name, f in fields.items():
            if name in values:
                if f.kind is FieldKind.CONSTANT:
                    d[name] = values[name]
                else:
                    d[name] = f.type.validate(values[name], f"{qual}.{name}")
            elif f.generator is not None:
                continue
            elif f.kind is FieldKind.CONSTANT:
                d[name] = f.type.validate(f.default, f"{qual}.{name}")  # a copy if mutable
            elif f.required:
                raise self.fail(
                    f"{qual}.{name} is required but this job was created without it. "
                    "Give the field a default to load older jobs."
                )
            else:
                d[name] = f.type.validate(f.make_default(), f"{qual}.{name}")
        if "producer" in entry:
            state_of_new.producer = self.objects[entry["producer"]]
        if "ignored" in entry:
            state_of_new.ignored = frozenset(entry["ignored"])
        if "instance" in entry:
            state_of_new.instance = str(entry["instance"])
        if "pretasks" in entry:
            state_of_new.pretasks = tuple(self.objects[i] for i in entry["pretasks"])
        state_of_new.workspace = self.workspace
        _freeze_loaded(cfg)
        if cls._partita_post_init is not None:
            run_post_init(cfg)
        if self.convert:
            return self.converted(cfg)
        return cfg

    def converted(self, cfg: Config) -> Config:
        """``cfg``, or what the conversions of deprecated classes make of it."""
        seen: list[type] = []
        while (convert := _migrations.conversion_of(type(cfg))) is not None:
            cls = type(cfg)
            if cls in seen:
                chain = " -> ".join(c.__qualname__ for c in [*seen, cls])
                raise MigrationError(
                    f"{self.source}: the conversions of deprecated classes loop ({chain}). "
                    "A conversion must return a config of a class that is not deprecated."
                )
            seen.append(cls)
            name = getattr(convert, "__qualname__", repr(convert))
            try:
                new = convert(cfg)
            except Exception as exc:
                raise MigrationError(
                    f"{self.source}: the conversion {name} of the deprecated "
                    f"{cls.__qualname__} raised {type(exc).__name__}: {exc}. Fix the "
                    "conversion function; nothing was migrated."
                ) from exc
            if not isinstance(new, Config) or type(new) is cls:
                found = type(new).__qualname__
                raise MigrationError(
                    f"{self.source}: the conversion {name} of the deprecated "
                    f"{cls.__qualname__} must return a config of another class, found "
                    f"{found}. Return the replacing config, e.g. NewConfig(...)."
                )
            st = state_of(new)
            old_st = state_of(cfg)
            if st.producer is None:
                st.producer = old_st.producer
            st.workspace = self.workspace
            freeze(new)
            self.note(f"{cls._partita_type_id} converted to {type(new)._partita_type_id}")
            cfg = new
        return cfg

    def value(self, raw: Any) -> Any:
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        if not isinstance(raw, dict):
            return raw
        if "$ref" in raw:
            return self.objects[raw["$ref"]]
        if "$path" in raw:
            if raw.get("base") == "workspace":
                if self.workspace is None:
                    raise self.fail("a path is relative to a work directory that is unknown.")
                return self.workspace / self.moved(raw["$path"])
            return Path(raw["$path"])
        if "$tuple" in raw:
            return tuple(self.value(v) for v in raw["$tuple"])
        if "$set" in raw:
            return frozenset(self.value(v) for v in raw["$set"])
        if "$float" in raw:
            return float(raw["$float"])
        if "$enum" in raw:
            return self.enum(raw)
        if "$dict" in raw:
            return {k: self.value(v) for k, v in raw["$dict"].items()}
        return {k: self.value(v) for k, v in raw.items()}

    def enum(self, raw: dict[str, Any]) -> Any:
        """An enum value; a renamed enum or member (``renamed_enum``) is found too."""
        reference, name = raw["$enum"], raw["name"]
        try:
            kind = import_class(reference, raw.get("file"))
        except TaskImportError:
            module, _, qualname = str(reference).partition(":")
            if module == "__main__" and raw.get("file"):
                module = Path(raw["file"]).stem
            found = _migrations.former_enum(f"{module}.{qualname}")
            if found is None:
                raise
            kind = found
            self.note(f"enum {module}.{qualname} is now {found.__module__}.{found.__qualname__}")
        if name not in kind.__members__:
            current = _migrations.enum_member(kind, name)
            if current is not None:
                self.note(f"enum member {kind.__qualname__}.{name} is now {current}")
                name = current
        return kind[name]

    def moved(self, relative: str) -> str:
        """``relative`` (``jobs/<type>/<identifier>/...``) after the moves of migration."""
        if not self.paths:
            return relative
        parts = relative.split("/", 3)
        if len(parts) < 3:
            return relative
        folder = "/".join(parts[:3])
        target = self.paths.get(folder)
        if target is None:
            return relative
        return target + relative[len(folder) :]


def _new_state() -> Any:
    return _State()


def _freeze_loaded(cfg: Config) -> None:
    """Freeze ``cfg`` just built: alone when every config it refers to is frozen already.

    The configs of a document come children first, each frozen when built, and a frozen
    config only refers to frozen ones; so freezing ``cfg`` alone is what :func:`freeze`
    does, without walking the whole graph below it again (quadratic in a deep graph).
    """
    nested: list[Config] = list(state_of(cfg).pretasks)
    d = cfg.__dict__
    for name in type(cfg)._partita_walk:
        value = d.get(name)
        if value is not None:
            _direct_configs(value, nested)
    if all(state_of(item).frozen for item in nested):
        freeze_all((cfg,))
    else:
        freeze(cfg)


def _direct_configs(value: Any, out: list[Config]) -> None:
    """The configs in the field value ``value`` (not those inside them)."""
    if isinstance(value, Config):
        out.append(value)
    elif isinstance(value, list | tuple | frozenset):
        for item in value:
            _direct_configs(item, out)
    elif isinstance(value, dict):
        for item in value.values():
            _direct_configs(item, out)


#: ``params.json`` documents read ahead by a warm process for the job it is about to fork
#: (:func:`prefetch`): path → (what the file was when read, the parsed document).
_prefetched: dict[str, tuple[tuple[int, int, int, int], Any]] = {}


def _file_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def warm_class(cls: Any) -> None:
    """Resolve the fields of the config class ``cls`` now (a no-op for anything else), as
    loading a job does: for a process that forks jobs (the fork server), so that each
    child inherits them resolved. Errors are left for the load to report."""
    if isinstance(cls, type) and issubclass(cls, Config):
        with contextlib.suppress(Exception):
            resolve_fields(cls)


def prefetch(path: Path, st: os.stat_result, document: Any) -> None:
    """Keep the document just parsed from ``path`` (``st``: its ``fstat``) for :func:`load`.

    For a process that forks the job next (the fork server): the child loads from it
    when ``path`` is still the file that was read (same inode, size and modification
    time: ``params.json`` is only ever replaced whole), instead of reading it again. One
    document is kept: the next call replaces it.
    """
    _prefetched.clear()
    _prefetched[os.path.abspath(path)] = (_file_key(st), document)


def _read_document(file: Path) -> Any:
    known = _prefetched.pop(os.path.abspath(file), None)
    if known is not None:
        try:
            if _file_key(os.stat(file)) == known[0]:
                return known[1]
        except OSError:
            pass
    return json.loads(file.read_text("utf-8"))


def from_document(
    document: dict[str, Any], *, workspace: Path | None = None, source: str = "params"
) -> Config:
    """Rebuild the config of a ``params.json`` document (frozen)."""
    return _Reader(document, workspace, source).build()


def migrated_document(
    document: dict[str, Any],
    *,
    workspace: Path,
    moved: dict[str, str] | None = None,
    source: str = "params",
) -> tuple[Config, list[str]]:
    """Rebuild a ``params.json`` document under the current code, for ``partita migrate``.

    Former type ids and field names map to the current ones, configs of deprecated classes
    are replaced by their conversion, and paths into job folders listed in ``moved``
    (``jobs/<type>/<identifier>`` → new) follow them. Returns the rebuilt config (frozen)
    and what changed, in words (empty: nothing to migrate).

    Raises:
        MigrationError: a conversion raised or returned something else than a config.
        LoadError, TaskImportError: the document cannot be read under the current code.
    """
    reader = _Reader(document, workspace, source, convert=True, paths=moved)
    try:
        cfg = reader.build()
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LoadError(
            f"{source} is not a valid params document ({type(exc).__name__}: {exc})."
        ) from None
    return cfg, reader.notes


#: A job folder's name (compiled once: a job process loads one config and would compile it).
_IDENTIFIER = re.compile(r"[0-9a-f]{64}")


def load(path: str | os.PathLike[str]) -> Config:
    """Load the config of a job folder (or of a ``params.json`` file).

    The result is frozen, equal to the submitted config and has the same identifier.

    Raises:
        LoadError: the file is missing or unreadable, or the code changed so that the
            identifier no longer matches the job folder.
        TaskImportError: a class cannot be imported.
    """
    target = Path(path)
    file = target / _layout.PARAMS if target.is_dir() else target
    jobdir = file.parent
    try:
        document = _read_document(file)
    except FileNotFoundError:
        raise LoadError(
            f"expected a job folder with a params.json, found no {file}. "
            "Pass the folder of a job (WORKDIR/jobs/<type>/<identifier>)."
        ) from None
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot read {file}: {exc}") from None
    workspace = None
    if _layout.is_job_folder(jobdir):
        workspace = jobdir.parent.parent.parent.resolve()
    if workspace is not None:
        _runtime.register_workspace(workspace)
        if _runtime.current_workspace() is None:
            _runtime.set_current_workspace(workspace)
    try:
        cfg = from_document(document, workspace=workspace, source=str(file))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LoadError(
            f"{file} is not a valid params document ({type(exc).__name__}: {exc}). It may "
            "have been edited by hand or truncated; restore it or delete the job folder."
        ) from None
    expected = document["objects"][document["root"]].get("id")
    actual = identifier(cfg)
    folder = jobdir.name if _IDENTIFIER.fullmatch(jobdir.name) else None
    if folder is not None and expected != folder:
        raise LoadError(
            f"{file} was edited or copied from another job: it records the identifier "
            f"{str(expected)[:12]}…, but it is in the folder of job {folder[:12]}…. Restore "
            "the job's own params.json, or delete the job folder."
        )
    if folder is not None and actual != folder:
        raise LoadError(
            f"{file}: its values give the identifier {actual[:12]}…, not {folder[:12]}… (the "
            "folder of the job). Either params.json was edited by hand (restore it: a job's "
            "parameters cannot change), or the code changed since the job was created (a "
            f"Constant, a default or a type id of {type(cfg).__qualname__}): restore it to "
            "use this job."
        )
    if expected and actual != expected:
        raise LoadError(
            f"{file}: the job was created with identifier {expected[:12]}…, but the current "
            f"code of {type(cfg).__qualname__} gives {actual[:12]}…. A Constant, a default or "
            "a type id changed since; restore it to use this job."
        )
    return cfg
