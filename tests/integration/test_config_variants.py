"""Variants and identity controls in an experiment script run twice (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from xputil import ROOT, Script, job_dirs

BODY = """
from typing import Generic, TypeVar
from partita import distinct, ignore

T = TypeVar("T")

class Box(Config, Generic[T], id="xpv.box"):
    item: Param[T]

class Data(Config, id="xpv.data"):
    name: Param[str]

class Layer(Config, id="xpv.layer"):
    units: Param[int] = 4

class Fit(Task, id="xpv.fit"):
    lr: Param[float] = 0.1
    box: Param[Box[float]]
    enc: Param[Layer]
    dec: Param[Layer]
    validation: Param[Data | None] = None

    def __post_init__(self):
        self.label = f"lr={self.lr} item={self.box.item!r}"

    def execute(self):
        Path("out.json").write_text(json.dumps({
            "label": self.label,
            "validation": self.validation.name if self.validation else None,
            "tied": self.enc is self.dec,
        }))

with experiment("wd", "variants") as xp:
    base = Fit(
        box=Box[float](item=1),
        enc=distinct(Layer(), "enc"),
        dec=distinct(Layer(), "dec"),
        validation=ignore(Data(name=sys.argv[1])),
    ).submit()
    base.replace(lr=0.2).submit()
"""


def test_a_script_with_variants_runs_once_and_is_reused(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    xp = script(BODY)
    first = xp.run("v1")
    assert first.returncode == 0, first.stderr
    folders = job_dirs(tmp_path / "wd", "xpv.fit")
    assert len(folders) == 2  # the original and its variant
    outs = sorted(json.loads((f / "out.json").read_text())["label"] for f in folders)
    assert outs == ["lr=0.1 item=1.0", "lr=0.2 item=1.0"]  # __post_init__ in the job
    for folder in folders:
        out = json.loads((folder / "out.json").read_text())
        assert out["validation"] == "v1" and out["tied"] is False
    # another ignored validation set: the same jobs, reused
    second = xp.run("v2")
    assert second.returncode == 0, second.stderr
    assert "nothing to run" in second.stderr
    assert job_dirs(tmp_path / "wd", "xpv.fit") == folders


MAIN = """
from partita import experiment_main

class Fit(Task, id="xpv.counted"):
    seed: Param[int] = field(default=0, count_default=True)
    '''The random seed.'''
    lr: Param[float] = 0.1

    def execute(self):
        print("fit", self.seed, self.lr)

@experiment_main("counted", workdir="wd")
def main(xp, cfg: Fit) -> None:
    Fit(seed=cfg.seed, lr=cfg.lr).submit()
"""


def test_help_says_which_defaults_count_toward_the_identity(
    script: Callable[..., Script], tmp_path: Path
) -> None:
    xp = script(MAIN)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    shown = subprocess.run(
        [sys.executable, "-m", "partita.cli", "run", str(xp.path), "--help"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert 0 == shown.returncode, shown.stderr
    lines = shown.stdout.splitlines()
    [seed] = [line for line in lines if line.strip().startswith("seed ")]
    [lr] = [line for line in lines if line.strip().startswith("lr ")]
    assert "int; default 0 (the default counts toward the identity)" in seed
    assert "float; default 0.1" in lr and "counts" not in lr
    assert "The random seed." in shown.stdout
