"""``ResumableTask``: a task that keeps its folder across attempts and can checkpoint."""

from __future__ import annotations

import os
import time
from pathlib import Path

from partita.config import Task

_asked: list[bool] = []


def _launcher_deadline(jobdir: Path) -> str | None:
    """When the launcher of this job will stop it (epoch seconds), asked to its launcher."""
    from partita.errors import LauncherError
    from partita.launchers import launcher_for_handle
    from partita.workspace import JobPaths, read_state

    handle = read_state(JobPaths(jobdir)).get("launcher")
    try:
        left = launcher_for_handle(handle).time_left(handle or {})
    except LauncherError:
        return None
    return None if left is None else str(time.time() + left)


class ResumableTask(Task):
    """A task that may be stopped (time limit, preemption, lost node) and continued.

    The contract:

    - Its job folder is kept as it is between attempts: ``execute()`` should look for its
      own checkpoint (e.g. ``self.jobdir / "checkpoint.pt"``) and continue from it.
      (A plain ``Task`` instead finds a clean folder: files of a failed attempt are moved
      to ``.attempts/<n>/``.)
    - Its logs are appended to, not replaced.
    - It is retried by default on ``timeout``, ``preempted``, ``lost`` and ``node_fail``
      (3 times; change with ``submit(retries=Retry(...))``).
    - :meth:`remaining_time` tells how long the current attempt may still run, so it can
      save a checkpoint before being stopped; when it is stopped, ``execute()`` gets
      :class:`partita.Stopping`, and can save one then.
    """

    def remaining_time(self) -> float | None:
        """Seconds left before the launcher stops this attempt (``None``: no limit known)."""
        deadline = os.environ.get("PARTITA_DEADLINE")
        if not deadline and not _asked:
            _asked.append(True)  # ask the launcher once per process
            deadline = _launcher_deadline(self.jobdir)
            if deadline:
                os.environ["PARTITA_DEADLINE"] = deadline
        if not deadline:
            return None
        return max(0.0, float(deadline) - time.time())

    @property
    def attempt(self) -> int:
        """Which attempt this is (1 for the first run)."""
        return int(os.environ.get("PARTITA_ATTEMPT", "1"))
