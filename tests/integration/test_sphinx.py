"""The Sphinx extension ``partita.sphinx`` builds a real docs project."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="sphinx is in the test extra")

ROOT = Path(__file__).resolve().parents[2]

MODELS = '''
from partita import Config, Task, Param, Meta, Constant, field


class Optimizer(Config, id="docs.optimizer"):
    """An optimiser.

    Attributes:
        lr (float): Learning rate of the optimiser.
        momentum: Momentum, kept between
            steps.
    """

    lr: Param[float] = 0.001
    momentum: Param[float] = 0.9


class Train(Task, id="docs.train"):
    """Train a model.

    Parameters
    ----------
    epochs : int
        How many passes over the data.
    """

    epochs: Param[int] = 3
    optimizer: Param[Optimizer] = field(default_factory=Optimizer)
    """The optimiser used for every step."""
    device: Meta[str] = "cpu"
    version: Constant[int] = 2
    seed: Param[int]
    warmup: Param[int] = field(default=5, count_default=True)
'''

INDEX = """
Models
======

.. partita:config:: models.Optimizer

.. partita:config:: models.Train

   Extra text about training.

See :partita:config:`models.Train`.
"""


def test_config_directive_renders_fields(tmp_path: Path) -> None:
    source = tmp_path / "docs"
    source.mkdir()
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS))
    (source / "conf.py").write_text('extensions = ["partita.sphinx"]\nproject = "t"\n')
    (source / "index.rst").write_text(INDEX)
    out = tmp_path / "html"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(tmp_path)])}
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(source), str(out)],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert 0 == build.returncode, build.stderr + build.stdout
    html = (out / "index.html").read_text()
    for text in (
        "Learning rate of the optimiser.",  # Google-style Attributes section
        "Momentum, kept between steps.",  # continued on the next line
        "How many passes over the data.",  # NumPy-style Parameters section
        "The optimiser used for every step.",  # attribute docstring
        "Extra text about training.",
        "docs.train",
        "Constant",
        "Meta",
        "required",
        "0.001",
        "5 (the default counts toward the identity)",  # field(count_default=True)
    ):
        assert text in html, text
    assert html.count("counts toward the identity") == 1  # only the field that says so
    # The nested config type links to its own documentation, and so does the role.
    assert 'href="#partita-config-models-optimizer"' in html
    assert html.count('href="#partita-config-models-train"') >= 1


def test_a_class_that_cannot_be_imported_fails_the_build(tmp_path: Path) -> None:
    source = tmp_path / "docs"
    source.mkdir()
    (source / "conf.py").write_text('extensions = ["partita.sphinx"]\nproject = "t"\n')
    (source / "index.rst").write_text("T\n=\n\n.. partita:config:: nowhere.Missing\n")
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(source), str(out)],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert 0 != build.returncode
    assert "cannot import nowhere.Missing" in build.stderr
