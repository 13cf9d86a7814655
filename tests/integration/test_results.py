"""Results a task reports, the results table, load_run and explain, on real jobs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from xputil import Script, job_dirs

from partita.workspace import JobPaths, read_job_environment, read_results

REPORTING = """
class Fit(Task, id="res.fit"):
    n: Param[int]
    def execute(self):
        for epoch in range(3):
            partita.report(loss=1.0 / (epoch + 1))
        partita.report(step=10, loss=float("nan"))
        partita.report(accuracy=0.5 + self.n / 10, note="ok", extra={"a": [1, 2]})
        (partita.artifacts() / "model.txt").write_text("weights")
        if self.n == 2:
            partita.report(bad=object())

with experiment(sys.argv[1], "fit") as xp:
    for n in (1, 2):
        Fit(n=n).submit()
"""


def test_report_writes_values_series_and_artifacts(tmp_path: Path) -> None:
    script = Script(tmp_path, "fit", REPORTING)
    out = script.run(str(tmp_path / "wd"))
    assert out.returncode == 1, out.stderr
    folders = job_dirs(tmp_path / "wd", "res.fit")
    assert len(folders) == 2
    done = [f for f in folders if (f / "done").exists()]
    failed = [f for f in folders if (f / "failed").exists()]
    assert len(done) == 1 and len(failed) == 1
    results = read_results(JobPaths(done[0]))
    assert results["damage"] == []
    assert results["values"]["accuracy"] == pytest.approx(0.6)
    assert results["values"]["note"] == "ok"
    assert results["values"]["extra"] == {"a": [1, 2]}
    assert math.isnan(results["values"]["loss"])
    steps = [point[0] for point in results["series"]["loss"]]
    assert steps == [1, 2, 3, 10]
    assert [point[1] for point in results["series"]["loss"][:3]] == pytest.approx([1, 0.5, 1 / 3])
    assert "note" not in results["series"]
    assert (done[0] / "artifacts" / "model.txt").read_text() == "weights"
    # The value that could not be stored failed its job, with a message in stderr.
    stderr = (failed[0] / "stderr").read_text()
    assert "ReportError" in stderr and "report(bad=...)" in stderr
    # What was reported before the bad value is kept.
    assert read_results(JobPaths(failed[0]))["values"]["accuracy"] == pytest.approx(0.7)
    env = read_job_environment(JobPaths(done[0]))
    assert env["damage"] == []
    assert env["wall_seconds"] >= 0 and env["cpu_seconds"] > 0
    assert env["peak_memory_bytes"] > 1_000_000
    assert env["code"]["class"] == "Fit" and len(env["code"]["class_sha256"]) == 64
    assert env["code"]["file"] == str(script.path)


def test_read_results_survives_damage(tmp_path: Path) -> None:
    paths = JobPaths(tmp_path)
    assert read_results(paths) == {"values": {}, "series": {}, "damage": []}
    paths.results.write_text("{not json")
    damaged = read_results(paths)
    assert damaged["values"] == {} and damaged["damage"][0].startswith("results.json: not valid")
    paths.results.write_text(
        json.dumps({"values": {"a": 1, "b": "nan"}, "series": {"a": [[1, 1, 2.0], "x"], "c": 3}})
    )
    partial = read_results(paths)
    assert partial["values"] == {"a": 1, "b": "nan"}
    assert partial["series"] == {"a": [[1, 1, 2.0]]}
    assert len(partial["damage"]) == 2
