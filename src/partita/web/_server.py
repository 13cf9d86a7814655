"""Running the monitor: in the foreground (``serve``) or in a background thread."""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from partita.web._app import create_app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno,
            f"partita monitor: cannot listen on {host}:{port}: {exc.strerror}. "
            "Choose another port (0 picks a free one).",
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?token={token}"


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def listening_names(host: str) -> list[str]:
    """The host names a monitor listening on ``host`` answers to (``Host`` header).

    A loopback address answers to the loopback names; a wildcard address (``0.0.0.0``)
    to those, this machine's names and any IP address; another address to itself.
    """
    if host in ("0.0.0.0", "::", ""):
        names = [*_LOOPBACK, host or "0.0.0.0", socket.gethostname(), socket.getfqdn()]
    elif host in _LOOPBACK or host.startswith("127."):
        names = [*_LOOPBACK, host]
    else:
        names = [host]
    return names


def _server(workdir: str | os.PathLike[str], token: str, host: str) -> uvicorn.Server:
    app = create_app(workdir, token=token, hosts=listening_names(host))
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        ws_ping_interval=20,
        # The feed's first snapshot of a large work directory is tens of MB of JSON; the
        # browser and the server agree on permessage-deflate (about 7x smaller on the wire).
        ws_per_message_deflate=True,
    )
    return uvicorn.Server(config)


def serve(workdir: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve the monitor of ``workdir`` until Ctrl-C; prints its address (with the token).

    ``port=0`` picks a free port. Binding another host than 127.0.0.1 exposes the monitor
    (still behind its token) to the network: prefer an SSH tunnel.
    """
    token = secrets.token_urlsafe(24)
    server = _server(workdir, token, host)
    sock = _bind(host, port)
    print(
        f"partita monitor: {_url(host, sock.getsockname()[1], token)}", file=sys.stderr, flush=True
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


class Monitor:
    """A monitor running in a background thread (see :func:`start_in_thread`)."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, url: str, token: str) -> None:
        self._server = server
        self._socket = sock
        self.url = url
        """The address to open, with the token."""
        self.token = token
        self.port: int = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="partita-monitor", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start()
            self._error = exc

    def _start(self, timeout: float) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"partita monitor did not start: {self._error or 'timed out'}")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread (at most ``timeout`` seconds)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._socket.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Monitor({self.url!r})"


def start_in_thread(
    workdir: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0
) -> Monitor:
    """Start the monitor of ``workdir`` in a daemon thread; ``.url`` has the token."""
    token = secrets.token_urlsafe(24)
    server = _server(workdir, token, host)
    sock = _bind(host, port)
    monitor = Monitor(server, sock, _url(host, sock.getsockname()[1], token), token)
    monitor._start(timeout=15.0)
    return monitor
