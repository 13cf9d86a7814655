"""Every error partita raises on purpose.

The tree::

    PartitaError
    ├── ConfigError                  a config is defined, built or used wrongly
    │   ├── ConfigDefinitionError    (TypeError)   a Config/Task class itself is invalid
    │   ├── ConfigTypeError          (TypeError)   a value has the wrong type
    │   ├── MissingFieldError        (TypeError)   a required field has no value
    │   ├── UnknownFieldError        (TypeError)   no field of that name (with "did you mean")
    │   ├── ConstantFieldError       (AttributeError) a Constant cannot be set
    │   ├── FrozenConfigError        (AttributeError) a submitted config cannot change
    │   ├── CycleError               (ValueError)  configs refer to each other in a loop
    │   ├── EncodingError            (ValueError)  a value cannot be hashed or serialised
    │   └── PendingPathError         (AttributeError) a generated path read before submit
    ├── LoadError                    params.json cannot be read back
    │   └── TaskImportError          (ImportError) a task class cannot be imported by the job runner
    ├── WorkspaceError               the work directory is missing, broken or of another version
    │   └── SharedFolderTimeout      (TimeoutError) a shared folder stayed locked too long
    ├── LauncherError                a launcher cannot start, follow or cancel a job
    │   └── LauncherOptionError      (ValueError)  an unknown or invalid launcher option
    ├── ExperimentError              misuse of the experiment context
    │   ├── NoExperimentError        submit() outside ``with experiment(...)``
    │   ├── ExperimentFailed         some jobs failed; lists them with their stderr
    │   └── ServiceError             a service of the experiment cannot start (command, stderr)
    ├── JobLookupError               (LookupError) a job reference matches nothing or several jobs
    ├── ReportError                  (ValueError)  report() was given a value it cannot store
    ├── ResultsError                 a results selection is invalid or needs a missing extra
    │   └── PlotError                a plot's metric, columns or output file are wrong
    └── RunnerError                  an experiment's command line or config file is wrong

    PartitaWarning (UserWarning)     something works but is fragile
    └── TagConflictWarning           one tag name reaches a task with two values

Every message says what was expected, what was found and what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ConfigDefinitionError",
    "ConfigError",
    "ConfigTypeError",
    "ConstantFieldError",
    "CycleError",
    "EncodingError",
    "ExperimentError",
    "ExperimentFailed",
    "FailedJob",
    "FrozenConfigError",
    "JobLookupError",
    "LauncherError",
    "LauncherOptionError",
    "LoadError",
    "MigrationError",
    "MissingFieldError",
    "NoExperimentError",
    "PartitaError",
    "PartitaWarning",
    "PendingPathError",
    "PlotError",
    "PretaskError",
    "ReportError",
    "ResultsError",
    "RunnerError",
    "ServiceError",
    "SharedFolderTimeout",
    "TagConflictWarning",
    "TaskImportError",
    "UnknownFieldError",
    "WorkspaceError",
]


class PartitaError(Exception):
    """Root of every error raised by partita on purpose."""


class ConfigError(PartitaError):
    """A config class or value is invalid."""


class ConfigDefinitionError(ConfigError, TypeError):
    """A ``Config``/``Task`` class is defined in a way partita cannot support."""


class ConfigTypeError(ConfigError, TypeError):
    """A value given to a field does not have the field's type."""


class MissingFieldError(ConfigError, TypeError):
    """A required field was not given a value."""


class UnknownFieldError(ConfigError, TypeError):
    """A keyword or attribute names no field of the config."""


class ConstantFieldError(ConfigError, AttributeError):
    """A ``Constant`` field was given a value; constants are fixed by the class."""


class FrozenConfigError(ConfigError, AttributeError):
    """A submitted (hence frozen) config was modified."""


class CycleError(ConfigError, ValueError):
    """Configs refer to each other in a loop, so no identifier exists."""


class EncodingError(ConfigError, ValueError):
    """A value cannot be encoded for the identifier or for ``params.json``."""


