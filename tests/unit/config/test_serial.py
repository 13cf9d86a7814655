"""params.json: stable bytes, exact round trips, moved work directories, scripts, load errors."""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import pytest
from cfgclasses import (
    Adam,
    After,
    Before,
    Branch,
    Checkpoint,
    Color,
    Concat,
    Evaluate,
    Leaf,
    Level,
    NoId,
    Outer,
    Root,
    Say,
    Train,
    Typed,
    Value,
    VersionOne,
    task_output,
)

import partita
from partita import Config, identifier
from partita.config import _runtime, dumps, from_document, is_frozen, to_document
from partita.config._config import state_of
from partita.config._runtime import register_workspace
from partita.errors import FrozenConfigError, LoadError, TaskImportError


def round_trip(cfg: Config, **options: Any) -> Config:
    """from_document(json.loads(dumps(cfg)))."""
    return from_document(json.loads(dumps(cfg)), **options)


def write_job(root: Path, cfg: Config) -> Path:
    """Write cfg's params.json where the work directory ``root`` keeps its job folder."""
    jobdir = root / "jobs" / type(cfg)._partita_type_id / identifier(cfg)
    jobdir.mkdir(parents=True)
    (jobdir / "params.json").write_bytes(dumps(cfg))
    return jobdir


def document_of(cfg: Config) -> dict[str, Any]:
    """The parsed params.json document of cfg."""
    return json.loads(dumps(cfg))


def shared_leaves() -> Config:
    """One sub-config used in three places."""
    leaf = Leaf(n=4, note="shared")
    return Value(v={"a": leaf, "b": [leaf, (leaf,)]})


