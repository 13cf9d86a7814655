"""The ``experiment()`` context: glues configs, the work directory and the scheduler."""

from __future__ import annotations

import _thread
import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, TextIO

from partita import _forkserver
from partita._experiment_checks import check_importable, note_entry
from partita._experiment_env import environment_info, flag, run_record
from partita._experiment_report import Reporter, failed_entry, out_of_space, summary_text
from partita._experiment_signals import Signals, install_excepthook, reported
from partita._gcpace import GcPacer
from partita._resumable import ResumableTask
from partita._services import Service, Services
from partita.config import _runtime
from partita.config._config import Task, set_submitter, state_of
from partita.config._identity import identifier
from partita.config._seal import Sealed, outputs_of, seal
from partita.config._shared import shared_references
from partita.errors import ExperimentError, ExperimentFailed, PartitaError, WorkspaceError
from partita.launchers import Launcher, LocalLauncher
from partita.launchers._forkclient import install_inherited_server
from partita.launchers.resources import Resources
from partita.scheduler import Job, Retry, Scheduler, Submission, environment_for_jobs
from partita.scheduler._tokens import check_request
from partita.workspace import (
    JobPaths,
    JobState,
    RunPaths,
    RunWriter,
    Workspace,
    done_in,
    read_status,
    record_shared,
)

__all__ = ["Experiment", "Job"]

# A local launcher may fork its server from the experiment process (docs/forkserver.md).
install_inherited_server(_forkserver.serve_inherited, _forkserver.unsafe_reason)


def _declared_resources(cls: type) -> Any:
    """``getattr(cls, "resources", None)``, looked up once per class (without an
    ``AttributeError`` per task for the classes that declare none, most of them)."""
    return _runtime.per_class(cls, "_partita_resources", lambda c: getattr(c, "resources", None))


#: The default retry policies (frozen: shared by every submission).
_NO_RETRY = Retry(count=0)
_RESUMABLE_RETRY = Retry(count=3)
#: The resources of a task that asks for none (most of them).
_NO_RESOURCES = Resources()
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_active: list[Experiment] = []
#: How ``monitor=True`` starts the web monitor: installed by the ``partita`` facade, so
#: that this layer does not import the web layer (the monitor sits above it).
_monitor_starter: list[Callable[[Path, int], Any]] = []


def set_monitor_starter(starter: Callable[[Path, int], Any]) -> None:
    """Install the function that serves the web monitor of a work directory."""
    _monitor_starter[:] = [starter]


class _Held(NamedTuple):
    """A sealed task with the options it was submitted with (until it is launched)."""

    sealed: Sealed
    launcher: Launcher
    retries: Retry
    tokens: Any
    resources: dict[str, Any]
    resumable: bool


