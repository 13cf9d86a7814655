"""``partita gc``, ``pin`` and ``unpin`` on a work directory written by real experiment runs.

Several experiments, several runs each, pins, a dependency shared between runs, a damaged
job, and an experiment still running while gc deletes: gc keeps exactly what the policy
says, deletes the rest, and a deleted job runs again when submitted later.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from xputil import Script

from partita.cli import cli
from partita.workspace import JobPaths, RunPaths, Workspace

TASKS = """
class Split(Task, id="gc.split"):
    seed: Param[int]
    def execute(self):
        print("split", self.seed)

class Train(Task, id="gc.train"):
    data: Param[Split]
    lr: Param[int]
    def execute(self):
        print("trained", self.lr)

class Prep(Task, id="gc.prep"):
    n: Param[int]
    def execute(self):
        print("prep", self.n)

class Eval(Task, id="gc.eval"):
    data: Param[Prep]
    def execute(self):
        print("eval")

class Wait(Task, id="gc.wait"):
    model: Param[Train]
    def execute(self):
        print("waiting", flush=True)
        deadline = time.time() + 120
        while not Path(os.environ["GC_RELEASE"]).exists() and time.time() < deadline:
            time.sleep(0.05)
"""

SWEEP = (
    TASKS
    + """
with experiment("wd", "sweep"):
    split = Split(seed=0).submit()
    for lr in sys.argv[1:]:
        Train(data=split, lr=tag(int(lr))).submit()
"""
)

TRIAL = (
    TASKS
    + """
with experiment("wd", "trial"):
    if sys.argv[1] == "old":
        Eval(data=Prep(n=9).submit()).submit()
    else:
        Prep(n=1).submit()
"""
)

LIVE = (
    TASKS
    + """
with experiment("wd", "live"):
    Wait(model=Train(data=Split(seed=0).submit(), lr=tag(2)).submit()).submit()
"""
)

DAY = 86400.0


def invoke(*args: Any, code: int = 0) -> Result:
    """Run ``partita ARGS`` in-process; check the exit code and that nothing crashed."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert code == result.exit_code, result.output
    return result


def as_json(*args: Any) -> Any:
    return json.loads(invoke(*args, "--json").stdout)


def jobs_by(wd: Path, task: str, key: str) -> dict[Any, dict[str, Any]]:
    """The jobs of one task by the value of one of their tags (or parameters)."""
    out = {}
    for job in as_json("jobs", "list", wd, "--task", task):
        out[job["tags"].get(key)] = job
    return out


def runs_of(wd: Path, experiment: str) -> list[RunPaths]:
    """Run folders of an experiment, oldest first."""
    folders = sorted((wd / "experiments" / experiment / "runs").iterdir())
    runs = [RunPaths(folder) for folder in folders]
    return sorted(runs, key=lambda r: json.loads(r.record.read_text())["started"])


def age(run: RunPaths, days: float) -> None:
    """Make a finished run look ``days`` old (its record says when it started)."""
    record = json.loads(run.record.read_text())
    shift = record["started"] - (time.time() - days * DAY)
    record["started"] -= shift
    record["ended"] -= shift
    run.record.write_text(json.dumps(record))


def run_ok(script: Script, *args: str) -> None:
    result = script.run(*args)
    assert 0 == result.returncode, result.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> dict[str, Any]:
    """sweep: 4 runs (60, 40, 10 days old, now); trial: 2 runs (50 days old, now)."""
    sweep = Script(tmp_path, "sweep", SWEEP)
    trial = Script(tmp_path, "trial", TRIAL)
    for args in (["1"], ["2", "22", "23"], ["3"], ["4"]):
        run_ok(sweep, *args)
    run_ok(trial, "old")
    run_ok(trial, "new")
    wd = tmp_path / "wd"
    sweep_runs, trial_runs = runs_of(wd, "sweep"), runs_of(wd, "trial")
    for run, days in zip(sweep_runs, (60, 40, 10), strict=False):
        age(run, days)
    age(trial_runs[0], 50)
    return {"wd": wd, "sweep": sweep, "tmp": tmp_path, "runs": sweep_runs, "trial": trial_runs}


