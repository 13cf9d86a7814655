"""The Slurm building blocks against a real single-node cluster (scripts/slurm-cluster.sh)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from partita.launchers.base import Exit
from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._launcher import SlurmLauncher
from partita.launchers.slurm._options import SlurmOptions
from partita.launchers.slurm._script import batch_script, output_pattern, sbatch_argv
from partita.launchers.slurm._status import AcctEntry, phase_of

sys.path.insert(0, str(Path(__file__).parent))

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(240)]

# Stands in for Python: records its argv, working directory and one variable, then
# behaves as FAKE_MODE says. Called as: FAKE -m partita.run JOBDIR --attempt N, or
# FAKE -m partita.run --manifest FILE --index I.
FAKE_PYTHON = r"""#!/bin/sh
if [ "$3" = --manifest ]; then out="$(dirname "$4")/ran-$6.txt"; else out="$3/ran.txt"; fi
echo "fake python started"
case "${FAKE_MODE:-ok}" in
  fail) exit 3 ;;
  sleep) sleep 300 ;;
  slow) sleep 1 ;;
  after) [ -f "$NEEDS_FILE" ] || { echo "missing $NEEDS_FILE" >&2; exit 4; } ;;
esac
{ printf '%s\n' "$@"; printf 'pwd=%s\n' "$(pwd)"; printf 'value=%s\n' "$HOSTILE_VALUE"; } > "$out"
"""
HOSTILE_NAME = '50% it\'s "odd" $HOME `id` \n line'
HOSTILE_VALUE = "a 'b' \"c\" $HOME `id` ; rm -rf / \n end"
TERMINAL = ("done", "failed")


@pytest.fixture
def slurm(slurm_env: dict[str, str]) -> SlurmCommands:
    return SlurmCommands(env=slurm_env, timeout=30)


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A directory whose name has %, quotes, $, backticks and a newline, with the fake python."""
    directory = tmp_path / HOSTILE_NAME
    directory.mkdir()
    fake = directory / "fake_python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return directory


def submit(
    slurm: SlurmCommands,
    hostile: Path,
    name: str,
    mode: str = "ok",
    *,
    dependency: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[str, Path]:
    jobdir = hostile / name
    jobdir.mkdir()
    script = batch_script(
        python=hostile / "fake_python",
        workdir=hostile,
        env={"FAKE_MODE": mode, "HOSTILE_VALUE": HOSTILE_VALUE, **(extra_env or {})},
        jobdir=jobdir,
        attempt=2,
    )
    argv = sbatch_argv(
        SlurmOptions.from_kwargs(time=5, mem="100M", cpus_per_task=1),
        job_name=f"partita-test-{name}",
        output=output_pattern(jobdir, "slurm-%j.out"),
        error=output_pattern(jobdir, "slurm-%j.err"),
        dependency=dependency,
    )
    return asyncio.run(slurm.sbatch(script, argv)), jobdir


def wait_final(slurm: SlurmCommands, job_id: str, timeout: float = 60) -> AcctEntry:
    """sacct's completion record of the job: a final state *and* an end time.

    A final state alone is not enough: slurmdbd may first hold a start record written
    after the job ended, with the final state but ExitCode 0:0 and no end time.
    """
    deadline = time.monotonic() + timeout
    entry = None
    while time.monotonic() < deadline:
        entry = asyncio.run(slurm.sacct([job_id])).get(job_id)
        if entry is not None and entry.complete:
            assert entry.phase in TERMINAL
            return entry
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} has no completion record after {timeout} s: {entry}")


