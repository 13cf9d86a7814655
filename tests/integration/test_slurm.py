"""partita on a real (private, single-node) Slurm cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from xputil import Script, job_dirs, job_printing, launcher_stats, wait_for

pytestmark = pytest.mark.slurm

HELLO = """
from partita import SlurmLauncher

class Say(Task, id="slurm.say"):
    word: Param[str]
    def execute(self):
        print(self.word.upper())

class Concat(Task, id="slurm.concat"):
    strings: Param[list[Say]]
    def execute(self):
        print(" ".join(s.stdout().read_text().strip() for s in self.strings))

launcher = SlurmLauncher(time="5:00", mem="200M")
with experiment("wd", "hello", launcher=launcher) as xp:
    hello = Say(word="hello").submit()
    world = Say(word="world").submit()
    Concat(strings=[hello, world]).tag("y", 1).submit()
print(json.dumps({**launcher.statistics(), "batches": launcher.batch_sizes}))
"""


def test_helloworld_on_slurm(slurm_env: dict[str, str], script) -> None:  # type: ignore[no-untyped-def]
    """The hello-world experiment runs on Slurm: HELLO WORLD, then nothing on a second run."""
    xp = script(HELLO)
    result = xp.run(timeout=120)
    assert 0 == result.returncode, result.stderr
    (concat,) = job_dirs(xp.folder / "wd", "slurm.concat")
    assert "HELLO WORLD\n" == (concat / "stdout").read_text()
    state = json.loads((concat / "state.json").read_text())
    assert "slurm" == state["launcher"]["kind"]
    # The two Say jobs went in one array (pending together); Concat was queued at once, after
    # them. Only a main thread stalled between the two submissions separates the Say jobs.
    stats = launcher_stats(result)
    assert stats["batches"] in ([2, 1], [1, 1, 1]), stats
    assert len(stats["batches"]) == stats["sbatch"], stats  # one array per batch
    again = xp.run(timeout=60)
    assert 0 == again.returncode, again.stderr
    assert "nothing to run" in again.stderr
    assert 0 == launcher_stats(again).get("sbatch", 0)


def test_hostile_paths(slurm_env: dict[str, str], tmp_path: Path) -> None:
    """A work directory whose path has spaces, quotes and $ works on Slurm."""
    folder = tmp_path / 'it\'s a "dir" $HOME'
    folder.mkdir()
    xp = Script(folder, "hostile", HELLO)
    result = xp.run(timeout=120)
    assert 0 == result.returncode, result.stderr
    (concat,) = job_dirs(folder / "wd", "slurm.concat")
    assert "HELLO WORLD\n" == (concat / "stdout").read_text()


def test_fan_out_is_submitted_as_arrays(slurm_env: dict[str, str], script) -> None:  # type: ignore[no-untyped-def]
    """200 tasks that become ready together go to Slurm as 2 arrays (150 + 50), not 200 jobs.

    They all wait for one gate task (on the local launcher), which the script opens only
    once all 200 are submitted: they become ready in the same moment whatever the speed of
    the submitting loop. Generous batch windows leave only two cuts: a full array, and the
    end of the fan-out (the timing rule itself is tested on a fake clock in
    tests/unit/launchers/test_slurm_batching.py).
    """
    xp = script("""
    from partita import LocalLauncher, SlurmLauncher
    GO = Path(os.environ["FAN_GO"])

    class Gate(Task, id="slurm.gate"):
        def execute(self):
            deadline = time.monotonic() + 120
            while not GO.exists():
                assert time.monotonic() < deadline, "the script never opened the gate"
                time.sleep(0.05)

    class Fan(Task, id="slurm.fan"):
        n: Param[int]
        gate: Param[Gate]
        def execute(self):
            print(self.n * self.n)

    launcher = SlurmLauncher(
        time="5:00", mem="100M", max_array_size=150, batch_quiet=1.0, batch_longest=120
    )
    with experiment("wd", "fan", launcher=launcher, quiet=True):
        gate = Gate().submit(launcher=LocalLauncher())
        for n in range(200):
            Fan(n=n, gate=gate).submit()
        GO.touch()
    print(json.dumps({**launcher.statistics(), "batches": launcher.batch_sizes}))
    """)
    started = time.time()
    result = xp.run(env={"FAN_GO": str(xp.folder / "go")}, timeout=240)
    assert 0 == result.returncode, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert [150, 50] == stats["batches"], stats  # a full array goes at once; then the rest
    assert 2 == stats["sbatch"], stats
    manifests = sorted((xp.folder / "wd" / "slurm").glob("*.json"))
    elements = [e["jobdir"] for m in manifests for e in json.loads(m.read_text())]
    assert [50, 150] == sorted(len(json.loads(m.read_text())) for m in manifests)
    fans = job_dirs(xp.folder / "wd", "slurm.fan")
    assert sorted(str(d) for d in fans) == sorted(elements)  # each one element, once
    assert {n * n for n in range(200)} == {int((d / "stdout").read_text()) for d in fans}
    print(f"200 tasks on slurm: {time.time() - started:.1f} s, commands {stats}", file=sys.stderr)


DAG = """
from partita import SlurmLauncher
LOG = os.environ["DAG_LOG"]

