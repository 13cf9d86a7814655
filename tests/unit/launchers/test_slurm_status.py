"""Reading squeue/sacct output, the state table, and SlurmCommands with a replaced runner."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from partita.errors import LauncherError
from partita.launchers.base import Exit
from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._launcher import SlurmLauncher
from partita.launchers.slurm._status import (
    AcctEntry,
    EndWatch,
    QueueEntry,
    SlurmState,
    combine,
    expand_job_id,
    normalise_state,
    parse_sacct,
    parse_squeue,
    phase_of,
    reason_for,
)
from partita.workspace import JobPaths, JobState
from partita.workspace._state import write_final

# Seen on the test cluster (Slurm 22.05.8): squeue -h -t all -o "%i|%T|%r"
DOWN_REASON = (
    "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"
)
SQUEUE_OUTPUT = f"""\
5|CANCELLED|DependencyNeverSatisfied
1|COMPLETED|None
2_4|COMPLETED|None
4|FAILED|NonZeroExitCode
2_[8-9%2]|PENDING|JobArrayTaskLimit
3|PENDING|Dependency
2_6|RUNNING|None
2_7|RUNNING|None
20|PENDING|{DOWN_REASON}
36|CANCELLED|ReqNodeNotAvail, UnavailableNodes:vm
19|COMPLETING|None
"""

# Seen on the test cluster: sacct -X -n -P -o JobID,State,ExitCode,Elapsed,End. Note the
# stale pending range 2_[6-9%2] next to 2_6 and 2_7, which already run.
SACCT_OUTPUT = """\
3|PENDING|0:0|00:00:00|Unknown
4|FAILED|1:0|00:00:00|2026-12-02T06:06:20
5|CANCELLED|0:0|00:00:00|2026-12-02T06:06:21
2_0|COMPLETED|0:0|00:00:02|2026-12-02T06:06:22
2_6|RUNNING|0:0|00:00:01|Unknown
2_7|RUNNING|0:0|00:00:01|Unknown
2_[6-9%2]|PENDING|0:0|00:00:00|Unknown
18|FAILED|3:0|00:00:00|2026-12-02T06:06:26
19|CANCELLED by 0|0:15|00:01:06|2026-12-02T06:07:30
16|FAILED|0:53|00:00:00|2026-12-02T06:06:23
"""


def test_parse_squeue_states_reasons_and_ranges() -> None:
    """squeue lines become entries; pending ranges expand; running tasks keep their state."""
    entries = parse_squeue(SQUEUE_OUTPUT)
    assert entries["5"].state == "CANCELLED"
    assert entries["5"].reason == "DependencyNeverSatisfied"
    assert entries["1"].reason is None
    assert entries["3"].phase == "queued"
    assert entries["19"].phase == "running"
    assert [entries[f"2_{i}"].state for i in (6, 7, 8, 9)] == [
        "RUNNING",
        "RUNNING",
        "PENDING",
        "PENDING",
    ]
    assert entries["2_8"].reason == "JobArrayTaskLimit"
    assert "2_[8-9%2]" not in entries
    assert entries["20"].reason == DOWN_REASON
    assert entries["36"].reason == "ReqNodeNotAvail, UnavailableNodes:vm"


def test_parse_sacct_entries() -> None:
    """sacct lines give state, exit code, signal, elapsed time and partita's reason."""
    entries = parse_sacct(SACCT_OUTPUT)
    failed = entries["18"]
    assert (failed.state, failed.exit_code, failed.signal, failed.reason) == (
        "FAILED",
        3,
        0,
        "error",
    )
    cancelled = entries["19"]
    assert (cancelled.state, cancelled.raw_state, cancelled.signal) == (
        "CANCELLED",
        "CANCELLED by 0",
        15,
    )
    assert cancelled.reason == "cancelled"
    assert cancelled.elapsed == timedelta(minutes=1, seconds=6)
    assert entries["2_0"].phase == "done" and entries["2_0"].reason is None
    # The specific line wins over the stale pending range that still names the task.
    assert entries["2_6"].state == "RUNNING"
    assert entries["2_8"].state == "PENDING" and entries["2_9"].phase == "queued"
    assert entries["3"].reason is None
    assert entries["16"].signal == 53
    assert failed.end == datetime(2026, 12, 2, 6, 6, 26) and failed.complete
    assert entries["2_6"].end is None and not entries["2_6"].complete
    assert entries["3"].end is None and not entries["3"].complete