def test_gc_keeps_exactly_what_the_policy_says(workdir: dict[str, Any]) -> None:
    wd, tmp = workdir["wd"], workdir["tmp"]
    r1, r2, r3, r4 = workdir["runs"]
    t1, t2 = workdir["trial"]
    trains = jobs_by(wd, "gc.train", "lr")
    (evaluate,) = as_json("jobs", "list", wd, "--task", "gc.eval")
    (split,) = as_json("jobs", "list", wd, "--task", "gc.split")

    # Pins: the oldest sweep run, and the evaluation of the old trial run (the run itself
    # is dropped from history; the job and its input stay).
    assert "nothing is pinned" in invoke("pin", "-w", wd).stdout
    # By a prefix of its id: the shortest that names no other run (runs started in the
    # same second share the date, time and maybe the first characters after them).
    prefix = next(
        r1.run[:n]
        for n in range(16, len(r1.run) + 1)
        if not any(other.run.startswith(r1.run[:n]) for other in (r2, r3, r4))
    )
    invoke("pin", f"sweep/{prefix}", evaluate["short"], "-w", wd)
    pins = as_json("pin", "-w", wd)
    assert {"runs": [f"sweep/{r1.run}"], "jobs": [evaluate["id"]]} == pins
    # Pinning the latest run by the experiment's name, and unpinning it again.
    assert f"sweep/{r4.run}" in as_json("pin", "sweep", "-w", wd)["runs"]
    assert [f"sweep/{r1.run}"] == as_json("unpin", f"sweep/{r4.run}", "-w", wd)["runs"]

    # A damaged job of a run the policy drops: listed, kept.
    damaged = JobPaths(wd / "jobs" / "gc.train" / trains[23]["id"])
    damaged.done.unlink()
    damaged.state.write_text("{not json")

    # Another experiment runs while gc works; it reuses Train(lr=2) of the dropped run.
    release = tmp / "release"
    live = Script(tmp, "live", LIVE).popen(env={"GC_RELEASE": str(release)})
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if (wd / "jobs" / "gc.wait").is_dir() and as_json(
                "jobs", "list", wd, "--task", "gc.wait", "--state", "running"
            ):
                break
            assert live.poll() is None, live.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the live experiment's job did not start")

        invoke("gc", "--keep-last", "1", "--keep-days", "20", "--set-default", "-w", wd)
        stored = json.loads(Workspace(wd).retention.read_text())
        assert (1, 20) == (stored["keep_last"], stored["keep_days"])

        dry = as_json("gc", "-w", wd)
        assert not dry["deleted"]
        assert [trains[22]["id"]] == [job["id"] for job in dry["jobs"]]
        assert {f"sweep/{r2.run}", f"trial/{t1.run}"} == set(dry["runs"])
        assert dry["by_task"]["gc.train"]["delete"] == 1
        assert dry["by_task"]["gc.train"]["bytes"] > 0
        assert dry["by_task"]["gc.train"]["keep"] == 5
        assert dry["by_task"]["gc.split"] == {"delete": 0, "bytes": 0, "keep": 1}
        kept = dry["kept_jobs"]
        assert "still running" in kept[trains[2]["id"]]
        assert "pinned" == kept[evaluate["id"]]
        preps = sorted(kept[job["id"]] for job in as_json("jobs", "list", wd, "--task", "gc.prep"))
        assert preps[0].startswith(f"a dependency of gc.eval/{evaluate['short']}"), preps
        assert preps[1].startswith(f"submitted by run trial/{t2.run} (the latest run of"), preps
        assert any(trains[23]["id"][:12] in line for line in dry["damage"])
        text = invoke("gc", "-w", wd).stdout
        assert "dry run: nothing deleted" in text
        assert "gc.train" in text and "damaged" in text
        assert (wd / "jobs" / "gc.train" / trains[22]["id"]).is_dir()

        # A leftover of an interrupted deletion is swept.
        leftover = wd / ".deleting-job-gc.train-0000"
        (leftover / "sub").mkdir(parents=True)

        done = as_json("gc", "--yes", "-w", wd)
        assert done["deleted"]
        assert [trains[22]["id"]] == [job["id"] for job in done["jobs"]]
        assert not leftover.exists()
        assert not (wd / "jobs" / "gc.train" / trains[22]["id"]).exists()
        assert not r2.root.exists() and not t1.root.exists()
        for run in (r1, r3, r4, t2):
            assert run.root.is_dir(), run
        left = {job["id"] for job in as_json("jobs", "list", wd)}
        expected = {job["id"] for lr, job in trains.items() if lr != 22}
        expected |= {split["id"], evaluate["id"]}
        expected |= {job["id"] for job in as_json("jobs", "list", wd, "--task", "gc.prep")}
        expected |= {job["id"] for job in as_json("jobs", "list", wd, "--task", "gc.wait")}
        assert expected == left
        # Both Preps stay: n=9 because the pinned evaluation needs it, n=1 by its run.
        assert 2 == len(as_json("jobs", "list", wd, "--task", "gc.prep"))
        assert not [d for d in (wd).iterdir() if d.name.startswith(".deleting-")]
        assert "running" == as_json("jobs", "list", wd, "--task", "gc.wait")[0]["state"]
    finally:
        release.touch()
        _, err = live.communicate(timeout=60)
    assert 0 == live.returncode, err

    # Nothing more to delete under the same policy, once the live run has ended.
    again = as_json("gc", "-w", wd)
    assert [] == again["runs"] and [] == again["jobs"]

    # A deleted job simply runs again when submitted later.
    run_ok(workdir["sweep"], "2", "22")
    rerun = jobs_by(wd, "gc.train", "lr")[22]
    assert rerun["id"] == trains[22]["id"] and rerun["state"] == "done"
    stdout = JobPaths(wd / "jobs" / "gc.train" / rerun["id"]).stdout.read_text()
    assert "trained 22" in stdout


