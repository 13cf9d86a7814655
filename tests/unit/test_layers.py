"""The layer contract of ``src/partita``, read from the source (no import is executed).

Layers, lowest first; a module may import only from its own layer or from lower ones::

    0  partita.errors, partita._version, partita._suggest ("did you mean"),
       partita._layout (names the workspace owns)
    1  partita.config
    2  partita.workspace
    3  partita.launchers
    4  partita.scheduler
    5  the experiment: partita._experiment (and its _experiment_* parts), _control, _gcpace,
       _live, _resumable, _services, partita.ssh
       the job side:   partita.run, partita._progress, partita._report, partita._jobenv,
                       partita._forkserver, partita._publish
    6  the views and the facade: partita.cli, partita.web, partita (its __init__)

The job side (the modules that run inside a job's process) sits with the experiment for
who may import it, but itself imports only layers 0-2 and the job side, so that a job
starts fast and never loads the scheduler or a launcher.

Every ``import`` counts: at module level, inside functions (lazy imports) and under
``if TYPE_CHECKING:``. On top of the layers, no two modules may import each other, directly
or through others (imports under ``TYPE_CHECKING`` do not count for this rule: they are
not executed). Importing ``partita.x.y`` runs ``partita/x/__init__.py`` too; that implicit
edge does not count, only the module an import names does.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "partita"

#: (module prefix, layer). The longest matching prefix wins.
LAYERS: dict[str, int] = {
    "partita.errors": 0,
    "partita._version": 0,
    "partita._layout": 0,
    "partita._suggest": 0,
    "partita.config": 1,
    "partita.workspace": 2,
    "partita.launchers": 3,
    "partita.scheduler": 4,
    "partita._experiment": 5,
    "partita._experiment_checks": 5,
    "partita._experiment_dry": 5,
    "partita._experiment_env": 5,
    "partita._experiment_report": 5,
    "partita._experiment_signals": 5,
    "partita._gcpace": 5,
    "partita._control": 5,
    "partita._live": 5,
    "partita._resumable": 5,
    "partita._services": 5,
    "partita.run": 5,
    "partita._pack": 5,
    "partita._progress": 5,
    "partita._report": 5,
    "partita._publish": 5,
    "partita._jobenv": 5,
    "partita._stopping": 5,
    "partita._energy": 5,
    "partita._forkserver": 5,
    # Remote experiments: the experiment hands a remote work directory to it; the CLI
    # relays commands through it. It needs errors, config (task classes) and itself only.
    "partita.ssh": 5,
    # Reading what experiments produced (results table, load_run): workspace and config.
    "partita.analysis": 5,
    "partita.cli": 6,
    "partita.web": 6,
    "partita": 6,
}
#: The job side: may import only from these layers, and from each other.
JOB_SIDE = {
    "partita.run",
    "partita._pack",
    "partita._progress",
    "partita._report",
    "partita._publish",
    "partita._jobenv",
    "partita._stopping",
    "partita._energy",
    "partita._forkserver",
}
JOB_SIDE_MAY_IMPORT = 2


@dataclass(frozen=True)
class Import:
    """One import statement of a partita module, resolved to the module it names."""

    source: str
    target: str
    line: int
    lazy: bool
    type_checking: bool

    def __str__(self) -> str:
        where = "lazy, " if self.lazy else ""
        where += "TYPE_CHECKING, " if self.type_checking else ""
        return f"{self.source} (line {self.line}, {where}".rstrip(", ") + f") -> {self.target}"


def module_name(path: Path) -> str:
    """``src/partita/x/y.py`` → ``partita.x.y``; ``__init__.py`` names its package."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = all_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(
    node: ast.AST, *, lazy: bool, type_checking: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, lazy, type_checking
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, lazy=True, type_checking=type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk_stmt(stmt, lazy=lazy, type_checking=True)
            for stmt in child.orelse:
                yield from _walk_stmt(stmt, lazy=lazy, type_checking=type_checking)
        else:
            yield from _walk(child, lazy=lazy, type_checking=type_checking)


