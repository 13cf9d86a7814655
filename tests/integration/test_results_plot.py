"""``partita results --plot`` and ``partita.analysis.plot_results`` on a real sweep."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from xputil import Script

from partita.analysis import plot_data, plot_results
from partita.cli import cli

SWEEP = """
class Train(Task, id="plot.train"):
    lr: Param[float]
    optimizer: Param[str] = "sgd"
    seed: Param[int] = 0
    def execute(self):
        for epoch in range(4):
            partita.report(loss=self.lr / (epoch + 1) + self.seed / 100)
        partita.report(accuracy=1 - self.lr + self.seed / 10, note="ok", metrics={"f1": 0.5})

class Prepare(Task, id="plot.prepare"):
    def execute(self):
        partita.report(size=100)

with experiment(sys.argv[1], "sweep"):
    Prepare().submit()
    for lr in (0.1, 0.2, 0.4):
        for optimizer in ("sgd", "adam"):
            for seed in (0, 1):
                Train(lr=tag(lr), optimizer=tag(optimizer), seed=tag(seed)).submit()
"""

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plot")
    out = Script(folder, "sweep", SWEEP).run(str(folder / "wd"))
    assert out.returncode == 0, out.stderr
    return folder / "wd"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return ["".join(node.itertext()).strip() for node in root.iter(f"{SVG}text")]


def _series_ids(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return sorted(
        node.get("id", "") for node in root.iter() if node.get("id", "").startswith("series-")
    )


def test_plot_a_metric_by_a_parameter_into_a_png(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(
        cli, ["results", "-w", str(workdir), "--plot", "accuracy", "--by", "lr"]
    )
    assert out.exit_code == 0, out.output
    path = tmp_path / "accuracy.png"
    assert out.stdout.strip() == str(path)
    # The Prepare job has no accuracy: left out, and said on stderr.
    assert out.stderr.strip() == "note: left out: 1 job has no 'accuracy'"
    width, height = _png_size(path)
    assert (width, height) == (700, 450)
    assert path.stat().st_size > 10_000  # axes, labels and a line, not an empty canvas
    # A relative --output is printed as the absolute path of the file written.
    (tmp_path / "figs").mkdir()
    args = ["results", "-w", str(workdir), "--plot", "accuracy", "-o", "figs/../figs/acc.svg"]
    out = CliRunner().invoke(cli, [*args, "--by", "lr"])
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == str(tmp_path / "figs" / "acc.svg")
    assert (tmp_path / "figs" / "acc.svg").is_file()


def test_plot_by_a_parameter_per_hue_into_an_svg(workdir: Path, tmp_path: Path) -> None:
    target = tmp_path / "acc.svg"
    args = ["results", "-w", str(workdir), "--plot", "accuracy", "--by", "lr"]
    out = CliRunner().invoke(cli, [*args, "--hue", "optimizer", "-o", str(target), "-t", "train"])
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == str(target) and out.stderr == ""
    texts = _svg_texts(target)
    assert "lr" in texts  # the x label
    assert "accuracy (mean, min–max)" in texts  # two seeds per point: a band
    assert "accuracy by lr, per optimizer (12 jobs)" in texts
    assert {"optimizer", "adam", "sgd"} <= set(texts)  # the legend
    assert _series_ids(target) == ["series-0", "series-1"]
    # What was drawn: the mean of the two seeds at each lr, and their min and max.
    data = plot_data(workdir, "accuracy", by="lr", hue="optimizer")
    assert [s.label for s in data.series] == ["adam", "sgd"]
    for series in data.series:
        assert series.x == [0.1, 0.2, 0.4]
        assert series.mean == pytest.approx([1 - lr + 0.05 for lr in (0.1, 0.2, 0.4)])
        assert series.low == pytest.approx([1 - lr for lr in (0.1, 0.2, 0.4)])
        assert series.count == [2, 2, 2]


def test_plot_a_series_by_step(workdir: Path, tmp_path: Path) -> None:
    target = tmp_path / "loss.svg"
    out = CliRunner().invoke(
        cli,
        [
            "results",
            "-w",
            str(workdir),
            "--plot",
            "loss",
            "--hue",
            "lr",
            "-o",
            str(target),
            "-t",
            "tr",
        ],
    )
    assert out.exit_code == 0, out.output
    texts = _svg_texts(target)
    assert "step" in texts and "loss by step, per lr (12 jobs)" in texts
    assert {"0.1", "0.2", "0.4"} <= set(texts)
    assert _series_ids(target) == ["series-0", "series-1", "series-2"]
    data = plot_data(workdir, "loss", hue="lr")
    assert data.series[2].x == [1, 2, 3, 4]
    assert data.series[2].mean == pytest.approx([0.4 / s + 0.005 for s in (1, 2, 3, 4)])
    # Without hue, one curve per job, named by what varies.
    per_job = plot_results(workdir, "loss", output=tmp_path / "jobs.png", tags={"lr": 0.1})
    assert _png_size(per_job) == (700, 450)
    labels = [s.label for s in plot_data(workdir, "loss", tags={"lr": 0.1}).series]
    assert labels == [
        "optimizer=adam, seed=0",
        "optimizer=adam, seed=1",
        "optimizer=sgd, seed=0",
        "optimizer=sgd, seed=1",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--plot", "acuracy", "--by", "lr"], "no column 'acuracy' (did you mean: accuracy"),
        (["--plot", "accuracy", "--by", "lrr"], "no column 'lrr' (did you mean: lr"),
        (["--plot", "accuracy", "--by", "lr", "--hue", "optimiser"], "did you mean: optimizer"),
        (["--plot", "note", "--by", "lr"], "expected numbers in 'note' to plot it, found 'ok'"),
        (["--plot", "metrics.f1"], "expected a series of 'metrics.f1'"),
        (["--plot", "accuracy", "--by", "lr", "--tag", "lr=0.3"], "no job has the tag lr=0.3"),
        (["--plot", "accuracy", "--by", "lr", "-o", "plot.jpg"], "ending in .png, .svg, .pdf"),
    ],
)
def test_plot_errors_exit_2_with_a_message(
    workdir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(cli, ["results", "-w", str(workdir), *extra])
    assert out.exit_code == 2, out.output
    assert out.output.startswith("error: ") and message in out.output
    assert "Traceback" not in out.output
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_plot_options_need_plot(workdir: Path) -> None:
    out = CliRunner().invoke(cli, ["results", "-w", str(workdir), "--by", "lr"])
    assert out.exit_code == 2 and "--by goes with --plot METRIC" in out.output
    out = CliRunner().invoke(cli, ["results", "-w", str(workdir), "--plot", "loss", "--csv"])
    assert out.exit_code == 2 and "--plot draws an image" in out.output
    assert "--plot METRIC --by PARAM" in CliRunner().invoke(cli, ["results", "--help"]).output


def test_without_matplotlib_the_command_says_which_extra(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = CliRunner().invoke(cli, ["results", "-w", str(workdir), "--plot", "loss"])
    assert out.exit_code == 2
    assert "plotting needs matplotlib" in out.output
    assert "pip install 'partita[analysis]'" in out.output
    assert list(tmp_path.iterdir()) == []
    # The table itself needs neither matplotlib nor pandas.
    assert CliRunner().invoke(cli, ["results", "-w", str(workdir), "--csv"]).exit_code == 0


def test_a_wrong_state_is_a_usage_error_of_the_table_too(workdir: Path) -> None:
    """`--state` is checked by the command line (exit 2, naming the states and 'all')."""
    out = CliRunner().invoke(cli, ["results", "-w", str(workdir), "--state", "bogus"])
    assert out.exit_code == 2, out.output
    assert "'bogus' is not one of" in out.output and "'all'" in out.output
    assert "None" not in out.output  # no Python spelling on the command line
    out = CliRunner().invoke(cli, ["results", "-w", str(workdir), "--state", "all", "--csv"])
    assert out.exit_code == 0, out.output
    assert len(out.output.splitlines()) == 1 + 13


def test_the_table_tells_a_none_value_from_a_missing_one(tmp_path: Path) -> None:
    """A parameter set to None reads `null`; a column a job does not have stays blank."""
    script = Script(
        tmp_path,
        "nones",
        """
