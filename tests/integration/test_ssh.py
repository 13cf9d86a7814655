"""Experiments on another computer over SSH, against real OpenSSH servers.

The servers run in a mount namespace of their own (``sshd.RemoteHosts``): the remote work
directories are on a tmpfs this process cannot see, so every file an experiment reads or
writes there went through SSH.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import RemoteHosts, available, free_port

pytestmark = [pytest.mark.ssh, pytest.mark.mount]

PY = sys.executable


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteHosts]:
    why = available()
    if why:
        pytest.skip(why)
    with RemoteHosts(tmp_path_factory.mktemp("ssh"), count=3) as started:
        yield started


@pytest.fixture(autouse=True)
def client_environment(hosts: RemoteHosts, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process uses the test bed's ssh configuration too (never ~/.ssh)."""
    for name, value in hosts.client_env().items():
        if name.startswith("PARTITA_SSH"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


@pytest.fixture
def remote(hosts: RemoteHosts, request: pytest.FixtureRequest) -> Path:
    """A fresh remote work directory path (on the hidden tmpfs)."""
    return hosts.remote / request.node.name.replace("[", "-").replace("]", "")


TASKS = '''
import os
import time
from pathlib import Path

from partita import Param, Task


class Record(Task, id="sshtest.record"):
    """Appends its word to a log (to count executions), waits for a flag file if given."""

    word: Param[str]
    log: Param[str]
    flag: Param[str] = ""

    def execute(self) -> None:
        with open(self.log, "a") as handle:
            handle.write(f"start {self.word} {os.getpid()}\\n")
        while self.flag and not Path(self.flag).exists():
            time.sleep(0.05)
        with open(self.log, "a") as handle:
            handle.write(f"end {self.word}\\n")
        print(self.word.upper())
'''


def write_script(
    folder: Path,
    body: str,
    *,
    ssh: str = 'SSH("host1")',
    tasks_inline: bool = True,
    name: str = "xp.py",
) -> Path:
    """An experiment script; its work directory is sys.argv[1] on the SSH host."""
    head = "import sys\nfrom partita import SSH, LocalLauncher, experiment\n"
    if tasks_inline:
        head += TASKS
    else:
        (folder / "mytasks").mkdir(exist_ok=True)
        (folder / "mytasks" / "__init__.py").write_text(TASKS)
        head += "from mytasks import Record\n"
    text = head + f"\nbox = {ssh}\n" + textwrap.dedent(body)
    path = folder / name
    path.write_text(text)
    return path


def run(
    hosts: RemoteHosts, script: Path, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, str(script), *args],
        env=hosts.client_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=script.parent,
    )


def start(hosts: RemoteHosts, script: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, str(script), *args],
        env=hosts.client_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=script.parent,
    )


def executions(hosts: RemoteHosts, log: Path) -> list[str]:
    if not hosts.remote_exists(log):
        return []
    return [line for line in hosts.remote_read(log).splitlines() if line.startswith("start")]


