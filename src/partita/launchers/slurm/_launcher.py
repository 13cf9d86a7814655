"""``SlurmLauncher``: jobs as Slurm array elements, queued along their dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Hashable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers.base import Exit, Launcher, LaunchRequest
from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._options import SlurmOptions
from partita.launchers.slurm._packing import (
    ReportReader,
    auto_pack_size,
    element_options,
    lost_reason,
    manifest_document,
    read_report,
)
from partita.launchers.slurm._script import batch_script, output_pattern, sbatch_argv
from partita.launchers.slurm._status import EndWatch, JobStatus, phase_of
from partita.workspace import JobPaths, final_marker

if TYPE_CHECKING:
    from partita.workspace import JobInfo

_FINAL_PHASES = {"done", "failed"}
#: What makes requests elements of one array: sbatch options, dependencies, environment.
_Group = tuple[SlurmOptions, tuple[str, ...], str]
#: A request waiting for its submission: its group, itself, the future of its handle.
_Pending = tuple[_Group, LaunchRequest, "asyncio.Future[dict[str, Any]]"]


class Gathering:
    """When pending launch requests are submitted: the batching rule, on any clock.

    A debounce with bounds. Requests gather while they keep coming: the batch is due once
    ``quiet`` seconds passed without a new request, or ``longest`` seconds after its first
    request even if they keep coming, or at once when one of its arrays is full (``size``
    requests of one group: they cannot join a bigger array by waiting). Times are whatever
    clock the caller uses (the event loop's); groups are any hashable keys.
    """

    def __init__(self, *, quiet: float, longest: float, size: int) -> None:
        self.quiet = quiet
        self.longest = longest
        self.size = size
        self.first: float | None = None
        self.last: float | None = None
        self.groups: dict[Hashable, int] = {}

    @property
    def pending(self) -> int:
        """How many requests the current batch has."""
        return sum(self.groups.values())

    def add(self, now: float, group: Hashable = None, count: int = 1) -> None:
        """``count`` requests of ``group`` arrived at ``now``."""
        if count <= 0:
            return
        if self.first is None:
            self.first = now
        self.last = now
        self.groups[group] = self.groups.get(group, 0) + count

    def due_in(self, now: float) -> float | None:
        """Seconds until the batch is due (``<= 0``: now; ``None``: nothing pending)."""
        if self.first is None or self.last is None or not self.groups:
            return None
        if max(self.groups.values()) >= self.size:
            return 0.0
        return min(self.last + self.quiet, self.first + self.longest) - now

    def take(self) -> int:
        """Start a new batch; returns how many requests the finished one had."""
        pending = self.pending
        self.groups, self.first, self.last = {}, None, None
        return pending


class SlurmLauncher(Launcher, kind="slurm"):
    """Runs jobs on a Slurm cluster through ``sbatch``, ``squeue``, ``sacct`` and ``scancel``.

    Any sbatch option with a field in :class:`SlurmOptions` can be given by name
    (``partition``, ``time``, ``mem``, ``cpus_per_task``, ``gpus``, ``gres``, ``account``,
    ``qos``, ``constraint``, ...), and anything else through ``extra=["--exclusive"]``;
    unknown names are rejected with the list of valid ones. A task's own resources
    (``cpus``, ``mem``, ``gpus``, ``time``) take precedence over these defaults.

    Ready jobs that share options and dependencies are submitted together as one job
    array (at most ``max_array_size`` elements, ``array_parallelism`` at once). Requests
    gather while they keep coming (see :class:`Gathering`): they are submitted once none
    arrived for ``batch_quiet`` seconds, ``batch_longest`` seconds after the first, or as
    soon as one array has ``max_array_size`` of them. A job whose
    dependencies are queued on the same launcher is submitted at once with
    ``--dependency=afterok:...``, so a whole DAG can be queued and left (``detach=True``).
    One ``squeue`` (and ``sacct`` for jobs that left the queue) follows every job.

    Args:
        max_array_size: the most elements in one array.
        array_parallelism: ``%N`` throttle of each array (``None``: no throttle).
        poll_interval: first delay between two status polls; it grows to
            ``max_poll_interval`` while nothing changes.
        batch_quiet: submit the pending requests once none arrived for this many seconds.
        batch_longest: submit them at the latest this many seconds after the first one.
        grow_memory: after a job failed for memory, multiply its memory by this factor on
            the next attempt (``None``: keep it).
        grow_time: after a time-out, multiply its time limit by this factor.
        python: the Python executable on the nodes (default: this one).
        env: extra environment variables of the Slurm commands (e.g. ``SLURM_CONF``).
        bindir: where the Slurm programs are (default: on ``PATH``).
        pack: run up to this many tasks in each array element, one after the other, in
            one allocation (``None``: one task per element; ``"auto"``: pack groups of at
            least 8 ready tasks whose time limits are all 10 minutes or less, see
            :func:`auto_pack_size`). See docs/slurm.md, "Packed arrays": each task keeps
            its folder, markers, time limit and memory; dependents of a packed task are
            submitted once it is done, never queued behind it with ``afterok``.
    """

    #: Seconds to wait, once a job has ended, for sacct to record its exit code when the
    #: runner recorded none in the job folder; after that the exit code is reported unknown.
    accounting_patience: float = 120.0
    #: How many times a packed task whose worker died before its turn is launched again
    #: without counting a failed attempt; after that it is recorded ``lost`` (retry policy).
    requeues: int = 3

    def __init__(
        self,
        *,
        max_array_size: int = 1000,
        array_parallelism: int | None = None,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        batch_quiet: float = 0.1,
        batch_longest: float = 2.0,
        grow_memory: float | None = None,
        grow_time: float | None = None,
        python: str | None = None,
        env: dict[str, str] | None = None,
        bindir: str | Path | None = None,
        commands: SlurmCommands | None = None,
        pack: int | Literal["auto"] | None = None,
        **options: Any,
    ) -> None:
        self.options = SlurmOptions.from_kwargs(**options)
        if (
            pack is not None
            and pack != "auto"
            and (isinstance(pack, bool) or not isinstance(pack, int) or pack < 1)
        ):
            raise LauncherOptionError(
                f"pack: expected a whole number of tasks per array element (>= 1), 'auto' "
                f"or None, found {pack!r}."
            )
        self.pack = pack
        if max_array_size < 1:
            raise LauncherOptionError("max_array_size: expected a positive int.")
        for name, factor in (("grow_memory", grow_memory), ("grow_time", grow_time)):
            if factor is not None and not factor >= 1.0:
                raise LauncherOptionError(f"{name}: expected a factor >= 1, found {factor!r}.")
        for name, seconds in (("batch_quiet", batch_quiet), ("batch_longest", batch_longest)):
            if not seconds >= 0:
                raise LauncherOptionError(f"{name}: expected seconds >= 0, found {seconds!r}.")
        self.max_array_size = max_array_size
        self.gathering = Gathering(quiet=batch_quiet, longest=batch_longest, size=max_array_size)
        #: How many requests each submission round took (each gave one array per group).
        self.batch_sizes: list[int] = []
        self.array_parallelism = array_parallelism
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.grow_memory = grow_memory
        self.grow_time = grow_time
        self.python = python or sys.executable
        conf = (env or {}).get("SLURM_CONF") or os.environ.get("SLURM_CONF")
        self.env = {**({"SLURM_CONF": conf} if conf else {}), **(env or {})}
        self.commands = commands or SlurmCommands(bindir=bindir, env=self.env)
        self._queue: list[_Pending] = []
        self._flush: asyncio.TimerHandle | None = None
        self._submitting: set[asyncio.Future[None]] = set()
        self._watched: dict[str, asyncio.Future[Exit]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._misses: dict[str, int] = {}
        self._logs: dict[str, Path] = {}
        self._runners: dict[str, tuple[Path, int]] = {}
        self._ends = EndWatch(self.accounting_patience)
        self._batches = 0
        #: Packed tasks followed: key ``job_id/slot`` -> (handle, future of its exit).
        self._packed: dict[str, tuple[dict[str, Any], asyncio.Future[Exit]]] = {}
        self._reports = ReportReader()
        #: Slots of each packed element whose cancel was asked from here.
        self._cancel_asked: dict[str, set[int]] = {}
        #: How often each packed task (by job folder) was relaunched without having started.
        self._unstarted: dict[str, int] = {}

    #: Dependents are queued at once with ``afterok`` behind jobs of their own (see
    #: :meth:`queues_after` for packed ones).
    queues_dependencies = True

    def queues_after(self, handle: dict[str, Any]) -> bool:
        """Whether a dependent can be queued with ``afterok`` behind ``handle``'s job.

        Not behind a packed task: its element runs several tasks, so the element's end
        says nothing of that task's success. Its dependents are submitted once it is done.
        """
        return not _packed(handle)

    def describe(self) -> str:
        if self.pack == "auto":
            packed = " (packed automatically)"
        else:
            packed = f" (packed, {self.pack} per element)" if self.pack else ""
        return "slurm " + " ".join(self.options.to_sbatch_args()) + packed

    # --- launching ------------------------------------------------------------------------

    async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
        """Queue the requests; they are submitted with those that keep arriving with them."""
        if not requests:
            return []
        loop = asyncio.get_running_loop()
        futures = []
        for request in requests:
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            group = self._group_of(request)
            self._queue.append((group, request, future))
            self.gathering.add(loop.time(), group)
            futures.append(future)
        self._schedule_flush()
        return list(await asyncio.gather(*futures))

    def _schedule_flush(self) -> None:
        """Submit now if the batch is due, else make sure a timer looks again by then."""
        loop = asyncio.get_running_loop()
        delay = self.gathering.due_in(loop.time())
        if delay is None:
            return
        if delay <= 0:
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None
            self.batch_sizes.append(self.gathering.take())
            queue, self._queue = self._queue, []
            task = asyncio.ensure_future(self._submit(queue))
            self._submitting.add(task)
            task.add_done_callback(self._submitting.discard)
        elif self._flush is None:
            # A timer that fires early (a request extended the batch) just looks again.
            self._flush = loop.call_later(delay, self._on_flush_timer)

    def _on_flush_timer(self) -> None:
        self._flush = None
        self._schedule_flush()

    def options_for(self, request: LaunchRequest) -> SlurmOptions:
        """The sbatch options of one attempt: defaults, task resources, growth after failures."""
        needs = request.resources
        changes: dict[str, Any] = {}
        if needs.get("cpus"):
            changes["cpus_per_task"] = needs["cpus"]
        if needs.get("mem"):
            changes["mem"] = max(1, int(needs["mem"]) // 2**20)
        if needs.get("gpus"):
            changes["gpus"] = needs["gpus"]
        if needs.get("time"):
            changes["time"] = timedelta(seconds=max(60, float(needs["time"])))
        options = self.options.merged(**changes) if changes else self.options
        memory_failures = request.previous_failures.count("memory")
        if self.grow_memory and memory_failures:
            options = options.scale_mem(self.grow_memory**memory_failures, default="4G")
        timeouts = request.previous_failures.count("timeout")
        if self.grow_time and timeouts:
            options = options.scale_time(self.grow_time**timeouts, default=timedelta(hours=1))
        return options

    def _group_of(self, request: LaunchRequest) -> _Group:
        """Requests of one group can be elements of one array: same options, dependencies, env."""
        options = self.options_for(request)
        depends = tuple(sorted(h["job_id"] for h in request.depends_on if h.get("job_id")))
        return (options, depends, json.dumps(request.env, sort_keys=True))

    async def _submit(self, queue: list[_Pending]) -> None:
        groups: dict[_Group, list[tuple[LaunchRequest, asyncio.Future[Any]]]] = {}
        for key, request, future in queue:
            groups.setdefault(key, []).append((request, future))
        for (options, depends, _), members in groups.items():
            per = self._pack_size(members, bool(depends))
            step = self.max_array_size * (per or 1)
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                try:
                    if per:
                        handles = await self._submit_packed(options, chunk, per)
                    else:
                        handles = await self._submit_array(options, list(depends), chunk)
                except Exception as exc:  # every waiting launch learns of the failure
                    error = exc if isinstance(exc, LauncherError) else LauncherError(str(exc))
                    for _, future in chunk:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), handle in zip(chunk, handles, strict=True):
                    if not future.done():
                        future.set_result(handle)

    def _pack_size(
        self, members: list[tuple[LaunchRequest, asyncio.Future[Any]]], queued_after: bool
    ) -> int | None:
        """Tasks per element for one group of ready requests (``None``: one per element).

        A group queued behind other jobs (``afterok``) is never packed. With
        ``pack="auto"``, :func:`auto_pack_size` decides from the group's size and the
        longest time limit of its tasks.
        """
        if queued_after or self.pack is None:
            return None
        if self.pack != "auto":
            return self.pack
        limits = [self.task_limits(request)[0] for request, _ in members]
        known = [limit for limit in limits if limit is not None]
        longest = max(known) if known and len(known) == len(limits) else None
        return auto_pack_size(len(members), longest)

    async def _submit_array(
        self,
        options: SlurmOptions,
        depends: list[str],
        members: list[tuple[LaunchRequest, asyncio.Future[Any]]],
    ) -> list[dict[str, Any]]:
        first = members[0][0]
        workdir = first.paths.workdir
        folder = workdir / "slurm"
        logs = folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._batches += 1
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{self._batches}"
        manifest = folder / f"{stamp}.json"
        entries = [{"jobdir": str(r.paths.root), "attempt": r.attempt} for r, _ in members]
        manifest.write_text(json.dumps(entries, indent=1) + "\n")
        env = dict(first.env)
        if options.time is not None:  # the runner turns it into a deadline (Stopping.remaining)
            env["PARTITA_TIME_LIMIT"] = str(int(options.time.total_seconds()))
        script = batch_script(python=self.python, workdir=workdir, env=env, manifest=manifest)
        array = f"0-{len(members) - 1}"
        if self.array_parallelism:
            array += f"%{self.array_parallelism}"
        name = first.name if len(members) == 1 else f"partita-{len(members)}"
        argv = sbatch_argv(
            options,
            job_name=name,
            output=output_pattern(logs, "%A_%a.out"),
            error=output_pattern(logs, "%A_%a.out"),
            array=array,
            dependency=depends or None,
        )
        job_id = await self.commands.sbatch(script, argv[1:])
        conf = self.env.get("SLURM_CONF")
        return [
            {
                "kind": self.kind,
                "job_id": f"{job_id}_{i}",
                "array": job_id,
                "index": i,
                "log": str(logs / f"{job_id}_{i}.out"),
                "jobdir": str(request.paths.root),
                "attempt": request.attempt,
                **({"slurm_conf": conf} if conf else {}),
            }
            for i, (request, _) in enumerate(members)
        ]

    def task_limits(self, request: LaunchRequest) -> tuple[float | None, int | None]:
        """One packed task's time limit (seconds) and memory (bytes), enforced by its worker.

        The task's own ``time`` (else the launcher's), grown after time-outs like the
        sbatch option; the memory of :meth:`options_for` (growth included).
        """
        options = self.options_for(request)
        needs = request.resources
        limit: float | None = None
        if needs.get("time"):
            limit = float(needs["time"])
        elif self.options.time is not None:
            limit = self.options.time.total_seconds()
        timeouts = request.previous_failures.count("timeout")
        if limit and self.grow_time and timeouts:
            limit *= self.grow_time**timeouts
        mem = options.mem * 2**20 if options.mem else None
        return limit, mem

    async def _submit_packed(
        self,
        options: SlurmOptions,
        members: list[tuple[LaunchRequest, asyncio.Future[Any]]],
        per: int,
    ) -> list[dict[str, Any]]:
        """Submit one array whose elements each run up to ``per`` of ``members`` in turn."""
        first = members[0][0]
        workdir = first.paths.workdir
        folder = workdir / "slurm"
        logs = folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._batches += 1
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{self._batches}"
        manifest = folder / f"{stamp}.pack.json"
        reports = folder / "packs" / stamp
        reports.mkdir(parents=True, exist_ok=True)
        # Spread the tasks evenly: 10 tasks with pack=4 make elements of 4, 3 and 3.
        count = -(-len(members) // per)
        shares = [members[i::count] for i in range(count)]
        packs = []
        for share in shares:
            entries = []
            for request, _ in share:
                limit, mem = self.task_limits(request)
                entries.append(
                    {
                        "jobdir": str(request.paths.root),
                        "attempt": request.attempt,
                        "time": limit,
                        "mem": mem,
                        "append_logs": request.append_logs,
                    }
                )
            packs.append(entries)
        manifest.write_text(manifest_document(reports, packs))
        script = batch_script(
            python=self.python,
            workdir=workdir,
            env=first.env,
            manifest=manifest,
            runner="partita._pack",
        )
        array = f"0-{len(packs) - 1}"
        if self.array_parallelism:
            array += f"%{self.array_parallelism}"
        argv = sbatch_argv(
            element_options(options, packs),
            job_name=f"partita-pack-{len(members)}",
            output=output_pattern(logs, "%A_%a.out"),
            error=output_pattern(logs, "%A_%a.out"),
            array=array,
        )
        job_id = await self.commands.sbatch(script, argv[1:])
        conf = self.env.get("SLURM_CONF")
        handles: dict[int, dict[str, Any]] = {}
        for index, share in enumerate(shares):
            for slot, (request, future) in enumerate(share):
                handles[id(future)] = {
                    "kind": self.kind,
                    "job_id": f"{job_id}_{index}",
                    "array": job_id,
                    "index": index,
                    "slot": slot,
                    "pack": len(share),
                    "report": str(reports / f"{index}.jsonl"),
                    "log": str(logs / f"{job_id}_{index}.out"),
                    "jobdir": str(request.paths.root),
                    "attempt": request.attempt,
                    **({"slurm_conf": conf} if conf else {}),
                }
        return [handles[id(future)] for _, future in members]

    # --- following ------------------------------------------------------------------------

    async def wait(self, handle: dict[str, Any]) -> Exit:
        job_id = str(handle["job_id"])
        if _packed(handle):
            key = f"{job_id}/{int(handle['slot'])}"
            known = self._packed.get(key)
            if known is None:
                known = (dict(handle), asyncio.get_running_loop().create_future())
                self._packed[key] = known
            self._ensure_poller()
            return await known[1]
        if handle.get("log"):
            self._logs[job_id] = Path(handle["log"])
        if handle.get("jobdir") and handle.get("attempt"):
            self._runners[job_id] = (Path(handle["jobdir"]), int(handle["attempt"]))
        future = self._watched.get(job_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._watched[job_id] = future
        self._ensure_poller()
        return await future

    def _ensure_poller(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll_loop())

    async def _poll_loop(self) -> None:
        """One squeue (plus sacct for jobs that left it) per round, for every job."""
        interval = self.poll_interval
        assert self._wake is not None
        while True:
            pending = [i for i, f in self._watched.items() if not f.done()]
            elements = {str(h["job_id"]) for h, f in self._packed.values() if not f.done()}
            pending += sorted(elements - set(pending))
            if not pending:
                self._watched.clear()
                self._packed.clear()
                return
            changed = await self._poll_once(pending)
            interval = (
                self.poll_interval if changed else min(interval * 1.5, self.max_poll_interval)
            )
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)

    async def _poll_once(self, job_ids: list[str]) -> bool:
        try:
            states = await self._statuses(job_ids)
        except LauncherError as exc:
            print(f"partita: slurm status poll failed (will retry): {exc}", file=sys.stderr)
            return False
        changed = self._follow_packed(states)
        for job_id in job_ids:
            if job_id not in self._watched:
                continue  # an element of a packed array, followed above
            info = states.get(job_id)
            if info is None:
                misses = self._misses.get(job_id, 0) + 1
                self._misses[job_id] = misses
                if misses >= 30:  # unknown to squeue and sacct for a long time
                    self._resolve(job_id, Exit(None, None, "Slurm no longer knows this job"))
                    changed = True
                continue
            self._misses.pop(job_id, None)
            # Never an exit code from incomplete accounting: the runner's record, or
            # sacct's completion record, or (after accounting_patience) none.
            ended = self._ends.settle(job_id, info, self._runner_code(job_id))
            if ended is not None:
                reason = ended.reason
                if reason == "error" and self._killed_for_memory(job_id):
                    reason = "memory"
                observed = reason if reason not in (None, "error") else None
                detail = f"Slurm state {ended.state}"
                if ended.returncode is None and ended.phase == "failed":
                    detail += (
                        "; no exit code: the runner recorded none and Slurm's accounting "
                        f"(sacct) had none within {self._ends.patience:g} s"
                    )
                self._resolve(job_id, Exit(ended.returncode, observed, detail))
                changed = True
        return changed

    def _follow_packed(self, states: Mapping[str, JobStatus]) -> bool:
        """Resolve packed tasks: from their worker's report, or once their element ended.

        The statuses were read before the reports: a worker writes a task's end before it
        exits, so an element seen ended has all its ends in the report read after.
        """
        changed = False
        by_element: dict[str, list[str]] = {}
        for key, (handle, future) in self._packed.items():
            if not future.done():
                by_element.setdefault(str(handle["job_id"]), []).append(key)
        for job_id, keys in by_element.items():
            info = states.get(job_id)
            gone = False
            if info is None:
                misses = self._misses.get(job_id, 0) + 1
                self._misses[job_id] = misses
                gone = misses >= 30
            else:
                self._misses.pop(job_id, None)
            ended = gone or (info is not None and info.final)
            for key in keys:
                handle, future = self._packed[key]
                starts, ends = self._reports.read(str(handle["report"]))
                exit_ = _packed_exit(handle, starts, ends, info.state if ended and info else None)
                if exit_ is None and gone:
                    exit_ = Exit(None, "lost", f"Slurm no longer knows the pack worker {job_id}")
                if exit_ is not None and not exit_.started:
                    jobdir = str(handle["jobdir"])
                    self._unstarted[jobdir] = self._unstarted.get(jobdir, 0) + 1
                    if self._unstarted[jobdir] > self.requeues:
                        exit_ = Exit(None, exit_.reason, exit_.detail)  # lost: retry policy
                if exit_ is not None:
                    changed = True
                    del self._packed[key]
                    if not future.done():
                        future.set_result(exit_)
            if ended:
                self._misses.pop(job_id, None)
        self._reports.keep({str(h["report"]) for h, _ in self._packed.values()})
        return changed

    def _runner_code(self, job_id: str) -> int | None:
        """The exit code the runner recorded in the job folder for this attempt, if any."""
        runner = self._runners.get(job_id)
        if runner is None:
            return None
        jobdir, attempt = runner
        try:
            final = final_marker(JobPaths(jobdir))
        except (OSError, ValueError):
            return None
        if final is None or final[1].get("attempt") != attempt:
            return None
        code = final[1].get("exit_code")
        return code if isinstance(code, int) and not isinstance(code, bool) else None

    def _killed_for_memory(self, job_id: str) -> bool:
        """Slurm without cgroups kills over-memory jobs with SIGKILL and says so in the log."""
        log = self._logs.get(job_id)
        try:
            text = log.read_text(errors="replace")[-4000:] if log else ""
        except OSError:
            return False
        return "exceeded memory limit" in text or "oom-kill" in text.lower()

    def _resolve(self, job_id: str, exit_: Exit) -> None:
        self._logs.pop(job_id, None)
        self._runners.pop(job_id, None)
        self._ends.forget(job_id)
        future = self._watched.pop(job_id, None)
        if future is not None and not future.done():
            future.set_result(exit_)

    async def status(self, job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``{job_id: (state, exit code)}`` from one squeue and, for the rest, one sacct.

        The exit code reads like sacct's (``"3:0"``), or ``"unknown"`` while the job is
        queued or running, or ended but Slurm's accounting has not recorded it yet.
        """
        return {i: (s.state, s.exit_text) for i, s in (await self._statuses(job_ids)).items()}

    async def _statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return await self.commands.statuses(job_ids)

    async def alive(self, handle: dict[str, Any]) -> bool | None:
        if _packed(handle) and _attempt_ended(handle):
            return False
        try:
            states = await self.status([str(handle["job_id"])])
        except LauncherError:
            return None
        info = states.get(str(handle["job_id"]))
        if info is None:
            return False
        return phase_of(info[0]) not in _FINAL_PHASES

    async def cancel(self, handle: dict[str, Any], grace: float) -> None:
        if not _packed(handle):
            await self.commands.scancel([str(handle["job_id"])])
            return
        # One task of a pack: its worker stops it when it sees the request (SIGTERM to the
        # task's processes), or skips it. Only once every unfinished task of the element
        # was asked to stop is the element itself cancelled (a queued one never starts).
        _request_cancel(handle)
        job_id = str(handle["job_id"])
        asked = self._cancel_asked.setdefault(job_id, set())
        asked.add(int(handle["slot"]))
        _, ends = read_report(str(handle["report"]))
        if len(asked | set(ends)) >= int(handle.get("pack") or 1):
            await self.commands.scancel([job_id])

    async def close(self) -> None:
        if self._poller is not None and not self._poller.done():
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller

    def statistics(self) -> dict[str, int]:
        """How many times each Slurm command ran."""
        return self.commands.statistics()

    # --- about handles, from any process ------------------------------------------------

    @classmethod
    def started(cls, handle: Mapping[str, Any]) -> bool:
        return bool(handle.get("job_id"))

    @classmethod
    def describe_handle(cls, handle: Mapping[str, Any]) -> str:
        if not handle.get("job_id"):
            return "slurm (being submitted)"
        conf = f", SLURM_CONF={handle['slurm_conf']}" if handle.get("slurm_conf") else ""
        if _packed(handle):
            place = f"task {int(handle['slot']) + 1} of {handle.get('pack', '?')}"
            return f"slurm, job {handle['job_id']} (packed, {place}){conf}"
        return f"slurm, job {handle['job_id']}{conf}"

    @classmethod
    def time_left(cls, handle: Mapping[str, Any]) -> float | None:
        """What ``squeue`` says is left of the job's time limit (``None``: no limit known)."""
        if not handle.get("job_id"):
            return None
        if _packed(handle):
            starts, _ = read_report(str(handle["report"]))
            start = starts.get(int(handle["slot"]))
            if start is None or not start.get("limit"):
                return None
            return max(0.0, float(start["time"]) + float(start["limit"]) - time.time())
        commands = SlurmCommands(env=_conf_env(handle), timeout=10.0)
        try:
            return asyncio.run(commands.time_left(str(handle["job_id"])))
        except LauncherError:
            return None

    @classmethod
    def follower(cls, handle: Mapping[str, Any]) -> SlurmLauncher:
        return cls(env=_conf_env(handle) or None)

    @classmethod
    def settle(cls, jobs: Sequence[JobInfo]) -> list[str]:
        """Ask Slurm (once per cluster) how jobs left by a detached run ended; record it."""
        from partita.launchers.slurm._reconcile import reconcile

        return reconcile(list(jobs))