class Fit(Task, id="none.fit"):
    width: Param[int | None] = None
    seed: Param[int | None] = None
    def execute(self):
        partita.report(score=1.0)

class Other(Task, id="none.other"):
    def execute(self):
        partita.report(score=2.0)

with experiment(sys.argv[1], "nones"):
    Fit().submit()
    Fit(width=4).submit()
    Other().submit()
""",
    )
    out = script.run(str(tmp_path / "wd"))
    assert out.returncode == 0, out.stderr
    shown = CliRunner().invoke(cli, ["results", "-w", str(tmp_path / "wd")])
    assert shown.exit_code == 0, shown.output
    rows = sorted(line.split()[1:] for line in shown.output.splitlines()[2:5])
    fits = [row for row in rows if row[0] == "none.fit"]
    assert sorted(row[2] for row in fits) == ["4", "null"]  # width: 4, and None
    (other,) = [row for row in rows if row[0] == "none.other"]
    assert "null" not in other  # it has no width: blank
    assert "seed=null" in shown.output  # None in every Fit: the constant line says so


def test_a_column_some_jobs_of_a_task_lack_is_varying(tmp_path: Path) -> None:
    """An empty list of configs beside a list flattened into `heads[0].n`: the jobs differ,
    so both columns vary (they are not 'the same in every job that has it')."""
    script = Script(
        tmp_path,
        "heads",
        """
class Head(Config, id="heads.head"):
    n: Param[int]

class Net(Task, id="heads.net"):
    heads: Param[list[Head]] = field(default_factory=list)
    lr: Param[float] = 0.1
    def execute(self):
        partita.report(score=len(self.heads))

with experiment(sys.argv[1], "heads"):
    Net().submit()
    Net(heads=[Head(n=4)]).submit()
""",
    )
    out = script.run(str(tmp_path / "wd"))
    assert out.returncode == 0, out.stderr
    listed = CliRunner().invoke(cli, ["results", "-w", str(tmp_path / "wd"), "--json"])
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.output)
    assert {"heads", "heads[0].n"} <= set(data["varying"]), data["varying"]
    assert "lr" not in data["varying"]
    shown = CliRunner().invoke(cli, ["results", "-w", str(tmp_path / "wd")])
    assert "heads[0].n" in shown.output.splitlines()[0]  # a column, not the constant line
