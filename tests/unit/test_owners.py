"""One owner per concept, read from the source: names are spelled only by their owner.

* The file and folder names of a work directory (``params.json``, ``stdout``, ``jobs``...)
  are spelled only in ``partita.workspace`` (and ``partita._layout``, the few names it
  shares with the config layer below it). Everyone else asks ``JobPaths``, ``RunPaths`` or
  ``Workspace``. The names are taken from those classes themselves, so a file added there
  is covered at once.
* The launcher kinds partita defines (``"local"``, ``"slurm"``) are spelled only in
  ``partita.launchers``; everyone else asks the registry or the launcher classes. The
  kinds are taken from the registry.

A name counts where it is used as a path: an operand of ``/``, an argument of ``Path(...)``,
``joinpath`` or ``with_name``, or compared with a ``.name``. The same word as a JSON key or a
state (``"stdout"`` in a reply, ``"done"`` as a state) is not a path and may appear anywhere.
A launcher kind counts as any string constant equal to it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.launchers import launcher_for_kind, registered_kinds
from partita.workspace import RunPaths, Workspace

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "partita"

#: Where the names of the work directory may be spelled.
LAYOUT_OWNERS = (PACKAGE / "workspace", PACKAGE / "_layout.py")
#: Where launcher kinds may be spelled.
KIND_OWNERS = (PACKAGE / "launchers",)

_PATH_CALLS = {"Path", "PurePath", "PurePosixPath", "joinpath", "with_name"}


def _path_properties(obj: object) -> Iterator[Path]:
    for name in dir(type(obj)):
        if isinstance(getattr(type(obj), name, None), property):
            value = getattr(obj, name)
            if isinstance(value, Path):
                yield value


def layout_names(tmp: Path) -> set[str]:
    """Every file and folder name the workspace defines, read from its classes."""
    workspace = Workspace(tmp / "wd")
    job = workspace.job("demo.task", "0" * 64)
    run = RunPaths.of(workspace, "xp", "r1")
    names = {p.name for p in _path_properties(job)} | {p.name for p in _path_properties(run)}
    names |= {p.name for p in vars(workspace).values() if isinstance(p, Path) and p != tmp}
    names |= {p.name for p in (*tmp.joinpath("wd").iterdir(), run.root.parent)}
    names |= {job.root.parent.parent.name, job.attempts.name}
    names.discard("wd")
    assert {"params.json", "stdout", "stderr", "jobs", "run.json"} <= names, names
    return names


def _strings(node: ast.AST) -> Iterator[ast.Constant]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for item in node.elts:
            yield from _strings(item)


def _is_name_attribute(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "name"


def path_strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """String constants of ``tree`` used as parts of a path."""
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            yield from _strings(node.left)
            yield from _strings(node.right)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called in _PATH_CALLS:
                for arg in node.args:
                    yield from _strings(arg)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_name_attribute(side) for side in sides):
                for side in sides:
                    yield from _strings(side)


def all_strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """Every string constant of ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def _sources(owners: tuple[Path, ...]) -> Iterator[tuple[Path, ast.AST]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(path == owner or owner in path.parents for owner in owners):
            continue
        yield path, ast.parse(path.read_text("utf-8"), str(path))


def test_work_directory_names_are_spelled_only_by_the_workspace(tmp_path: Path) -> None:
    names = layout_names(tmp_path)
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}"
        for path, tree in _sources(LAYOUT_OWNERS)
        for node in path_strings(tree)
        if node.value in names
    ]
    assert not found, (
        "work directory names spelled outside partita.workspace (use JobPaths, RunPaths or "
        "Workspace):\n" + "\n".join(found)
    )


def test_launcher_kinds_are_spelled_only_by_the_launchers() -> None:
    import partita.launchers.slurm  # noqa: F401  (registers the built-in kind)

    # The kinds partita.launchers defines (tests and partita.testing register their own).
    kinds = {
        kind
        for kind in registered_kinds()
        if launcher_for_kind(kind).__module__.startswith("partita.launchers.")
    }
    assert {"local", "slurm"} <= kinds, kinds
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}"
        for path, tree in _sources(KIND_OWNERS)
        for node in all_strings(tree)
        if node.value in kinds
    ]
    assert not found, (
        "launcher kinds spelled outside partita.launchers (ask the registry or the "
        "launcher class):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('p = jobdir / "stdout"', ["stdout"]),
        ('p = Path(root, "jobs")', ["jobs"]),
        ('p = root.joinpath("params.json")', ["params.json"]),
        ('ok = path.parent.name == "jobs"', ["jobs"]),
        ('ok = entry.name in ("jobs", "tokens")', ["jobs", "tokens"]),
        ('reply = {"stdout": str(paths.stdout)}', []),
        ('done = state == "done"', []),
    ],
)
def test_the_scan_sees_a_name_used_as_a_path(source: str, flagged: list[str]) -> None:
    assert [node.value for node in path_strings(ast.parse(source))] == flagged