ROUND_TRIPS: dict[str, Callable[[], Config]] = {
    "defaults": lambda: Typed(),
    "every-type": lambda: Typed(
        flag=True,
        count=-3,
        rate=2.5,
        name="é\x00\n\"'",
        path="/data/x y",
        color=Color.GREEN,
        level=Level.HIGH,
        maybe=0,
        mode=3,
        ints=[3, 1, 2],
        pair=(1, "x"),
        floats=(0.5, 1e300, 5e-324),
        labels={"b", "a", "c"},
        weights={"w": 1.5, "v": -0.0},
        number="7",
        anything={"t": (1, [2, (3,)]), "s": frozenset({1, "1"})},
        leaf=Leaf(n=1, note="meta"),
        leaves=[Leaf(n=2), Leaf(n=3)],
        leaf_map={"k": Leaf(n=3)},
        leaf_set={Leaf(n=4), Leaf(n=5)},
        task=Say(word="t"),
        tasks=[Say(word="u"), Say(word="v")],
        nested={"n": [(1, 2), ()]},
    ),
    "nan": lambda: Value(v=float("nan")),
    "inf": lambda: Value(v=[float("inf"), float("-inf"), -0.0]),
    "floats-in-containers": lambda: Typed(floats=(math.nan, math.inf), weights={"x": -math.inf}),
    "int-valued-float": lambda: Value(v=[2.0, 2, True]),
    "big-int": lambda: Value(v=2**200),
    "enum": lambda: Value(v=[Color.RED, Level.LOW]),
    "tuple": lambda: Value(v=(1, (2, 3), [4])),
    "empty-containers": lambda: Value(v=[[], (), {}, frozenset()]),
    "frozenset": lambda: Value(v=frozenset({"z", 1, 2.5, None, (1,)})),
    "dollar-keys": lambda: Value(
        v={
            "$ref": 0,
            "$path": "p",
            "$float": "nan",
            "$tuple": [1],
            "$set": [],
            "$enum": "x",
            "$dict": {"$x": {"$y": 1}},
            "plain": {"$nested": True},
        }
    ),
    "dict-of-plain-keys": lambda: Value(v={"ref": {"path": "x"}}),
    "paths": lambda: Value(v=[Path("rel/p"), Path("/abs/p"), PurePosixPath("/pure")]),
    "nested": lambda: Root(branch=Branch(leaf=Leaf(n=1, note="deep"), label="l")),
    "shared": shared_leaves,
    "tasks": lambda: Concat(strings=[Say(word="hello"), Say(word="world")]),
    "task-with-meta-and-constant": lambda: Train(optimizer=Adam(lr=0.1), device="gpu"),
    "task-output": lambda: Evaluate(
        checkpoint=task_output(Train(epochs=3), "/data/model.pt"), data="/data/test.csv"
    ),
    "no-id": lambda: NoId(x=3),
    "nested-class": lambda: Outer(inner=Outer.Inner(x=2)),
    "evolving": lambda: After(x=1, y="set"),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_round_trip_gives_an_equal_config(name: str) -> None:
    """from_document(json.loads(dumps(cfg))) is equal to cfg and has its identifier."""
    cfg = ROUND_TRIPS[name]()
    back = round_trip(cfg)
    assert type(cfg) is type(back)
    assert cfg == back
    assert identifier(cfg) == identifier(back)
    assert dumps(cfg) == dumps(back)


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_round_trip_keeps_every_field_exactly(name: str) -> None:
    """Every field comes back with the same kind, including Meta fields and float specials."""
    cfg = ROUND_TRIPS[name]()
    back = round_trip(cfg)
    present = [f.name for f in partita.fields(cfg) if f.name in cfg.__dict__]
    assert present == [f.name for f in partita.fields(back) if f.name in back.__dict__]
    for field in present:
        assert_exact(cfg.__dict__[field], back.__dict__[field], f"{type(cfg).__name__}.{field}")


def kind(value: Any) -> type:
    """The type of a value; frozen lists and dicts count as lists and dicts, paths as paths."""
    for base in (list, dict, PurePath):
        if isinstance(value, base):
            return base
    return type(value)


def assert_exact(mine: Any, theirs: Any, where: str) -> None:
    """Same kinds all the way down, floats bit for bit (NaN and the sign of zero included)."""
    assert kind(mine) is kind(theirs), where
    if isinstance(mine, Config):
        assert mine == theirs, where
    elif isinstance(mine, list | tuple):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            assert_exact(a, b, f"{where}[{i}]")
    elif isinstance(mine, dict):
        assert list(mine) == list(theirs) or sorted(mine) == sorted(theirs), where
        for key in mine:
            assert_exact(mine[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(mine, float):
        assert struct.pack(">d", mine) == struct.pack(">d", theirs) or (
            math.isnan(mine) and math.isnan(theirs)
        ), where
    else:
        assert mine == theirs, where


def test_round_trip_of_floats_is_bit_exact() -> None:
    """Floats come back bit for bit: NaN, infinities, -0.0 and subnormals."""
    values = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1 / 3, 1e300]
    back = round_trip(Value(v=values)).v
    assert [math.copysign(1, v) for v in values[3:]] == [math.copysign(1, v) for v in back[3:]]
    assert math.isnan(back[0])
    assert values[1:] == back[1:]


def test_round_trip_result_is_frozen() -> None:
    """A config read back is frozen, with its sub-configs, lists and dicts."""
    back = round_trip(Typed(ints=[1], leaves=[Leaf()], weights={"a": 1.0}))
    assert is_frozen(back)
    assert is_frozen(back.leaves[0])
    with pytest.raises(FrozenConfigError):
        back.count = 2
    with pytest.raises(FrozenConfigError):
        back.ints.append(2)
    with pytest.raises(FrozenConfigError):
        back.weights["b"] = 2.0
    with pytest.raises(FrozenConfigError):
        back.leaves[0].n = 1


def test_round_trip_freezes_every_level_of_a_nested_graph() -> None:
    """Each config is frozen as it is built, with the lists of the configs below it."""
    back = round_trip(Root(branch=Branch(leaf=Leaf(n=1))))
    assert all(is_frozen(c) for c in (back, back.branch, back.branch.leaf))
    with pytest.raises(FrozenConfigError):
        back.branch.leaf.n = 2
    tasks = round_trip(Concat(strings=[Say(word="a"), Say(word="b")]))
    assert all(is_frozen(c) for c in (tasks, *tasks.strings))
    with pytest.raises(FrozenConfigError):
        tasks.strings.append(Say(word="c"))


def test_shared_subconfig_is_stored_once_and_shared_again() -> None:
    """A sub-config used in several places is one object in the document and after loading."""
    document = document_of(shared_leaves())
    assert 2 == len(document["objects"])
    assert 1 == document["root"]
    back = from_document(document)
    leaf = back.v["a"]
    assert leaf is back.v["b"][0] is back.v["b"][1][0]
    assert "shared" == leaf.note


def test_equal_subconfigs_are_stored_once() -> None:
    """Two equal sub-configs are written as one object."""
    document = document_of(Concat(strings=[Say(word="a"), Say(word="a")]))
    assert 2 == len(document["objects"])
    assert [{"$ref": 0}, {"$ref": 0}] == document["objects"][1]["fields"]["strings"]


def test_task_output_keeps_its_producer() -> None:
    """A task output is written with a reference to its producer and read back with it."""
    train = Train(epochs=3)
    cfg = Evaluate(checkpoint=task_output(train, "/data/model.pt"), data="/data/test.csv")
    document = document_of(cfg)
    checkpoint = next(o for o in document["objects"] if o["type"] == "test.checkpoint")
    producer = document["objects"][checkpoint["producer"]]
    assert ("test.train", identifier(train)) == (producer["type"], producer["id"])
    back = from_document(document)
    assert train == state_of(back.checkpoint).producer
    assert identifier(cfg.checkpoint) == identifier(back.checkpoint)


# --- the document -------------------------------------------------------------------------


def test_document_layout() -> None:
    """The document lists objects children first, each with class, type, id and fields."""
    cfg = Branch(leaf=Leaf(n=1, note="m"))
    assert {
        "format": "partita.params/1",
        "objects": [
            {
                "class": "cfgclasses:Leaf",
                "type": "test.leaf",
                "id": identifier(Leaf(n=1)),
                "fields": {"n": 1, "note": "m"},
            },
            {
                "class": "cfgclasses:Branch",
                "type": "test.branch",
                "id": identifier(cfg),
                "fields": {"label": "b", "leaf": {"$ref": 0}},
            },
        ],
        "root": 1,
    } == to_document(cfg)


def test_tagged_values_in_the_document() -> None:
    """Values JSON cannot say directly are written as $-tagged objects."""
    cfg = Value(
        v=[
            (1,),
            frozenset({2, 1}),
            math.nan,
            math.inf,
            -math.inf,
            Color.RED,
            Path("/p"),
            {"$k": 1},
            {"k": 1},
        ]
    )
    assert [
        {"$tuple": [1]},
        {"$set": [1, 2]},
        {"$float": "nan"},
        {"$float": "inf"},
        {"$float": "-inf"},
        {"$enum": "cfgclasses:Color", "name": "RED"},
        {"$path": "/p"},
        {"$dict": {"$k": 1}},
        {"k": 1},
    ] == document_of(cfg)["objects"][0]["fields"]["v"]


def test_generated_path_not_yet_set_is_not_written() -> None:
    """A PathGenerator field without a value is absent from the document."""
    assert "model" not in document_of(Train())["objects"][-1]["fields"]


def test_dumps_is_byte_stable() -> None:
    """The same config built twice gives the same bytes; they are UTF-8 JSON with sorted keys."""
    first = dumps(ROUND_TRIPS["every-type"]())
    second = dumps(ROUND_TRIPS["every-type"]())
    assert first == second
    assert first.endswith(b"}\n")
    text = first.decode("utf-8")
    assert json.dumps(json.loads(text), indent=1, sort_keys=True, ensure_ascii=False) + "\n" == text


def _standard(document: Any) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_dumps_writes_what_the_standard_encoder_writes(name: str) -> None:
    """params.json's own writer gives the bytes of ``json.dumps(indent=1, sort_keys=True)``
    (the bytes of folders written before it existed must match, or reruns rewrite them)."""
    cfg = ROUND_TRIPS[name]()
    expected = (_standard(to_document(cfg)) + "\n").encode("utf-8", "backslashreplace")
    assert dumps(cfg) == expected


@pytest.mark.parametrize(
    "document",
    [
        {},
        [],
        {"a": [], "b": {}, "c": [[], [{}]], "d": [1, [2, [3, {"e": None}]]]},
        {"z": 1, "a": 2, "M": 3, "é": 4, "e\u0301": 5, "": 6, 'k"ey\n': 7, "\x00": 8},
        {"s": 'ünïcødé \u2028 \U0001f600 \\ " \t \x7f \x1f', "surrogate": "\udcff"},
        {"f": [0.0, -0.0, 1e100, 1.5e-300, 0.1, 2.0**53, -3.25, 1e16, 123456789.123]},
        {"i": [0, -1, 2**64, -(2**70), True, False, None]},
        {"deep": [[[[[[[[{"x": [1]}]]]]]]]]},
    ],
)
def test_indented_writer_matches_json_dumps(document: Any) -> None:
    """The writer on plain JSON documents, key order, escapes and numbers included."""
    from partita.config._serial import _json_text

    assert _json_text(document) == _standard(document)


def test_indented_writer_falls_back_for_other_values() -> None:
    """Values outside plain JSON (a tuple, a str subclass, int keys, nan) are written, or
    refused, exactly as ``json.dumps`` does."""
    from partita.config._serial import _json_text

    class Text(str):
        pass

    documents: list[Any] = [{"t": (1, 2)}, {"s": Text("x")}, {1: "a"}, [{"k": [Text("y")]}]]
    for document in documents:
        assert _json_text(document) == json.dumps(
            document, indent=1, sort_keys=True, ensure_ascii=False
        )
    with pytest.raises(ValueError):
        _json_text({"f": math.nan})


def test_dumps_has_no_memory_addresses() -> None:
    """No object addresses or reprs leak into params.json."""
    text = dumps(ROUND_TRIPS["every-type"]()).decode() + dumps(Outer()).decode()
    assert [] == re.findall(r"0x[0-9a-fA-F]{4,}|object at|<", text)


def test_dumps_ignores_dict_and_set_order() -> None:
    """Dict insertion order and set iteration order do not change the bytes."""
    first = Value(v={"a": 1, "b": frozenset({"x", "y", "z"})})
    second = Value(v={"b": frozenset({"z", "y", "x"}), "a": 1})
    assert dumps(first) == dumps(second)


def test_dumps_is_stable_across_processes(tmp_path: Path) -> None:
    """Another interpreter with another hash seed writes the same bytes."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import cfgclasses; "
        "from partita.config import dumps; "
        "v = cfgclasses.Value(v={'s': frozenset({'pear', 'apple', 'fig', 'kiwi'}), 'n': 1}); "
        "sys.stdout.buffer.write(dumps(v))"
    )
    here = str(Path(__file__).resolve().parent)
    expected = dumps(Value(v={"s": frozenset({"pear", "apple", "fig", "kiwi"}), "n": 1}))
    for seed in ("1", "99"):
        done = subprocess.run(
            [sys.executable, "-c", code, here],
            cwd=tmp_path,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            timeout=60,
            check=True,
        )
        assert expected == done.stdout


def test_frozen_config_can_be_copied_and_pickled() -> None:
    """deepcopy and pickle work on frozen configs (their read-only lists and dicts)."""
    back = round_trip(Typed(ints=[1, 2], weights={"a": 1.0}, leaves=[Leaf(n=1)]))
    for clone in (copy.deepcopy(back), pickle.loads(pickle.dumps(back))):
        assert back == clone
        assert identifier(back) == identifier(clone)
        with pytest.raises(FrozenConfigError):
            clone.ints.append(3)


# --- load() from a work directory ---------------------------------------------------------


def test_load_a_job_folder(tmp_path: Path) -> None:
    """partita.load(jobdir) reads params.json back: equal, same identifier, frozen."""
    cfg = Concat(strings=[Say(word="hello"), Say(word="world")])
    jobdir = write_job(tmp_path / "ws", cfg)
    back = partita.load(jobdir)
    assert cfg == back
    assert identifier(cfg) == identifier(back)
    assert is_frozen(back)
    assert jobdir.resolve() == back.jobdir
    assert (jobdir / "stdout").resolve() == back.stdout()
    assert partita.load(jobdir / "params.json") == back


def test_load_takes_a_prefetched_document_while_the_file_is_the_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document parsed ahead (by the fork server) is used only for the same file."""
    from partita.config import _serial

    cfg = Concat(strings=[Say(word="hello")])
    jobdir = write_job(tmp_path / "ws", cfg)
    params = jobdir / "params.json"
    reads: list[Path] = []
    read_text = Path.read_text

    def counted(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    _serial.prefetch(params, os.stat(params), json.loads(read_text(params)))
    assert partita.load(jobdir) == cfg
    assert params not in reads  # taken from the prefetched document
    # Replaced since it was read (another inode): read again, whatever was kept.
    _serial.prefetch(params, os.stat(params), {"format": "stale"})
    tmp = params.with_name("params.tmp")
    tmp.write_bytes(params.read_bytes())
    os.replace(tmp, params)
    assert partita.load(jobdir) == cfg
    assert params in reads
    assert not _serial._prefetched  # used once


class Warm(partita.Config, id="test.serial.warm"):
    """Names itself: its fields cannot be resolved while it is defined, only later."""

    size: partita.Param[int]
    previous: partita.Param[Warm | None] = None


class BrokenHint(partita.Config, id="test.serial.brokenhint"):
    """A hint that names nothing: resolving it fails."""

    size: partita.Param[NotDefinedAnywhere]  # type: ignore[name-defined]  # noqa: F821


def test_warm_class_resolves_the_fields_a_forked_child_inherits() -> None:
    """The fork server resolves a class's fields once, so a child need not."""
    from partita.config import _serial

    assert "_partita_fields" not in Warm.__dict__
    _serial.warm_class(Warm)
    assert ["size", "previous"] == list(Warm.__dict__["_partita_fields"])
    _serial.warm_class(int)  # not a config: nothing to do
    _serial.warm_class("not a class")
    _serial.warm_class(BrokenHint)  # the load reports it, not the server
    assert "_partita_fields" not in BrokenHint.__dict__


def test_load_after_moving_the_work_directory(tmp_path: Path) -> None:
    """Workspace-relative paths come back under the new root; identifiers do not change."""
    old, new = tmp_path / "old", tmp_path / "new"
    register_workspace(old)
    train = Train(epochs=2)
    model = old / "jobs" / "test.train" / identifier(train) / "model.pt"
    cfg = Evaluate(
        checkpoint=task_output(train, model),
        data=Path("/data/test.csv"),
        extra={"also": old / "jobs" / "x" / "y", "outside": old / "notes.txt"},
    )
    jobdir = write_job(old, cfg)
    document = json.loads((jobdir / "params.json").read_text())
    checkpoint = next(o for o in document["objects"] if o["type"] == "test.checkpoint")
    assert {
        "$path": f"jobs/test.train/{identifier(train)}/model.pt",
        "base": "workspace",
    } == checkpoint["fields"]["path"]
    shutil.copytree(old, new)
    shutil.rmtree(old)

    back = partita.load(new / jobdir.relative_to(old))
    root = new.resolve()
    assert root / "jobs" / "test.train" / identifier(train) / "model.pt" == back.checkpoint.path
    assert root / "jobs" / "x" / "y" == back.extra["also"]
    assert old / "notes.txt" == back.extra["outside"]
    assert Path("/data/test.csv") == back.data
    assert identifier(cfg) == identifier(back)
    assert root / "jobs" / "test.evaluate" / identifier(cfg) == back.jobdir
    producer = state_of(back.checkpoint).producer
    assert root / "jobs" / "test.train" / identifier(train) == producer.jobdir


def test_load_outside_a_work_directory(tmp_path: Path) -> None:
    """A params.json outside WORKDIR/jobs loads, unless it has workspace-relative paths."""
    (tmp_path / "params.json").write_bytes(dumps(Say(word="x")))
    assert Say(word="x") == partita.load(tmp_path)
    register_workspace(tmp_path / "ws")
    relative = Checkpoint(path=tmp_path / "ws" / "jobs" / "a" / "b")
    (tmp_path / "params.json").write_bytes(dumps(relative))
    with pytest.raises(LoadError, match="a path is relative to a work directory that is unknown"):
        partita.load(tmp_path)


def test_load_missing_folder(tmp_path: Path) -> None:
    """Loading a folder without params.json is a LoadError that says what to pass."""
    with pytest.raises(LoadError) as caught:
        partita.load(tmp_path)
    assert (
        f"expected a job folder with a params.json, found no {tmp_path / 'params.json'}. Pass "
        "the folder of a job (WORKDIR/jobs/<type>/<identifier>)." == str(caught.value)
    )


def test_load_unreadable_json(tmp_path: Path) -> None:
    """A params.json that is not JSON is a LoadError."""
    (tmp_path / "params.json").write_text("{not json")
    with pytest.raises(LoadError, match=r"cannot read .*params\.json"):
        partita.load(tmp_path)


def test_load_other_format(tmp_path: Path) -> None:
    """A document of another format version is refused."""
    (tmp_path / "params.json").write_text(json.dumps({"format": "partita.params/99"}))
    with pytest.raises(
        LoadError, match=re.escape("expected a params document of format 'partita.params/1'")
    ):
        partita.load(tmp_path)


def test_load_with_changed_identifier(tmp_path: Path) -> None:
    """A document whose recorded identifier differs from the recomputed one is refused."""
    jobdir = write_job(tmp_path / "ws", Say(word="x"))
    document = json.loads((jobdir / "params.json").read_text())
    document["objects"][0]["fields"]["word"] = "y"
    (jobdir / "params.json").write_text(json.dumps(document))
    with pytest.raises(LoadError, match=r"not .*the folder of the job.*edited by hand"):
        partita.load(jobdir)
    elsewhere = tmp_path / "copy.json"  # outside a job folder: the recorded identifier
    elsewhere.write_text(json.dumps(document))
    with pytest.raises(LoadError, match="the job was created with identifier"):
        partita.load(elsewhere)


def test_load_field_removed_from_the_class(tmp_path: Path) -> None:
    """A field present in params.json but gone from the class is a clear LoadError."""
    jobdir = write_job(tmp_path / "ws", Adam(lr=0.5))
    document = json.loads((jobdir / "params.json").read_text())
    document["objects"][0]["fields"]["weight_decay"] = 0.1
    (jobdir / "params.json").write_text(json.dumps(document))
    with pytest.raises(LoadError) as caught:
        partita.load(jobdir)
    assert not isinstance(caught.value, TaskImportError)
    assert (
        f"{jobdir / 'params.json'}: Adam has no field 'weight_decay' any more, but this job was "
        "created with it. Restore the field (with a default) to load this job." == str(caught.value)
    )


def test_load_field_added_with_a_default() -> None:
    """A job written before a field with a default was added loads with that default."""
    document = document_of(Before(x=1))
    document["objects"][0]["class"] = "cfgclasses:After"
    back = from_document(document)
    assert (type(back), back.x, back.y) == (After, 1, "new")
    assert identifier(Before(x=1)) == identifier(back)


def test_load_required_field_added() -> None:
    """A job written before a required field was added cannot be loaded."""
    document = document_of(VersionOne(x=1))
    document["objects"][0]["class"] = "cfgclasses:Checkpoint"
    document["objects"][0]["fields"] = {}
    with pytest.raises(
        LoadError, match=re.escape("Checkpoint.path is required but this job was created")
    ):
        from_document(document)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "no_such_module_for_partita:Say",
            "cannot import no_such_module_for_partita:Say: ModuleNotFoundError: No module named "
            "'no_such_module_for_partita'. The job runs in a new Python process; make sure the "
            "module is importable there (installed, or on PYTHONPATH).",
        ),
        ("cfgclasses:Vanished", "module cfgclasses does not define Vanished."),
        ("cfgclasses:Outer.Gone", "module cfgclasses does not define Outer.Gone."),
    ],
)
def test_load_unimportable_class(reference: str, message: str) -> None:
    """A class that cannot be imported is a TaskImportError (a LoadError and ImportError)."""
    document = document_of(Say(word="x"))
    document["objects"][0]["class"] = reference
    with pytest.raises(TaskImportError) as caught:
        from_document(document)
    assert isinstance(caught.value, LoadError)
    assert isinstance(caught.value, ImportError)
    assert message == str(caught.value)


