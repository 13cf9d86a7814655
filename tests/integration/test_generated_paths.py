"""Generated paths of configs nested in a task: their folders exist when the job runs."""

from __future__ import annotations

from pathlib import Path

from xputil import Script, job_dirs

NESTED = """
class Optimizer(Config, id="gen.optimizer"):
    lr: Param[float] = 0.1
    state: Meta[Path] = field(default_factory=PathGenerator("state.pt"))

class Train(Task, id="gen.train"):
    optimizer: Param[Optimizer]
    heads: Param[list[Optimizer]]
    model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))
    best: Meta[Path] = field(default_factory=PathGenerator("checkpoints/best.pt"))

    def execute(self):
        # Written as a plain task writes its own file: no mkdir in the task.
        self.model.write_text("model")
        self.best.write_text("best")
        self.optimizer.state.write_text(f"lr={self.optimizer.lr}")
        for head in self.heads:
            head.state.write_text(f"head lr={head.lr}")

with experiment(sys.argv[1], "gen"):
    Train(optimizer=Optimizer(lr=0.5), heads=[Optimizer(lr=0.1), Optimizer(lr=0.2)]).submit()
"""


def test_a_nested_configs_generated_path_can_be_written_by_the_job(tmp_path: Path) -> None:
    out = Script(tmp_path, "gen", NESTED).run(str(tmp_path / "wd"))
    assert out.returncode == 0, out.stderr
    (job,) = job_dirs(tmp_path / "wd", "gen.train")
    assert (job / "done").exists()
    assert (job / "model.pt").read_text() == "model"
    assert (job / "checkpoints" / "best.pt").read_text() == "best"
    assert (job / "optimizer" / "state.pt").read_text() == "lr=0.5"
    assert (job / "heads.0" / "state.pt").read_text() == "head lr=0.1"
    assert (job / "heads.1" / "state.pt").read_text() == "head lr=0.2"
