"""Help texts of fields, read lazily (on demand) from the class source and docstring.

The one rule (:attr:`partita.config.Field.help`): ``field(help=...)``, else the attribute
docstring (the string just below the field), else the field's entry in an
``Attributes:`` / ``Arguments:`` / ``Args:`` / ``Parameters:`` section of the class
docstring, Google style (``name (type): text``) or NumPy style (``name : type`` and the
text indented below, under a ``-----`` underline). Each is looked up in the class that
defines the field, then its bases.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import textwrap

__all__ = ["attribute_docs", "field_help_text", "section_docs"]

_cache: dict[type, dict[str, str]] = {}


def attribute_docs(klass: type) -> dict[str, str]:
    """Map field name → the string literal that follows its annotation in ``klass``."""
    if klass in _cache:
        return _cache[klass]
    docs: dict[str, str] = {}
    try:
        source = textwrap.dedent(inspect.getsource(klass))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        _cache[klass] = docs
        return docs
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    _cache[klass] = docs
    return docs


_SECTIONS = {"attributes", "arguments", "args", "parameters", "params", "fields"}
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(:.*)?$")

_section_cache: dict[type, dict[str, str]] = {}


def section_docs(klass: type) -> dict[str, str]:
    """Field name → text, from the ``Attributes:``-like sections of ``klass``'s docstring."""
    if klass in _section_cache:
        return _section_cache[klass]
    doc = klass.__dict__.get("__doc__")
    found: dict[str, str] = {}
    if isinstance(doc, str):
        lines = inspect.cleandoc(doc).splitlines()
        i = 0
        while i < len(lines):
            head = lines[i].strip()
            numpy = (
                i + 1 < len(lines)
                and head.lower() in _SECTIONS
                and set(lines[i + 1].strip()) == {"-"}
            )
            google = head.endswith(":") and head[:-1].strip().lower() in _SECTIONS
            if numpy or google:
                i = _read_section(lines, i + (2 if numpy else 1), numpy, found)
            else:
                i += 1
    _section_cache[klass] = found
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _read_section(lines: list[str], i: int, numpy: bool, found: dict[str, str]) -> int:
    base: int | None = None
    name: str | None = None
    text: list[str] = []

    def flush() -> None:
        if name is not None:
            found[name] = " ".join(part for part in text if part).strip()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            if numpy and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
                break
            text.append("")
            i += 1
            continue
        indent = _indent(line)
        if base is None:
            base = indent
        if indent < base or (
            numpy and i + 1 < len(lines) and set(lines[i + 1].strip() or "x") == {"-"}
        ):
            break
        if indent == base:
            item = (_NUMPY_ITEM if numpy else _GOOGLE_ITEM).match(line.strip())
            if item is None:
                break
            flush()
            name = item.group(1).lstrip("*")
            text = [] if numpy else [item.group(3).strip()]
        else:
            text.append(line.strip())
        i += 1
    flush()
    return i


def field_help_text(owner: type, name: str) -> str:
    """The help of the field ``name`` defined by ``owner`` (empty when it has none)."""
    for klass in owner.__mro__:
        docs = attribute_docs(klass)
        if name in docs:
            return docs[name]
    for klass in owner.__mro__:
        docs = section_docs(klass)
        if name in docs:
            return docs[name]
    return ""
