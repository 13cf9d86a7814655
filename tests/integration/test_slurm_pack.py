"""Packed arrays on the real private Slurm cluster: several tasks per array element."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from xputil import Script, job_dirs, job_printing, launcher_stats, wait_for

pytestmark = pytest.mark.slurm


def _state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "state.json").read_text())


def _history(folder: Path) -> list[tuple[str, str | None]]:
    return [(h["state"], h.get("reason")) for h in _state(folder)["history"]]


NOOPS = """
from partita import SlurmLauncher

class Noop(Task, id="pack.noop"):
    n: Param[int]
    def execute(self):
        element = os.environ["SLURM_ARRAY_JOB_ID"] + "_" + os.environ["SLURM_ARRAY_TASK_ID"]
        print(self.n, element, os.getpid())

launcher = SlurmLauncher(time="5:00", mem="100M", pack=8, batch_quiet=1.0, batch_longest=30)
with experiment("wd", "noops", launcher=launcher, quiet=True):
    for n in range(24):
        Noop(n=n).submit()
print(json.dumps({**launcher.statistics(), "batches": launcher.batch_sizes}))
"""


def test_many_noops_packed_into_few_elements_then_nothing_on_rerun(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """24 no-op tasks with pack=8: one sbatch, 3 elements, each task done in its own process."""
    xp: Script = script(NOOPS)
    result = xp.run(timeout=180)
    assert 0 == result.returncode, result.stderr
    stats = launcher_stats(result)
    assert 1 == stats["sbatch"], stats
    folders = job_dirs(xp.folder / "wd", "pack.noop")
    assert 24 == len(folders)
    elements, pids = set(), set()
    for folder in folders:
        assert (folder / "done").exists(), folder
        handle = _state(folder)["launcher"]
        elements.add(handle["job_id"])
        n, element, pid = (folder / "stdout").read_text().split()
        params = json.loads((folder / "params.json").read_text())
        assert int(n) == params["objects"][0]["fields"]["n"]
        assert element == handle["job_id"]  # followed as the element it ran in
        pids.add(pid)
        assert [("running", None), ("done", None)] == _history(folder)[-2:]
    assert 3 == len(elements), elements
    assert 24 == len(pids), "each task runs in a process of its own"
    again = xp.run(timeout=60)
    assert 0 == again.returncode, again.stderr
    assert 0 == launcher_stats(again).get("sbatch", 0)
    for folder in folders:
        assert 1 == sum(1 for h in _history(folder) if h[0] == "running"), "ran exactly once"


def test_failure_and_timeout_inside_a_pack_stay_with_their_task(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """In one element: a task that raises fails `error`, one over its time fails `timeout`."""
    xp: Script = script("""
    from partita import SlurmLauncher

    class Work(Task, id="pack.work"):
        n: Param[int]
        def execute(self):
            print("start", self.n, flush=True)
            if self.n == 1:
                raise ValueError("task 1 fails")
            if self.n == 3:
                time.sleep(300)   # far over its 3 s
            print("end", self.n, flush=True)

    launcher = SlurmLauncher(time="5:00", mem="100M", pack=6, batch_quiet=1.0, batch_longest=30)
    with experiment("wd", "mixed", launcher=launcher, quiet=True):
        for n in range(6):
            Work(n=n).submit(resources={"time": "3s"})
    """)
    result = xp.run(timeout=180)
    assert 1 == result.returncode, result.stderr
    outcomes = {}
    for folder in job_dirs(xp.folder / "wd", "pack.work"):
        n = json.loads((folder / "params.json").read_text())["objects"][0]["fields"]["n"]
        outcomes[n] = _history(folder)[-1]
        if n == 3:
            marker = json.loads((folder / "failed").read_text())
            assert "time limit" in marker["detail"], marker
        if n == 1:
            assert "ValueError: task 1 fails" in (folder / "stderr").read_text()
    assert {
        0: ("done", None),
        1: ("failed", "error"),
        2: ("done", None),
        3: ("failed", "timeout"),
        4: ("done", None),
        5: ("done", None),
    } == outcomes
    elements = {_state(f)["launcher"]["job_id"] for f in job_dirs(xp.folder / "wd", "pack.work")}
    assert 1 == len(elements), "all six ran in one element"


BLOCKING = """
from partita import SlurmLauncher, Retry
SHARED = Path(os.environ["PACK_SHARED"])

