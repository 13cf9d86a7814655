"""The pack worker: ``python -m partita._pack --manifest FILE --index I``.

One element of a packed Slurm array (``SlurmLauncher(pack=N)``) runs several tasks in
turn. The worker imports the task classes once, then forks one child per task
(:func:`partita._forkserver.fork_job`); the child leads a new session and runs the job runner
(:func:`partita.run.main`), so each task keeps its own folder, lock, attempt fencing,
markers and ``stdout``/``stderr``. The worker itself enforces each task's share of the
allocation:

- its time limit (``time`` of the entry, seconds): SIGTERM to the task's process group,
  SIGKILL after :data:`GRACE` seconds; recorded ``failed`` for ``timeout``;
- its memory (``mem``, bytes, compared with the resident memory of the task's session):
  SIGKILL, recorded ``failed`` for ``memory``;
- a cancel request in its folder (``partita jobs kill``): SIGTERM; the runner records
  ``cancelled``;
- a child that dies without an outcome (a segfault, ``os._exit``): ``failed`` for ``lost``.

When the worker itself is stopped (``scancel``, the allocation's time limit, preemption),
the task it runs is stopped too and recorded ``lost``; tasks not started are left alone
(the launcher sees the element end and launches them again). When the worker is killed
outright (``kill -9``), its running child gets SIGKILL from the kernel
(:func:`partita._forkserver.tie_to_parent`) and the launcher records it ``lost``.

Every step is appended to the element's report file, one JSON object per line, which the
launcher reads to follow each task: ``{"slot": k, "event": "start", ...}`` before a task's
child is forked, ``{"slot": k, "event": "end", "code": ..., "reason": ...}`` once the task's
outcome is on disk. The worker exits 0 once its share is done.

Like the runner, it imports only ``partita.config`` and ``partita.workspace``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["GRACE", "main", "start_task"]

#: Seconds between SIGTERM and SIGKILL when a task is stopped by the worker.
GRACE = 10.0
#: How often (seconds) a running task's memory is measured.
_MEMORY_EVERY = 0.5
#: How often (seconds) the worker looks at the running task's clock and cancel request.
_TICK = 0.1


class _Worker:
    """State shared with the signal handler: the running child and whether to stop."""

    child: int | None = None
    stopped_by: int | None = None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _Worker.stopped_by = signum
    child = _Worker.child
    if child is not None:
        try:
            os.killpg(child, signal.SIGTERM)
        except OSError:
            pass


def start_task(jobdir: str, attempt: int, env: dict[str, str], append_logs: bool) -> int:
    """Start one job (as ``python -m partita.run JOBDIR``) in a child; return its pid.

    The child is a fork of this warm worker (:func:`partita._forkserver.fork_job`: a
    session of its own, its own logs, ``os._exit`` at the end), unless forking is unsafe
    here (a task module started threads or a GPU context at import,
    :func:`partita._forkserver.unsafe_reason`) or the task's class asks for
    ``isolation = "spawn"``: then a fresh interpreter is spawned, in a session of its own.
    Either way the child is killed if the worker dies (``kill -9``, a node's OOM killer), so
    that no task runs on unfollowed, holding its lock, once its worker is gone.
    """
    from partita import _forkserver

    if _forkserver.unsafe_reason() is None and not _wants_spawn(jobdir):
        return _forkserver.fork_job(
            Path(jobdir), attempt, env, append_logs, unset=(), die_with_parent=True
        )
    import subprocess

    from partita.workspace import JobPaths

    paths = JobPaths(Path(jobdir))
    if not append_logs:
        for path in (paths.stdout, paths.stderr):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    argv = [sys.executable, "-m", "partita.run", jobdir, "--attempt", str(attempt), "--redirect"]
    parent = os.getpid()
    child = subprocess.Popen(
        argv,
        cwd=jobdir,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: _forkserver.tie_to_parent(parent),  # the worker is single-threaded
    )
    _spawned.append(child)  # reaped by the worker (os.waitpid), kept from the collector
    return child.pid


_spawned: list[Any] = []
_classes: dict[str, Any] = {}


def _wants_spawn(jobdir: str) -> bool:
    cls = _classes.get(jobdir)
    return getattr(cls, "isolation", None) == "spawn"


def _parse(argv: list[str]) -> tuple[Path, int] | None:
    manifest: str | None = None
    index = os.environ.get("SLURM_ARRAY_TASK_ID")
    items = iter(argv)
    for arg in items:
        if arg == "--manifest":
            manifest = next(items, None)
        elif arg == "--index":
            index = next(items, None)
        else:
            return None
    if manifest is None or index is None or not index.isdigit():
        return None
    return Path(manifest), int(index)


def main(argv: list[str] | None = None) -> int:
    """Run the share of pack ``--index`` of ``--manifest``; returns the exit code."""
    parsed = _parse(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        print("usage: python -m partita._pack --manifest FILE --index I", file=sys.stderr)
        return 2
    manifest, index = parsed
    document = json.loads(manifest.read_text())
    entries: list[dict[str, Any]] = document["packs"][index]
    report = Path(document["reports"]) / f"{index}.jsonl"
    report.parent.mkdir(parents=True, exist_ok=True)
    out = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, _on_signal)
    _preimport(entries)
    for slot, entry in enumerate(entries):
        if _Worker.stopped_by is not None:
            break
        _run_one(out, slot, entry)
    os.close(out)
    return 0 if _Worker.stopped_by is None else 128 + _Worker.stopped_by


def _write(out: int, record: dict[str, Any]) -> None:
    os.write(out, (json.dumps(record) + "\n").encode())


def _preimport(entries: list[dict[str, Any]]) -> None:
    """Import the classes of every task once, so that each child starts warm.

    Failures are left to the child, whose runner reports them in the task's ``stderr``.
    """
    try:
        from partita.config._serial import import_class
    except Exception:
        return
    from partita.workspace import JobPaths

    for entry in entries:
        try:
            document = json.loads(JobPaths(Path(entry["jobdir"])).params.read_text())
            for obj in document.get("objects", []):
                import_class(obj["class"], obj.get("file"))  # cached after the first
            root = document["objects"][document["root"]]
            _classes[str(entry["jobdir"])] = import_class(root["class"], root.get("file"))
        except BaseException:  # the child fails the same way and reports it
            continue


def _run_one(out: int, slot: int, entry: dict[str, Any]) -> None:
    from partita.workspace import JobPaths, JobState, final_marker, record_final

    jobdir, attempt = str(entry["jobdir"]), int(entry["attempt"])
    paths = JobPaths(Path(jobdir))
    if paths.cancel_request.exists() and final_marker(paths) is None:
        record_final(paths, JobState.CANCELLED, attempt=attempt, detail="cancelled before its turn")
        _write(out, {"slot": slot, "event": "end", "code": None, "reason": "cancelled"})
        return
    limit = entry.get("time")
    env = dict(entry.get("env") or {})
    if limit:
        env["PARTITA_DEADLINE"] = str(time.time() + float(limit))
    _write(out, {"slot": slot, "event": "start", "time": time.time(), "limit": limit})
    pid = start_task(jobdir, attempt, env, bool(entry.get("append_logs")))
    _Worker.child = pid
    try:
        code, reason, detail = _supervise(pid, paths, limit, entry.get("mem"))
    finally:
        _Worker.child = None
    if reason is None and _Worker.stopped_by is not None and not paths.cancel_request.exists():
        name = signal.Signals(_Worker.stopped_by).name
        reason = "lost"
        detail = f"the pack worker was stopped by {name} (scancel, allocation time limit, ...)"
    final = final_marker(paths)
    mine = final is not None and final[1].get("attempt") == attempt
    if reason is None and not mine and code not in (0, _superseded()):
        reason = "lost"
        detail = f"the task's process ended ({_describe(code)}) without recording an outcome"
    if reason is not None and not (mine and final is not None and final[0] is JobState.DONE):
        record_final(
            paths,
            JobState.FAILED,
            attempt=attempt,
            reason=reason,
            exit_code=code,
            detail=detail,
            amend=True,
        )
    _write(out, {"slot": slot, "event": "end", "code": code, "reason": reason, "detail": detail})


def _supervise(
    pid: int, paths: Any, limit: float | None, mem: int | None
) -> tuple[int, str | None, str]:
    """Wait for the child; stop it when over its time or memory or when cancelled."""
    started = time.monotonic()
    waiter = _Waiter(pid)
    reason: str | None = None
    detail = ""
    term_at: float | None = None
    measured = started
    try:
        while not waiter.wait(_TICK):
            now = time.monotonic()
            if term_at is not None:
                if now - term_at > GRACE:
                    _signal_group(pid, signal.SIGKILL)
                    term_at = float("inf")
                continue
            if _Worker.stopped_by is not None:
                term_at = now  # the handler sent SIGTERM already
            elif paths.cancel_request.exists():
                _signal_group(pid, signal.SIGTERM)
                term_at = now
            elif limit and now - started > float(limit):
                reason = "timeout"
                detail = f"exceeded its time limit of {float(limit):g} s in the pack"
                _signal_group(pid, signal.SIGTERM)
                term_at = now
            elif mem and now - measured >= _MEMORY_EVERY:
                measured = now
                used = _session_memory(pid)
                if used > int(mem):
                    reason = "memory"
                    detail = (
                        f"used {used // 2**20} MiB, over its memory of {int(mem) // 2**20} MiB "
                        "in the pack; killed"
                    )
                    _signal_group(pid, signal.SIGKILL)
                    term_at = float("inf")
    finally:
        waiter.close()
    return waiter.code, reason, detail


class _Waiter:
    """Waits for a child's end with a timeout (a pidfd where the system has them)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code = 0
        self.fd: int | None = None
        try:
            self.fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.fd = None

    def wait(self, timeout: float) -> bool:
        if self.fd is not None:
            try:
                ready, _, _ = select.select([self.fd], [], [], timeout)
            except InterruptedError:
                ready = []
            if not ready:
                return False
        else:
            time.sleep(min(timeout, 0.01))
        try:
            done, status = os.waitpid(self.pid, 0 if self.fd is not None else os.WNOHANG)
        except ChildProcessError:
            return True
        except InterruptedError:
            return False
        if done == 0:
            return False
        self.code = os.waitstatus_to_exitcode(status)
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except OSError:
        pass


def _session_memory(sid: int) -> int:
    """Resident memory (bytes) of the processes of session ``sid`` (a task and its children)."""
    total = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                stat = file.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if int(fields[3]) != sid:  # field 6 of stat: the session id
                continue
            with open(f"/proc/{name}/statm", "rb") as file:
                total += int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


def _superseded() -> int:
    from partita.workspace._state import EXIT_SUPERSEDED

    return EXIT_SUPERSEDED


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


if __name__ == "__main__":
    result = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(result)
