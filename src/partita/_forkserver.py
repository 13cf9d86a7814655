"""Warm job processes: ``python -m partita._forkserver`` forks one child per job.

The fork server is a small single-threaded process that has imported the job runner
(``partita.run``) and, on first use, each task's module; each job then starts as a
``fork()`` of it (about a millisecond) instead of a fresh interpreter. A child is as
isolated as a spawned runner: its own session and process group, its own stdout and
stderr files, the environment and working directory of the job, the signal dispositions
of a fresh interpreter, the runner's lock and attempt fencing, and ``os._exit`` at the end.

:func:`fork_job` is the primitive (usable by any job-side worker that reaps its
children). :func:`serve` is the server the local launcher talks to, one JSON object per
line in each direction:

- ``{"op": "run", "jobdir": ..., "attempt": N, "env": {...}, "unset": [...],
  "append_logs": bool}`` (``env``/``unset``: changes to the server's own environment) is
  answered by ``{"pid": P, "identity": {...}}`` once the child is forked, or by
  ``{"spawn": why, "key": K, "retire": bool}`` when this job must be spawned instead
  (``key``: the module not to import again; ``retire``: this server must not fork again),
  or by ``{"stale": why}`` when a module it imported changed on disk.
- ``{"ended": P, "code": C}`` tells that the runner in child ``P`` has finished (its
  outcome is recorded, its lock released) and that ``P`` now exits with ``C``: sent as soon
  as the child says so, before the exit itself, which tearing down the address space of a
  warm interpreter makes last most of a millisecond (:func:`_report_end`). Not sent when
  the child dies otherwise; a launcher may go on as if the child had ended only once it
  checked that the job's outcome is recorded.
- ``{"exit": P, "code": C}`` tells that child ``P`` ended (``C`` as ``Popen.returncode``:
  negative for a signal). Before reaping, the server sends SIGTERM to what the child left
  in its process group (while the unreaped child still holds the group's id).

Once a job has started and the server is idle, it forks a spare child that waits on a
pipe of its own for the next job (``_Server.fork_spare``): the next request then costs a
write instead of a fork. End of input: the server forks no more, dismisses its spare,
reports the exits of the children it has and exits when the last one has ended. Its
imports are kept minimal so that it starts fast.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.signal without its enum wrapping
import gc
import json
import os
import select
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Modules that, once imported in the server, make forking unsafe (they create a GPU
#: context or threads of their own at import time). Jobs whose classes need them spawn.
FORK_UNSAFE_MODULES = ("pycuda.autoinit", "tensorflow", "jax")

#: The process name (``/proc/PID/comm``) of a server forked from the experiment, and of
#: the jobs it forks.
INHERITED_NAME = "partita-fork"

#: How long the server waits, idle, after a job started before it forks a spare child
#: for the next job (milliseconds; see ``_Server.fork_spare``).
SPARE_AFTER_MS = 1

#: Exit code of a child whose setup failed before the runner started.
EXIT_SETUP = 70


def fork_job(
    jobdir: Path,
    attempt: int | None,
    env: Mapping[str, str],
    append_logs: bool,
    *,
    unset: Iterable[str] | None = None,
    die_with_parent: bool = False,
    report: int | None = None,
) -> int:
    """Fork a child that runs one attempt of the job in ``jobdir``; return its pid.

    The child starts a session of its own (so it leads its own process group), sends its
    standard output and error to the job's files (appended to when ``append_logs``, else
    truncated), reads from ``/dev/null``, replaces its environment by ``env`` (with
    ``unset`` given, ``env`` and ``unset`` are changes: the child keeps the caller's
    environment, with the variables of ``env`` set and those of ``unset`` removed), works in
    ``jobdir``, gets the signal dispositions of a fresh interpreter, then runs the job
    runner (``partita.run``: lock, attempt fencing, outcome) and leaves with ``os._exit``
    (no interpreter teardown, no ``atexit`` of the parent). The caller must reap the child
    (``os.waitpid``) and, before reaping, may end what it left in its process group.

    With ``die_with_parent`` the child gets SIGKILL when the caller dies
    (:func:`tie_to_parent`), for a worker whose children must not outlive it. With
    ``report``, the writing end of a pipe, the child writes its exit code there when the
    runner has finished, just before it exits (:func:`_report_end`).

    Only safe from a single-threaded process (the child of a threaded one may inherit a
    lock held by another thread); the fork server checks this before each fork.
    """
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    pid = os.fork()
    if pid:
        return pid
    code = EXIT_SETUP
    try:
        if die_with_parent:
            tie_to_parent(parent)
        code = _child(Path(jobdir), attempt, env, unset, append_logs, report=report)
    except BaseException:  # the child must reach os._exit whatever happens
        try:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


def tie_to_parent(parent: int) -> None:
    """Have this process killed (SIGKILL) when its parent ``parent`` dies (Linux).

    Where the system cannot do this (not Linux), nothing happens. If the parent died
    already, this process exits at once.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:
        os._exit(EXIT_SETUP)


