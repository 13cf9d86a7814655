"""Shared folders with real jobs: resuming from a shorter training, the lock, and gc.

A ``Train`` declares ``shared={"checkpoints": ("max_epochs",)}``: the 10-epoch and the
20-epoch trainings share one checkpoint folder, so the second continues from the first's
checkpoint. Two trainings of one group running at once never hold the folder together.
``partita gc`` keeps a shared folder while a job that stays refers to it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from xputil import Script, job_dirs

from partita.cli import cli

TASKS = """
class Train(Task, id="sh.train", shared={"checkpoints": ("max_epochs", "hold")}):
    lr: Param[float]
    max_epochs: Param[int]
    hold: Param[float] = 0.0
    def execute(self):
        started = os.environ.get("SH_STARTED")
        if started:  # say that this job runs, before it waits for the folder
            Path(started, str(self.max_epochs)).write_text(str(time.time()))
        with self.shared("checkpoints") as folder:
            log = folder / "log.jsonl"
            entered = time.time()
            checkpoint = folder / "epoch.txt"
            start = int(checkpoint.read_text()) if checkpoint.exists() else 0
            for epoch in range(start, self.max_epochs):
                pass  # one epoch of training
            checkpoint.write_text(str(max(start, self.max_epochs)))
            print("resumed from", start, "trained to", max(start, self.max_epochs))
            if self.hold:
                # Hold the folder until every job of the test runs (one waits for the lock).
                deadline = time.time() + self.hold
                expected = int(os.environ["SH_EXPECT"])
                while time.time() < deadline and len(os.listdir(started)) < expected:
                    time.sleep(0.02)
                time.sleep(0.1)
            with log.open("a") as f:
                f.write(json.dumps({"job": self.max_epochs, "enter": entered,
                                    "exit": time.time()}) + "\\n")
"""


def _script(tmp_path: Path, body: str) -> Script:
    return Script(tmp_path, "shared_xp", TASKS + body)


def _stdout(workdir: Path, max_epochs: int) -> str:
    for folder in job_dirs(workdir, "sh.train"):
        text = json.dumps(json.loads((folder / "params.json").read_text()))
        if f'"max_epochs": {max_epochs}' in text:
            return (folder / "stdout").read_text()
    raise AssertionError(f"no job with max_epochs={max_epochs}")


def test_twenty_epochs_resume_from_the_ten_epoch_checkpoint(tmp_path: Path) -> None:
    first = _script(
        tmp_path,
        """
with experiment("wd", "train"):
    Train(lr=0.1, max_epochs=int(sys.argv[1])).submit()
""",
    )
    done = first.run("10")
    assert done.returncode == 0, done.stderr
    wd = tmp_path / "wd"
    folders = list((wd / "shared" / "sh.train" / "checkpoints").iterdir())
    shared = [f for f in folders if f.is_dir()]
    assert len(shared) == 1
    assert (shared[0] / "epoch.txt").read_text() == "10"
    assert "resumed from 0 trained to 10" in _stdout(wd, 10)

    again = first.run("20")
    assert again.returncode == 0, again.stderr
    assert "resumed from 10 trained to 20" in _stdout(wd, 20)
    assert (shared[0] / "epoch.txt").read_text() == "20"
    assert [f for f in (wd / "shared" / "sh.train" / "checkpoints").iterdir() if f.is_dir()] == (
        shared
    )
    assert len(job_dirs(wd, "sh.train")) == 2

    # Another learning rate is another folder: it starts from scratch.
    other = _script(
        tmp_path,
        """
with experiment("wd", "train"):
    Train(lr=0.5, max_epochs=20).submit()
""",
    )
    assert other.run().returncode == 0
    assert "resumed from 0 trained to 20" in next(
        (f / "stdout").read_text()
        for f in job_dirs(wd, "sh.train")
        if "0.5" in (f / "params.json").read_text()
    )
    assert (
        len([f for f in (wd / "shared" / "sh.train" / "checkpoints").iterdir() if f.is_dir()]) == 2
    )


def test_two_jobs_of_a_group_never_hold_the_folder_at_once(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
with experiment("wd", "pair", max_jobs=2):
    Train(lr=0.1, max_epochs=5, hold=60.0).submit()
    Train(lr=0.1, max_epochs=7, hold=60.0).submit()
""",
    )
    started = tmp_path / "started"
    started.mkdir()
    result = script.run(env={"SH_STARTED": str(started), "SH_EXPECT": "2"})
    assert result.returncode == 0, result.stderr
    wd = tmp_path / "wd"
    (folder,) = [f for f in (wd / "shared" / "sh.train" / "checkpoints").iterdir() if f.is_dir()]
    spans = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    assert sorted(s["job"] for s in spans) == [5, 7]
    first, second = sorted(spans, key=lambda s: s["enter"])
    # The second entered only after the first left: the lock kept them apart.
    assert second["enter"] >= first["exit"], spans
    # Both jobs really ran at the same time (the second waited on the lock, not on a slot).
    starts = [float(p.read_text()) for p in started.iterdir()]
    assert len(starts) == 2
    assert max(starts) < first["exit"], (starts, spans)


