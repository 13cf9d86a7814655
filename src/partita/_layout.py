"""The names in a job folder that the config layer needs, spelled once.

These names belong to the workspace: :class:`partita.workspace.JobPaths` and
:class:`partita.workspace.Workspace` build every path of a work directory, and build these
from this module. The module sits at the bottom of the layers, beside ``partita.errors``,
so that the config layer (below the workspace, which it cannot import) can name a task's
folder and files (``Task.jobdir``, ``Task.stdout()``, ``partita.load(folder)``) from the
same definitions. Nothing else imports it: other layers ask the workspace (docs/design.md).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

#: The folder of a work directory that holds the job folders.
JOBS = "jobs"
#: The file of a job folder that holds its full config.
PARAMS = "params.json"
#: The files of a job folder that receive the job's standard output and error.
STDOUT = "stdout"
STDERR = "stderr"
#: The folder of a work directory that holds the shared folders of task groups.
SHARED = "shared"


def job_folder(workdir: Path, type_id: str, identifier: str) -> Path:
    """The folder of the job ``type_id``/``identifier`` in the work directory ``workdir``."""
    folder = _type_folder(workdir, type_id)
    if _child is not None and identifier.isalnum():
        # An identifier (hexadecimal) is one plain path component: nothing to parse.
        return _child(folder, identifier)  # type: ignore[no-any-return]
    return folder / identifier


def _plain_child() -> object:
    """``Path._make_child_relpath`` (``path / name`` without parsing ``name``), if this
    Python has it and it gives what ``/`` gives; else ``None``."""
    child = getattr(Path, "_make_child_relpath", None)
    if child is None:
        return None
    try:
        made = child(Path("/w/jobs/t"), "ab12")
    except Exception:
        return None
    expected = Path("/w/jobs/t") / "ab12"
    if made != expected or str(made) != str(expected) or made.parent != expected.parent:
        return None
    return child


_child: Any = _plain_child()


@functools.lru_cache(maxsize=256)
def _type_folder(workdir: Path, type_id: str) -> Path:
    # One join per job instead of three: a rerun of thousands of tasks asks this for each.
    return workdir / JOBS / type_id


def is_job_folder(path: Path) -> bool:
    """Whether ``path`` sits where :func:`job_folder` puts job folders (by its parents' names)."""
    return path.parent.parent.name == JOBS


def shared_folder(workdir: Path, type_id: str, group: str, identifier: str) -> Path:
    """The shared folder ``group`` (of the tasks of ``type_id``) named ``identifier``."""
    return workdir / SHARED / type_id / group / identifier


def shared_lock(folder: Path) -> Path:
    """The lock file of a shared folder (beside it, so the folder holds only the task's files)."""
    return folder.with_name(folder.name + ".lock")
