"""Field listing and help, class docs, tags, equality, hashing, repr and walking configs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfgclasses import (
    Adam,
    After,
    Before,
    Branch,
    Checkpoint,
    Concat,
    Evaluate,
    Leaf,
    Root,
    Say,
    Scalar,
    Train,
    Typed,
    Value,
    task_output,
)

import partita
from partita import Config, Param, PathGenerator, tag
from partita.config import FieldKind, attribute_docs, dumps, freeze, iter_children, walk
from partita.config._config import state_of
from partita.errors import ConfigTypeError


class Base(Config, id="test.base"):
    """A base class with one documented field."""

    seed: Param[int] = 0
    """Random seed."""


class Derived(Base, id="test.derived"):
    """A subclass adding a field."""

    size: Param[int] = 1


# --- fields() -----------------------------------------------------------------------------


def test_fields_lists_name_kind_type_default_and_help() -> None:
    """partita.fields(cls) gives every field with its kind, type, default and help."""
    assert [
        ("lr", FieldKind.PARAM, "float", 1e-3, "Learning rate.\n\nKeep it small."),
        ("betas", FieldKind.PARAM, "tuple[float, float]", (0.9, 0.999), ""),
        ("eps", FieldKind.META, "float", 1e-8, "Added to the denominator."),
        ("name", FieldKind.PARAM, "str", "adam", "Shown in logs."),
    ] == [(f.name, f.kind, f.type.describe(), f.default, f.help) for f in partita.fields(Adam)]


def test_fields_of_an_instance_are_those_of_its_class() -> None:
    """fields() accepts an instance too."""
    assert partita.fields(Adam) == partita.fields(Adam(lr=0.5))


def test_fields_report_factories_generators_and_constants() -> None:
    """default_factory, PathGenerator and Constant fields are described as such."""
    fields = {f.name: f for f in partita.fields(Train)}
    assert ["optimizer", "epochs", "device", "version", "model"] == list(fields)
    optimizer = fields["optimizer"]
    assert (Adam, False) == (optimizer.default_factory, optimizer.required)
    assert Adam() == optimizer.make_default()
    model = fields["model"]
    assert (PathGenerator("model.pt"), None, FieldKind.META) == (
        model.generator,
        model.default_factory,
        model.kind,
    )
    assert (FieldKind.CONSTANT, 1) == (fields["version"].kind, fields["version"].default)
    assert "Number of passes over the data." == fields["epochs"].help
    assert "" == fields["device"].help


def test_required_fields() -> None:
    """A field without default or factory is required."""
    assert [True] == [f.required for f in partita.fields(Say)]
    assert [("checkpoint", True), ("data", True), ("extra", False)] == [
        (f.name, f.required) for f in partita.fields(Evaluate)
    ]


def test_inherited_fields_come_first_with_their_help() -> None:
    """A subclass lists inherited fields first; their help comes from the defining class."""
    assert [("seed", Base, "Random seed."), ("size", Derived, "")] == [
        (f.name, f.owner, f.help) for f in partita.fields(Derived)
    ]


def test_field_annotation_and_repr() -> None:
    """A field keeps its inner annotation and has a short repr."""
    field = partita.fields(Say)[0]
    assert str is field.annotation
    assert "Field('word', param, str)" == repr(field)


def test_attribute_docstrings() -> None:
    """attribute_docs() maps a field to the string literal just below it."""
    assert {
        "lr": "Learning rate.\n\nKeep it small.",
        "name": "Ignored: help= wins over the attribute docstring.",
    } == attribute_docs(Adam)


def test_class_docstring_is_available() -> None:
    """The class docstring documents the config."""
    assert "The Adam optimiser." == Adam.__doc__
    assert "Trains a model." == Train.__doc__


def test_help_of_a_class_without_source() -> None:
    """A class built without source code has empty help texts."""
    cls = type("Dynamic", (Config,), {"__annotations__": {"x": Param[int]}, "x": 0})
    assert "" == partita.fields(cls)[0].help


# --- tags ---------------------------------------------------------------------------------


def test_tag_method_returns_the_config() -> None:
    """cfg.tag(name, value) records the tag and returns cfg, for chaining."""
    say = Say(word="a")
    assert say is say.tag("y", 1).tag("lang", "en")
    assert {"lang": "en", "y": 1} == say.tags()


def test_tag_as_a_field_value() -> None:
    """Cls(x=tag(v)) sets the field to v and tags the config with x=v."""
    train = Train(epochs=tag(3))
    assert 3 == train.epochs
    assert {"epochs": 3} == train.tags()


def test_tag_on_attribute_assignment() -> None:
    """cfg.x = tag(v) sets and tags too."""
    train = Train()
    train.epochs = tag(5)
    assert (5, {"epochs": 5}) == (train.epochs, train.tags())


def test_tagged_value_is_validated() -> None:
    """A tagged value is validated like any value."""
    with pytest.raises(ConfigTypeError, match=re.escape("Train.epochs: expected int")):
        Train(epochs=tag("3"))


def test_tags_propagate_from_nested_configs() -> None:
    """outer.tags() includes the tags of every config it contains."""
    concat = Concat(strings=[Say(word="a").tag("first", 1), Say(word=tag("b"))])
    assert {"first": 1, "word": "b"} == concat.tags()
    root = Root(branch=Branch(leaf=Leaf(n=tag(2))).tag("b", True))
    assert {"b": True, "n": 2} == root.tags()


def test_own_tags_win() -> None:
    """A tag set on the outer config wins over the same tag of a nested one."""
    concat = Concat(strings=[Say(word="a").tag("y", "inner")]).tag("y", "outer")
    assert {"y": "outer"} == concat.tags()
    deeper = Root(branch=Branch(leaf=Leaf().tag("y", 1)).tag("y", 2))
    assert {"y": 2} == deeper.tags()


def test_tags_are_sorted_and_copied() -> None:
    """tags() returns a new dict sorted by name."""
    say = Say(word="a").tag("b", 1).tag("a", 2)
    tags = say.tags()
    assert ["a", "b"] == list(tags)
    tags["c"] = 3
    assert {"a": 2, "b": 1} == say.tags()


@pytest.mark.parametrize("value", [None, True, 0, -1.5, 1e308, "text"])
def test_simple_tag_values_are_accepted(value: Any) -> None:
    """Tags may be bool, int, float, str or None."""
    assert {"t": value} == Say(word="a").tag("t", value).tags()


@pytest.mark.parametrize("value", [[1], {"a": 1}, (1,), Path("p"), Leaf(), b"x"])
def test_other_tag_values_are_refused(value: Any) -> None:
    """Tags of other kinds raise ConfigTypeError, with .tag() and with tag()."""
    with pytest.raises(ConfigTypeError) as caught:
        Say(word="a").tag("t", value)
    assert str(caught.value).startswith("Say: tag 't' must be a bool, int, float, str or None")
    with pytest.raises(ConfigTypeError, match="Value: tag 'v' must be a bool"):
        Value(v=tag(value))


def test_tags_are_not_written_to_params() -> None:
    """Tags are not part of the config's document."""
    assert dumps(Say(word="a")) == dumps(Say(word=tag("a")).tag("y", 1))