def test_gc_refuses_damaged_settings(workdir: dict[str, Any]) -> None:
    wd = workdir["wd"]
    Workspace(wd).retention.write_text("[1, 2")
    result = invoke("gc", "--yes", "-w", wd, code=1)
    assert "retention settings" in result.output and "cannot be read" in result.output
    assert 4 == len(list((wd / "experiments" / "sweep" / "runs").iterdir()))


def test_pin_of_what_does_not_exist_exits_1_like_other_lookups(
    workdir: dict[str, Any],
) -> None:
    """No run or job matches: exit code 1 (as 'jobs show' and 'explain'); 2 is for a wrong
    command line."""
    wd = workdir["wd"]
    for reference in ("nope", "sweep/zzzz", "0000ffff"):
        out = invoke("pin", reference, "-w", wd, code=1)
        assert out.output.startswith("error: "), out.output
    invoke("jobs", "show", "0000ffff", "-w", wd, code=1)
    assert "nothing is pinned" in invoke("pin", "-w", wd).stdout
    invoke("unpin", "sweep/zzzz", "-w", wd, code=1)


def test_clean_keeps_pins(workdir: dict[str, Any]) -> None:
    """'jobs clean' shares gc's protection: pinned jobs stay."""
    wd = workdir["wd"]
    trains = jobs_by(wd, "gc.train", "lr")
    invoke("pin", trains[22]["short"], "-w", wd)
    out = invoke("jobs", "clean", "--task", "gc.train", "--yes", "-w", wd).stdout
    assert f"gc.train/{trains[22]['short']} (done): pinned" in out
    assert (wd / "jobs" / "gc.train" / trains[22]["id"]).is_dir()
    assert not (wd / "jobs" / "gc.train" / trains[23]["id"]).exists()
