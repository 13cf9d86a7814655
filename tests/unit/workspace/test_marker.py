"""The work directory's marker file: written whole, and an interrupted one is recovered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita.errors import WorkspaceError
from partita.workspace import LAYOUT_VERSION, Workspace
from partita.workspace._paths import MARKER


def test_a_new_work_directory_gets_a_whole_marker(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "wd")
    assert {"layout": LAYOUT_VERSION} == json.loads((workspace.root / MARKER).read_text())
    assert [MARKER] == [p.name for p in workspace.root.iterdir() if p.name.startswith(".")]


def test_an_empty_marker_left_by_a_killed_experiment_is_written_again(tmp_path: Path) -> None:
    """An experiment killed while creating its work directory must not lock the user out."""
    root = tmp_path / "wd"
    (root / "jobs").mkdir(parents=True)
    (root / MARKER).write_text("")
    workspace = Workspace(root)
    assert {"layout": LAYOUT_VERSION} == json.loads((workspace.root / MARKER).read_text())


def test_a_damaged_marker_says_what_to_write(tmp_path: Path) -> None:
    root = tmp_path / "wd"
    root.mkdir()
    (root / MARKER).write_text("garbage")
    with pytest.raises(WorkspaceError, match=r"damaged: expected a JSON object .*'garbage'"):
        Workspace(root)


def test_another_layout_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "wd"
    root.mkdir()
    (root / MARKER).write_text(json.dumps({"layout": LAYOUT_VERSION + 1}))
    with pytest.raises(WorkspaceError, match="uses work directory layout"):
        Workspace(root)
