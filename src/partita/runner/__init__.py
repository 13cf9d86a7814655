"""The experiment runner: a script's command line, config files, sweeps and reruns.

``@experiment_main("name")`` turns ``def main(xp, cfg: Setup)`` into a script that takes
``KEY=VALUE`` overrides, ``--config FILE.yaml``, ``--multirun``, ``--show`` and ``--help``,
checked against ``Setup`` before anything runs. :func:`grid` loops over combinations and
tags the tasks each one submits. See docs/runner.md.

Never imported by the job runner (``partita.run``): it loads the experiment layer, and the
YAML library when a config file is read.
"""

from partita.runner._grid import grid
from partita.runner._main import ExperimentMain, experiment_main

__all__ = ["ExperimentMain", "experiment_main", "grid"]
