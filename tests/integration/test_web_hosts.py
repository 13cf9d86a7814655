"""The monitor answers only to the host names it listens on (DNS-rebinding defence)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

pytest.importorskip("starlette")

from partita.web import start_in_thread
from partita.web._app import HostCheck
from partita.web._server import listening_names
from partita.workspace import Workspace

pytestmark = pytest.mark.timeout(60)


def _get(url: str, host: str | None) -> httpx.Response:
    headers = {"host": host} if host is not None else {}
    return httpx.get(url, headers=headers, timeout=10)


def test_requests_naming_another_host_are_refused(tmp_path: Path) -> None:
    Workspace(tmp_path / "wd")
    monitor = start_in_thread(tmp_path / "wd")
    try:
        port = monitor.port
        base = f"http://127.0.0.1:{port}"
        info = f"{base}/api/info?token={monitor.token}"
        assert 200 == _get(info, None).status_code
        assert 200 == _get(info, f"127.0.0.1:{port}").status_code
        assert 200 == _get(info, f"localhost:{port}").status_code
        assert 200 == _get(info, f"LOCALHOST.:{port}").status_code
        for bad in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", ""):
            refused = _get(info, bad)
            assert 421 == refused.status_code, bad
            assert "answers to 127.0.0.1" in refused.json()["error"]
        page = _get(f"{base}/?token={monitor.token}", f"evil.example:{port}")
        assert 421 == page.status_code
        assert "set-cookie" not in page.headers  # nothing is handed to the other site
        # The WebSocket handshake is refused too.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(
                (
                    f"GET /ws?token={monitor.token} HTTP/1.1\r\nHost: evil.example:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "\r\n"
                ).encode()
            )
            status_line = conn.recv(200).split(b"\r\n", 1)[0]
        assert b" 101 " not in status_line, status_line
    finally:
        monitor.stop()


def test_names_of_the_listening_address() -> None:
    loopback = HostCheck(listening_names("127.0.0.1"))
    assert loopback.accepts("127.0.0.1:8080") and loopback.accepts("[::1]:8080")
    assert loopback.accepts("localhost")
    assert not loopback.accepts("10.1.2.3:8080") and not loopback.accepts(None)
    everywhere = HostCheck(listening_names("0.0.0.0"))
    assert everywhere.accepts("10.1.2.3:8080") and everywhere.accepts("[fe80::1]:80")
    assert everywhere.accepts(f"{socket.gethostname()}:8080")
    assert not everywhere.accepts("evil.example:8080")
    one = HostCheck(listening_names("192.168.7.7"))
    assert one.accepts("192.168.7.7:1") and not one.accepts("localhost:1")
