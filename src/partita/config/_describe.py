"""Help texts: attribute docstrings read from the class source (lazily, on demand)."""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap

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
