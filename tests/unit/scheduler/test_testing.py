"""``partita.testing`` used the way docs/testing.md shows: a whole experiment in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from partita import Param, Retry, Task, experiment
from partita.errors import ExperimentFailed
from partita.testing import Done, Fails, FakeLauncher, Killed
from partita.workspace import JobPaths, Workspace, read_job


class Train(Task, id="testingdoc.train"):
    """Stands for a long training run."""

    lr: Param[float]

    def execute(self) -> None:  # pragma: no cover - the fake launcher never calls it
        raise AssertionError("not executed under FakeLauncher")


class Evaluate(Task, id="testingdoc.evaluate"):
    """Depends on a training run."""

    model: Param[Train]

    def execute(self) -> None:  # pragma: no cover
        raise AssertionError("not executed under FakeLauncher")


def test_experiment_with_a_fake_launcher_retries_a_timeout(tmp_path: Path) -> None:
    fake = FakeLauncher({"testingdoc.train": [Killed("timeout"), Done()]})
    with experiment(tmp_path / "wd", "demo", launcher=fake):
        train = Train(lr=0.1).submit(retries=Retry(count=1))
        Evaluate(model=train).submit()
    assert fake.attempts("testingdoc.train") == 2
    assert fake.attempts("testingdoc.evaluate") == 1
    jobs = Workspace(tmp_path / "wd").jobs
    assert {read_job(_paths(p)).state for p in jobs.glob("*/*")} == {"done"}


def test_experiment_with_a_fake_failure_raises(tmp_path: Path) -> None:
    fake = FakeLauncher({"testingdoc.train": Fails()})
    with pytest.raises(ExperimentFailed), experiment(tmp_path / "wd", "demo", launcher=fake):
        Evaluate(model=Train(lr=0.1).submit()).submit()
    assert fake.attempts("testingdoc.evaluate") == 0


def _paths(folder: Path) -> JobPaths:
    return JobPaths(folder)
