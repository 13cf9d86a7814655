"""Services an experiment runs beside its jobs: a TensorBoard, a small file server, ...

``xp.add_service(service)`` starts a service inside ``with partita.experiment(...) as xp``;
the experiment stops it when it ends, however it ends (done, failed, Ctrl-C). The run
records its services (``RunPaths.services``): ``partita status`` lists those running, with
their addresses, and the web monitor links them from the run's page.

:class:`Service` is the interface (``start()``, ``stop()``, ``url``); :class:`CommandService`
runs a command in a process group of its own, on a free port if it asks for one
(``{port}`` in its arguments), and counts as started once that port accepts connections;
:class:`TensorboardService` is one for TensorBoard. See docs/services.md.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from partita.errors import ServiceError

__all__ = ["CommandService", "Service", "TensorboardService", "free_port"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
#: How many lines of a service's output a start failure quotes.
TAIL_LINES = 20


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` that nothing listens on now (the system picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Service:
    """Something that runs while an experiment runs, reachable at :attr:`url`.

    Subclass it and define :meth:`start` (return once the service works; raise
    :class:`partita.errors.ServiceError` saying why when it cannot) and :meth:`stop`
    (idempotent). The experiment calls them; it passes the file for the service's output
    in :attr:`log` before :meth:`start`.

    Args:
        name: how ``partita status`` and the monitor call it (letters, digits, ``_``,
            ``-``, ``.``); unique in an experiment.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ServiceError(
                f"service name: expected letters, digits, '_', '-' or '.', found {name!r}. "
                "Use e.g. name='tensorboard'."
            )
        self.name = name
        #: Where the service writes its output (set by the experiment before ``start()``).
        self.log: Path | None = None

    @property
    def url(self) -> str | None:
        """The service's address (``None`` when it has none)."""
        return None

    @property
    def pid(self) -> int | None:
        """The process serving it, when it is one of its own (``None`` otherwise)."""
        return None

    def start(self) -> None:
        """Start the service; return once it serves."""
        raise NotImplementedError(f"{type(self).__qualname__} does not define start().")

    def stop(self) -> None:
        """Stop the service (and everything it started). Called once it started."""

    def describe(self) -> dict[str, Any]:
        """What the run records about it (JSON-able): ``partita status`` shows it."""
        return {"name": self.name, "url": self.url, "kind": type(self).__qualname__}

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name} {self.url or ''}>".replace(" >", ">")


