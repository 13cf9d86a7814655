"""Override values as typed on a command line, and their conversion to a field's type.

``key=value`` texts are parsed into small nodes (:class:`Text`, :class:`Seq`, :class:`Map`,
:class:`Value`) that keep what was typed; :func:`convert` then turns a node into a value
of the field's type, guided by that type: ``kernel=5`` is the text ``"5"`` for a ``str``
field and the integer ``5`` for an ``int`` field. The final check is the field type's own
(``FieldType.validate``), so a value the command line accepts is one the config accepts.

Sweeps: ``a,b,c`` (commas outside brackets and quotes) and ``range(start,stop[,step])``.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partita.config import _types as t
from partita.config._types import FieldType
from partita.errors import ConfigTypeError, PartitaError, RunnerError

__all__ = ["Map", "Node", "Seq", "Text", "Value", "convert", "guess", "parse_value"]

_INT = re.compile(r"^[+-]?(0|[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^[+-]?([0-9][0-9_]*\.?[0-9_]*([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?)$")
_SPECIAL_FLOATS = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_NULL = {"null", "none", "~"}
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_RANGE = re.compile(r"^range\((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class Text:
    """A scalar as typed: ``quoted`` when it was written between quotes (always a string)."""

    text: str
    quoted: bool = False


@dataclass(frozen=True)
class Seq:
    """``[a, b, ...]``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Map:
    """``{key: value, ...}``."""

    items: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Value:
    """A value that is already typed (read from a YAML file or a run record)."""

    value: Any


Node = Text | Seq | Map | Value


# --- parsing ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.pos = 0
        self.where = where

    def fail(self, what: str) -> RunnerError:
        return RunnerError(
            f"{self.where}: {what} at character {self.pos + 1} of {self.text!r}. Lists are "
            "written [1,2], strings with commas or brackets are quoted: 'a,b' or \"a,b\"."
        )

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def items(self, stop: str) -> list[Node]:
        """Comma-separated items up to ``stop`` (the end of the text when empty)."""
        found: list[Node] = []
        self.skip_spaces()
        if stop and self.peek() == stop:
            return found
        while True:
            found.append(self.item(stop))
            self.skip_spaces()
            char = self.peek()
            if char == ",":
                self.pos += 1
                continue
            if char == stop:
                return found
            if not stop and char == "":
                return found
            raise self.fail(f"expected ',' or {stop!r}" if stop else "expected ','")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def item(self, stop: str) -> Node:
        self.skip_spaces()
        char = self.peek()
        if char == "[":
            self.pos += 1
            items = self.items("]")
            self.pos += 1
            return Seq(tuple(items))
        if char == "{":
            self.pos += 1
            return self.mapping()
        if char in "\"'":
            return self.quoted()
        start = self.pos
        ends = ",]}" if stop else ","
        while self.pos < len(self.text) and self.text[self.pos] not in ends:
            if self.text[self.pos] in "[{":
                raise self.fail("unexpected bracket")
            self.pos += 1
        word = self.text[start : self.pos].strip()
        if not word and stop != "]":
            raise self.fail("expected a value")
        if not word:
            raise self.fail("expected a value")
        return Text(word)

    def quoted(self) -> Text:
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail(f"missing closing {quote}")
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char == quote:
                return Text("".join(out), quoted=True)
            else:
                out.append(char)

    def mapping(self) -> Map:
        pairs: list[tuple[str, Node]] = []
        self.skip_spaces()
        if self.peek() == "}":
            self.pos += 1
            return Map(())
        while True:
            self.skip_spaces()
            if self.peek() in "\"'":
                key = self.quoted().text
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] not in ":,}":
                    self.pos += 1
                key = self.text[start : self.pos].strip()
            self.skip_spaces()
            if self.peek() != ":" or not key:
                raise self.fail("expected 'key: value'")
            self.pos += 1
            pairs.append((key, self.item("}")))
            self.skip_spaces()
            char = self.peek()
            self.pos += 1
            if char == "}":
                return Map(tuple(pairs))
            if char != ",":
                raise self.fail("expected ',' or '}'")


def _range(inner: str, where: str) -> list[Node]:
    parts = [part.strip() for part in inner.split(",")]
    if not 1 <= len(parts) <= 3 or not all(_INT.match(part) for part in parts):
        raise RunnerError(
            f"{where}: expected range(stop), range(start, stop) or range(start, stop, step) "
            f"with integers, found range({inner}). Example: seed=range(0,5)."
        )
    numbers = [int(part) for part in parts]
    if len(numbers) == 3 and numbers[2] == 0:
        raise RunnerError(f"{where}: range({inner}) has a step of 0. Use a step such as 1.")
    values = list(range(*numbers))
    if not values:
        raise RunnerError(f"{where}: range({inner}) is empty. Check start and stop.")
    return [Text(str(v)) for v in values]


def parse_value(text: str, where: str) -> list[Node]:
    """The values of one override: one node, or several for a sweep (``a,b`` or range())."""
    match = _RANGE.match(text.strip())
    if match:
        return _range(match.group(1), where)
    if text.strip() == "":
        return [Text("")]
    parser = _Parser(text, where)
    return parser.items("")


