"""Private OpenSSH servers on loopback, in a mount namespace of their own.

:class:`RemoteHosts` starts one process under ``unshare -m`` that mounts private tmpfs
file systems and then waits; every ``sshd`` is started inside that namespace with
``nsenter``. The remote side therefore sees the machine's files (the Python environment,
partita's sources) plus the tmpfs mounts, while the test process sees only empty
directories where those mounts are: every file an experiment writes there must have gone
through SSH.

Nothing here touches ``~/.ssh``: host keys, the client key, ``known_hosts`` and the
client's ``ssh_config`` are written into the base folder, and the environment to use them
is given by :meth:`RemoteHosts.client_env`.

Mounts inside the namespace (``base/`` is the folder given to the constructor):

- ``base/remote``: a tmpfs of 256 MiB, the remote work directories;
- ``base/full``: a tmpfs of 1 MiB, filled to the last byte (a full disk);
- ``base/readonly``: a read-only tmpfs (an unwritable work directory).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def available() -> str | None:
    """Why the SSH tests cannot run here, or None if they can."""
    missing = [tool for tool in ("ssh-keygen", "unshare", "nsenter") if not shutil.which(tool)]
    if not os.path.exists(SSHD):
        missing.append(SSHD)
    if missing:
        return f"missing {', '.join(missing)} (apt-get install openssh-server openssh-client)"
    if os.geteuid() != 0:
        return "mount namespaces need root"
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        return "asyncssh is not installed (pip install 'partita[ssh]')"
    return None


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Host:
    """One sshd: its alias in the client's ssh_config, its port and its process."""

    alias: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def sessions(self) -> list[int]:
        """PIDs of the per-connection sshd processes (children of the listener)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == self.process.pid:
                found.append(int(entry))
        return found

    def kill_sessions(self) -> int:
        """SIGKILL every SSH session of this server (the connections drop); how many."""
        pids = self.sessions()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)


class RemoteHosts:
    """``count`` sshd servers sharing one private mount namespace (see the module doc)."""

    def __init__(self, base: Path, count: int = 1, python: str = sys.executable) -> None:
        self.base = base
        self.count = count
        self.python = python
        self.remote = base / "remote"
        self.full = base / "full"
        self.readonly = base / "readonly"
        self.keys = base / "keys"
        self.hosts: list[Host] = []
        self.holder: subprocess.Popen[bytes] | None = None

    # --- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> RemoteHosts:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for folder in (self.remote, self.full, self.readonly, self.keys):
            folder.mkdir(parents=True, exist_ok=True)
        self.keys.chmod(0o700)
        self._keygen("host_key")
        self._keygen("client_key")
        self._keygen("other_key")  # a key the servers do not accept
        (self.keys / "authorized_keys").write_text((self.keys / "client_key.pub").read_text())
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        ready = self.base / "namespace-ready"
        script = (
            f"mount -t tmpfs -o size=256m,mode=0755 partita-remote {self.remote} && "
            f"mount -t tmpfs -o size=1m,mode=0755 partita-full {self.full} && "
            f"(head -c 2M /dev/zero > {self.full}/filler 2>/dev/null; true) && "
            f"mount -t tmpfs -o ro,size=1m,mode=0755 partita-readonly {self.readonly} && "
            f"touch {ready} && exec sleep infinity"
        )
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.base / "namespace.log", "wb"),  # noqa: SIM115
        )
        wait_for(lambda: ready.exists() or self.holder.poll() is not None, 10, "the namespace")  # type: ignore[union-attr]
        if self.holder.poll() is not None:
            raise RuntimeError((self.base / "namespace.log").read_text())
        for index in range(self.count):
            self.hosts.append(self._start_sshd(f"host{index + 1}"))
        self._write_client_files()

    def stop(self) -> None:
        for host in self.hosts:
            _stop(host.process)
        if self.holder is not None:
            _stop(self.holder)
            self.holder = None

    def restart(self, host: Host) -> Host:
        """Start ``host``'s sshd again on the same port (after :meth:`stop_host`)."""
        new = self._start_sshd(host.alias, host.port)
        self.hosts[self.hosts.index(host)] = new
        return new

    def stop_host(self, host: Host) -> None:
        """Stop one sshd and its sessions: the host becomes unreachable."""
        host.kill_sessions()
        _stop(host.process)

    # --- what a client needs -------------------------------------------------------------------

    @property
    def ssh_config(self) -> Path:
        return self.keys / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.keys / "known_hosts"

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of a laptop-side process: this config, no agent, no ~/.ssh."""
        env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "SSH_AGENT_PID")}
        env.update(
            PARTITA_SSH_CONFIG=str(self.ssh_config),
            PARTITA_SSH_PYTHON=self.python,
            PYTHONPATH=str(SRC),
            PARTITA_NO_LIVE="1",
        )
        env.update(extra)
        return env

    def in_namespace(self, *argv: str, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
        """Run a command inside the remote side's mount namespace (as the remote host)."""
        assert self.holder is not None
        return subprocess.run(
            ["nsenter", "-t", str(self.holder.pid), "-m", "--", *argv],
            capture_output=True,
            text=True,
            **kwargs,
        )

    def remote_exists(self, path: Path) -> bool:
        """Whether ``path`` exists on the remote side (asked inside the namespace)."""
        return self.in_namespace("test", "-e", str(path)).returncode == 0

    def remote_read(self, path: Path) -> str:
        """The text of a remote file (read inside the namespace)."""
        done = self.in_namespace("cat", str(path))
        if done.returncode != 0:
            raise FileNotFoundError(f"{path}: {done.stderr}")
        return done.stdout

    # --- internals ----------------------------------------------------------------------------

    def _keygen(self, name: str) -> None:
        if not (self.keys / name).exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.keys / name)],
                check=True,
            )

    def add_host(self, alias: str, env: dict[str, str]) -> Host:
        """Another sshd in the same namespace whose sessions get ``env`` (e.g. SLURM_CONF)."""
        host = self._start_sshd(alias, env=env)
        self.hosts.append(host)
        self._write_client_files()
        return host

    def _start_sshd(
        self, alias: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> Host:
        assert self.holder is not None
        port = port or free_port()
        config = self.keys / f"sshd_config.{alias}"
        config.write_text(
            f"ListenAddress 127.0.0.1\n"
            f"Port {port}\n"
            f"HostKey {self.keys}/host_key\n"
            f"PidFile {self.keys}/sshd.{alias}.pid\n"
            f"AuthorizedKeysFile {self.keys}/authorized_keys\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "MaxSessions 64\n"
            "MaxStartups 64\n"
            "Subsystem sftp internal-sftp\n"
            # The remote side imports the partita of this source tree.
            # ... and reaches the other hosts with the same client configuration.
            f"SetEnv PYTHONPATH={SRC} PARTITA_NO_LIVE=1 PARTITA_SSH_CONFIG={self.ssh_config}"
            f" PARTITA_SSH_PYTHON={self.python}"
            + "".join(f" {k}={v}" for k, v in (env or {}).items())
            + "\n"
            "LogLevel INFO\n"
        )
        log = self.keys / f"sshd.{alias}.log"
        process = subprocess.Popen(
            [
                "nsenter",
                "-t",
                str(self.holder.pid),
                "-m",
                "--",
                SSHD,
                "-f",
                str(config),
                "-D",
                "-e",
            ],
            stdin=subprocess.DEVNULL,
            stdout=open(log, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"sshd {alias} exited: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(listening, 10, f"sshd {alias} on port {port}")
        return Host(alias, port, process, log)

    def _write_client_files(self) -> None:
        public = (self.keys / "host_key.pub").read_text().split()
        lines = [f"[127.0.0.1]:{host.port} {public[0]} {public[1]}" for host in self.hosts]
        self.known_hosts.write_text("\n".join(lines) + "\n")
        blocks = []
        for host in self.hosts:
            blocks.append(
                f"Host {host.alias}\n"
                "    HostName 127.0.0.1\n"
                f"    Port {host.port}\n"
                "    User root\n"
                f"    IdentityFile {self.keys}/client_key\n"
                f"    UserKnownHostsFile {self.known_hosts}\n"
            )
        self.ssh_config.write_text("\n".join(blocks))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def remote_hosts(base: Path, count: int = 1) -> Iterator[RemoteHosts]:
    """``with remote_hosts(tmp_path, 3) as hosts: ...``."""
    with RemoteHosts(base, count) as hosts:
        yield hosts