@pytest.mark.parametrize(
    ("line", "state", "exit_code", "signal", "reason"),
    [
        ("7|COMPLETED|0:0|00:00:01|2026-12-02T06:06:26", "COMPLETED", 0, 0, None),
        ("7|FAILED|3:0|00:00:01|2026-12-02T06:06:26", "FAILED", 3, 0, "error"),
        ("7|CANCELLED|0:15|00:00:30|2026-12-02T06:06:26", "CANCELLED", 0, 15, "cancelled"),
        ("7|CANCELLED by 0|0:0|00:00:00|2026-12-02T06:06:26", "CANCELLED", 0, 0, "cancelled"),
        ("7|TIMEOUT|0:15|00:01:04|2026-12-02T06:06:26", "TIMEOUT", 0, 15, "timeout"),
        ("7|FAILED|0:9|00:00:03|2026-12-02T06:06:26", "FAILED", 0, 9, "error"),
        ("7|OUT_OF_MEMORY|0:125|00:00:03|2026-12-02T06:06:26", "OUT_OF_MEMORY", 0, 125, "memory"),
        ("7|NODE_FAIL|0:0|1-02:03:04|2026-12-02T06:06:26", "NODE_FAIL", 0, 0, "node_fail"),
        ("7|PREEMPTED|0:0|00:10:00|2026-12-02T06:06:26", "PREEMPTED", 0, 0, "preempted"),
        ("7|BOOT_FAIL|0:0|00:00:00|2026-12-02T06:06:26", "BOOT_FAIL", 0, 0, "error"),
        ("7|DEADLINE|0:0|00:00:00|2026-12-02T06:06:26", "DEADLINE", 0, 0, "error"),
        ("7|REQUEUED|0:0|00:00:00|Unknown", "REQUEUED", 0, 0, None),
    ],
)
def test_sacct_lines_as_the_readme_lists_them(
    line: str, state: str, exit_code: int, signal: int, reason: str | None
) -> None:
    """Each final state of the reference table maps to the expected reason."""
    entry = parse_sacct(line)["7"]
    assert (entry.state, entry.exit_code, entry.signal, entry.reason) == (
        state,
        exit_code,
        signal,
        reason,
    )


def test_elapsed_forms() -> None:
    """Elapsed times with days, without hours, or unreadable are handled."""
    text = (
        "1|COMPLETED|0:0|2-00:00:05|2026-12-02T06:00:05\n"
        "2|COMPLETED|0:0|05:06|2026-12-02T06:00:06\n"
        "3|PENDING|0:0|INVALID|Unknown\n"
    )
    entries = parse_sacct(text)
    assert entries["1"].elapsed == timedelta(days=2, seconds=5)
    assert entries["2"].elapsed == timedelta(minutes=5, seconds=6)
    assert entries["3"].elapsed is None


