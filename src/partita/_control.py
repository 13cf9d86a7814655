"""Acting on jobs from outside their experiment: kill (used by the CLI and the monitor)."""

from __future__ import annotations

import asyncio
import time

from partita.workspace import FileLock, JobInfo, JobState, final_marker, read_state, write_final


def kill_job(info: JobInfo, *, grace: float = 10.0, source: str = "the command line") -> str:
    """Stop a running job (SIGTERM, then SIGKILL after ``grace``; ``scancel`` on Slurm).

    Returns a short description of what was done. The job ends ``cancelled``.
    """
    if info.state != "running" or not info.launcher:
        return f"{info.name} is {info.state}: nothing to kill"
    paths = info.paths
    paths.cancel_request.write_text(f"requested from {source} at {time.time()}\n")
    handle = info.launcher
    kind = handle.get("kind")
    if kind == "local":
        from partita.launchers.local import LocalLauncher

        asyncio.run(LocalLauncher(1).cancel(handle, grace))
    elif kind == "slurm":
        from partita.launchers.slurm import cancel_handle

        asyncio.run(cancel_handle(handle, grace))
    else:
        return f"{info.name}: cannot kill a job of launcher kind {kind!r}"
    # The runner records "cancelled" when it can; if it was killed, record it here.
    deadline = time.time() + 5
    while final_marker(paths) is None and time.time() < deadline:
        time.sleep(0.05)
    if final_marker(paths) is None:
        lock = FileLock(paths.lock)
        if lock.acquire(timeout=5.0):
            try:
                if final_marker(paths) is None:
                    attempt = int(read_state(paths).get("attempt") or 0)
                    write_final(
                        paths, JobState.CANCELLED, attempt=attempt, detail="killed on request"
                    )
            finally:
                lock.release()
    final = final_marker(paths)
    if final is None:
        return f"{info.name}: stop requested, but no outcome is recorded yet (still running?)"
    return f"{info.name} {final[0].value}"