def log(text):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (text + "\\n").encode()); os.close(fd)

class Step(Task, id="slurm.step"):
    n: Param[int]
    after: Param[list[Task]] = field(default_factory=list)
    def execute(self):
        log(f"step {self.n}")
        time.sleep(1.0)
        total = self.n + sum(int(t.stdout().read_text()) for t in self.after)
        print(total)

# b and c, ready together, share an array unless 1 s passes between them.
launcher = SlurmLauncher(time="5:00", mem="100M", batch_quiet=1.0)
with experiment("wd", "dag", launcher=launcher):
    a = Step(n=1).submit()
    b = Step(n=2, after=[a]).submit()
    c = Step(n=3, after=[a]).submit()
    Step(n=4, after=[b, c]).submit()
print(json.dumps({**launcher.statistics(), "batches": launcher.batch_sizes}))
"""


def test_dag_queued_with_afterok_detached_then_reconciled(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """Detached: the whole DAG is queued with afterok and the script exits; a rerun completes."""
    xp = script(DAG)
    log = xp.folder / "log"
    first = xp.run(env={"PARTITA_DETACH": "1", "DAG_LOG": str(log)}, timeout=60)
    assert 0 == first.returncode, first.stderr
    assert "detached: 4 job(s)" in first.stderr
    # a; b and c together (queued after a in the same moment); d
    assert [1, 2, 1] == launcher_stats(first)["batches"]
    assert 3 == launcher_stats(first)["sbatch"]
    folders = job_dirs(xp.folder / "wd", "slurm.step")
    assert 4 == len(folders)
    # Not waited for: the chain a -> b -> d takes 3 s of sleep alone, after Slurm starts it.
    assert not all((d / "done").exists() for d in folders), "detach should not wait for the jobs"
    second = xp.run(env={"DAG_LOG": str(log)}, timeout=120)
    assert 0 == second.returncode, second.stderr
    assert 0 == launcher_stats(second).get("sbatch", 0), "nothing should be submitted again"
    assert {f"step {n}": 1 for n in range(1, 5)} == dict(Counter(log.read_text().splitlines()))
    last = [d for d in folders if (d / "stdout").read_text().strip() == "11"]
    assert 1 == len(last)


def test_memory_failure_is_reported_and_retried_with_more(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """A job over its memory is failed with reason `memory`, then retried with more memory."""
    xp = script("""
    from partita import SlurmLauncher, Retry
    class Hungry(Task, id="slurm.hungry"):
        def execute(self):
            mem = os.environ.get("SLURM_MEM_PER_NODE")
            print("mem", mem, flush=True)
            block = bytearray(400 * 1024 * 1024)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(4)
            print("survived", flush=True)

    launcher = SlurmLauncher(time="5:00", mem="150M", grow_memory=4.0)
    with experiment("wd", "mem", launcher=launcher):
        Hungry().submit(retries=Retry(count=1, on={"memory"}))
    """)
    result = xp.run(timeout=180)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "slurm.hungry")
    history = json.loads((folder / "state.json").read_text())["history"]
    assert ["memory"] == [h["reason"] for h in history if h["state"] == "failed"]
    assert "mem 600\nsurvived\n" == (folder / "stdout").read_text()


def test_scancel_of_running_job_cancels_it(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """`scancel` of a running Slurm job ends it `cancelled` and fails the experiment."""
    xp = script("""
    from partita import SlurmLauncher
    class Long(Task, id="slurm.long"):
        def execute(self):
            print("started", flush=True)
            time.sleep(120)

    with experiment("wd", "cancel", launcher=SlurmLauncher(time="5:00", mem="100M")):
        Long().submit()
    """)
    proc = xp.popen()
    folder = wait_for(
        lambda: job_printing(xp.folder / "wd", "slurm.long", "started"), 60, "the job to start"
    )
    handle = json.loads((folder / "state.json").read_text())["launcher"]
    subprocess.run(["scancel", handle["job_id"]], check=True, env=os.environ)
    _, err = proc.communicate(timeout=60)
    assert 1 == proc.returncode, err
    assert (folder / "cancelled").exists(), err
    assert not (folder / "failed").exists()


def test_ctrl_c_cancels_slurm_jobs(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C of the experiment cancels its Slurm jobs with scancel."""
    import signal

    xp = script("""
    from partita import SlurmLauncher
    class Long(Task, id="slurm.ctrlc"):
        n: Param[int]
        def execute(self):
            print("started", flush=True)
            time.sleep(120)

    with experiment("wd", "ctrlc", launcher=SlurmLauncher(time="5:00", mem="100M")):
        for n in range(2):
            Long(n=n).submit()
    """)
    proc = xp.popen()
    deadline = time.time() + 60
    while time.time() < deadline:
        folders = job_dirs(xp.folder / "wd", "slurm.ctrlc")
        if len(folders) == 2 and all(
            (f / "stdout").exists() and (f / "stdout").read_text() for f in folders
        ):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert 0 != proc.returncode
    for folder in job_dirs(xp.folder / "wd", "slurm.ctrlc"):
        assert (folder / "cancelled").exists(), err
        job_id = json.loads((folder / "state.json").read_text())["launcher"]["job_id"]
        queue = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"],
            env=os.environ,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert queue in ("", "CANCELLED", "COMPLETING"), queue


