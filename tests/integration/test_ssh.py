"""Experiments on another computer over SSH, against real OpenSSH servers.

The servers run in a mount namespace of their own (``sshd.RemoteHosts``): the remote work
directories are on a tmpfs this process cannot see, so every file an experiment reads or
writes there went through SSH.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd import RemoteHosts, available, free_port, wait_for

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
    before = set(hosts.hosts[0].sessions())
    assert box.run("echo through").text == "through\n"
    # The connection to host2 is carried by a new session of host1 (compared by pid: a
    # session of an earlier test may still be closing, so a count could stay the same).
    assert set(hosts.hosts[0].sessions()) - before
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


# --- the remote experiment (one host) --------------------------------------------------------

HELLO = """
with experiment(box.workdir(sys.argv[1]), "hello", launcher=LocalLauncher(max_jobs=4)):
    for word in ("hello", "world"):
        Record(word=word, log=sys.argv[1] + "/executions").submit()
"""


def test_experiment_runs_on_the_host_and_reuses_its_jobs(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    script = write_script(tmp_path, HELLO)
    first = run(hosts, script, str(remote))
    assert first.returncode == 0, first.stderr
    assert "hello: 2 jobs: 2 done (2 ran, 0 already done)" in first.stderr
    assert len(executions(hosts, remote / "executions")) == 2
    jobs = hosts.in_namespace("sh", "-c", f"ls {remote}/jobs/sshtest.record/*/done").stdout
    assert len(jobs.split()) == 2
    outputs = hosts.in_namespace("sh", "-c", f"cat {remote}/jobs/sshtest.record/*/stdout")
    assert sorted(outputs.stdout.split()) == ["HELLO", "WORLD"]
    assert not remote.exists() or list(remote.iterdir()) == []  # nothing written here
    second = run(hosts, script, str(remote))
    assert second.returncode == 0, second.stderr
    assert "nothing to run: all 2 jobs were already done" in second.stderr
    assert len(executions(hosts, remote / "executions")) == 2
    # The script was uploaded once: the same content is stored under the same hash.
    code = hosts.in_namespace("sh", "-c", f"ls {remote}/.partita-ssh/code").stdout.split()
    assert len(code) == 1


def test_failed_job_exit_status_comes_back(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    script = write_script(
        tmp_path,
        """
        from partita import Task

        class Boom(Task, id="sshtest.boom"):
            def execute(self) -> None:
                raise RuntimeError("boom on purpose")

        with experiment(box.workdir(sys.argv[1]), "boom"):
            Boom().submit()
        print("unreachable")
        """,
    )
    done = run(hosts, script, str(remote))
    assert done.returncode == 1
    assert "sshtest.boom" in done.stderr and "FAILED" in done.stderr
    assert "unreachable" not in done.stdout
    assert hosts.remote_exists(next(iter([remote / "jobs" / "sshtest.boom"])))


def _bare_python(tmp_path: Path, body: str = "") -> Path:
    """A wrapper interpreter: the same Python with a PYTHONPATH that lacks partita."""
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\n{body}\nexec {PY} -S "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no-interpreter", "cannot run the Python interpreter"),
        ("no-partita", "partita is not importable"),
        ("old-partita", "partita 0.0.1 on host1"),
        ("unwritable", "cannot write in the remote work directory"),
        ("disk-full", "the remote disk is full"),
        ("missing-module", "task modules missing on host1"),
    ],
)
def test_remote_problems_are_reported_before_anything_launches(
    hosts: RemoteHosts, remote: Path, tmp_path: Path, case: str, expected: str
) -> None:
    python = PY
    workdir = remote
    inline = True
    if case == "no-interpreter":
        python = "/nonexistent/bin/python3"
    elif case == "no-partita":
        python = str(_bare_python(tmp_path, "unset PYTHONPATH"))
    elif case == "old-partita":
        fake = tmp_path / "fake" / "partita"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text("")
        (fake / "_version.py").write_text('__version__ = "0.0.1"\n')
        python = str(_bare_python(tmp_path, f"export PYTHONPATH={fake.parent}"))
    elif case == "unwritable":
        workdir = hosts.readonly / "xp"
    elif case == "disk-full":
        workdir = hosts.full / "xp"
    elif case == "missing-module":
        inline = False
    script = write_script(tmp_path, HELLO, tasks_inline=inline)
    done = run(hosts, script, str(workdir), PARTITA_SSH_PYTHON=python)
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "starts on host1" not in done.stderr  # nothing was started
    assert not hosts.remote_exists(workdir / "jobs")
    assert not hosts.remote_exists(workdir / "executions")


def test_local_packages_are_shipped_once(hosts: RemoteHosts, remote: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, HELLO, tasks_inline=False, ssh='SSH("host1", ship=["mytasks"])')
    first = run(hosts, script, str(remote))
    assert first.returncode == 0, first.stderr
    assert len(executions(hosts, remote / "executions")) == 2
    code = remote / ".partita-ssh" / "code"
    listing = hosts.in_namespace("sh", "-c", f"ls {code}").stdout.split()
    archives = [name for name in listing if name.endswith(".tar")]
    assert len(archives) == 1
    stamp = hosts.in_namespace("stat", "-c", "%Y.%Z", f"{code}/{archives[0]}").stdout
    second = run(hosts, script, str(remote))
    assert second.returncode == 0, second.stderr
    assert hosts.in_namespace("stat", "-c", "%Y.%Z", f"{code}/{archives[0]}").stdout == stamp
    # A change of the package is a new archive.
    (tmp_path / "mytasks" / "__init__.py").write_text(TASKS + "\nCHANGED = 1\n")
    third = run(hosts, script, str(remote))
    assert third.returncode == 0, third.stderr
    listing = hosts.in_namespace("sh", "-c", f"ls {code}").stdout.split()
    assert len([name for name in listing if name.endswith(".tar")]) == 2


# --- following, interrupting, detaching, reconnecting ----------------------------------------

WAITING = """
with experiment(box.workdir(sys.argv[1]), "waiting"{options}):
    for word in ("hello", "world"):
        Record(word=word, log=sys.argv[1] + "/executions", flag=sys.argv[1] + "/flag").submit()
