"""Plots of the results table: a metric against a parameter, or against its step.

:func:`plot_data` shapes the rows of :func:`partita.analysis.result_rows` into series
(no matplotlib needed: what a test or another plotting tool reads); :func:`plot_results`
draws them with matplotlib's Agg renderer (no display) into a PNG, SVG or PDF file.

- ``by="lr"``: the metric's last value against the parameter ``lr``, one point per value;
  the jobs that share a value (seeds) give the mean, and a band from their min to max.
- ``by=None``: the metric's series (every value reported, by step) of each job: a curve
  per job, or, with ``hue``, the mean and min/max band of the jobs of each hue value.
- ``hue="layers"`` (or several names): one series per value (per combination of values).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partita.analysis._table import ResultRows, _nearest, result_rows
from partita.errors import PlotError
from partita.workspace import Workspace, read_results

__all__ = [
    "FORMATS",
    "PLOT_HINT",
    "PlotData",
    "Series",
    "draw_plot",
    "plot_data",
    "plot_output",
    "plot_results",
    "shape",
]

PLOT_HINT = (
    "plotting needs matplotlib, in the 'analysis' extra: pip install 'partita[analysis]' "
    "(or write the table with 'partita results --csv' and plot it with another tool)."
)
#: The file formats :func:`plot_results` writes, by suffix.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: The x axis of a plot of series (``by=None``).
STEP = "step"
#: At most this many series get a legend entry each (more would hide the plot).
LEGEND_MAX = 12


@dataclass(frozen=True)
class Series:
    """One line of a plot: the mean of the jobs at each x, and their min and max."""

    label: str | None
    """The hue value(s) (``"0.1"``, ``"lr=0.1, layers=2"``), the job for a curve per
    job, or ``None`` for the only line of a plot without hue."""
    x: list[Any]
    """Numbers on a numeric axis, category labels otherwise; in axis order."""
    mean: list[float]
    low: list[float]
    high: list[float]
    count: list[int]
    """How many values (jobs) each point averages."""


@dataclass(frozen=True)
class PlotData:
    """What a plot shows: its series and the words around them."""

    metric: str
    x_label: str
    """The ``by`` parameter, or ``"step"`` for a plot of series."""
    hue: list[str]
    categorical: bool
    """Whether x values are category labels (strings...) rather than numbers."""
    categories: list[str]
    """The x labels in axis order, for a categorical axis."""
    series: list[Series]
    jobs: int
    """How many jobs gave at least one point."""
    skipped: list[str] = field(default_factory=list)
    """Why selected jobs gave no point (``"2 jobs have no 'accuracy'"``, ``"1 job has ..."``)."""

    @property
    def title(self) -> str:
        """``accuracy by lr, per layers (6 jobs)``."""
        text = f"{self.metric} by {self.x_label}"
        if self.hue:
            text += f", per {', '.join(self.hue)}"
        noun = "job" if self.jobs == 1 else "jobs"
        return f"{text} ({self.jobs} {noun})"


def _number(value: Any) -> bool:
    """A finite int or float (not a bool): what a numeric axis or metric takes."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _order(values: Iterable[Any]) -> list[Any]:
    """Distinct values, numbers by value first, then the others by their label."""
    distinct: list[Any] = []
    for value in values:
        if not any(type(value) is type(v) and value == v for v in distinct):
            distinct.append(value)
    return sorted(distinct, key=lambda v: (0, v, "") if _number(v) else (1, 0, _label(v)))


def _check_column(table: ResultRows, name: str, what: str, choices: Sequence[str]) -> None:
    if name not in table.columns:
        raise PlotError(
            f"expected {what} among the columns of the results table, found no column "
            f"{name!r}{_nearest(name, choices)}. 'partita results --csv' lists every column."
        )


def _numeric_results(table: ResultRows) -> list[str]:
    return [name for name in table.results if any(_number(row.get(name)) for row in table.rows)]


