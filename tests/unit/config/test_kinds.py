"""One rule for a value's kind, and no import cycle inside the config package."""

from __future__ import annotations

import ast
import enum
from pathlib import Path, PurePosixPath

import pytest
from cfgclasses import Level, Value

import partita.config
from partita.config import dumps, from_document, identifier
from partita.config._identity import encode_value
from partita.config._kinds import Kind, kind_of
from partita.errors import EncodingError

PACKAGE = Path(partita.config.__file__).parent


def _imports(module: Path) -> set[str]:
    """Modules of partita.config imported anywhere in ``module`` (function bodies too)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "partita.config":
                found.update(f"partita.config.{a.name}" for a in node.names)
            elif node.module.startswith("partita.config."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("partita.config."))
    return found


def test_the_config_package_has_no_import_cycle() -> None:
    graph = {f"partita.config.{p.stem}": _imports(p) for p in PACKAGE.glob("_*.py")}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(name) :], name]))
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if target in graph:
                visit(target, [*trail, name])
        state[name] = 2

    assert "partita.config._kinds" in graph
    for name in sorted(graph):
        visit(name, [])
    assert graph["partita.config._kinds"] == set()


class Shade(enum.StrEnum):
    """A str enum: an enum to every part of the config layer, never a str."""

    DARK = "dark"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, Kind.BOOL),
        (Level.LOW, Kind.ENUM),
        (Shade.DARK, Kind.ENUM),
        (PurePosixPath("a"), Kind.PATH),
        (frozenset({1}), Kind.SET),
        ({1}, Kind.SET),
        (Value(v=1), Kind.CONFIG),
    ],
)
def test_subclasses_get_their_most_specific_kind(value: object, kind: Kind) -> None:
    assert kind_of(value) is kind


def test_an_int_enum_is_an_enum_for_identity_equality_and_params() -> None:
    as_enum, as_int = Value(v=Level.LOW), Value(v=1)
    assert encode_value(Level.LOW)[:1] == b"e"
    assert identifier(as_enum) != identifier(as_int)
    assert as_enum != as_int
    document = dumps(as_enum).decode()
    assert '"$enum"' in document
    import json

    assert from_document(json.loads(document)).v is Level.LOW


def test_an_unknown_kind_is_refused_with_what_is_accepted() -> None:
    with pytest.raises(EncodingError, match=r"Value\.v: cannot encode a value of type .*bytes"):
        Value(v=b"raw")