def test_headers_and_blank_lines_are_skipped() -> None:
    """Output with a header (no -h/-n) or blank lines still parses."""
    assert list(parse_squeue("JOBID|STATE|REASON\n\n9|RUNNING|None\n")) == ["9"]
    header = "JobID|State|ExitCode|Elapsed|End\n"
    assert list(parse_sacct(header + "9|RUNNING|0:0|00:00:01|Unknown\n\n")) == ["9"]
    assert parse_squeue("") == {} and parse_sacct("") == {}


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_squeue, "9 RUNNING None"),
        (parse_sacct, "9|RUNNING|0:0"),
        (parse_sacct, "9|RUNNING|0:0|00:00:01"),
        (parse_sacct, "9|RUNNING|zero|00:00:01|Unknown"),
        (parse_squeue, "9_[a-b]|PENDING|None"),
    ],
)
def test_unreadable_lines_raise(parse: object, text: str) -> None:
    """A line in another format raises a LauncherError that quotes it."""
    with pytest.raises(LauncherError, match="cannot read"):
        parse(text)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("job_id", "expected"),
    [
        ("123", ["123"]),
        ("123_4", ["123_4"]),
        ("123_[5-7]", ["123_5", "123_6", "123_7"]),
        ("123_[5-9%2]", ["123_5", "123_6", "123_7", "123_8", "123_9"]),
        ("123_[1,3,5-6]", ["123_1", "123_3", "123_5", "123_6"]),
        ("123_[0-8:4]", ["123_0", "123_4", "123_8"]),
        ("123+1", ["123+1"]),
    ],
)
def test_expand_job_id(job_id: str, expected: list[str]) -> None:
    """Array ranges expand to one id per task; other ids stay as they are."""
    assert expand_job_id(job_id) == expected


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("PENDING", "queued"),
        ("CONFIGURING", "queued"),
        ("REQUEUED", "queued"),
        ("RESIZING", "queued"),
        ("SUSPENDED", "queued"),
        ("RUNNING", "running"),
        ("COMPLETING", "running"),
        ("COMPLETED", "done"),
        ("TIMEOUT", "failed"),
        ("CANCELLED by 1000", "failed"),
        ("running", "running"),
        ("FAILED+", "failed"),
        ("SOMETHING_NEW", "unknown"),
    ],
)
def test_phase_of(state: str, phase: str) -> None:
    """Slurm states map to partita's phases, whatever their decoration."""
    assert phase_of(state) == phase


def test_state_table_is_complete() -> None:
    """Every failed state has a reason and no other state has one."""
    for state in SlurmState:
        assert (state.reason is not None) == (state.phase == "failed"), state
    assert SlurmState.parse("CANCELLED by 0") is SlurmState.CANCELLED
    assert SlurmState.parse("") is None
    assert normalise_state("  CANCELLED by 0 ") == "CANCELLED"


@pytest.mark.parametrize(
    ("state", "exit_code", "reason"),
    [
        ("TIMEOUT", "0:15", "timeout"),
        ("OUT_OF_MEMORY", "0:125", "memory"),
        ("NODE_FAIL", "0:0", "node_fail"),
        ("PREEMPTED", "0:0", "preempted"),
        ("CANCELLED by 0", "0:15", "cancelled"),
        ("FAILED", "3:0", "error"),
        ("FAILED", "0:9", "error"),  # also what OverMemoryKill gives: sacct cannot tell
        ("BOOT_FAIL", "0:0", "error"),
        ("DEADLINE", "0:0", "error"),
        ("COMPLETED", "0:0", None),
        ("COMPLETED", "1:0", "error"),
        ("RUNNING", "0:0", None),
        ("PENDING", "0:0", None),
        ("SOMETHING_NEW", "0:0", None),
        ("SOMETHING_NEW", "2:0", "error"),
    ],
)
def test_reason_for(state: str, exit_code: str, reason: str | None) -> None:
    """reason_for gives partita's failure reason, None while a job has not failed."""
    assert reason_for(state, exit_code) == reason


# ---------------------------------------------------------------------- SlurmCommands


