"""Crash-proof scheduling: several experiments, SIGKILLs, Ctrl-C, tokens, retries.

Randomness is seeded (``SEED``) so that a failure reproduces.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from xputil import job_dirs, peak_concurrency

SEED = int(os.environ.get("PARTITA_TEST_SEED", "20261122"))

TASKS = """
import os, time, random, json
from partita import Task, Param, Meta

LOG = os.environ["PARTITA_TEST_LOG"]

def log(line):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)

class Leaf(Task, id="crash.leaf"):
    n: Param[int]
    def execute(self):
        log(f"leaf {self.n}")
        time.sleep(random.uniform(0.05, 0.3))
        print(self.n)

class Join(Task, id="crash.join"):
    n: Param[int]
    parts: Param[list[Task]]
    def execute(self):
        log(f"join {self.n}")
        total = sum(int(p.stdout().read_text()) for p in self.parts)
        time.sleep(random.uniform(0.0, 0.15))
        print(total + self.n)
"""


def _dag_script(folder: Path, name: str = "dag", retries: int = 0) -> Path:
    (folder / "crashtasks.py").write_text(TASKS)
    script = folder / f"{name}.py"
    script.write_text(
        f"""
import sys
from partita import experiment, Retry
from crashtasks import Leaf, Join

with experiment("wd", "dag", max_jobs=2, quiet=True) as xp:
    leaves = [Leaf(n=i).submit(retries={retries}) for i in range(60)]
    pairs = [Join(n=100 + i, parts=leaves[2 * i: 2 * i + 2]).submit(retries={retries})
             for i in range(30)]
    quads = [Join(n=200 + i, parts=pairs[3 * i: 3 * i + 3]).submit(retries={retries})
             for i in range(9)]
    Join(n=300, parts=quads + [leaves[59]]).submit(retries={retries})
"""
    )
    return script


def _expected_total() -> int:
    leaves = list(range(60))
    pairs = [leaves[2 * i] + leaves[2 * i + 1] + 100 + i for i in range(30)]
    quads = [sum(pairs[3 * i : 3 * i + 3]) + 200 + i for i in range(9)]
    return sum(quads) + 59 + 300


def _env(log: Path, folder: Path) -> dict[str, str]:
    return {**os.environ, "PARTITA_TEST_LOG": str(log), "PYTHONPATH": str(folder)}


def _works_in(entry: Path, folder: Path) -> bool:
    try:
        return Path(os.readlink(entry / "cwd")).is_relative_to(folder)
    except OSError:
        return False


def _runner_pids(folder: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] == "Z":
            continue
        if b"partita.run" in cmdline and any(str(folder).encode() in c for c in cmdline):
            pids.append(int(entry.name))
        elif (b"partita._forkserver" in cmdline or comm == "partita-fork") and _works_in(
            entry, folder
        ):
            pids.append(int(entry.name))  # a runner forked from a warm server
    return pids


def _no_orphans(folder: Path, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while _runner_pids(folder) and time.time() < deadline:
        time.sleep(0.1)
    assert [] == _runner_pids(folder), "job processes were left behind"


def test_three_experiments_run_each_task_once(tmp_path: Path) -> None:
    """3 experiments share a work directory and 200 tasks: each task executes exactly once."""
    (tmp_path / "crashtasks.py").write_text(TASKS)
    log = tmp_path / "log"
    procs = []
    for k in range(3):
        script = tmp_path / f"xp{k}.py"
        script.write_text(
            f"""
import random
from partita import experiment
from crashtasks import Leaf
order = list(range(200))
random.Random({SEED + k}).shuffle(order)
with experiment("wd", "stress{k % 2}", max_jobs=2, quiet=True):
    for n in order:
        Leaf(n=n).submit()