# --- equality and hashing -----------------------------------------------------------------


def test_configs_are_equal_by_value() -> None:
    """Two configs of one class with equal values are equal and hash alike."""
    first = Train(optimizer=Adam(lr=0.1), epochs=2)
    second = Train(optimizer=Adam(lr=0.1), epochs=2)
    assert first == second
    assert hash(first) == hash(second)
    assert 1 == len({first, second})
    assert first != Train(optimizer=Adam(lr=0.2), epochs=2)


def test_explicit_default_equals_omitted_default() -> None:
    """Giving a default explicitly is the same config."""
    assert Adam() == Adam(lr=1e-3, name="adam")


def test_meta_fields_count_for_equality_not_for_hash() -> None:
    """Configs differing in a Meta field are different objects with one identifier."""
    assert Leaf(n=1) != Leaf(n=1, note="x")
    assert hash(Leaf(n=1)) == hash(Leaf(n=1, note="x"))


def test_tags_do_not_count_for_equality() -> None:
    """Tags are not values."""
    assert Say(word="a") == Say(word=tag("a")).tag("y", 1)


def test_equality_distinguishes_kinds_like_the_identity() -> None:
    """True, 1 and 1.0 are different values (as in identifiers), so equal configs hash alike."""
    assert Value(v=True) != Value(v=1)
    assert Value(v=1) != Value(v=1.0)
    assert Value(v=[1]) != Value(v=(1,))
    assert Value(v={"a": True}) != Value(v={"a": 1})
    assert Value(v=frozenset({True})) != Value(v=frozenset({1}))
    assert Scalar(v=0.0) == Scalar(v=-0.0)