class PendingPathError(ConfigError, AttributeError):
    """A generated path was read before the task was submitted."""


class PretaskError(ConfigError, TypeError):
    """A value given as a pre-task is not a light config (a ``Config`` with ``execute()``)."""


class LoadError(PartitaError):
    """A job folder's ``params.json`` cannot be turned back into a config."""


class TaskImportError(LoadError, ImportError):
    """The class of a task cannot be imported where the job runs."""


class MigrationError(ConfigError):
    """A migration cannot be applied: conflicting renames, or a conversion that fails."""


class WorkspaceError(PartitaError):
    """The work directory is missing, unwritable, broken or of another layout version."""


class SharedFolderTimeout(WorkspaceError, TimeoutError):
    """A shared folder stayed locked by another job for longer than the timeout given."""


class LauncherError(PartitaError):
    """A launcher cannot start, follow or cancel a job."""


class LauncherOptionError(LauncherError, ValueError):
    """A launcher option is unknown or has an invalid value."""


class ExperimentError(PartitaError):
    """The experiment context is used wrongly."""


class NoExperimentError(ExperimentError):
    """``submit()`` was called outside of ``with experiment(...)``."""


class ServiceError(ExperimentError):
    """A service of the experiment is defined wrongly or cannot start (``xp.add_service``)."""


class FailedJob:
    """One failed job, as listed by :class:`ExperimentFailed`."""

    __slots__ = ("detail", "identifier", "reason", "stderr", "task")

    def __init__(
        self, task: str, identifier: str, reason: str, stderr: Path | None, detail: str = ""
    ) -> None:
        self.task = task
        self.identifier = identifier
        self.reason = reason
        self.stderr = stderr
        self.detail = detail

    def __repr__(self) -> str:
        return f"FailedJob({self.task!r}, {self.identifier[:12]!r}, {self.reason!r})"

    def describe(self) -> str:
        """One line for humans: task, short id, reason and where to look."""
        where = f"\n      stderr: {self.stderr}" if self.stderr is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"  - {self.task}/{self.identifier[:12]}: {self.reason}{detail}{where}"


class ExperimentFailed(ExperimentError):
    """Some jobs of the experiment failed; ``failed`` lists each one with its stderr path."""

    def __init__(self, experiment: str, failed: Sequence[FailedJob], total: int) -> None:
        self.experiment = experiment
        self.failed = list(failed)
        self.total = total
        noun = "job" if total == 1 else "jobs"
        if all(job.reason == "cancelled" for job in self.failed):
            advice = "Run the script again to finish them: jobs that are done are reused."
        else:
            advice = (
                "Fix the cause and run the script again: jobs that are done are reused, "
                "failed ones run again."
            )
        lines = [
            f"experiment {experiment!r}: {len(self.failed)} of {total} {noun} did not complete:",
            *(job.describe() for job in self.failed),
            advice,
        ]
        super().__init__("\n".join(lines))


class JobLookupError(PartitaError, LookupError):
    """A job reference (identifier prefix or folder) matches no job, or several."""


class ReportError(PartitaError, ValueError):
    """``partita.report()`` was given a value that cannot be stored (raised inside the job)."""


class ResultsError(PartitaError):
    """A results selection is invalid, matches nothing, or needs the ``analysis`` extra."""


class PlotError(ResultsError):
    """A plot of the results table cannot be drawn as asked (``partita results --plot``).

    An unknown metric or column, a metric that is not numeric, nothing left to plot, an
    unknown output suffix, or matplotlib missing. The command line exits with code 2.
    """


class RunnerError(PartitaError):
    """The command line or a config file of an experiment script is wrong (``experiment_main``).

    Raised before anything is launched; the runner prints it and exits with code 2.
    """


class PartitaWarning(UserWarning):
    """Something works but is fragile, e.g. a task id that depends on the script's name."""


class TagConflictWarning(PartitaWarning):
    """A tag name reaches a task with two different values (two inputs, or ``tag()`` and a
    grid's ambient value); the message names both and the one the job keeps."""