class FakeSlurm(SlurmCommands):
    """SlurmCommands whose run() answers from a table instead of starting processes."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]) -> None:
        super().__init__(env={"SLURM_CONF": "/etc/test/slurm.conf"})
        self.answers = answers
        self.calls: list[tuple[list[str], str | None]] = []

    async def run(self, argv: Sequence[str], input: str | None = None) -> tuple[int, str, str]:
        self.calls.append((list(argv), input))
        return self.answers[argv[0]]


def test_sbatch_passes_script_on_stdin_and_reads_the_id() -> None:
    """sbatch gets the script on stdin and --parsable; 'ID;cluster' gives the id."""
    slurm = FakeSlurm({"sbatch": (0, "4242;partita\n", "")})
    job_id = asyncio.run(slurm.sbatch("#!/bin/sh\ntrue\n", ["sbatch", "--job-name=x"]))
    assert job_id == "4242"
    assert slurm.calls == [(["sbatch", "--parsable", "--job-name=x"], "#!/bin/sh\ntrue\n")]
    assert slurm.statistics() == {"sbatch": 1}


def test_sbatch_failure_says_what_to_check() -> None:
    """A refused submission raises with the command, stderr and what to check."""
    stderr = "sbatch: error: Batch job submission failed: Unable to contact slurm controller"
    slurm = FakeSlurm({"sbatch": (1, "", stderr)})
    with pytest.raises(LauncherError) as caught:
        asyncio.run(slurm.sbatch("#!/bin/sh\n", ["sbatch", "--parsable", "--mem=1T"]))
    message = str(caught.value)
    assert "sbatch --parsable --mem=1T" in message
    assert "Unable to contact slurm controller" in message
    assert "SLURM_CONF=/etc/test/slurm.conf" in message
    assert "scontrol ping" in message


def test_sbatch_without_an_id_is_an_error() -> None:
    """An sbatch that succeeds but prints no id raises."""
    slurm = FakeSlurm({"sbatch": (0, "", "")})
    with pytest.raises(LauncherError, match="printed no job id"):
        asyncio.run(slurm.sbatch("#!/bin/sh\n", ["sbatch"]))


def test_squeue_and_sacct_arguments_and_parsing() -> None:
    """squeue/sacct ask for the given ids in the expected format and parse the answer."""
    slurm = FakeSlurm(
        {"squeue": (0, SQUEUE_OUTPUT, ""), "sacct": (0, SACCT_OUTPUT, "")},
    )
    queue = asyncio.run(slurm.squeue(["3", 5, "3"]))
    acct = asyncio.run(slurm.sacct([18, 19]))
    assert slurm.calls[0][0] == ["squeue", "-h", "-t", "all", "-o", "%i|%T|%r", "-j", "3,5"]
    assert slurm.calls[1][0] == [
        "sacct",
        "-X",
        "-n",
        "-P",
        "-o",
        "JobID,State,ExitCode,Elapsed,End",
        "-j",
        "18,19",
    ]
    assert queue["3"].reason == "Dependency"
    assert acct["19"].reason == "cancelled"
    assert slurm.statistics() == {"squeue": 1, "sacct": 1}


def test_no_ids_means_no_command() -> None:
    """Asking about no job issues no command."""
    slurm = FakeSlurm({})
    assert asyncio.run(slurm.squeue([])) == {}
    assert asyncio.run(slurm.sacct([])) == {}
    asyncio.run(slurm.scancel([]))
    assert slurm.statistics() == {}


def test_many_ids_are_chunked() -> None:
    """Long id lists are split over several commands, each counted."""
    slurm = FakeSlurm({"sacct": (0, "", "")})
    asyncio.run(slurm.sacct(range(1, 1201)))
    assert slurm.statistics() == {"sacct": 3}


def test_squeue_of_forgotten_jobs_is_empty() -> None:
    """squeue's "Invalid job id" for jobs gone from the queue means no entries."""
    slurm = FakeSlurm({"squeue": (1, "", "slurm_load_jobs error: Invalid job id specified\n")})
    assert asyncio.run(slurm.squeue(["99999"])) == {}


def test_squeue_other_failures_raise() -> None:
    """Other squeue failures raise with the command and stderr."""
    slurm = FakeSlurm({"squeue": (1, "", "squeue: error: Could not establish a configuration")})
    with pytest.raises(LauncherError, match="squeue could not read the queue"):
        asyncio.run(slurm.squeue(["1"]))


