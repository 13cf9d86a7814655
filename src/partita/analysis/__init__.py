"""Reading what experiments produced: the results table, the configs a run submitted.

``partita.results(workdir, ...)`` (a pandas ``DataFrame``, extra ``analysis``) and
``partita.load_run(workdir, experiment)``; ``partita results`` prints the same table.
``plot_results(workdir, metric, by=...)`` draws a metric against a parameter (matplotlib).
See docs/results.md.
"""

from partita.analysis._load import LoadedJob, LoadedRun, load_run
from partita.analysis._plots import (
    PlotData,
    Series,
    draw_plot,
    plot_data,
    plot_output,
    plot_results,
)
from partita.analysis._table import ResultRows, result_rows, results

__all__ = [
    "LoadedJob",
    "LoadedRun",
    "PlotData",
    "ResultRows",
    "Series",
    "draw_plot",
    "load_run",
    "plot_data",
    "plot_output",
    "plot_results",
    "result_rows",
    "results",
]
