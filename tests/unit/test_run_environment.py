"""The run's environment record (partita._experiment_env): git asked once per repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from partita import _experiment_env


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with a script in a subfolder and the project installed editable
    (its ``direct_url.json`` in a site folder on ``sys.path``), with one uncommitted line."""
    repo = tmp_path / "project"
    (repo / "scripts").mkdir(parents=True)
    script = repo / "scripts" / "train.py"
    script.write_text("print('train')\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    script.write_text("print('train')\n# an uncommitted line\n")
    site = tmp_path / "site"
    info = site / "project-1.0.dist-info"
    info.mkdir(parents=True)
    url = {"url": f"file://{repo}", "dir_info": {"editable": True}}
    (info / "direct_url.json").write_text(json.dumps(url))
    monkeypatch.setattr(sys, "path", [str(site)])
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__file__=str(script)))
    return repo


def test_the_script_and_its_editable_project_share_one_git_status(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(command: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(list(command))
        return real(command, *args, **kwargs)

    monkeypatch.setattr(_experiment_env.subprocess, "run", counting)
    info = _experiment_env.environment_info()

    assert info["git"]["dirty"] is True and "+# an uncommitted line" in info["git"]["diff"]
    assert info["editable"]["project"]["path"] == str(project)
    # The same repository's state, without the script's diff.
    assert info["editable"]["project"]["git"] == {
        "commit": info["git"]["commit"],
        "dirty": True,
    }
    assert 1 == sum("status" in command for command in calls if command[0] == "git")


def test_an_editable_package_in_another_repository_is_asked_on_its_own(
    project: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _git(other, "init", "-q")
    (other / "lib.py").write_text("x = 1\n")
    _git(other, "add", ".")
    _git(other, "commit", "-q", "-m", "lib")
    info = tmp_path / "site" / "lib-2.0.dist-info"
    info.mkdir()
    url = {"url": f"file://{other}", "dir_info": {"editable": True}}
    (info / "direct_url.json").write_text(json.dumps(url))

    recorded = _experiment_env.environment_info()

    assert recorded["editable"]["lib"]["git"]["dirty"] is False
    assert recorded["editable"]["project"]["git"]["dirty"] is True
    assert recorded["editable"]["lib"]["git"]["commit"] != recorded["git"]["commit"]


def test_git_is_asked_without_writing_the_repository(project: Path) -> None:
    """The record is read-only: git refreshes no index (nor takes ``index.lock``, which
    would make the researcher's own git command fail meanwhile)."""
    script = project / "scripts" / "train.py"
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "second")
    index = project / ".git" / "index"
    later = index.stat().st_mtime + 10
    os.utime(script, (later, later))  # same content, new times: the index is stale
    before = (index.read_bytes(), index.stat().st_mtime_ns)

    recorded = _experiment_env.environment_info()

    assert recorded["git"]["dirty"] is False
    assert before == (index.read_bytes(), index.stat().st_mtime_ns)
    subprocess.run(["git", "status"], cwd=project, check=True, capture_output=True)
    assert before[0] != index.read_bytes()  # what a plain git status would have written