def test_load_class_that_is_not_a_config() -> None:
    """A class reference naming something else than a Config is refused."""
    document = document_of(Say(word="x"))
    document["objects"][0]["class"] = "cfgclasses:Color"
    with pytest.raises(LoadError, match=re.escape("cfgclasses:Color is not a Config class.")):
        from_document(document)


def test_load_script_that_disappeared(tmp_path: Path) -> None:
    """A class of a script that no longer exists is a TaskImportError naming the file."""
    document = document_of(Say(word="x"))
    document["objects"][0]["class"] = "__main__:Say"
    document["objects"][0]["file"] = str(tmp_path / "gone.py")
    with pytest.raises(TaskImportError, match=r"gone.py to define this class, but the file"):
        from_document(document)


# --- tasks defined in a script ------------------------------------------------------------

SCRIPT = '''
"""An experiment script: classes first, then the experiment block."""

import enum
import sys

import partita
from partita import Param, Task

IMPORTED = []


class Mood(enum.Enum):
    CALM = 1
    HAPPY = 2


class Greet(Task, id="script.greet"):
    """Defined in the script itself."""

    name: Param[str]
    mood: Param[Mood] = Mood.CALM
    times: Param[int] = 1

    def execute(self) -> None:
        print(self.name * self.times)


IMPORTED.append("classes")

with partita.experiment({workdir!r}, "script"):
    sys.exit(3)

AFTER_THE_BLOCK = True
raise SystemExit(4)
'''


