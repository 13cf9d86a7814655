"""Reading squeue/sacct output, the state table, and SlurmCommands with a replaced runner."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest

from partita.errors import LauncherError
from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._status import (
    SlurmState,
    expand_job_id,
    normalise_state,
    parse_sacct,
    parse_squeue,
    phase_of,
    reason_for,
)

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

# Seen on the test cluster: sacct -X -n -P -o JobID,State,ExitCode,Elapsed. Note the stale
# pending range 2_[6-9%2] next to 2_6 and 2_7, which already run.
SACCT_OUTPUT = """\
3|PENDING|0:0|00:00:00
4|FAILED|1:0|00:00:00
5|CANCELLED|0:0|00:00:00
2_0|COMPLETED|0:0|00:00:02
2_6|RUNNING|0:0|00:00:01
2_7|RUNNING|0:0|00:00:01
2_[6-9%2]|PENDING|0:0|00:00:00
18|FAILED|3:0|00:00:00
19|CANCELLED by 0|0:15|00:01:06
16|FAILED|0:53|00:00:00
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


@pytest.mark.parametrize(
    ("line", "state", "exit_code", "signal", "reason"),
    [
        ("7|COMPLETED|0:0|00:00:01", "COMPLETED", 0, 0, None),
        ("7|FAILED|3:0|00:00:01", "FAILED", 3, 0, "error"),
        ("7|CANCELLED|0:15|00:00:30", "CANCELLED", 0, 15, "cancelled"),
        ("7|CANCELLED by 0|0:0|00:00:00", "CANCELLED", 0, 0, "cancelled"),
        ("7|TIMEOUT|0:15|00:01:04", "TIMEOUT", 0, 15, "timeout"),
        ("7|FAILED|0:9|00:00:03", "FAILED", 0, 9, "error"),
        ("7|OUT_OF_MEMORY|0:125|00:00:03", "OUT_OF_MEMORY", 0, 125, "memory"),
        ("7|NODE_FAIL|0:0|1-02:03:04", "NODE_FAIL", 0, 0, "node_fail"),
        ("7|PREEMPTED|0:0|00:10:00", "PREEMPTED", 0, 0, "preempted"),
        ("7|BOOT_FAIL|0:0|00:00:00", "BOOT_FAIL", 0, 0, "error"),
        ("7|DEADLINE|0:0|00:00:00", "DEADLINE", 0, 0, "error"),
        ("7|REQUEUED|0:0|00:00:00", "REQUEUED", 0, 0, None),
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
    text = "1|COMPLETED|0:0|2-00:00:05\n2|COMPLETED|0:0|05:06\n3|PENDING|0:0|INVALID\n"
    entries = parse_sacct(text)
    assert entries["1"].elapsed == timedelta(days=2, seconds=5)
    assert entries["2"].elapsed == timedelta(minutes=5, seconds=6)
    assert entries["3"].elapsed is None


def test_headers_and_blank_lines_are_skipped() -> None:
    """Output with a header (no -h/-n) or blank lines still parses."""
    assert list(parse_squeue("JOBID|STATE|REASON\n\n9|RUNNING|None\n")) == ["9"]
    assert list(parse_sacct("JobID|State|ExitCode|Elapsed\n9|RUNNING|0:0|00:00:01\n\n")) == ["9"]
    assert parse_squeue("") == {} and parse_sacct("") == {}


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_squeue, "9 RUNNING None"),
        (parse_sacct, "9|RUNNING|0:0"),
        (parse_sacct, "9|RUNNING|zero|00:00:01"),
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
        "JobID,State,ExitCode,Elapsed",
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