def _metric_value(table: ResultRows, row: dict[str, Any], metric: str) -> float | None:
    """The metric of ``row`` as a float; ``None`` when missing or NaN; raises when not a number."""
    value = row.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if _number(value) or (isinstance(value, float) and math.isinf(value)):
        return float(value)
    numeric = [n for n in _numeric_results(table) if n != metric]
    known = f" (numeric results: {', '.join(numeric[:8])})" if numeric else ""
    raise PlotError(
        f"expected numbers in {metric!r} to plot it, found {_label(value)!r} "
        f"({type(value).__name__}) in job {row.get('task')}/{str(row.get('id'))[:12]}. "
        f"Plot a numeric result{known}."
    )


def _aggregate(points: dict[Any, list[float]], order: list[Any]) -> tuple[list[Any], ...]:
    xs, means, lows, highs, counts = [], [], [], [], []
    for x in order:
        values = points.get(x)
        if not values:
            continue
        xs.append(x)
        means.append(math.fsum(values) / len(values))
        lows.append(min(values))
        highs.append(max(values))
        counts.append(len(values))
    return xs, means, lows, highs, counts


def shape(
    table: ResultRows,
    metric: str,
    *,
    by: str | None = None,
    hue: str | Sequence[str] = (),
    series_of: Callable[[dict[str, Any]], list[tuple[float, float]]] | None = None,
) -> PlotData:
    """The series of a plot of ``metric`` from the rows of a results table.

    With ``by``, each row gives one point (its ``metric`` against its ``by`` value);
    without, each row gives its series, read by ``series_of(row)`` as ``(step, value)``
    pairs. Rows are grouped by their ``hue`` values (one series each), and within a
    series the values at the same x are averaged (``mean``, with ``low``/``high`` the
    min and max). Rows without the metric or the ``by`` column are left out (said in
    ``skipped``). Raises :class:`partita.errors.PlotError` for an unknown column, a
    metric that is not numeric, or nothing left to plot.
    """
    hues = [hue] if isinstance(hue, str) else list(hue)
    _check_column(table, metric, "a metric to plot", [*table.results, *table.columns])
    for name in [*([by] if by is not None else []), *hues]:
        _check_column(table, name, "a parameter", table.columns)
    skipped: list[str] = []
    rows = [row for row in table.rows if metric in row]
    if len(rows) < len(table.rows):
        skipped.append(f"{_jobs_have(len(table.rows) - len(rows))} no {metric!r}")
    for name in [*([by] if by is not None else []), *hues]:
        having = [row for row in rows if name in row]
        if len(having) < len(rows):
            skipped.append(f"{_jobs_have(len(rows) - len(having))} no {name!r}")
        rows = having

    def group_key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in hues)

    def group_label(key: tuple[Any, ...]) -> str | None:
        if not hues:
            return None
        if len(hues) == 1:
            return _label(key[0])
        return ", ".join(f"{name}={_label(value)}" for name, value in zip(hues, key, strict=True))

    # (group label, x, value) for every point; the groups in the order of their values.
    points: list[tuple[Any, Any, float]] = []
    contributing: set[int] = set()
    if by is not None:
        missing = 0
        for position, row in enumerate(rows):
            value = _metric_value(table, row, metric)
            if value is None:
                missing += 1
                continue
            points.append((group_key(row), row[by], value))
            contributing.add(position)
        if missing:
            skipped.append(f"{missing} jobs have no value of {metric!r} (None or NaN)")
    else:
        if series_of is None:
            raise PlotError(f"a plot of {metric!r} by step needs the series of the jobs.")
        for row in rows:
            _metric_value(table, row, metric)  # not a number: the same error as with by
        numbered = [(row, series_of(row)) for row in rows]
        if not any(steps for _, steps in numbered):
            raise PlotError(
                f"expected a series of {metric!r} (values reported one call at a time) in "
                f"the selected jobs, found none: a value inside a dict has no series. "
                f"Pass --by PARAM to plot its last value against a parameter."
            )
        varying = [name for name in table.varying if name not in hues]
        for position, (row, steps) in enumerate(numbered):
            if hues:
                key: tuple[Any, ...] = group_key(row)
            else:
                shown = [f"{name}={_label(row[name])}" for name in varying if name in row]
                key = (", ".join(shown[:3]) or f"{row.get('task')}/{str(row.get('id'))[:8]}",)
            for step, value in steps:
                if _number(step) and not (isinstance(value, float) and math.isnan(value)):
                    points.append((key, step, float(value)))
                    contributing.add(position)
    if not points:
        reason = "; ".join(skipped) or "no job has a value"
        raise PlotError(
            f"expected at least one value of {metric!r} to plot, found none in "
            f"{len(table.rows)} selected jobs ({reason}). Check the selection and the names."
        )
    x_values = [x for _, x, _ in points]
    categorical = not all(_number(x) for x in x_values)
    order = _order(x_values)
    if categorical:
        points = [(key, _label(x), value) for key, x, value in points]
        order = list(dict.fromkeys(_label(x) for x in order))
    series = []
    keys = _order([key for key, _, _ in points]) if hues else []
    if not hues:
        keys = sorted(dict.fromkeys(key for key, _, _ in points))
    for key in keys:
        grouped: dict[Any, list[float]] = {}
        for other, x, value in points:
            if other == key:
                grouped.setdefault(x, []).append(value)
        xs, means, lows, highs, counts = _aggregate(grouped, order)
        label = group_label(key) if hues else (key[0] if by is None else None)
        series.append(Series(label, xs, means, lows, highs, counts))
    return PlotData(
        metric=metric,
        x_label=by if by is not None else STEP,
        hue=hues,
        categorical=categorical,
        categories=order if categorical else [],
        series=series,
        jobs=len(contributing),
        skipped=skipped,
    )


