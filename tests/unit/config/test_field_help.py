"""Field.help: one rule, read by partita.fields(), --help, docs check and Sphinx alike."""

from __future__ import annotations

import partita
from partita import Config, Param, field
from partita.runner._help import field_help


class Net(Config, id="help.net"):
    """A network.

    Attributes:
        depth (int): How deep
            it goes.
        width: Ignored: the attribute docstring wins.
        dropout: Ignored: help= wins.
    """

    depth: Param[int] = 2
    width: Param[int] = 8
    """Units per layer."""
    dropout: Param[float] = field(default=0.0, help="Drop probability.")
    bias: Param[bool] = True


class Wider(Net, id="help.wider"):
    """A wider network (its inherited fields keep the help of Net)."""

    extra: Param[int] = 1


class Solver(Config, id="help.solver"):
    """A NumPy-style docstring.

    Arguments
    ---------
    tol : float
        Stop below this
        change.
    """

    tol: Param[float] = 1e-3


def test_help_follows_one_rule_in_the_config_layer() -> None:
    helps = {f.name: f.help for f in partita.fields(Net)}
    assert helps == {
        "depth": "How deep it goes.",
        "width": "Units per layer.",
        "dropout": "Drop probability.",
        "bias": "",
    }
    assert {f.name: f.help for f in partita.fields(Wider)}["depth"] == "How deep it goes."
    assert partita.fields(Solver)[0].help == "Stop below this change."


def test_the_runner_reads_the_same_help() -> None:
    for cls in (Net, Wider, Solver):
        for f in partita.fields(cls):
            assert field_help(f) == f.help