def test_sacct_without_accounting_explains() -> None:
    """A cluster without accounting gives an error that says so."""
    slurm = FakeSlurm({"sacct": (1, "", "Slurm accounting storage is disabled\n")})
    with pytest.raises(LauncherError, match="keeps no accounting"):
        asyncio.run(slurm.sacct(["1"]))


def test_scancel_ignores_finished_jobs_only() -> None:
    """scancel of finished jobs is fine; other scancel errors raise."""
    done = "scancel: error: Kill job error on job id 7: Job/step already completing or completed\n"
    asyncio.run(FakeSlurm({"scancel": (1, "", done)}).scancel([7]))
    refused = "scancel: error: Kill job error on job id 7: Access/permission denied\n"
    with pytest.raises(LauncherError, match="permission denied"):
        asyncio.run(FakeSlurm({"scancel": (1, "", refused)}).scancel([7]))


def test_run_reports_missing_programs() -> None:
    """A missing Slurm program raises a LauncherError that names it."""
    slurm = SlurmCommands(bindir="/nonexistent/slurm/bin")
    with pytest.raises(LauncherError, match="no such program"):
        asyncio.run(slurm.squeue(["1"]))
    assert slurm.statistics() == {"squeue": 1}


def test_run_returns_code_and_output() -> None:
    """The real run() feeds stdin and returns exit code, stdout and stderr."""
    slurm = SlurmCommands(env={"EXTRA": "x"})
    code, out, err = asyncio.run(
        slurm.run(["sh", "-c", 'cat; echo "$EXTRA" >&2; exit 3'], input="hello")
    )
    assert (code, out, err) == (3, "hello", "x\n")


def test_run_times_out() -> None:
    """A command slower than the timeout is killed and reported."""
    slurm = SlurmCommands(timeout=0.2)
    with pytest.raises(LauncherError, match=r"did not answer within 0\.2 s"):
        asyncio.run(slurm.run(["sleep", "5"]))


# ---------------------------------------------------------------------- when an exit code is known


