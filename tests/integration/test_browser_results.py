"""Reported results in the web monitor, in a real browser (headless Chromium, Playwright).

A sweep reports an accuracy and a loss curve per job; a slow job reports its loss in two
bursts, waiting for the test between them. The test reads the results as columns of the
jobs table and sorts by one, watches the slow job's loss plot grow while it runs (the
plot has the right number of points at each stage), and draws the comparison view (one
line per seed, one point per learning rate).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from xputil import BROWSER, ROOT, browser_page

pytestmark = [*BROWSER, pytest.mark.timeout(150)]

EXPERIMENT = """\
import os, sys, time
from pathlib import Path
import partita
from partita import Task, Param, Meta, experiment, tag

class Train(Task, id="viz.train"):
    lr: Param[float]
    seed: Param[int]
    def execute(self):
        for step in range(1, 4):
            partita.report(loss=1.0 / (step * self.seed))
        partita.report(accuracy=round(1 - self.lr * self.seed, 4))

def wait_for(folder, name):
    path = Path(folder) / name
    deadline = time.time() + 120
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)

class Slow(Task, id="viz.slow"):
    lr: Param[float]
    folder: Meta[str]
    def execute(self):
        for step in range(1, 6):
            partita.report(loss=1.0 / step)
        wait_for(self.folder, "more")
        for step in range(6, 11):
            partita.report(loss=1.0 / step)
        wait_for(self.folder, "finish")
        partita.report(accuracy=0.5)

with experiment(sys.argv[1], "viz", max_jobs=8, grace_period=2):
    for lr in (0.1, 0.01, 0.001):
        for seed in (1, 2):
            Train(lr=tag(lr), seed=tag(seed)).submit()
    Slow(lr=tag(0.5), folder=sys.argv[2]).submit()
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Path, subprocess.Popen[str]]]:
    """The monitor on a work directory while the experiment runs."""
    from partita.web import start_in_thread
    from partita.workspace import Workspace

    workdir = tmp_path / "wd"
    Workspace(workdir)
    script = tmp_path / "viz.py"
    script.write_text(EXPERIMENT)
    monitor = start_in_thread(workdir)
    process = subprocess.Popen(
        [sys.executable, str(script), str(workdir), str(tmp_path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield monitor.url, workdir, tmp_path, process
    finally:
        (tmp_path / "more").touch()
        (tmp_path / "finish").touch()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        monitor.stop()


def test_results_in_the_monitor(served: tuple[str, Path, Path, subprocess.Popen[str]]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    expect.set_options(timeout=30_000)
    url, workdir, folder, process = served
    errors: list[str] = []
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with browser_page(
        errors, 20_000, viewport={"width": 1360, "height": 900}, color_scheme="light"
    ) as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # plotly.js also carries a stylesheet for map traces (unused here), added as a
        # <style> with content: the policy refuses it. Record where refusals come from.
        page.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', (e) =>"
            " window.__violations.push([e.violatedDirective, e.sourceFile]));"
        )
        page.goto(url)
        expect(page.locator("#live")).to_have_text("live")

        # Reported values are columns of the jobs table; a click sorts by one.
        trains = page.locator('tr[data-type="viz.train"]')
        expect(trains).to_have_count(6)
        accuracies = page.locator('tr[data-type="viz.train"] td[data-result="accuracy"]')
        expect(accuracies).to_have_text([re.compile(r"^0\.\d+$")] * 6)
        page.locator('th[data-sort="result:accuracy"]').click()
        cells = page.locator('tr[data-type="viz.train"] td[data-result="accuracy"]')
        expect(cells.first).to_have_text("0.8")  # 1 - 0.1 * 2, the lowest first
        page.locator('th[data-sort="result:accuracy"]').click()
        expect(cells.first).to_have_text("0.999")
        expect(page.locator('th[data-sort="result:accuracy"]')).to_have_attribute(
            "aria-sort", "descending"
        )

        # The slow job's page: its loss curve has the 5 points reported so far...
        slow = page.locator('tr[data-type="viz.slow"]')
        expect(slow.locator(".badge")).to_have_text("running")
        slow.locator("a").click()
        expect(page.locator("h1")).to_have_text("viz.slow")
        plot = page.locator('.series-plot[data-name="loss"]')
        points = plot.locator(".scatterlayer .trace path.point")
        expect(points).to_have_count(5)
        expect(plot).to_have_attribute("data-points", "5")
        # ... and grows while the job runs, without reloading the page.
        page.evaluate("window.__sameDocument = true")
        (folder / "more").touch()
        expect(points).to_have_count(10)
        expect(page.locator(".page-head .badge")).to_have_text("running")
        assert page.evaluate("window.__sameDocument"), "the page was reloaded"
        page.screenshot(path=str(artifacts / "monitor-series.png"), full_page=True)
        (folder / "finish").touch()
        expect(page.locator(".page-head .badge")).to_have_text("done")
        expect(page.locator('#results dd[data-result="accuracy"]')).to_have_text("0.5")
        expect(points).to_have_count(10)
        (slow_folder,) = (workdir / "jobs" / "viz.slow").iterdir()
        reported = json.loads((slow_folder / "results.json").read_text())
        assert 10 == len(reported["series"]["loss"])

        # The comparison view of a selection: accuracy against lr, one line per seed.
        page.goto(url.split("?")[0].rstrip("/") + "/?task=viz.train")
        page.locator("#compare").click()
        expect(page.locator("h1")).to_have_text("Compare")
        page.locator("#compare-metric").select_option("accuracy")
        page.locator("#compare-x").select_option("lr")
        page.locator("#compare-by").select_option("seed")
        chart = page.locator("#compare-plot")
        expect(chart).to_have_attribute("data-traces", "2")
        expect(chart.locator(".scatterlayer .trace")).to_have_count(2)
        expect(chart.locator(".scatterlayer .trace path.point")).to_have_count(6)
        expect(chart.locator(".legend")).to_contain_text("seed=1")
        expect(chart.locator(".legend")).to_contain_text("seed=2")
        assert "metric=accuracy" in page.url and "by=seed" in page.url
        page.screenshot(path=str(artifacts / "monitor-compare.png"), full_page=True)
        violations = page.evaluate("window.__violations")
    process.wait(30)
    assert 0 == process.returncode, process.stderr.read() if process.stderr else ""
    refused = [e for e in errors if e.startswith("Applying inline style violates")]
    assert len(refused) <= 2, refused  # the map stylesheet, once per document (two here)
    assert all(
        d == "style-src-elem" and f.endswith("/static/vendor/plotly.min.js") for d, f in violations
    ), violations
    assert [] == [e for e in errors if e not in refused], errors
