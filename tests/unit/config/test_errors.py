"""One test per error of the config layer: its type, its builtin base and its message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfgclasses import Concat, Node, Say, Train, Typed, Value, VersionOne

from partita import Config, Param, identifier
from partita.config import freeze
from partita.errors import (
    ConfigDefinitionError,
    ConfigError,
    ConfigTypeError,
    ConstantFieldError,
    CycleError,
    EncodingError,
    FrozenConfigError,
    MissingFieldError,
    NoExperimentError,
    PartitaError,
    PendingPathError,
    TaskImportError,
    UnknownFieldError,
)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (ConfigDefinitionError, TypeError),
        (ConfigTypeError, TypeError),
        (MissingFieldError, TypeError),
        (UnknownFieldError, TypeError),
        (ConstantFieldError, AttributeError),
        (FrozenConfigError, AttributeError),
        (CycleError, ValueError),
        (EncodingError, ValueError),
        (PendingPathError, AttributeError),
        (TaskImportError, ImportError),
    ],
)
def test_error_is_a_partita_error_and_its_builtin(error: type, builtin: type) -> None:
    """Each config error derives from PartitaError and from the builtin it declares."""
    assert issubclass(error, PartitaError)
    assert issubclass(error, builtin)


def test_config_errors_share_a_base() -> None:
    """Errors about configs can be caught together as ConfigError."""
    for error in (ConfigTypeError, MissingFieldError, CycleError, EncodingError):
        assert issubclass(error, ConfigError)
    assert issubclass(NoExperimentError, PartitaError)


def test_wrong_type() -> None:
    """A value of the wrong type raises ConfigTypeError (a TypeError) at construction."""
    with pytest.raises(TypeError) as caught:
        Say(word=1)
    assert isinstance(caught.value, ConfigTypeError)
    assert (
        "Say.word: expected str, found int 1. Wrap it with str(...) if a text is really wanted."
        == str(caught.value)
    )


def test_missing_required_field() -> None:
    """A missing required field raises MissingFieldError naming the field and its type."""
    with pytest.raises(MissingFieldError) as caught:
        Say()
    assert isinstance(caught.value, TypeError)
    assert (
        "Say: missing value for required field word: str. Pass it as keyword argument, "
        "e.g. Say(word=...)." == str(caught.value)
    )


class Three(Config, id="test.three"):
    """Three required fields and one with a default."""

    a: Param[int]
    b: Param[list[str]]
    c: Param[int] = 0
    d: Param[Say]


def test_missing_required_fields_are_all_listed() -> None:
    """Every missing required field is listed at once, in declaration order."""
    with pytest.raises(MissingFieldError) as caught:
        Three(c=1)
    assert (
        "Three: missing value for required fields a: int, b: list[str], d: Say. Pass them as "
        "keyword arguments, e.g. Three(a=...)." == str(caught.value)
    )


def test_unknown_keyword_suggests_the_closest_field() -> None:
    """An unknown keyword raises UnknownFieldError with 'did you mean'."""
    with pytest.raises(UnknownFieldError) as caught:
        Say(wrod="x")
    assert isinstance(caught.value, TypeError)
    assert "Say has no field 'wrod'. Did you mean 'word'? Its fields are: word." == str(
        caught.value
    )


def test_unknown_keyword_without_close_match_lists_fields() -> None:
    """Without a close name, the message lists every field."""
    with pytest.raises(UnknownFieldError) as caught:
        Train(zzz=1)
    assert (
        "Train has no field 'zzz'. Its fields are: device, epochs, model, optimizer, version."
        == str(caught.value)
    )


def test_unknown_attribute_assignment_suggests_the_closest_field() -> None:
    """Assigning an unknown attribute raises UnknownFieldError with 'did you mean'."""
    say = Say(word="x")
    with pytest.raises(UnknownFieldError) as caught:
        say.wordd = "y"
    assert "Say has no field 'wordd'. Did you mean 'word'? Its fields are: word." == str(
        caught.value
    )
    assert "wordd" not in say.__dict__


def test_private_attributes_may_be_set() -> None:
    """Attributes starting with '_' are not fields and may be set freely."""
    say = Say(word="x")
    say._cache = 1
    assert 1 == say._cache


def test_constant_given_as_keyword() -> None:
    """Giving a Constant a value at construction raises ConstantFieldError."""
    with pytest.raises(ConstantFieldError) as caught:
        VersionOne(version=2)
    assert isinstance(caught.value, AttributeError)
    assert (
        "VersionOne.version is a Constant (1) and cannot be given a value. Constants version "
        "a task; change the class to change them." == str(caught.value)
    )


def test_constant_set_as_attribute() -> None:
    """Assigning a Constant raises ConstantFieldError and keeps its value."""
    cfg = VersionOne()
    with pytest.raises(ConstantFieldError) as caught:
        cfg.version = 2
    assert "VersionOne.version is a Constant and cannot be set." == str(caught.value)
    assert 1 == cfg.version


def test_frozen_config_cannot_change() -> None:
    """Setting a field of a frozen config raises FrozenConfigError."""
    say = Say(word="a")
    freeze(say)
    with pytest.raises(FrozenConfigError) as caught:
        say.word = "b"
    assert isinstance(caught.value, AttributeError)
    assert (
        "Say.word cannot change: this config was submitted (or loaded) and is frozen. Build a "
        "new config instead." == str(caught.value)
    )
    assert "a" == say.word


def test_freezing_reaches_nested_configs() -> None:
    """Freezing a task freezes the configs it contains."""
    concat = Concat(strings=[Say(word="a")])
    freeze(concat)
    with pytest.raises(FrozenConfigError, match=re.escape("Say.word cannot change")):
        concat.strings[0].word = "b"


@pytest.mark.parametrize(
    "change",
    [
        lambda xs: xs.append(Say(word="b")),
        lambda xs: xs.extend([]),
        lambda xs: xs.insert(0, Say(word="b")),
        lambda xs: xs.pop(),
        lambda xs: xs.clear(),
        lambda xs: xs.sort(),
        lambda xs: xs.reverse(),
        lambda xs: xs.remove(xs[0]),
        lambda xs: xs.__setitem__(0, Say(word="b")),
        lambda xs: xs.__delitem__(0),
        lambda xs: xs.__iadd__([]),
        lambda xs: xs.__imul__(2),
    ],
)
def test_frozen_list_field_cannot_change(change: Any) -> None:
    """Every mutating list method of a frozen config's list raises FrozenConfigError."""
    concat = Concat(strings=[Say(word="a")])
    freeze(concat)
    with pytest.raises(FrozenConfigError) as caught:
        change(concat.strings)
    assert (
        "this list belongs to a submitted config and cannot change. Copy it first: list(value)."
        == str(caught.value)
    )
    assert ["a"] == [s.word for s in concat.strings]


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.__setitem__("x", 1.0),
        lambda d: d.__delitem__("w"),
        lambda d: d.update(x=1.0),
        lambda d: d.setdefault("x", 1.0),
        lambda d: d.pop("w"),
        lambda d: d.popitem(),
        lambda d: d.clear(),
        lambda d: d.__ior__({"x": 1.0}),
    ],
)
def test_frozen_dict_field_cannot_change(change: Any) -> None:
    """Every mutating dict method of a frozen config's dict raises FrozenConfigError."""
    cfg = Typed(weights={"w": 1.0})
    freeze(cfg)
    with pytest.raises(FrozenConfigError, match="this dict belongs to a submitted config"):
        change(cfg.weights)
    assert {"w": 1.0} == cfg.weights


