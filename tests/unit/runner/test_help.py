"""Field help from docstrings, the script's --help, and ``partita docs check``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from rclasses import Model, Setup

from partita import Config, Param, field, fields
from partita.cli import cli
from partita.runner._help import describe_fields, field_help, help_text, section_docs


def test_google_and_numpy_sections() -> None:
    assert {"layers": "How many layers.", "width": "Width of each layer."} == section_docs(Model)

    class Numpy:
        """Summary.

        Parameters
        ----------
        lr : float
            The learning
            rate.
        steps : int
            Steps.

        Notes
        -----
        Not a field.
        """

    assert {"lr": "The learning rate.", "steps": "Steps."} == section_docs(Numpy)


def test_attribute_docstrings_come_first() -> None:
    by_name = {f.name: f for f in fields(Setup)}
    assert "Regularisation values to try." == field_help(by_name["C"])
    assert "" == field_help(by_name["kernel"])
    assert "How many layers." == field_help({f.name: f for f in fields(Model)}["layers"])


def test_help_lists_nested_fields_with_types_and_defaults() -> None:
    text = help_text("python xp.py", "digits", Setup)
    assert "Digits sweep." in text
    assert "model.layers" in text and "How many layers." in text
    assert "list[float]; default [0.1, 1.0]" in text
    assert "version" in text and "(cannot be set)" in text


def test_docs_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "research"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        textwrap.dedent(
            '''
            from partita import Config, Param

            class Good(Config, id="research.good"):
                """Documented.

                Attributes:
                    a: The a.
                """
                a: Param[int] = 1
                b: Param[int] = 2
                """The b."""

            class Bad(Config, id="research.bad"):
                c: Param[int] = 1
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["docs", "check", "research"])
    assert 1 == result.exit_code, result.output
    assert "research.models.Bad: no docstring" in result.output
    assert "research.models.Bad.c: no documentation" in result.output
    assert "Good" not in result.output
    assert "2 config classes, 3 fields: 2 undocumented" in result.output
    good = CliRunner().invoke(cli, ["docs", "check", "research.models", "--json"])
    assert '"research.models.Good"' in good.output
    missing = CliRunner().invoke(cli, ["docs", "check", "nowhere_at_all"])
    assert 1 == missing.exit_code and "cannot import 'nowhere_at_all'" in missing.output
    sys.modules.pop("research.models", None)
    sys.modules.pop("research", None)


class Counted(Config, id="help.counted"):
    """Counted defaults."""

    seed: Param[int] = field(default=0, count_default=True)
    lr: Param[float] = 0.1


def test_a_counted_default_is_described_as_counting() -> None:
    by_name = {f.name: f for f in fields(Counted)}
    assert by_name["seed"].count_default and not by_name["lr"].count_default
    assert "the default counts toward the identity" in repr(by_name["seed"])
    assert "counts" not in repr(by_name["lr"])
    docs = {d.path: d for d in describe_fields(Counted)}
    assert docs["seed"].count_default and not docs["lr"].count_default
    text = help_text("python xp.py", "counted", Counted)
    assert "int; default 0 (the default counts toward the identity)" in text
    assert text.count("counts toward the identity") == 1


class _Need(Config, id="rt.help.need"):
    """Needs a value."""

    n: Param[int]


class _Wide(Config, id="rt.help.wide"):
    """A nested config whose default is not the class's defaults."""

    model: Param[Model] = field(default_factory=lambda: Model(layers=4))
    need: Param[_Need] = field(default_factory=lambda: _Need(n=3))


def test_help_shows_the_defaults_of_the_nested_default_instance() -> None:
    """`model=Model(layers=4)` as the default: --help says model.layers defaults to 4 (what
    --show resolves), not the class's 2; a field the instance sets is not 'required'."""
    docs = {d.path: d for d in describe_fields(_Wide)}
    assert 4 == docs["model.layers"].default
    assert 3 == docs["need.n"].default and not docs["need.n"].required
    text = help_text("python xp.py", "wide", _Wide)
    assert "int; default 4" in text and "required" not in text
    # The class alone (docs check, Sphinx) keeps the class's own defaults.
    assert 2 == {d.path: d for d in describe_fields(Model)}["layers"].default


def test_help_without_a_configuration_offers_no_key_value() -> None:
    text = help_text("python xp.py", "plain", None)
    assert "usage: python xp.py [-w DIR]" in text
    assert "KEY=VALUE  " not in text and "--config FILE" not in text
    assert "takes no configuration" in text and "--workdir" in text
