"""Packed Slurm arrays: the launcher's pure parts (element options, reports, handles)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from partita.errors import LauncherOptionError
from partita.launchers.base import Exit, LaunchRequest
from partita.launchers.slurm import SlurmLauncher, SlurmOptions
from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._launcher import _packed_exit
from partita.launchers.slurm._packing import (
    AUTO_ELEMENT_SECONDS,
    AUTO_LONGEST_TASK,
    AUTO_MAX_PACK,
    AUTO_MIN_TASKS,
    PACK_OVERHEAD_MIB,
    ReportReader,
    auto_pack_size,
    element_options,
    lost_reason,
)
from partita.launchers.slurm._script import batch_script
from partita.workspace import JobPaths


def test_element_asks_for_its_longest_share_and_one_task_of_memory() -> None:
    options = SlurmOptions.from_kwargs(time="10:00", mem="100M", cpus_per_task=2)
    packs = [[{"time": 30.0}, {"time": 30.0}], [{"time": 200.0}]]
    got = element_options(options, packs)
    assert timedelta(minutes=5) == got.time  # 200 s + 60 s of margin, whole minutes up
    assert 100 + PACK_OVERHEAD_MIB == got.mem
    assert 2 == got.cpus_per_task


def test_element_without_every_limit_keeps_the_options_time() -> None:
    options = SlurmOptions.from_kwargs(mem="1G")
    got = element_options(options, [[{"time": 30.0}, {"time": None}]])
    assert got.time is None
    assert 1024 + PACK_OVERHEAD_MIB == got.mem


def test_pack_must_be_a_positive_whole_number() -> None:
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(LauncherOptionError, match="pack"):
            SlurmLauncher(pack=bad)  # type: ignore[arg-type]
    assert "packed, 10 per element" in SlurmLauncher(pack=10).describe()
    assert "packed automatically" in SlurmLauncher(pack="auto").describe()


def test_dependents_queue_with_afterok_only_behind_unpacked_jobs() -> None:
    """afterok behind an element of one task says it succeeded; behind a packed one, not."""
    for launcher in (SlurmLauncher(), SlurmLauncher(pack=4), SlurmLauncher(pack="auto")):
        assert launcher.queues_dependencies
        assert launcher.queues_after({"kind": "slurm", "job_id": "7_0"})
        assert not launcher.queues_after(
            {"kind": "slurm", "job_id": "7_0", "slot": 0, "report": "r"}
        )


def test_auto_packs_many_short_tasks_and_nothing_else() -> None:
    assert auto_pack_size(AUTO_MIN_TASKS - 1, 60.0) is None  # too few
    assert auto_pack_size(500, None) is None  # one task without a time limit
    assert auto_pack_size(500, AUTO_LONGEST_TASK + 1) is None  # not short
    assert auto_pack_size(500, 0.0) is None
    assert AUTO_MAX_PACK == auto_pack_size(500, 5.0)  # tiny tasks: the most per element
    assert 12 == auto_pack_size(AUTO_MIN_TASKS, 300.0)  # 12 x 5 min in one element hour
    assert 6 == auto_pack_size(100, AUTO_LONGEST_TASK)
    assert AUTO_ELEMENT_SECONDS // 300 == auto_pack_size(AUTO_MIN_TASKS, 300.0)


def _requests(tmp_path: Path, count: int, **resources: Any) -> list[LaunchRequest]:
    jobs = tmp_path / "wd" / "jobs" / "t"
    return [
        LaunchRequest(
            paths=JobPaths(jobs / f"{n:04d}"), attempt=1, name=f"t/{n}", resources=resources
        )
        for n in range(count)
    ]


class _FakeSbatch(SlurmCommands):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    async def sbatch(self, script_text: str, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        return str(100 + len(self.calls) - 1)


def test_auto_decides_per_group_of_ready_tasks(tmp_path: Path) -> None:
    """40 tasks of 1 min are packed (50 fit, so one element); 40 without a limit are not;
    5 short ones are too few; tasks queued behind an unpacked job stay one per element."""
    fake = _FakeSbatch()
    launcher = SlurmLauncher(commands=fake, pack="auto", mem="100M", batch_quiet=0)

    async def launch(reqs: list[LaunchRequest]) -> list[dict[str, Any]]:
        return await launcher.launch(reqs)

    short = asyncio.run(launch(_requests(tmp_path / "a", 40, time=60)))
    assert {0} == {h["index"] for h in short} and all("slot" in h for h in short)
    assert "--array=0-0" in fake.calls[-1]
    unknown = asyncio.run(launch(_requests(tmp_path / "b", 40)))
    assert not any("slot" in h for h in unknown)
    assert "--array=0-39" in fake.calls[-1]
    few = asyncio.run(launch(_requests(tmp_path / "c", 5, time=60)))
    assert not any("slot" in h for h in few)
    behind = _requests(tmp_path / "d", 10, time=60)
    for request in behind:
        request.depends_on = [{"kind": "slurm", "job_id": "100_3"}]
    queued = asyncio.run(launch(behind))
    assert not any("slot" in h for h in queued)
    assert "--dependency=afterok:100_3" in fake.calls[-1]


def test_report_reader_reads_only_complete_new_lines(tmp_path: Path) -> None:
    report = tmp_path / "0.jsonl"
    reader = ReportReader()
    assert ({}, {}) == reader.read(str(report))  # not written yet
    report.write_text('{"slot": 0, "event": "start"}\n{"slot": 0, "event": "end", "co')
    starts, ends = reader.read(str(report))
    assert [0] == list(starts) and {} == ends
    with report.open("a") as file:
        file.write('de": 0}\nnot json\n{"slot": 1, "event": "start"}\n')
    starts, ends = reader.read(str(report))
    assert [0, 1] == sorted(starts)
    assert {0: {"slot": 0, "event": "end", "code": 0}} == ends
    reader.keep(set())
    assert ([0, 1], [0]) == tuple(sorted(d) for d in reader.read(str(report)))


def _handle(jobdir: Path, slot: int = 0) -> dict[str, object]:
    return {
        "kind": "slurm",
        "job_id": "7_0",
        "slot": slot,
        "pack": 3,
        "report": "r",
        "jobdir": str(jobdir),
        "attempt": 1,
    }


def test_a_packed_task_ends_with_its_report_or_with_its_element(tmp_path: Path) -> None:
    jobdir = tmp_path / "jobs" / "t" / "abc"
    jobdir.mkdir(parents=True)
    handle = _handle(jobdir)
    end = {"slot": 0, "event": "end", "code": 143, "reason": "timeout", "detail": "over"}
    exit_ = _packed_exit(handle, {0: {}}, {0: end}, None)
    assert exit_ is not None and (143, "timeout", "over") == (
        exit_.code,
        exit_.reason,
        exit_.detail,
    )
    assert _packed_exit(handle, {0: {}}, {}, None) is None  # running
    assert _packed_exit(handle, {}, {}, None) is None  # waiting for its turn
    lost = _packed_exit(handle, {0: {}}, {}, "CANCELLED")
    assert lost is not None and "lost" == lost.reason and "before it finished" in lost.detail
    assert "node_fail" == lost_reason("NODE_FAIL")
    assert lost.started, "it had started: a failed attempt (retry policy)"
    # Slot 1 of an element that died while running slot 0: it never ran, launched again.
    unstarted = _packed_exit(_handle(jobdir, slot=1), {0: {}}, {}, "FAILED")
    assert unstarted is not None and not unstarted.started
    assert "before it had its turn" in unstarted.detail
    # An element that started no task at all (a broken node): every task is lost.
    broken = _packed_exit(_handle(jobdir, slot=1), {}, {}, "FAILED")
    assert broken is not None and broken.started and "lost" == broken.reason
    JobPaths(jobdir).cancel_request.write_text("asked\n")
    cancelled = _packed_exit(handle, {}, {}, "CANCELLED")
    assert cancelled is not None and "cancelled" == cancelled.reason


def test_describe_packed_handle(tmp_path: Path) -> None:
    text = SlurmLauncher.describe_handle(_handle(tmp_path, slot=1))
    assert "slurm, job 7_0 (packed, task 2 of 3)" == text


def test_batch_script_runs_the_pack_worker(tmp_path: Path) -> None:
    script = batch_script(
        python="/usr/bin/python3",
        workdir=tmp_path,
        manifest=tmp_path / "m.json",
        runner="partita._pack",
    )
    assert "-m partita._pack --manifest" in script


def test_a_task_that_never_gets_its_turn_is_relaunched_a_bounded_number_of_times(
    tmp_path: Path,
) -> None:
    """Each time its element dies first it is reported unstarted, up to ``requeues``."""
    from partita.launchers.slurm._status import JobStatus

    jobdir = tmp_path / "jobs" / "t" / "abc"
    jobdir.mkdir(parents=True)
    report = tmp_path / "0.jsonl"
    report.write_text('{"slot": 0, "event": "start"}\n')
    launcher = SlurmLauncher()
    launcher.requeues = 2
    dead = {"7_0": JobStatus("FAILED", 137, 0, True)}

    async def one_round() -> Exit:
        handle = {**_handle(jobdir, slot=1), "report": str(report)}
        future = asyncio.get_running_loop().create_future()
        launcher._packed["7_0/1"] = (handle, future)
        launcher._follow_packed(dead)
        return await future

    rounds = [asyncio.run(one_round()) for _ in range(3)]
    assert [False, False, True] == [exit_.started for exit_ in rounds]
    assert all("lost" == exit_.reason for exit_ in rounds)