def wait_queue_state(
    slurm: SlurmCommands, job_id: str, state: str, reason: str | None = None, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    entry = None
    while time.monotonic() < deadline:
        entry = asyncio.run(slurm.squeue([job_id])).get(job_id)
        if entry is not None and entry.state == state and reason in (None, entry.reason):
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never {state} in {timeout} s: {entry}")


def test_job_in_hostile_directory_completes(slurm: SlurmCommands, hostile: Path) -> None:
    """A job whose paths and variables hold quotes, $, backticks and newlines runs as written."""
    job_id, jobdir = submit(slurm, hostile, "one job")
    entry = wait_final(slurm, job_id)
    assert (entry.state, entry.exit_code, entry.reason) == ("COMPLETED", 0, None)
    ran = (jobdir / "ran.txt").read_text()
    assert ran == (
        f"-m\npartita.run\n{jobdir}\n--attempt\n2\npwd={hostile}\nvalue={HOSTILE_VALUE}\n"
    )
    assert (jobdir / f"slurm-{job_id}.out").read_text() == "fake python started\n"
    assert (jobdir / f"slurm-{job_id}.err").read_text() == ""
    assert slurm.statistics()["sbatch"] == 1


def test_exit_3_is_failed_with_reason_error(slurm: SlurmCommands, hostile: Path) -> None:
    """A job that exits 3 ends FAILED with exit code 3, which partita calls an error."""
    job_id, _ = submit(slurm, hostile, "fails", "fail")
    entry = wait_final(slurm, job_id)
    assert (entry.state, entry.exit_code, entry.signal, entry.reason) == ("FAILED", 3, 0, "error")
    assert entry.end is not None


def test_exit_3_through_the_launcher_is_never_read_as_0(
    slurm_env: dict[str, str], slurm: SlurmCommands, hostile: Path
) -> None:
    """Followed from submission, a job that exits 3 ends with code 3; no poll says 0:0.

    The launcher polls squeue and sacct from the start, so it sees the moments where
    slurmctld already says FAILED and slurmdbd does not yet have the exit code.
    """
    job_id, _ = submit(slurm, hostile, "fails", "fail")
    launcher = SlurmLauncher(env=slurm_env, poll_interval=0.05, max_poll_interval=0.05)

    async def follow() -> tuple[Exit, list[tuple[str, str] | None]]:
        seen: list[tuple[str, str] | None] = []
        waiter = asyncio.ensure_future(launcher.wait({"job_id": job_id}))
        try:
            while not waiter.done():
                seen.append((await launcher.status([job_id])).get(job_id))
                await asyncio.wait([waiter], timeout=0.05)
            return waiter.result(), seen
        finally:
            await launcher.close()

    exit_, seen = asyncio.run(asyncio.wait_for(follow(), 180))
    assert (exit_.code, exit_.reason, exit_.detail) == (3, None, "Slurm state FAILED")
    ended = [found for found in seen if found is not None and phase_of(found[0]) in TERMINAL]
    assert all(found == ("FAILED", "3:0") or found == ("FAILED", "unknown") for found in ended)
    assert asyncio.run(launcher.status([job_id])) == {job_id: ("FAILED", "3:0")}


def test_scancel_of_running_job_is_cancelled(slurm: SlurmCommands, hostile: Path) -> None:
    """scancel of a running job ends it CANCELLED, which partita calls cancelled."""
    job_id, jobdir = submit(slurm, hostile, "sleeps", "sleep")
    wait_queue_state(slurm, job_id, "RUNNING")
    asyncio.run(slurm.scancel([job_id]))
    entry = wait_final(slurm, job_id)
    assert (entry.state, entry.reason) == ("CANCELLED", "cancelled")
    assert not (jobdir / "ran.txt").exists()
    asyncio.run(slurm.scancel([job_id]))  # cancelling a finished job is fine


def test_afterok_chain_runs_in_order(slurm: SlurmCommands, hostile: Path) -> None:
    """A job submitted with afterok waits for its dependency, then runs after it succeeded."""
    first, first_dir = submit(slurm, hostile, "first", "slow")
    second, second_dir = submit(
        slurm,
        hostile,
        "second",
        "after",
        dependency=[first],
        extra_env={"NEEDS_FILE": str(first_dir / "ran.txt")},
    )
    wait_queue_state(slurm, second, "PENDING", reason="Dependency")
    assert asyncio.run(slurm.squeue([second]))[second].phase == "queued"
    assert wait_final(slurm, first).state == "COMPLETED"
    assert wait_final(slurm, second).state == "COMPLETED"
    assert (second_dir / "ran.txt").exists()


def test_failed_dependency_cancels_the_dependent_job(slurm: SlurmCommands, hostile: Path) -> None:
    """With kill_on_invalid_dep, a job whose dependency failed is cancelled, not left pending."""
    first, _ = submit(slurm, hostile, "first", "fail")
    second, second_dir = submit(slurm, hostile, "second", dependency=[first])
    assert wait_final(slurm, first).reason == "error"
    assert wait_final(slurm, second).reason == "cancelled"
    assert not (second_dir / "ran.txt").exists()


def test_array_over_manifest(slurm: SlurmCommands, hostile: Path) -> None:
    """An array over a manifest runs each element with its index; sacct lists each task."""
    manifest = hostile / "manifest.json"
    manifest.write_text(
        json.dumps([{"jobdir": str(hostile / str(i)), "attempt": 1} for i in range(3)])
    )
    script = batch_script(python=hostile / "fake_python", workdir=hostile, manifest=manifest)
    argv = sbatch_argv(
        SlurmOptions(),
        job_name="partita-test-array",
        output=output_pattern(hostile, "array-%A_%a.out"),
        error=output_pattern(hostile, "array-%A_%a.err"),
        array="0-2%2",
    )
    job_id = asyncio.run(slurm.sbatch(script, argv))
    for index in range(3):
        entry = wait_final(slurm, f"{job_id}_{index}")
        assert entry.state == "COMPLETED"
        ran = (hostile / f"ran-{index}.txt").read_text()
        assert ran.startswith(f"-m\npartita.run\n--manifest\n{manifest}\n--index\n{index}\n")
        assert (hostile / f"array-{job_id}_{index}.out").exists()
    assert set(slurm.statistics()) == {"sbatch", "sacct"}


def test_sbatch_reads_no_directive_from_hostile_text(slurm: SlurmCommands, tmp_path: Path) -> None:
    """A "#SBATCH --mem=1T" line inside a quoted path is not read: sbatch accepts the job."""
    sneaky = tmp_path / "missing\n#SBATCH --mem=1T\n#SBATCH --time=1"
    script = batch_script(python="/bin/true", workdir=sneaky, jobdir=sneaky)
    argv = sbatch_argv(
        SlurmOptions(), job_name="partita-test-sneaky", output="/dev/null", error="/dev/null"
    )
    # With EnforcePartLimits=ALL, sbatch would refuse --mem=1T at once had it read it.
    job_id = asyncio.run(slurm.sbatch(script, argv))
    entry = wait_final(slurm, job_id)
    assert (entry.state, entry.exit_code) == ("FAILED", 125)  # cd failed: no such directory
