"""The web monitor in a real browser (headless Chromium driven by Playwright).

An experiment runs in a subprocess while the monitor serves its work directory; the test
watches a job go from running to done without reloading, reads its log, kills another job
with the button and saves screenshots in test-artifacts/ (and, with
PARTITA_UPDATE_SCREENSHOT=1, docs/images/monitor.png for the README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from xputil import BROWSER, ROOT, browser_page

pytestmark = [*BROWSER, pytest.mark.timeout(120)]

EXPERIMENT = """\
import sys, time
import partita
from partita import Task, Param, Meta, experiment, tag

class Prepare(Task, id="mnist.prepare"):
    dataset: Param[str]
    def execute(self):
        for i in range(3):
            print(f"downloading shard {i + 1}/3", flush=True)
            time.sleep(0.1)

class Train(Task, id="mnist.train", shared={"checkpoints": ("steps",)}):
    data: Param[Prepare]
    lr: Param[float]
    steps: Param[int] = 12
    delay: Meta[float] = 0.25
    def execute(self):
        for step in range(1, self.steps + 1):
            time.sleep(self.delay)
            print(f"step {step}/{self.steps} loss={1.0 / step:.4f}", flush=True)
            partita.progress(step / self.steps, f"step {step}/{self.steps}")

class Evaluate(Task, id="mnist.evaluate"):
    model: Param[Train]
    def execute(self):
        print("accuracy 0.981", flush=True)

class Export(Task, id="mnist.export"):
    model: Param[Train]
    def execute(self):
        raise RuntimeError("ONNX export: unsupported operator 'gelu'")

class Sweep(Task, id="mnist.sweep"):
    def execute(self):
        print("searching", flush=True)
        while True:
            time.sleep(0.1)

with experiment(sys.argv[1], "mnist", max_jobs=8, grace_period=2):
    data = Prepare(dataset="mnist").submit(transient=True)
    quick = Train(data=data, lr=tag(0.001)).submit()
    Evaluate(model=quick).submit()
    Export(model=quick).submit()
    slow = Train(data=data, lr=tag(0.01), steps=600, delay=0.1).submit()
    Evaluate(model=slow).submit()
    Train(data=data, lr=tag(0.1), steps=400, delay=0.1).submit()
    Sweep().submit()
