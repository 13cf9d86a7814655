"""Helpers of the integration tests: experiment scripts run in real processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Headless Chromium for the monitor's browser tests, and the flags that keep it off the
#: network (this machine's closed network refuses its background connections).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
#: The marks of a test that drives the monitor in Chromium (see :func:`browser_page`).
BROWSER = [pytest.mark.browser, NEEDS_CHROMIUM]

PRELUDE = """\
import os, sys, time, json
from pathlib import Path
import partita
from partita import Task, Config, Param, Meta, Constant, field, PathGenerator, experiment, tag
"""


class Script:
    """An experiment script written to a folder, run with this interpreter."""

    def __init__(self, folder: Path, name: str, body: str) -> None:
        self.folder = folder
        self.path = folder / f"{name}.py"
        self.path.write_text(PRELUDE + textwrap.dedent(body))

    def run(
        self,
        *args: str,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, str(self.path), *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(self.path), *args],
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )


def job_dirs(workdir: Path, type_id: str) -> list[Path]:
    """Job folders of one task type."""
    folder = workdir / "jobs" / type_id
    return sorted(folder.iterdir()) if folder.exists() else []


def peak_concurrency(spans: list[list[float]]) -> int:
    """Most ``[start, end]`` intervals open at the same time."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def wait_for(
    condition: Callable[[], Any], timeout: float = 60, what: str = "", interval: float = 0.05
) -> Any:
    """Call ``condition()`` until it returns a true value, and return that value.

    Fails the test after ``timeout`` seconds, naming ``what`` it waited for.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")


def job_printing(workdir: Path, type_id: str, text: str) -> Path | None:
    """The first job folder of ``type_id`` whose stdout has ``text`` (None: none yet)."""
    for folder in job_dirs(workdir, type_id):
        out = folder / "stdout"
        if out.exists() and text in out.read_text():
            return folder
    return None


def launcher_stats(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON object a script printed last: its launcher's command counts and batches."""
    value: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return value


#: The token of the monitors the tests start with :func:`monitor`.
MONITOR_TOKEN = "test-token-0123456789"


@contextlib.contextmanager
def monitor(workdir: Path, token: str = MONITOR_TOKEN) -> Iterator[Any]:
    """The web monitor of ``workdir`` as a Starlette test client, already logged in.

    Skips the test when the ``web`` extra (starlette) is not installed.
    """
    pytest.importorskip("starlette")
    with warnings.catch_warnings():  # "install httpx2 instead": httpx is what we have
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from partita.web import create_app

    with TestClient(create_app(workdir, token=token)) as client:
        assert 200 == client.get(f"/?token={token}").status_code
        yield client


@contextlib.contextmanager
def browser_page(errors: list[str], timeout_ms: float = 30_000, **options: Any) -> Iterator[Any]:
    """A new page of headless Chromium kept off the network (``options``: of ``new_page``).

    The page's uncaught script errors are appended to ``errors``; Playwright actions wait
    ``timeout_ms`` at most. Skips the test when Playwright is not installed.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(**options)
            page.set_default_timeout(timeout_ms)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            yield page
        finally:
            browser.close()
