"""Config and task classes shared by the config-layer tests, and the golden identity cases.

Everything here is at module level with an explicit ``id=`` (except :class:`NoId`), so that
``params.json`` documents can import the classes back and a subprocess can recompute the
golden identifiers. Never change a class used by :func:`golden_cases`: its identifiers are
pinned in ``tests/unit/golden/identity.json``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, Generic, Literal, TypeVar

from partita import Config, Constant, Meta, Param, PathGenerator, Task, distinct, field, ignore, tag
from partita.config import _runtime, identifier, renamed_enum
from partita.config._config import state_of


class Color(enum.Enum):
    """A plain enum (identity uses the member name, not its value)."""

    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    """An int enum: still encoded as an enum, never as an int."""

    LOW = 1
    HIGH = 2


@renamed_enum("cfgclasses.Color", members={"VERDE": "GREEN"})
class Hue(enum.Enum):
    """Color renamed, and its member GREEN renamed VERDE: the same identities."""

    RED = "red"
    VERDE = "green"


class Value(Config, id="test.value"):
    """One required value of any kind."""

    v: Param[Any]


class Maybe(Config, id="test.maybe"):
    """One optional value of any kind (default None)."""

    v: Param[Any] = None


class Scalar(Config, id="test.scalar"):
    """A union: the encoding follows the value, not the annotation."""

    v: Param[bool | int | float | str] = 0


class Leaf(Config, id="test.leaf"):
    """The smallest nested config."""

    n: Param[int] = 0
    note: Meta[str] = ""


class Branch(Config, id="test.branch"):
    """A config holding a config."""

    leaf: Param[Leaf]
    label: Param[str] = "b"


class Root(Config, id="test.root"):
    """Two levels of nesting."""

    branch: Param[Branch]


class Say(Task, id="test.say"):
    """Prints a word."""

    word: Param[str]


class Seed(Config, id="test.seed"):
    """A pre-task: a light config with execute()."""

    seed: Param[int]
    note: Meta[str] = ""

    def execute(self) -> None:
        """Nothing to do in unit tests."""


class Verbose(Config, id="test.verbose"):
    """Another pre-task."""

    level: Param[str] = "INFO"

    def execute(self) -> None:
        """Nothing to do in unit tests."""


class Concat(Task, id="test.concat"):
    """Depends on several tasks."""

    strings: Param[list[Say]]


class Node(Config, id="test.node"):
    """Refers to another node (so that a loop can be built)."""

    child: Param[Node | None] = None


class Typed(Config, id="test.typed"):
    """Every supported annotation, each with a default."""

    flag: Param[bool] = False
    count: Param[int] = 0
    rate: Param[float] = 0.0
    name: Param[str] = ""
    path: Param[Path] = Path("data")
    color: Param[Color] = Color.RED
    level: Param[Level] = Level.LOW
    maybe: Param[int | None] = None
    mode: Param[Literal["fast", "slow", 3]] = "fast"
    ints: Param[list[int]] = field(default_factory=list)
    pair: Param[tuple[int, str]] = (0, "")
    floats: Param[tuple[float, ...]] = ()
    labels: Param[frozenset[str]] = frozenset()
    weights: Param[dict[str, float]] = field(default_factory=dict)
    number: Param[int | str] = 0
    anything: Param[Any] = None
    leaf: Param[Leaf | None] = None
    leaves: Param[list[Leaf]] = field(default_factory=list)
    leaf_map: Param[dict[str, Leaf]] = field(default_factory=dict)
    leaf_set: Param[frozenset[Leaf]] = frozenset()
    task: Param[Say | None] = None
    tasks: Param[list[Say]] = field(default_factory=list)
    nested: Param[dict[str, list[tuple[int, ...]]]] = field(default_factory=dict)


class Adam(Config, id="test.adam"):
    """The Adam optimiser."""

    lr: Param[float] = 1e-3
    """Learning rate.

    Keep it small."""
    betas: Param[tuple[float, float]] = (0.9, 0.999)
    eps: Meta[float] = field(default=1e-8, help="Added to the denominator.")
    name: Param[str] = field(default="adam", help="Shown in logs.")
    """Ignored: help= wins over the attribute docstring."""


class Train(Task, id="test.train"):
    """Trains a model."""

    optimizer: Param[Adam] = field(default_factory=Adam)
    epochs: Param[int] = 10
    """Number of passes over the data."""
    device: Meta[str] = "cpu"
    version: Constant[int] = 1
    model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))


class Checkpoint(Config, id="test.checkpoint"):
    """What a training task produces."""

    path: Param[Path]


class Evaluate(Task, id="test.evaluate"):
    """Uses what a training task produced, and data outside the work directory."""

    checkpoint: Param[Checkpoint]
    data: Param[Path]
    extra: Param[dict[str, Any]] = field(default_factory=dict)


class VersionOne(Config, id="test.versioned"):
    """Version 1 of a class (``VersionTwo`` is the same class with the Constant bumped)."""

    x: Param[int] = 0
    version: Constant[int] = 1


class VersionTwo(Config, id="test.versioned"):
    """Version 2 of ``VersionOne``."""

    x: Param[int] = 0
    version: Constant[int] = 2


class Before(Config, id="test.evolving"):
    """A class before a field is added (``After`` is the same class, later)."""

    x: Param[int]


class After(Config, id="test.evolving"):
    """``Before`` with a new field that has a default."""

    x: Param[int]
    y: Param[str] = "new"


class Optim(Config, id="test.optim"):
    """A config before its class and fields are renamed (``Renamed`` is it, later)."""

    learning_rate: Param[float]
    momentum: Param[float] = 0.0


class Renamed(Config, id="test.optimizer", renamed_from="test.optim"):
    """``Optim`` renamed: another type id, ``learning_rate`` → ``lr``, ``momentum`` → ``beta``
    (which sorts before ``lr``: the identity keeps the former names and their order)."""

    lr: Param[float] = field(renamed_from="learning_rate")
    beta: Param[float] = field(default=0.0, renamed_from="momentum")


class NoId(Config):
    """No explicit id: the type id is ``module.QualName``."""

    x: Param[int] = 0


class Outer(Config, id="test.outer"):
    """A nested class without id (qualified name ``Outer.Inner``)."""

    class Inner(Config):
        x: Param[int] = 0

    inner: Param[Outer.Inner] = field(default_factory=lambda: Outer.Inner())


class Counted(Config, id="test.counted"):
    """A Param whose default counts in the identity."""

    x: Param[int]
    rate: Param[float] = field(default=0.5, count_default=True)


G = TypeVar("G")


class GBox(Config, Generic[G], id="test.gbox"):
    """A config generic in the type of its item."""

    item: Param[G]


class Hold(Config, id="test.hold"):
    """A config with an optional second sub-config (for ignore())."""

    main: Param[Leaf]
    extra: Param[Leaf | None] = None


class Twins(Config, id="test.twins"):
    """Two sub-configs of one class (for distinct())."""

    a: Param[Leaf]
    b: Param[Leaf]


def task_output(producer: Task, path: str | Path) -> Checkpoint:
    """A checkpoint marked as produced by ``producer`` (as ``submit()`` does)."""
    ckpt = Checkpoint(path=path)
    state_of(ckpt).producer = producer
    return ckpt


# --- golden cases -------------------------------------------------------------------------

#: The work directory registered while golden identifiers are computed.
GOLDEN_ROOT = "/golden/workdir"


def _shared_leaf_pair() -> Config:
    leaf = Leaf(n=7)
    return Value(v=[leaf, leaf])


def golden_cases() -> dict[str, Callable[[], Config]]:
    """Named builders of configs whose identifiers are pinned by the golden file."""
    say = Say(word="hello")
    return {
        # one value of each kind, in a required Any field
        "value.none": lambda: Value(v=None),
        "value.true": lambda: Value(v=True),
        "value.false": lambda: Value(v=False),
        "value.int.0": lambda: Value(v=0),
        "value.int.1": lambda: Value(v=1),
        "value.int.negative": lambda: Value(v=-42),
        "value.int.big": lambda: Value(v=2**100),
        "value.float.1": lambda: Value(v=1.0),
        "value.float.0": lambda: Value(v=0.0),
        "value.float.-0": lambda: Value(v=-0.0),
        "value.float.tiny": lambda: Value(v=5e-324),
        "value.float.third": lambda: Value(v=1 / 3),
        "value.float.nan": lambda: Value(v=float("nan")),
        "value.float.inf": lambda: Value(v=float("inf")),
        "value.float.-inf": lambda: Value(v=float("-inf")),
        "value.str.1": lambda: Value(v="1"),
        "value.str.empty": lambda: Value(v=""),
        "value.str.unicode": lambda: Value(v="é ☃ 𝄞 \x00 \n"),
        "value.path.relative": lambda: Value(v=Path("data/train.csv")),
        "value.path.absolute": lambda: Value(v=Path("/data/train.csv")),
        "value.path.pure": lambda: Value(v=PurePosixPath("/data/train.csv")),
        "value.path.workspace": lambda: Value(v=Path(f"{GOLDEN_ROOT}/jobs/test.train/ab/m.pt")),
        "value.path.workspace-root": lambda: Value(v=Path(f"{GOLDEN_ROOT}/other/m.pt")),
        "value.enum": lambda: Value(v=Color.GREEN),
        "value.intenum": lambda: Value(v=Level.HIGH),
        "value.list.empty": lambda: Value(v=[]),
        "value.list": lambda: Value(v=[1, "a", None]),
        "value.list.nested": lambda: Value(v=[[1, 2], [3, [4.5]]]),
        "value.tuple.empty": lambda: Value(v=()),
        "value.tuple": lambda: Value(v=(1, "a")),
        "value.dict.empty": lambda: Value(v={}),
        "value.dict": lambda: Value(v={"b": 2, "a": [1], "c": {"d": None}}),
        "value.dict.dollar-keys": lambda: Value(v={"$ref": 1, "$path": "x"}),
        "value.frozenset": lambda: Value(v=frozenset({3, 1, 2})),
        "value.frozenset.mixed": lambda: Value(v=frozenset({"a", 1, 2.5, False, None})),
        "value.frozenset.empty": lambda: Value(v=frozenset()),
        "value.config": lambda: Value(v=Leaf(n=1)),
        "value.configs": lambda: Value(v={"x": [Leaf(n=1), Leaf(n=2)]}),
        "value.shared-config": _shared_leaf_pair,
        # unions and defaults
        "scalar.default": lambda: Scalar(),
        "scalar.bool": lambda: Scalar(v=True),
        "scalar.float": lambda: Scalar(v=0.0),
        "scalar.str": lambda: Scalar(v="0"),
        "maybe.default": lambda: Maybe(),
        "maybe.explicit-default": lambda: Maybe(v=None),
        "maybe.set": lambda: Maybe(v=1),
        # every annotation
        "typed.defaults": lambda: Typed(),
        "typed.all-set": lambda: Typed(
            flag=True,
            count=3,
            rate=2,
            name="n",
            path="p/q",
            color=Color.GREEN,
            level=Level.HIGH,
            maybe=5,
            mode=3,
            ints=[3, 1],
            pair=(1, "x"),
            floats=(0.5, 1),
            labels={"b", "a"},
            weights={"w": 1.5},
            number="7",
            anything=(1, [2]),
            leaf=Leaf(n=1),
            leaves=[Leaf(n=2)],
            leaf_map={"k": Leaf(n=3)},
            leaf_set={Leaf(n=4), Leaf(n=5)},
            task=Say(word="t"),
            tasks=[Say(word="u")],
            nested={"n": [(1, 2), ()]},
        ),
        # Meta fields, defaults, Constants, type ids
        "meta.default": lambda: Leaf(n=1),
        "meta.changed": lambda: Leaf(n=1, note="ignored"),
        "default.before-field-added": lambda: Before(x=1),
        "default.after-field-added": lambda: After(x=1),
        "default.new-field-set": lambda: After(x=1, y="other"),
        "constant.v1": lambda: VersionOne(x=1),
        "constant.v2": lambda: VersionTwo(x=1),
        "typeid.qualname": lambda: NoId(x=1),
        # migrations: a renamed class and renamed fields keep the identifiers
        "migrate.before-rename": lambda: Optim(learning_rate=0.1, momentum=0.9),
        "migrate.after-rename": lambda: Renamed(lr=0.1, beta=0.9),
        "migrate.before-rename.default": lambda: Optim(learning_rate=0.1),
        "migrate.after-rename.default": lambda: Renamed(lr=0.1),
        "migrate.nested-before-rename": lambda: Value(v=[Optim(learning_rate=0.5)]),
        "migrate.nested-after-rename": lambda: Value(v=[Renamed(lr=0.5)]),
        "migrate.enum-after-rename": lambda: Value(v=Hue.VERDE),
        "typeid.nested-qualname": lambda: Outer.Inner(x=1),
        "typeid.nested-in-explicit": lambda: Outer(inner=Outer.Inner(x=2)),
        # nesting (Merkle)
        "nested.branch": lambda: Branch(leaf=Leaf(n=1)),
        "nested.root": lambda: Root(branch=Branch(leaf=Leaf(n=1))),
        "nested.root-deep-change": lambda: Root(branch=Branch(leaf=Leaf(n=2))),
        "nested.root-deep-meta": lambda: Root(branch=Branch(leaf=Leaf(n=1, note="m"))),
        # tasks, tags and task outputs
        "task.say": lambda: Say(word="hello"),
        "task.say.tagged": lambda: Say(word=tag("hello")).tag("y", 1),
        "task.concat": lambda: Concat(strings=[Say(word="hello"), Say(word="world")]),
        "task.train.defaults": lambda: Train(),
        "task.train.set": lambda: Train(optimizer=Adam(lr=0.1), epochs=3, device="cuda"),
        "output.plain": lambda: Checkpoint(path=f"{GOLDEN_ROOT}/jobs/test.say/x/model"),
        "output.produced": lambda: task_output(say, f"{GOLDEN_ROOT}/jobs/test.say/x/model"),
        "output.other-producer": lambda: task_output(
            Say(word="other"), f"{GOLDEN_ROOT}/jobs/test.say/x/model"
        ),
        "output.as-parameter": lambda: Value(
            v=task_output(say, f"{GOLDEN_ROOT}/jobs/test.say/x/model")
        ),
        # defaults that count, type parameters, ignored and distinct instances, variants
        "counted.default": lambda: Counted(x=1),
        "counted.explicit-default": lambda: Counted(x=1, rate=0.5),
        "counted.set": lambda: Counted(x=1, rate=0.7),
        "generic.unbound": lambda: GBox(item=1),
        "generic.bound-int": lambda: GBox[int](item=1),
        "generic.bound-float": lambda: GBox[float](item=1),
        "ignore.absent": lambda: Hold(main=Leaf(n=1)),
        "ignore.ignored": lambda: Hold(main=Leaf(n=1), extra=ignore(Leaf(n=2))),
        "ignore.counted": lambda: Hold(main=Leaf(n=1), extra=Leaf(n=2)),
        "distinct.tied": lambda: Twins(a=Leaf(n=1), b=Leaf(n=1)),
        "distinct.untied": lambda: Twins(a=distinct(Leaf(n=1), "a"), b=distinct(Leaf(n=1), "b")),
        "distinct.leaf": lambda: distinct(Leaf(n=1), "a"),
        "variant.deep-change": lambda: Root(branch=Branch(leaf=Leaf(n=1))).replace(
            **{"branch.leaf.n": 2}
        ),
        # pre-tasks: part of the identity, in order; their Meta fields do not count
        "pretask.one": lambda: Say(word="hello").add_pretasks(Seed(seed=1)),
        "pretask.one.meta": lambda: Say(word="hello").add_pretasks(Seed(seed=1, note="m")),
        "pretask.other-value": lambda: Say(word="hello").add_pretasks(Seed(seed=2)),
        "pretask.two": lambda: Say(word="hello").add_pretasks(Seed(seed=1), Verbose()),
        "pretask.two.reordered": lambda: Say(word="hello").add_pretasks(Verbose(), Seed(seed=1)),
        "pretask.twice": lambda: Say(word="hello").add_pretasks(Seed(seed=1), Seed(seed=1)),
    }


def golden_identifiers(names: Iterable[str] | None = None) -> dict[str, str]:
    """Identifiers of the golden cases (all, or ``names``), with :data:`GOLDEN_ROOT` known."""
    cases = golden_cases()
    saved = _runtime._workspace_roots
    _runtime._workspace_roots = [GOLDEN_ROOT]
    try:
        return {name: identifier(cases[name]()) for name in (names or sorted(cases))}
    finally:
        _runtime._workspace_roots = saved
