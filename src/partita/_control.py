"""Acting on jobs from outside their experiment: kill (used by the CLI and the monitor)."""

from __future__ import annotations

import time

from partita.errors import LauncherError
from partita.launchers import launcher_for_handle
from partita.workspace import JobInfo, JobState, final_marker, read_state, record_final


def kill_job(info: JobInfo, *, grace: float = 10.0, source: str = "the command line") -> str:
    """Stop a running job through the launcher of its kind (``Launcher.kill``).

    Locally: SIGTERM to its process group, then SIGKILL after ``grace``; on Slurm:
    ``scancel``. Returns a short description of what was done. The job ends ``cancelled``.
    """
    if info.state != "running" or not info.launcher:
        return f"{info.name} is {info.state}: nothing to kill"
    paths = info.paths
    try:
        launcher = launcher_for_handle(info.launcher)
    except LauncherError as exc:
        return f"{info.name}: cannot kill it: {exc}"
    paths.cancel_request.write_text(f"requested from {source} at {time.time()}\n")
    launcher.kill(info.launcher, grace)
    # The runner records "cancelled" when it can; if it was killed, record it here.
    deadline = time.time() + 5
    while final_marker(paths) is None and time.time() < deadline:
        time.sleep(0.05)
    if final_marker(paths) is None:
        attempt = int(read_state(paths).get("attempt") or 0)
        record_final(paths, JobState.CANCELLED, attempt=attempt, detail="killed on request")
    final = final_marker(paths)
    if final is None:
        return f"{info.name}: stop requested, but no outcome is recorded yet (still running?)"
    return f"{info.name} {final[0].value}"