def _spare(read: int, report: int) -> None:
    """A spare child (forked ahead by the server): wait on ``read`` for one job, run it.

    It has no descriptor but its standard streams (the server's, /dev/null), ``read`` and
    ``report`` (where it says that its runner ended, :func:`_report_end`): the server keeps
    the only writing end of ``read``, so the spare sees the end of its input, and exits
    without doing anything, when the server dismisses it or dies. Never returns.
    """
    code = EXIT_SETUP
    try:
        _detach()
        _close_all_but(read, report)
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(read, 65536)
            if not chunk:
                os._exit(0)  # dismissed: no job for it
            data += chunk
        os.close(read)
        job = json.loads(data)
        env, unset = job.get("env") or {}, job.get("unset") or ()
        append = bool(job.get("append_logs"))
        jobdir = Path(job["jobdir"])
        code = _child(jobdir, job.get("attempt"), env, unset, append, detached=True, report=report)
    except BaseException:  # the child must reach os._exit whatever happens
        try:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


class _Spare:
    """A spare child of the server: its pid, the writing end of its input, the reading end
    of its report (:func:`_report_end`), and the classes the server had prepared when it
    was forked (what it has warm)."""

    def __init__(
        self, pid: int, write: int, report: int, prepared: frozenset[tuple[str, str | None]]
    ) -> None:
        self.pid = pid
        self.write = write
        self.report = report
        self.prepared = prepared


#: The dispositions a fresh interpreter has, set in each child (by number, through the C
#: module: ``signal.signal`` converts every old handler to an enum, for nothing here).
_FRESH_SIGNALS = (
    (int(signal.SIGTERM), _signal.SIG_DFL),
    (int(signal.SIGCHLD), _signal.SIG_DFL),
    (int(signal.SIGUSR1), _signal.SIG_DFL),
    (int(signal.SIGHUP), _signal.SIG_DFL),
    (int(signal.SIGINT), signal.default_int_handler),
    (int(signal.SIGPIPE), _signal.SIG_IGN),
)


def _detach() -> None:
    """In a new child: a session of its own and the signal dispositions of a fresh
    interpreter."""
    os.setsid()
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    for signum, handler in _FRESH_SIGNALS:
        _signal.signal(signum, handler)