def test_gc_keeps_a_shared_folder_while_a_job_refers_to_it(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
with experiment("wd", sys.argv[1]):
    Train(lr=float(sys.argv[2]), max_epochs=3).submit()
""",
    )
    assert script.run("a", "0.1").returncode == 0
    assert script.run("b", "0.2").returncode == 0
    wd = tmp_path / "wd"
    group = wd / "shared" / "sh.train" / "checkpoints"
    assert len([f for f in group.iterdir() if f.is_dir()]) == 2
    refs = {json.loads((job / "shared.json").read_text())[0] for job in job_dirs(wd, "sh.train")}
    assert refs == {f.relative_to(wd).as_posix() for f in group.iterdir() if f.is_dir()}
    runner = CliRunner()
    some = job_dirs(wd, "sh.train")[0]
    shown = runner.invoke(cli, ["jobs", "show", some.name[:12], "--workdir", str(wd)])
    assert json.loads((some / "shared.json").read_text())[0] in "".join(shown.output.split())
    # Nothing is doomed: both runs are kept, so are their jobs and shared folders.
    listing = runner.invoke(cli, ["gc", "--json", "--workdir", str(wd)])
    assert listing.exit_code == 0, listing.output
    assert json.loads(listing.output)["shared"] == []
    # Drop experiment a's run: its job goes, and the shared folder only it used goes too.
    (only_a,) = [
        job for job in job_dirs(wd, "sh.train") if "0.1" in (job / "params.json").read_text()
    ]
    kept_folder = (
        wd
        / json.loads(
            next(
                (job / "shared.json").read_text()
                for job in job_dirs(wd, "sh.train")
                if job != only_a
            )
        )[0]
    )
    a_folder = wd / json.loads((only_a / "shared.json").read_text())[0]
    runner.invoke(cli, ["pin", "b", "--workdir", str(wd)])
    deleted = runner.invoke(
        cli, ["gc", "--keep-last", "0", "--keep-days", "0", "--yes", "--json", "--workdir", str(wd)]
    )
    assert deleted.exit_code == 0, deleted.output
    report = json.loads(deleted.output)
    assert len(report["shared"]) == 1
    assert not only_a.exists()
    assert not a_folder.exists()
    assert not a_folder.with_name(a_folder.name + ".lock").exists()
    assert (kept_folder / "epoch.txt").read_text() == "3"


def test_gc_and_clean_count_the_space_of_shared_folders(tmp_path: Path) -> None:
    """Checkpoints live in shared folders: what gc and jobs clean free includes them."""
    script = _script(
        tmp_path,
        """
with experiment("wd", sys.argv[1]):
    Train(lr=float(sys.argv[2]), max_epochs=3).submit()
""",
    )
    assert script.run("a", "0.1").returncode == 0
    assert script.run("b", "0.2").returncode == 0
    wd = tmp_path / "wd"
    (only_a,) = [
        job for job in job_dirs(wd, "sh.train") if "0.1" in (job / "params.json").read_text()
    ]
    a_folder = wd / json.loads((only_a / "shared.json").read_text())[0]
    (a_folder / "weights.bin").write_bytes(b"\0" * 300_000)  # a checkpoint of 300 kB
    runner = CliRunner()
    wdir = ["--workdir", str(wd)]
    dry = runner.invoke(cli, ["jobs", "clean", only_a.name[:12], "--include-referenced", *wdir])
    assert dry.exit_code == 0, dry.output
    assert re.search(r"checkpoints/\w+  300\.\d kB", dry.output), dry.output
    assert re.search(r"delete 1 job and 1 shared folder \(30\d\.\d kB\)", dry.output)
    listed = runner.invoke(
        cli, ["jobs", "clean", only_a.name[:12], "--include-referenced", "--json", *wdir]
    )
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    assert report["deleted"] is False
    assert [job["id"] for job in report["jobs"]] == [only_a.name]
    assert report["jobs"][0]["bytes"] > 0 and report["jobs"][0]["state"] == "done"
    assert len(report["shared"]) == 1 and report["shared_bytes"] >= 300_000
    assert report["bytes"] < 300_000 and report["kept"] == []
    assert only_a.exists() and a_folder.exists()  # a dry run
    gc_dry = runner.invoke(cli, ["gc", "--json", *wdir])
    assert json.loads(gc_dry.output)["shared_bytes"] == 0  # both runs are recent: kept
    gone = runner.invoke(
        cli, ["jobs", "clean", only_a.name[:12], "--include-referenced", "--yes", "--json", *wdir]
    )
    assert gone.exit_code == 0, gone.output
    report = json.loads(gone.output)
    assert report["deleted"] is True and report["shared_bytes"] >= 300_000
    assert not only_a.exists() and not a_folder.exists()
    # gc: the other experiment's folder, once its run is dropped, with its size.
    (b_job,) = job_dirs(wd, "sh.train")
    b_folder = wd / json.loads((b_job / "shared.json").read_text())[0]
    (b_folder / "weights.bin").write_bytes(b"\0" * 200_000)
    text = runner.invoke(cli, ["gc", "--keep-last", "0", "--keep-days", "0", *wdir])
    assert text.exit_code == 0, text.output
    assert re.search(r"checkpoints/\w+  200\.\d kB", text.output), text.output
    assert re.search(r"2 runs and 1 shared folder \(20\d\.\d kB\)", text.output), text.output
    deleted = runner.invoke(
        cli, ["gc", "--keep-last", "0", "--keep-days", "0", "--yes", "--json", *wdir]
    )
    report = json.loads(deleted.output)
    assert report["shared_bytes"] >= 200_000 and not b_folder.exists()
