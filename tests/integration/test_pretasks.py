"""Pre-tasks in real jobs: they run first, in order, in the job process; one that fails
fails the job and the task never runs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from xputil import job_dirs, monitor

from partita.cli import cli

BODY = """
import random

class SetSeed(Config, id="pre.seed"):
    seed: Param[int]
    def execute(self):
        random.seed(self.seed)
        with open("order.txt", "a") as f:
            f.write(f"seed {self.seed} pid {os.getpid()}\\n")

class Note(Config, id="pre.note"):
    text: Param[str]
    def execute(self):
        with open("order.txt", "a") as f:
            f.write(f"note {self.text} pid {os.getpid()}\\n")

class Boom(Config, id="pre.boom"):
    def execute(self):
        raise ValueError("no pretrained weights here")

class Draw(Task, id="pre.draw"):
    n: Param[int] = 1
    def execute(self):
        with open("order.txt", "a") as f:
            f.write(f"task {random.random():.6f} pid {os.getpid()}\\n")

with experiment("wd", "pre"):
    which = sys.argv[1]
    if which == "ok":
        Draw().add_pretasks(SetSeed(seed=7), Note(text="a")).submit()
        Draw().add_pretasks(Note(text="a"), SetSeed(seed=7)).submit()
        Draw().submit()
    else:
        Draw(n=2).add_pretasks(Note(text="b"), Boom()).submit()
"""


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_pretasks_run_first_in_order(script, isolation: str) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    result = xp.run("ok", env={"PARTITA_ISOLATION": isolation})
    assert 0 == result.returncode, result.stderr
    folders = job_dirs(xp.folder / "wd", "pre.draw")
    assert 3 == len(folders)  # the order of pre-tasks counts in the identity
    import random

    random.seed(7)
    expected = f"{random.random():.6f}"
    orders = {}
    for folder in folders:
        lines = (folder / "order.txt").read_text().splitlines()
        pids = {line.rsplit(" ", 1)[1] for line in lines}
        assert 1 == len(pids), lines  # all in the job's own process
        orders[tuple(line.split()[0] for line in lines)] = lines
    assert {("seed", "note", "task"), ("note", "seed", "task"), ("task",)} == set(orders)
    assert expected == orders[("seed", "note", "task")][2].split()[1]
    assert expected == orders[("note", "seed", "task")][2].split()[1]
    # Submitted again: the same jobs, nothing runs.
    before = {f: (f / "order.txt").read_text() for f in folders}
    again = xp.run("ok", env={"PARTITA_ISOLATION": isolation})
    assert 0 == again.returncode, again.stderr
    assert 3 == len(job_dirs(xp.folder / "wd", "pre.draw"))
    assert before == {f: (f / "order.txt").read_text() for f in folders}


def test_failing_pretask_fails_the_job(script) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    result = xp.run("boom")
    assert 0 != result.returncode
    (folder,) = job_dirs(xp.folder / "wd", "pre.draw")
    assert ["note b"] == [
        " ".join(line.split()[:2]) for line in (folder / "order.txt").read_text().splitlines()
    ]
    stderr = (folder / "stderr").read_text()
    assert "partita: pre-task 2 (Boom) of Draw raised ValueError; the task does not run." in stderr
    assert "Traceback (most recent call last)" in stderr
    assert "ValueError: no pretrained weights here" in stderr
    failed = json.loads((folder / "failed").read_text())
    assert "ValueError: no pretrained weights here" == failed["detail"]
    assert not (folder / "done").exists()


def test_jobs_show_lists_pretasks(script) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    assert 0 == xp.run("ok").returncode
    wd = xp.folder / "wd"
    shown = {}
    for folder in job_dirs(wd, "pre.draw"):
        out = CliRunner().invoke(cli, ["jobs", "show", folder.name[:12], "-w", str(wd), "--json"])
        assert 0 == out.exit_code, out.output
        params = json.loads(out.stdout)["params"]
        shown[folder.name] = params.get("pretasks")
        text = CliRunner().invoke(cli, ["jobs", "show", folder.name[:12], "-w", str(wd)]).stdout
        if params.get("pretasks"):
            assert "pretasks[0]" in text and "pretasks[1]" in text
            assert "pretasks[1].text = 'a'" in text or "pretasks[0].text = 'a'" in text
    kinds = sorted(
        [p["$type"] for p in pretasks] if pretasks else [] for pretasks in shown.values()
    )
    assert [[], ["pre.note", "pre.seed"], ["pre.seed", "pre.note"]] == kinds
    seeds = [p for pretasks in shown.values() for p in pretasks or () if p["$type"] == "pre.seed"]
    assert [7, 7] == [p["seed"] for p in seeds]


def test_monitor_job_view_lists_pretasks(script) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    assert 0 == xp.run("ok").returncode
    wd = xp.folder / "wd"
    seen = []
    with monitor(wd, token="t0ken") as client:
        for folder in job_dirs(wd, "pre.draw"):
            params = client.get(f"/api/jobs/{folder.name}").json()["params"]
            seen.append([p["$config"]["type"] for p in params.get("pretasks", [])])
        assert "Pre-tasks (" in client.get("/static/app.js").text
    assert [[], ["pre.note", "pre.seed"], ["pre.seed", "pre.note"]] == sorted(seen)


def test_submit_option_and_bad_pretasks_before_anything_runs(script) -> None:  # type: ignore[no-untyped-def]
    """``submit(pretasks=[...])`` is add_pretasks(); bad pre-tasks fail before any launch."""
    head = BODY[: BODY.index("with experiment")]
    xp = script(
        head
        + """
with experiment("wd", "pre"):
    if sys.argv[1] == "option":
        Draw(n=5).submit(pretasks=[SetSeed(seed=7)])
    else:
        Draw(n=6).submit()
        Draw(n=7).submit(pretasks=[Draw(n=8)])
"""
    )
    assert 0 == xp.run("option").returncode
    (folder,) = job_dirs(xp.folder / "wd", "pre.draw")
    assert ["seed", "task"] == [
        line.split()[0] for line in (folder / "order.txt").read_text().splitlines()
    ]
    bad = xp.run("bad")
    assert 0 != bad.returncode
    assert "PretaskError: Draw.add_pretasks(): pre-task 1 is the task Draw" in bad.stderr
    # The refused task has no job: it was never submitted.
    documents = [
        json.loads((f / "params.json").read_text()) for f in job_dirs(xp.folder / "wd", "pre.draw")
    ]
    numbers = [d["objects"][d["root"]]["fields"].get("n") for d in documents]
    assert 7 not in numbers and 5 in numbers
