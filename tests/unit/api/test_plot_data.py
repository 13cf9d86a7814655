"""The data behind ``partita results --plot``: points, means and bands, errors, formats."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest

from partita.analysis import ResultRows
from partita.analysis._plots import PLOT_HINT, draw_plot, shape
from partita.errors import PlotError, ResultsError


def _table(rows: list[dict[str, Any]], results: list[str]) -> ResultRows:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    varying = [
        name
        for name in columns
        if name not in results
        and name not in ("id", "task", "state")
        and len({repr(row.get(name)) for row in rows}) > 1
    ]
    return ResultRows(columns, rows, varying, results)


def _rows() -> list[dict[str, Any]]:
    rows = []
    for number, (lr, layers, seed) in enumerate(
        (lr, layers, seed) for lr in (0.3, 0.1, 0.2) for layers in (4, 2) for seed in (0, 1)
    ):
        rows.append(
            {
                "id": f"{number:040x}",
                "task": "t.train",
                "state": "done",
                "lr": lr,
                "layers": layers,
                "seed": seed,
                "accuracy": 1 - lr + layers / 100 + seed / 10,
                "note": "ok",
            }
        )
    return rows


def test_points_by_a_parameter_are_sorted_and_averaged_over_seeds() -> None:
    data = shape(_table(_rows(), ["accuracy", "note"]), "accuracy", by="lr")
    assert data.x_label == "lr" and not data.categorical and data.hue == []
    assert data.jobs == 12 and data.title == "accuracy by lr (12 jobs)"
    [series] = data.series
    assert series.label is None
    assert series.x == [0.1, 0.2, 0.3]
    assert series.count == [4, 4, 4]
    # mean over layers 2/4 and seeds 0/1: 1 - lr + 0.03 + 0.05
    assert series.mean == pytest.approx([1 - lr + 0.08 for lr in (0.1, 0.2, 0.3)])
    assert series.low == pytest.approx([1 - lr + 0.02 for lr in (0.1, 0.2, 0.3)])
    assert series.high == pytest.approx([1 - lr + 0.14 for lr in (0.1, 0.2, 0.3)])


def test_hue_gives_one_series_per_value_and_per_combination() -> None:
    table = _table(_rows(), ["accuracy", "note"])
    data = shape(table, "accuracy", by="lr", hue="layers")
    assert [s.label for s in data.series] == ["2", "4"]
    assert data.series[0].mean == pytest.approx([1 - lr + 0.07 for lr in (0.1, 0.2, 0.3)])
    assert data.series[1].count == [2, 2, 2]
    assert data.title == "accuracy by lr, per layers (12 jobs)"
    both = shape(table, "accuracy", by="lr", hue=["layers", "seed"])
    assert [s.label for s in both.series] == [
        "layers=2, seed=0",
        "layers=2, seed=1",
        "layers=4, seed=0",
        "layers=4, seed=1",
    ]
    assert all(s.count == [1, 1, 1] for s in both.series)
    assert both.series[3].mean == pytest.approx([1 - lr + 0.14 for lr in (0.1, 0.2, 0.3)])


def test_values_that_are_not_numbers_are_categories() -> None:
    rows = _rows()
    for row in rows:
        row["optimizer"] = "sgd" if row["seed"] else "adam"
    data = shape(_table(rows, ["accuracy"]), "accuracy", by="optimizer")
    assert data.categorical and data.categories == ["adam", "sgd"]
    assert data.series[0].x == ["adam", "sgd"]
    assert data.series[0].mean[1] - data.series[0].mean[0] == pytest.approx(0.1)


def test_rows_without_the_metric_or_its_value_are_left_out_and_said() -> None:
    rows = _rows()
    rows[0]["accuracy"] = float("nan")
    rows[1]["accuracy"] = None
    del rows[2]["accuracy"]
    rows.append({"id": "f" * 40, "task": "t.split", "state": "done", "size": 3})
    data = shape(_table(rows, ["accuracy", "size"]), "accuracy", by="lr")
    assert data.jobs == 9
    assert sum(data.series[0].count) == 9
    assert "2 jobs have no 'accuracy'" in data.skipped
    assert "2 jobs have no value of 'accuracy' (None or NaN)" in data.skipped
    assert all(math.isfinite(v) for v in data.series[0].mean)


def test_series_by_step_per_job_and_per_hue() -> None:
    rows = _rows()[:4]  # lr 0.3, layers 4 and 2, seeds 0 and 1

    def series_of(row: dict[str, Any]) -> list[tuple[float, float]]:
        return [(step, row["lr"] * row["layers"] / step + row["seed"]) for step in (1, 2, 3)]

    table = _table(rows, ["accuracy"])
    per_job = shape(table, "accuracy", series_of=series_of)
    assert per_job.x_label == "step" and per_job.jobs == 4
    assert [s.label for s in per_job.series] == [
        "layers=2, seed=0",
        "layers=2, seed=1",
        "layers=4, seed=0",
        "layers=4, seed=1",
    ]
    assert per_job.series[0].x == [1, 2, 3]
    assert per_job.series[0].mean == pytest.approx([0.6, 0.3, 0.2])
    per_layers = shape(table, "accuracy", hue="layers", series_of=series_of)
    assert [s.label for s in per_layers.series] == ["2", "4"]
    assert per_layers.series[1].mean == pytest.approx([1.2 + 0.5, 0.6 + 0.5, 0.4 + 0.5])
    assert per_layers.series[1].low == pytest.approx([1.2, 0.6, 0.4])
    assert per_layers.series[1].count == [2, 2, 2]
    with pytest.raises(PlotError, match=r"found none"):
        shape(table, "accuracy", series_of=lambda row: [])


def test_errors_name_what_was_expected_and_the_nearest_columns() -> None:
    table = _table(_rows(), ["accuracy", "note"])
    with pytest.raises(PlotError, match=r"no column 'acuracy' \(did you mean: accuracy"):
        shape(table, "acuracy", by="lr")
    with pytest.raises(PlotError, match=r"no column 'lrr' \(did you mean: lr"):
        shape(table, "accuracy", by="lrr")
    with pytest.raises(PlotError, match=r"no column 'layer' \(did you mean: layers"):
        shape(table, "accuracy", by="lr", hue="layer")
    with pytest.raises(PlotError, match=r"expected numbers in 'note'.*found 'ok' \(str\)"):
        shape(table, "note", by="lr")
    rows = _rows()
    for row in rows:
        row["accuracy"] = float("nan")
    with pytest.raises(PlotError, match="expected at least one value of 'accuracy'"):
        shape(_table(rows, ["accuracy"]), "accuracy", by="lr")
    assert issubclass(PlotError, ResultsError)


def test_the_output_suffix_chooses_the_format(tmp_path: Path) -> None:
    data = shape(_table(_rows(), ["accuracy"]), "accuracy", by="lr", hue="layers")
    with pytest.raises(PlotError, match=r"ending in \.png, \.svg, \.pdf, found '\.jpg'"):
        draw_plot(data, tmp_path / "plot.jpg")
    with pytest.raises(PlotError, match="found no folder"):
        draw_plot(data, tmp_path / "missing" / "plot.png")
    pdf = draw_plot(data, tmp_path / "plot.PDF")
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_without_matplotlib_a_friendly_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shape(_table(_rows(), ["accuracy"]), "accuracy", by="lr")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotError) as caught:
        draw_plot(data, tmp_path / "plot.png")
    assert str(caught.value) == PLOT_HINT
    assert "pip install 'partita[analysis]'" in PLOT_HINT
    assert not (tmp_path / "plot.png").exists()
