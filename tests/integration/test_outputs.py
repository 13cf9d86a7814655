"""Live outputs: a running task publishes checkpoints, the experiment evaluates each once.

Real experiment scripts in real processes: the training task publishes a checkpoint every
few tenths of a second; the experiment's ``watch_output`` callback submits an evaluation
per checkpoint while the training goes on. Evaluations append a line to a log file, so
the test counts how often each one really ran.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from xputil import Script, monitor, wait_for

from partita.cli import cli

BODY = """
LOG = os.environ["EVAL_LOG"]
EPOCHS = int(os.environ.get("EPOCHS", "6"))
PAUSE = float(os.environ.get("PAUSE", "0.3"))

class Checkpoint(Config):
    path: Param[Path]
    epoch: Param[int]

class Train(Task, id="out.train"):
    seed: Param[int]
    def execute(self):
        for epoch in range(1, EPOCHS + 1):
            path = partita.artifacts() / f"epoch{epoch}.txt"
            path.write_text(f"weights {epoch}")
            if epoch % 2:
                partita.publish("checkpoint", Checkpoint(path=path, epoch=epoch))
            else:
                self.publish("checkpoint", Checkpoint(path=path, epoch=epoch))
            partita.publish("loss", 1.0 / epoch)
            time.sleep(PAUSE)
        if os.environ.get("WAIT_FOR_EVAL"):
            # Proof that evaluations run while this job runs: wait for the first one.
            deadline = time.time() + 60
            while not os.path.exists(LOG) and time.time() < deadline:
                time.sleep(0.02)
            Path(os.environ["WAIT_FOR_EVAL"]).write_text(str(os.path.exists(LOG)))

class Evaluate(Task, id="out.eval"):
    checkpoint: Param[Checkpoint]
    def execute(self):
        text = self.checkpoint.path.read_text()
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{self.checkpoint.epoch} {text}\\n".encode())
        os.close(fd)

options = {"max_jobs": 4}
if os.environ.get("ON_SLURM"):
    from partita import SlurmLauncher
    options = {"launcher": SlurmLauncher(time="5:00", mem="200M")}
seen = []
with experiment("wd", "live", **options) as xp:
    train = Train(seed=1)
    train.submit()
    train.job.watch_output("checkpoint", lambda ckpt: Evaluate(checkpoint=ckpt).submit())
    train.job.watch_output("loss", seen.append)