@pytest.fixture
def script_import(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what importing an experiment script does to the process."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("PARTITA_SCRIPT_ARGV", raising=False)
    saved = sys.modules.pop(_runtime.SCRIPT_MODULE, None)
    yield
    sys.modules.pop(_runtime.SCRIPT_MODULE, None)
    if saved is not None:
        sys.modules[_runtime.SCRIPT_MODULE] = saved


def test_load_task_defined_in_a_script(tmp_path: Path, script_import: None) -> None:
    """load() imports the script only up to its experiment block and rebuilds the task."""
    never = tmp_path / "never-created"
    script = tmp_path / "my_experiment.py"
    script.write_text(textwrap.dedent(SCRIPT).format(workdir=str(never)))
    maker = (
        "import sys; from partita.config import _runtime, dumps; "
        "m = _runtime.import_script(sys.argv[1]); "
        "sys.stdout.buffer.write(dumps(m.Greet(name='ada', mood=m.Mood.HAPPY, times=2)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", maker, str(script)],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=True,
    )
    document = json.loads(done.stdout)
    root = document["objects"][document["root"]]
    assert ("__main__:Greet", str(script), "script.greet") == (
        root["class"],
        root["file"],
        root["type"],
    )
    assert {"$enum": "__main__:Mood", "file": str(script), "name": "HAPPY"} == root["fields"][
        "mood"
    ]
    jobdir = tmp_path / "ws" / "jobs" / "script.greet" / root["id"]
    jobdir.mkdir(parents=True)
    (jobdir / "params.json").write_bytes(done.stdout)

    task = partita.load(jobdir)

    module = sys.modules[_runtime.SCRIPT_MODULE]
    assert ["classes"] == module.IMPORTED
    assert not hasattr(module, "AFTER_THE_BLOCK")
    assert not never.exists()
    assert module.Greet is type(task)
    assert module.Greet(name="ada", mood=module.Mood.HAPPY, times=2) == task
    assert root["id"] == identifier(task)
    assert module.Mood.HAPPY is task.mood
    assert jobdir.resolve() == task.jobdir
    assert done.stdout == dumps(task)


def test_script_class_missing_from_the_script(tmp_path: Path, script_import: None) -> None:
    """A class that the script no longer defines above its experiment block is refused."""
    script = tmp_path / "exp.py"
    script.write_text(textwrap.dedent(SCRIPT).format(workdir=str(tmp_path / "w")))
    document = document_of(Say(word="x"))
    document["objects"][0]["class"] = "__main__:Farewell"
    document["objects"][0]["file"] = str(script)
    with pytest.raises(TaskImportError) as caught:
        from_document(document)
    assert str(caught.value).startswith(f"script {script} does not define Farewell.")


def test_malformed_params_document_is_a_load_error(tmp_path: Path) -> None:
    """A hand-edited or truncated params.json gives a LoadError that says so."""
    import partita
    from partita.errors import LoadError

    folder = tmp_path / "jobs" / "x" / "abc"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(
        '{"format": "partita.params/1", "objects": [{"oops": 1}], "root": 0}'
    )
    with pytest.raises(LoadError, match="not a valid params document"):
        partita.load(folder)