def test_frozen_nested_list_in_any_cannot_change() -> None:
    """Lists nested inside dicts and tuples of an Any field are frozen too."""
    cfg = Value(v={"k": ([1],)})
    freeze(cfg)
    with pytest.raises(FrozenConfigError):
        cfg.v["k"][0].append(2)


def test_tag_after_freeze_fails() -> None:
    """Tags must be set before a config is frozen."""
    say = Say(word="a")
    freeze(say)
    with pytest.raises(FrozenConfigError, match="tags must be set before submitting"):
        say.tag("y", 1)


def test_fields_cannot_be_deleted() -> None:
    """Deleting a field raises FrozenConfigError."""
    say = Say(word="a")
    with pytest.raises(FrozenConfigError, match=re.escape("Say.word: fields cannot be deleted.")):
        del say.word


def test_cycle() -> None:
    """Configs referring to each other in a loop have no identifier: CycleError."""
    a, b = Node(), Node()
    a.child = b
    b.child = a
    with pytest.raises(CycleError) as caught:
        identifier(a)
    assert isinstance(caught.value, ValueError)
    assert (
        "Node contains itself (through its fields), so it has no identifier. Break the loop: "
        "a config cannot be its own parameter." == str(caught.value)
    )


def test_self_cycle() -> None:
    """A config that is its own child is a cycle too."""
    a = Node()
    a.child = a
    with pytest.raises(CycleError):
        identifier(a)


