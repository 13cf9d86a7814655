"""The registry of launcher kinds and the class-level half of the launcher contract."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from partita.errors import LauncherError
from partita.launchers import (
    Exit,
    Launcher,
    LaunchRequest,
    LocalLauncher,
    _registry,
    describe_handle,
    handle_gone,
    handle_kind,
    launcher_for_handle,
    launcher_for_kind,
    probe_handle,
    register_launcher,
    registered_kinds,
    settle_jobs,
)
from partita.workspace import identity


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Kinds registered by a test are forgotten after it."""
    saved = dict(_registry._kinds)
    yield
    _registry._kinds.clear()
    _registry._kinds.update(saved)


def _define_echo(kind: str = "echo-test") -> type[Launcher]:
    class EchoLauncher(Launcher, kind=kind):
        """A launcher that launches nothing; its handles say whether they run."""

        async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
            return [{"kind": self.kind, "ticket": i} for i, _ in enumerate(requests)]

        async def wait(self, handle: dict[str, Any]) -> Exit:
            return Exit(0)

        async def alive(self, handle: dict[str, Any]) -> bool | None:
            return bool(handle.get("running"))

        async def cancel(self, handle: dict[str, Any], grace: float) -> None:
            return None

        @classmethod
        def probe(cls, handle: Mapping[str, Any]) -> bool | None:
            return bool(handle.get("running"))

        @classmethod
        def describe_handle(cls, handle: Mapping[str, Any]) -> str:
            return f"echo ticket {handle.get('ticket')}"

    return EchoLauncher


def test_a_subclass_with_a_kind_is_registered(clean_registry: None) -> None:
    """Defining ``class X(Launcher, kind=...)`` is all it takes to register a kind."""
    echo = _define_echo()
    assert "echo-test" == echo.kind
    assert echo is launcher_for_kind("echo-test")
    assert echo is launcher_for_handle({"kind": "echo-test", "ticket": 3})
    assert "echo-test" in registered_kinds()
    assert "echo ticket 3" == describe_handle({"kind": "echo-test", "ticket": 3})
    assert probe_handle({"kind": "echo-test", "ticket": 3, "running": True}) is True
    assert handle_gone({"kind": "echo-test", "ticket": 3})
    assert not handle_gone({"kind": "echo-test", "ticket": 3, "running": True})