print("LOSSES", json.dumps(seen))
print("OUTPUTS", len(train.job.outputs("checkpoint")))
"""


def _outputs_file(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "wd" / "jobs" / "out.train").iterdir()
    return folder / "outputs.jsonl"


def _published(tmp_path: Path) -> int:
    try:
        lines = _outputs_file(tmp_path).read_text().splitlines()
    except (FileNotFoundError, ValueError):
        return 0
    return sum(json.loads(line)["name"] == "checkpoint" for line in lines)


def _evaluations(log: Path) -> Counter[str]:
    return Counter(log.read_text().splitlines()) if log.exists() else Counter()


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_each_checkpoint_evaluated_while_training_runs(
    script: Callable[..., Script], tmp_path: Path, isolation: str
) -> None:
    log = tmp_path / "evals"
    seen = tmp_path / "seen"
    env = {
        "EVAL_LOG": str(log),
        "PARTITA_ISOLATION": isolation,
        "PAUSE": "0.1",
        "WAIT_FOR_EVAL": str(seen),
    }
    result = script(BODY).run(env=env, timeout=120)
    out, err = result.stdout, result.stderr
    assert result.returncode == 0, err
    # The training job saw the first evaluation's line before it ended.
    assert seen.read_text() == "True"
    assert _evaluations(log) == Counter(f"{e} weights {e}" for e in range(1, 7))
    losses = json.loads(out.split("LOSSES ", 1)[1].splitlines()[0])
    assert losses == [1.0 / e for e in range(1, 7)]
    assert "OUTPUTS 6" in out
    shown = CliRunner().invoke(
        cli,
        ["jobs", "show", "-w", str(tmp_path / "wd"), str(_outputs_file(tmp_path).parent), "--json"],
    )
    assert shown.exit_code == 0, shown.output
    outputs = json.loads(shown.output)["outputs"]
    assert [(o["name"], o["seq"]) for o in outputs[:2]] == [("checkpoint", 1), ("loss", 2)]
    assert [o["value"]["epoch"] for o in outputs if o["name"] == "checkpoint"] == [1, 2, 3, 4, 5, 6]
    if isolation == "fork":
        shown_web = _monitor_outputs(tmp_path / "wd", _outputs_file(tmp_path).parent.name)
        assert [o["name"] for o in shown_web[:2]] == ["checkpoint", "loss"]
        assert shown_web[0]["config"]["fields"]["epoch"] == 1
        assert shown_web[1]["value"] == 1.0


def _monitor_outputs(workdir: Path, ident: str) -> list[dict[str, Any]]:
    """What the web monitor's job page shows of the job's outputs."""
    with monitor(workdir) as client:
        detail = client.get(f"/api/jobs/{ident}").json()
    return list(detail["outputs"])


def test_killed_experiment_rerun_evaluates_each_checkpoint_once(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    """SIGKILL the experiment while the task publishes; the rerun misses and doubles none."""
    log = tmp_path / "evals"
    env = {"EVAL_LOG": str(log), "EPOCHS": "8", "PAUSE": "0.3"}
    xp = script(BODY)
    proc = xp.popen(env=env)
    try:
        wait_for(lambda: _published(tmp_path) >= 2, what="two checkpoints")
        wait_for(lambda: log.exists(), what="a first evaluation")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    published_at_kill = _published(tmp_path)
    assert published_at_kill < 8, "the training ended before the kill: nothing was tested"
    done = _run_to_end(xp, env)
    assert "OUTPUTS 8" in done
    assert _evaluations(log) == Counter(f"{e} weights {e}" for e in range(1, 9))
    # A third run replays all eight outputs: every evaluation is reused, none runs again.
    _run_to_end(xp, env)
    assert _evaluations(log) == Counter(f"{e} weights {e}" for e in range(1, 9))
    assert not list((tmp_path / "wd" / "jobs" / "out.eval").glob("*/.attempts"))


def _run_to_end(xp: Script, env: dict[str, str]) -> str:
    result = xp.run(env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_publish_outside_a_job_checks_then_drops(tmp_path: Path) -> None:
    import partita
    from partita.errors import ReportError

    partita.publish("loss", 0.5)  # no job: nothing written, nothing raised
    with pytest.raises(ReportError, match="expected a name"):
        partita.publish("no spaces", 1)
    with pytest.raises(ReportError, match="expected a Config"):
        partita.publish("model", object())
    assert not os.listdir(tmp_path)


@pytest.mark.slurm
def test_checkpoints_of_a_slurm_job_are_evaluated_once(
    slurm_env: dict[str, str], script: Callable[..., Script], tmp_path: Path
) -> None:
    """On a cluster whose job folders this machine sees, watching works the same way."""
    log = tmp_path / "evals"
    env = {"EVAL_LOG": str(log), "ON_SLURM": "1", "EPOCHS": "4", "PAUSE": "0.5"}
    result = script(BODY).run(env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert _evaluations(log) == Counter(f"{e} weights {e}" for e in range(1, 5))
    assert "OUTPUTS 4" in result.stdout
    state = json.loads((_outputs_file(tmp_path).parent / "state.json").read_text())
    assert state["launcher"]["kind"] == "slurm"


@pytest.mark.parametrize("how", ["ctrl-c", "detach"])
def test_watching_never_holds_an_experiment_that_stops_or_detaches(
    script: Callable[..., Script], tmp_path: Path, how: str
) -> None:
    """Ctrl-C while a watched job runs ends the experiment; a detached run leaves at once."""
    log = tmp_path / "evals"
    env = {"EVAL_LOG": str(log), "EPOCHS": "200", "PAUSE": "0.2"}
    if how == "detach":
        env["PARTITA_DETACH"] = "1"
    proc = script(BODY).popen(env=env)
    try:
        wait_for(lambda: _published(tmp_path) >= 1, what="a first checkpoint")
        if how == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    state = json.loads((_outputs_file(tmp_path).parent / "state.json").read_text())
    if how == "ctrl-c":
        assert proc.returncode != 0
        assert (_outputs_file(tmp_path).parent / "cancelled").exists(), err
    else:
        assert proc.returncode == 0, err
        assert "detached" in err
        assert state["state"] == "running"
        os.kill(int(state["runner"]["pid"]), signal.SIGTERM)  # the job this test started
        wait_for(
            lambda: (_outputs_file(tmp_path).parent / "failed").exists(), what="the job to end"
        )
