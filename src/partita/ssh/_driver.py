"""A remote experiment seen from the laptop: check, ship, start, follow, exit.

``experiment(ssh.workdir(path), ...)`` lands here (see docs/ssh.md, "The protocol"):

1. one command runs the probe (:mod:`partita.ssh._probe`) with the remote interpreter:
   Python and partita versions, the work directory writable with free space, the task
   modules importable, which shipped code is already there;
2. SFTP uploads what is missing (the script, shipped packages), once per content hash;
3. one command starts the script on the host, detached from the SSH session, and streams
   its output back (:mod:`partita.ssh._remote`); the local ``with`` body never runs;
4. the local process exits with the remote experiment's exit code.

If the connection drops, the remote experiment goes on; this side reconnects with
backoff and resumes the output where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from partita._version import __version__
from partita.errors import ExperimentError
from partita.ssh import _remote
from partita.ssh._connection import Connection, Stream
from partita.ssh._connector import SSH, SSHWorkdir, main_script
from partita.ssh._errors import RemoteEnvironmentError, RemoteWorkdirError, SSHError

__all__ = ["RemoteExperiment", "compatible"]

_PROBE = Path(__file__).with_name("_probe.py")
_FORWARDED_ENV = ("PARTITA_DETACH", "PARTITA_DRY_RUN", "PARTITA_DEBUG")


def compatible(remote: str, local: str = __version__) -> bool:
    """Whether partita ``remote`` can run an experiment started by partita ``local``."""
    return remote.split(".")[:2] == local.split(".")[:2]


class _Shipment:
    """What goes to the host: the script and packages, each stored by content hash."""

    def __init__(self, ssh: SSH, script: Path) -> None:
        self.files: dict[str, bytes] = {}  # path relative to the work directory -> bytes
        data = script.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:20]
        self.script = f"{_remote.SSH_FOLDER}/code/{digest}/{script.name}"
        self.files[self.script] = data
        self.archives: list[str] = []
        self.shipped_modules: set[str] = set()
        for name in self._packages(ssh):
            archive, top = _archive(name)
            digest = hashlib.sha256(archive).hexdigest()[:20]
            relative = f"{_remote.SSH_FOLDER}/code/{digest}"
            self.files[relative + ".tar"] = archive
            self.archives.append(relative)
            self.shipped_modules.add(top)

    @staticmethod
    def _packages(ssh: SSH) -> list[str]:
        if ssh.ship is True:
            return sorted({m.partition(".")[0] for m in task_modules() if _is_local(m)})
        if ssh.ship is False:
            return []
        return list(ssh.ship)


def _archive(name: str) -> tuple[bytes, str]:
    """An uncompressed tar of the importable module or package ``name`` (reproducible)."""
    import importlib

    top = name.partition(".")[0]
    try:
        module = importlib.import_module(top)
    except ImportError as exc:
        raise ExperimentError(
            f"ship: expected importable package names, but {top!r} cannot be imported here ({exc})."
        ) from None
    file = getattr(module, "__file__", None)
    if not file:
        raise ExperimentError(f"ship: {top!r} has no source file to upload.")
    source = Path(file)
    # A package ships as its folder, a module as its file, so `import top` works there.
    root = source.parent if hasattr(module, "__path__") else source
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo") or path.is_dir():
                continue
            arcname = path.name if root.is_file() else f"{root.name}/{path.relative_to(root)}"
            info = tar.gettarinfo(str(path), arcname)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue(), top


def task_modules() -> set[str]:
    """Modules (other than the script and partita) that define the known task classes."""
    from partita.config._config import Task

    found: set[str] = set()
    pending = list(Task.__subclasses__())
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        module = cls.__module__
        if module in ("__main__", "__partita_main__") or module.split(".")[0] == "partita":
            continue
        found.add(module)
    return found


def _is_local(module: str) -> bool:
    """Whether ``module`` comes from the user's own files, not from an installed package."""
    file = getattr(sys.modules.get(module), "__file__", None) or ""
    return bool(file) and "site-packages" not in file and "dist-packages" not in file


