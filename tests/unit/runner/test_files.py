"""YAML config files: values, includes, cycles, syntax errors, the missing extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rclasses import Setup

from partita.errors import RunnerError
from partita.runner._files import load_files
from partita.runner._resolve import build, from_files, from_overrides

pytest.importorskip("yaml")


def resolve(files: list[Path], *overrides: str) -> Setup:
    layers, _ = load_files([str(f) for f in files])
    config = build(Setup, from_files(Setup, layers) + from_overrides(Setup, list(overrides)))
    assert isinstance(config, Setup)
    return config


def test_values_nested_and_dotted(tmp_path: Path) -> None:
    paper = tmp_path / "paper.yaml"
    paper.write_text("C: [1, 10]\nmodel:\n  layers: 4\nmodel.width: 1e-3\ncolor: BLUE\n")
    config = resolve([paper], "seeds=5")
    assert [1.0, 10.0] == config.C and 4 == config.model.layers
    assert 0.001 == config.model.width  # PyYAML reads 1e-3 as a str: the field type decides
    assert "BLUE" == config.color.name and 5 == config.seeds


def test_overrides_win_over_files_and_files_over_includes(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("kernel: linear\nseeds: 7\nmodel: {layers: 9}\n")
    (tmp_path / "more.yml").write_text("seeds: 8\n")
    paper = tmp_path / "paper.yaml"
    paper.write_text("defaults: [base, more]\nseeds: 3\n")
    config = resolve([paper])
    assert ("linear", 3, 9) == (config.kernel, config.seeds, config.model.layers)
    assert 4 == resolve([paper], "seeds=4").seeds
    first = tmp_path / "first.yaml"
    first.write_text("defaults: [_self_, base]\nseeds: 3\n")
    assert 7 == resolve([first]).seeds  # _self_ first: the include wins
    included = tmp_path / "inc.yaml"
    included.write_text("include: sub/x.yaml\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("kernel: poly\n")
    assert "poly" == resolve([included]).kernel


def test_every_file_read_is_returned_with_its_text(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("seeds: 7\n")
    (tmp_path / "paper.yaml").write_text("include: base.yaml\n")
    _, files = load_files([str(tmp_path / "paper.yaml")])
    expected = {str(tmp_path / "paper.yaml"): "include: base.yaml\n"}
    expected[str(tmp_path / "base.yaml")] = "seeds: 7\n"
    assert expected == {f["path"]: f["text"] for f in files}


def test_include_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a\n")
    with pytest.raises(RunnerError, match=r"in a loop: .*a\.yaml → .*b\.yaml → .*a\.yaml"):
        load_files([str(tmp_path / "a.yaml")])


def test_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: 3\nmodel:\n  layers: [1, 2\nkernel: x\n")
    with pytest.raises(RunnerError) as caught:
        load_files([str(bad)])
    assert f"{bad}, line " in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 1\n- 2\n", "expected a mapping"),
        ("seeds: abc\n", "seeds: expected int, found str 'abc'"),
        ("kernal: x\n", "Did you mean 'kernel'?"),
        ("model:\n  layer: 3\n", "Did you mean 'model.layers'?"),
        ("include: 3\n", "must be a file name or a list"),
        ("include: nothere.yaml\n", "does not exist"),
    ],
)
def test_wrong_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(RunnerError, match=message.replace("[", r"\[").replace("(", r"\(")):
        resolve([path])


def test_without_pyyaml_the_hint_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    (tmp_path / "x.yaml").write_text("seeds: 3\n")
    with pytest.raises(RunnerError, match=r"pip install 'partita\[runner\]'"):
        load_files([str(tmp_path / "x.yaml")])


def test_a_number_for_a_text_field_says_how_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("kernel: 5\n")
    with pytest.raises(RunnerError, match="quote it to make it a text: kernel: '5'"):
        resolve([path])