def _child(
    jobdir: Path,
    attempt: int | None,
    env: Mapping[str, str],
    unset: Iterable[str] | None,
    append_logs: bool,
    *,
    detached: bool = False,
    report: int | None = None,
) -> int:
    if not detached:
        _detach()
    reported = _report_target(report)
    from partita.workspace import JobPaths

    jobdir = Path(os.path.abspath(jobdir))
    paths = JobPaths(jobdir)
    mode = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append_logs else os.O_TRUNC)
    out = os.open(paths.stdout, mode, 0o644)
    err = os.open(paths.stderr, mode, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    if report is None:
        os.closerange(3, _max_fd())
    else:
        _close_all_but(report)
    if unset is None:
        _set_environment(env)
    else:
        _change_environment(env, unset)
    os.chdir(jobdir)
    if not getattr(sys.flags, "safe_path", False):
        sys.path.insert(0, str(jobdir))  # as ``python -m partita.run`` run in the job folder
    mask_inherited()  # before the runner opens any file
    argv = [str(jobdir)] + ([] if attempt is None else ["--attempt", str(attempt)])
    sys.argv = [_RUNNER_FILE, *argv]
    _reseed()
    from partita import run

    code = run.run_job(paths, attempt)
    run._flush()
    _report_end(reported, code)
    return code


def _close_all_but(*kept: int) -> None:
    """Close every descriptor from 3 on, except ``kept``."""
    start = 3
    for fd in sorted(kept):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, _max_fd())


def _report_target(fd: int | None) -> tuple[int, int, int] | None:
    """The pipe ``fd`` as it is now (descriptor, device, inode), to write to at the end."""
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return fd, st.st_dev, st.st_ino


def _report_end(target: tuple[int, int, int] | None, code: int) -> None:
    """Tell the server that the runner finished and this process exits with ``code``.

    Written only if the descriptor is still the pipe it was before the task ran: a task
    that closed it, and opened a file that got its number, must not find the code in it.
    """
    if target is None:
        return
    fd, device, inode = target
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == (device, inode):
            os.write(fd, b"%d\n" % code)
    except OSError:
        pass


def _set_environment(env: Mapping[str, str]) -> None:
    """Make ``os.environ`` (and the C environment) exactly ``env``, changing only what differs.

    A job's environment is mostly the server's own: rewriting every variable would copy
    memory pages shared with the server for nothing.
    """
    current = os.environ
    for name in [name for name in current if name not in env]:
        del current[name]
    for name, value in env.items():
        if current.get(name) != value:
            current[name] = value


def _change_environment(env: Mapping[str, str], unset: Iterable[str]) -> None:
    """Set the variables of ``env`` and remove those of ``unset`` (the rest is inherited)."""
    current = os.environ
    for name in unset:
        current.pop(name, None)
    for name, value in env.items():
        current[name] = value


def _max_fd() -> int:
    try:
        return max(int(os.sysconf("SC_OPEN_MAX")), 256)
    except (ValueError, OSError):
        return 4096


def _reseed() -> None:
    """Give the child fresh random state, as a new interpreter would have.

    ``random`` reseeds itself after ``os.fork``; NumPy's global generator does not.
    """
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        try:
            numpy.random.seed()
        except Exception:  # a broken numpy is the task's business
            pass


_RUNNER_FILE = ""


# --- the server ------------------------------------------------------------------------


def unsafe_reason() -> str | None:
    """Why forking this process now would be unsafe (``None``: it is safe)."""
    threads = _thread_count()
    if threads > 1:
        return f"the fork server has {threads} threads (a module started threads at import)"
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_initialized():
                return "a module initialised CUDA at import (torch.cuda)"
        except Exception:  # a partial torch: do not risk a fork
            return "torch is imported but cannot tell whether CUDA is initialised"
    for name in FORK_UNSAFE_MODULES:
        if name in sys.modules:
            return f"{name} is imported (it is not safe to fork after importing it)"
    return None


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        threading = sys.modules.get("threading")
        return threading.active_count() if threading is not None else 1