"""


@pytest.fixture
def artifacts() -> Path:
    folder = ROOT / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def monitored(
    tmp_path: Path,
) -> Iterator[tuple[str, Path, Callable[[], subprocess.Popen[str]]]]:
    """A monitor on a fresh work directory, and a function starting the experiment."""
    from partita.web import start_in_thread
    from partita.workspace import Workspace

    workdir = tmp_path / "wd"
    Workspace(workdir)
    script = tmp_path / "mnist.py"
    script.write_text(EXPERIMENT)
    monitor = start_in_thread(workdir)
    process: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        process.append(
            subprocess.Popen(
                [sys.executable, str(script), str(workdir)],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        return process[0]

    try:
        yield monitor.url, workdir, start
    finally:
        for p in process:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        monitor.stop()


def test_monitor_in_a_browser(
    monitored: tuple[str, Path, Callable[[], subprocess.Popen[str]]], artifacts: Path
) -> None:
    """Live states and progress, the log of a job, kill from the button, screenshots."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    # Assertions wait for their condition: 5 s (the default) is short on a loaded machine,
    # where starting the experiment and its first jobs alone can take longer.
    expect.set_options(timeout=30_000)
    url, workdir, start = monitored
    errors: list[str] = []
    with browser_page(
        errors, 20_000, viewport={"width": 1360, "height": 720}, color_scheme="light"
    ) as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sockets: list[list[dict[str, Any]]] = []  # the messages of each WebSocket, in order

        def on_socket(socket: Any) -> None:
            frames: list[dict[str, Any]] = []
            sockets.append(frames)
            socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

        page.on("websocket", on_socket)

        # The printed address: the token goes into a cookie and out of the address bar.
        page.goto(url)
        expect(page.locator("#live")).to_have_text("live")
        assert "token" not in page.url
        expect(page.locator(".empty")).to_contain_text("No jobs yet")
        page.evaluate("window.__sameDocument = true")

        xp = start()
        quick = page.locator('tr[data-type="mnist.train"]', has_text="lr=0.001")
        expect(quick.locator(".badge")).to_have_text("running")
        expect(quick.locator(".track .fill")).to_have_attribute("style", re.compile(r"width: \d"))
        expect(quick.locator(".badge")).to_have_text("done")
        assert page.evaluate("window.__sameDocument"), "the page was reloaded"
        failed = page.locator('tr[data-type="mnist.export"] .badge')
        expect(failed).to_have_text("failed")
        # The transient input is marked in the table; the other jobs are not.
        prepare = page.locator('tr[data-type="mnist.prepare"]')
        expect(prepare.locator(".transient")).to_have_text("transient")
        expect(page.locator('tr[data-transient="1"]')).to_have_count(1)
        expect(quick.locator(".transient")).to_have_count(0)

        # Its page: params, dependencies, the shared folder, and the log.
        quick.locator("a").click()
        expect(page.locator("h1")).to_have_text("mnist.train")
        expect(page.locator("pre.log")).to_contain_text("step 12/12 loss=0.0833")
        expect(page.locator(".params")).to_contain_text("lr")
        shared = page.locator('.shared-list li[data-group="checkpoints"]')
        expect(shared).to_have_count(1)
        expect(shared).to_contain_text(str(workdir / "shared" / "mnist.train" / "checkpoints"))
        expect(page.locator(".page-head .transient")).to_have_count(0)
        page.locator('.tab[data-stream="stderr"]').click()
        expect(page.locator("pre.log")).to_contain_text("No output on stderr")
        page.go_back()
        # The transient job's page says so, beside its state.
        prepare.locator("a").click()
        expect(page.locator("h1")).to_have_text("mnist.prepare")
        expect(page.locator(".page-head .transient")).to_have_text("transient")
        expect(page.locator(".kv")).to_contain_text("kept only while a job that is not done")
        page.go_back()

        # Kill the endless job with its button (and the confirmation).
        sweep = page.locator('tr[data-type="mnist.sweep"]')
        expect(sweep.locator(".badge")).to_have_text("running")
        sweep.locator('[data-action="kill"]').click()
        expect(page.locator("#confirm")).to_be_visible()
        expect(page.locator("#confirm-title")).to_contain_text("mnist.sweep")
        page.locator("#confirm-ok").click()
        expect(sweep.locator(".badge")).to_have_text("cancelled")
        (folder,) = (workdir / "jobs" / "mnist.sweep").iterdir()
        assert (folder / "cancelled").exists()
        assert page.evaluate("window.__sameDocument"), "the page was reloaded"

        # The connection drops: the page reconnects, says what it holds, and gets only
        # what changed meanwhile (an update, not a snapshot); progress goes on live.
        held = page.evaluate("(() => { const v = feed.version; feed.socket.close(); return v; })()")
        deadline = time.monotonic() + 30
        while len(sockets) < 2 or not sockets[1]:
            assert time.monotonic() < deadline, "the page did not reconnect"
            page.wait_for_timeout(50)
        first = sockets[1][0]
        assert ("update", held) == (first["type"], first["since"]), first
        slow = page.locator('tr[data-type="mnist.train"]', has_text="lr=0.01").first
        before = slow.locator(".pct").inner_text()
        expect(slow.locator(".pct")).not_to_have_text(before)
        updates = [m for m in sockets[1] if m["type"] == "update"]
        assert all(len(m["changed"]) < 8 for m in updates[1:]), "updates carry changes only"
        assert [m["type"] for m in sockets[1]].count("snapshot") == 0

        # The jobs page, for the README: some running with progress, some finished.
        expect(slow.locator(".pct")).to_have_text(
            re.compile(r"^(1[0-9]|[2-9][0-9])%$"), timeout=30_000
        )
        page.mouse.move(0, 0)
        page.evaluate("document.getElementById('toasts').replaceChildren()")
        bottom = page.evaluate("document.querySelector('main').getBoundingClientRect().bottom")
        clip = {"x": 0, "y": 0, "width": 1360, "height": min(720, int(bottom) - 12)}
        page.screenshot(path=str(artifacts / "monitor-jobs.png"), clip=clip)
        if os.environ.get("PARTITA_UPDATE_SCREENSHOT") == "1":  # refresh the README's image
            images = ROOT / "docs" / "images"
            images.mkdir(parents=True, exist_ok=True)
            shutil.copy(artifacts / "monitor-jobs.png", images / "monitor.png")

        # Filters: by state and by tag, from the toolbar.
        page.locator('.chip[data-state="running"]').click()
        expect(page.locator("tbody tr")).to_have_count(2)
        page.locator('.chip[data-state="all"]').click()
        tag_input = page.get_by_placeholder("Tag: name=value")
        tag_input.fill("lr=0.1")
        tag_input.press("Enter")
        expect(page.locator("tbody tr")).to_have_count(1)
        assert "tag=lr%3D0.1" in page.url
        page.get_by_text("Clear filters").click()
        expect(page.locator("tbody tr")).to_have_count(8)

        # Stop the experiment; its run page draws the dependency graph.
        xp.send_signal(signal.SIGINT)
        xp.wait(30)
        page.emulate_media(color_scheme="dark")
        page.locator('nav a[data-nav="experiments"]').click()
        page.locator("tr.link").first.click()
        expect(page.locator("svg.graph g.node")).to_have_count(8)
        expect(page.locator("svg.graph path.edge")).to_have_count(6)
        expect(page.locator(".page-head .badge")).not_to_have_text("running")
        page.evaluate("document.getElementById('toasts').replaceChildren()")
        page.screenshot(path=str(artifacts / "monitor-run-dark.png"), full_page=True)
    assert [] == errors
