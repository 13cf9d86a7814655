"""Host names, ssh:// work directories and command lines of the SSH connector (no server)."""

from __future__ import annotations

import pytest

from partita import SSH
from partita.ssh import SSHError, is_remote, parse_url
from partita.ssh._cli import find_remote
from partita.ssh._connection import Target
from partita.ssh._driver import compatible


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu-box", Target("gpu-box")),
        ("me@gpu-box", Target("gpu-box", "me")),
        ("me@10.0.0.2:2222", Target("10.0.0.2", "me", 2222)),
        ("gpu-box:22", Target("gpu-box", None, 22)),
    ],
)
def test_hosts_are_parsed(text: str, expected: Target) -> None:
    assert Target.parse(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["", "two words", "host:port", "host:70000", "me@"])
def test_bad_hosts_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(SSHError, match="SSH host"):
        Target.parse(text)


def test_workdir_urls_round_trip() -> None:
    workdir = parse_url("ssh://me@gpu-box:2222/data/me/xp?python=/opt/venv/bin/python")
    assert workdir.ssh.host == Target("gpu-box", "me", 2222)
    assert str(workdir.path) == "/data/me/xp"
    assert workdir.ssh.python == "/opt/venv/bin/python"
    assert workdir.url == "ssh://me@gpu-box:2222/data/me/xp"
    assert is_remote(workdir) and is_remote("ssh://h/x") and not is_remote("/data/xp")


def test_remote_workdirs_must_be_absolute() -> None:
    with pytest.raises(SSHError, match="absolute path"):
        SSH("gpu-box").workdir("data/xp")
    with pytest.raises(SSHError, match=r"ssh://\[user@\]host"):
        parse_url("ssh://gpu-box")


def test_nothing_connects_until_needed() -> None:
    box = SSH("no-such-host.invalid")
    assert box.workdir("/x").here() is None
    assert box._connections == {}


def test_the_plain_path_is_used_on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTITA_SSH_HERE", "1")
    assert str(SSH("gpu-box").workdir("/data/xp").here()) == "/data/xp"


@pytest.mark.parametrize(
    ("argv", "rest"),
    [
        (["status", "ssh://h/w"], ["status", "/w"]),
        (["jobs", "list", "-w", "ssh://h/w", "--json"], ["jobs", "list", "-w", "/w", "--json"]),
        (["jobs", "show", "--workdir=ssh://h/w", "3f"], ["jobs", "show", "--workdir=/w", "3f"]),
    ],
)
def test_the_cli_finds_the_remote_workdir(argv: list[str], rest: list[str]) -> None:
    found = find_remote(argv, {})
    assert found is not None
    workdir, remote_argv, env = found
    assert (str(workdir.ssh.host), remote_argv, env) == ("h", rest, {})


def test_the_cli_takes_a_remote_workdir_from_the_environment() -> None:
    found = find_remote(["status"], {"PARTITA_WORKDIR": "ssh://h/w"})
    assert found is not None
    assert found[1:] == (["status"], {"PARTITA_WORKDIR": "/w"})
    assert find_remote(["status", "local/dir"], {}) is None
    assert find_remote(["run", "--", "ssh://h/w"], {}) is None
    assert find_remote(["run", "xp.py", "ssh://h/w"], {}) is None  # the script's argument


def test_versions_are_compatible_on_major_and_minor() -> None:
    assert compatible("0.1.7", "0.1.0")
    assert not compatible("0.2.0", "0.1.0")
    assert not compatible("1.1.0", "0.1.0")


def test_hosts_launcher_options_are_checked() -> None:
    from partita.errors import LauncherOptionError

    lab = SSH(["a", "b"])
    with pytest.raises(LauncherOptionError, match="slots_per_host"):
        lab.launcher(0)
    with pytest.raises(LauncherOptionError, match="cuda_devices"):
        lab.launcher(2, cuda_devices=["0"])
    launcher = lab.launcher(2)
    assert launcher.capacity == 4
    assert "a, b" in launcher.describe()