"""
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)],
                cwd=tmp_path,
                env=_env(log, tmp_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=150)
        assert 0 == proc.returncode, err
    counts = Counter(log.read_text().splitlines())
    assert {f"leaf {n}": 1 for n in range(200)} == dict(counts)
    assert 200 == sum((d / "done").exists() for d in job_dirs(tmp_path / "wd", "crash.leaf"))
    _no_orphans(tmp_path)


def test_experiment_killed_ten_times_still_runs_each_task_once(tmp_path: Path) -> None:
    """SIGKILL the experiment at 10 random moments, restart it: every task ran exactly once."""
    rng = random.Random(SEED)
    script = _dag_script(tmp_path)
    log = tmp_path / "log"
    kills = 0
    for _ in range(60):
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=_env(log, tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if kills < 10:
            try:
                proc.wait(timeout=rng.uniform(0.2, 0.9))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                kills += 1
                continue
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0 and kills >= 10:
            break
        assert 0 == proc.returncode, err
    assert 10 == kills
    counts = Counter(log.read_text().splitlines())
    assert 100 == len(counts)
    assert {1} == set(counts.values()), [k for k, v in counts.items() if v > 1]
    (final,) = [
        d
        for d in job_dirs(tmp_path / "wd", "crash.join")
        if json.loads((d / "params.json").read_text())["objects"][-1]["fields"]["n"] == 300
    ]
    assert _expected_total() == int((final / "stdout").read_text())
    _no_orphans(tmp_path)


def test_killed_job_processes_rerun(tmp_path: Path) -> None:
    """SIGKILL of job processes: they are recorded lost, rerun, and every output is complete."""
    rng = random.Random(SEED + 1)
    script = _dag_script(tmp_path, retries=5)
    log = tmp_path / "log"
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(log, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = 0
    deadline = time.time() + 60
    while proc.poll() is None and killed < 8 and time.time() < deadline:
        time.sleep(rng.uniform(0.1, 0.4))
        pids = _runner_pids(tmp_path)
        if pids:
            try:
                os.kill(rng.choice(pids), signal.SIGKILL)
            except ProcessLookupError:
                continue  # it ended between the listing and the kill: nothing was killed
            killed += 1
    _, err = proc.communicate(timeout=120)
    assert 0 == proc.returncode, err
    assert killed >= 3
    counts = Counter(log.read_text().splitlines())
    assert 100 == len(counts)
    (final,) = [
        d
        for d in job_dirs(tmp_path / "wd", "crash.join")
        if json.loads((d / "params.json").read_text())["objects"][-1]["fields"]["n"] == 300
    ]
    assert _expected_total() == int((final / "stdout").read_text())
    lost = 0
    for folder in job_dirs(tmp_path / "wd", "crash.leaf") + job_dirs(tmp_path / "wd", "crash.join"):
        history = json.loads((folder / "state.json").read_text())["history"]
        lost += sum(1 for h in history if h.get("reason") == "lost")
        assert (folder / "done").exists()
    assert lost >= 1
    _no_orphans(tmp_path)


def test_token_bounds_concurrency_across_experiments(script) -> None:  # type: ignore[no-untyped-def]
    """A 2-unit token shared by 10 one-unit tasks in 2 experiments: never more than 2 at once."""
    body = """
    from partita import Token
    class Gpu(Task, id="tok.gpu"):
        n: Param[int]
        def execute(self):
            start = time.time(); time.sleep(0.4)
            print(json.dumps([start, time.time()]))

    gpu = Token("gpu", 2)
    offset = int(sys.argv[1])
    with experiment("wd", f"tok{offset}", max_jobs=4, quiet=True):
        for n in range(offset, offset + 5):
            Gpu(n=n).submit(tokens={gpu: 1})
    """
    xp = script(body)
    procs = [xp.popen(str(offset)) for offset in (0, 5)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert 0 == proc.returncode, err
    spans = [json.loads((d / "stdout").read_text()) for d in job_dirs(xp.folder / "wd", "tok.gpu")]
    assert 10 == len(spans)
    assert 2 == peak_concurrency(spans)
    leftovers = list((xp.folder / "wd" / "tokens" / "gpu").glob("*.json"))
    assert [] == leftovers


def test_token_units_of_dead_process_come_back(script) -> None:  # type: ignore[no-untyped-def]
    """Units held by a killed experiment (and its finished job) are taken back."""
    body = """
    from partita import Token
    class Hold(Task, id="tok.hold"):
        n: Param[int]
        def execute(self):
            time.sleep(float(os.environ.get("HOLD", "0")))

    with experiment("wd", "hold", quiet=True):
        Hold(n=int(sys.argv[1])).submit(tokens={Token("lic", 1): 1})
    """
    xp = script(body)
    first = xp.popen("1", env={"HOLD": "30"})
    folder = xp.folder / "wd" / "tokens" / "lic"
    deadline = time.time() + 20
    while not list(folder.glob("*.json")) and time.time() < deadline:
        time.sleep(0.05)
    while not _runner_pids(xp.folder) and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    for pid in _runner_pids(xp.folder):
        with contextlib.suppress(ProcessLookupError):  # it may end meanwhile
            os.kill(pid, signal.SIGKILL)
    second = xp.run("2", env={"HOLD": "0"}, timeout=30)
    assert 0 == second.returncode, second.stderr


def test_ctrl_c_cancels_running_jobs(script) -> None:  # type: ignore[no-untyped-def]
    """First Ctrl-C: cancel running jobs (SIGTERM, then SIGKILL), cancelled markers, exit != 0."""
    xp = script("""
    import signal
    class Long(Task, id="ctrl.long"):
        stubborn: Param[bool]
        def execute(self):
            if self.stubborn:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("started", flush=True)
            time.sleep(60)

    with experiment("wd", "ctrl", grace_period=1.0):
        Long(stubborn=False).submit()
        Long(stubborn=True).submit()
    """)
    proc = xp.popen()
    deadline = time.time() + 20
    while len(_started(xp.folder / "wd", "ctrl.long")) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert 2 == len(_started(xp.folder / "wd", "ctrl.long"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert 0 != proc.returncode
    for folder in job_dirs(xp.folder / "wd", "ctrl.long"):
        assert (folder / "cancelled").exists(), err
        assert not (folder / "done").exists()
    _no_orphans(xp.folder)


def test_ctrl_c_one_vocabulary_for_dependents_that_never_ran(script) -> None:  # type: ignore[no-untyped-def]
    """After Ctrl-C, the experiment, ``experiments show`` and ``jobs list`` agree.

    A dependent that never ran is ``cancelled`` everywhere (never ``failed(dependency)``).
    """
    from click.testing import CliRunner

    from partita.cli import cli

    xp = script("""
    class Long(Task, id="voc.long"):
        def execute(self):
            print("started", flush=True)
            time.sleep(60)

    class After(Task, id="voc.after"):
        first: Param[Long]
        def execute(self):
            pass

    with experiment("wd", "voc", grace_period=1.0):
        long = Long().submit()
        After(first=long).submit()
    """)
    proc = xp.popen()
    deadline = time.time() + 20
    while not _started(xp.folder / "wd", "voc.long") and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert 0 != proc.returncode
    (after,) = job_dirs(xp.folder / "wd", "voc.after")
    assert (after / "cancelled").exists(), err
    assert not (after / "failed").exists()
    assert "failed" not in err.split("interrupted", 1)[-1].lower().replace("0 failed", "")
    wd = str(xp.folder / "wd")
    listed = json.loads(CliRunner().invoke(cli, ["jobs", "list", wd, "--json"]).stdout)
    assert {"cancelled"} == {job["state"] for job in listed}, listed
    shown = CliRunner().invoke(cli, ["experiments", "show", "voc", "-w", wd]).stdout
    assert "failed" not in shown, shown
    assert "cancelled" in shown, shown


def test_detach_leaves_jobs_running_and_next_run_reattaches(script) -> None:  # type: ignore[no-untyped-def]
    """With detach, the experiment exits once jobs are launched; the next run waits for them."""
    xp = script("""
    class Slow(Task, id="det.slow"):
        def execute(self):
            print("run", os.getpid(), flush=True)
            release = Path(os.environ["RELEASE"])  # the job ends only once the test says so
            deadline = time.monotonic() + 60
            while not release.exists():
                assert time.monotonic() < deadline, "never released"
                time.sleep(0.02)

    with experiment("wd", "det"):
        Slow().submit()
    """)
    release = xp.folder / "release"
    first = xp.run(env={"PARTITA_DETACH": "1", "RELEASE": str(release)})
    assert 0 == first.returncode, first.stderr  # it exited while its job cannot have ended
    assert "detached: 1 job(s)" in first.stderr
    (folder,) = job_dirs(xp.folder / "wd", "det.slow")
    assert not (folder / "cancelled").exists()
    assert _runner_pids(xp.folder), "the job should still run"
    runs = sorted((xp.folder / "wd" / "experiments" / "det" / "runs").iterdir())
    assert "detached" == json.loads((runs[0] / "run.json").read_text())["status"]
    # The next run waits for it; release the job once it says so.
    errors = xp.folder / "again.err"
    with open(errors, "w") as err:
        again = subprocess.Popen(
            [sys.executable, str(xp.path)], cwd=xp.folder, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        deadline = time.monotonic() + 30
        while "waiting" not in errors.read_text():
            assert time.monotonic() < deadline, errors.read_text()
            time.sleep(0.05)
        release.touch()
        assert 0 == again.wait(timeout=30), errors.read_text()
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert 1 == (folder / "stdout").read_text().count("run ")
    assert (folder / "done").exists()
    _no_orphans(xp.folder)


def test_ctrl_c_with_detach_leaves_running_jobs(script) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C with detach stops submitting but leaves running jobs running."""
    xp = script("""
    class Slow(Task, id="detc.slow"):
        n: Param[int]
        def execute(self):
            print("run", flush=True)
            time.sleep(1.5)

    with experiment("wd", "detc", max_jobs=1):
        Slow(n=1).submit()
        time.sleep(30)  # still submitting when interrupted
        Slow(n=2).submit()
    """)
    proc = xp.popen(env={"PARTITA_DETACH": "1"})
    deadline = time.time() + 20
    while not _started(xp.folder / "wd", "detc.slow") and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert 0 != proc.returncode
    (folder,) = job_dirs(xp.folder / "wd", "detc.slow")
    assert not (folder / "cancelled").exists()
    deadline = time.time() + 10
    while not (folder / "done").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (folder / "done").exists()
    _no_orphans(xp.folder)