def test_timeout_is_reported_and_resumable_task_continues(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """A resumable task hitting its time limit is requeued with more time and continues."""
    xp = script("""
    from partita import SlurmLauncher, ResumableTask
    class Train(ResumableTask, id="slurm.train"):
        def execute(self):
            ckpt = self.jobdir / "ckpt"
            step = int(ckpt.read_text()) if ckpt.exists() else 0
            left = self.remaining_time()
            print(f"attempt {self.attempt} from {step} left {left:.0f}", flush=True)
            while step < 100:
                time.sleep(1)
                step += 1
                ckpt.write_text(str(step))

    launcher = SlurmLauncher(time=1, mem="100M", grow_time=3.0)
    with experiment("wd", "timeout", launcher=launcher):
        Train().submit()
    """)
    result = xp.run(timeout=400)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "slurm.train")
    lines = (folder / "stdout").read_text().splitlines()
    first = lines[0].split()
    assert ["attempt", "1", "from", "0", "left"] == first[:5]
    assert 30 <= int(first[5]) <= 60
    assert lines[1].startswith("attempt 2 from ") and int(lines[1].split()[3]) > 20
    history = json.loads((folder / "state.json").read_text())["history"]
    assert "timeout" in [h.get("reason") for h in history]


def test_rules_file_sends_long_tasks_to_slurm(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """The user's launcher rules send a task that needs hours to Slurm, a short one runs here."""
    xp = script("""
    class Work(Task, id="slurm.work"):
        hours: Param[int]
        def execute(self):
            print(os.environ.get("SLURM_JOB_ID", "local"))

    with experiment("wd", "rules"):
        Work(hours=0).submit()
        Work(hours=2).submit(resources={"time": "2h"})
    """)
    rules = xp.folder / "launchers.py"
    rules.write_text(
        "from partita import SlurmLauncher\n"
        "slurm = SlurmLauncher(mem='100M')\n"
        "def find_launcher(needs, task):\n"
        "    return (slurm, 'long') if needs.time and needs.time > 3600 else None\n"
    )
    result = xp.run(env={"PARTITA_LAUNCHERS": str(rules)}, timeout=120)
    assert 0 == result.returncode, result.stderr
    kinds = {}
    for folder in job_dirs(xp.folder / "wd", "slurm.work"):
        hours = json.loads((folder / "params.json").read_text())["objects"][0]["fields"]["hours"]
        kinds[hours] = json.loads((folder / "state.json").read_text())["launcher"]["kind"]
        ran_on = (folder / "stdout").read_text().strip()
        assert (ran_on == "local") == (hours == 0)
    assert {0: "local", 2: "slurm"} == kinds


def test_settle_detached_failures_without_the_script(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """After a detached run, jobs that died on Slurm without an outcome are settled from sacct."""
    from partita.launchers import settle_jobs
    from partita.workspace import Index, Workspace

    xp = script("""
    from partita import SlurmLauncher
    class Hog(Task, id="slurm.hog"):
        def execute(self):
            block = bytearray(400 * 1024 * 1024)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(5)

    with experiment("wd", "hog", launcher=SlurmLauncher(mem="100M")):
        Hog().submit()
    """)
    result = xp.run(env={"PARTITA_DETACH": "1"}, timeout=60)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "slurm.hog")
    handle = json.loads((folder / "state.json").read_text())["launcher"]
    deadline = time.time() + 60
    while time.time() < deadline:
        acct = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "State", "-j", handle["job_id"]],
            capture_output=True,
            text=True,
            env=os.environ,
        ).stdout.strip()
        if acct and acct.split()[0] not in ("PENDING", "RUNNING", "COMPLETING"):
            break
        time.sleep(0.5)
    with Index(Workspace(xp.folder / "wd", create=False)) as index:
        index.refresh()
        infos = index.jobs(states=["running"])
        assert 1 == len(infos)
        changes = settle_jobs(infos)
    assert 1 == len(changes), changes
    marker = json.loads((folder / "failed").read_text())
    assert "memory" == marker["reason"]
    assert "FAILED" in marker["detail"]