def connect_in_subprocess(
    hosts: RemoteHosts, target: str, *, netns: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """Open a connection from a fresh process; it prints the error class and message."""
    code = textwrap.dedent(
        f"""
        from partita import SSH
        from partita.errors import PartitaError
        try:
            print(SSH({target!r}).run("echo connected").text.strip())
        except PartitaError as exc:
            print(type(exc).__name__, exc, sep="\\n")
        """
    )
    argv = [PY, "-c", code]
    if netns:
        argv = ["unshare", "-n", *argv]
    return subprocess.run(
        argv, env=hosts.client_env(**env), capture_output=True, text=True, timeout=60
    )


# --- the test bed ----------------------------------------------------------------------------


def test_remote_tmpfs_is_invisible_here(hosts: RemoteHosts, remote: Path) -> None:
    from partita import SSH

    box = SSH("host1")
    result = box.run(f"mkdir -p {remote} && echo written > {remote}/proof && cat {remote}/proof")
    assert result.exit_status == 0, result.error_text
    assert result.text == "written\n"
    assert hosts.remote_exists(remote / "proof")
    assert not (remote / "proof").exists()  # this process sees the empty mount point
    assert list(hosts.remote.iterdir()) == []
    box.close()


def test_three_servers_share_the_remote_files(hosts: RemoteHosts, remote: Path) -> None:
    from partita import SSH

    lab = SSH(["host1", "host2", "host3"])
    lab.run(f"mkdir -p {remote} && echo shared > {remote}/f", 0)
    for index in range(3):
        result = lab.run(f"cat {remote}/f", index)
        assert result.text == "shared\n"
    assert len({c.target.host for c in lab._connections.values()}) == 3
    lab.close()


# --- the connector: configuration and faults -------------------------------------------------


def test_config_user_port_identity_and_proxyjump(hosts: RemoteHosts, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    second = hosts.hosts[1]
    config.write_text(
        hosts.ssh_config.read_text()
        + textwrap.dedent(
            f"""
            Host jumped
                HostName 127.0.0.1
                Port {second.port}
                User root
                IdentityFile {hosts.keys}/client_key
                ProxyJump host1
            """
        )
    )
    from partita import SSH

    box = SSH("jumped", config=config, known_hosts=hosts.known_hosts)
    before = len(hosts.hosts[0].sessions())
    assert box.run("echo through").text == "through\n"
    # The connection to host2 is carried by a session of host1.
    assert len(hosts.hosts[0].sessions()) > before
    box.close()
    direct = SSH(
        f"root@127.0.0.1:{second.port}", config=hosts.ssh_config, known_hosts=hosts.known_hosts
    )
    with pytest.raises(Exception) as refused:
        direct.run("true")  # no IdentityFile for this spelling, no agent: refused
    assert type(refused.value).__name__ == "SSHAuthError"


def test_refused_connection(hosts: RemoteHosts) -> None:
    done = connect_in_subprocess(hosts, f"root@127.0.0.1:{free_port()}")
    assert done.stdout.splitlines()[0] == "SSHConnectError", done
    assert "connection refused" in done.stdout


def test_unknown_host_in_a_network_namespace(hosts: RemoteHosts, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host lost\n    HostName no-such-host.invalid\n    User root\n")
    done = connect_in_subprocess(hosts, "lost", netns=True, PARTITA_SSH_CONFIG=str(config))
    assert done.stdout.splitlines()[0] == "SSHConnectError", done
    assert "cannot connect to lost" in done.stdout
    assert "unknown" in done.stdout


def test_unreachable_host_in_a_network_namespace(hosts: RemoteHosts) -> None:
    # A new network namespace has its loopback down: nothing can be reached.
    done = connect_in_subprocess(hosts, "host1", netns=True)
    assert done.stdout.splitlines()[0] == "SSHConnectError", done
    assert "unreachable" in done.stdout


def test_authentication_failure(hosts: RemoteHosts, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(hosts.ssh_config.read_text().replace("client_key", "other_key"))
    done = connect_in_subprocess(hosts, "host1", PARTITA_SSH_CONFIG=str(config))
    assert done.stdout.splitlines()[0] == "SSHAuthError", done
    assert "authentication failed" in done.stdout


def test_host_key_mismatch_is_refused(hosts: RemoteHosts, tmp_path: Path) -> None:
    wrong = tmp_path / "known_hosts"
    other = (hosts.keys / "other_key.pub").read_text().split()
    wrong.write_text(f"[127.0.0.1]:{hosts.hosts[0].port} {other[0]} {other[1]}\n")
    done = connect_in_subprocess(hosts, "host1", PARTITA_SSH_KNOWN_HOSTS=str(wrong))
    assert done.stdout.splitlines()[0] == "HostKeyError", done
    assert "not trusted" in done.stdout
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    done = connect_in_subprocess(hosts, "host1", PARTITA_SSH_KNOWN_HOSTS=str(empty))
    assert done.stdout.splitlines()[0] == "HostKeyError", done


def test_missing_asyncssh_gives_a_hint(hosts: RemoteHosts, tmp_path: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "asyncssh.py").write_text("raise ImportError('blocked for the test')\n")
    path = f"{blocker}:{hosts.client_env()['PYTHONPATH']}"
    done = connect_in_subprocess(hosts, "host1", PYTHONPATH=path)
    assert done.stdout.splitlines()[0] == "SSHError", done
    assert "pip install 'partita[ssh]'" in done.stdout
