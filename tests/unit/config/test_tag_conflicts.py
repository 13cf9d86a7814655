"""One tag name reaching a task with two values: a TagConflictWarning naming both."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sealclasses import Anything, Fit, Score, Weights

from partita import tag
from partita.config import _runtime
from partita.config._seal import seal
from partita.errors import PartitaWarning, TagConflictWarning


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _runtime.set_current_workspace(tmp_path)
    return tmp_path


def test_two_producers_with_two_values_warn_and_the_last_wins(root: Path) -> None:
    first = seal(Fit(lr=tag(0.1)), root).outputs
    second = seal(Fit(lr=tag(0.2)), root).outputs
    with pytest.warns(TagConflictWarning) as caught:
        sealed = seal(Anything(v=[first, second]), root)
    assert sealed.tags == {"lr": 0.2}
    [warning] = caught
    message = str(warning.message)
    assert "Anything: the tag 'lr' is given 2 values" in message
    assert "0.1 (from the Fit at v)" in message and "0.2 (from the Fit at v); 0.2 wins" in message
    assert "task.tag('lr', ...)" in message
    assert issubclass(TagConflictWarning, PartitaWarning)


def test_the_tasks_own_tag_wins_over_its_inputs_and_says_so(root: Path) -> None:
    weights = seal(Fit(lr=tag(0.1)), root).outputs
    with pytest.warns(TagConflictWarning, match=r"0\.1 \(from the Fit at weights\) and 0\.5 "):
        sealed = seal(Score(weights=weights).tag("lr", 0.5), root)
    assert sealed.tags == {"lr": 0.5}
    with pytest.warns(TagConflictWarning, match=r"from Score itself\); 0\.5 wins"):
        seal(Score(weights=weights).tag("lr", 0.5), root)


def test_held_configs_with_different_values_and_types(root: Path) -> None:
    a = Weights(path=Path("/a")).tag("seed", 1)
    b = Weights(path=Path("/b")).tag("seed", 1.0)  # typed: 1 and 1.0 are two values
    c = Weights(path=Path("/c")).tag("seed", 1)
    with pytest.warns(TagConflictWarning) as caught:
        sealed = seal(Anything(v=[a, b, c]), root)
    assert sealed.tags == {"seed": 1}
    [warning] = caught
    assert "given 2 values, 1.0 (from the Weights at v) and 1 (from the Weights at v)" in str(
        warning.message
    )


def test_one_value_reaching_a_task_twice_is_silent(root: Path) -> None:
    first = seal(Fit(lr=tag(0.1)), root).outputs
    second = seal(Fit(lr=tag(0.1), device="gpu"), root).outputs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sealed = seal(Anything(v=[first, second]).tag("lr", 0.1), root)
        assert sealed.tags == {"lr": 0.1}
        # tags() itself never warns: only submitting does.
        assert Anything(
            v=[Weights(path=Path("/a")).tag("x", 1), Weights(path=Path("/b")).tag("x", 2)]
        ).tags() == {"x": 2}