def _started(workdir: Path, type_id: str) -> list[Path]:
    return [
        d
        for d in job_dirs(workdir, type_id)
        if (d / "stdout").exists() and (d / "stdout").read_text().strip()
    ]


def test_retry_policy_reruns_lost_job_and_keeps_old_files(script) -> None:  # type: ignore[no-untyped-def]
    """A job lost on its first attempt is retried; the first attempt's files are set aside."""
    xp = script("""
    import signal
    from partita import Retry
    class Flaky(Task, id="retry.flaky"):
        def execute(self):
            Path("scratch.txt").write_text(str(os.getpid()))
            flag = Path(os.environ["FLAG"])
            if not flag.exists():
                flag.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
            print("second attempt ok")

    with experiment("wd", "retry"):
        Flaky().submit(retries=Retry(count=2))
    """)
    result = xp.run(env={"FLAG": str(xp.folder / "flag")})
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "retry.flaky")
    assert "second attempt ok\n" == (folder / "stdout").read_text()
    assert (folder / ".attempts" / "1" / "scratch.txt").exists()
    state = json.loads((folder / "state.json").read_text())
    assert 2 == state["attempt"]
    assert ["lost"] == [h["reason"] for h in state["history"] if h["state"] == "failed"]


def test_resumable_task_continues_after_timeout(script) -> None:  # type: ignore[no-untyped-def]
    """A resumable task stopped at its time limit is retried and continues from its checkpoint."""
    xp = script("""
    from partita import ResumableTask
    class Count(ResumableTask, id="resume.count"):
        def execute(self):
            ckpt = self.jobdir / "checkpoint"
            n = int(ckpt.read_text()) if ckpt.exists() else 0
            left = self.remaining_time()
            print(f"attempt {self.attempt} from {n} left {left:.1f}", flush=True)
            while n < 12:
                time.sleep(0.25)
                n += 1
                ckpt.write_text(str(n))

    with experiment("wd", "resume"):
        Count().submit(resources={"time": "2s"})
    """)
    result = xp.run(timeout=60)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "resume.count")
    lines = (folder / "stdout").read_text().splitlines()
    assert lines[0].startswith("attempt 1 from 0 left ")
    # What is left of the 2 s limit (how much the start took depends on the machine's load).
    assert 0.0 < float(lines[0].split()[-1]) <= 2.0
    assert lines[1].startswith("attempt 2 from ")
    assert int(lines[1].split()[3]) > 0
    assert "12" == (folder / "checkpoint").read_text()
    history = json.loads((folder / "state.json").read_text())["history"]
    assert "timeout" in [h.get("reason") for h in history]


