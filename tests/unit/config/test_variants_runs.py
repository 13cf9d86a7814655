"""Variants and identity controls seen through real experiment runs (job processes, files)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from varclasses import Box, Data, Fit, Holder, Layer, Model

import partita
from partita import distinct, experiment, ignore
from partita.cli import cli
from partita.errors import ConfigTypeError
from partita.web._data import render_params
from partita.workspace import JobPaths, Workspace

HERE = Path(__file__).resolve().parent
SRC = Path(partita.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _job_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job processes import the test classes and these sources."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(SRC)]))
    monkeypatch.setenv("PARTITA_NO_LIVE", "1")


def run(workdir: Path, name: str = "xp") -> experiment:  # type: ignore[valid-type]
    return experiment(workdir, name, quiet=True, stream=io.StringIO())


def model() -> Model:
    return Model(encoder=Layer(units=8), decoder=Layer(units=4))


def out(task: Fit) -> dict[str, object]:
    return json.loads((task.jobdir / "out.json").read_text())  # type: ignore[no-any-return]


def jobs(workdir: Path, type_id: str) -> list[Path]:
    folder = workdir / "jobs" / type_id
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_replaced_variant_runs_as_a_new_job_and_the_original_is_reused(tmp_path: Path) -> None:
    with run(tmp_path):
        original = Fit(model=model(), lr=0.1).submit()
    first_done = (original.jobdir / "out.json").stat().st_mtime_ns
    with run(tmp_path, "again"):
        reused = Fit(model=model(), lr=0.1).submit()
        variant = original.replace(lr=0.2, **{"model.layers": 3}).submit()
    assert reused.jobdir == original.jobdir
    assert (original.jobdir / "out.json").stat().st_mtime_ns == first_done  # not run again
    assert variant.jobdir != original.jobdir
    assert sorted(jobs(tmp_path, "var.fit")) == sorted([original.jobdir, variant.jobdir])
    assert out(original)["summary"] == "2x8@0.1"
    assert out(variant)["summary"] == "3x8@0.2"
    assert original.lr == 0.1 and original.model.layers == 2  # untouched


def test_post_init_state_is_rebuilt_in_the_job_process(tmp_path: Path) -> None:
    with run(tmp_path):
        task = Fit(model=model(), lr=0.5).submit()
    # "summary" is set by __post_init__ only: the job process rebuilt it after the load
    assert out(task)["summary"] == "2x8@0.5"
    assert b"summary" not in (task.jobdir / "params.json").read_bytes()
    assert partita.load(task.jobdir).summary == "2x8@0.5"  # type: ignore[attr-defined]


def test_an_ignored_instance_does_not_change_the_job_folder(tmp_path: Path) -> None:
    data = Data(name="train")
    with run(tmp_path):
        plain = Fit(model=model(), data=data).submit()
    with run(tmp_path, "validated"):
        validated = Fit(model=model(), data=data, validation=ignore(Data(name="v1"))).submit()
    assert validated.jobdir == plain.jobdir
    assert jobs(tmp_path, "var.fit") == [plain.jobdir]
    # a job not yet run gets the ignored instance in its process
    with run(tmp_path, "fresh"):
        fresh = Fit(model=model(), lr=0.3, validation=ignore(Data(name="v2"))).submit()
    assert fresh.jobdir == Fit(model=model(), lr=0.3).jobdir
    assert out(fresh)["validation"] == "v2"
    assert out(fresh)["ignored"] == ["validation"]
    assert JobPaths(fresh.jobdir).params.exists()
    loaded = partita.load(fresh.jobdir)
    assert loaded.validation.name == "v2"  # type: ignore[attr-defined]
    shown = CliRunner().invoke(cli, ["jobs", "show", fresh.jobdir.name[:12], "-w", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    lines = [line.strip() for line in shown.output.splitlines()]
    assert any(line.startswith("validation.name") and "(ignored)" in line for line in lines)
    assert not any(line.startswith("lr") and "(ignored)" in line for line in lines)
    # the monitor's tree of the parameters says it too
    document = json.loads((fresh.jobdir / "params.json").read_text())
    tree = render_params(document, Workspace(tmp_path, create=False))
    assert tree["ignored"] == ["validation"]
    assert tree["fields"]["validation"]["$config"]["fields"] == {"name": "v2"}


def test_distinct_instances_stay_two_objects_in_the_job_process(tmp_path: Path) -> None:
    untied = Model(encoder=distinct(Layer(), "enc"), decoder=distinct(Layer(), "dec"))
    with run(tmp_path):
        tied_job = Fit(model=Model(encoder=Layer(), decoder=Layer())).submit()
        untied_job = Fit(model=untied).submit()
    assert untied_job.jobdir != tied_job.jobdir
    assert out(tied_job)["tied"] is True
    assert out(untied_job)["tied"] is False
    assert out(untied_job)["encoder"] == "enc"
    document = json.loads((untied_job.jobdir / "params.json").read_text())
    tree = render_params(document, Workspace(tmp_path, create=False))
    held = tree["fields"]["model"]["$config"]["fields"]
    assert held["encoder"]["$config"]["instance"] == "enc"
    assert held["decoder"]["$config"]["instance"] == "dec"


def test_a_task_holding_a_bound_generic_config_runs(tmp_path: Path) -> None:
    with run(tmp_path):
        task = Holder(box=Box[float](item=2)).submit()
    assert (task.jobdir / "item.txt").read_text() == "2.0"
    assert task.jobdir == Holder(box=Box(item=2.0)).jobdir


def test_a_bound_box_changed_after_it_was_given_is_refused_before_launch(tmp_path: Path) -> None:
    box = Box(item=2.0)
    task = Holder(box=box)  # checked as Box[float] here
    box.item = "two"  # a plain Box takes anything
    with run(tmp_path):
        with pytest.raises(ConfigTypeError, match=r"Holder.box.item: expected float") as e:
            task.submit()
        assert "changed after it was given to Holder.box" in str(e.value)
        assert "Box[float](...)" in str(e.value)
        assert jobs(tmp_path, "var.holder") == []  # nothing launched
        box.item = 3.0
        done = task.submit()
    assert (done.jobdir / "item.txt").read_text() == "3.0"