class Experiment:
    """A named experiment running in a work directory.

    Use it through :func:`partita.experiment`::

        with partita.experiment("workdir", "helloworld", max_jobs=4) as xp:
            Say(word="hello").submit()

    Args:
        workdir: the work directory (created if needed).
        name: the experiment's name; its runs are recorded in ``experiments/<name>/``.
        max_jobs: how many local jobs run at once (default: the number of CPUs).
        launcher: the default launcher of this experiment's tasks (default: local).
        detach: on Ctrl-C, leave running jobs running (the next run re-attaches to them).
            Default: ``PARTITA_DETACH=1`` in the environment.
        dry_run: print what would run, launch nothing. Default: ``PARTITA_DRY_RUN=1``.
        quiet: print only failures and the final summary.
        grace_period: seconds between SIGTERM and SIGKILL when cancelling jobs.
        monitor: serve the web monitor while the experiment runs and print its address
            (needs ``partita[web]``). Default: ``PARTITA_MONITOR=1`` in the environment.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str] | Any,
        name: str,
        *,
        max_jobs: int | None = None,
        launcher: Launcher | None = None,
        detach: bool | None = None,
        dry_run: bool | None = None,
        quiet: bool = False,
        grace_period: float = 10.0,
        monitor: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ExperimentError(
                f"experiment name: expected letters, digits, '_', '-' or '.', not starting with "
                f"'.' or '-', found {name!r}. Use e.g. 'helloworld' or 'bert-base.v2'."
            )
        if launcher is not None and not isinstance(launcher, Launcher):
            raise ExperimentError(
                f"launcher: expected a partita Launcher (e.g. LocalLauncher(4)), found "
                f"{type(launcher).__name__}."
            )
        # The command line (`partita run --detach/--dry-run`) passes these through the
        # environment; explicit arguments win.
        self.detach = flag("PARTITA_DETACH") if detach is None else detach
        if not isinstance(workdir, (str, os.PathLike)) or str(workdir).startswith("ssh://"):
            # A work directory on another computer: the script runs there (partita.ssh);
            # this returns only on that computer, with the plain path.
            from partita.ssh import is_remote, resolve_workdir

            if not is_remote(workdir):
                raise ExperimentError(
                    f"workdir: expected a path or a remote work directory (SSH(...).workdir"
                    f"(path), 'ssh://host/path'), found {type(workdir).__name__}."
                )
            try:
                workdir = resolve_workdir(workdir, name, detach=self.detach)
            except PartitaError as exc:
                # Raised before anything launched; the message says what to do.
                install_excepthook()
                raise reported(exc) from None
        try:
            self.workspace = Workspace(workdir)
        except WorkspaceError as exc:  # said plainly, without partita's internals
            install_excepthook()
            raise reported(exc) from None
        self.name = name
        self.dry_run = flag("PARTITA_DRY_RUN") if dry_run is None else dry_run
        self.grace_period = grace_period
        self.monitor = monitor
        self.launcher: Launcher = launcher or LocalLauncher(max_jobs)
        # Without an explicit launcher, the user's rules file (if any) picks one per task.
        from partita.launchers.finder import default_finder

        self._finder = default_finder() if launcher is None else None
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()
        self.run_paths = RunPaths.of(self.workspace, name, self.run_id)
        self.run_dir = self.run_paths.root
        self._reporter = Reporter(stream or sys.stderr, quiet)
        self._scheduler: Scheduler | None = None
        self._started = 0.0
        note_entry()  # where this file enters an experiment: classes below it are refused
        self._checked_classes: set[type] = set()
        #: Task type ids already warned about as matched through a migration.
        self._migration_warned: set[str] = set()
        self._writer = RunWriter(self.run_paths)
        self._environment = threading.Event()
        """Set once ``environment.json`` is written (or could not be)."""
        self._jobs_lock = threading.Lock()
        self._dry: list[tuple[str, str, dict[str, Any]]] = []
        self._signals = Signals()
        self._services = Services(self.run_paths)
        #: Transient tasks not launched (yet): launched when a job that is not done needs one.
        self._held: dict[str, _Held] = {}
        self._gc = GcPacer()
        self.status = "created"

    # --- context ----------------------------------------------------------------------------

    def __enter__(self) -> Experiment:
        _runtime.set_current_workspace(self.workspace.root)
        self._started = time.time()
        self.status = "running"
        env = environment_for_jobs()
        if not self.dry_run and isinstance(self.launcher, LocalLauncher):
            # First, before this process starts any thread: the local launcher's fork
            # server can then be a fork of this process, ready at once (docs/forkserver.md).
            with contextlib.suppress(Exception):  # an optimisation: launches report problems
                self.launcher.warm(env)
        # A dry run is recorded as such, and never becomes the experiment's latest run.
        try:
            self._writer.create(self._run_record(), latest=not self.dry_run)
        except WorkspaceError as exc:
            install_excepthook()
            raise reported(exc) from None
        # Collected while the script builds its tasks and its jobs run; the run waits for
        # it when it ends (``_close``), so a re-check of done jobs never waits for git.
        # A bare thread: ``threading.Thread.start`` waits until the new thread runs, and
        # that one, busy in Python, gives the interpreter lock back only after the switch
        # interval (5 ms); this thread goes on and the collector runs when it next waits.
        _thread.start_new_thread(self._write_environment, ())
        if not self.dry_run:
            self._scheduler = Scheduler(
                self.workspace,
                owner={"experiment": self.name, "run": self.run_id},
                grace=self.grace_period,
                env=env,
            )
            self._scheduler.add_listener(self._reporter.event)
            self._scheduler.start()
            self._scheduler.warm(self.launcher)  # its fork server, if not started above
            self._reporter.start_view()
        _active.append(self)
        set_submitter(self.submit)
        self._signals.install()
        self._reporter.say(
            f"experiment {self.name!r}, run {self.run_id}, in {self.workspace.root}"
            + (" (dry run)" if self.dry_run else "")
        )
        self._start_monitor()
        return self

    def _start_monitor(self) -> None:
        """With ``monitor=True`` (or ``PARTITA_MONITOR=1``), serve the web monitor meanwhile."""
        self._monitor: Any = None
        if not (self.monitor or flag("PARTITA_MONITOR")):
            return
        if not _monitor_starter:
            self._reporter.warn(
                "no web monitor: use partita.experiment(..., monitor=True) or "
                "partita.Experiment, which know how to start it"
            )
            return
        port = int(os.environ.get("PARTITA_MONITOR_PORT", "0"))
        try:
            self._monitor = _monitor_starter[0](self.workspace.root, port)
        except ImportError as exc:
            self._reporter.warn(f"no web monitor: {exc}")
            return
        self._reporter.warn(f"monitor: {self._monitor.url}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raising = exc_type is not None
        try:
            if exc_type is None:
                self._finish_normally()
            elif issubclass(exc_type, KeyboardInterrupt):
                self._interrupted()
                if exc is not None:
                    reported(exc)
            else:
                self._aborted()
        except KeyboardInterrupt as again:
            raising = True
            self._interrupted()
            raise reported(again) from None
        except BaseException:
            raising = True
            raise
        finally:
            self._close(raising)

    # --- services --------------------------------------------------------------------------

    def add_service(self, service: Service) -> Service:
        """Start ``service`` now; it runs until the experiment ends, however it ends.

        Call it inside the ``with`` block: ``xp.add_service(TensorboardService(logdir))``.
        ``partita status`` lists it with its address, the web monitor links it from the
        run's page. A service that cannot start raises
        :class:`partita.errors.ServiceError` (naming its command and quoting its output)
        before anything else happens. A dry run starts no service. Returns ``service``.
        """
        return self._services.add(
            service, running=self.status == "running", dry_run=self.dry_run, say=self._reporter.warn
        )

    @property
    def services(self) -> list[Service]:
        """The services running now, in the order they started."""
        return self._services.running

    # --- submission ------------------------------------------------------------------------

    def submit(
        self,
        task: Task,
        *,
        launcher: Launcher | None = None,
        retries: Retry | int | None = None,
        tokens: dict[Any, int] | None = None,
        resources: dict[str, Any] | None = None,
        transient: bool = False,
    ) -> Any:
        """Submit ``task`` (``task.submit(...)`` calls this); returns ``task.outputs()``.

        Validates everything first (identity, serialisation, importability): on error
        nothing is launched. With ``transient=True`` the task is launched only when a task
        submitted later needs it and is not done (docs/configs.md, "Transient tasks").
        """
        if not isinstance(task, Task):
            raise ExperimentError(
                f"submit: expected a Task instance, found {type(task).__name__}. Only tasks "
                "(classes deriving from partita.Task) can be submitted."
            )
        if launcher is not None and not isinstance(launcher, Launcher):
            raise ExperimentError(
                f"launcher: expected a partita Launcher, found {type(launcher).__name__}."
            )
        resumable = isinstance(task, ResumableTask)
        if isinstance(retries, int) and not isinstance(retries, bool):
            retries = Retry(count=retries)
        elif retries is None:
            retries = _RESUMABLE_RETRY if resumable else _NO_RETRY
        elif not isinstance(retries, Retry):
            raise ExperimentError(
                f"retries: expected an int or partita.Retry, found {type(retries).__name__}."
            )
        declared = _declared_resources(type(task))
        if resources is None and not isinstance(declared, dict):
            needs = _NO_RESOURCES  # the common case, parsed once
        else:
            needs = Resources.parse(declared if isinstance(declared, dict) else None).merged(
                Resources.parse(resources)
            )
        token_request = check_request(tokens) if tokens is not None else {}
        st = state_of(task)
        if st.job is not None and self._scheduler and self._scheduler.owns(st.job):
            return self._outputs(task)
        # Identity, validation, generated paths, tags, dependencies, outputs and the
        # params.json bytes: all decided by the config layer, before anything is launched.
        sealed = seal(
            task,
            self.workspace.root,
            check_class=self._check_importable,
            is_done=None if self.dry_run else done_in,
        )
        if not isinstance(transient, bool):
            raise ExperimentError(
                f"transient: expected True or False, found {type(transient).__name__}."
            )
        if sealed.matched is not None:
            self._matched_through_migration(sealed, JobPaths(sealed.jobdir))
        if self.dry_run:
            paths = JobPaths(sealed.jobdir)
            self._dependencies(sealed, paths)  # refuses what the real run would refuse
            self._dry_submit(task, sealed.identifier, paths, sealed.tags)
            return sealed.outputs
        assert self._scheduler is not None
        if launcher is None and self._finder is not None:
            launcher = self._finder.choose(needs, task).launcher
        held = _Held(
            sealed,
            launcher or self.launcher,
            retries,
            token_request,
            {} if needs is _NO_RESOURCES else needs.to_dict(),
            resumable,
        )
        with self._jobs_lock:
            if transient:
                # Launched only when a job that is not done needs it (see _dependencies).
                self._held[sealed.identifier] = held
                state_of(sealed.task).held = True  # so task.job says why it has no job
                return sealed.outputs
            self._held.pop(sealed.identifier, None)
        self._launch(held, transient=False)
        self._gc.submitted()
        return sealed.outputs

    def _launch(self, held: _Held, *, transient: bool) -> Job:
        """Hand a sealed task to the scheduler (after its held transient dependencies)."""
        assert self._scheduler is not None
        sealed = held.sealed
        paths = JobPaths(sealed.jobdir)  # names computed here, not read: no checks needed
        dependencies = self._dependencies(sealed, paths)
        spec = Submission(
            sealed.task,
            sealed.identifier,
            paths,
            held.launcher,
            dependencies,
            sealed.tags,
            held.retries,
            held.tokens,
            held.resources,
            held.resumable,
            sealed.encoded,
            sealed.recorded,
            sealed.done,
        )
        shared = shared_references(sealed.task, self.workspace.root)
        if shared:
            # Before the job can run: gc keeps a shared folder while a job refers to it.
            try:
                record_shared(paths, shared)
            except OSError as exc:
                raise reported(
                    WorkspaceError(
                        f"cannot record the shared folders of {paths.root}: "
                        f"{exc.strerror or exc}. Check that the work directory is writable."
                    )
                ) from None
        self._record_submission(spec, transient, sealed.type_id)  # before it can launch
        job = self._scheduler.submit(spec)
        st = state_of(sealed.task)
        st.job, st.held = job, False
        return job

    def _matched_through_migration(self, sealed: Sealed, paths: JobPaths) -> None:
        """Never silently: note it in the job folder, and warn once per task class."""
        import warnings

        from partita.errors import PartitaWarning
        from partita.workspace import record_match

        if not self.dry_run:
            record_match(paths, str(sealed.matched))
        if sealed.type_id in self._migration_warned:
            return
        self._migration_warned.add(sealed.type_id)
        warnings.warn(
            f"{sealed.type_id}/{sealed.identifier[:12]} was matched through a migration: "
            f"{sealed.matched}. It is the same job, in the same folder. Run 'partita migrate "
            f"{self.workspace.root}' to rewrite such job folders under the current names.",
            PartitaWarning,
            stacklevel=4,
        )

    def _outputs(self, task: Task) -> Any:
        return outputs_of(task)

    def _dependencies(self, sealed: Sealed, paths: JobPaths) -> Sequence[Job]:
        if not sealed.dependencies:
            return ()  # shared: nothing more for the garbage collector to visit per job
        found: dict[str, Job] = {}
        done: bool | None = None
        for dependency in sealed.dependencies:
            job = state_of(dependency).job
            if job is None:
                with self._jobs_lock:
                    held = self._held.get(identifier(dependency))
                if held is None:
                    continue
                if done is None:
                    done = read_status(paths).state is JobState.DONE
                if done:
                    continue  # the job is reused as it is: its transient input is not needed
                with self._jobs_lock:
                    held = self._held.pop(identifier(dependency), None)
                if held is None:
                    job = state_of(dependency).job
                    if job is None:
                        continue
                else:
                    job = self._launch(held, transient=True)
            found.setdefault(job.identifier, job)
        scheduler = self._scheduler
        # A dry run has no scheduler: the jobs it listed itself are its own (they would run).
        listed = {ident for _, ident, _ in self._dry} if self.dry_run else set()
        own = [
            job
            for job in found.values()
            if (scheduler is not None and scheduler.owns(job)) or job.identifier in listed
        ]
        for job in found.values():
            if job not in own and job.state is not JobState.DONE:
                raise ExperimentError(
                    f"{type(sealed.task).__qualname__} depends on {job.name}, submitted in "
                    f"another experiment that has not completed it ({job.state.value}). "
                    "Submit it again in this experiment."
                )
        return own

    def _check_importable(self, cls: type) -> None:
        if cls in self._checked_classes:
            return
        check_importable(cls)
        self._checked_classes.add(cls)

    # --- records ----------------------------------------------------------------------------

    def _record_submission(
        self, spec: Submission, transient: bool = False, type_id: str | None = None
    ) -> None:
        entry = {
            "id": spec.identifier,
            "type": spec.paths.type_id if type_id is None else type_id,
            "tags": spec.tags,
            "depends": [d.identifier for d in spec.dependencies],
            "time": time.time(),
        }
        if transient:
            entry["transient"] = True
        with self._jobs_lock:
            try:
                # A job found done is not launched: its line may wait for the next one.
                self._writer.append(entry, defer=spec.found_done)
            except WorkspaceError as exc:
                raise reported(exc) from None

    def _flush_submissions(self) -> None:
        with self._jobs_lock:
            try:
                self._writer.flush()
            except WorkspaceError as exc:
                raise reported(exc) from None

    def _run_record(self, **extra: Any) -> dict[str, Any]:
        return run_record(self.name, self.run_id, self.status, self._started, self.dry_run, **extra)

    def _environment_written(self) -> None:
        """Wait (at most a few seconds) until ``environment.json`` is written (any thread)."""
        self._environment.wait(timeout=10)

    def _write_environment(self) -> None:
        try:
            info = environment_info()
            with contextlib.suppress(WorkspaceError):
                self._writer.write_environment(info)
        finally:
            self._environment.set()

    # --- ending -----------------------------------------------------------------------------

    def wait(self) -> None:
        """Wait until every job submitted so far is finished."""
        self._flush_submissions()
        if self._scheduler is not None:
            self._scheduler.wait_idle()

    @property
    def jobs(self) -> list[Job]:
        """The jobs submitted so far, in order."""
        return self._scheduler.jobs if self._scheduler is not None else []

    def _finish_normally(self) -> None:
        if self.dry_run:
            self.status = "done"
            from partita._experiment_dry import dry_summary  # dry runs only

            self._reporter.say(dry_summary(self._dry))
            return
        assert self._scheduler is not None
        self._flush_submissions()  # the lines of jobs found done, before waiting
        if self.detach:
            self._scheduler.wait_settled()
        else:
            self._scheduler.wait_idle()
        self._scheduler.stop_submitting()
        jobs = self._scheduler.jobs
        if self._held:
            self._reporter.say(
                f"{len(self._held)} transient task(s) not run: no job that is not done needs them"
            )
        if self.detach:
            going = [j for j in jobs if not j.state.final]
            if going:
                self._reporter.warn(
                    f"detached: {len(going)} job(s) running, queued or waiting for them go on "
                    f"without this process. Follow them with 'partita status "
                    f"{self.workspace.root}', or run the script again to pick them up."
                )
        failed = [j for j in jobs if j.state.final and j.state is not JobState.DONE]
        problems = self._scheduler.internal_errors + self._scheduler.callback_errors
        self.status = "failed" if failed or problems else "done"
        if self.status == "done" and any(not j.state.final for j in jobs):
            self.status = "detached"
        self._summary(jobs)
        if problems:
            for text in problems:
                self._reporter.warn(text.rstrip())
        full = [j for j in failed if out_of_space(j)]
        if full:
            names = ", ".join(j.name for j in full[:3]) + (", ..." if len(full) > 3 else "")
            raise reported(
                WorkspaceError(
                    f"experiment {self.name!r}: no space left on device in the work directory "
                    f"{self.workspace.root}: {len(full)} of {len(jobs)} jobs could not run or "
                    f"record their outcome ({names}). Free some space and run the script "
                    "again: jobs that are done are reused."
                )
            )
        if failed:
            raise reported(
                ExperimentFailed(self.name, [failed_entry(j, jobs) for j in failed], len(jobs))
            )
        if problems:
            raise ExperimentError(
                f"experiment {self.name!r}: {len(problems)} error(s) in callbacks or in "
                "partita itself (printed above)."
            )

    def _interrupted(self) -> None:
        if self._scheduler is None:
            self.status = "cancelled"
            return
        if self.detach:
            self._scheduler.stop_submitting()
            running = [j for j in self._scheduler.jobs if j.state is JobState.RUNNING]
            self._reporter.warn(
                f"interrupted: leaving {len(running)} running job(s) running (detach). "
                "Run the script again to follow them."
            )
            self._scheduler.cancel_all(kill_running=False)
        else:
            self._reporter.warn("interrupted: cancelling this experiment's running jobs...")
            self._scheduler.cancel_all(kill_running=True)
        self.status = "cancelled"
        self._summary(self._scheduler.jobs)

    def _aborted(self) -> None:
        self.status = "failed"
        if self._scheduler is None:
            return
        self._scheduler.cancel_all(kill_running=False)
        running = [j for j in self._scheduler.jobs if j.state is JobState.RUNNING]
        if running:
            self._reporter.warn(
                f"the experiment script raised an error; {len(running)} running job(s) go on "
                "in the background and the next run will pick them up."
            )

    def _close(self, raising: bool = False) -> None:
        self._gc.release()
        self._signals.restore()
        if self in _active:
            _active.remove(self)
        set_submitter(_active[-1].submit if _active else None)
        self._reporter.stop_view()
        for problem in self._services.stop_all():
            self._reporter.warn(problem)
        monitor = getattr(self, "_monitor", None)
        if monitor is not None:
            monitor.stop()
            self._monitor = None
        if self._scheduler is not None:
            jobs = self._scheduler.jobs
            states = {j.identifier: j.state.value for j in jobs}
            self._scheduler.close()
        else:
            states = {}
        self._environment_written()
        try:
            self._writer.finish(self._run_record(ended=time.time(), jobs=states))
        except WorkspaceError as exc:
            if not raising:
                raise reported(exc) from None
            # The error on its way out says what matters (e.g. the disk is full).

    def _summary(self, jobs: list[Job]) -> None:
        self._reporter.stop_view()
        self._reporter.say(summary_text(self.name, jobs, time.time() - self._started))

    def _dry_submit(self, task: Task, ident: str, paths: Any, tags: dict[str, Any]) -> None:
        from partita._experiment_dry import dry_submit  # dry runs only

        label, job, line = dry_submit(task, ident, paths, tags, self.launcher)
        self._dry.append((label, ident, tags))
        state_of(task).job = job
        self._reporter.warn(line)


def current_experiment() -> Experiment | None:
    """The innermost active experiment of this process, if any."""
    return _active[-1] if _active else None