def test_builtin_kinds_are_known_without_importing_them_first() -> None:
    """``local`` and ``slurm`` handles find their classes, whatever was imported before."""
    from partita.launchers.slurm import SlurmLauncher

    assert LocalLauncher is launcher_for_handle({"kind": "local", "pid": 1})
    assert SlurmLauncher is launcher_for_handle({"kind": "slurm", "job_id": "12_0"})
    assert {"local", "slurm"} <= set(registered_kinds())
    code = (
        "from partita.launchers import launcher_for_kind\n"
        "print(launcher_for_kind('slurm').__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    assert "SlurmLauncher" == out.stdout.strip()


def test_unknown_kind_is_a_clear_error() -> None:
    """A handle of a kind nobody registered names the kind and the known kinds."""
    with pytest.raises(LauncherError) as caught:
        launcher_for_handle({"kind": "x", "pid": 1})
    message = str(caught.value)
    assert "handle of kind 'x' in state.json" in message
    assert "no launcher of that kind is registered" in message
    known = message.split("known: ", 1)[1].split(".", 1)[0].split(", ")
    assert {"local", "slurm"} <= set(known)  # kinds defined by imported modules come too
    with pytest.raises(LauncherError, match="expected a launcher handle with a 'kind'"):
        launcher_for_handle({"pid": 1})
    with pytest.raises(LauncherError, match="no launcher of kind 'x'"):
        launcher_for_kind("x")


def test_readers_never_raise_on_unknown_or_broken_handles() -> None:
    """Describing or probing a strange handle says what it can, and raises nothing."""
    assert "-" == describe_handle(None)
    assert "x, pid=1 (no launcher of this kind is registered)" == describe_handle(
        {"kind": "x", "pid": 1}
    )
    assert probe_handle({"kind": "x", "pid": 1}) is None
    assert probe_handle(None) is None
    assert not handle_gone({"kind": "x"})
    assert handle_kind({"kind": 3}) is None
    assert handle_kind(["local"]) is None  # type: ignore[arg-type]


def test_a_kind_cannot_be_taken_twice(clean_registry: None) -> None:
    """Two different classes cannot share a kind; a class without a kind cannot register."""
    _define_echo("twice-test")

    class Other(Launcher):
        kind = "twice-test"

        async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
            return []

        async def wait(self, handle: dict[str, Any]) -> Exit:
            return Exit(0)

        async def alive(self, handle: dict[str, Any]) -> bool | None:
            return None

        async def cancel(self, handle: dict[str, Any], grace: float) -> None:
            return None

    with pytest.raises(LauncherError, match=r"already registered by .*EchoLauncher"):
        register_launcher(Other)
    Other.kind = ""
    with pytest.raises(LauncherError, match="non-empty 'kind'"):
        register_launcher(Other)


def test_a_placeholder_is_not_a_started_job() -> None:
    """The record written before ``launch()`` returns is not probed as a dead job."""
    from partita.launchers.slurm import SlurmLauncher

    for cls in (LocalLauncher, SlurmLauncher):
        placeholder = cls.placeholder()
        assert cls.kind == handle_kind(placeholder)
        assert not cls.started(placeholder)
        assert probe_handle(placeholder) is None
        assert not handle_gone(placeholder)
    assert LocalLauncher.started({"kind": "local", **identity()})
    assert SlurmLauncher.started({"kind": "slurm", "job_id": "4_0"})


def test_local_handles_probe_describe_and_kill() -> None:
    """A local handle is probed from its process identity and killed with its group."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        handle = {"kind": "local", **identity(child.pid)}
        assert probe_handle(handle) is True
        assert f"local, pid {child.pid} on {handle['host']}" == describe_handle(handle)
        LocalLauncher.kill(handle, grace=5.0)
        assert child.wait(timeout=10) < 0
        assert probe_handle(handle) is False
        assert handle_gone(handle)
    finally:
        child.kill()
        child.wait()


def test_local_time_left_comes_from_the_handle() -> None:
    """A local job launched with a time limit records its deadline in its handle."""
    assert LocalLauncher.time_left({"kind": "local", "pid": 1}) is None
    left = LocalLauncher.time_left({"kind": "local", "pid": 1, "deadline": time.time() + 100})
    assert left is not None and 98 < left <= 100
    assert 0.0 == LocalLauncher.time_left({"kind": "local", "deadline": time.time() - 5})


def test_slurm_handles_are_described_and_followed_through_their_cluster() -> None:
    """A Slurm handle is described by its job id; its follower talks to its cluster."""
    from partita.launchers.slurm import SlurmLauncher

    handle = {"kind": "slurm", "job_id": "41_2", "slurm_conf": "/etc/other/slurm.conf"}
    assert "slurm, job 41_2, SLURM_CONF=/etc/other/slurm.conf" == describe_handle(handle)
    assert probe_handle(handle) is None  # asking Slurm is not cheap: alive() does it
    follower = SlurmLauncher.follower(handle)
    assert isinstance(follower, SlurmLauncher)
    assert "/etc/other/slurm.conf" == follower.commands.env["SLURM_CONF"]


def test_slurm_time_left_goes_through_the_slurm_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """``time_left`` asks squeue through ``SlurmCommands.run``, the one way to Slurm."""
    from partita.launchers.slurm import SlurmCommands, SlurmLauncher

    seen: list[list[str]] = []

    async def run(self: SlurmCommands, argv: Sequence[str], input: str | None = None) -> Any:
        seen.append(list(argv))
        return 0, "1-02:03:04\n", ""

    monkeypatch.setattr(SlurmCommands, "run", run)
    left = SlurmLauncher.time_left({"kind": "slurm", "job_id": "7_1"})
    assert float(86400 + 2 * 3600 + 3 * 60 + 4) == left
    assert [["squeue", "-h", "-j", "7_1", "-o", "%L"]] == seen

    async def unlimited(self: SlurmCommands, argv: Sequence[str], input: str | None = None) -> Any:
        return 0, "UNLIMITED\n", ""

    monkeypatch.setattr(SlurmCommands, "run", unlimited)
    assert SlurmLauncher.time_left({"kind": "slurm", "job_id": "7_1"}) is None
    assert SlurmLauncher.time_left(SlurmLauncher.placeholder()) is None


def test_settle_groups_jobs_by_kind(clean_registry: None, tmp_path: Any) -> None:
    """``settle_jobs`` hands each launcher its own running jobs, once."""
    from partita.workspace import JobInfo

    calls: list[list[str]] = []

    class Settler(Launcher, kind="settle-test"):
        async def launch(self, requests: Sequence[LaunchRequest]) -> list[dict[str, Any]]:
            return []

        async def wait(self, handle: dict[str, Any]) -> Exit:
            return Exit(0)

        async def alive(self, handle: dict[str, Any]) -> bool | None:
            return None

        async def cancel(self, handle: dict[str, Any], grace: float) -> None:
            return None

        @classmethod
        def settle(cls, jobs: Sequence[JobInfo]) -> list[str]:
            calls.append([job.identifier for job in jobs])
            return [f"{job.identifier}: settled" for job in jobs]

    def info(ident: str, state: str, kind: str) -> JobInfo:
        return JobInfo(ident, "t", tmp_path, state, launcher={"kind": kind, "n": 1})

    jobs = [
        info("a", "running", "settle-test"),
        info("b", "done", "settle-test"),
        info("c", "running", "local"),
        info("d", "running", "nobody-knows-this"),
        info("e", "running", "settle-test"),
    ]
    assert ["a: settled", "e: settled"] == settle_jobs(jobs)
    assert [["a", "e"]] == calls


def test_local_leftover_grace_is_checked() -> None:
    """A negative or non-numeric grace for leftover processes is refused with advice."""
    from partita.errors import LauncherOptionError

    assert 2.5 == LocalLauncher(1, leftover_grace=2.5).leftover_grace
    for bad in (-1, "5", float("nan")):
        with pytest.raises(LauncherOptionError, match="leftover_grace: expected seconds >= 0"):
            LocalLauncher(1, leftover_grace=bad)  # type: ignore[arg-type]
