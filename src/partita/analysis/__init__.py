"""Reading what experiments produced: the results table, the configs a run submitted.

``partita.results(workdir, ...)`` (a pandas ``DataFrame``, extra ``analysis``) and
``partita.load_run(workdir, experiment)``; ``partita results`` prints the same table.
See docs/results.md.
"""

from partita.analysis._load import LoadedJob, LoadedRun, load_run
from partita.analysis._table import ResultRows, result_rows, results

__all__ = ["LoadedJob", "LoadedRun", "ResultRows", "load_run", "result_rows", "results"]