def test_memory_limit_reports_memory(script) -> None:  # type: ignore[no-untyped-def]
    """A job over its memory limit fails with reason `memory`."""
    xp = script("""
    class Hungry(Task, id="mem.hungry"):
        def execute(self):
            data = bytearray(2 * 1024 ** 3)
            print(len(data))

    with experiment("wd", "mem"):
        Hungry().submit(resources={"mem": "300M"})
    """)
    result = xp.run()
    assert 1 == result.returncode
    (folder,) = job_dirs(xp.folder / "wd", "mem.hungry")
    assert "memory" == json.loads((folder / "failed").read_text())["reason"]


def test_on_completed_fires_exactly_once(script) -> None:  # type: ignore[no-untyped-def]
    """on_completed runs once per done job, on a fresh run and when the job was already done."""
    xp = script("""
    class Quick(Task, id="cb.quick"):
        n: Param[int]
        def execute(self):
            pass

    calls = []
    with experiment("wd", "cb") as xp:
        for n in range(5):
            task = Quick(n=n).submit()
            Quick(n=n).submit()  # same identity: same job
            task.job.on_completed(lambda job: calls.append(job.identifier))
        xp.wait()
        task.job.on_completed(lambda job: calls.append("late"))
    print(json.dumps(calls))
    """)
    for _ in range(2):
        result = xp.run()
        assert 0 == result.returncode, result.stderr
        calls = json.loads(result.stdout.strip().splitlines()[-1])
        assert 6 == len(calls)
        assert 1 == calls.count("late")
        assert 5 == len(set(calls) - {"late"})


