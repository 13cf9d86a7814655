"""Variants of configs (replace, __post_init__, type parameters, redeclared fields) and
identity controls at the use site (ignore, distinct, count_default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import pytest
from cfgclasses import Concat, Say
from varclasses import (
    Box,
    Data,
    Derived,
    Fit,
    IntBox,
    Layer,
    Model,
    Number,
    Optim,
    Planned,
    Schedule,
    Trainer,
)

from partita import Config, Meta, Param, Task, distinct, field, ignore, tag
from partita.config import dumps, freeze, from_document, identifier, is_frozen, to_document
from partita.config._config import state_of
from partita.config._seal import seal
from partita.errors import (
    ConfigDefinitionError,
    ConfigError,
    ConfigTypeError,
    ConstantFieldError,
    FrozenConfigError,
    UnknownFieldError,
)

T = TypeVar("T")


def model(units: int = 8) -> Model:
    return Model(encoder=Layer(units=units), decoder=Layer(units=4))


def reload(cfg: Config) -> Config:
    return from_document(json.loads(dumps(cfg)))


# --- replace ------------------------------------------------------------------------------


def test_replace_gives_an_unfrozen_variant_and_leaves_a_frozen_original_alone() -> None:
    original = Fit(model=model(), lr=0.1)
    freeze(original)
    before = identifier(original)
    variant = original.replace(lr=0.2, **{"model.layers": 4, "model.encoder.units": 16})
    assert not is_frozen(variant)
    assert (original.lr, original.model.layers, original.model.encoder.units) == (0.1, 2, 8)
    assert identifier(original) == before
    assert (variant.lr, variant.model.layers, variant.model.encoder.units) == (0.2, 4, 16)
    expected = Fit(model=Model(encoder=Layer(units=16), decoder=Layer(units=4), layers=4), lr=0.2)
    assert variant == expected
    assert identifier(variant) == identifier(expected)
    # Sub-configs not on a replaced path are shared; those on it are new.
    assert variant.model.decoder is original.model.decoder
    assert variant.model is not original.model
    variant.lr = 0.3  # unfrozen
    assert variant.lr == 0.3


def test_replace_with_no_change_is_an_equal_copy() -> None:
    original = Fit(model=model(), lr=tag(0.1))
    copy = original.replace()
    assert copy == original and copy is not original
    assert identifier(copy) == identifier(original)
    assert copy.tags() == {"lr": 0.1}
    assert copy.model is original.model


def test_replace_copies_lists_so_that_the_variant_owns_them() -> None:
    class Many(Config, id="var.test.many"):
        items: Param[list[int]]

    original = Many(items=[1, 2])
    freeze(original)
    variant = original.replace()
    variant.items.append(3)
    assert original.items == [1, 2]


def test_replace_refuses_unknown_and_mistyped_fields_with_a_hint() -> None:
    fit = Fit(model=model())
    with pytest.raises(UnknownFieldError, match=r"has no field 'lrr'.*Did you mean 'lr'\?"):
        fit.replace(lrr=0.1)
    with pytest.raises(UnknownFieldError, match=r"Did you mean 'model.layers'\?"):
        fit.replace(**{"model.layer": 3})
    with pytest.raises(UnknownFieldError, match=r"not a field path"):
        fit.replace(**{"model..layers": 3})
    with pytest.raises(ConfigTypeError, match=r"Fit.lr: expected float, found str"):
        fit.replace(lr="fast")
    with pytest.raises(ConfigTypeError, match=r"Model.layers: expected int"):
        fit.replace(**{"model.layers": 2.5})
    with pytest.raises(ConfigTypeError, match=r"not a config"):
        fit.replace(**{"lr.x": 1})
    with pytest.raises(ConstantFieldError):
        fit.replace(version=2)
    with pytest.raises(ConfigTypeError, match=r"replaced as a whole"):
        fit.replace(model=model(), **{"model.layers": 3})


def test_replace_does_not_share_generated_paths_with_the_original(tmp_path: Path) -> None:
    first = Trainer(optim=Optim())
    sealed = seal(first, tmp_path)
    assert first.optim.state == sealed.jobdir / "optim" / "optim.state"
    variant = first.replace(epochs=2)
    assert variant.optim is not first.optim
    assert identifier(variant.optim) == identifier(first.optim)
    other = seal(variant, tmp_path)  # not "already used by the task of ..."
    assert other.jobdir != sealed.jobdir
    assert variant.optim.state == other.jobdir / "optim" / "optim.state"


def test_replace_unshares_generated_paths_below_a_replaced_path(tmp_path: Path) -> None:
    optim = Optim()
    first = Planned(schedule=Schedule(optim=optim))
    sealed = seal(first, tmp_path)
    variant = first.replace(**{"schedule.warmup": 3})
    assert variant.schedule is not first.schedule
    assert variant.schedule.optim is not optim
    other = seal(variant, tmp_path)
    assert variant.schedule.optim.state == other.jobdir / "schedule.optim" / "optim.state"
    assert optim.state == sealed.jobdir / "schedule.optim" / "optim.state"


def test_replace_refuses_changing_a_submitted_sub_task(tmp_path: Path) -> None:
    say = Say(word="a")
    seal(say, tmp_path)
    concat = Concat(strings=[say])
    with pytest.raises(ConfigTypeError, match=r"not a config"):
        concat.replace(**{"strings.word": "b"})

    class Wrap(Config, id="var.test.wrap"):
        task: Param[Say]

    with pytest.raises(FrozenConfigError, match=r"must be submitted too"):
        Wrap(task=say).replace(**{"task.word": "b"})


# --- __post_init__ ------------------------------------------------------------------------


def test_post_init_runs_after_construction_replace_and_load() -> None:
    d = Derived(a=3)
    assert d.total == 5 and d._calls == 1
    variant = d.replace(b=10)
    assert variant.total == 13 and variant._calls == 1
    freeze(d)
    loaded = reload(d)
    assert loaded.total == 5 and loaded._calls == 1 and is_frozen(loaded)
    # derived state is not part of the identity, the params or equality
    assert identifier(d) == identifier(Derived(a=3))
    assert b"total" not in dumps(d)
    other = Derived(a=3)
    other.__dict__["total"] = 99
    assert other == d


def test_post_init_may_refuse_values_and_may_not_set_fields() -> None:
    with pytest.raises(ConfigError, match=r"at most 100"):
        Derived(a=101)

    class SetsField(Config, id="var.test.sets-field"):
        a: Param[int] = 1

        def __post_init__(self) -> None:
            self.a = 2

    with pytest.raises(ConfigError, match=r"__post_init__ sets the field 'a'"):
        SetsField()

    class SetsMethod(Config, id="var.test.sets-method"):
        a: Param[int] = 1

        def __post_init__(self) -> None:
            self.submit = 2

    with pytest.raises(ConfigError, match=r"a method of every task"):
        SetsMethod()
    # outside __post_init__, unknown names are still typos before submission
    with pytest.raises(UnknownFieldError):
        Derived().totl = 1  # type: ignore[attr-defined]


# --- type parameters ----------------------------------------------------------------------


def test_a_bound_type_parameter_is_checked() -> None:
    assert Box[int](item=1).item == 1
    with pytest.raises(ConfigTypeError, match=r"Box.item: expected int, found str 'x'"):
        Box[int](item="x")
    assert Box(item="x").item == "x"  # unbound: any encodable value
    converted = Box[float](item=1)
    assert type(converted.item) is float
    with pytest.raises(ConfigTypeError, match=r"Box.item: expected int"):
        Box[int](item=1).item = "y"
    with pytest.raises(ConfigTypeError, match=r"IntBox.item: expected int"):
        IntBox(item="x")
    with pytest.raises(ConfigTypeError, match=r"Number.value: expected float"):
        Number(value="x")
    with pytest.raises(ConfigDefinitionError, match=r"has no type parameters"):
        Layer[int]  # type: ignore[misc]
    with pytest.raises(ConfigDefinitionError, match=r"Give one type per type parameter of Box"):
        Box[int, str]  # type: ignore[misc]
    with pytest.raises(ConfigDefinitionError, match=r"Box.item: unsupported type"):
        Box[bytes](item=b"x")


def test_the_identity_of_a_generic_config_does_not_depend_on_the_binding() -> None:
    assert identifier(Box[int](item=1)) == identifier(Box(item=1))
    assert identifier(Box[float](item=1)) == identifier(Box(item=1.0))
    assert identifier(Box[float](item=1)) != identifier(Box(item=1))
    bound = Box[int](item=3)
    freeze(bound)
    loaded = reload(bound)
    assert type(loaded) is Box and loaded == bound
    assert identifier(loaded) == identifier(bound)


class Defaulted(Config, Generic[T], id="var.test.defaulted"):
    item: Param[T] = 0
    items: Param[list[T]] = field(default_factory=lambda: [1])


def test_a_bound_type_parameter_converts_defaults_too() -> None:
    bound = Defaulted[float]()
    assert type(bound.item) is float and bound.items == [1.0] and type(bound.items[0]) is float
    assert type(Defaulted().item) is int
    assert identifier(bound) == identifier(Defaulted(item=0.0, items=[1.0]))
    with pytest.raises(ConfigDefinitionError, match="invalid default for the bound type"):
        Defaulted[str]()


def test_a_field_annotated_with_a_bound_generic_checks_the_held_config() -> None:
    from varclasses import Holder

    assert Holder(box=Box[float](item=1.5)).box.item == 1.5
    assert Holder(box=Box(item=2.5)).box.item == 2.5
    with pytest.raises(ConfigTypeError, match=r"Holder.box: expected Box\[float\]"):
        Holder(box=Box(item="x"))
    with pytest.raises(ConfigTypeError, match=r"Build it as Box\[float\]"):
        Holder(box=Box(item=1))  # an int is not the float a Box[float] holds


# --- redeclared fields --------------------------------------------------------------------


class Base(Config, id="var.test.base"):
    lr: Param[float] = 0.1
    opt: Param[Config | None] = None
    mode: Param[str] = "a"
    sizes: Param[list[int]] = field(default_factory=list)
    note: Meta[str] = ""


def _subclass(**annotations: Any) -> type:
    namespace: dict[str, Any] = {"__annotations__": {}}
    for name, (annotation, default) in annotations.items():
        namespace["__annotations__"][name] = annotation
        namespace[name] = default
    return type("Sub", (Base,), namespace)


@pytest.mark.parametrize(
    ("name", "annotation", "default"),
    [
        ("lr", Param[float], 0.2),
        ("opt", Param[Layer], field(default_factory=Layer)),
        ("opt", Param[Layer | None], None),
        ("mode", Param[Literal["a", "b"]], "a"),
        ("sizes", Param[list[int]], field(default_factory=lambda: [1])),
        ("note", Meta[str], "x"),
    ],
)
def test_a_narrowing_redeclaration_is_accepted(name: str, annotation: Any, default: Any) -> None:
    cls = _subclass(**{name: (annotation, default)})
    assert cls()  # builds


@pytest.mark.parametrize(
    ("name", "annotation", "default", "spelled"),
    [
        ("lr", Param[str], "x", "Param[str]"),
        ("lr", Param[int], 1, "Param[int]"),
        ("lr", Meta[float], 0.1, "Meta[float]"),
        ("mode", Param[Literal[1]], 1, "Param[Literal[1]]"),
        ("sizes", Param[list[bool]], field(default_factory=list), "Param[list[bool]]"),
        ("opt", Param[int], 0, "Param[int]"),
    ],
)
def test_an_incompatible_redeclaration_is_refused(
    name: str, annotation: Any, default: Any, spelled: str
) -> None:
    with pytest.raises(ConfigDefinitionError, match=rf"Sub.{name} redeclares Base.{name}") as e:
        _subclass(**{name: (annotation, default)})
    assert spelled in str(e.value) and "override=True" in str(e.value)


def test_a_new_default_without_annotation_is_refused() -> None:
    with pytest.raises(ConfigDefinitionError, match=r"Sub.lr = 0.2 sets an inherited field"):
        type("Sub", (Base,), {"lr": 0.2})

    class WithMethod(Base, id="var.test.with-method"):
        def mode(self) -> str:  # type: ignore[override]
            return "m"

    assert WithMethod.__dict__["mode"]  # methods are not defaults


def test_override_allows_an_incompatible_redeclaration() -> None:
    class Sub(Base, id="var.test.sub"):
        lr: Param[str] = field(default="fast", override=True)

    assert Sub().lr == "fast"
    with pytest.raises(ConfigDefinitionError, match=r"no base class of .*Lone declares 'x'"):

        class Lone(Config, id="var.test.lone"):
            x: Param[int] = field(default=1, override=True)


class StrBox(Box[str], id="var.test.strbox"):
    """Binds the item to str."""


class OpenBox(Box[T], Generic[T], id="var.test.openbox"):
    """Passes its own type parameter on to Box."""


class DeepIntBox(IntBox, id="var.test.deepintbox"):
    """Binds the item to int through IntBox."""


class HoldsIntBox(Config, id="var.test.holds-box-int"):
    box: Param[Box[int]]


class HoldsBoundSubclass(Config, id="var.test.holds-intbox"):
    box: Param[IntBox]


@pytest.mark.parametrize(
    ("narrower", "build"),
    [(IntBox, DeepIntBox), (DeepIntBox, DeepIntBox), (OpenBox[int], OpenBox), (Box[int], IntBox)],
)
def test_a_bound_generic_subclass_narrows_the_bound_base(narrower: Any, build: Any) -> None:
    sub = type("Sub", (HoldsIntBox,), {"__annotations__": {"box": Param[narrower]}})
    value = sub(box=build(item=3))
    assert value.box.item == 3
    with pytest.raises(ConfigTypeError, match=r"Sub.box"):
        sub(box=StrBox(item="x"))


@pytest.mark.parametrize(
    ("wider", "spelled"),
    [
        (StrBox, "Param[StrBox]"),
        (Box[str], "Param[Box[str]]"),
        (OpenBox, "Param[OpenBox]"),  # T unbound: any item
        (OpenBox[str], "Param[OpenBox[str]]"),
        (Box, "Param[Box]"),
    ],
)
def test_a_subclass_binding_another_type_does_not_narrow(wider: Any, spelled: str) -> None:
    with pytest.raises(ConfigDefinitionError, match=r"Sub.box redeclares .*HoldsIntBox.box") as e:
        type("Sub", (HoldsIntBox,), {"__annotations__": {"box": Param[wider]}})
    assert f"(Param[Box[int]]) as {spelled}," in str(e.value)


def test_the_bound_base_does_not_narrow_a_bound_subclass() -> None:
    """The other direction: a Box[int] need not be an IntBox."""
    with pytest.raises(ConfigDefinitionError, match=r"\(Param\[IntBox\]\) as Param\[Box\[int\]\]"):
        type("Sub", (HoldsBoundSubclass,), {"__annotations__": {"box": Param[Box[int]]}})
    narrower = type("Sub", (HoldsBoundSubclass,), {"__annotations__": {"box": Param[DeepIntBox]}})
    assert narrower(box=DeepIntBox(item=1)).box.item == 1


class Shelf(Config, id="var.test.shelf"):
    boxes: Param[list[Box[int]]]


class Stock(Task, id="var.test.stock"):
    shelf: Param[Shelf]

    def execute(self) -> None:
        pass


def test_sealing_checks_bound_boxes_again_with_the_path(tmp_path: Path) -> None:
    shelf = Shelf(boxes=[Box(item=1), Box(item=2)])
    stock = Stock(shelf=shelf)
    shelf.boxes[1].item = "x"
    with pytest.raises(ConfigTypeError, match=r"Stock.shelf.boxes\[1\].item: expected int"):
        seal(stock, tmp_path)
    assert not is_frozen(stock)  # refused before anything was decided
    shelf.boxes.append(Box(item=1.5))  # lists may change too
    shelf.boxes[1].item = 2
    with pytest.raises(ConfigTypeError, match=r"Stock.shelf.boxes\[2\]: expected Box\[int\]"):
        seal(stock, tmp_path)
    shelf.boxes.pop()
    assert seal(stock, tmp_path).task is stock


def test_a_box_built_with_its_parameters_checks_every_change() -> None:
    box = Box[int](item=1)
    with pytest.raises(ConfigTypeError, match=r"Box.item: expected int"):
        box.item = "x"


# --- ignore() -----------------------------------------------------------------------------


def test_an_ignored_sub_config_does_not_count() -> None:
    plain = Fit(model=model(), data=Data(name="train"))
    one = Fit(model=model(), data=Data(name="train"), validation=ignore(Data(name="v1")))
    two = Fit(model=model(), data=Data(name="train"), validation=ignore(Data(name="v2")))
    counted = Fit(model=model(), data=Data(name="train"), validation=Data(name="v1"))
    assert identifier(one) == identifier(two) == identifier(plain)
    assert identifier(counted) != identifier(plain)
    assert one.validation.name == "v1"
    assert one != plain and one != counted  # equal configs have equal identifiers
    # assigned later, and cleared by assigning a plain value
    later = Fit(model=model(), data=Data(name="train"))
    later.validation = ignore(Data(name="v3"))
    assert identifier(later) == identifier(plain)
    later.validation = Data(name="v1")
    assert identifier(later) == identifier(counted)


def test_an_ignored_sub_config_survives_params_json() -> None:
    fit = Fit(model=model(), validation=ignore(Data(name="v1")))
    freeze(fit)
    document = to_document(fit)
    root = document["objects"][document["root"]]
    assert root["ignored"] == ["validation"]
    loaded = reload(fit)
    assert identifier(loaded) == identifier(fit) == identifier(Fit(model=model()))
    assert loaded.validation.name == "v1"
    assert b'"ignored"' not in dumps(Fit(model=model()))  # nothing new for other configs


def test_ignore_takes_a_config() -> None:
    with pytest.raises(ConfigTypeError, match=r"ignore\(\): expected a config instance"):
        ignore(3)


# --- distinct() ---------------------------------------------------------------------------


def test_distinct_instances_keep_separate_identities_and_objects() -> None:
    tied = Model(encoder=Layer(), decoder=Layer())
    untied = Model(encoder=distinct(Layer(), "encoder"), decoder=distinct(Layer(), "decoder"))
    assert identifier(untied.encoder) != identifier(untied.decoder)
    assert identifier(untied.encoder) != identifier(Layer())
    assert identifier(untied) != identifier(tied)
    assert untied.encoder != untied.decoder
    freeze(tied)
    freeze(untied)
    loaded_tied = reload(tied)
    assert loaded_tied.encoder is loaded_tied.decoder  # equal configs are one object
    loaded = reload(untied)
    assert loaded.encoder is not loaded.decoder
    assert state_of(loaded.encoder).instance == "encoder"
    assert identifier(loaded) == identifier(untied)


def test_distinct_refuses_bad_keys_and_submitted_configs() -> None:
    with pytest.raises(ConfigTypeError, match=r"non-empty str key"):
        distinct(Layer(), "")
    with pytest.raises(ConfigTypeError, match=r"expected a config instance"):
        distinct(3, "a")  # type: ignore[type-var]
    layer = Layer()
    freeze(layer)
    with pytest.raises(FrozenConfigError, match=r"identity cannot change"):
        distinct(layer, "a")
    assert state_of(distinct(layer.replace(), "a")).instance == "a"


# --- count_default ------------------------------------------------------------------------


def test_a_counted_default_is_part_of_the_identity() -> None:
    class Plain(Config, id="var.test.counting"):
        x: Param[int]

    class Counting(Config, id="var.test.counting"):
        x: Param[int]
        rate: Param[float] = field(default=0.5, count_default=True)

    class Moved(Config, id="var.test.counting"):
        x: Param[int]
        rate: Param[float] = field(default=0.7, count_default=True)

    assert identifier(Counting(x=1)) == identifier(Counting(x=1, rate=0.5))
    assert identifier(Counting(x=1)) != identifier(Plain(x=1))
    # changing the default changes the identifier of configs relying on it
    assert identifier(Moved(x=1)) != identifier(Counting(x=1))
    assert identifier(Moved(x=1, rate=0.5)) == identifier(Counting(x=1))


def test_count_default_needs_a_param_with_a_default() -> None:
    with pytest.raises(ConfigDefinitionError, match=r"expected a default"):
        field(count_default=True)
    with pytest.raises(ConfigDefinitionError, match=r"Param fields only"):

        class Bad(Config, id="var.test.bad-count"):
            x: Meta[int] = field(default=1, count_default=True)


def test_type_parameters_in_nested_annotations_are_checked() -> None:
    class Pair(Config, Generic[T], id="var.test.pair"):
        left: Param[T]
        right: Param[list[T]] = field(default_factory=list)

    with pytest.raises(ConfigTypeError, match=r"Pair.right\[0\]: expected int"):
        Pair[int](left=1, right=["x"])
    assert Pair[str](left="a", right=["b"]).right == ["b"]


class Nest(Config, id="var.test.nest"):
    main: Param[Data]
    side: Param[Data | None] = None


class Emit(Task, id="var.test.emit"):
    nest: Param[Nest]

    def outputs(self) -> Nest:
        return self.nest


def test_an_output_copied_from_the_task_keeps_its_marks(tmp_path: Path) -> None:
    nest = distinct(Nest(main=Data(name="a"), side=ignore(Data(name="b"))), "k")
    task = Emit(nest=nest)
    before = identifier(nest)
    sealed = seal(task, tmp_path)
    output = sealed.outputs
    assert output is not nest
    assert state_of(output).ignored == {"side"} and state_of(output).instance == "k"
    assert identifier(nest) == before


class Grow(Task, id="var.test.grow", shared={"ckpt": ("epochs",)}):
    data: Param[Data]
    validation: Param[Data | None] = None
    epochs: Param[int] = 1


def test_a_shared_folder_follows_ignore_and_distinct_like_the_identifier() -> None:
    from partita.config._shared import shared_identifier

    plain = Grow(data=Data(name="d"))
    ignored = Grow(data=Data(name="d"), validation=ignore(Data(name="v")), epochs=5)
    assert shared_identifier(ignored, "ckpt") == shared_identifier(plain, "ckpt")
    counted = Grow(data=Data(name="d"), validation=Data(name="v"))
    assert shared_identifier(counted, "ckpt") != shared_identifier(plain, "ckpt")
    keyed = distinct(Grow(data=Data(name="d")), "k")
    assert shared_identifier(keyed, "ckpt") != shared_identifier(plain, "ckpt")