def test_partita_jobs_kill_cancels_a_slurm_job(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """`partita jobs kill` runs scancel on a job that runs on Slurm; it ends cancelled."""
    from click.testing import CliRunner

    from partita.cli import cli

    xp = script("""
    from partita import SlurmLauncher
    class Long(Task, id="slurm.killme"):
        def execute(self):
            print("started", flush=True)
            time.sleep(120)

    with experiment("wd", "killme", launcher=SlurmLauncher(time="5:00", mem="100M")):
        Long().submit()
    """)
    proc = xp.popen()
    folder = wait_for(
        lambda: job_printing(xp.folder / "wd", "slurm.killme", "started"), 60, "the job to start"
    )
    result = CliRunner().invoke(
        cli, ["jobs", "kill", folder.name[:10], "--yes", "-w", str(xp.folder / "wd")]
    )
    assert 0 == result.exit_code, result.output
    _, err = proc.communicate(timeout=60)
    assert 1 == proc.returncode, err
    assert (folder / "cancelled").exists()


SHARED_TRANSIENT = """
from partita import SlurmLauncher

class Prep(Task, id="slurm.prep"):
    n: Param[int]
    def execute(self):
        (self.jobdir / "data.txt").write_text(str(self.n * 2))

class Fit(Task, id="slurm.fit", shared={"ckpt": ("epochs",)}):
    data: Param[Prep]
    epochs: Param[int]
    def execute(self):
        with self.shared("ckpt") as folder:
            data = (self.data.jobdir / "data.txt").read_text()
            (folder / f"epoch{self.epochs}").write_text(f"{data} {os.environ['SLURM_JOB_ID']}")

launcher = SlurmLauncher(time="5:00", mem="200M")
with experiment("wd", "fit", launcher=launcher):
    data = Prep(n=21).submit(transient=True)
    Fit(data=data, epochs=1).submit()
"""


def test_shared_folder_and_transient_input_on_slurm(slurm_env: dict[str, str], script) -> None:  # type: ignore[no-untyped-def]
    """The transient input runs on Slurm because the fit needs it; the fit, a Slurm job,
    writes its shared folder under the folder's lock."""
    xp = script(SHARED_TRANSIENT)
    result = xp.run(timeout=120)
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    (prep,) = job_dirs(wd, "slurm.prep")
    (fit,) = job_dirs(wd, "slurm.fit")
    for folder in (prep, fit):
        state = json.loads((folder / "state.json").read_text())
        assert "slurm" == state["launcher"]["kind"], state
        assert (folder / "done").exists()
    (ref,) = json.loads((fit / "shared.json").read_text())
    shared = wd / ref
    assert ref.startswith("shared/slurm.fit/ckpt/")
    data, job_id = (shared / "epoch1").read_text().split()
    assert data == "42" and job_id.isdigit()
    assert shared.with_name(shared.name + ".lock").exists()
    # The run recorded the input as transient.
    (jobs_file,) = (wd / "experiments" / "fit" / "runs").glob("*/jobs.jsonl")
    entries = [json.loads(line) for line in jobs_file.read_text().splitlines()]
    assert [e.get("transient", False) for e in entries if e["id"] == prep.name] == [True]
