"""partita: typed experiment tasks with stable identities, run once, locally or on a cluster.

Layout (imports point downwards only)::

    partita.config      Config, Task, Param/Meta/Constant, identity, params.json
    partita.workspace   work directory layout, atomic writes, locks, state files, run records
    partita.launchers   how a job runs: local processes, Slurm
    partita.ssh         experiments on other computers over SSH
    partita.scheduler   dependency graph, job states, tokens, retries, events
    partita._experiment the ``experiment()`` context
    partita.run         the job-side runner (imports config + workspace only)
    partita.cli         the ``partita`` command; partita.web: the live monitor

``import partita`` loads the config layer only; the rest is imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from partita._progress import progress
from partita._publish import publish
from partita._report import artifacts, report
from partita._stopping import Stopping
from partita._version import __version__
from partita.config import (
    Config,
    Constant,
    Meta,
    Param,
    PathGenerator,
    Task,
    distinct,
    field,
    fields,
    identifier,
    ignore,
    load,
    renamed_enum,
    tag,
)
from partita.errors import ExperimentFailed, PartitaError

if TYPE_CHECKING:
    from partita._experiment import Experiment, Job
    from partita._resumable import ResumableTask
    from partita._services import CommandService, Service, TensorboardService
    from partita.launchers import Launcher, LocalLauncher
    from partita.launchers.slurm import SlurmLauncher
    from partita.runner import experiment_main, grid
    from partita.scheduler import Retry, Token
    from partita.ssh import SSH
    from partita.workspace import JobState


__all__ = [
    "SSH",
    "CommandService",
    "Config",
    "Constant",
    "Experiment",
    "ExperimentFailed",
    "Job",
    "JobState",
    "Launcher",
    "LocalLauncher",
    "Meta",
    "Param",
    "PartitaError",
    "PathGenerator",
    "ResumableTask",
    "Retry",
    "Service",
    "SlurmLauncher",
    "Stopping",
    "Task",
    "TensorboardService",
    "Token",
    "__version__",
    "artifacts",
    "distinct",
    "experiment",
    "experiment_main",
    "field",
    "fields",
    "grid",
    "identifier",
    "ignore",
    "load",
    "load_run",
    "progress",
    "publish",
    "renamed_enum",
    "report",
    "results",
    "tag",
]


def experiment(workdir: Any, name: str, **options: Any) -> Experiment:
    """Open an experiment: ``with partita.experiment("workdir", "name") as xp: ...``.

    Starts the scheduler; ``Task.submit()`` inside the block registers jobs and returns at
    once; leaving the block waits for every job and raises :class:`ExperimentFailed` if any
    failed. Options are those of :class:`partita.Experiment` (``max_jobs``, ``launcher``,
    ``detach``, ``dry_run``, ...).
    """
    from partita.config._runtime import check_script_import

    check_script_import()
    from partita._experiment import Experiment, set_monitor_starter

    set_monitor_starter(_start_monitor)
    return Experiment(workdir, name, **options)


def _start_monitor(workdir: Any, port: int) -> Any:
    """Serve the web monitor of ``workdir`` in a thread (``experiment(monitor=True)``).

    The experiment layer does not import the web layer: this facade, above both, hands
    it this function.
    """
    from partita.web import start_in_thread

    return start_in_thread(workdir, port=port)


def results(
    workdir: Any,
    *,
    experiment: str | None = None,
    task: str | None = None,
    tags: dict[str, Any] | None = None,
    state: str | list[str] | None = "done",
    varying_only: bool = False,
) -> Any:
    """The jobs of ``workdir`` as a pandas ``DataFrame``: parameters, tags, reported results.

    One row per job: ``id``, ``task``, ``state``, the tags and parameters that vary (dotted
    names that follow the tasks producing the job's inputs: ``model.lr``), the reported
    results, the constant ones (dropped with ``varying_only=True``) and the times. See
    :func:`partita.analysis.results` and docs/results.md. Needs the ``analysis`` extra.
    """
    from partita.analysis import results as table

    return table(
        workdir,
        experiment=experiment,
        task=task,
        tags=tags,
        state=state,
        varying_only=varying_only,
    )


def load_run(workdir: Any, experiment: str, run: str = "latest") -> Any:
    """The configs a run of ``experiment`` submitted, rebuilt, with their jobs.

    See :func:`partita.analysis.load_run`.
    """
    from partita.analysis import load_run as load

    return load(workdir, experiment, run)


_LAZY = {
    "Experiment": ("partita._experiment", "Experiment"),
    "Job": ("partita._experiment", "Job"),
    "JobState": ("partita.workspace", "JobState"),
    "Launcher": ("partita.launchers", "Launcher"),
    "LocalLauncher": ("partita.launchers", "LocalLauncher"),
    "SlurmLauncher": ("partita.launchers.slurm", "SlurmLauncher"),
    "ResumableTask": ("partita._resumable", "ResumableTask"),
    "Service": ("partita._services", "Service"),
    "CommandService": ("partita._services", "CommandService"),
    "TensorboardService": ("partita._services", "TensorboardService"),
    "Retry": ("partita.scheduler", "Retry"),
    "SSH": ("partita.ssh._connector", "SSH"),
    "Token": ("partita.scheduler", "Token"),
    "experiment_main": ("partita.runner", "experiment_main"),
    "grid": ("partita.runner", "grid"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'partita' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    if name == "Experiment":
        from partita._experiment import set_monitor_starter

        set_monitor_starter(_start_monitor)
    globals()[name] = value
    return value