def test_cycle_through_a_list() -> None:
    """A loop through an Any field holding a list is detected."""
    a = Value(v=[])
    a.v.append(a)
    with pytest.raises(CycleError):
        identifier(a)


def test_cycle_is_detected_again_after_a_failure() -> None:
    """After a CycleError, breaking the loop gives an identifier again."""
    a, b = Node(), Node()
    a.child, b.child = b, a
    with pytest.raises(CycleError):
        identifier(a)
    b.child = None
    assert identifier(Node(child=Node())) == identifier(a)


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (lambda: 1, "builtins.function"),
        (object(), "builtins.object"),
        (b"bytes", "builtins.bytes"),
        (1j, "builtins.complex"),
        ([1, object()], "builtins.object"),
    ],
)
def test_unencodable_value_in_any_field(value: Any, found: str) -> None:
    """A value that cannot be encoded in an Any field raises EncodingError at construction."""
    with pytest.raises(EncodingError) as caught:
        Value(v=value)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message.startswith("Value.v")
    assert f": cannot encode a value of type {found} (" in message
    assert message.endswith(
        "Expected bool, int, float, str, None, Path, Enum, list, tuple, dict with str keys, "
        "frozenset or a Config. Store such objects in files and pass their path, or describe "
        "them with a Config."
    )


def test_unencodable_value_path_is_precise() -> None:
    """The EncodingError names the position of the bad value inside the field."""
    with pytest.raises(EncodingError, match=r"^Value.v\['k'\]\[1\]: cannot encode"):
        Value(v={"k": [1, object()]})


def test_non_str_dict_key_in_any_field() -> None:
    """Dicts in Any fields must have str keys."""
    with pytest.raises(EncodingError) as caught:
        Value(v={1: "a"})
    assert "Value.v: dict keys must be str, found int 1. Convert keys to str." == str(caught.value)


def test_int_too_large_to_encode() -> None:
    """An int with more digits than Python converts to text is an EncodingError."""
    cfg = Value(v=10**5000)
    with pytest.raises(EncodingError, match=r"^Value\.v: an int of about 5000 digits"):
        identifier(cfg)


def test_pending_generated_path() -> None:
    """Reading a PathGenerator field before submit raises PendingPathError."""
    train = Train()
    with pytest.raises(PendingPathError) as caught:
        train.model
    assert isinstance(caught.value, AttributeError)
    assert (
        "Train.model is generated inside the job folder (PathGenerator('model.pt')) and has no "
        "value until the task is submitted. Read it after .submit(), or inside execute()."
        == str(caught.value)
    )


def test_pending_jobdir() -> None:
    """Reading jobdir of a task never submitted raises PendingPathError with its message."""
    with pytest.raises(PendingPathError) as caught:
        Say(word="a").jobdir
    assert (
        "Say: the job folder is known once the task is submitted in an experiment (or loaded "
        "from a work directory)." == str(caught.value)
    )
    with pytest.raises(PendingPathError):
        Say(word="a").stdout()


def test_unknown_attribute_read_is_an_attribute_error() -> None:
    """Reading an attribute that is neither a field nor generated is a plain AttributeError."""
    with pytest.raises(AttributeError, match="'Say' object has no attribute 'nothing'"):
        Say(word="a").nothing


def test_submit_outside_an_experiment() -> None:
    """Task.submit() outside 'with experiment(...)' raises NoExperimentError."""
    with pytest.raises(NoExperimentError) as caught:
        Say(word="a").submit()
    assert (
        "Say.submit() was called outside of an experiment. Submit tasks inside "
        "'with partita.experiment(workdir, name):'." == str(caught.value)
    )


def test_job_before_submit() -> None:
    """Task.job before submit raises NoExperimentError."""
    with pytest.raises(
        NoExperimentError, match=re.escape("Say has not been submitted in this process.")
    ):
        Say(word="a").job


def test_execute_must_be_defined() -> None:
    """A task without execute() says so when run."""
    with pytest.raises(NotImplementedError, match=r"Say does not define execute\(self\)"):
        Say(word="a").execute()


def test_tag_name_must_be_a_string() -> None:
    """A tag name must be a non-empty str."""
    with pytest.raises(ConfigTypeError, match="tag name: expected a non-empty str, found ''"):
        Say(word="a").tag("", 1)


def test_errors_keep_the_config_unchanged_after_failed_construction_of_another() -> None:
    """A failed construction leaves other instances untouched (no shared state)."""
    good = Typed(ints=[1])
    with pytest.raises(ConfigTypeError):
        Typed(ints=[1, "x"])
    assert [1] == good.ints
    assert Path("data") == good.path