class _Server:
    def __init__(self, out: int, refused: set[str], *, inherited: bool = False) -> None:
        self.out = out
        self.refused = refused
        self.children: set[int] = set()
        self.watched: dict[str, tuple[int, int]] = {}
        #: Modules whose files are not watched. A server forked from the experiment has
        #: the task modules imported already: they are watched from its first job on.
        self.known = (
            {n for n in sys.modules if n == "partita" or n.startswith("partita.")}
            if inherited
            else set(sys.modules)
        )
        self.retired: str | None = None
        #: The classes (reference, file) prepared for a job so far: imported, resolved and
        #: fingerprinted here (what a child forked after that inherits).
        self.prepared: set[tuple[str, str | None]] = set()
        #: The classes of the job being prepared (:meth:`prepare`).
        self.entries: list[tuple[str, str | None]] = []
        #: A child forked ahead, waiting for the next job (:meth:`fork_spare`).
        self.spare: _Spare | None = None
        #: Whether to fork a spare when idle (after a job started; see :func:`serve`).
        self.wants_spare = False
        #: Spares dismissed (told there is no job), reaped once they have exited.
        self.dismissed: list[int] = []
        #: The reading ends of the running children's reports (:func:`_report_end`), and
        #: whose they are; watched by ``poller`` (set by :func:`serve`).
        self.reports: dict[int, int] = {}
        self.poller: Any = None
        #: The environment the changes sent with each job are relative to.
        self.env = dict(os.environ)
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
        self.installed = tuple(os.path.join(p, "") for p in prefixes if p)
        if inherited:
            self.watch()  # the experiment's own modules, imported before the first job

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            try:
                written = os.write(self.out, data)
            except BrokenPipeError:
                return  # the launcher is gone; keep reaping
            data = data[written:]

    def handle(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("op") != "run":
            return
        self.send(self.run(message))
        self.wants_spare = True  # while the job runs: the next one need not wait for a fork

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.retired:
            return {"spawn": self.retired, "key": None, "retire": True}
        stale = self.changed()
        if stale:
            self.retired = stale
            self.drop_spare()
            return {"stale": stale}
        jobdir = Path(message["jobdir"])
        refusal = self.prepare(jobdir)
        if refusal is not None:
            if self.retired:
                self.drop_spare()
            return refusal
        # Only the changes to the server's environment travel to the child, which applies
        # them to what it inherited: rebuilding and comparing the whole environment in
        # every child would cost more than the job's own work.
        env = message.get("env") or {}
        unset = message.get("unset") or ()
        attempt = message.get("attempt")
        append = bool(message.get("append_logs"))
        pid = self.hand_off(
            {
                "jobdir": str(jobdir),
                "attempt": attempt,
                "env": env,
                "unset": list(unset),
                "append_logs": append,
            }
        )
        if pid is None:
            # What the server holds now is shared with the child, page by page, until
            # either writes to it: moved out of the collector's reach, a collection in the
            # child does not visit (and so copy) the server's objects.
            gc.freeze()
            read, write = os.pipe()
            try:
                pid = fork_job(jobdir, attempt, env, append, unset=unset, report=write)
            except OSError as exc:  # no memory or process slot for a fork now: spawn it
                os.close(read)
                return {"spawn": f"fork failed: {exc}", "key": None}
            finally:
                os.close(write)
            self.watch_report(read, pid)
        self.children.add(pid)
        from partita.workspace import identity

        return {"pid": pid, "identity": identity(pid)}

    def prepare(self, jobdir: Path) -> dict[str, Any] | None:
        """Import the classes of the job (so the child is warm); refuse unsafe ones.

        The parsed ``params.json`` is left for the child (:func:`partita.config._serial.
        prefetch`): it loads the job from it when the file is still the one read here.
        """
        from partita.config import _serial
        from partita.workspace import JobPaths

        params = JobPaths(jobdir).params
        self.entries = []
        try:
            with open(params, "rb") as handle:
                st = os.fstat(handle.fileno())
                document = json.loads(handle.read())
            objects = document["objects"]
            root = objects[document["root"]]["class"]
            # Each class once: a graph of many configs names the same few classes.
            entries = list(dict.fromkeys((e["class"], e.get("file")) for e in objects))
        except Exception:  # the runner reports a damaged folder itself
            return None
        _serial.prefetch(params, st, document)
        self.entries = entries
        checked = False
        for reference, file in entries:
            key = file or reference.partition(":")[0]
            if key in self.refused:
                return {"spawn": f"{key} is not forked from (unsafe at import)", "key": key}
            known = len(sys.modules)
            try:
                cls = _serial.import_class(reference, file)
                # Its fields resolved here (type hints evaluated, once per class): every
                # child inherits them instead of resolving them again to load the job.
                _serial.warm_class(cls)
            except BaseException:  # the child will fail and report it
                cls = None
            # After each import (new modules), so that the module to blame is known, and at
            # least once per job (at its root's class) when everything was imported before.
            # Only new modules have files to watch: the others were looked at before.
            imported = len(sys.modules) != known
            if imported or (reference == root and not checked):
                checked = True
                if imported:
                    self.watch()
                why = unsafe_reason()
                if why is not None:
                    self.retired = why
                    self.refused.add(key)
                    return {"spawn": f"{why}; importing {key}", "key": key, "retire": True}
            if reference == root and getattr(cls, "isolation", None) == "spawn":
                return {"spawn": f"{reference} asks for isolation='spawn'", "key": None}
            if reference == root and isinstance(cls, type):
                from partita import _jobenv

                # Hashed once here, inherited by every child: the server is replaced as
                # soon as a module file it imported changes (``changed``), so the hash is
                # always that of the code the child runs.
                _jobenv.remember_fingerprint(cls)
        self.prepared.update(entries)
        return None

    # --- spares: a child forked ahead, while the previous job runs -----------------------

    def fork_spare(self) -> None:
        """Fork a spare child now, if there is none and forking is safe.

        The next job then starts by a write to its input instead of a ``fork()`` (about a
        millisecond, and as long again before the child runs): a chain's next link, or a
        job whose dependencies just ended, starts at once. Only a job whose classes were
        all prepared before the spare was forked is handed to it (it has them warm, as a
        fresh fork would); otherwise the spare is dismissed and the job forked as usual.
        """
        self.wants_spare = False
        if self.spare is not None or self.retired or unsafe_reason() is not None:
            return
        read, write = os.pipe()
        report_read, report_write = os.pipe()
        gc.freeze()  # as before any fork (see run)
        try:
            pid = os.fork()
        except OSError:
            for fd in (read, write, report_read, report_write):
                os.close(fd)
            return
        if pid == 0:
            _spare(read, report_write)  # never returns
        os.close(read)
        os.close(report_write)
        self.spare = _Spare(pid, write, report_read, frozenset(self.prepared))

    def hand_off(self, job: dict[str, Any]) -> int | None:
        """Give ``job`` to the spare, if it has the job's classes warm: its pid, or
        ``None`` (no usable spare: the caller forks)."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        if not spare.prepared.issuperset(self.entries):
            self.dismiss(spare)
            return None
        data = (json.dumps(job) + "\n").encode()
        try:
            while data:
                data = data[os.write(spare.write, data) :]
        except OSError:  # it died (killed by someone): fork this job instead
            self.dismiss(spare)
            return None
        os.close(spare.write)
        self.watch_report(spare.report, spare.pid)
        return spare.pid

    def drop_spare(self) -> None:
        """Dismiss the spare, if any (the server forks no more, or its modules changed)."""
        if self.spare is not None:
            self.dismiss(self.spare)
            self.spare = None

    def dismiss(self, spare: _Spare) -> None:
        """End a spare without a job (the end of its input); reaped by :meth:`reap`."""
        os.close(spare.write)
        os.close(spare.report)
        self.dismissed.append(spare.pid)

    # --- reports: a child says its runner ended, before its (slow) exit -------------------

    def watch_report(self, fd: int, pid: int) -> None:
        os.set_blocking(fd, False)  # read at the child's exit even if it said nothing
        self.reports[fd] = pid
        if self.poller is not None:
            self.poller.register(fd, select.POLLIN)

    def read_report(self, fd: int) -> None:
        """A child's report is readable (its code, or the end of the pipe): tell the launcher
        ``{"ended": pid, "code": code}`` if it is a code; the pipe is closed either way."""
        pid = self.reports.get(fd)
        if pid is None:
            return
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        self.forget_report(fd)
        try:
            code = int(data)
        except ValueError:
            return  # closed without a word (it died), or garbage: its exit will tell
        if pid in self.children:
            self.send({"ended": pid, "code": code})

    def forget_reports_of(self, pid: int) -> None:
        for fd in [fd for fd, child in self.reports.items() if child == pid]:
            self.forget_report(fd)

    def forget_report(self, fd: int) -> None:
        del self.reports[fd]
        if self.poller is not None:
            self.poller.unregister(fd)
        os.close(fd)

    def watch(self) -> None:
        """Remember the files of the modules imported for tasks (to notice edits), and undo
        what their import changed in the environment (a child inherits the server's)."""
        if os.environ != self.env:
            os.environ.clear()
            os.environ.update(self.env)
        for name in set(sys.modules) - self.known:
            self.known.add(name)
            file = getattr(sys.modules.get(name), "__file__", None)
            if not isinstance(file, str) or file.startswith(self.installed):
                continue
            try:
                st = os.stat(file)
            except OSError:
                continue
            self.watched[file] = (st.st_mtime_ns, st.st_size)

    def changed(self) -> str | None:
        for file, (mtime, size) in self.watched.items():
            try:
                st = os.stat(file)
            except OSError:
                return f"{file} was removed"
            if (st.st_mtime_ns, st.st_size) != (mtime, size):
                return f"{file} changed on disk"
        return None

    def reap(self) -> None:
        self.dismissed = [pid for pid in self.dismissed if not _reaped(pid)]
        spare = self.spare
        if spare is not None and _reaped(spare.pid):  # it died waiting (killed): forget it
            os.close(spare.write)
            os.close(spare.report)
            self.spare = None
        for pid in list(self.children):
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                self.children.discard(pid)
                self.forget_reports_of(pid)
                self.send({"exit": pid, "code": None})
                continue
            if info is None or info.si_pid == 0:
                continue
            # Still a zombie: its group id cannot be reused, so end what it left there.
            try:
                os.killpg(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            _, status = os.waitpid(pid, 0)
            self.children.discard(pid)
            self.forget_reports_of(pid)  # not read yet: the exit says it all
            self.send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _reaped(pid: int) -> bool:
    """Reap child ``pid`` if it has exited (without waiting): whether it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return bool(done)


def serve(refused: set[str] | None = None, inherited: tuple[int, int] | None = None) -> int:
    """Run the fork server on this process's stdin/stdout (see the module docstring), or
    on the pipes ``inherited`` (a fork of the experiment: :func:`serve_inherited`)."""
    if inherited is None:
        inp = os.dup(0)
        out = os.dup(1)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        if not getattr(sys.flags, "safe_path", False) and sys.path:
            sys.path.pop(0)  # the server's folder: a spawned runner would not see it
    else:
        inp, out = inherited
    import partita.config  # what every child needs, imported once here
    import partita.run
    import partita.workspace
    from partita import _energy, _jobenv  # hashlib, the environment record

    _energy.probe()  # is a meter installed: looked up once, not per job
    _jobenv.probe()  # is nvidia-smi on PATH: the same

    try:
        import resource  # noqa: F401  (the job's CPU and memory figures at its end)
    except ImportError:
        pass
    from partita.config import _seal, _serial  # noqa: F401

    global _RUNNER_FILE
    _RUNNER_FILE = partita.run.__file__ or ""
    server = _Server(out, set(refused or ()), inherited=inherited is not None)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # it ends when its input ends
    poller = select.poll()
    poller.register(inp, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    server.poller = poller
    pending = b""
    reading = True
    while reading or server.children:
        # A spare is forked once the server has been idle a moment after a job started:
        # forked at once, it took the CPU from that job and from the launcher's reading
        # of the reply, just when they start.
        waiting = SPARE_AFTER_MS if reading and server.wants_spare else None
        events = poller.poll(waiting)
        if not events and waiting is not None:
            server.fork_spare()
        for fd, _ in events:
            if fd == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
            elif fd in server.reports:
                server.read_report(fd)
            elif fd == inp:
                data = os.read(inp, 65536)
                if not data:
                    reading = False
                    poller.unregister(inp)
                    server.drop_spare()  # no more jobs: it exits at once
                    continue
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    server.handle(line)
        server.reap()
    # Every exit is reported: the launcher sees the end of this output now, not after the
    # teardown of this process's address space (milliseconds for a warm interpreter).
    os.close(server.out)
    return 0


#: Descriptors the experiment had open when its server was forked from it: /dev/null in
#: the server and in each job (not closed: a Python file object inherited with the
#: experiment's memory must not reach, through a reused number, a file the job opens).
_MASKED: tuple[int, ...] = ()


def serve_inherited(inp: int, out: int, env: dict[str, str], refused: set[str]) -> int:
    """Serve on ``inp``/``out`` in a fork of the experiment process (its memory, modules and
    ``sys.path``), made like a spawned server: its own session, the working folder ``/``,
    the environment ``env``, /dev/null for its standard streams and for every other
    descriptor it inherited, the signal dispositions of the spawned server, and the
    experiment's objects frozen out of the garbage collector (never finalised here)."""
    import gc

    gc.freeze()  # the experiment's objects: not collected (nor their pages copied) here
    os.setsid()
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None):
                signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as a fresh interpreter has it
    null = os.open(os.devnull, os.O_RDWR)
    masked = []
    for name in _open_fds():
        if name in (inp, out, null):
            continue
        try:
            os.dup2(null, name, inheritable=False)
        except OSError:
            continue
        if name > 2:
            masked.append(name)
    os.close(null)
    _fresh_streams()
    global _MASKED
    _MASKED = tuple(masked)
    try:  # what ``ps`` and /proc/PID/comm show (its command line is the experiment's)
        with open("/proc/self/comm", "w") as comm:
            comm.write(INHERITED_NAME)
    except OSError:
        pass
    os.chdir(os.sep)
    os.environ.clear()
    os.environ.update(env)
    return serve(refused, (inp, out))


def _fresh_streams() -> None:
    """``sys.stdin``, ``sys.stdout`` and ``sys.stderr`` on descriptors 0, 1 and 2, as a fresh
    interpreter has them. The experiment may have replaced its own (pytest's capture, a
    notebook's, ``contextlib.redirect_stdout``): a job forked from it would print into that
    object, a copy in its own memory, and its ``stdout`` file would stay empty."""
    import io

    def stream(fd: int, mode: str, **options: Any) -> Any:
        raw = io.FileIO(fd, mode, closefd=False)
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffered, **options)  # the encoding of a fresh interpreter

    sys.stdin = stream(0, "r")
    sys.stdout = stream(1, "w", errors="strict")
    sys.stderr = stream(2, "w", errors="backslashreplace", line_buffering=True)


def mask_inherited() -> None:
    """In a job forked from an inherited server: /dev/null on the masked descriptors again
    (after the child closed every descriptor above 2)."""
    if not _MASKED:
        return
    null = os.open(os.devnull, os.O_RDWR)
    for name in _MASKED:
        if name != null:
            try:
                os.dup2(null, name, inheritable=False)
            except OSError:
                pass
    if null not in _MASKED:
        os.close(null)


def _open_fds() -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:  # no /proc (macOS): the usual range
        return list(range(_max_fd() if _max_fd() < 4096 else 4096))


def main(argv: list[str] | None = None) -> int:
    """``python -m partita._forkserver [REFUSED_JSON]``: serve on stdin/stdout."""
    args = sys.argv[1:] if argv is None else argv
    refused = set(json.loads(args[0])) if args else set()
    return serve(refused)


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main())
