"""The job runner: ``python -m partita.run JOBDIR [--attempt N]``.

Runs one job in its folder: takes the job lock, checks that this attempt is still the
current one and that the job is not done, loads ``params.json``, calls ``execute()`` and
records the outcome (``done``, ``failed`` or ``cancelled`` marker, written last).

It imports only ``partita.config`` and ``partita.workspace`` so that a job starts fast.
Also: ``python -m partita.run --manifest FILE --index I`` runs entry ``I`` of a JSON list of
``{"jobdir": ..., "attempt": ...}`` (one element of a cluster job array).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.signal without its enum wrapping
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from partita._stopping import Stopping, remaining_time
from partita.workspace._state import EXIT_SUPERSEDED

__all__ = ["EXIT_SUPERSEDED", "main"]


_SIGTERM = int(signal.SIGTERM)
#: The signals that stop a job (``Stopping`` in the task), by number.
_STOP_SIGNALS = (_SIGTERM, int(signal.SIGINT), int(signal.SIGUSR1))

#: The stop signals this job received (the first one raised ``Stopping`` in the task).
_received: list[int] = []
#: The cancellation request file of the running job (a stop on request has no known deadline).
_cancel_file: list[Path] = []


def _on_signal(signum: int, frame: FrameType | None) -> None:
    first = not _received
    _received.append(signum)
    if first:  # later signals are ignored: a checkpoint being written is not interrupted
        requested = any(file.exists() for file in _cancel_file)
        raise Stopping(signum, None if requested else remaining_time())


def _usage() -> int:
    print(
        "usage: python -m partita.run JOBDIR [--attempt N] [--redirect]\n"
        "       python -m partita.run --manifest FILE --index I [--redirect]",
        file=sys.stderr,
    )
    return 2


def _parse(argv: list[str]) -> tuple[Path, int | None, bool] | None:
    jobdir: str | None = None
    attempt: int | None = None
    manifest: str | None = None
    index: str | None = os.environ.get("SLURM_ARRAY_TASK_ID")
    redirect = False
    items = iter(argv)
    for arg in items:
        if arg == "--attempt":
            attempt = int(next(items))
        elif arg == "--manifest":
            manifest = next(items)
        elif arg == "--index":
            index = next(items)
        elif arg == "--redirect":
            redirect = True
        elif arg.startswith("-"):
            return None
        else:
            jobdir = arg
    if manifest is not None:
        if index is None:
            return None
        entries = json.loads(Path(manifest).read_text())
        entry = entries[int(index)]
        return Path(entry["jobdir"]), entry.get("attempt"), True
    if jobdir is None:
        return None
    return Path(jobdir), attempt, redirect


def _redirect(paths: object) -> None:
    from partita.workspace import JobPaths

    assert isinstance(paths, JobPaths)
    sys.stdout.flush()
    sys.stderr.flush()
    out = os.open(paths.stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    err = os.open(paths.stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)


def main(argv: list[str] | None = None) -> int:
    """Run one job; returns the process exit code."""
    parsed = _parse(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        return _usage()
    jobdir, attempt, redirect = parsed
    from partita.workspace import JobPaths

    paths = JobPaths(Path(os.path.abspath(jobdir)))
    if redirect:
        _redirect(paths)
    return run_job(paths, attempt)


def run_job(paths: Any, attempt: int | None) -> int:
    """Run attempt ``attempt`` of the job whose (absolute) folder is ``paths``, a
    ``JobPaths`` (a warm process that made it already passes it on); returns the exit code."""
    from partita.workspace import JobState, Reason, hold
    from partita.workspace import _state as state

    with hold(paths.lock, timeout=None):
        try:
            return _run_locked(paths, attempt, state, JobState, Reason)
        finally:
            _end_own_group()


def _end_own_group() -> None:
    """SIGTERM what the task left running in this runner's process group.

    Only when the runner leads its group (the local launcher starts it in a session of its
    own), so the group holds nothing but the job's processes. A process the task means to
    outlive the job must leave the group: ``subprocess.Popen(..., start_new_session=True)``.
    """
    try:
        if os.getpgrp() != os.getpid():
            return
        _signal.signal(_SIGTERM, _signal.SIG_IGN)
        os.killpg(0, _SIGTERM)
    except (OSError, ValueError):
        pass


def _run_locked(paths, attempt, state, JobState, Reason) -> int:  # type: ignore[no-untyped-def]
    claim = state.claim_attempt(paths, attempt)
    if claim.attempt is None:
        print(f"partita: nothing to do for attempt {attempt}: {claim.why}.", file=sys.stderr)
        # Done is success for whoever waits on this process (e.g. a cluster dependency).
        return 0 if claim.done else EXIT_SUPERSEDED
    attempt = claim.attempt
    # state.json as claimed: nobody else writes it while we hold the lock
    record = claim.record if claim.record is not None else state.read_state(paths)
    os.environ["PARTITA_ATTEMPT"] = str(attempt)
    _received.clear()
    _cancel_file[:] = [paths.cancel_request]
    _time_limit()

    for signum in _STOP_SIGNALS:
        _signal.signal(signum, _on_signal)
    _limit_memory()
    try:
        task = _load(paths)
        os.chdir(paths.root)
        from partita import _jobenv, _progress

        _progress._set_target(paths.progress)
        # task.execute(), recording its results, and its environment in ``record``
        _jobenv.execute(paths, task, record)
        sys.stdout.flush()
        sys.stderr.flush()
    except Stopping as exc:
        _block_signals()
        return _stopped(
            paths, attempt, state, JobState, Reason, exc.signum, caught=False, record=record
        )
    except MemoryError:
        _block_signals()
        import traceback

        traceback.print_exc()
        limit = os.environ.get("PARTITA_MEMORY_LIMIT", "?")
        print(f"partita: the task ran out of memory (limit {limit} bytes).", file=sys.stderr)
        _flush()
        state.write_final(
            paths,
            JobState.FAILED,
            attempt=attempt,
            reason=Reason.MEMORY.value,
            exit_code=1,
            detail=f"MemoryError (limit {limit} bytes)",
            record=record,
        )
        return 1
    except BaseException as exc:  # the task failed: record it, whatever it was
        _block_signals()
        import traceback

        traceback.print_exc()
        if _received:  # it raised something else after Stopping: still a stop
            return _stopped(
                paths, attempt, state, JobState, Reason, _received[0], caught=True, record=record
            )
        detail = f"{type(exc).__name__}: {exc}"
        if len(detail) > 500:
            detail = detail[:497] + "..."
        print(
            f"partita: the task failed ({type(exc).__name__}); see the traceback above.",
            file=sys.stderr,
        )
        _flush()
        state.write_final(
            paths,
            JobState.FAILED,
            attempt=attempt,
            reason=Reason.ERROR.value,
            exit_code=1,
            detail=detail,
            record=record,
        )
        return 1
    _block_signals()
    if _received:  # the task caught Stopping and returned: it did not finish its work
        return _stopped(
            paths, attempt, state, JobState, Reason, _received[0], caught=True, record=record
        )
    state.write_final(paths, JobState.DONE, attempt=attempt, exit_code=0, record=record)
    return 0


def _stopped(  # type: ignore[no-untyped-def]
    paths, attempt, state, JobState, Reason, signum: int, *, caught: bool, record=None
) -> int:
    """Record a job stopped by ``signum``: cancelled on request, else failed. Never done."""
    name = signal.Signals(signum).name
    how = " (the task handled Stopping)" if caught else ""
    if paths.cancel_request.exists():
        print(f"partita: cancelled ({name}){how}.", file=sys.stderr)
        state.write_final(
            paths,
            JobState.CANCELLED,
            attempt=attempt,
            detail=f"stopped by {name} on request{how}",
            record=record,
        )
    else:
        # A stop with a known time limit and no cancellation request is the limit (or the
        # cluster's warning before it, e.g. Slurm's --signal): a timeout, which is retried
        # like one. A launcher that knows better (preempted, ...) overrides the reason.
        limited = remaining_time() is not None
        print(f"partita: terminated by {name}{how}.", file=sys.stderr)
        state.write_final(
            paths,
            JobState.FAILED,
            attempt=attempt,
            reason=(Reason.TIMEOUT if limited else Reason.ERROR).value,
            exit_code=128 + signum,
            detail=f"terminated by {name}{' at its time limit' if limited else ''}{how}",
            record=record,
        )
    _flush()
    return 128 + signum


def _time_limit() -> None:
    """Turn ``PARTITA_TIME_LIMIT`` (seconds, from a cluster launcher) into a deadline."""
    limit = os.environ.get("PARTITA_TIME_LIMIT")
    if limit and not os.environ.get("PARTITA_DEADLINE"):
        import time

        try:
            os.environ["PARTITA_DEADLINE"] = str(time.time() + float(limit))
        except ValueError:
            pass


def _limit_memory() -> None:
    limit = os.environ.get("PARTITA_MEMORY_LIMIT")
    if not limit:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    except (ImportError, ValueError, OSError) as exc:
        print(f"partita: cannot apply the memory limit: {exc}", file=sys.stderr)


def _block_signals() -> None:
    for signum in _STOP_SIGNALS:
        _signal.signal(signum, _signal.SIG_IGN)


def _flush() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass


def _load(paths: Any) -> Any:
    from partita.config import _runtime
    from partita.config._serial import load

    workspace = paths.workdir
    _runtime.set_current_workspace(workspace)
    task = load(paths.root)
    if not hasattr(task, "execute"):
        raise TypeError(f"{type(task).__qualname__} is not a Task; it cannot be executed.")
    from partita.config._seal import generated_folders

    # <job>/optimizer/ for a generated path of the config in the field optimizer, as the
    # job folder itself is there for the task's own generated paths.
    for folder in generated_folders(task, paths.root):
        folder.mkdir(parents=True, exist_ok=True)
    return task


if __name__ == "__main__":
    code = main()
    _flush()
    # Everything is written and closed; skip the interpreter's teardown (a few ms per job).
    os._exit(code)