def test_nan_values_are_equal() -> None:
    """A config holding NaN equals another holding NaN (they share an identifier)."""
    assert Value(v=float("nan")) == Value(v=float("nan"))
    assert Value(v=[1, float("nan")]) == Value(v=[1, -float("nan")])


def test_different_classes_are_not_equal() -> None:
    """Configs of different type ids are never equal, nor equal to other objects."""
    assert Value(v=1) != Scalar(v=1)
    assert Before(x=1) != After(x=1)
    assert Say(word="a") != "a"
    assert Say(word="a") != {"word": "a"}


def test_task_outputs_compare_their_producers() -> None:
    """Equal fields produced by different tasks are different configs."""
    first = task_output(Say(word="a"), "/m")
    assert first == task_output(Say(word="a"), "/m")
    assert first != task_output(Say(word="b"), "/m")
    assert first != Checkpoint(path="/m")


def test_frozen_and_unfrozen_configs_compare_equal() -> None:
    """Freezing does not change equality (frozen lists equal lists)."""
    frozen = Typed(ints=[1], weights={"a": 1.0})
    freeze(frozen)
    assert Typed(ints=[1], weights={"a": 1.0}) == frozen


def test_configs_as_dict_keys() -> None:
    """Configs can be dict keys and set members, by value."""
    seen = {Say(word="a"): 1}
    assert 1 == seen[Say(word="a")]
    assert Leaf(n=2) in {Leaf(n=2), Leaf(n=3)}


# --- repr ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "text"),
    [
        (Typed(), "Typed()"),
        (Typed(count=3, rate=0.0, name=""), "Typed(count=3)"),
        (Say(word="a"), "Say(word='a')"),
        (Train(device="gpu"), "Train(device='gpu')"),
        (Train(epochs=10), "Train()"),
        (Branch(leaf=Leaf(n=1)), "Branch(leaf=Leaf(n=1))"),
        (Scalar(v=False), "Scalar(v=False)"),
        (Typed(ints=[2]), "Typed(ints=[2])"),
    ],
)
def test_repr_shows_required_and_non_default_fields(cfg: Config, text: str) -> None:
    """repr lists required fields and fields that differ from their default (not Constants)."""
    assert text == repr(cfg)


# --- walking ------------------------------------------------------------------------------


def test_walk_lists_every_config_once_with_its_path() -> None:
    """walk() yields each reachable config once, depth first, with its field path."""
    leaf = Leaf(n=1)
    cfg = Typed(leaf=leaf, leaves=[leaf, Leaf(n=2)], leaf_map={"k": Leaf(n=3)}, task=Say(word="t"))
    assert [
        ("", "Typed"),
        ("leaf", "Leaf"),
        ("leaf_map['k']", "Leaf"),
        ("leaves[1]", "Leaf"),
        ("task", "Say"),
    ] == [(path, type(c).__name__) for path, c in walk(cfg)]


def test_walk_can_stop_at_tasks() -> None:
    """walk(into_tasks=False) does not enter nested tasks."""
    concat = Concat(strings=[Say(word="a")])
    cfg = Value(v=[concat])
    assert ["", "v[0]"] == [path for path, _ in walk(cfg, into_tasks=False)]
    assert ["", "v[0]", "v[0].strings[0]"] == [path for path, _ in walk(cfg)]


def test_iter_children_gives_direct_children_in_field_order() -> None:
    """iter_children() yields configs held directly by the fields, sorted by field name."""
    a, b = Leaf(n=1), Leaf(n=2)
    assert [b, a] == list(iter_children(Value(v={"z": a, "a": b})))
    assert [Leaf(n=1)] == list(iter_children(Root(branch=Branch(leaf=Leaf(n=1))).branch))


def test_producer_is_not_a_child() -> None:
    """The producer of a task output is recorded in its state, not among its children."""
    say = Say(word="a")
    out = task_output(say, "/m")
    assert [] == list(iter_children(out))
    assert say is state_of(out).producer