def test_dry_run_launches_nothing(script) -> None:  # type: ignore[no-untyped-def]
    """A dry run prints what would run and what is done, and launches nothing."""
    xp = script("""
    class Step(Task, id="dry.step"):
        n: Param[int]
        def execute(self):
            print("ran")

    with experiment("wd", "dry"):
        for n in range(int(sys.argv[1])):
            Step(n=n).submit()
    """)
    assert 0 == xp.run("2").returncode
    result = xp.run("3", env={"PARTITA_DRY_RUN": "1"})
    assert 0 == result.returncode, result.stderr
    assert 2 == result.stderr.count(": done")
    assert 1 == result.stderr.count(": would run")
    assert "1 of 3 jobs would run, 2 already done" in result.stderr
    assert 2 == len(job_dirs(xp.folder / "wd", "dry.step"))


@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_sigterm_to_experiment_cancels_like_ctrl_c(script, signum: int) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM to the experiment process cancels its jobs cleanly, like Ctrl-C."""
    xp = script("""
    class Long(Task, id="term.long"):
        def execute(self):
            print("started", flush=True)
            time.sleep(60)

    with experiment("wd", "term", grace_period=1.0):
        Long().submit()
    """)
    proc = xp.popen()
    deadline = time.time() + 20
    while not _started(xp.folder / "wd", "term.long") and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    proc.communicate(timeout=30)
    assert 0 != proc.returncode
    (folder,) = job_dirs(xp.folder / "wd", "term.long")
    assert (folder / "cancelled").exists()
    _no_orphans(xp.folder)
