"""``partita.publish`` and the outputs record: what is stored, how readers see it (in-process)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import partita
from partita import Config, Param, Task, _publish
from partita.config import _runtime
from partita.errors import ReportError
from partita.scheduler._outputs import output_value
from partita.workspace import JobPaths, OutputCursor, Workspace, read_outputs


class Ckpt(Config):
    path: Param[Path]
    epoch: Param[int]


class Score(Task, id="test.publish.score"):
    checkpoint: Param[Ckpt]


class Trainer(Task, id="test.publish.trainer"):
    seed: Param[int]


@pytest.fixture
def job(tmp_path: Path) -> Iterator[JobPaths]:
    workspace = Workspace(tmp_path / "wd")
    paths = workspace.job("test.publish.trainer", "0" * 64)
    paths.root.mkdir(parents=True)
    _runtime.set_current_workspace(workspace.root)
    _publish._set_target(paths)
    yield paths
    _publish._set_target(None)
    _runtime.set_current_workspace(None)


def test_each_publish_is_one_line_on_disk(job: JobPaths) -> None:
    partita.publish("checkpoint", Ckpt(path=job.root / "a.pt", epoch=1))
    Trainer(seed=1).publish("loss", 0.5)
    lines = job.outputs.read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["checkpoint", "loss"]
    entries = read_outputs(job)
    assert [e["seq"] for e in entries] == [1, 2]
    assert entries[1]["value"] == 0.5
    workspace = job.root.parent.parent.parent
    ckpt = output_value(entries[0], workspace)
    assert isinstance(ckpt, Ckpt) and ckpt.epoch == 1 and ckpt.path == job.root / "a.pt"


def test_a_published_config_gives_tasks_the_identity_of_the_original(job: JobPaths) -> None:
    original = Ckpt(path=job.root / "epoch3.pt", epoch=3)
    partita.publish("checkpoint", original)
    (entry,) = read_outputs(job)
    reloaded = output_value(entry, job.root.parent.parent.parent)
    assert partita.identifier(Score(checkpoint=reloaded)) == partita.identifier(
        Score(checkpoint=Ckpt(path=job.root / "epoch3.pt", epoch=3))
    )


def test_same_value_twice_has_the_same_key(job: JobPaths) -> None:
    partita.publish("checkpoint", Ckpt(path=job.root / "a.pt", epoch=1))
    partita.publish("checkpoint", Ckpt(path=job.root / "a.pt", epoch=1))
    partita.publish("checkpoint", Ckpt(path=job.root / "a.pt", epoch=2))
    keys = [e["key"] for e in read_outputs(job)]
    assert keys[0] == keys[1] != keys[2]


def test_bad_values_are_refused_inside_the_job(job: JobPaths) -> None:
    with pytest.raises(ReportError, match="expected a Config"):
        partita.publish("model", object())
    with pytest.raises(ReportError, match="expected a name"):
        partita.publish("", 1)
    assert not job.outputs.exists()


def test_cursor_reads_only_whole_new_lines(tmp_path: Path) -> None:
    paths = JobPaths(tmp_path)
    cursor = OutputCursor(paths)
    assert cursor.read_new() == []
    line = json.dumps({"name": "a", "key": "k1", "seq": 1})
    paths.outputs.write_text(line + "\n" + '{"name": "a", "key": "k2"')  # second cut short
    assert [e["key"] for e in cursor.read_new()] == ["k1"]
    assert cursor.read_new() == []
    with open(paths.outputs, "a") as file:
        file.write(', "seq": 2}\n')
    assert [e["key"] for e in cursor.read_new()] == ["k2"]


def test_an_append_after_a_cut_line_starts_a_new_line(tmp_path: Path) -> None:
    from partita.workspace._outputs import append_output

    paths = JobPaths(tmp_path)
    paths.outputs.write_text('{"name": "a", "key": "k1"}\n{"name": "a", "ke')  # a writer died
    cursor = OutputCursor(paths)
    assert [e["key"] for e in cursor.read_new()] == ["k1"]
    append_output(paths, {"name": "a", "key": "k3", "seq": 3})
    assert [e["key"] for e in cursor.read_new()] == ["k3"]
    assert cursor.damaged == 1


def test_cursor_starts_over_on_a_new_file(tmp_path: Path) -> None:
    """A new attempt (not resumable) sets the old file aside: the new one is read whole."""
    paths = JobPaths(tmp_path)
    paths.outputs.write_text(json.dumps({"name": "a", "key": "old"}) + "\n")
    cursor = OutputCursor(paths)
    assert [e["key"] for e in cursor.read_new()] == ["old"]
    os.replace(paths.outputs, tmp_path / "aside")
    paths.outputs.write_text(json.dumps({"name": "a", "key": "new"}) + "\n")
    assert [e["key"] for e in cursor.read_new()] == ["new"]


def test_a_later_attempt_numbers_on(job: JobPaths) -> None:
    """A ResumableTask's next attempt keeps the record: its outputs follow the earlier ones."""
    partita.publish("loss", 0.5)
    partita.publish("loss", 0.25)
    _publish._set_target(job)  # what the runner does at the start of the next attempt
    partita.publish("loss", 0.125)
    assert [e["seq"] for e in read_outputs(job)] == [1, 2, 3]
