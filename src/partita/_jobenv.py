"""What the job runner records about a job's process: where it ran, what it cost, which code.

The job runner calls :func:`execute` instead of ``task.execute()``. It records, once,
when the task ends, however it ends (an exception, a stop signal), in the record that
the runner then writes with the final state (``state.json``, under ``"environment"``):
host, process, Python, the task's code fingerprint (taken before the task starts), wall
and CPU time, peak memory, GPUs from ``nvidia-smi`` when present, energy and CO2 when a
meter is installed (see :mod:`partita._energy`). A process killed outright (``SIGKILL``,
the kernel's OOM killer) writes none; its ``state.json`` still names the host and
process that ran it. It also points ``partita.report`` at the job folder and flushes the
results at the end.

The code fingerprint is the SHA-256 of the task class's source and of the whole file of
its module. It is recorded beside the job, never in its identity: ``partita explain`` and
``partita jobs show`` compare it with the code on disk now (:func:`fingerprint_file`) and
say when a task's code changed since its job ran.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from partita.workspace import JobPaths

__all__ = ["class_source", "execute", "fingerprint", "fingerprint_file"]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def class_source(text: str, qualname: str) -> str | None:
    """The source lines of the class ``qualname`` (``Outer.Inner`` too) in the module ``text``.

    Read from the lines, not the syntax tree (a job computes it at start: parsing a long
    module would cost milliseconds): the ``class`` line at the right indentation (the
    last one, as a redefinition wins) and every line below it that is blank, a comment,
    more indented, or closes a bracket. The command line compares with the same function,
    so both sides always agree on what a class's source is.
    """
    import re

    lines = text.splitlines()
    start, end, outer = 0, len(lines), -1
    for part in qualname.split("."):
        pattern = re.compile(rf"(\s*)class\s+{re.escape(part)}\b")
        found: tuple[int, int] | None = None
        depth: int | None = None
        for number in range(start + (outer >= 0), end):
            match = pattern.match(lines[number])
            if match is None:
                continue
            indent = len(match.group(1))
            if (outer < 0 and indent != 0) or indent <= outer:
                continue
            if depth is None or indent < depth:
                depth, found = indent, (number, indent)
            elif indent == depth:
                found = (number, indent)
        if found is None:
            return None
        first, indent = found
        last = first + 1
        while last < end:
            line = lines[last]
            stripped = line.strip()
            ends = stripped and not stripped.startswith(("#", ")", "]", "}"))
            if ends and _indent(line) <= indent:
                break
            last += 1
        while last > first + 1 and lines[last - 1].strip().startswith("#"):
            last -= 1  # a comment after the class belongs to what follows
        start, end, outer = first, last, indent
    return "\n".join(lines[start:end]).rstrip()


def fingerprint_file(path: str, qualname: str) -> dict[str, Any]:
    """The fingerprint of class ``qualname`` as the file ``path`` holds it now.

    ``{"file": path, "class": qualname, "file_sha256": ..., "class_sha256": ...}``; a
    hash is ``None`` when the file cannot be read or no longer defines the class.
    """
    info: dict[str, Any] = {"file": path, "class": qualname, "file_sha256": None}
    info["class_sha256"] = None
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return info
    info["file_sha256"] = hashlib.sha256(data).hexdigest()
    source = class_source(data.decode("utf-8", "replace"), qualname)
    if source is not None:
        info["class_sha256"] = hashlib.sha256(source.encode("utf-8")).hexdigest()
    return info


#: Fingerprints computed ahead of the job by a warm process (the fork server) for the
#: classes it imported; a forked job inherits them instead of hashing its module again.
_known: dict[type, dict[str, Any]] = {}


def remember_fingerprint(cls: type) -> None:
    """Compute the fingerprint of ``cls`` now, for the jobs forked from this process.

    Only for a process that notices when the module files it imported change (and stops
    forking then): the remembered hash is that of the code loaded, as a job would find it.
    """
    if cls not in _known:
        try:
            _known[cls] = _fingerprint(cls)
        except Exception:  # the job computes it (or records the error) itself
            pass


def fingerprint(cls: type) -> dict[str, Any]:
    """The code fingerprint of the task class ``cls`` (its class source and module file)."""
    known = _known.get(cls)
    if known is not None:
        return dict(known)
    return _fingerprint(cls)


def _fingerprint(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return {"file": None, "class": cls.__qualname__, "module": cls.__module__}
    info = fingerprint_file(os.path.abspath(path), cls.__qualname__)
    info["module"] = cls.__module__
    return info


#: ``PATH`` → the ``nvidia-smi`` found on it, as a warm process looked it up (:func:`probe`).
_smi_known: dict[str, str | None] = {}


def probe() -> None:
    """Look up ``nvidia-smi`` on this process's ``PATH`` now, for the jobs it will fork."""
    path = os.environ.get("PATH", "")
    _smi_known[path] = _find_smi(path)


