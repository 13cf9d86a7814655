"""Field types: every supported annotation validates (and lightly coerces) at construction."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import pytest
from cfgclasses import (
    Branch,
    Color,
    Concat,
    Leaf,
    Level,
    Maybe,
    Node,
    Say,
    Scalar,
    Typed,
    Value,
)

from partita import Config, Constant, Meta, Param, PathGenerator, field
from partita.errors import ConfigDefinitionError, ConfigTypeError, PartitaError


def type_error(**values: Any) -> str:
    """The message of the ConfigTypeError raised by Typed(**values)."""
    with pytest.raises(ConfigTypeError) as caught:
        Typed(**values)
    return str(caught.value)


# --- accepted values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "given", "stored"),
    [
        ("flag", True, True),
        ("count", -3, -3),
        ("rate", 0.25, 0.25),
        ("name", "é", "é"),
        ("path", Path("/a/b"), Path("/a/b")),
        ("color", Color.GREEN, Color.GREEN),
        ("level", Level.HIGH, Level.HIGH),
        ("maybe", None, None),
        ("maybe", 4, 4),
        ("mode", "slow", "slow"),
        ("mode", 3, 3),
        ("ints", [3, 1, 2], [3, 1, 2]),
        ("pair", (1, "x"), (1, "x")),
        ("floats", (0.5, 1.5), (0.5, 1.5)),
        ("labels", frozenset({"a", "b"}), frozenset({"a", "b"})),
        ("weights", {"w": 1.5}, {"w": 1.5}),
        ("number", 7, 7),
        ("number", "7", "7"),
        ("anything", {"k": [1, (2, None)]}, {"k": [1, (2, None)]}),
        ("nested", {"n": [(1, 2), ()]}, {"n": [(1, 2), ()]}),
    ],
)
def test_accepts_values_of_the_declared_type(name: str, given: Any, stored: Any) -> None:
    """A value of the declared type is stored as given."""
    cfg = Typed(**{name: given})
    assert stored == getattr(cfg, name)
    assert type(stored) is type(getattr(cfg, name))


@pytest.mark.parametrize(
    ("name", "given", "stored"),
    [
        ("rate", 2, 2.0),
        ("path", "a/b", Path("a/b")),
        ("path", PurePosixPath("a/b"), Path("a/b")),
        ("ints", (3, 1), [3, 1]),
        ("pair", [1, "x"], (1, "x")),
        ("floats", [1, 2.5], (1.0, 2.5)),
        ("labels", {"a", "b"}, frozenset({"a", "b"})),
        ("labels", ["a", "b", "a"], frozenset({"a", "b"})),
        ("weights", {"w": 1}, {"w": 1.0}),
        ("anything", {1, 2}, frozenset({1, 2})),
    ],
)
def test_coerces_lossless_conversions(name: str, given: Any, stored: Any) -> None:
    """int→float, str→Path, tuple↔list and set→frozenset are converted at construction."""
    cfg = Typed(**{name: given})
    assert stored == getattr(cfg, name)
    assert type(stored) is type(getattr(cfg, name))


def test_int_is_coerced_to_float_recursively() -> None:
    """Ints inside containers of floats become floats too."""
    cfg = Typed(floats=(1, 2), weights={"a": 3})
    assert [float, float] == [type(x) for x in cfg.floats]
    assert float is type(cfg.weights["a"])


def test_nested_configs_and_tasks_are_accepted() -> None:
    """Fields typed with config or task classes accept instances, alone or in containers."""
    leaf, say = Leaf(n=1), Say(word="w")
    cfg = Typed(
        leaf=leaf, leaves=[leaf], leaf_map={"k": leaf}, leaf_set={leaf}, task=say, tasks=[say]
    )
    assert leaf is cfg.leaf
    assert [leaf] == cfg.leaves
    assert leaf is cfg.leaves[0]
    assert leaf is cfg.leaf_map["k"]
    assert frozenset({leaf}) == cfg.leaf_set
    assert say is cfg.task
    assert say is cfg.tasks[0]


def test_containers_are_copied_at_construction() -> None:
    """Changing the list given to a config later does not change the config."""
    given = [1, 2]
    cfg = Typed(ints=given)
    given.append(3)
    assert [1, 2] == cfg.ints


@pytest.mark.parametrize(
    "value",
    [None, True, 1, 1.5, "s", Path("p"), Color.RED, [1], (1,), {"k": 1}, frozenset({1}), Leaf()],
)
def test_any_accepts_every_encodable_value(value: Any) -> None:
    """A Param[Any] field accepts every value the identity can encode."""
    assert value == Value(v=value).v


@pytest.mark.parametrize(("value", "kind"), [(True, bool), (1, int), (1.0, float), ("1", str)])
def test_union_keeps_the_exact_kind(value: Any, kind: type) -> None:
    """A union picks the option that accepts the value without coercion."""
    stored = Scalar(v=value).v
    assert value == stored
    assert kind is type(stored)


def test_union_coerces_when_no_option_is_exact() -> None:
    """int | str given an int subclass stores a plain int."""

    class Sub(int):
        pass

    stored = Typed(number=Sub(3)).number
    assert (3, int) == (stored, type(stored))


def test_bare_containers_hold_any_values() -> None:
    """Unparameterised list, tuple, dict and frozenset annotations hold Any items."""

    class Bare(Config, id="test.bare"):
        items: Param[list] = field(default_factory=list)
        row: Param[tuple] = ()
        table: Param[dict] = field(default_factory=dict)
        bag: Param[frozenset] = frozenset()

    cfg = Bare(items=[1, "a"], row=[1, None], table={"k": (1,)}, bag={1, "a"})
    assert ([1, "a"], (1, None), {"k": (1,)}, frozenset({1, "a"})) == (
        cfg.items,
        cfg.row,
        cfg.table,
        cfg.bag,
    )


def test_self_referencing_annotation_resolves() -> None:
    """A class may refer to itself in its annotations (resolved on first use)."""
    assert Node() == Node(child=Node()).child


def test_classvar_is_not_a_field() -> None:
    """ClassVar annotations are class attributes, not fields."""

    class WithClassVar(Config, id="test.classvar"):
        registry: ClassVar[dict[str, int]] = {}
        x: Param[int] = 0

    assert {} == WithClassVar.registry
    assert ["x"] == [f.name for f in WithClassVar._partita_fields.values()]


# --- rejected values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"flag": 1}, "Typed.flag: expected bool, found int 1. Use True or False."),
        (
            {"count": True},
            "Typed.count: expected int, found bool True. Booleans are not integers in partita.",
        ),
        (
            {"count": 2.0},
            "Typed.count: expected int, found float 2.0. Use 2 (an int) if you meant an integer.",
        ),
        ({"count": "2"}, "Typed.count: expected int, found str '2'."),
        ({"count": Level.LOW}, "Typed.count: expected int, found Level <Level.LOW: 1>."),
        ({"rate": True}, "Typed.rate: expected float, found bool True."),
        ({"rate": "0.5"}, "Typed.rate: expected float, found str '0.5'."),
        (
            {"name": 1},
            "Typed.name: expected str, found int 1. Wrap it with str(...) if a text is "
            "really wanted.",
        ),
        (
            {"path": 3},
            "Typed.path: expected Path, found int 3. Give a pathlib.Path or a str.",
        ),
        (
            {"path": b"a"},
            "Typed.path: expected Path, found bytes b'a'. Give a pathlib.Path or a str.",
        ),
        (
            {"color": "green"},
            "Typed.color: expected Color, found str 'green'. Use one of Color.RED, Color.GREEN.",
        ),
        (
            {"level": 2},
            "Typed.level: expected Level, found int 2. Use one of Level.LOW, Level.HIGH.",
        ),
        ({"maybe": "x"}, "Typed.maybe: expected int | None, found str 'x'."),
        ({"mode": "3"}, "Typed.mode: expected one of 'fast', 'slow', 3, found str '3'."),
        ({"mode": 3.0}, "Typed.mode: expected one of 'fast', 'slow', 3, found float 3.0."),
        ({"ints": "12"}, "Typed.ints: expected list[int], found str '12'. Give a list."),
        ({"ints": [1, "2"]}, "Typed.ints[1]: expected int, found str '2'."),
        (
            {"pair": (1,)},
            "Typed.pair: expected tuple[int, str], found tuple (1,). Give exactly 2 items, not 1.",
        ),
        (
            {"pair": (1, 2)},
            "Typed.pair[1]: expected str, found int 2. Wrap it with str(...) if a text is "
            "really wanted.",
        ),
        ({"floats": (1.0, None)}, "Typed.floats[1]: expected float, found NoneType None."),
        (
            {"labels": "ab"},
            "Typed.labels: expected frozenset[str], found str 'ab'. Give a set or a frozenset.",
        ),
        (
            {"labels": {1}},
            "Typed.labels{0}: expected str, found int 1. Wrap it with str(...) if "
            "a text is really wanted.",
        ),
        (
            {"weights": {1: 1.0}},
            "Typed.weights: dict keys must be str, found int 1. Convert keys with str().",
        ),
        ({"weights": {"w": "x"}}, "Typed.weights['w']: expected float, found str 'x'."),
        (
            {"weights": [("w", 1.0)]},
            "Typed.weights: expected dict[str, float], found list "
            "[('w', 1.0)]. Give a dict with str keys.",
        ),
        ({"number": 1.5}, "Typed.number: expected int | str, found float 1.5."),
        ({"leaf": Say(word="x")}, "Typed.leaf: expected Leaf | None, found Say Say(word='x')."),
        ({"leaves": [Leaf(), 1]}, "Typed.leaves[1]: expected Leaf, found int 1."),
        ({"leaf_map": {"k": "v"}}, "Typed.leaf_map['k']: expected Leaf, found str 'v'."),
        ({"task": Leaf()}, "Typed.task: expected Say | None, found Leaf Leaf()."),
        ({"nested": {"n": [(1, "2")]}}, "Typed.nested['n'][0][1]: expected int, found str '2'."),
    ],
)
def test_wrong_type_names_path_expected_and_found(values: dict[str, Any], message: str) -> None:
    """A wrong value raises ConfigTypeError naming the field path, the type and the value."""
    assert message == type_error(**values)


def test_wrong_task_in_a_list_names_the_index() -> None:
    """The hello-world mistake: a str where a task was expected, at index 1."""
    with pytest.raises(ConfigTypeError) as caught:
        Concat(strings=[Say(word="a"), "b"])
    assert "Concat.strings[1]: expected Say, found str 'b'." == str(caught.value)


def test_class_instead_of_instance_gets_a_hint() -> None:
    """Passing a config class instead of an instance suggests building one."""
    message = type_error(leaf=Leaf)
    assert message.startswith("Typed.leaf: expected Leaf | None, found type")
    with pytest.raises(ConfigTypeError) as caught:
        Branch(leaf=Leaf)
    assert str(caught.value).endswith("Give an instance, e.g. Leaf(...), not the class.")


def test_union_rejects_other_kinds() -> None:
    """A value matching no option of a union is rejected with every option listed."""
    with pytest.raises(ConfigTypeError) as caught:
        Scalar(v=[1])
    assert "Scalar.v: expected bool | int | float | str, found list [1]." == str(caught.value)


def test_int_too_large_for_a_float_is_a_type_error() -> None:
    """An int beyond the float range is a ConfigTypeError, not an OverflowError."""
    message = type_error(rate=10**400)
    assert message.startswith("Typed.rate: expected float, found int 1000")
    assert message.endswith("The integer is too large for a float.")


def test_long_values_are_shortened_in_messages() -> None:
    """The found value is cut to about 60 characters."""
    message = type_error(count="x" * 200)
    assert "Typed.count: expected int, found str '" + "x" * 56 + "...." == message


def test_attribute_assignment_validates() -> None:
    """Setting a field validates the value too, and keeps the old value on error."""
    cfg = Typed(count=1)
    with pytest.raises(ConfigTypeError) as caught:
        cfg.count = "2"
    assert "Typed.count: expected int, found str '2'." == str(caught.value)
    assert 1 == cfg.count
    cfg.rate = 3
    assert (3.0, float) == (cfg.rate, type(cfg.rate))


def test_type_errors_are_partita_and_builtin_errors() -> None:
    """ConfigTypeError is both a PartitaError and a TypeError."""
    with pytest.raises(ConfigTypeError) as caught:
        Typed(count="x")
    assert isinstance(caught.value, PartitaError)
    assert isinstance(caught.value, TypeError)


def test_maybe_default_and_explicit_none_agree() -> None:
    """An Any field with default None holds None either way."""
    assert Maybe().v is Maybe(v=None).v is None


# --- class definition errors --------------------------------------------------------------


def definition_error(body: dict[str, Any], annotations: dict[str, Any]) -> str:
    """The message of the ConfigDefinitionError raised when defining such a class."""
    with pytest.raises(ConfigDefinitionError) as caught:
        type("Bad", (Config,), {"__annotations__": annotations, **body})
    assert isinstance(caught.value, TypeError)
    return str(caught.value)


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (
            Param[object],
            "Bad.x: unsupported type <class 'object'>. Supported: bool, int, float, str, Path, "
            "Enum, None/Optional, Literal, list, tuple, frozenset, dict[str, ...], Any, and "
            "Config/Task classes, nested in any combination.",
        ),
        (
            Param[dict[int, str]],
            "Bad.x: dict keys must be str, found <class 'int'>. Use dict[str, ...] (JSON objects "
            "have text keys).",
        ),
        (
            Param[list[complex]],
            "Bad.x: unsupported type <class 'complex'>. Supported: bool, int, float, str, Path, "
            "Enum, None/Optional, Literal, list, tuple, frozenset, dict[str, ...], Any, and "
            "Config/Task classes, nested in any combination.",
        ),
        (
            int,
            "Bad.x: expected the annotation to be Param[...], Meta[...] or Constant[...], found "
            "<class 'int'>. Write e.g. 'x: Param[int]' (use ClassVar[...] for class attributes "
            "that are not fields).",
        ),
    ],
)
def test_unsupported_annotations_fail_at_definition(annotation: Any, message: str) -> None:
    """Unsupported annotations raise ConfigDefinitionError when the class is defined."""
    assert message == definition_error({}, {"x": annotation})


def test_bare_annotation_in_a_class_statement_fails() -> None:
    """A plain 'x: int' in a class body is refused at once."""
    with pytest.raises(ConfigDefinitionError, match="expected the annotation to be Param"):

        class Plain(Config, id="test.plain"):
            x: int


@pytest.mark.parametrize("default", [[], {}, {1}, [1, 2], ([1],), (Leaf(),)])
def test_mutable_default_suggests_default_factory(default: Any) -> None:
    """A mutable default (even inside a tuple) is refused with a hint to use default_factory."""
    message = definition_error({"x": default}, {"x": Param[Any]})
    assert message.startswith(f"Bad.x: default {default!r} is mutable")
    assert message.endswith("Use field(default_factory=...) instead.")


def test_mutable_default_given_with_field_is_refused() -> None:
    """field(default=[]) is refused like a bare [] default."""
    message = definition_error({"x": field(default=[])}, {"x": Param[list[int]]})
    assert message.startswith("Bad.x: default [] is mutable")


def test_function_default_suggests_default_factory() -> None:
    """A function given as a default is refused with a hint to use default_factory."""

    def make() -> list[int]:
        return []

    message = definition_error({"x": make}, {"x": Param[list[int]]})
    assert message.startswith("Bad.x: the default is a function; use field(default_factory=make)")


def test_default_of_the_wrong_type_fails_at_definition() -> None:
    """A default that does not match the annotation is a definition error."""
    message = definition_error({"x": "a"}, {"x": Param[int]})
    assert "invalid default: Bad.x: expected int, found str 'a'." == message


@pytest.mark.parametrize(
    ("body", "annotations", "start"),
    [
        ({}, {"version": Constant[int]}, "Bad.version: a Constant needs a value"),
        ({}, {"submit": Param[int]}, "Bad.submit: the name 'submit' is reserved"),
        ({}, {"_x": Param[int]}, "Bad._x: the name '_x' is reserved"),
        (
            {"p": field(default_factory=PathGenerator("a"))},
            {"p": Constant[Path]},
            "Bad.p: a Constant needs a value",
        ),
    ],
)
def test_invalid_field_declarations(
    body: dict[str, Any], annotations: dict[str, Any], start: str
) -> None:
    """Constants without value and reserved or private names are refused."""
    assert definition_error(body, annotations).startswith(start)


@pytest.mark.parametrize("bad_id", ["", "a/b", " a", 3])
def test_invalid_type_id(bad_id: Any) -> None:
    """id= must be a non-empty str without '/' or surrounding spaces."""
    with pytest.raises(ConfigDefinitionError, match="id must be a non-empty str"):
        type("Bad", (Config,), {"__annotations__": {}}, id=bad_id)


def test_default_and_default_factory_together_fail() -> None:
    """field() accepts either default= or default_factory=."""
    with pytest.raises(ConfigDefinitionError, match="either default= or default_factory="):
        field(default=1, default_factory=list)


@pytest.mark.parametrize("relative", ["/abs/model.pt", "../model.pt", "a/../../b"])
def test_path_generator_stays_inside_the_job_folder(relative: str) -> None:
    """PathGenerator refuses absolute paths and '..'."""
    with pytest.raises(ConfigDefinitionError, match="expected a relative path"):
        PathGenerator(relative)


# --- defaults -----------------------------------------------------------------------------


def test_tuple_default_of_a_list_field_is_not_shared() -> None:
    """A tuple default of a list field becomes a fresh list in every instance."""

    class Listy(Config, id="test.listy"):
        xs: Param[list[int]] = (1, 2)
        fixed: Constant[list[int]] = (3,)

    first, second = Listy(), Listy()
    first.xs.append(3)
    first.fixed.append(4)
    assert ([1, 2], [3]) == (second.xs, second.fixed)
    assert ([1, 2], [3]) == (Listy().xs, Listy().fixed)


def test_default_factory_is_called_for_each_instance() -> None:
    """default_factory gives every instance its own value, validated."""
    first, second = Typed(), Typed()
    first.ints.append(1)
    assert [] == second.ints


def test_default_is_validated_and_coerced() -> None:
    """A default of a coercible type is stored coerced (0 for a float field → 0.0)."""

    class Coerced(Config, id="test.coerced"):
        rate: Param[float] = 0
        where: Param[Path] = "data"

    cfg = Coerced()
    assert (0.0, float, Path("data")) == (cfg.rate, type(cfg.rate), cfg.where)


def test_meta_field_is_validated_too() -> None:
    """Meta fields are validated like Params."""

    class WithMeta(Config, id="test.withmeta"):
        device: Meta[str] = "cpu"

    with pytest.raises(
        ConfigTypeError, match=re.escape("WithMeta.device: expected str, found int 0")
    ):
        WithMeta(device=0)