def claim(name):
    try:
        os.close(os.open(SHARED / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False

class Step(Task, id="pack.step"):
    n: Param[int]
    def execute(self):
        finished = SHARED / "finished"
        finished.mkdir(exist_ok=True)
        attempt = int(os.environ["PARTITA_ATTEMPT"])
        free = int(os.environ["PACK_FREE"])
        if attempt == 1 and len(list(finished.iterdir())) >= free and claim("blocker"):
            # The first tasks of the element finish; the next one blocks until stopped.
            print("blocking", os.getpid(), os.getppid(), flush=True)
            while True:
                time.sleep(0.1)
        print("finished", attempt, flush=True)
        (finished / str(self.n)).touch()

launcher = SlurmLauncher(time="5:00", mem="100M", pack=6, batch_quiet=1.0, batch_longest=30)
with experiment("wd", "blocking", launcher=launcher, quiet=True):
    for n in range(6):
        Step(n=n).submit(retries=Retry(count=1, on={"lost"}))
"""


def test_scancel_of_a_worker_loses_only_its_unfinished_tasks(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """scancel of an element mid-pack: finished tasks stay done, the others are lost, retried."""
    xp: Script = script(BLOCKING)
    shared = xp.folder / "shared"
    shared.mkdir()
    proc = xp.popen(env={"PACK_SHARED": str(shared), "PACK_FREE": "2"})
    workdir = xp.folder / "wd"
    blocked = wait_for(
        lambda: job_printing(workdir, "pack.step", "blocking"), 120, "a task of the pack to block"
    )
    element = _state(blocked)["launcher"]["job_id"]
    subprocess.run(["scancel", element], check=True, env=os.environ)
    _, err = proc.communicate(timeout=180)
    assert 0 == proc.returncode, err
    histories = {f.name: _history(f) for f in job_dirs(workdir, "pack.step")}
    assert 6 == len(histories)
    once = [h for h in histories.values() if h == [("running", None), ("done", None)]]
    assert 2 == len(once), histories  # finished before the scancel: never run again
    lost = [f for f, h in histories.items() if ("failed", "lost") in h]
    assert [blocked.name] == lost, histories  # lost, retried (Retry(on={"lost"}))
    assert [("running", None), ("done", None)] == histories[lost[0]][-2:]
    assert 2 == sum(1 for h in histories[lost[0]] if h[0] == "running")
    # The three never started: launched again without counting a failed attempt.
    requeued = [h for h in histories.values() if ("cancelled", None) in h]
    assert 3 == len(requeued), histories
    for history in requeued:
        assert [("cancelled", None), ("running", None), ("done", None)] == history[-3:], history
    # The blocked task ran twice (its log keeps only the second attempt); the others once.
    assert "finished 2" in (blocked / "stdout").read_text()
    assert 6 == len(list((shared / "finished").iterdir()))


def test_jobs_kill_of_one_packed_task_kills_only_that_task(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """`partita jobs kill` of a running packed task: it ends cancelled, the others run on."""
    from click.testing import CliRunner

    from partita.cli import cli

    xp: Script = script(BLOCKING)
    shared = xp.folder / "shared"
    shared.mkdir()
    proc = xp.popen(env={"PACK_SHARED": str(shared), "PACK_FREE": "1"})
    workdir = xp.folder / "wd"
    blocked = wait_for(
        lambda: job_printing(workdir, "pack.step", "blocking"), 120, "a task of the pack to block"
    )
    result = CliRunner().invoke(
        cli, ["jobs", "kill", blocked.name[:10], "--yes", "-w", str(workdir)]
    )
    assert 0 == result.exit_code, result.output
    _, err = proc.communicate(timeout=180)
    assert 1 == proc.returncode, err  # one task was cancelled
    assert (blocked / "cancelled").exists(), err
    others = [f for f in job_dirs(workdir, "pack.step") if f != blocked]
    assert 5 == len(others)
    for folder in others:
        assert [("running", None), ("done", None)] == _history(folder), folder
    elements = {_state(f)["launcher"]["job_id"] for f in job_dirs(workdir, "pack.step")}
    assert 1 == len(elements), "all in one element, which ran on after the kill"


def test_kill_9_of_a_worker_loses_only_its_running_task(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """kill -9 of the worker mid-pack: done tasks stay done; the running one and the
    ones not started are recorded lost and run again; the killed task's process is gone."""
    xp: Script = script(BLOCKING)
    shared = xp.folder / "shared"
    shared.mkdir()
    proc = xp.popen(env={"PACK_SHARED": str(shared), "PACK_FREE": "2"})
    workdir = xp.folder / "wd"
    blocked = wait_for(
        lambda: job_printing(workdir, "pack.step", "blocking"), 120, "a task of the pack to block"
    )
    _, task_pid, worker_pid = (blocked / "stdout").read_text().split()[:3]
    os.kill(int(worker_pid), 9)
    _, err = proc.communicate(timeout=180)
    assert 0 == proc.returncode, err
    assert not Path(f"/proc/{task_pid}").exists(), "the task died with its worker"
    histories = {f.name: _history(f) for f in job_dirs(workdir, "pack.step")}
    assert 6 == len(histories)
    once = [h for h in histories.values() if h == [("running", None), ("done", None)]]
    assert 2 == len(once), histories  # finished before the kill: never run again
    lost = [f for f, h in histories.items() if ("failed", "lost") in h]
    assert [blocked.name] == lost, histories  # the running one: lost, retried
    assert [("running", None), ("failed", "lost"), ("running", None), ("done", None)] == (
        histories[lost[0]]
    )
    requeued = [h for h in histories.values() if ("cancelled", None) in h]
    assert 3 == len(requeued), histories  # never started: launched again, no attempt lost
    for history in requeued:
        assert [("cancelled", None), ("running", None), ("done", None)] == history[-3:], history
    assert "finished 2" in (blocked / "stdout").read_text()
    assert 6 == len(list((shared / "finished").iterdir()))


def test_task_over_its_memory_fails_alone_in_its_pack(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """A task that outgrows its memory share is killed `memory`; the others of its element run."""
    xp: Script = script("""
    from partita import SlurmLauncher

    class Eat(Task, id="pack.eat"):
        n: Param[int]
        def execute(self):
            if self.n == 1:
                blocks = []
                for _ in range(6):  # 120 MiB by steps, twice its 60 MiB
                    block = bytearray(20 * 2**20)
                    for i in range(0, len(block), 4096):
                        block[i] = 1
                    blocks.append(block)
                    time.sleep(0.1)
                time.sleep(30)
            print("fine", self.n, flush=True)

    launcher = SlurmLauncher(time="5:00", mem="100M", pack=4, batch_quiet=1.0, batch_longest=30)
    with experiment("wd", "eat", launcher=launcher, quiet=True):
        for n in range(4):
            Eat(n=n).submit(resources={"mem": "60M"} if n == 1 else {})
    """)
    result = xp.run(timeout=120)
    assert 1 == result.returncode, result.stderr
    outcomes, elements = {}, set()
    for folder in job_dirs(xp.folder / "wd", "pack.eat"):
        n = json.loads((folder / "params.json").read_text())["objects"][0]["fields"]["n"]
        outcomes[n] = _history(folder)
        elements.add(_state(folder)["launcher"]["job_id"])
        if n == 1:
            marker = json.loads((folder / "failed").read_text())
            assert "over its memory of 60 MiB" in marker["detail"], marker
        else:
            assert f"fine {n}" in (folder / "stdout").read_text()
    assert [("running", None), ("failed", "memory")] == outcomes[1]
    for n in (0, 2, 3):
        assert [("running", None), ("done", None)] == outcomes[n], outcomes
    # 60M and 100M are two groups of options, hence two elements; the three others share one.
    assert 2 == len(elements), elements


CHAIN = """
from partita import SlurmLauncher
LOG = os.environ["CHAIN_LOG"]

def log(text):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (text + "\\n").encode()); os.close(fd)

class Link(Task, id="pack.link"):
    n: Param[int]
    after: Param[list[Task]] = field(default_factory=list)
    def execute(self):
        for task in self.after:
            assert (task.jobdir / "done").exists(), f"{task} is not done"
        log(f"start {self.n} {time.time()}")
        if self.n == 10:
            raise RuntimeError("the root of the second chain fails")
        time.sleep(0.5)
        log(f"end {self.n} {time.time()}")

launcher = SlurmLauncher(time="5:00", mem="100M", pack=4, batch_quiet=0.5, batch_longest=30)
try:
    with experiment("wd", "chain", launcher=launcher, quiet=True):
        a = Link(n=1).submit()
        b = Link(n=2, after=[a]).submit()
        Link(n=3, after=[b]).submit()
        for n in (4, 5, 6):
            Link(n=n).submit()
        bad = Link(n=10).submit()
        Link(n=11, after=[bad]).submit()
finally:
    print(json.dumps({**launcher.statistics(), "batches": launcher.batch_sizes}))
"""


def test_dependencies_in_packed_mode_run_in_order(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """pack=4: a chain runs in order, each link after its dependency is done; a failed
    dependency fails its dependent, which never runs."""
    xp: Script = script(CHAIN)
    log = xp.folder / "log"
    result = xp.run(env={"CHAIN_LOG": str(log)}, timeout=150)
    assert 1 == result.returncode, result.stderr
    times: dict[tuple[str, int], float] = {}
    for line in log.read_text().splitlines():
        event, n, when = line.split()
        times[(event, int(n))] = float(when)
    assert {1, 2, 3, 4, 5, 6, 10} == {n for _, n in times}, times  # 11 never started
    assert times[("start", 2)] > times[("end", 1)]
    assert times[("start", 3)] > times[("end", 2)]
    outcomes = {}
    for folder in job_dirs(xp.folder / "wd", "pack.link"):
        params = json.loads((folder / "params.json").read_text())
        n = params["objects"][params["root"]]["fields"]["n"]
        outcomes[n] = _history(folder)[-1]
        if n != 11:
            assert "slot" in _state(folder)["launcher"], "ran packed"
    assert ("failed", "error") == outcomes[10]
    assert ("failed", "dependency") == outcomes[11], outcomes
    for n in (1, 2, 3, 4, 5, 6):
        assert ("done", None) == outcomes[n], outcomes
    # The ready ones (1, 4, 5, 6, 10) share one submission; 2 and 3 come each in turn.
    assert 3 == launcher_stats(result)["sbatch"], launcher_stats(result)


def test_auto_packs_many_short_ready_tasks(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """pack="auto": 12 ready tasks of 1 min share one element; a dependent of one of them
    (alone, so not packed) is submitted once it is done; a task without a time limit is
    not packed."""
    xp: Script = script("""
    from partita import SlurmLauncher

    class Short(Task, id="pack.short"):
        n: Param[int]
        after: Param[list[Task]] = field(default_factory=list)
        def execute(self):
            for task in self.after:
                assert (task.jobdir / "done").exists(), f"{task} is not done"
            print(self.n)

    launcher = SlurmLauncher(mem="100M", pack="auto", batch_quiet=1.0, batch_longest=30)
    with experiment("wd", "auto", launcher=launcher, quiet=True):
        first = [Short(n=n).submit(resources={"time": "1:00"}) for n in range(12)]
        Short(n=100, after=[first[0]]).submit(resources={"time": "1:00"})
        Short(n=200).submit()
    print(json.dumps({**launcher.statistics(), "batches": launcher.batch_sizes}))
    """)
    result = xp.run(timeout=120)
    assert 0 == result.returncode, result.stderr
    handles = {}
    for folder in job_dirs(xp.folder / "wd", "pack.short"):
        params = json.loads((folder / "params.json").read_text())
        n = params["objects"][params["root"]]["fields"]["n"]
        assert (folder / "done").exists(), folder
        handles[n] = _state(folder)["launcher"]
    assert 14 == len(handles)
    assert 1 == len({handles[n]["job_id"] for n in range(12)}), "the 12 share one element"
    assert all("slot" in handles[n] for n in range(12))
    assert "slot" not in handles[100] and "slot" not in handles[200], handles
    stats = launcher_stats(result)
    assert 3 == stats["sbatch"], stats  # the 12 packed, n=200, then n=100