# --- conversion ---------------------------------------------------------------------------


def guess(node: Node) -> Any:
    """The value of a node when nothing says its type (``Any`` fields, error messages)."""
    if isinstance(node, Value):
        return node.value
    if isinstance(node, Seq):
        return [guess(item) for item in node.items]
    if isinstance(node, Map):
        return {key: guess(value) for key, value in node.items}
    if node.quoted:
        return node.text
    lowered = node.text.lower()
    if lowered in _NULL:
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INT.match(node.text):
        return int(node.text)
    if _FLOAT.match(node.text) and any(c.isdigit() for c in node.text):
        return float(node.text)
    return node.text


def _is_null(node: Node) -> bool:
    if isinstance(node, Value):
        return node.value is None
    return isinstance(node, Text) and not node.quoted and node.text.lower() in _NULL


def _scalar(node: Text, ftype: FieldType, path: str) -> Any:
    text, lowered = node.text, node.text.lower()
    if isinstance(ftype, t._Str):
        return text
    if isinstance(ftype, t._Path):
        return Path(text)
    if node.quoted:
        raise ftype.error(text, path, "Remove the quotes: quoted values are strings.")
    if isinstance(ftype, t._None):
        if lowered in _NULL:
            return None
    elif isinstance(ftype, t._Simple) and ftype.kind is bool:
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    elif isinstance(ftype, t._Int):
        if _INT.match(text):
            return int(text)
    elif isinstance(ftype, t._Float):
        if lowered in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[lowered]
        if _FLOAT.match(text) and any(c.isdigit() for c in text):
            return float(text)
    elif isinstance(ftype, t._Enum):
        for member in ftype.kind:
            if text in (member.name, str(member.value)) or lowered == member.name.lower():
                return member
        names = ", ".join(m.name for m in ftype.kind)
        raise ConfigTypeError(f"{path}: expected one of {names}, found {text!r}.")
    elif isinstance(ftype, t._Literal):
        for allowed in ftype.values:
            if isinstance(allowed, enum.Enum):
                if text == allowed.name:
                    return allowed
            elif isinstance(allowed, str):
                if text == allowed:
                    return allowed
            elif guess(node) == allowed and type(guess(node)) is type(allowed):
                return allowed
    elif isinstance(ftype, t._Any):
        return guess(node)
    found = guess(node)
    hint = ""
    if isinstance(ftype, t._List | t._Tuple | t._Set):
        hint = f"Write a list in brackets, e.g. [{text}]."
        try:  # suggest the brackets only if they would give a valid value
            convert(parse_value(f"[{text}]", path)[0], ftype, path)
        except PartitaError:
            item = getattr(ftype, "item", None)
            each = f", each a {item.describe()}" if item is not None else ""
            hint = f"Write a list in brackets{each}: [a, b]."
    elif isinstance(ftype, t._ConfigType):
        hint = f"Set its fields by path, e.g. {path}.FIELD=VALUE."
    raise ftype.error(found, path, hint)


def convert(node: Node, ftype: FieldType, path: str) -> Any:
    """The value of ``node`` for a field of type ``ftype``; raises ``ConfigTypeError``."""
    if isinstance(ftype, t._Union):
        if _is_null(node) and any(isinstance(o, t._None) for o in ftype.options):
            return None
        for option in ftype.options:
            try:
                return convert(node, option, path)
            except ConfigTypeError:
                continue
        raise ftype.error(guess(node), path)
    if isinstance(node, Value):
        value = node.value
        if isinstance(value, str) and not isinstance(ftype, t._Str | t._Any):
            return convert(Text(value), ftype, path)
        if isinstance(value, list) and isinstance(ftype, t._List | t._Tuple | t._Set):
            return convert(Seq(tuple(Value(v) for v in value)), ftype, path)
        if isinstance(value, dict) and isinstance(ftype, t._Dict):
            return convert(Map(tuple((str(k), Value(v)) for k, v in value.items())), ftype, path)
        return ftype.validate(value, path)
    if isinstance(node, Text):
        return ftype.validate(_scalar(node, ftype, path), path)
    if isinstance(node, Seq):
        if isinstance(ftype, t._List | t._Set):
            items = [convert(v, ftype.item, f"{path}[{i}]") for i, v in enumerate(node.items)]
            return ftype.validate(items, path)
        if isinstance(ftype, t._Tuple):
            if ftype.items is None:
                assert ftype.rest is not None
                rest = ftype.rest
                return ftype.validate(
                    [convert(v, rest, f"{path}[{i}]") for i, v in enumerate(node.items)], path
                )
            if len(ftype.items) != len(node.items):
                raise ftype.error(guess(node), path, f"Give exactly {len(ftype.items)} items.")
            return ftype.validate(
                [
                    convert(v, kind, f"{path}[{i}]")
                    for i, (v, kind) in enumerate(zip(node.items, ftype.items, strict=True))
                ],
                path,
            )
        return ftype.validate(guess(node), path)
    if isinstance(ftype, t._Dict):
        return ftype.validate(
            {key: convert(v, ftype.value, f"{path}[{key!r}]") for key, v in node.items}, path
        )
    return ftype.validate(guess(node), path)
