"""``@experiment_main`` imported as a module: ``.main(argv)`` runs it in this process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rclasses import Fit, Setup

from partita import experiment_main
from partita.runner import ExperimentMain
from partita.testing import Done, FakeLauncher


def make(tmp_path: Path, seen: list[Any]) -> ExperimentMain[Any]:
    fake = FakeLauncher({"rt.fit": [Done()]})

    @experiment_main("inproc", workdir=tmp_path / "wd", launcher=fake, quiet=True)
    def main(xp: Any, cfg: Setup) -> None:
        seen.append(cfg)
        for C in cfg.C:
            Fit(C=C).submit()

    return main


def test_main_runs_records_and_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[Any] = []
    main = make(tmp_path, seen)
    assert isinstance(main, ExperimentMain) and Setup is main.config_class
    assert 0 == main.main(["C=[3]", "-m", "kernel=a,b"])
    assert ["a", "b"] == [cfg.kernel for cfg in seen]
    runs = sorted((tmp_path / "wd" / "experiments" / "inproc" / "runs").iterdir())
    records = [json.loads((run / "config.json").read_text()) for run in runs]
    assert [{"kernel": "a"}, {"kernel": "b"}] == sorted(
        (r["tags"] for r in records), key=lambda t: t["kernel"]
    )
    assert all(["C=[3]", "kernel=a,b"] == r["overrides"] for r in records)
    assert str(Path(__file__).parent / "test_main.py") == records[0]["script"]
    assert 2 == main.main(["seeds=x"])
    assert "error: override 'seeds=x'" in capsys.readouterr().err
    assert 0 == main.main(["--show", "C=[]", "kernel="])
    out = capsys.readouterr().out
    assert "C: []\n" in out and 'kernel: ""\n' in out
    assert 2 == len(runs)  # --show and errors record nothing
    assert 2 == len(list((tmp_path / "wd" / "experiments" / "inproc" / "runs").iterdir()))


def test_a_function_without_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[Any] = []

    @experiment_main("bare", workdir=tmp_path / "wd", quiet=True)
    def main(xp: Any) -> None:
        calls.append(xp.name)

    assert 0 == main.main([])
    assert ["bare"] == calls
    assert 2 == main.main(["x=1"])
    assert "takes no configuration" in capsys.readouterr().err


def test_the_hint_for_a_text_with_a_comma_works_in_a_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kernel='a,b'` typed in a shell arrives as kernel=a,b: the hint must survive the shell."""
    import re
    import shlex

    seen: list[Any] = []
    main = make(tmp_path, seen)
    typed = shlex.split("C=[3] kernel='a,b'")  # what a shell passes on
    assert 2 == main.main(typed)
    err = capsys.readouterr().err
    hint = re.search(r"quote it inside shell quotes: (.+)\.$", err.strip())
    assert hint is not None, err
    assert 0 == main.main(["C=[3]", *shlex.split(hint.group(1))])  # the hint, through a shell
    assert ["a,b"] == [cfg.kernel for cfg in seen]


def test_help_names_the_command_that_started_the_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main = make(tmp_path, [])
    monkeypatch.setattr("sys.argv", ["examples/xp.py"])
    monkeypatch.delenv("PARTITA_RUN_SCRIPT", raising=False)
    assert 0 == main.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python xp.py [KEY=VALUE ...]")
    # Started by `partita run examples/xp.py`, which names the script it starts.
    monkeypatch.setenv("PARTITA_RUN_SCRIPT", "examples/xp.py")
    assert 0 == main.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: partita run xp.py [KEY=VALUE ...]")
    # A script that the started one runs in turn inherits the variable, not the name.
    monkeypatch.setattr("sys.argv", ["other.py"])
    assert 0 == main.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python other.py ")