def _series_reader(workspace: Workspace, metric: str) -> Callable[..., list[tuple[float, float]]]:
    def read(row: dict[str, Any]) -> list[tuple[float, float]]:
        reported = read_results(workspace.job(str(row["task"]), str(row["id"])))["series"]
        name = metric
        if name not in reported and name.startswith("result."):
            name = name[len("result.") :]
        return [(point[0], point[1]) for point in reported.get(name, [])]

    return read


def plot_data(
    workdir: str | os.PathLike[str],
    metric: str,
    *,
    by: str | None = None,
    hue: str | Sequence[str] = (),
    experiment: str | None = None,
    task: str | None = None,
    tags: dict[str, Any] | None = None,
    state: str | Iterable[str] | None = "done",
) -> PlotData:
    """The series :func:`plot_results` draws, without drawing them (see :func:`shape`)."""
    table = result_rows(workdir, experiment=experiment, task=task, tags=tags, state=state)
    workspace = Workspace(Path(workdir), create=False)
    reader = _series_reader(workspace, metric) if by is None else None
    return shape(table, metric, by=by, hue=hue, series_of=reader)


def plot_output(output: str | os.PathLike[str] | None, metric: str) -> Path:
    """The file a plot of ``metric`` goes to, checked before anything is read or drawn.

    ``output`` as given, or ``<metric>.png`` in the current folder (characters unsafe in a
    file name become ``_``), as an absolute path (resolved in the current folder): the path
    printed and returned is one that works from anywhere. Raises
    :class:`partita.errors.PlotError` for a suffix other than ``.png``, ``.svg``, ``.pdf``,
    a folder that does not exist, or no matplotlib.
    """
    if output is None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", metric).strip("._") or "plot"
        path = (Path.cwd() / f"{stem}.png").resolve()
    else:
        path = Path(output).resolve()
    _format_of(path)
    _need_matplotlib()
    return path


