"""When SlurmLauncher submits pending requests: the rule on a fake clock, then with fake sbatch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from partita.errors import LauncherOptionError
from partita.launchers.base import LaunchRequest
from partita.launchers.slurm._commands import SlurmCommands
from partita.launchers.slurm._launcher import Gathering, SlurmLauncher
from partita.workspace import JobPaths

# --- the rule, on a fake clock --------------------------------------------------------------


def arrivals(gathering: Gathering, times: Sequence[float]) -> list[int]:
    """Feed one request at each time; return the sizes of the batches submitted on the way.

    Between two arrivals the batch is submitted if it falls due first (as the launcher's
    timer would); at the end, whatever is pending is submitted when it falls due.
    """
    sizes = []
    for now in times:
        due = gathering.due_in(now)
        if due is not None and due <= 0:
            sizes.append(gathering.take())
        gathering.add(now)
        due = gathering.due_in(now)
        if due is not None and due <= 0:
            sizes.append(gathering.take())
    if gathering.due_in(times[-1]) is not None:
        sizes.append(gathering.take())
    return sizes


def test_requests_that_keep_coming_gather_even_when_each_gap_is_long_for_a_window() -> None:
    """A slow loop of submissions (40 ms apart, 0.1 s quiet) makes one batch, not many."""
    gathering = Gathering(quiet=0.1, longest=10.0, size=1000)
    assert [200] == arrivals(gathering, [i * 0.04 for i in range(200)])


def test_a_quiet_gap_ends_the_batch() -> None:
    gathering = Gathering(quiet=0.1, longest=10.0, size=1000)
    times = [0.0, 0.05, 0.1, 0.3, 0.35]  # 0.2 s of silence between the two bursts
    assert [3, 2] == arrivals(gathering, times)


def test_the_window_restarts_with_each_request() -> None:
    gathering = Gathering(quiet=0.1, longest=10.0, size=1000)
    gathering.add(0.0)
    assert 0.1 == pytest.approx(gathering.due_in(0.0))
    gathering.add(0.08)
    assert 0.1 == pytest.approx(gathering.due_in(0.08))  # not 0.02: it restarted
    assert gathering.due_in(0.17) > 0  # type: ignore[operator]
    assert gathering.due_in(0.18) <= 0  # type: ignore[operator]


def test_a_stream_without_pause_is_cut_after_the_longest_wait() -> None:
    """Requests every 10 ms for 5 s, at most 2 s per batch: the first waits no more than 2 s."""
    gathering = Gathering(quiet=0.1, longest=2.0, size=1000)
    sizes = arrivals(gathering, [i * 0.01 for i in range(500)])
    assert 3 == len(sizes)
    assert 500 == sum(sizes)
    assert all(size <= 201 for size in sizes), sizes


def test_a_full_array_is_submitted_at_once() -> None:
    gathering = Gathering(quiet=60.0, longest=60.0, size=150)
    gathering.add(0.0, "a", count=149)
    gathering.add(0.0, "b", count=149)  # 298 pending, but no array is full yet
    assert gathering.due_in(0.0) == pytest.approx(60.0)
    gathering.add(0.0, "a")
    assert gathering.due_in(0.0) == 0.0
    assert 299 == gathering.take()
    assert gathering.due_in(0.0) is None  # nothing pending: no timer


def test_negative_windows_are_rejected() -> None:
    with pytest.raises(LauncherOptionError, match="batch_quiet"):
        SlurmLauncher(batch_quiet=-1.0)
    with pytest.raises(LauncherOptionError, match="batch_longest"):
        SlurmLauncher(batch_longest=float("nan"))


# --- the launcher, with a fake sbatch -------------------------------------------------------


class FakeSbatch(SlurmCommands):
    """Records each sbatch (its arguments and manifest) and answers job ids 100, 101, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    async def sbatch(self, script_text: str, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        return str(100 + len(self.calls) - 1)


def requests(tmp_path: Path, count: int, **resources: Any) -> list[LaunchRequest]:
    jobs = tmp_path / "wd" / "jobs" / "fan"
    return [
        LaunchRequest(
            paths=JobPaths(jobs / f"{n:04d}{resources.get('mem', '')}"),
            attempt=1,
            name=f"fan/{n}",
            resources=resources,
        )
        for n in range(count)
    ]


def arrays(tmp_path: Path) -> list[list[str]]:
    """The job folders of each array, from the manifests the launcher wrote."""

    def order(manifest: Path) -> int:  # <time>-<pid>-<batch number>.json
        return int(manifest.stem.rsplit("-", 1)[1])

    manifests = sorted((tmp_path / "wd" / "slurm").glob("*.json"), key=order)
    return [[e["jobdir"] for e in json.loads(m.read_text())] for m in manifests]


def test_requests_of_one_moment_make_one_array_per_group(tmp_path: Path) -> None:
    """200 + 50 requests at once (2 kinds of memory), arrays of at most 150.

    The first group fills an array after 150 requests: that batch goes at once; the other
    50 of it and the 50 of the second group gather into the next one, one array each.
    """
    fake = FakeSbatch()
    launcher = SlurmLauncher(commands=fake, max_array_size=150)
    small = requests(tmp_path, 200)
    big = requests(tmp_path, 50, mem=2**30)

    async def main() -> list[list[dict[str, Any]]]:
        return await asyncio.gather(*(launcher.launch([r]) for r in small + big))

    handles = asyncio.run(main())
    assert [150, 100] == launcher.batch_sizes
    assert 3 == len(fake.calls)
    assert [150, 50, 50] == [len(a) for a in arrays(tmp_path)]
    assert [str(r.paths.root) for r in small + big] == [d for a in arrays(tmp_path) for d in a]
    assert ["--mem=1G"] == [a for a in fake.calls[2] if a.startswith("--mem")]
    # Each request got the handle of its own element.
    for request, (handle,) in zip(small + big, handles, strict=True):
        assert str(request.paths.root) == handle["jobdir"]
        assert handle["job_id"] == f"{handle['array']}_{handle['index']}"


def test_one_call_with_more_than_an_array_is_cut_into_arrays(tmp_path: Path) -> None:
    fake = FakeSbatch()
    launcher = SlurmLauncher(commands=fake, max_array_size=100)
    handles = asyncio.run(launcher.launch(requests(tmp_path, 250)))
    assert [250] == launcher.batch_sizes
    assert [100, 100, 50] == [len(a) for a in arrays(tmp_path)]
    assert ["100_0", "100_99", "101_0", "102_49"] == [
        handles[i]["job_id"] for i in (0, 99, 100, 249)
    ]


def test_a_full_array_does_not_wait_for_the_window(tmp_path: Path) -> None:
    """With a 60 s window, requests arriving turn by turn are submitted once 5 are pending."""
    fake = FakeSbatch()
    launcher = SlurmLauncher(commands=fake, max_array_size=5, batch_quiet=60, batch_longest=60)

    async def main() -> None:
        tasks = []
        for request in requests(tmp_path, 5):
            tasks.append(asyncio.ensure_future(launcher.launch([request])))
            await asyncio.sleep(0)  # a loop turn between two requests
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)

    asyncio.run(main())
    assert 1 == len(fake.calls)
    assert [5] == launcher.batch_sizes
    assert "--array=0-4" in fake.calls[0]


def test_requests_during_a_submission_form_the_next_batch(tmp_path: Path) -> None:
    """While sbatch runs, new requests gather for the next one; nothing is lost or doubled."""
    fake = FakeSbatch()
    launcher = SlurmLauncher(commands=fake, max_array_size=3, batch_quiet=60, batch_longest=60)
    first, second = requests(tmp_path, 6)[:3], requests(tmp_path, 6)[3:]

    async def main() -> None:
        early = [asyncio.ensure_future(launcher.launch([r])) for r in first]
        await asyncio.sleep(0)
        late = [asyncio.ensure_future(launcher.launch([r])) for r in second]
        await asyncio.wait_for(asyncio.gather(*early, *late), timeout=30)

    asyncio.run(main())
    assert [3, 3] == launcher.batch_sizes
    assert [[str(r.paths.root) for r in first], [str(r.paths.root) for r in second]] == arrays(
        tmp_path
    )


def test_no_request_no_submission(tmp_path: Path) -> None:
    fake = FakeSbatch()
    launcher = SlurmLauncher(commands=fake)
    assert [] == asyncio.run(launcher.launch([]))
    assert [] == fake.calls
    assert [] == launcher.batch_sizes