class CommandService(Service):
    """A command run as a service, in a process group of its own.

    ``{port}`` and ``{host}`` in ``command`` (a list of arguments, or one string split like
    a shell does) and in ``url`` are replaced by the port and host: a free port of
    ``host`` is picked unless ``port`` is given. With a port, the service counts as started
    once the port accepts connections (within ``ready_timeout`` seconds); without, once
    its process started. If its process ends first, or the port never answers,
    :class:`partita.errors.ServiceError` names the command and quotes the end of its
    output. Its output goes to the run folder (``services/<name>.log``).

    When it stops, its process group gets SIGTERM, and SIGKILL after ``grace`` seconds.
    A small guard process leads that group: when the experiment's process dies without
    stopping it (SIGKILL, a crash), the guard ends the group the same way.

    Args:
        command: the program and its arguments.
        name: the service's name (default: the program's name).
        port: the port it listens on (default: a free one, if ``{port}`` is used).
        host: the address it listens on (default ``127.0.0.1``: this machine only).
        url: its address (default ``http://{host}:{port}/`` when it has a port).
        ready_timeout: seconds to wait for the port to answer.
        grace: seconds between SIGTERM and SIGKILL when stopping it.
        cwd: its working directory (default: the experiment's).
        env: environment variables added to the experiment's.
    """

    def __init__(
        self,
        command: Sequence[str] | str,
        *,
        name: str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        url: str | None = None,
        ready_timeout: float = 30.0,
        grace: float = 5.0,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        args = shlex.split(command) if isinstance(command, str) else list(command)
        if not args or not all(isinstance(a, str | os.PathLike) for a in args):
            raise ServiceError(
                f"CommandService(command): expected a program and its arguments (strings), "
                f"found {command!r}. Use e.g. ['python', '-m', 'http.server', '{{port}}']."
            )
        super().__init__(name if name is not None else Path(str(args[0])).name)
        if port is not None and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
        ):
            raise ServiceError(
                f"CommandService(port=...): expected a TCP port (1-65535), found {port!r}. "
                "Leave it out to get a free port in '{port}'."
            )
        for what, value in (("ready_timeout", ready_timeout), ("grace", grace)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ServiceError(
                    f"CommandService({what}=...): expected seconds >= 0, found {value!r}."
                )
        self._template = [os.fspath(a) for a in args]
        self._wants_port = port is not None or any("{port}" in a for a in self._template)
        self._port = port
        self.host = host
        self._url = url
        self.ready_timeout = float(ready_timeout)
        self.grace = float(grace)
        self.cwd = cwd
        self.env = dict(env or {})
        self.command: list[str] = list(self._template)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int | None:
        """The port it listens on (known once started, or given)."""
        return self._port

    @property
    def url(self) -> str | None:
        if self._port is None and (self._url is None or "{port}" in self._url):
            return None
        if self._url is not None:
            return _fill(self._url, {"host": self.host, "port": str(self._port)})
        return f"http://{_url_host(self.host)}:{self._port}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "command": self.command, "port": self._port}

    def start(self) -> None:
        if self._process is not None:
            return
        if self._wants_port and self._port is None:
            self._port = free_port(self.host)
        values = {"port": "" if self._port is None else str(self._port), "host": self.host}
        self.command = [_fill(a, values) for a in self._template]
        if self._port is not None and _answers(_connect_host(self.host), self._port):
            raise ServiceError(
                f"service {self.name!r}: expected port {self._port} of {self.host} to be free "
                f"for {shlex.join(self.command)}, found another program listening on it. "
                "Choose another port, or leave port= out to get a free one."
            )
        output: Any = subprocess.DEVNULL
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            output = open(self.log, "ab")  # noqa: SIM115 - handed to the process, closed below
        env = {**os.environ, **self.env}
        try:
            if not _runnable(self.command[0], env.get("PATH"), self.cwd):
                raise FileNotFoundError(errno.ENOENT, "no such program")
            # The guard leads the service's process group: it runs the command, and ends
            # the whole group when told to or when this process dies (docs/services.md).
            guard = [sys.executable, "-c", GUARD, str(os.getpid()), str(self.grace), "--"]
            self._process = subprocess.Popen(
                guard + self.command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            if output is not subprocess.DEVNULL:
                output.close()
                output = subprocess.DEVNULL
            raise ServiceError(
                f"service {self.name!r}: cannot run {shlex.join(self.command)}: "
                f"{exc.strerror or exc}. Check that the program is installed and on PATH."
            ) from None
        finally:
            if output is not subprocess.DEVNULL:
                output.close()
        if self._port is not None:
            self._wait_ready()
        elif self._process.poll() is not None:
            self._failed(f"exited at once with status {self._process.returncode}")

    def _wait_ready(self) -> None:
        assert self._process is not None and self._port is not None
        deadline = time.monotonic() + self.ready_timeout
        delay = 0.02
        while True:
            if self._process.poll() is not None:
                self._failed(f"exited with status {self._process.returncode} before it served")
            if _answers(_connect_host(self.host), self._port):
                return
            if time.monotonic() > deadline:
                self.stop()
                self._failed(
                    f"did not accept connections on port {self._port} within "
                    f"{self.ready_timeout:g} s (raise ready_timeout if it starts slowly)"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _failed(self, what: str) -> None:
        self.stop()
        tail = _tail(self.log) if self.log is not None else ""
        quoted = f"; its output ends with:\n{tail}" if tail else " (it printed nothing)"
        where = f" Full output: {self.log}." if self.log is not None and tail else ""
        raise ServiceError(
            f"service {self.name!r} ({shlex.join(self.command)}) {what}{quoted}\n"
            f"Fix the command, or run it by hand to see why.{where}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process.pid, signal.SIGKILL)  # what it left behind, too
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class TensorboardService(CommandService):
    """TensorBoard on ``logdir``, on a free port of this machine (needs ``tensorboard``).

    Args:
        logdir: the folder of event files (e.g. ``WORKDIR/jobs``: every job's logs).
        name: its name (default ``tensorboard``).
        port: its port (default: a free one).
        host: the address it listens on (default ``127.0.0.1``).
        ready_timeout: seconds to wait for it to answer (TensorBoard starts slowly).
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        name: str = "tensorboard",
        port: int | None = None,
        host: str = "127.0.0.1",
        ready_timeout: float = 120.0,
    ) -> None:
        program = shutil.which("tensorboard")
        if program is None:
            raise ServiceError(
                "TensorboardService: expected the 'tensorboard' program, found none on PATH. "
                "Install it (pip install tensorboard) in the experiment's environment."
            )
        super().__init__(
            [program, "--logdir", os.fspath(logdir), "--host", "{host}", "--port", "{port}"],
            name=name,
            port=port,
            host=host,
            ready_timeout=ready_timeout,
        )


def _fill(argument: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        argument = argument.replace("{" + key + "}", value)
    return argument


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _connect_host(host: str) -> str:
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 8192))
            data = file.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").rstrip().splitlines()[-TAIL_LINES:]
    return "\n".join("  " + line for line in lines)


def _runnable(program: str, path: str | None, cwd: str | os.PathLike[str] | None) -> bool:
    """Whether ``program`` names a file that can be run (looked up on ``path`` if bare)."""
    if os.sep in program or (os.altsep and os.altsep in program):
        full = Path(cwd or ".", program) if not os.path.isabs(program) else Path(program)
        return full.is_file() and os.access(full, os.X_OK)
    return shutil.which(program, path=path) is not None


#: The leader of a service's process group, run as ``python -c GUARD PARENT GRACE -- CMD``.
#: Standard library only (it starts in a few milliseconds): it runs the command in its
#: group, exits with its status, and on SIGTERM, or when the experiment's process
#: ``PARENT`` is gone (told by the parent-death signal on Linux, seen by its parent
#: changing elsewhere), ends the group: SIGTERM, SIGKILL after GRACE seconds.
GUARD = r"""
import os, signal, subprocess, sys
parent, grace, command = int(sys.argv[1]), float(sys.argv[2]), sys.argv[4:]
stopping = False
def kill(*_):
    os.killpg(0, signal.SIGKILL)
def stop(*_):
    global stopping
    if stopping:
        return
    stopping = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, kill)
    signal.setitimer(signal.ITIMER_REAL, max(grace, 0.01))
    try:
        os.killpg(0, signal.SIGTERM)
    except OSError:
        pass
signal.signal(signal.SIGTERM, stop)
linux = sys.platform == "linux"
if linux:
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except Exception:
        linux = False
if os.getppid() != parent:
    sys.exit(1)
try:
    child = subprocess.Popen(command)
except OSError as exc:
    print(f"cannot run {command[0]}: {exc.strerror or exc}", file=sys.stderr)
    sys.exit(127)
while True:
    try:
        code = child.wait(timeout=None if linux else 0.5)
        break
    except subprocess.TimeoutExpired:
        if os.getppid() != parent:
            stop()
if stopping:
    kill()
sys.exit(code if code >= 0 else 128 - code)
"""


class Services:
    """The services of one experiment run: started in order, stopped in reverse, recorded.

    Args:
        paths: the run folder (its ``services.json`` and ``services/`` logs).
    """

    def __init__(self, paths: Any) -> None:
        self.paths = paths
        self._started: list[tuple[Service, dict[str, Any]]] = []
        self._stopped: list[dict[str, Any]] = []

    @property
    def running(self) -> list[Service]:
        """The services started and not yet stopped."""
        return [service for service, _ in self._started]

    def add(
        self, service: Service, *, running: bool, dry_run: bool, say: Callable[[str], None]
    ) -> Service:
        """``xp.add_service(service)``: start it in a running experiment, say so (``say``).

        A dry run starts nothing; a failure is raised marked as explained (printed without
        partita's traceback).
        """
        from partita._experiment_signals import install_excepthook, reported

        if not running:
            raise ServiceError(
                "add_service: expected a running experiment, found one that is not. "
                "Add services inside 'with partita.experiment(...) as xp:'."
            )
        if dry_run:
            if not isinstance(service, Service):
                raise ServiceError(
                    f"add_service: expected a partita Service, found {type(service).__name__}."
                )
            say(f"dry run: would start the service {service.name!r}")
            return service
        try:
            self.start(service)
        except ServiceError as exc:  # said plainly, without partita's internals
            install_excepthook()
            raise reported(exc) from None
        say(f"service {service.name!r}" + (f": {service.url}" if service.url else " started"))
        return service

    def start(self, service: Service) -> Service:
        """Start ``service`` now (raises :class:`ServiceError` when it cannot)."""
        if not isinstance(service, Service):
            raise ServiceError(
                f"add_service: expected a partita Service (e.g. CommandService([...]) or "
                f"TensorboardService(logdir)), found {type(service).__name__}."
            )
        if any(s is service for s, _ in self._started):
            return service
        names = [s.name for s, _ in self._started] + [e["name"] for e in self._stopped]
        if service.name in names:
            raise ServiceError(
                f"add_service: this experiment already has a service named {service.name!r}. "
                "Give each service its own name (name=...)."
            )
        from partita.workspace import identity

        if service.log is None:
            service.log = self.paths.service_log(service.name)
        started = time.time()
        service.start()
        pid = service.pid
        entry = {
            **service.describe(),
            **(identity(pid) if pid is not None else {}),
            "owner": identity(),
            "state": "running",
            "started": started,
            "stopped": None,
            "log": str(service.log),
        }
        self._started.append((service, entry))
        self._record()
        return service

    def stop_all(self) -> list[str]:
        """Stop every service, the last started first; what went wrong, if anything."""
        problems = []
        while self._started:
            service, entry = self._started.pop()
            try:
                service.stop()
            except Exception as exc:
                problems.append(f"service {service.name!r} did not stop cleanly: {exc}")
            self._stopped.append({**entry, "state": "stopped", "stopped": time.time()})
            self._record()
        return problems

    def _record(self) -> None:
        from partita.workspace import write_services

        entries = [entry for _, entry in self._started] + self._stopped
        try:
            write_services(self.paths, entries)
        except OSError:
            pass  # the services run all the same; only ``partita status`` misses them
