"""KEY=VALUE overrides: parsing, typing against the config class, sweeps, errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Generic, TypeVar

import pytest
from rclasses import Color, Model, Needs, Setup

from partita import Config, Param, field
from partita.errors import RunnerError
from partita.runner._main import dump_yaml, parse_arguments
from partita.runner._resolve import (
    build,
    check_sweepable,
    combinations,
    from_overrides,
    to_plain,
)
from partita.runner._values import Seq, Text, parse_value


def resolve(*overrides: str) -> Setup:
    config = build(Setup, from_overrides(Setup, list(overrides)))
    assert isinstance(config, Setup)
    return config


def test_defaults() -> None:
    config = resolve()
    assert [0.1, 1.0] == config.C
    assert "rbf" == config.kernel and 2 == config.model.layers


def test_values_are_typed_by_their_field() -> None:
    config = resolve(
        "C=[1,10]", "kernel=5", "seeds=3", "model.layers=4", "model.width=2", "name=null",
        "color=BLUE", "flag=true", "out=/tmp/x", "pair=[2, b]", "weights={a: 1, b: 0.5}",
        "device=cuda:0",
    )  # fmt: skip
    assert [1.0, 10.0] == config.C and all(type(c) is float for c in config.C)
    assert "5" == config.kernel  # a str field takes the text as typed
    assert 3 == config.seeds and 4 == config.model.layers and 2.0 == config.model.width
    assert config.name is None and Color.BLUE is config.color and config.flag is True
    assert Path("/tmp/x") == config.out and (2, "b") == config.pair
    assert {"a": 1.0, "b": 0.5} == config.weights and "cuda:0" == config.device


def test_quotes_keep_text() -> None:
    assert "null" == resolve("name='null'").name
    assert "a,b" == resolve('kernel="a,b"').kernel
    assert math.isinf(resolve("model.width=inf").model.width)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("C=abc", "C: expected list[float], found str 'abc'"),
        ("C=abc", "Write a list in brackets, each a float: [a, b]."),  # not "e.g. [abc]"
        ("C=3", "Write a list in brackets, e.g. [3]."),
        ("seeds=1.5", "seeds: expected int, found float 1.5"),
        ("seeds=x", "seeds: expected int, found str 'x'"),
        ("flag=maybe", "flag: expected bool"),
        ("kernal=linear", "Did you mean 'kernel'?"),
        ("model.layer=3", "Did you mean 'model.layers'?"),
        ("model.layer=3", "Model (at 'model') has no field 'layer'."),
        ("model.zzz=3", "Model (at 'model') has no field 'zzz'. Its fields are: layers, width"),
        ("kernel.x=3", "kernel is a str, not a config"),
        ("version=2", "version is a Constant"),
        ("color=GREEN", "expected one of RED, BLUE, found 'GREEN'"),
        ("seeds", "expected KEY=VALUE"),
        ("C=[1,2", "expected ',' or ']'"),
        ("kernel='abc", "missing closing '"),
        ("seeds=range(0,x)", "expected range(stop)"),
        ("seeds=range(3,3)", "is empty"),
        ("pair=[1]", "Give exactly 2 items"),
    ],
)
def test_wrong_overrides_are_refused(override: str, message: str) -> None:
    with pytest.raises(RunnerError) as caught:
        resolve(override)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"override {override!r}")


def test_a_missing_required_field_is_a_runner_error() -> None:
    with pytest.raises(RunnerError, match="steps"):
        build(Needs, from_overrides(Needs, []))
    assert 3 == build(Needs, from_overrides(Needs, ["steps=3"])).steps  # type: ignore[attr-defined]


def test_sweeps() -> None:
    assert [Text("a"), Text("b"), Text("c")] == parse_value("a,b,c", "x")
    assert [Text("0"), Text("2"), Text("4")] == parse_value("range(0,6,2)", "x")
    assert [Seq((Text("1"), Text("2"))), Seq((Text("3"),))] == parse_value("[1,2],[3]", "x")
    assignments = from_overrides(Setup, ["kernel=linear,rbf", "seeds=range(2)", "flag=true"])
    check_sweepable(Setup, assignments, multirun=True)
    combos = combinations(assignments)
    assert 4 == len(combos)
    picked = [(c[0].values[0], c[1].values[0]) for c in combos]
    assert [("linear", 0), ("linear", 1), ("rbf", 0), ("rbf", 1)] == picked
    assert all(not a.is_sweep for combo in combos for a in combo)


def test_a_sweep_needs_multirun_and_a_sweepable_field() -> None:
    with pytest.raises(RunnerError, match="Add --multirun"):
        check_sweepable(Setup, from_overrides(Setup, ["kernel=a,b"]), multirun=False)
    with pytest.raises(RunnerError, match="--multirun cannot sweep"):
        check_sweepable(Setup, from_overrides(Setup, ["weights={a: 1},{b: 2}"]), multirun=True)


def test_later_values_win_and_a_whole_config_replaces_its_fields() -> None:
    assert "b" == resolve("kernel=a", "kernel=b").kernel
    assert 5 == resolve("model.layers=3", "model.layers=5").model.layers


def test_resolved_values_round_trip_through_the_shown_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    config = resolve("C=[1,10]", "model.layers=4", "name=null", "kernel=yes")
    plain = to_plain(config)
    assert plain == yaml.safe_load(dump_yaml(plain))
    assert {"layers": 4, "width": 1.0} == plain["model"]


def test_arguments() -> None:
    args = parse_arguments(["a=1", "--config", "x.yaml", "-m", "--show", "-w=wd", "--", "-b=2"])
    assert ["a=1", "-b=2"] == args.overrides and ["x.yaml"] == args.files
    assert args.multirun and args.show and "wd" == args.workdir
    with pytest.raises(RunnerError, match="Did you mean --multirun"):
        parse_arguments(["--multirn"])
    with pytest.raises(RunnerError, match="needs a value"):
        parse_arguments(["--config"])


def test_nested_model_default_is_not_shared() -> None:
    first, second = resolve("model.layers=7"), resolve()
    assert 7 == first.model.layers and 2 == second.model.layers
    assert isinstance(first.model, Model)


_T = TypeVar("_T")


class _Box(Config, Generic[_T], id="rt.ov.box"):
    item: Param[_T]


class _Shelf(Config, id="rt.ov.shelf"):
    box: Param[_Box[int]] = field(default_factory=lambda: _Box[int](item=1))
    n: Param[int] = 0


def test_a_value_refused_when_the_config_is_built_names_its_override() -> None:
    """`box.item` of a `Box[int]` is checked when the Box is built: the error still names
    the override that gave the value, like a conversion error."""
    with pytest.raises(RunnerError) as caught:
        build(_Shelf, from_overrides(_Shelf, ["n=2", "box.item=x", "n=3"]))
    text = str(caught.value)
    assert text.startswith("override 'box.item=x': "), text
    assert "expected int, found str 'x'" in text


def test_a_sweep_without_multirun_is_said_before_its_values_are_converted() -> None:
    """`C=3,x` for a list: the user gave two values; say so (and how to write one list),
    not that 3 is not a list."""
    with pytest.raises(RunnerError) as caught:
        from_overrides(Setup, ["C=3,x"], multirun=False)
    text = str(caught.value)
    assert "C is given 2 values (a sweep)" in text and "write it in brackets: C=[3,x]" in text
    with pytest.raises(RunnerError, match=r"quote it inside shell quotes: \"kernel='a,b'\""):
        from_overrides(Setup, ["kernel=a,b"], multirun=False)
    with pytest.raises(RunnerError, match="Did you mean 'kernel'"):
        from_overrides(Setup, ["kernl=a,b"], multirun=False)
    assert 2 == len(from_overrides(Setup, ["kernel=a,b"], multirun=True)[0].values)
