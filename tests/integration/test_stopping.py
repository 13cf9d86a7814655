"""``partita.Stopping``: a task asked to stop (time limit, cancel, signal) can checkpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from xputil import job_dirs


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_time_limit_checkpoint_then_resume(script) -> None:  # type: ignore[no-untyped-def]
    """At its time limit the task gets Stopping with time left, saves, and the retry resumes."""
    xp = script("""
    from partita import ResumableTask, Stopping
    class Count(ResumableTask, id="stop.count"):
        def execute(self):
            ckpt = self.jobdir / "checkpoint"
            n = int(ckpt.read_text()) if ckpt.exists() else 0
            print(f"attempt {self.attempt} from {n}", flush=True)
            try:
                while n < 1000 and self.attempt == 1:
                    time.sleep(0.05)
                    n += 1
            except Stopping as stop:
                try:
                    time.sleep(0.2)   # a later signal would not interrupt the checkpoint
                    ckpt.write_text(str(n))
                    left = stop.remaining
                    print(f"stopped {stop.signal_name} left {left:.2f} at {n}", flush=True)
                except Exception as exc:   # Stopping is not an Exception: nothing to catch
                    print("wrong", exc)
                return   # returned normally: still not done
            ckpt.write_text(str(n))
            print(f"finished at {n}", flush=True)

    with experiment("wd", "stop"):
        Count().submit(resources={"time": "2s"})
    """)
    result = xp.run(timeout=90)
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "stop.count")
    lines = (folder / "stdout").read_text().splitlines()
    assert "attempt 1 from 0" == lines[0]
    stopped = lines[1].split()
    assert ["stopped", "SIGTERM", "left"] == stopped[:3]
    # The local launcher kills by force 5 s after the limit: that is the time left.
    assert 0.0 < float(stopped[3]) <= 5.0
    # The next attempt starts from the checkpoint written on Stopping.
    assert f"attempt 2 from {stopped[5]}" == lines[2]
    assert f"finished at {stopped[5]}" == lines[3]
    assert (
        "partita: terminated by SIGTERM (the task handled Stopping)."
        in (folder / "stderr").read_text()
    )
    state = json.loads((folder / "state.json").read_text())
    assert 2 == state["attempt"]
    assert "timeout" in [h.get("reason") for h in state["history"] if h["state"] == "failed"]
    assert (folder / "done").exists()


def test_cancel_is_recorded_cancelled_even_if_caught(script) -> None:  # type: ignore[no-untyped-def]
    """Cancelled on request: Stopping has no known time left; the job ends cancelled, not done."""
    xp = script("""
    from partita import Stopping
    class Long(Task, id="stop.long"):
        def execute(self):
            Path("started").write_text("yes")
            try:
                time.sleep(60)
            except Stopping as stop:
                Path("caught").write_text(repr(stop.remaining))
            print("returned", flush=True)

    with experiment("wd", "cancel", grace_period=5.0):
        Long().submit()
    """)
    proc = xp.popen()
    (folder,) = _folders(xp.folder / "wd", "stop.long")
    _wait_for(folder / "started")
    proc.terminate()
    proc.communicate(timeout=60)
    assert 0 != proc.returncode
    assert "None" == (folder / "caught").read_text()
    assert "returned\n" == (folder / "stdout").read_text()
    assert (folder / "cancelled").exists()
    assert not (folder / "done").exists()
    assert "(the task handled Stopping)" in json.loads((folder / "cancelled").read_text())["detail"]


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_stopping_is_not_an_exception_and_not_done(script, isolation: str) -> None:  # type: ignore[no-untyped-def]
    """``except Exception`` does not swallow it; a task that returns after it is failed."""
    xp = script("""
    import signal
    from partita import Stopping
    class Self(Task, id="stop.self"):
        def execute(self):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
            except Exception:
                print("swallowed", flush=True)
            except Stopping as stop:
                print(f"stopping {stop.remaining}", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)   # a second signal is ignored
                time.sleep(0.2)
                print("still here", flush=True)

    with experiment("wd", "self"):
        Self().submit()
    """)
    result = xp.run(timeout=60, env={"PARTITA_ISOLATION": isolation})
    assert 0 != result.returncode
    (folder,) = job_dirs(xp.folder / "wd", "stop.self")
    assert "stopping None\nstill here\n" == (folder / "stdout").read_text()
    failed = json.loads((folder / "failed").read_text())
    assert "terminated by SIGTERM (the task handled Stopping)" == failed["detail"]
    assert not (folder / "done").exists()


def _folders(workdir: Path, type_id: str, timeout: float = 30.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while not (found := job_dirs(workdir, type_id)):
        assert time.monotonic() < deadline, f"no job folder of {type_id}"
        time.sleep(0.05)
    return found


def test_partita_jobs_kill_raises_stopping(script) -> None:  # type: ignore[no-untyped-def]
    """`partita jobs kill`: the task checkpoints within the grace; the job is cancelled."""
    from click.testing import CliRunner

    from partita.cli import cli

    xp = script("""
    from partita import Stopping
    class Long(Task, id="stop.killed"):
        def execute(self):
            Path("started").write_text("yes")
            try:
                time.sleep(60)
            except Stopping as stop:
                time.sleep(0.3)
                Path("checkpoint").write_text(f"saved {stop.remaining}")
                raise

    with experiment("wd", "kill"):
        Long().submit(resources={"time": "60s"})
    """)
    proc = xp.popen()
    try:
        (folder,) = _folders(xp.folder / "wd", "stop.killed")
        _wait_for(folder / "started")
        wd = str(xp.folder / "wd")
        killed = CliRunner().invoke(
            cli, ["jobs", "kill", folder.name[:12], "--yes", "--grace", "10", "-w", wd]
        )
        assert 0 == killed.exit_code, killed.output
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A cancellation on request: the time limit does not say when it will be forced.
    assert "saved None" == (folder / "checkpoint").read_text()
    assert (folder / "cancelled").exists()
    assert not (folder / "done").exists()
