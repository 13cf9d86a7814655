"""Energy per job: a meter (codecarbon, or any module with the small interface) measures the
job in its process; without one nothing is imported and nothing waits."""

from __future__ import annotations

import importlib.util
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from xputil import job_dirs, monitor

from partita.analysis import result_rows
from partita.cli import cli
from partita.workspace import JobPaths, read_job_environment


def _recorded(folder: Path) -> dict[str, Any]:
    """What the job recorded about its run (with its final state, in state.json)."""
    environment = read_job_environment(JobPaths(folder))
    assert [] == environment.pop("damage")
    return environment


BODY = """
import threading

class Work(Task, id="energy.work"):
    n: Param[int] = 1
    def execute(self):
        print("codecarbon imported:", "codecarbon" in sys.modules, flush=True)
        print("threads:", sorted(t.name for t in threading.enumerate()), flush=True)
        sum(i * i for i in range(200_000))

with experiment("wd", "energy"):
    for n in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        Work(n=n).submit()
"""

FAKE = """
import json, os

class Meter:
    def __init__(self, folder):
        self.folder = folder
        with open(os.path.join(folder, "meter-started"), "w") as f:
            json.dump({"pid": os.getpid(), "cwd": os.getcwd()}, f)
    def stop(self):
        if os.environ.get("FAKE_METER_FAILS"):
            raise RuntimeError("no RAPL counters")
        return {"energy_kwh": 0.0025, "cpu_energy_kwh": 0.002, "gpu_energy_kwh": 0.0,
                "ram_energy_kwh": 0.0005, "emissions_kg": 0.0011, "country": "FRA",
                "meter": "fake 1.0", "ignored": "x"}

def start(folder):
    return Meter(folder)
"""


def _with_fake(folder: Path, **extra: str) -> dict[str, str]:
    (folder / "fakemeter.py").write_text(textwrap.dedent(FAKE))
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PARTITA_ENERGY_METER": "fakemeter", **extra}


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_a_meter_records_energy_everywhere(script, isolation: str) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    result = xp.run("2", env=_with_fake(xp.folder, PARTITA_ISOLATION=isolation))
    assert 0 == result.returncode, result.stderr
    wd = xp.folder / "wd"
    folders = job_dirs(wd, "energy.work")
    assert 2 == len(folders)
    for folder in folders:
        started = json.loads((folder / "meter-started").read_text())
        assert str(folder) == started["cwd"]  # in the job's own process, in its folder
        environment = _recorded(folder)
        assert started["pid"] == environment["pid"]
        assert {
            "energy_kwh": 0.0025,
            "cpu_energy_kwh": 0.002,
            "gpu_energy_kwh": 0.0,
            "ram_energy_kwh": 0.0005,
            "emissions_kg": 0.0011,
            "country": "FRA",
            "meter": "fake 1.0",
        } == environment["energy"]
    short = folders[0].name[:12]
    text = CliRunner().invoke(cli, ["jobs", "show", short, "-w", str(wd)]).stdout
    line = next(line for line in text.splitlines() if line.startswith("energy "))
    assert "2.5 Wh (cpu 2 Wh, gpu 0, ram 500 mWh), 1.1 g CO2eq  [fake 1.0]" in line
    shown = json.loads(
        CliRunner().invoke(cli, ["jobs", "show", short, "-w", str(wd), "--json"]).stdout
    )
    assert 0.0025 == shown["environment"]["energy"]["energy_kwh"]
    table = result_rows(wd)
    assert ["energy_kwh", "emissions_kg"] == table.columns[-2:]
    assert [0.0025, 0.0025] == [row["energy_kwh"] for row in table.rows]
    assert [0.0011, 0.0011] == [row["emissions_kg"] for row in table.rows]


def test_monitor_job_view_has_the_energy(script) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    assert 0 == xp.run(env=_with_fake(xp.folder)).returncode
    wd = xp.folder / "wd"
    (folder,) = job_dirs(wd, "energy.work")
    with monitor(wd, token="t0ken") as client:
        detail = client.get(f"/api/jobs/{folder.name}").json()
        assert 0.0011 == detail["environment"]["energy"]["emissions_kg"]
        script_js = client.get("/static/app.js").text
        assert 'row("Energy", energy)' in script_js


def test_a_failing_meter_never_fails_the_job(script) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    result = xp.run(env=_with_fake(xp.folder, FAKE_METER_FAILS="1"))
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "energy.work")
    assert (folder / "done").exists()
    energy = _recorded(folder)["energy"]
    assert {"error": "RuntimeError: no RAPL counters"} == energy
    text = CliRunner().invoke(cli, ["jobs", "show", folder.name[:12], "-w", str(folder.parents[2])])
    assert "not measured (RuntimeError: no RAPL counters)" in text.stdout


@pytest.mark.skipif(
    importlib.util.find_spec("codecarbon") is not None, reason="codecarbon is installed here"
)
def test_without_a_meter_nothing_is_imported_or_started(script) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    result = xp.run()
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "energy.work")
    out = (folder / "stdout").read_text()
    assert "codecarbon imported: False" in out
    assert "partita-energy" not in out
    assert "energy" not in _recorded(folder)
    assert "" == (folder / "stderr").read_text()


def test_partita_energy_0_turns_a_meter_off(script) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    assert 0 == xp.run(env=_with_fake(xp.folder, PARTITA_ENERGY="0")).returncode
    (folder,) = job_dirs(xp.folder / "wd", "energy.work")
    assert not (folder / "meter-started").exists()
    assert "energy" not in _recorded(folder)


#: An environment with partita[energy] (scripts/test makes it): codecarbon is kept out of the
#: main test environment, where it would measure every job of the suite.
ENERGY_PYTHON = (
    Path(os.environ.get("PARTITA_ENERGY_VENV", Path(__file__).parents[2] / ".venv-energy"))
    / "bin"
    / "python"
)


@pytest.mark.energy
@pytest.mark.skipif(not ENERGY_PYTHON.exists(), reason=f"needs {ENERGY_PYTHON} (scripts/test)")
def test_codecarbon_measures_offline_and_writes_nothing_outside(script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    xp = script(BODY)
    home = tmp_path / "home"
    home.mkdir()
    result = xp.run(env={"HOME": str(home)}, timeout=180, python=str(ENERGY_PYTHON))
    assert 0 == result.returncode, result.stderr
    (folder,) = job_dirs(xp.folder / "wd", "energy.work")
    energy = _recorded(folder)["energy"]
    assert energy["meter"].startswith("codecarbon ")
    assert energy["energy_kwh"] > 0
    assert energy["emissions_kg"] > 0
    assert [] == list(home.iterdir())  # no file in the home folder
    assert "codecarbon" not in (folder / "stderr").read_text()  # nothing printed
    assert not list(folder.glob("*.csv"))