def _walk_stmt(
    stmt: ast.stmt, *, lazy: bool, type_checking: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        yield stmt, lazy, type_checking
    else:
        yield from _walk(stmt, lazy=lazy, type_checking=type_checking)


def _resolve_from(source: str, node: ast.ImportFrom, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path) -> list[Import]:
    """The partita modules that module ``name`` imports, wherever the import stands."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node, lazy, type_checking in _walk(tree, lazy=False, type_checking=False):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            module = _resolve_from(name, node, path.name == "__init__.py")
            if module is None:
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                targets.append(submodule if submodule in MODULES else module)
        for target in targets:
            if target == "partita" or target.startswith("partita."):
                found.append(Import(name, target, node.lineno, lazy, type_checking))
    return found


def layer_of(module: str) -> int | None:
    """The layer of a module (by its longest listed prefix), ``None`` if unlisted."""
    best: tuple[int, int] | None = None
    for prefix, layer in LAYERS.items():
        matches = module == prefix or module.startswith(prefix + ".")
        if matches and (best is None or len(prefix) > best[0]):
            best = (len(prefix), layer)
    return None if best is None else best[1]


def job_side(module: str) -> bool:
    """Whether the module runs in the job process (``partita.run`` and its helpers)."""
    return any(module == m or module.startswith(m + ".") for m in JOB_SIDE)


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def test_every_module_has_a_layer() -> None:
    """A new module or package must be given its place in the layers above."""
    assert [] == [name for name in MODULES if layer_of(name) is None]


def test_imports_point_down_the_layers() -> None:
    """No import, lazy or not, points to a higher layer."""
    upward = []
    for imp in ALL_IMPORTS:
        source, target = layer_of(imp.source), layer_of(imp.target)
        assert source is not None and target is not None, imp
        if target > source:
            upward.append(f"{imp} (layer {source} imports layer {target})")
    assert [] == upward


def test_the_job_side_imports_only_config_and_workspace() -> None:
    """The job runner (and what runs in the job's process) loads neither launchers nor more."""
    wrong = []
    for imp in ALL_IMPORTS:
        if job_side(imp.source) and not job_side(imp.target):
            layer = layer_of(imp.target)
            assert layer is not None, imp
            if layer > JOB_SIDE_MAY_IMPORT:
                wrong.append(str(imp))
    assert [] == wrong


def _cycles() -> list[tuple[str, ...]]:
    """Strongly connected groups of modules (Tarjan), over executed imports."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in ALL_IMPORTS:
        if not imp.type_checking and imp.target in graph and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(tuple(sorted(group)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_no_two_modules_import_each_other() -> None:
    """No import cycle between modules, in any package (lazy imports included)."""
    found = set(_cycles())
    assert [] == sorted(found)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("from partita.launchers import Launcher\n", ["partita.launchers"]),
        ("from partita.launchers import base\n", ["partita.launchers.base"]),
        ("def f():\n    import partita.scheduler._job\n", ["partita.scheduler._job"]),
        ("if TYPE_CHECKING:\n    from partita.cli import cli\n", ["partita.cli"]),
        ("import json\nfrom .slurm import _status\n", ["partita.launchers.slurm._status"]),
    ],
)
def test_the_reader_sees_every_kind_of_import(
    code: str, expected: list[str], tmp_path: Path
) -> None:
    """The reader itself: module-level, lazy, TYPE_CHECKING and relative imports."""
    path = tmp_path / "mod.py"
    path.write_text(code)
    assert expected == [imp.target for imp in imports_of("partita.launchers.mod", path)]


def test_a_violation_is_reported(tmp_path: Path) -> None:
    """A lazy upward import and a cycle are caught (the rules can fail)."""
    path = tmp_path / "mod.py"
    path.write_text("def f():\n    from partita.cli import cli\n")
    (imp,) = imports_of("partita.config._fake", path)
    assert imp.lazy
    assert layer_of(imp.target) > layer_of(imp.source)  # type: ignore[operator]
