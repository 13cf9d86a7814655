"""Sealing decisions seen through real experiment runs (job processes, files, the index)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sealclasses import Caching, Fit, Learn, OnDevice, Part, Score, Split

import partita
from partita import experiment, tag
from partita.cli import cli
from partita.config import identifier
from partita.errors import ExperimentFailed

HERE = Path(__file__).resolve().parent
SRC = Path(partita.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _job_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job processes import the test classes and these sources."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(SRC)]))
    monkeypatch.setenv("PARTITA_NO_LIVE", "1")


def run(workdir: Path, name: str = "xp") -> experiment:  # type: ignore[valid-type]
    return experiment(workdir, name, quiet=True, stream=io.StringIO())


def jobs_with_tag(workdir: Path, *filters: str) -> list[dict[str, object]]:
    args = ["jobs", "list", str(workdir), "--json"]
    for item in filters:
        args += ["--tag", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_the_train_evaluate_example_is_found_by_its_tag(tmp_path: Path) -> None:
    with run(tmp_path):
        for lr in (0.1, 0.2):
            Score(weights=Fit(lr=tag(lr)).submit()).submit()
    found = jobs_with_tag(tmp_path, "lr=0.1")
    assert sorted(job["type"] for job in found) == ["seal.fit", "seal.score"]
    assert all(job["tags"] == {"lr": 0.1} for job in found)


def test_a_rerun_uses_the_meta_values_of_its_submission(tmp_path: Path) -> None:
    with pytest.raises(ExperimentFailed), run(tmp_path):
        failed = OnDevice(device="bad").submit()
    folder = failed.jobdir
    assert (folder / "failed").exists()
    with run(tmp_path):
        again = OnDevice(device="gpu").submit()
    assert again.jobdir == folder  # the identity is kept
    assert (folder / "stdout").read_text().strip().endswith("on gpu")
    assert partita.load(folder).device == "gpu"
    written = (folder / "params.json").read_bytes()
    with run(tmp_path):
        OnDevice(device="tpu").submit()  # done: reused, never rewritten
    assert (folder / "params.json").read_bytes() == written
    assert partita.load(folder).device == "gpu"


def test_a_task_may_cache_attributes_on_itself_in_execute(tmp_path: Path) -> None:
    with run(tmp_path):
        task = Caching(n=4).submit()
    assert (task.jobdir / "done").exists()
    assert (task.jobdir / "stdout").read_text().strip() == "4"


def test_a_number_tag_filter_matches_by_value(tmp_path: Path) -> None:
    with run(tmp_path):
        Split(seed=1).tag("C", 10.0).tag("name", "10").submit()
        Split(seed=2).tag("C", 3).tag("flag", True).submit()
    assert [job["tags"]["C"] for job in jobs_with_tag(tmp_path, "C=10")] == [10.0]
    assert [job["tags"]["C"] for job in jobs_with_tag(tmp_path, "C=3.0")] == [3]
    assert jobs_with_tag(tmp_path, "name=10") == []  # a str is not a number
    assert jobs_with_tag(tmp_path, "flag=1") == []  # nor is a bool
    assert len(jobs_with_tag(tmp_path, 'name="10"')) == 1


def test_diff_follows_the_task_that_produced_an_output(tmp_path: Path) -> None:
    with run(tmp_path):
        first = Learn(shard=Part(seed=1).submit()).submit()
        second = Learn(shard=Part(seed=0).submit()).submit()
    result = CliRunner().invoke(
        cli, ["diff", identifier(first)[:10], identifier(second)[:10], "-w", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    changes = [line for line in result.output.splitlines()[2:] if line.strip()]
    assert changes == ["shard.(from seal.part).seed: 1 → 0"]
