"""The monitor's job view in a real browser: a job's pre-tasks and its energy."""

from __future__ import annotations

import os
import textwrap

import pytest
from xputil import BROWSER, browser_page, job_dirs

pytestmark = [*BROWSER, pytest.mark.timeout(120)]

METER = """
def start(folder):
    class Meter:
        def stop(self):
            return {"energy_kwh": 0.0025, "cpu_energy_kwh": 0.002, "ram_energy_kwh": 0.0005,
                    "emissions_kg": 0.0011, "meter": "fake 1.0"}
    return Meter()
"""


def test_job_view_shows_pretasks_and_energy(script) -> None:  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    from partita.web import start_in_thread

    xp = script("""
    class SetSeed(Config, id="bv.seed"):
        seed: Param[int]
        def execute(self):
            pass

    class Work(Task, id="bv.work"):
        lr: Param[float] = 0.1
        def execute(self):
            pass

    with experiment("wd", "bv"):
        Work().add_pretasks(SetSeed(seed=42)).submit()
    """)
    (xp.folder / "fakemeter.py").write_text(textwrap.dedent(METER))
    path = os.pathsep.join(p for p in (str(xp.folder), os.environ.get("PYTHONPATH", "")) if p)
    result = xp.run(env={"PYTHONPATH": path, "PARTITA_ENERGY_METER": "fakemeter"})
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "bv.work")
    monitor = start_in_thread(xp.folder / "wd")
    errors: list[str] = []
    try:
        with browser_page(errors) as page:
            page.goto(monitor.url)  # takes the token
            page.goto(monitor.url.split("/?")[0] + f"/jobs/{folder.name}")
            expect = sync_api.expect
            overview = page.locator("dl.kv")
            expect(overview).to_contain_text(
                "2.5 Wh (cpu 2 Wh, ram 500 mWh) · 1.1 g CO₂eq · fake 1.0", timeout=30_000
            )
            pretasks = page.locator(".pretasks")
            expect(pretasks).to_contain_text("Pre-tasks (1)")
            expect(pretasks).to_contain_text("bv.seed")
            expect(pretasks).to_contain_text("42")
    finally:
        monitor.stop()
    assert [] == errors
