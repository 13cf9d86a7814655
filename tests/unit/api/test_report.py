"""``partita.report`` and ``partita.artifacts``: what is stored, what is refused (in-process)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import partita
from partita import _report
from partita.errors import ReportError
from partita.workspace import JobPaths, read_results


@pytest.fixture
def job(tmp_path: Path) -> Iterator[JobPaths]:
    paths = JobPaths(tmp_path / "job")
    paths.root.mkdir()
    _report._set_target(paths)
    yield paths
    _report._set_target(None)


def test_last_value_wins_and_numbers_form_series(job: JobPaths) -> None:
    partita.report(loss=0.5, name="a")
    partita.report(loss=0.25, name="b")
    partita.report(step=10, loss=float("inf"), done=True)
    stored = json.loads(job.results.read_text())
    assert stored["values"] == {"loss": "inf", "name": "b", "done": True}
    assert [point[:2] for point in stored["series"]["loss"]] == [[1, 0.5], [2, 0.25], [10, "inf"]]
    assert "done" not in stored["series"] and "name" not in stored["series"]
    read = read_results(job)
    assert read["values"]["loss"] == math.inf and read["series"]["loss"][-1][1] == math.inf


def test_numpy_scalars_are_numbers(job: JobPaths) -> None:
    numpy = pytest.importorskip("numpy")
    partita.report(acc=numpy.float32(0.5), n=numpy.int64(3), flag=numpy.bool_(True))
    values = read_results(job)["values"]
    assert values == {"acc": 0.5, "n": 3, "flag": True}
    assert type(values["n"]) is int


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": object()}, "report\\(model=...\\): expected a number"),
        ({"table": {1: "a"}}, "expected a dict with string keys"),
        ({"big": "x" * (70 * 1024)}, "at most 65536 bytes"),
        ({"deep": [[[[[[[[[[1]]]]]]]]]]}, "nested more than 8 deep"),
    ],
)
def test_values_that_cannot_be_stored_raise(
    job: JobPaths, values: dict[str, object], message: str
) -> None:
    partita.report(before=1)
    with pytest.raises(ReportError, match=message):
        partita.report(**values)
    assert read_results(job)["values"] == {"before": 1}  # nothing lost, nothing half-written


def test_a_bad_step_is_refused(job: JobPaths) -> None:
    with pytest.raises(ReportError, match="expected an integer step"):
        partita.report(step=1.5, loss=1.0)  # type: ignore[arg-type]


def test_artifacts_folder(job: JobPaths) -> None:
    folder = partita.artifacts()
    assert folder == job.artifacts and folder.is_dir()


def test_outside_a_job_values_are_checked_then_dropped(tmp_path: Path) -> None:
    _report._set_target(None)
    partita.report(loss=1.0)
    with pytest.raises(ReportError):
        partita.report(bad=object())
    with pytest.raises(ReportError, match="inside a task's execute"):
        partita.artifacts()


def test_a_resumed_attempt_continues_the_series(tmp_path: Path) -> None:
    paths = JobPaths(tmp_path / "job")
    paths.root.mkdir()
    _report._set_target(paths)
    partita.report(loss=1.0)
    partita.report(loss=float("nan"))
    _report._set_target(paths)  # the next attempt of a ResumableTask, same folder
    partita.report(loss=0.5)
    _report._set_target(None)
    series = read_results(paths)["series"]["loss"]
    assert [point[0] for point in series] == [1, 2, 3]
    assert math.isnan(series[1][1]) and series[2][1] == 0.5


def test_results_without_pandas_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from partita.errors import ResultsError

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ResultsError, match=r"pip install 'partita\[analysis\]'"):
        partita.results("anywhere")