class ScriptedSlurm(SlurmCommands):
    """SlurmCommands whose run() gives each program's answers in turn, then the last again."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        super().__init__()
        self.answers = {name: list(outputs) for name, outputs in answers.items()}
        self.asked: list[str] = []

    async def run(self, argv: Sequence[str], input: str | None = None) -> tuple[int, str, str]:
        name = Path(argv[0]).name
        self.asked.append(name)
        outputs = self.answers[name]
        return 0, outputs.pop(0) if len(outputs) > 1 else outputs[0], ""


def wait_for_exit(
    answers: dict[str, list[str]], handle: dict[str, Any] | None = None, patience: float = 120.0
) -> tuple[Exit, ScriptedSlurm]:
    class Launcher(SlurmLauncher):
        accounting_patience = patience

    slurm = ScriptedSlurm(answers)
    launcher = Launcher(commands=slurm, poll_interval=0.001, max_poll_interval=0.001)

    async def follow() -> Exit:
        try:
            return await asyncio.wait_for(launcher.wait(handle or {"job_id": "2"}), 10)
        finally:
            await launcher.close()

    return asyncio.run(follow()), slurm


# An exit 3 job on a just started cluster (Slurm 22.05.8). Seen on the test cluster, first
# job after a reset: squeue COMPLETING while sacct already said FAILED|0:0|Unknown (slurmdbd's
# start record, written after the job ended), then FAILED|3:0 with an end time; on the next
# job, squeue FAILED while sacct still said PENDING. slurmctld knows at once that the job
# FAILED; slurmdbd may know nothing yet, or only that start record.
SQUEUE_FAILED = "2|FAILED|NonZeroExitCode\n"
SACCT_NOTHING = ""
SACCT_START_RECORD = "2|FAILED|0:0|00:00:00|Unknown\n"
SACCT_COMPLETION = "2|FAILED|3:0|00:00:00|2026-12-02T06:06:26\n"


def test_exit_code_is_not_read_before_sacct_has_the_completion_record() -> None:
    """A job that exited 3 is reported with 3, not the 0:0 of missing or partial accounting."""
    exit_, slurm = wait_for_exit(
        {
            "squeue": ["2|PENDING|None\n", "2|RUNNING|None\n", SQUEUE_FAILED],
            "sacct": [SACCT_NOTHING, SACCT_START_RECORD, SACCT_START_RECORD, SACCT_COMPLETION],
        }
    )
    assert (exit_.code, exit_.reason) == (3, None)
    assert exit_.detail == "Slurm state FAILED"
    assert slurm.asked.count("sacct") == 4  # asked until the completion record came


def test_start_record_alone_gives_no_exit_code() -> None:
    """A sacct record with a final state but no end time is not read as exit code 0."""
    exit_, _ = wait_for_exit(
        {"squeue": [""], "sacct": [SACCT_START_RECORD, SACCT_START_RECORD, SACCT_COMPLETION]}
    )
    assert exit_.code == 3


def test_accounting_that_never_completes_gives_an_unknown_exit_code() -> None:
    """After the patience, a failed job is reported with an unknown exit code, not 0."""
    exit_, slurm = wait_for_exit(
        {"squeue": [SQUEUE_FAILED], "sacct": [SACCT_NOTHING, SACCT_START_RECORD]}, patience=0.05
    )
    assert (exit_.code, exit_.reason) == (None, None)
    assert "no exit code" in exit_.detail and "within 0.05 s" in exit_.detail
    assert slurm.asked.count("sacct") >= 2


def test_runner_marker_gives_the_exit_code_at_once(tmp_path: Path) -> None:
    """The exit code the runner wrote in the job folder wins, without waiting for sacct."""
    paths = JobPaths(tmp_path / "job")
    paths.root.mkdir()
    write_final(paths, JobState.FAILED, attempt=2, reason="error", exit_code=1)
    handle = {"job_id": "2", "jobdir": str(paths.root), "attempt": 2}
    exit_, slurm = wait_for_exit({"squeue": [SQUEUE_FAILED], "sacct": [SACCT_NOTHING]}, handle)
    assert exit_.code == 1
    assert slurm.asked == ["squeue", "sacct"]
    # A marker of another attempt says nothing about this one.
    handle["attempt"] = 3
    exit_, _ = wait_for_exit({"squeue": [SQUEUE_FAILED], "sacct": [SACCT_COMPLETION]}, handle)
    assert exit_.code == 3


def test_timeout_keeps_slurm_reason_with_the_runner_code(tmp_path: Path) -> None:
    """With the runner's code, the failure reason still comes from Slurm's state."""
    paths = JobPaths(tmp_path / "job")
    paths.root.mkdir()
    write_final(paths, JobState.FAILED, attempt=1, reason="error", exit_code=143)
    handle = {"job_id": "2", "jobdir": str(paths.root), "attempt": 1}
    exit_, _ = wait_for_exit({"squeue": ["2|TIMEOUT|TimeLimit\n"], "sacct": [""]}, handle)
    assert (exit_.code, exit_.reason) == (143, "timeout")


def test_status_says_unknown_until_accounting_completes() -> None:
    """SlurmLauncher.status() gives "unknown", never a made-up "0:0", for a failed job."""
    slurm = ScriptedSlurm(
        {"squeue": [SQUEUE_FAILED], "sacct": [SACCT_NOTHING, SACCT_START_RECORD, SACCT_COMPLETION]}
    )
    launcher = SlurmLauncher(commands=slurm)
    seen = [asyncio.run(launcher.status(["2"])) for _ in range(3)]
    assert seen == [{"2": ("FAILED", "unknown")}] * 2 + [{"2": ("FAILED", "3:0")}]


def q(line: str) -> QueueEntry:
    return next(iter(parse_squeue(line).values()))


def a(line: str) -> AcctEntry:
    return next(iter(parse_sacct(line).values()))


@pytest.mark.parametrize(
    ("queue", "acct", "expected"),
    [
        (None, None, None),
        ("2|PENDING|Priority", None, ("PENDING", None, False)),
        ("2|RUNNING|None", "2|RUNNING|0:0|00:00:01|Unknown", ("RUNNING", None, False)),
        # requeued: squeue's pending wins over the record of the attempt before
        ("2|PENDING|BeginTime", SACCT_COMPLETION, ("PENDING", None, False)),
        (SQUEUE_FAILED, None, ("FAILED", None, False)),
        (SQUEUE_FAILED, SACCT_START_RECORD, ("FAILED", None, False)),
        (SQUEUE_FAILED, "2|RUNNING|0:0|00:00:01|Unknown", ("FAILED", None, False)),
        (SQUEUE_FAILED, "2|PENDING|0:0|00:00:00|Unknown", ("FAILED", None, False)),
        ("2|COMPLETING|None", SACCT_START_RECORD, ("COMPLETING", None, False)),
        (SQUEUE_FAILED, SACCT_COMPLETION, ("FAILED", "3:0", True)),
        (None, SACCT_START_RECORD, ("FAILED", None, False)),
        (None, SACCT_COMPLETION, ("FAILED", "3:0", True)),
        # COMPLETED means exit 0 in squeue already
        ("2|COMPLETED|None", None, ("COMPLETED", "0:0", True)),
        ("2|TIMEOUT|TimeLimit", None, ("TIMEOUT", None, False)),
        (None, "2|CANCELLED by 0|0:15|00:00:09|2026-12-02T06:06:26", ("CANCELLED", "0:15", True)),
        # a completion record that says FAILED with 0:0 contradicts itself
        (None, "2|FAILED|0:0|00:00:00|2026-12-02T06:06:26", ("FAILED", None, True)),
    ],
)
def test_combine(
    queue: str | None, acct: str | None, expected: tuple[str, str | None, bool] | None
) -> None:
    """squeue and sacct together give a state, and an exit code only when it is known."""
    status = combine(q(queue) if queue else None, a(acct) if acct else None)
    if expected is None:
        assert status is None
        return
    assert status is not None
    state, code, settled = expected
    assert (status.state, status.settled) == (state, settled)
    assert status.exit_text == (code or "unknown")


def test_end_watch_sequence_with_a_clock() -> None:
    """EndWatch waits for settled accounting, at most its patience after the job ended."""
    now = [100.0]
    watch = EndWatch(patience=60, clock=lambda: now[0])
    running = combine(q("2|RUNNING|None"), None)
    ended = combine(q(SQUEUE_FAILED), a(SACCT_START_RECORD))
    done = combine(q(SQUEUE_FAILED), a(SACCT_COMPLETION))
    assert watch.settle("2", None) is None and not watch.waiting("2")
    assert watch.settle("2", running) is None and not watch.waiting("2")
    assert watch.settle("2", ended) is None and watch.waiting("2")
    now[0] += 59
    assert watch.settle("2", ended) is None
    settled = watch.settle("2", done)
    assert settled is not None and settled.returncode == 3 and not watch.waiting("2")
    # A job seen ended, then queued again (requeued): its patience starts afresh.
    assert watch.settle("5", ended) is None and watch.waiting("5")
    assert watch.settle("5", running) is None and not watch.waiting("5")
    # Accounting that never completes: reported after the patience, with no exit code.
    assert watch.settle("3", ended) is None
    now[0] += 60
    late = watch.settle("3", ended)
    assert late is not None and late.returncode is None and late.reason == "error"
    # The runner's code (negative: a signal) is taken at once.
    from_runner = watch.settle("4", ended, runner_code=-9)
    assert from_runner is not None
    assert (from_runner.returncode, from_runner.exit_text, from_runner.source) == (
        -9,
        "0:9",
        "runner",
    )