class RemoteExperiment:
    """Runs the current script on the host of ``workdir`` and follows it."""

    def __init__(self, workdir: SSHWorkdir, name: str, *, detach: bool) -> None:
        self.workdir = workdir
        self.ssh = workdir.ssh
        self.name = name
        self.detach = detach
        self.session = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.offsets = {b"O": 0, b"E": 0}
        self.out: BinaryIO = sys.stdout.buffer
        self.err: BinaryIO = sys.stderr.buffer

    def say(self, text: str) -> None:
        """A message of this side, on stderr."""
        sys.stderr.write(f"partita: {text}\n")
        sys.stderr.flush()

    @property
    def connection(self) -> Connection:
        return self.ssh.connection(0)

    # --- checks and shipping ----------------------------------------------------------------

    def prepare(self) -> _Shipment:
        """Check the remote side, upload what is missing; raise before anything launches."""
        script = main_script()
        if script is None or not script.is_file():
            raise ExperimentError(
                "a remote experiment runs its script on the host, but this Python has no "
                "script file (interactive session?). Put the experiment in a .py file."
            )
        shipment = _Shipment(self.ssh, script)
        modules = sorted(
            m for m in task_modules() if m.partition(".")[0] not in shipment.shipped_modules
        )
        report = self.probe(
            present=[*shipment.files, *shipment.archives],
            paths=shipment.archives,
            modules=modules,
        )
        self.check(report)
        present = set(report.get("present", []))
        missing = {
            f"{self.workdir.path}/{rel}": data
            for rel, data in shipment.files.items()
            if rel not in present and not (rel.endswith(".tar") and rel[:-4] in present)
        }
        self.connection.put(missing)
        return shipment

    def probe(self, *, present: list[str], paths: list[str], modules: list[str]) -> dict[str, Any]:
        """Run the probe with the remote interpreter (one command)."""
        arguments = json.dumps(
            {
                "workdir": str(self.workdir.path),
                "present": present,
                "paths": paths,
                "modules": modules,
            }
        )
        result = self.connection.run(
            self.ssh.python_command("-", arguments), input=_PROBE.read_bytes()
        )
        host, python = self.ssh.host, self.ssh.python
        if result.exit_status == 127 or (result.exit_status != 0 and not result.stdout):
            raise RemoteEnvironmentError(
                f"cannot run the Python interpreter {python!r} on {host}: "
                f"{result.error_text or f'exit status {result.exit_status}'}. Expected Python "
                "3.11 or newer with partita installed; pass its path as "
                "SSH(..., python='/path/to/venv/bin/python') or set $PARTITA_SSH_PYTHON."
            )
        try:
            report: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RemoteEnvironmentError(
                f"{python} on {host} did not answer partita's check (it printed "
                f"{result.text[:200]!r}, {result.error_text[:200]!r}). Is it a Python "
                "interpreter? Pass the right one as SSH(..., python=...)."
            ) from None
        return report

    def check(self, report: dict[str, Any]) -> None:
        """Turn the probe's report into a clear error, or return."""
        host, python = self.ssh.host, self.ssh.python
        version = tuple(report.get("python", ()))
        if version < (3, 11):
            found = ".".join(map(str, version))
            raise RemoteEnvironmentError(
                f"{python} on {host} is Python {found}; partita needs 3.11 or newer. Pass "
                "a newer interpreter as SSH(..., python='/path/to/python')."
            )
        if "partita" not in report:
            raise RemoteEnvironmentError(
                f"partita is not importable by {report.get('executable', python)} on {host} "
                f"({report.get('partita_error')}). Install it there "
                f"(pip install 'partita=={__version__}') or pass the interpreter of an "
                "environment that has it, as SSH(..., python=...)."
            )
        remote = str(report["partita"])
        if not compatible(remote) or report.get("protocol") != _remote.PROTOCOL:
            raise RemoteEnvironmentError(
                f"partita {remote} on {host} ({report.get('partita_file')}) cannot run an "
                f"experiment of partita {__version__} (this machine): expected the same "
                f"version. Install it there: pip install 'partita=={__version__}'."
            )
        problem = report.get("workdir_error")
        where = f"{self.workdir.path} on {host}"
        if problem:
            number, text, _file = problem
            import errno

            if number in (errno.ENOSPC, errno.EDQUOT):
                raise RemoteWorkdirError(
                    f"the remote disk is full: cannot write in {where} ({text}). Free some "
                    "space there (or use another work directory) and run again."
                )
            raise RemoteWorkdirError(
                f"cannot write in the remote work directory {where}: {text}. Expected a "
                "directory you can create and write; check its path and permissions."
            )
        if report.get("workspace_error"):
            raise RemoteWorkdirError(f"on {host}: {report['workspace_error']}")
        free = report.get("free")
        if isinstance(free, int) and free < self.ssh.min_free:
            raise RemoteWorkdirError(
                f"the remote disk is full: {free} bytes free in {where}, partita needs at "
                f"least {self.ssh.min_free}. Free some space there and run again."
            )
        missing = report.get("missing_modules") or {}
        if missing:
            listed = "; ".join(f"{name} ({why})" for name, why in sorted(missing.items()))
            raise RemoteEnvironmentError(
                f"task modules missing on {host} for {report.get('executable', python)}: "
                f"{listed}. Install them there, or ship them from here with "
                f"SSH(..., ship={sorted(missing)!r}) (or ship=True for every local package)."
            )

    # --- running ----------------------------------------------------------------------------

    def run(self) -> int:
        """Check, ship, start and follow; returns the remote exit code."""
        shipment = self.prepare()
        spec = {
            "protocol": _remote.PROTOCOL,
            "workdir": str(self.workdir.path),
            "session": self.session,
            "experiment": self.name,
            "python": self.ssh.python,
            "script": shipment.script,
            "argv": sys.argv[1:],
            "archives": shipment.archives,
            "paths": shipment.archives,
            "env": {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ},
        }
        self.say(
            f"experiment {self.name!r} starts on {self.ssh.host} in {self.workdir.path} "
            f"(session {self.session})"
        )
        stream = self.connection.open_stream(
            "cd / && exec " + self.ssh.python_command("-m", "partita.ssh._remote", "start")
        )
        stream.write(json.dumps(spec).encode() + b"\n")
        return self.follow(stream)

    @property
    def session_dir(self) -> str:
        return f"{self.workdir.path}/{_remote.SSH_FOLDER}/sessions/{self.session}"

    def _resume(self) -> Stream:
        return self.connection.open_stream(
            "cd / && exec "
            + self.ssh.python_command(
                "-m",
                "partita.ssh._remote",
                "follow",
                self.session_dir,
                str(self.offsets[b"O"]),
                str(self.offsets[b"E"]),
            )
        )

    def follow(self, stream: Stream) -> int:
        """Relay frames until the exit code; reconnect when the connection drops."""
        interrupted = 0
        buffer = b""
        while True:
            try:
                try:
                    chunk = stream.read()
                    if not chunk:
                        failure = stream.failure()
                        if failure is not None:
                            # The connection is fine: the remote side itself failed.
                            raise RemoteEnvironmentError(
                                f"partita's remote helper stopped on {self.ssh.host} before "
                                f"the experiment's exit status ({failure}). The experiment "
                                f"may still run there: see {self.session_dir}."
                            )
                        raise SSHError("the output stream ended before the exit status")
                except RemoteEnvironmentError:
                    raise
                except SSHError:
                    stream.close()
                    self.say(
                        f"lost the connection to {self.ssh.host}; the experiment goes on "
                        "there. Reconnecting…"
                    )
                    self.connection.reconnect(self.ssh.reconnect_patience, self.say)
                    buffer = b""
                    stream = self._resume()
                    self.say(f"reconnected to {self.ssh.host}; following session {self.session}")
                    continue
                buffer += chunk
                while True:
                    header, newline, rest = buffer.partition(b"\n")
                    if not newline:
                        break
                    tag, _, size = header.partition(b" ")
                    if tag == b"X":
                        stream.close()
                        return int(size)
                    length = int(size)
                    if len(rest) < length:
                        break
                    data, buffer = rest[:length], rest[length:]
                    self.offsets[tag] += length
                    target = self.out if tag == b"O" else self.err
                    target.write(data)
                    target.flush()
            except KeyboardInterrupt:
                interrupted += 1
                if self.detach or interrupted > 1:
                    self.say(
                        f"stopped following; the experiment goes on on {self.ssh.host} "
                        f"(session {self.session}). Run the script again or 'partita status "
                        f"{self.workdir.url}' to follow it."
                    )
                    stream.close()
                    return 130
                self.say(
                    f"interrupting the experiment on {self.ssh.host} "
                    "(Ctrl-C again to stop following)"
                )
                stream.write(b"INT\n")


def run_remote(workdir: SSHWorkdir, name: str, *, detach: bool) -> None:
    """Run this script's experiment on the remote host; exit with its exit code."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    remote = RemoteExperiment(workdir, name, detach=detach)
    code = remote.run()
    stats = os.environ.get("PARTITA_SSH_STATS")
    if stats:
        # How many SSH commands and connections this side used (for benchmarks/ssh.py).
        conn = remote.connection
        Path(stats).write_text(json.dumps({"commands": conn.commands, "connects": conn.connects}))
    workdir.ssh.close()
    raise SystemExit(code)
