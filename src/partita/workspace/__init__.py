"""The work directory: layout, atomic writes, locks, job state files and run records.

Files are the truth: everything here can be read by another process, another machine
sharing the directory, or a later partita.

``__all__`` is the layer's API for the layers above (docs/design.md, "Module map"). The
low-level writers (``_atomic.atomic_write``/``write_json``, ``_state.write_state``/
``write_final``/``clear_final``) are private: the protocol functions here are how a job
folder changes, and only the modules docs/design.md names import those writers directly.
"""

from typing import TYPE_CHECKING

from partita.workspace._atomic import read_json
from partita.workspace._locks import FileLock, hold, holder
from partita.workspace._outputs import OutputCursor, read_outputs
from partita.workspace._paths import LAYOUT_VERSION, JobPaths, Workspace, done_in
from partita.workspace._process import hostname, identity, is_alive
from partita.workspace._results import read_job_environment, read_results
from partita.workspace._shared import delete_shared, read_shared_refs, record_shared
from partita.workspace._state import (
    EXIT_SUPERSEDED,
    Claim,
    JobState,
    Reason,
    Recorded,
    append_history,
    begin_attempt,
    claim_attempt,
    final_marker,
    read_state,
    record_final,
    record_handle,
    set_aside,
)
from partita.workspace._status import (
    JobStatus,
    Progress,
    done_marker_present,
    read_progress,
    read_status,
)

__all__ = [
    "EXIT_SUPERSEDED",
    "LAYOUT_VERSION",
    "Claim",
    "FileLock",
    "Index",
    "JobInfo",
    "JobPaths",
    "JobState",
    "JobStatus",
    "OutputCursor",
    "Policy",
    "Progress",
    "Reason",
    "Recorded",
    "Retention",
    "RetentionPlan",
    "RunInfo",
    "RunPaths",
    "RunRecord",
    "RunWriter",
    "Submission",
    "Submissions",
    "Workspace",
    "append_history",
    "begin_attempt",
    "claim_attempt",
    "delete_job",
    "delete_run",
    "delete_shared",
    "delete_unused_shared",
    "describe_migration",
    "done_in",
    "done_marker_present",
    "final_marker",
    "hold",
    "holder",
    "hostname",
    "identity",
    "is_alive",
    "iter_runs",
    "no_space",
    "open_index",
    "plan_retention",
    "protect_jobs",
    "read_config",
    "read_environment",
    "read_job",
    "read_job_environment",
    "read_json",
    "read_migration",
    "read_outputs",
    "read_progress",
    "read_results",
    "read_retention",
    "read_run",
    "read_services",
    "read_shared_refs",
    "read_state",
    "read_status",
    "read_submissions",
    "record_final",
    "record_handle",
    "record_match",
    "record_shared",
    "set_aside",
    "shared_of",
    "sweep_leftovers",
    "unused_shared",
    "update_retention",
    "write_services",
]

if TYPE_CHECKING:
    from partita.workspace._gc import Plan as RetentionPlan
    from partita.workspace._gc import (
        Policy,
        Retention,
        delete_job,
        delete_run,
        delete_unused_shared,
        read_retention,
        shared_of,
        sweep_leftovers,
        unused_shared,
        update_retention,
    )
    from partita.workspace._gc import plan as plan_retention
    from partita.workspace._gc import protect as protect_jobs
    from partita.workspace._index import Index
    from partita.workspace._index_open import open_index
    from partita.workspace._jobinfo import JobInfo, RunInfo, read_job
    from partita.workspace._migrate import describe_migration, read_migration, record_match
    from partita.workspace._runs import (
        RunPaths,
        RunRecord,
        RunWriter,
        Submission,
        Submissions,
        iter_runs,
        no_space,
        read_config,
        read_environment,
        read_run,
        read_submissions,
    )
    from partita.workspace._services import read_services, write_services

_LAZY = {"Index", "JobInfo", "RunInfo", "open_index", "read_job"}
_RETENTION = {
    "Policy": "Policy",
    "Retention": "Retention",
    "RetentionPlan": "Plan",
    "delete_job": "delete_job",
    "delete_run": "delete_run",
    "delete_unused_shared": "delete_unused_shared",
    "plan_retention": "plan",
    "protect_jobs": "protect",
    "read_retention": "read_retention",
    "shared_of": "shared_of",
    "sweep_leftovers": "sweep_leftovers",
    "unused_shared": "unused_shared",
    "update_retention": "update_retention",
}
_RUNS = {
    "RunPaths",
    "RunRecord",
    "RunWriter",
    "Submission",
    "Submissions",
    "iter_runs",
    "no_space",
    "read_config",
    "read_environment",
    "read_run",
    "read_submissions",
}


_MIGRATE = {"describe_migration", "read_migration", "record_match"}


def __getattr__(name: str) -> object:
    # Migrations (``partita migrate``, and the experiment's note of a job found under a
    # former name): loaded only when used.
    if name in _MIGRATE:
        from partita.workspace import _migrate

        return getattr(_migrate, name)
    # Run records are loaded when first used: the job runner, which imports this package
    # for the job-folder protocol, never needs them.
    if name in _RUNS:
        from partita.workspace import _runs

        return getattr(_runs, name)
    # The index needs sqlite3: loaded only when used (the job runner never does).
    if name == "open_index":
        from partita.workspace import _index_open

        return _index_open.open_index
    if name in _RETENTION:
        # Retention (``partita gc``): loaded only by the commands that use it.
        from partita.workspace import _gc

        return getattr(_gc, _RETENTION[name])
    if name in ("read_services", "write_services"):
        from partita.workspace import _services

        return getattr(_services, name)
    if name in _LAZY:
        from partita.workspace import _index

        return getattr(_index, name)
    raise AttributeError(f"module 'partita.workspace' has no attribute {name!r}")