def _need_matplotlib() -> None:
    """Raise the friendly hint when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(PLOT_HINT) from None


def _format_of(output: Path) -> str:
    fmt = FORMATS.get(output.suffix.lower())
    if fmt is None:
        found = f"{output.suffix!r}" if output.suffix else "no suffix"
        raise PlotError(
            f"expected an output file ending in {', '.join(FORMATS)}, found {found} "
            f"({output}). The suffix chooses the format: e.g. {output.stem or 'plot'}.png."
        )
    if not output.parent.is_dir():
        raise PlotError(
            f"expected an existing folder for {output}, found no folder {output.parent}. "
            "Create it first, or write the plot elsewhere."
        )
    return fmt


def draw_plot(
    data: PlotData,
    output: str | os.PathLike[str],
    *,
    log_x: bool = False,
    log_y: bool = False,
) -> Path:
    """Draw ``data`` (from :func:`plot_data`) into ``output`` (``.png``, ``.svg`` or ``.pdf``).

    With matplotlib's Agg renderer (no display); returns the path. See :func:`plot_results`.
    """
    path = Path(output)
    fmt = _format_of(path)
    _need_matplotlib()
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7.0, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # draws without a display; pyplot's global state is not touched
    axes = figure.add_subplot()
    positions = {label: i for i, label in enumerate(data.categories)}
    for index, series in enumerate(data.series):
        xs = [positions[x] for x in series.x] if data.categorical else series.x
        many = len(series.x) > 1
        (line,) = axes.plot(
            xs,
            series.mean,
            marker="o" if data.x_label != STEP or not many else None,
            markersize=4,
            linestyle="-" if many else "none",
            label=series.label,
        )
        line.set_gid(f"series-{index}")
        if any(count > 1 for count in series.count):
            axes.fill_between(xs, series.low, series.high, alpha=0.2, color=line.get_color())
    if data.categorical:
        axes.set_xticks(range(len(data.categories)), data.categories)
    elif all(isinstance(x, int) for series in data.series for x in series.x):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(data.x_label)
    averaged = any(count > 1 for series in data.series for count in series.count)
    axes.set_ylabel(f"{data.metric} (mean, min–max)" if averaged else data.metric)
    axes.set_title(data.title)
    if log_x and not data.categorical:
        axes.set_xscale("log")
    if log_y:
        axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    labelled = [s for s in data.series if s.label is not None]
    if labelled and len(labelled) <= LEGEND_MAX:
        title = data.hue[0] if len(data.hue) == 1 else None
        axes.legend(title=title, fontsize="small")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "partita"}):
        figure.savefig(path, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return path


def plot_results(
    workdir: str | os.PathLike[str],
    metric: str,
    *,
    by: str | None = None,
    hue: str | Sequence[str] = (),
    output: str | os.PathLike[str] | None = None,
    experiment: str | None = None,
    task: str | None = None,
    tags: dict[str, Any] | None = None,
    state: str | Iterable[str] | None = "done",
    log_x: bool = False,
    log_y: bool = False,
) -> Path:
    """Plot ``metric`` of the selected jobs against ``by`` into an image file; its path.

    ``by`` is a column of the results table (a parameter or tag: ``"lr"``,
    ``"model.lr"``): one point per value, the mean of the jobs that share it (seeds)
    with a band from their min to max. Without ``by``, the metric's series (the values
    reported one call at a time, by step): a curve per job, or per ``hue`` value. ``hue``
    (a column, or several) splits the jobs into one line per value. Numbers on the x axis
    are spaced by value (``log_x`` for a log scale); other values are categories.

    ``output`` ends in ``.png``, ``.svg`` or ``.pdf``; by default ``<metric>.png`` in the
    current folder. Selection as in :func:`partita.analysis.results`. Needs matplotlib
    (the ``analysis`` extra), not pandas. Raises :class:`partita.errors.PlotError` for an
    unknown metric or column (with the nearest names), a metric that is not numeric, a
    selection with nothing to plot or an unknown suffix, and
    :class:`partita.errors.ResultsError` for a selection that matches no job.
    """
    path = plot_output(output, metric)
    data = plot_data(
        workdir,
        metric,
        by=by,
        hue=hue,
        experiment=experiment,
        task=task,
        tags=tags,
        state=state,
    )
    return draw_plot(data, path, log_x=log_x, log_y=log_y)


def _jobs_have(count: int) -> str:
    """``1 job has`` or ``3 jobs have``."""
    return "1 job has" if count == 1 else f"{count} jobs have"