"""


def waiting_script(tmp_path: Path, options: str = "", ssh: str = 'SSH("host1")') -> Path:
    return write_script(tmp_path, WAITING.format(options=options), ssh=ssh)


def both_started(hosts: RemoteHosts, remote: Path) -> bool:
    return len(executions(hosts, remote / "executions")) == 2


def release(hosts: RemoteHosts, remote: Path) -> None:
    assert hosts.in_namespace("touch", str(remote / "flag")).returncode == 0


def markers(hosts: RemoteHosts, remote: Path, name: str) -> list[str]:
    found = hosts.in_namespace("sh", "-c", f"ls {remote}/jobs/*/*/{name} 2>/dev/null").stdout
    return found.split()


def test_ctrl_c_interrupts_the_remote_experiment(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    process = start(hosts, waiting_script(tmp_path, ", grace_period=2"), str(remote))
    wait_for(lambda: both_started(hosts, remote), 60, "both jobs to start remotely")
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupting the experiment on host1" in err
    assert len(markers(hosts, remote, "cancelled")) == 2, err
    assert markers(hosts, remote, "done") == []
    # The jobs are gone: the flag no longer matters.
    release(hosts, remote)
    assert len(executions(hosts, remote / "executions")) == 2


def test_detach_queues_and_exits(hosts: RemoteHosts, remote: Path, tmp_path: Path) -> None:
    script = waiting_script(tmp_path, ", detach=True")
    done = run(hosts, script, str(remote))
    assert done.returncode == 0, done.stderr
    assert markers(hosts, remote, "done") == []
    wait_for(lambda: both_started(hosts, remote), 60, "both jobs to start remotely")
    release(hosts, remote)
    wait_for(lambda: len(markers(hosts, remote, "done")) == 2, 60, "the detached jobs")
    again = run(hosts, script, str(remote))
    assert again.returncode == 0, again.stderr
    assert "nothing to run" in again.stderr
    assert len(executions(hosts, remote / "executions")) == 2


def test_connection_killed_mid_run_reconnects_and_follows(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    process = start(hosts, waiting_script(tmp_path), str(remote))
    wait_for(lambda: both_started(hosts, remote), 60, "both jobs to start remotely")
    host = hosts.hosts[0]
    sessions = set(host.sessions())
    assert host.kill_sessions() >= 1
    # The laptop side reconnects: a new session appears.
    wait_for(lambda: set(host.sessions()) - sessions, 60, "a new SSH session")
    assert markers(hosts, remote, "done") == []  # nothing was marked done meanwhile
    release(hosts, remote)
    _out, err = process.communicate(timeout=90)
    assert process.returncode == 0, err
    assert "lost the connection to host1" in err
    assert "reconnected to host1" in err
    assert err.count("experiment 'waiting', run") == 1  # output resumed, not repeated
    assert "waiting: 2 jobs: 2 done (2 ran, 0 already done)" in err
    assert len(executions(hosts, remote / "executions")) == 2
    assert len(markers(hosts, remote, "done")) == 2


def test_rerun_reattaches_to_running_jobs(hosts: RemoteHosts, remote: Path, tmp_path: Path) -> None:
    script = waiting_script(tmp_path)
    first = start(hosts, script, str(remote))
    wait_for(lambda: both_started(hosts, remote), 60, "both jobs to start remotely")
    first.kill()  # the laptop goes away; the remote experiment goes on
    first.communicate(timeout=30)
    second = start(hosts, script, str(remote))
    wait_for(lambda: len(hosts.hosts[0].sessions()) >= 1, 30, "the second run to connect")
    release(hosts, remote)
    _out, err = second.communicate(timeout=90)
    assert second.returncode == 0, err
    assert len(executions(hosts, remote / "executions")) == 2
    assert len(markers(hosts, remote, "done")) == 2


def test_exactly_once_between_laptop_and_login_node(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    laptop = start(hosts, waiting_script(tmp_path), str(remote))
    wait_for(lambda: both_started(hosts, remote), 60, "both jobs to start remotely")
    # The same experiment, started on the host itself with the plain path.
    local = tmp_path / "on_host"
    local.mkdir()
    here = write_script(
        local, WAITING.format(options="").replace("box.workdir(sys.argv[1])", "sys.argv[1]")
    )
    login = subprocess.Popen(
        ["nsenter", "-t", str(hosts.holder.pid), "-m", "--", PY, str(here), str(remote)],  # type: ignore[union-attr]
        env=hosts.client_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    release(hosts, remote)
    _login_out, login_err = login.communicate(timeout=90)
    _out, err = laptop.communicate(timeout=90)
    assert laptop.returncode == 0, err
    assert login.returncode == 0, login_err
    assert len(executions(hosts, remote / "executions")) == 2  # each job ran once
    assert len(markers(hosts, remote, "done")) == 2


# --- the command line and the monitor through ssh:// -----------------------------------------


def partita(hosts: RemoteHosts, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The ``partita`` command on this side."""
    return subprocess.run(
        [PY, "-m", "partita.cli", *args],
        env=hosts.client_env(COLUMNS="120", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def partita_on_host(hosts: RemoteHosts, *args: str) -> subprocess.CompletedProcess[str]:
    """The same command run on the SSH host itself."""
    return hosts.in_namespace(PY, "-m", "partita.cli", *args, env=hosts.client_env(COLUMNS="120"))


@pytest.fixture(scope="module")
def finished(hosts: RemoteHosts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A remote work directory with two done jobs of experiment 'hello'."""
    remote = hosts.remote / "finished"
    script = write_script(tmp_path_factory.mktemp("finished"), HELLO)
    done = run(hosts, script, str(remote))
    assert done.returncode == 0, done.stderr
    return remote


def job_ids(hosts: RemoteHosts, remote: Path) -> list[str]:
    listed = partita_on_host(hosts, "jobs", "list", str(remote), "--json")
    assert listed.returncode == 0, listed.stderr
    return sorted(job["id"] for job in json.loads(listed.stdout))


@pytest.mark.parametrize(
    "command",
    [
        ["status", "{url}"],
        ["status", "{url}", "--json"],
        ["jobs", "list", "{url}", "--json"],
        ["jobs", "list", "-w", "{url}"],
        ["jobs", "show", "-w", "{url}", "{job}"],
        ["jobs", "log", "-w", "{url}", "{job}"],
        ["diff", "-w", "{url}", "{job}", "{other}"],
        ["experiments", "list", "{url}"],
        ["jobs", "show", "--workdir={url}", "nosuchjob"],
    ],
    ids=lambda c: " ".join(c[:2]) + (" json" if "--json" in c else ""),
)
def test_commands_on_a_remote_workdir_print_what_they_print_there(
    hosts: RemoteHosts, finished: Path, command: list[str]
) -> None:
    first, second = job_ids(hosts, finished)
    fill = {"url": f"ssh://host1{finished}", "job": first[:8], "other": second[:8]}
    here = partita(hosts, *[part.format(**fill) for part in command])
    fill["url"] = str(finished)
    there = partita_on_host(hosts, *[part.format(**fill) for part in command])
    # The two commands run a moment apart: relative times ("27s ago") may differ.
    assert (here.returncode, _timeless(here.stdout), here.stderr) == (
        there.returncode,
        _timeless(there.stdout),
        there.stderr,
    )
    assert here.stdout or here.stderr


def _timeless(text: str) -> str:
    """The text without relative times, and without the column widths they change."""
    text = re.sub(r"\b\d+(\.\d+)?\s?[smhd] ago\b", "<ago>", text)
    text = re.sub(r"─+", "─", text)  # a table's rule is as wide as its columns
    return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.splitlines())


def test_partita_workdir_variable_may_be_remote(hosts: RemoteHosts, finished: Path) -> None:
    here = partita(hosts, "jobs", "list", "--json", PARTITA_WORKDIR=f"ssh://host1{finished}")
    assert here.returncode == 0, here.stderr
    assert len(json.loads(here.stdout)) == 2


def test_remote_command_errors_are_clear(hosts: RemoteHosts, tmp_path: Path) -> None:
    refused = partita(hosts, "status", f"ssh://root@127.0.0.1:{free_port()}/x")
    assert refused.returncode == 1
    assert "connection refused" in refused.stderr
    bad = partita(hosts, "status", "ssh://host1/no/such/workdir")
    assert bad.returncode != 0
    assert "does not exist" in bad.stderr


def test_kill_and_follow_a_remote_job(hosts: RemoteHosts, remote: Path, tmp_path: Path) -> None:
    process = start(hosts, waiting_script(tmp_path), str(remote))
    wait_for(lambda: both_started(hosts, remote), 60, "both jobs to start remotely")
    url = f"ssh://host1{remote}"
    first, second = job_ids(hosts, remote)
    follow = subprocess.Popen(
        [PY, "-m", "partita.cli", "jobs", "log", "-f", "-w", url, second[:8]],
        env=hosts.client_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = partita(hosts, "jobs", "kill", "-w", url, first[:8])
    assert killed.returncode == 0, killed.stderr
    wait_for(lambda: len(markers(hosts, remote, "cancelled")) == 1, 60, "the killed job")
    release(hosts, remote)
    out, _err = follow.communicate(timeout=60)
    assert follow.returncode == 0
    assert out.split() in (["HELLO"], ["WORLD"])
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err  # one job was cancelled
    assert len(markers(hosts, remote, "done")) == 1


def test_an_interrupted_follow_ends_on_the_host_too(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    """Ctrl-C on `partita jobs log -f ssh://...` also ends the command on the host."""
    process = start(hosts, waiting_script(tmp_path), str(remote))
    wait_for(lambda: both_started(hosts, remote), 60, "both jobs to start remotely")
    first, _second = job_ids(hosts, remote)
    follow = subprocess.Popen(
        [PY, "-m", "partita.cli", "jobs", "log", "-f", "-w", f"ssh://host1{remote}", first[:8]],
        env=hosts.client_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: _processes_naming("partita.cli jobs log", f" {remote} "), 60, "the follower"
        )
        follow.send_signal(signal.SIGINT)
        follow.communicate(timeout=30)
        wait_for(
            lambda: not _processes_naming("partita.cli jobs log", f" {remote} "),
            30,
            "the follower on the host to end",
        )
    finally:
        if follow.poll() is None:
            follow.kill()
        release(hosts, remote)
        process.communicate(timeout=60)
    assert process.returncode == 0


def test_monitor_runs_on_the_host_behind_a_forwarded_port(
    hosts: RemoteHosts, finished: Path
) -> None:
    pytest.importorskip("starlette")
    import httpx

    process = subprocess.Popen(
        [PY, "-m", "partita.cli", "monitor", f"ssh://host1{finished}"],
        env=hosts.client_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = wait_for(lambda: process.stderr.readline(), 60, "the monitor's address")  # type: ignore[union-attr]
        assert "reached through SSH" in line, line
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        base, _, token = url.partition("/?token=")
        reply = httpx.get(
            f"{base}/api/experiments",
            headers={"Authorization": f"Bearer {token}"},
            cookies={},
            params={"token": token},
        )
        assert reply.status_code == 200, reply.text
        assert "hello" in reply.text
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    # The monitor on the host ends with the command that started it (the hosts share this
    # machine's process table, only their files are apart).
    wait_for(
        lambda: not _processes_naming("partita.cli monitor", str(finished)),
        30,
        "the remote monitor to end",
    )


def _processes_naming(*parts: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(part in line for part in parts):
            found.append(int(entry.name))
    return found


# --- several hosts sharing a file system -----------------------------------------------------

PLACED = '''
import os
from pathlib import Path

from partita import Param, Retry, Task


class Placed(Task, id="sshtest.placed"):
    """Records where it runs (host, CUDA device), waits for a flag file."""

    n: Param[int]
    log: Param[str]
    flag: Param[str]

    def execute(self) -> None:
        where = f"{os.environ.get('PARTITA_SSH_HOST')} {os.environ.get('CUDA_VISIBLE_DEVICES')}"
        with open(self.log, "a") as handle:
            handle.write(f"start {self.n} {where} {os.getpid()}\\n")
        while not Path(self.flag).exists():
            import time

            time.sleep(0.05)
        with open(self.log, "a") as handle:
            handle.write(f"end {self.n}\\n")
'''

SPREAD = """
lab = SSH(["host1", "host2", "host3"])
with experiment(lab.workdir(sys.argv[1]), "spread", launcher=lab.launcher({slots})):
    for n in range({count}):
        Placed(n=n, log=sys.argv[1] + "/executions", flag=sys.argv[1] + "/flag").submit(
            retries=Retry(count=2)
        )
"""


def spread_script(tmp_path: Path, slots: int, count: int) -> Path:
    path = tmp_path / "spread.py"
    path.write_text(
        "import sys\nfrom partita import SSH, experiment\n"
        + PLACED
        + textwrap.dedent(SPREAD.format(slots=slots, count=count))
    )
    return path


def starts(hosts: RemoteHosts, remote: Path) -> list[list[str]]:
    return [line.split() for line in executions(hosts, remote / "executions")]


def test_jobs_spread_over_three_hosts_with_a_device_per_slot(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    process = start(hosts, spread_script(tmp_path, slots=2, count=6), str(remote))
    wait_for(lambda: len(starts(hosts, remote)) == 6, 90, "six jobs on six slots")
    places = sorted((line[2], line[3]) for line in starts(hosts, remote))
    assert places == [(f"host{h}", str(s)) for h in (1, 2, 3) for s in (0, 1)]
    # The handles name the host: the command line finds and stops a job on any of them.
    url = f"ssh://host1{remote}"
    listed = json.loads(partita(hosts, "jobs", "list", url, "--json").stdout)
    victim = listed[0]
    shown = partita(hosts, "jobs", "show", "-w", url, victim["id"][:10])
    assert "ssh, pid" in shown.stdout, shown.stdout
    killed = partita(hosts, "jobs", "kill", "-w", url, victim["id"][:10])
    assert killed.returncode == 0, killed.stderr
    wait_for(lambda: len(markers(hosts, remote, "cancelled")) == 1, 60, "the killed job")
    release(hosts, remote)
    _out, err = process.communicate(timeout=90)
    assert process.returncode == 1, err  # one job was cancelled
    assert len(markers(hosts, remote, "done")) == 5


def test_a_host_that_goes_down_loses_its_jobs_which_run_elsewhere(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    process = start(hosts, spread_script(tmp_path, slots=2, count=3), str(remote))
    wait_for(lambda: len(starts(hosts, remote)) == 3, 90, "three jobs on three hosts")
    victim = next(line for line in starts(hosts, remote) if line[2] == "host3")
    # host3 crashes: its sshd and its job process die.
    third = hosts.hosts[2]
    hosts.stop_host(third)
    os.kill(int(victim[4]), signal.SIGKILL)
    try:
        wait_for(lambda: len(starts(hosts, remote)) == 4, 90, "the lost job to run again")
        again = starts(hosts, remote)[3]
        assert again[1] == victim[1]  # the same job...
        assert again[2] in ("host1", "host2")  # ...on a host that is up
        release(hosts, remote)
        _out, err = process.communicate(timeout=90)
    finally:
        hosts.restart(third)
    assert process.returncode == 0, err
    assert "SSH host host3 is down" in err
    assert len(markers(hosts, remote, "done")) == 3
    ends = [
        line
        for line in hosts.remote_read(remote / "executions").splitlines()
        if line.startswith("end")
    ]
    assert sorted(ends) == ["end 0", "end 1", "end 2"]  # each job completed once


# --- Slurm through SSH ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def login(hosts: RemoteHosts) -> Iterator[dict[str, str]]:
    """A private Slurm cluster started inside the hosts' namespace, and a login host for it.

    It has its own state folder and ports (derived from $PARTITA_SLURM_*), so that it never
    meets a cluster other tests run outside the namespace.
    """
    from slurm_cluster import SCRIPT, slurm_available

    ok, why = slurm_available()
    if not ok:
        pytest.skip(why)
    env = dict(os.environ)
    env["PARTITA_SLURM_DIR"] = env.get("PARTITA_SLURM_DIR", "/tmp/partita-slurm") + "-in-ssh"
    env["PARTITA_SLURM_PORT_BASE"] = str(int(env.get("PARTITA_SLURM_PORT_BASE", "16917")) + 50)
    env["PARTITA_SLURM_DB_PORT"] = str(int(env.get("PARTITA_SLURM_DB_PORT", "13406")) + 50)
    started = hosts.in_namespace("bash", str(SCRIPT), "start", env=env, timeout=600)
    assert started.returncode == 0, started.stderr[-3000:]
    variables = dict(
        line.removeprefix("export ").replace("'", "").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    hosts.add_host("login", {"SLURM_CONF": variables["SLURM_CONF"]})
    try:
        yield {**env, **variables}
    finally:
        hosts.in_namespace("bash", str(SCRIPT), "stop", env=env, timeout=120)


SLURM_DAG = """
from partita import SlurmLauncher, Task

class Join(Task, id="sshtest.join"):
    parts: Param[list[Record]]
    log: Param[str]

    def execute(self) -> None:
        with open(self.log, "a") as handle:
            handle.write("start join\\n")

cluster = SSH("login")
log, flag = sys.argv[1] + "/executions", sys.argv[1] + "/flag"
with experiment(cluster.workdir(sys.argv[1]), "big",
                launcher=SlurmLauncher(time="5:00", mem="100M")):
    parts = [Record(word=w, log=log, flag=flag).submit() for w in ("a", "b", "c")]
    Join(parts=parts, log=log).submit()
"""


@pytest.mark.slurm
def test_slurm_through_ssh_arrays_and_afterok(
    hosts: RemoteHosts, login: dict[str, str], remote: Path, tmp_path: Path
) -> None:
    script = write_script(
        tmp_path,
        SLURM_DAG.replace(
            "from partita import SlurmLauncher, Task",
            "from partita import Param, SlurmLauncher, Task",
        ),
    )
    first = run(hosts, script, str(remote), PARTITA_DETACH="1")
    assert first.returncode == 0, first.stderr
    assert "detached: 4 job(s)" in first.stderr, first.stderr
    states = {}
    for state in hosts.in_namespace("sh", "-c", f"ls {remote}/jobs/*/*/state.json").stdout.split():
        record = json.loads(hosts.remote_read(Path(state)))
        states[state.split("/")[-3]] = [*states.get(state.split("/")[-3], []), record]
    records = [s["launcher"] for s in states["sshtest.record"]]
    assert {h["kind"] for h in records} == {"slurm"}
    assert len({h["array"] for h in records}) == 1  # one array for the three parts
    (join,) = [s["launcher"] for s in states["sshtest.join"]]
    queued = hosts.in_namespace(
        "squeue",
        "-h",
        "-j",
        join["job_id"],
        "-o",
        "%E",
        env={**login, "SLURM_CONF": login["SLURM_CONF"]},
    )
    assert "afterok" in queued.stdout, (queued.stdout, queued.stderr)
    release(hosts, remote)
    second = run(hosts, script, str(remote), timeout=180)
    assert second.returncode == 0, second.stderr
    lines = hosts.remote_read(remote / "executions").splitlines()
    assert sorted(line.split()[1] for line in lines if line.startswith("start")) == [
        "a",
        "b",
        "c",
        "join",
    ]


def test_ship_true_ships_the_local_packages_of_tasks(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    script = write_script(tmp_path, HELLO, tasks_inline=False, ssh='SSH("host1", ship=True)')
    done = run(hosts, script, str(remote))
    assert done.returncode == 0, done.stderr
    assert len(executions(hosts, remote / "executions")) == 2
    code = remote / ".partita-ssh" / "code"
    listing = hosts.in_namespace("sh", "-c", f"ls {code}/*/mytasks/__init__.py").stdout.split()
    assert len(listing) == 1


def test_a_failing_remote_helper_is_reported_not_retried_forever(
    hosts: RemoteHosts, remote: Path, tmp_path: Path
) -> None:
    # An interpreter that passes the check but cannot run partita's remote helper.
    wrapper = tmp_path / "python-broken-helper"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = partita.ssh._remote ]; then echo "helper broken on purpose" >&2; exit 3; fi\n'
        f'exec {PY} "$@"\n'
    )
    wrapper.chmod(0o755)
    done = run(hosts, write_script(tmp_path, HELLO), str(remote), PARTITA_SSH_PYTHON=str(wrapper))
    assert done.returncode == 1, done.stderr
    assert "partita's remote helper stopped on host1" in done.stderr
    assert "exit status 3: helper broken on purpose" in done.stderr
    assert "Reconnecting" not in done.stderr
