"""Pre-tasks and ``Stopping`` in jobs run by a real (private) Slurm cluster."""

from __future__ import annotations

import json

import pytest
from xputil import job_dirs

pytestmark = pytest.mark.slurm


def test_pretasks_run_on_slurm(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    xp = script("""
    from partita import SlurmLauncher

    class Mark(Config, id="sj.mark"):
        text: Param[str]
        def execute(self):
            with open("order.txt", "a") as f:
                f.write(f"{self.text} {os.environ.get('SLURM_JOB_ID')}\\n")

    class Boom(Config, id="sj.boom"):
        def execute(self):
            raise RuntimeError("pre-task broke")

    class Work(Task, id="sj.work"):
        n: Param[int]
        def execute(self):
            with open("order.txt", "a") as f:
                f.write(f"task {os.environ.get('SLURM_JOB_ID')}\\n")

    launcher = SlurmLauncher(time="5:00", mem="200M")
    with experiment("wd", "pre", launcher=launcher):
        Work(n=1).add_pretasks(Mark(text="a"), Mark(text="b")).submit()
        Work(n=2).add_pretasks(Boom()).submit()
    """)
    result = xp.run(timeout=180)
    assert 0 != result.returncode  # one job failed
    by_n = {
        json.loads((f / "params.json").read_text())["objects"][-1]["fields"]["n"]: f
        for f in job_dirs(xp.folder / "wd", "sj.work")
    }
    lines = (by_n[1] / "order.txt").read_text().splitlines()
    assert ["a", "b", "task"] == [line.split()[0] for line in lines]
    assert 1 == len({line.split()[1] for line in lines})  # one Slurm job
    assert "None" != lines[0].split()[1]
    assert (by_n[1] / "done").exists()
    assert not (by_n[2] / "order.txt").exists()
    assert "RuntimeError: pre-task broke" in (by_n[2] / "stderr").read_text()
    assert (by_n[2] / "failed").exists()


def test_slurm_warning_signal_raises_stopping_with_time_left(slurm_env, script) -> None:  # type: ignore[no-untyped-def]
    """signal="B:TERM@60" stops the task before its 2 minute limit, with time left.

    slurmctld sends the warning from a periodic check (about every 30 s) once the time left
    is within the warning time plus that period. With 50 s of a 1 minute limit, that was
    already so at the first check after the start, which may come before the batch step
    runs: once the warning never reached the task, which saw only the time limit's SIGTERM,
    with no time left. With 60 s of 2 minutes, no check sends it in the first 30 s.
    """
    xp = script("""
    from partita import SlurmLauncher, ResumableTask, Stopping

    class Long(ResumableTask, id="sj.long"):
        def execute(self):
            ckpt = self.jobdir / "ckpt"
            if ckpt.exists():
                print(f"resumed from {ckpt.read_text()}", flush=True)
                return
            step = 0
            try:
                while True:
                    time.sleep(0.2)
                    step += 1
            except Stopping as stop:
                ckpt.write_text(str(step))
                print(f"stopping {stop.signal_name} {stop.remaining:.1f}", flush=True)

    launcher = SlurmLauncher(time=2, mem="100M", signal="B:TERM@60")
    with experiment("wd", "warn", launcher=launcher):
        Long().submit()
    """)
    result = xp.run(timeout=300)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "sj.long")
    lines = (folder / "stdout").read_text().splitlines()
    first = lines[0].split()
    assert ["stopping", "SIGTERM"] == first[:2]
    assert 0.0 < float(first[2]) <= 120.0
    assert lines[1] == f"resumed from {(folder / 'ckpt').read_text()}"
    history = json.loads((folder / "state.json").read_text())["history"]
    assert "timeout" in [h.get("reason") for h in history]
