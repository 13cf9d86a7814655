"""grid(): combinations, and the tags they give to the tasks submitted meanwhile."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from rclasses import Fit

from partita import experiment, grid, tag
from partita.errors import RunnerError, TagConflictWarning
from partita.testing import Done, FakeLauncher


def test_combinations_in_order() -> None:
    assert [(1, "a"), (1, "b"), (2, "a"), (2, "b")] == list(grid(x=[1, 2], y=["a", "b"]))
    assert [0, 1, 2] == list(grid(seed=range(3)))
    with pytest.raises(RunnerError, match="must be a list"):
        list(grid(x="abc"))
    with pytest.raises(RunnerError, match="at least one keyword"):
        list(grid())


def test_tasks_are_tagged_with_the_combination(tmp_path: Path) -> None:
    fake = FakeLauncher({"rt.fit": [Done()]})
    with experiment(tmp_path, "g", launcher=fake, quiet=True):
        for C, seed in grid(C=[0.1, 1.0], seed=[0, 1]):
            Fit(C=C + seed).submit()
        outside = Fit(C=5.0)
        outside.submit()
        for C in grid(C=[7.0]):
            with pytest.warns(TagConflictWarning, match=r"given two values, 14\.0 \(a tag it"):
                Fit(C=tag(C * 2)).submit()  # an explicit tag wins, and says so
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                Fit(C=tag(C)).submit()  # the same value: silent
    assert {} == outside.tags()
    jobs = sorted(Path(tmp_path, "jobs", "rt.fit").iterdir())
    assert 7 == len(jobs)  # C = 0.1, 1.1, 1.0, 2.0, then 5.0, 14.0 and 7.0
    from partita.workspace import Workspace, open_index

    index = open_index(Workspace(tmp_path, create=False), lambda *_: None)
    try:
        tags = sorted((j.tags for j in index.jobs()), key=lambda t: sorted(t.items()))
    finally:
        index.close()
    assert {"C": 14.0} in tags and {"C": 7.0} in tags
    assert {"C": 0.1, "seed": 0} in tags and {"C": 1.0, "seed": 1} in tags
    assert {} in tags
