"""Choosing launchers from a rules file, and parsing resources."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from partita.errors import LauncherError, LauncherOptionError
from partita.launchers import LocalLauncher, Resources
from partita.launchers.finder import LauncherFinder, rules_file
from partita.launchers.resources import parse_duration, parse_memory

RULES = """
from partita import LocalLauncher
big = LocalLauncher(8)
def find_launcher(needs, task):
    if needs.cpus and needs.cpus > 4:
        return big, "more than 4 cpus"
    if needs.time and needs.time > 3600:
        return big
    return None
"""


def test_rules_choose_by_resources(tmp_path: Path) -> None:
    """find_launcher sees the parsed resources; None means the local default."""
    path = tmp_path / "launchers.py"
    path.write_text(RULES)
    finder = LauncherFinder(path)
    choice = finder.choose(Resources.parse({"cpus": 8}), object())
    assert isinstance(choice.launcher, LocalLauncher)
    assert 8 == choice.launcher.max_jobs
    assert "more than 4 cpus" == choice.why
    long = finder.choose(Resources.parse({"time": "2h"}), object())
    assert long.launcher is choice.launcher
    assert str(path) in long.why
    assert finder.choose(Resources(), object()).launcher is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = 1\n", "must define find_launcher"),
        ("def find_launcher(needs, task):\n    return 3\n", "expected a Launcher"),
        ("raise RuntimeError('broken')\n", "raised RuntimeError"),
    ],
)
def test_bad_rules_files(tmp_path: Path, body: str, message: str) -> None:
    """A rules file that cannot work gives an error naming the file and the problem."""
    path = tmp_path / "launchers.py"
    path.write_text(body)
    with pytest.raises(LauncherError, match=message):
        LauncherFinder(path).choose(Resources(), object())


def test_rules_file_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$PARTITA_LAUNCHERS wins; else $XDG_CONFIG_HOME/partita/launchers.py if it exists."""
    monkeypatch.delenv("PARTITA_LAUNCHERS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert rules_file() is None
    (tmp_path / "partita").mkdir()
    (tmp_path / "partita" / "launchers.py").write_text(RULES)
    assert tmp_path / "partita" / "launchers.py" == rules_file()
    monkeypatch.setenv("PARTITA_LAUNCHERS", str(tmp_path / "missing.py"))
    with pytest.raises(LauncherError, match="does not exist"):
        rules_file()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("1h30m", 5400),
        ("10min", 600),
        ("01:30:00", 5400),
        ("1-00:00:00", 86400),
        (5, 300),
        (timedelta(minutes=2), 120),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    """Durations accept units, Slurm's clock forms, minutes and timedeltas."""
    assert seconds == parse_duration(text)


def test_memory_and_errors() -> None:
    """Memory sizes accept units (and MiB ints); bad values and keys are refused clearly."""
    assert 16 * 2**30 == parse_memory("16G")
    assert 512 * 2**20 == parse_memory(512)
    with pytest.raises(LauncherOptionError, match="expected a size"):
        parse_memory("lots")
    with pytest.raises(LauncherOptionError, match="expected a duration"):
        parse_duration("soon")
    with pytest.raises(LauncherOptionError, match="unknown key"):
        Resources.parse({"memory": "1G"})
    assert {"cpus": 2, "mem": 2**30} == Resources.parse({"cpus": 2, "mem": "1G"}).to_dict()
