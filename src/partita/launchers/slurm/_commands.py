"""Running sbatch, squeue, sacct and scancel.

Every program goes through :meth:`SlurmCommands.run`, the one place that starts a
process: tests replace it to answer like Slurm would, and :meth:`statistics` counts
the commands issued (the benchmark reports them).

Notes from a real Slurm 22.05 cluster:

- ``squeue -j`` with only unknown (or expired, after ``MinJobAge``) ids exits 1 with
  "Invalid job id specified"; that means "none of these is in the queue".
- sacct learns of a job a moment after squeue: a job just submitted, or a pending
  array, can be missing from sacct for a few seconds. Missing means unknown, not gone.
  A job can also show a final state in sacct before its exit code is recorded (``End``
  is then ``Unknown``): see ``_status``.
- ``scancel`` of a finished or unknown job exits 0.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from partita.errors import LauncherError
from partita.launchers.slurm._status import (
    AcctEntry,
    JobStatus,
    QueueEntry,
    combine,
    parse_sacct,
    parse_squeue,
)

__all__ = ["SlurmCommands"]

SQUEUE_FORMAT = "%i|%T|%r"
SACCT_FIELDS = "JobID,State,ExitCode,Elapsed,End"

_FINAL_PHASES = {"done", "failed"}

# Ids per command line: far below any argv limit, and few calls even for big arrays.
_CHUNK = 500

_UNREACHABLE = (
    "unable to contact slurm controller",
    "could not establish a configuration source",
    "connection refused",
    "socket timed out",
    "zero bytes were transmitted",
    "munge",
)


class SlurmCommands:
    """The Slurm programs, run asynchronously, with errors that say what to check.

    ``bindir`` is where the programs are (default: found on ``PATH``); ``env`` is added
    to the environment of every command (e.g. ``{"SLURM_CONF": ...}``); ``timeout`` is
    the most seconds one command may take.
    """

    def __init__(
        self,
        *,
        bindir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.bindir = Path(bindir) if bindir is not None else None
        self.env = dict(env or {})
        self.timeout = timeout
        self._counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ the one runner

    async def run(self, argv: Sequence[str], input: str | None = None) -> tuple[int, str, str]:
        """Run ``argv`` (no shell), feed it ``input``; return (returncode, stdout, stderr)."""
        env = {**os.environ, **self.env} if self.env else None
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except FileNotFoundError:
            raise LauncherError(
                f"cannot run {argv[0]!r}: no such program. Is Slurm's client installed and "
                "on PATH (or given as bindir=) on this machine?"
            )
        except OSError as error:
            raise LauncherError(f"cannot run {shlex.join(argv)}: {error}")
        data = input.encode() if input is not None else None
        try:
            out, err = await asyncio.wait_for(process.communicate(data), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise LauncherError(
                f"{shlex.join(argv)} did not answer within {self.timeout:g} s. {self._advice()}"
            )
        assert process.returncode is not None
        return (
            process.returncode,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
        )

    def statistics(self) -> dict[str, int]:
        """How many times each Slurm command was issued, e.g. ``{"sbatch": 3, "sacct": 5}``."""
        return dict(self._counts)

    # ------------------------------------------------------------------ commands

    async def sbatch(self, script_text: str, argv: Sequence[str]) -> str:
        """Submit ``script_text`` (on sbatch's stdin) with ``argv``; return the job id.

        ``argv`` is :func:`~partita.launchers.slurm._script.sbatch_argv`'s list
        (starting with ``sbatch`` and containing ``--parsable``).
        """
        args = list(argv[1:]) if argv and argv[0] == "sbatch" else list(argv)
        if "--parsable" not in args:
            args.insert(0, "--parsable")
        code, out, err = await self._call("sbatch", args, input=script_text)
        if code != 0:
            raise self._failure("sbatch", args, code, err, "submit the job")
        # --parsable prints "ID" or "ID;CLUSTER"; older versions may add lines before it.
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        job_id = lines[-1].split(";", 1)[0] if lines else ""
        if not job_id.isdigit():
            raise LauncherError(
                f"sbatch accepted the job but printed no job id: stdout {out.strip()!r}, "
                f"stderr {err.strip()!r} (command: {self._show('sbatch', args)})"
            )
        return job_id

    async def squeue(self, job_ids: Iterable[str | int]) -> dict[str, QueueEntry]:
        """The queue's view of these jobs (also finished ones, for ``MinJobAge``).

        Array tasks are keyed ``"123_4"``; jobs squeue no longer knows are absent.
        """
        found: dict[str, QueueEntry] = {}
        for chunk in _chunks(job_ids):
            args = ["-h", "-t", "all", "-o", SQUEUE_FORMAT, "-j", ",".join(chunk)]
            code, out, err = await self._call("squeue", args)
            if code != 0:
                if "invalid job id" in err.lower():
                    continue  # none of them is known any more
                raise self._failure("squeue", args, code, err, "read the queue")
            found.update(parse_squeue(out))
        return found

    async def sacct(self, job_ids: Iterable[str | int]) -> dict[str, AcctEntry]:
        """The accounting records of these jobs: final state, exit code, elapsed time.

        A job sacct does not know yet (just submitted) is absent: ask again later.
        """
        found: dict[str, AcctEntry] = {}
        for chunk in _chunks(job_ids):
            args = ["-X", "-n", "-P", "-o", SACCT_FIELDS, "-j", ",".join(chunk)]
            code, out, err = await self._call("sacct", args)
            if code != 0:
                if "accounting storage is disabled" in err.lower():
                    raise LauncherError(
                        f"{self._show('sacct', args)} failed: this cluster keeps no accounting "
                        "(AccountingStorageType is none), so sacct cannot tell how jobs ended. "
                        "partita needs slurmdbd accounting on the cluster."
                    )
                raise self._failure("sacct", args, code, err, "read the accounting records")
            found.update(parse_sacct(out))
        return found

    async def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """What one squeue and, for jobs that left it or ended, one sacct tell of each job.

        Jobs neither knows (yet) are absent.
        """
        queue = await self.squeue(job_ids)
        # Jobs that left the queue, or ended in it: sacct has their exit code.
        missing = [i for i in job_ids if i not in queue or queue[i].phase in _FINAL_PHASES]
        acct = await self.sacct(missing) if missing else {}
        found: dict[str, JobStatus] = {}
        for job_id in job_ids:
            status = combine(queue.get(job_id), acct.get(job_id))
            if status is not None:
                found[job_id] = status
        return found

    async def time_left(self, job_id: str) -> float | None:
        """Seconds left of the time limit of a queued or running job (``None``: no limit)."""
        args = ["-h", "-j", job_id, "-o", "%L"]
        code, out, err = await self._call("squeue", args)
        if code != 0:
            if "invalid job id" in err.lower():
                return None
            raise self._failure("squeue", args, code, err, "read the time left")
        return parse_time_left(out.strip())

    async def scancel(self, job_ids: Iterable[str | int]) -> None:
        """Cancel these jobs; jobs that already ended are fine."""
        for chunk in _chunks(job_ids):
            code, _out, err = await self._call("scancel", chunk)
            if code != 0 and not _only_finished(err):
                raise self._failure("scancel", chunk, code, err, "cancel the jobs")

    # ------------------------------------------------------------------ helpers

    async def _call(
        self, name: str, args: Sequence[str], input: str | None = None
    ) -> tuple[int, str, str]:
        self._counts[name] += 1
        return await self.run([self._program(name), *args], input=input)

    def _program(self, name: str) -> str:
        return str(self.bindir / name) if self.bindir is not None else name

    def _show(self, name: str, args: Sequence[str]) -> str:
        return shlex.join([self._program(name), *args])

    def _advice(self, stderr: str = "") -> str:
        conf = self.env.get("SLURM_CONF", os.environ.get("SLURM_CONF"))
        where = f"SLURM_CONF={conf}" if conf else "SLURM_CONF is not set"
        if any(marker in stderr.lower() for marker in _UNREACHABLE) or not stderr:
            return (
                f"Check that this machine reaches the cluster: {where}; is slurmctld up "
                "(`scontrol ping`)? Is munged running?"
            )
        return f"Check the options and the cluster ({where}; `scontrol ping`, `sinfo`)."

    def _failure(
        self, name: str, args: Sequence[str], code: int, stderr: str, doing: str
    ) -> LauncherError:
        text = stderr.strip() or "(nothing on stderr)"
        return LauncherError(
            f"{name} could not {doing} (exit code {code}).\n"
            f"  command: {self._show(name, args)}\n"
            f"  stderr: {text}\n"
            f"  {self._advice(stderr)}"
        )


def parse_time_left(text: str) -> float | None:
    """Seconds from squeue's time left (``%L``): ``D-HH:MM:SS``, ``HH:MM:SS``, ``MM:SS``."""
    if not text or text in ("UNLIMITED", "NOT_SET", "INVALID"):
        return None
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        try:
            days = int(head)
        except ValueError:
            return None
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        return None
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, seconds = parts[-3:]
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def _chunks(job_ids: Iterable[str | int]) -> list[list[str]]:
    ids = list(dict.fromkeys(str(job_id) for job_id in job_ids))
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


def _only_finished(stderr: str) -> bool:
    """True if scancel complained only about jobs that are already over or unknown."""
    lines = [line for line in stderr.lower().splitlines() if line.strip()]
    harmless = ("already completing or completed", "invalid job id")
    return bool(lines) and all(any(h in line for h in harmless) for line in lines)