def _nvidia_smi() -> str | None:
    """The ``nvidia-smi`` on ``PATH``, if any (looked up before any thread starts)."""
    path = os.environ.get("PATH", "")
    if path in _smi_known:
        found = _smi_known[path]
        # One found then is checked again: it may have been removed since.
        if found is None or os.access(found, os.X_OK):
            return found
    return _find_smi(path)


def _find_smi(path: str) -> str | None:
    for folder in path.split(os.pathsep):
        candidate = os.path.join(folder or ".", "nvidia-smi")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _gpus(command: str, found: list[dict[str, Any]]) -> None:
    """Ask ``nvidia-smi`` which GPUs this job sees (in a thread: it can take a second)."""
    import subprocess

    try:
        out = subprocess.run(
            [command, "--query-gpu=index,name,uuid,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return
    for line in out.stdout.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 4:
            found.append(
                {"index": parts[0], "name": parts[1], "uuid": parts[2], "memory": parts[3]}
            )


def _usage() -> dict[str, Any]:
    try:
        import resource
    except ImportError:
        return {}
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    unit = 1 if sys.platform == "darwin" else 1024
    return {
        "cpu_seconds": round(
            own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3
        ),
        "peak_memory_bytes": own.ru_maxrss * unit,
        "peak_children_memory_bytes": children.ru_maxrss * unit,
    }


def execute(paths: JobPaths, task: Any, record: dict[str, Any]) -> None:
    """Run ``task.execute()`` in the job folder ``paths``, recording its environment in
    ``record`` (the runner's ``state.json``, which it writes with the final state)."""
    from partita import _publish, _report
    from partita.config._shared import set_lock_factory
    from partita.workspace import FileLock

    # ``with self.shared(group):`` locks with the workspace's locks, checking that the lock
    # file is still the one at its path (gc unlinks it under the lock when it deletes the folder).
    set_lock_factory(lambda path: FileLock(path, check_path=True))
    from partita.config._config import state_of

    started = time.time()
    clock = time.monotonic()
    info: dict[str, Any] = {
        "host": os.uname().nodename,
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "attempt": os.environ.get("PARTITA_ATTEMPT"),
        "started": started,
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
    }
    try:
        info["code"] = fingerprint(type(task))
    except Exception as exc:  # never fail a job over its fingerprint
        info["code"] = {"error": f"{type(exc).__name__}: {exc}"}
    gpus: list[dict[str, Any]] = []
    # Only a machine with nvidia-smi pays for the probe: elsewhere the task's process has
    # no thread it did not start itself.
    command = _nvidia_smi()
    query = None
    if command is not None:
        query = threading.Thread(target=_gpus, args=(command, gpus), daemon=True)
        query.start()
    _report._set_target(paths)
    _publish._set_target(paths)
    from partita import _energy

    meter = _energy.start(str(paths.root))  # None (and nothing imported) without a meter
    try:
        if state_of(task).pretasks:
            from partita.config._pretasks import run_pretasks

            run_pretasks(task)  # in order; one that raises fails the job before the task
        task.execute()
    finally:
        _report._flush()
        if query is not None:
            query.join(timeout=1.0)
        info["ended"] = time.time()
        info["wall_seconds"] = round(time.monotonic() - clock, 3)
        info["gpus"] = list(gpus)
        info.update(_usage())
        if meter is not None:
            info["energy"] = meter.stop()
        from partita.workspace._state import keep_environment

        keep_environment(record, info)