def _packed(handle: Mapping[str, Any]) -> bool:
    """Whether a handle names one task of a packed element."""
    return bool(handle.get("report")) and handle.get("slot") is not None


def _final_of_attempt(handle: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The final marker of the handle's attempt (state name, record), if one is written."""
    try:
        final = final_marker(JobPaths(Path(str(handle["jobdir"]))))
    except (OSError, ValueError, KeyError):
        return None
    if final is None or final[1].get("attempt") != handle.get("attempt"):
        return None
    return final[0].value, final[1]


def _attempt_ended(handle: Mapping[str, Any]) -> bool:
    return _final_of_attempt(handle) is not None


def _request_cancel(handle: Mapping[str, Any]) -> None:
    paths = JobPaths(Path(str(handle["jobdir"])))
    try:
        if not paths.cancel_request.exists():
            paths.cancel_request.write_text(f"requested by the launcher at {time.time()}\n")
    except OSError:
        pass


def _packed_exit(
    handle: Mapping[str, Any],
    starts: Mapping[int, dict[str, Any]],
    ends: Mapping[int, dict[str, Any]],
    element_end: str | None,
) -> Exit | None:
    """How one packed task ended, or ``None`` while it has not.

    ``element_end`` is the Slurm state of its element once that ended (``None`` while it
    runs or waits).
    """
    slot = int(handle["slot"])
    end = ends.get(slot)
    if end is not None:
        code = end.get("code")
        return Exit(
            code if isinstance(code, int) else None,
            end.get("reason") or None,
            str(end.get("detail") or ""),
        )
    final = _final_of_attempt(handle)
    if final is not None and slot not in starts:
        # Recorded before its turn by another process (``partita jobs kill``).
        return Exit(None, None, "recorded before its turn in the pack")
    if element_end is None:
        return None
    if final is not None and final[0] == "done":
        return Exit(0, None, "")
    when = "finished" if slot in starts else "had its turn"
    detail = f"its pack worker (Slurm job {handle['job_id']}) ended {element_end} before it {when}"
    if JobPaths(Path(str(handle["jobdir"]))).cancel_request.exists():
        return Exit(None, "cancelled", detail)
    if slot not in starts and starts:
        # The worker ran (it started other tasks) and died before this one's turn: the task
        # never ran, so it is launched again rather than failed (see SlurmLauncher.requeues).
        return Exit(None, lost_reason(element_end), detail, started=False)
    return Exit(None, lost_reason(element_end), detail)


def _conf_env(handle: Mapping[str, Any]) -> dict[str, str]:
    conf = handle.get("slurm_conf")
    return {"SLURM_CONF": str(conf)} if conf else {}
