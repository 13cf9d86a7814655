"""Sealing a task: one pass of the config layer that decides everything submit needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sealclasses import Fit, Score, Split, Weights

from partita.config import _runtime, identifier, is_frozen
from partita.config._config import state_of
from partita.config._seal import Sealed, seal


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _runtime.set_current_workspace(tmp_path)
    return tmp_path


def test_seal_gives_identity_folder_bytes_and_marked_outputs(root: Path) -> None:
    task = Fit(lr=0.5)
    sealed = seal(task, root)
    assert isinstance(sealed, Sealed)
    assert sealed.identifier == identifier(task)
    assert sealed.jobdir == root / "jobs" / "seal.fit" / sealed.identifier
    assert task.model == sealed.jobdir / "model.pt"
    assert is_frozen(task)
    document = json.loads(sealed.params)
    assert document["objects"][document["root"]]["id"] == sealed.identifier
    assert isinstance(sealed.outputs, Weights)
    assert state_of(sealed.outputs).producer is task
    assert is_frozen(sealed.outputs)


def test_seal_lists_sub_tasks_and_producers_as_dependencies(root: Path) -> None:
    split = Split(seed=1)
    seal(split, root)
    fit = Fit(split=split)
    weights = seal(fit, root).outputs
    score = Score(weights=weights)
    assert seal(fit, root).dependencies == (split,)
    assert seal(score, root).dependencies == (fit,)
