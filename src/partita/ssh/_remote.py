"""The remote side of a remote experiment: ``python -m partita.ssh._remote COMMAND``.

Runs on the SSH host, next to the work directory, and uses the standard library only.

``start``
    Reads one JSON line (the session's spec) on stdin, unpacks shipped code, starts
    ``wrap`` detached from the SSH session (a new session, stdin from /dev/null), then
    follows it like ``follow``.
``follow SESSION_DIR OUT_OFFSET ERR_OFFSET``
    Streams the experiment's stdout and stderr from the given byte offsets as frames
    (``O <n>\\n`` + n bytes, ``E <n>\\n`` + n bytes) and ends with ``X <exit code>\\n``
    once the experiment has exited. A line ``INT`` (or ``TERM``) on stdin sends that
    signal to the experiment; the end of stdin ends the follower only.
``wrap SESSION_DIR``
    Runs the experiment script with its output in the session folder, records its pid,
    then its exit code (``exit``, written atomically once it has exited).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

#: Bumped whenever the frames or the spec change; the laptop and the host must agree.
PROTOCOL = 1

#: The experiment script's output and error streams, in its session folder.
OUT, ERR = "out.log", "err.log"

#: Folder of the work directory that holds shipped code and remote sessions (hidden, so
#: that the work directory layout is unchanged).
SSH_FOLDER = ".partita-ssh"


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie has exited.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def unpack(workdir: Path, archives: list[str]) -> None:
    """Extract each shipped ``code/<hash>.tar`` into ``code/<hash>/`` (once)."""
    for relative in archives:
        target = workdir / relative
        if target.is_dir():
            continue
        archive = target.with_name(target.name + ".tar")
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        with tarfile.open(archive) as tar:
            tar.extractall(temporary, filter="data")
        try:
            os.rename(temporary, target)
        except OSError:
            if not target.is_dir():
                raise


def start(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Unpack, start the experiment detached, then follow it."""
    spec: dict[str, Any] = json.loads(stdin.readline())
    workdir = Path(spec["workdir"])
    unpack(workdir, spec.get("archives", []))
    session = workdir / SSH_FOLDER / "sessions" / spec["session"]
    session.mkdir(parents=True, exist_ok=True)
    _write_atomic(session / "spec.json", json.dumps(spec))
    for name in (OUT, ERR):
        (session / name).touch()
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "partita.ssh._remote", "wrap", str(session)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(session / "wrapper.log", "ab"),  # noqa: SIM115
        start_new_session=True,
        close_fds=True,
    )
    _write_atomic(session / "wrapper.pid", str(wrapper.pid))
    return follow(session, 0, 0, stdin, stdout)


def wrap(session: Path) -> int:
    """Run the experiment script; record its pid, then its exit code."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec: dict[str, Any] = json.loads((session / "spec.json").read_text())
    workdir = Path(spec["workdir"])
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    paths = [str(workdir / p) for p in spec.get("paths", [])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PARTITA_SSH_HERE"] = "1"
    env["PARTITA_SSH_SESSION"] = str(session)
    script = str(workdir / spec["script"])
    with open(session / OUT, "ab") as out, open(session / ERR, "ab") as err:
        try:
            child = subprocess.Popen(
                [spec.get("python") or sys.executable, script, *spec.get("argv", [])],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=os.path.dirname(script),
                env=env,
                # The script gets Ctrl-C as SIGINT from the follower; it must not inherit
                # the wrapper's ignored SIGINT.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        except OSError as exc:
            err.write(f"partita: cannot start {script}: {exc.strerror}\n".encode())
            _write_atomic(session / "exit", json.dumps({"code": 127}))
            return 127
        _write_atomic(session / "pid", str(child.pid))
        code = child.wait()
    if code < 0:
        code = 128 + (-code)
    _write_atomic(session / "exit", json.dumps({"code": code, "time": time.time()}))
    return 0


def _control(session: Path, stdin: BinaryIO) -> None:
    """Forward INT/TERM lines to the experiment; the end of stdin ends this follower."""
    for line in iter(stdin.readline, b""):
        name = line.strip().decode(errors="replace")
        if name in ("INT", "TERM"):
            try:
                pid = int((session / "pid").read_text())
                os.kill(pid, getattr(signal, f"SIG{name}"))
            except (OSError, ValueError):
                pass
    os._exit(0)


def follow(
    session: Path, out_offset: int, err_offset: int, stdin: BinaryIO, stdout: BinaryIO
) -> int:
    """Stream the session's output from the given offsets until its exit code is known."""
    threading.Thread(target=_control, args=(session, stdin), daemon=True).start()
    files = [(b"O", open(session / OUT, "rb")), (b"E", open(session / ERR, "rb"))]  # noqa: SIM115
    files[0][1].seek(out_offset)
    files[1][1].seek(err_offset)
    wrapper_pid = int((session / "wrapper.pid").read_text())
    exit_file = session / "exit"
    idle = 0.01

    def pump() -> bool:
        moved = False
        for tag, handle in files:
            data = handle.read(1 << 16)
            if data:
                stdout.write(tag + b" %d\n" % len(data) + data)
                moved = True
        if moved:
            stdout.flush()
        return moved

    while True:
        if pump():
            idle = 0.01
            continue
        if exit_file.exists():
            while pump():
                pass
            code = json.loads(exit_file.read_text())["code"]
            stdout.write(b"X %d\n" % code)
            stdout.flush()
            return 0
        if not _alive(wrapper_pid) and not exit_file.exists():
            while pump():
                pass
            message = b"partita: the remote experiment ended without an exit status\n"
            stdout.write(b"E %d\n" % len(message) + message + b"X 255\n")
            stdout.flush()
            return 0
        time.sleep(idle)
        idle = min(idle * 2, 0.2)


def main(argv: list[str]) -> int:
    """Entry point: ``start``, ``follow`` or ``wrap``."""
    command = argv[0] if argv else ""
    if command == "start":
        return start(sys.stdin.buffer, sys.stdout.buffer)
    if command == "follow":
        return follow(
            Path(argv[1]), int(argv[2]), int(argv[3]), sys.stdin.buffer, sys.stdout.buffer
        )
    if command == "wrap":
        return wrap(Path(argv[1]))
    sys.stderr.write(f"usage: python -m partita.ssh._remote start|follow|wrap, not {argv!r}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
