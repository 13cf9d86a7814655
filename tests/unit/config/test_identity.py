"""Identifiers: the typed encoding, what counts, what does not, and the golden file."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path, PurePosixPath
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
    Counted,
    Hold,
    Leaf,
    Level,
    Maybe,
    NoId,
    Outer,
    Root,
    Say,
    Scalar,
    Train,
    Typed,
    Value,
    VersionOne,
    VersionTwo,
    golden_cases,
    golden_identifiers,
    task_output,
)

from partita import Config, Param, distinct, identifier, ignore, tag
from partita.config import digest, freeze
from partita.config._config import state_of
from partita.config._identity import encode_value
from partita.config._runtime import register_workspace
from partita.errors import PartitaWarning

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "golden" / "identity.json"
SCHEME = "partita.config/1"


def lp(data: bytes) -> bytes:
    """``data`` with its 4-byte big-endian length in front."""
    return struct.pack(">I", len(data)) + data


def config_digest(type_id: str, fields: list[tuple[str, bytes]], producer: bytes = b"") -> str:
    """The identifier spelled out from docs/identity.md: header, producer marker, fields."""
    data = b"partita.config/1\x00" + lp(type_id.encode())
    data += b"o" + producer if producer else b"-"
    for name, encoded in fields:
        data += lp(name.encode()) + encoded
    return hashlib.sha256(data).hexdigest()


# --- the byte encoding --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, b"N"),
        (True, b"T"),
        (False, b"F"),
        (0, b"i" + lp(b"0")),
        (-42, b"i" + lp(b"-42")),
        (2**70, b"i" + lp(str(2**70).encode())),
        (1.0, b"f" + struct.pack(">d", 1.0)),
        (-0.0, b"f" + struct.pack(">d", 0.0)),
        (float("inf"), b"f" + bytes.fromhex("7ff0000000000000")),
        (float("nan"), b"f" + bytes.fromhex("7ff8000000000000")),
        (-float("nan"), b"f" + bytes.fromhex("7ff8000000000000")),
        ("", b"s" + lp(b"")),
        ("é1", b"s" + lp("é1".encode())),
        (Path("a/b"), b"p" + lp(b"a/b")),
        (PurePosixPath("/a//b/"), b"p" + lp(b"/a/b")),
        ([], b"l" + lp(b"")[:4]),
        ([1, "1"], b"l" + struct.pack(">I", 2) + b"i" + lp(b"1") + b"s" + lp(b"1")),
        ((True,), b"t" + struct.pack(">I", 1) + b"T"),
        (
            {"b": None, "a": 1},
            b"d"
            + struct.pack(">I", 2)
            + b"s"
            + lp(b"a")
            + b"i"
            + lp(b"1")
            + b"s"
            + lp(b"b")
            + b"N",
        ),
        (
            frozenset({"b", "a", None}),
            b"S" + struct.pack(">I", 3) + b"N" + b"s" + lp(b"a") + b"s" + lp(b"b"),
        ),
        (Color.GREEN, b"e" + lp(b"cfgclasses.Color") + lp(b"GREEN")),
        (Level.HIGH, b"e" + lp(b"cfgclasses.Level") + lp(b"HIGH")),
    ],
)
def test_encoding_of_each_kind(value: Any, encoded: bytes) -> None:
    """Each kind is a one-byte tag then its payload, as docs/identity.md describes."""
    assert encoded == encode_value(value)


def test_set_items_are_sorted_by_their_encoding() -> None:
    """Set items are ordered by their encoded bytes, so mixed kinds sort deterministically."""
    items = [encode_value(v) for v in (1.5, 2, "a", None, True)]
    expected = b"S" + struct.pack(">I", 5) + b"".join(sorted(items))
    assert expected == encode_value(frozenset({1.5, 2, "a", None, True}))


def test_config_value_is_its_digest() -> None:
    """A config inside a value encodes as 'c' and its 32-byte digest (a Merkle tree)."""
    leaf = Leaf(n=3)
    assert b"c" + digest(leaf) == encode_value(leaf)
    assert 32 == len(digest(leaf))


def test_identifier_spelled_out() -> None:
    """identifier = sha256(header, producer marker, identity fields sorted by name)."""
    assert config_digest("test.value", [("v", b"i" + lp(b"1"))]) == identifier(Value(v=1))
    branch = Branch(leaf=Leaf(n=1), label="x")
    expected = config_digest(
        "test.branch", [("label", b"s" + lp(b"x")), ("leaf", b"c" + digest(Leaf(n=1)))]
    )
    assert expected == identifier(branch)


def test_defaults_meta_and_generated_paths_are_left_out_constants_kept() -> None:
    """A task at its defaults encodes only its Constants."""
    assert config_digest("test.train", [("version", b"i" + lp(b"1"))]) == identifier(Train())
    assert config_digest("test.leaf", []) == identifier(Leaf(note="meta"))


def test_producer_is_encoded_after_the_header() -> None:
    """A task output encodes 'o' and its producer's digest before its fields."""
    say = Say(word="hello")
    out = task_output(say, "/data/m")
    expected = config_digest("test.checkpoint", [("path", b"p" + lp(b"/data/m"))], digest(say))
    assert expected == identifier(out)


def test_a_distinct_instance_encodes_its_key_after_the_producer_marker() -> None:
    """distinct(cfg, key) adds '#' + lp(key) after the producer marker, before the fields."""
    marked = distinct(Leaf(n=1), "enc")
    data = b"partita.config/1\x00" + lp(b"test.leaf") + b"-" + b"#" + lp(b"enc")
    data += lp(b"n") + b"i" + lp(b"1")
    assert hashlib.sha256(data).hexdigest() == identifier(marked)


def test_ignored_fields_and_counted_defaults_spelled_out() -> None:
    """An ignored field is left out; a counted default is encoded like any value."""
    held = Hold(main=Leaf(n=1), extra=ignore(Leaf(n=2)))
    assert config_digest("test.hold", [("main", b"c" + digest(Leaf(n=1)))]) == identifier(held)
    expected = config_digest(
        "test.counted",
        [("rate", b"f" + struct.pack(">d", 0.5)), ("x", b"i" + lp(b"1"))],
    )
    assert expected == identifier(Counted(x=1))


def test_identifier_is_64_lowercase_hex() -> None:
    """An identifier is the hex form of a SHA-256 digest."""
    ident = identifier(Say(word="a"))
    assert 64 == len(ident)
    assert ident == ident.lower()
    assert bytes.fromhex(ident) == digest(Say(word="a"))


# --- what distinguishes values ------------------------------------------------------------


@pytest.mark.parametrize("cls", [Value, Scalar])
def test_true_one_float_and_text_differ(cls: type[Config]) -> None:
    """True, 1, 1.0 and "1" give four identifiers (Any field or union)."""
    ids = {identifier(cls(v=v)) for v in (True, 1, 1.0, "1")}
    assert 4 == len(ids)


def test_falsy_values_differ() -> None:
    """None, False, 0, 0.0, "", [], (), {} and frozenset() all differ."""
    values = [None, False, 0, 0.0, "", [], (), {}, frozenset()]
    assert len(values) == len({identifier(Value(v=v)) for v in values})


def test_path_and_text_differ() -> None:
    """A Path and the same text as str differ; relative and absolute paths differ."""
    ids = {identifier(Value(v=v)) for v in (Path("a"), "a", Path("/a"))}
    assert 3 == len(ids)


def test_enum_differs_from_its_value() -> None:
    """An IntEnum member differs from its int value; members of different enums differ."""
    assert identifier(Value(v=Level.HIGH)) != identifier(Value(v=2))
    assert identifier(Value(v=Color.RED)) != identifier(Value(v="red"))


def test_list_tuple_and_set_differ() -> None:
    """[1, 2], (1, 2) and frozenset({1, 2}) differ."""
    ids = {identifier(Value(v=v)) for v in ([1, 2], (1, 2), frozenset({1, 2}))}
    assert 3 == len(ids)


def test_list_order_matters() -> None:
    """Lists and tuples are ordered."""
    assert identifier(Value(v=[1, 2])) != identifier(Value(v=[2, 1]))
    assert identifier(Value(v=(1, 2))) != identifier(Value(v=(2, 1)))


def test_dict_order_does_not_matter() -> None:
    """Dicts are encoded with sorted keys."""
    first = Value(v={"a": 1, "b": [2], "c": {"x": 1, "y": 2}})
    second = Value(v={"c": {"y": 2, "x": 1}, "b": [2], "a": 1})
    assert identifier(first) == identifier(second)


def test_set_order_does_not_matter() -> None:
    """Frozensets built in any order, with any kinds, give one identifier."""
    items = ["z", "a", 3, 1.5, None, (1, 2), Leaf(n=1), Leaf(n=2)]
    forward = Value(v=frozenset(items))
    backward = Value(v=frozenset(reversed(items)))
    from_set = Value(v=set(items[::2] + items[1::2]))
    assert identifier(forward) == identifier(backward) == identifier(from_set)


def test_nan_and_negative_zero_are_normalised() -> None:
    """Every NaN encodes alike; -0.0 encodes as 0.0; infinities stay distinct."""
    payload_nan = struct.unpack(">d", bytes.fromhex("fff8000000000123"))[0]
    nans = {identifier(Value(v=v)) for v in (float("nan"), -float("nan"), payload_nan)}
    assert 1 == len(nans)
    assert identifier(Value(v=0.0)) == identifier(Value(v=-0.0))
    infinities = {identifier(Value(v=v)) for v in (float("inf"), float("-inf"), float("nan"))}
    assert 3 == len(infinities)


def test_coerced_values_identify_alike() -> None:
    """Values coerced at construction identify like the coerced value."""
    assert identifier(Typed(rate=1.0, path=Path("p"), ints=[1])) == identifier(
        Typed(rate=1, path="p", ints=(1,))
    )


# --- what counts --------------------------------------------------------------------------


def test_meta_fields_do_not_count() -> None:
    """Changing a Meta field keeps the identifier."""
    assert identifier(Leaf(n=1)) == identifier(Leaf(n=1, note="x"))
    assert identifier(Train()) == identifier(Train(device="cuda:1"))


def test_field_equal_to_its_default_is_left_out() -> None:
    """Giving a field its default value explicitly is the same as leaving it out."""
    assert identifier(Maybe()) == identifier(Maybe(v=None))
    assert identifier(Typed()) == identifier(Typed(count=0, ints=[], path="data", rate=-0.0))
    assert identifier(Train()) == identifier(Train(optimizer=Adam(), epochs=10))


def test_default_comparison_is_by_encoding() -> None:
    """A value == to its default but of another kind (False vs 0) still counts."""
    assert identifier(Scalar()) != identifier(Scalar(v=False))
    assert identifier(Scalar()) != identifier(Scalar(v=0.0))


def test_adding_a_field_with_a_default_keeps_identifiers() -> None:
    """A new field with a default leaves existing identifiers unchanged (same explicit id)."""
    assert identifier(Before(x=1)) == identifier(After(x=1))
    assert identifier(Before(x=1)) == identifier(After(x=1, y="new"))
    assert identifier(Before(x=1)) != identifier(After(x=1, y="other"))


def test_field_declaration_order_does_not_count() -> None:
    """Fields are encoded sorted by name, whatever their declaration order."""

    class First(Config, id="test.ordered"):
        a: Param[int]
        b: Param[int]

    class Second(Config, id="test.ordered"):
        b: Param[int]
        a: Param[int]

    assert identifier(First(a=1, b=2)) == identifier(Second(a=1, b=2))


def test_constant_counts_even_at_its_value() -> None:
    """Changing a Constant changes the identifier; a Constant is always encoded."""
    assert identifier(VersionOne(x=1)) != identifier(VersionTwo(x=1))
    assert identifier(VersionOne()) != identifier(VersionTwo())
    expected = config_digest("test.versioned", [("version", b"i" + lp(b"1"))])
    assert expected == identifier(VersionOne())


def test_tags_do_not_count() -> None:
    """Tags, given with tag() or .tag(), never change the identifier."""
    plain = Say(word="a")
    tagged = Say(word=tag("a")).tag("y", 1).tag("z", "q")
    assert identifier(plain) == identifier(tagged)
    inner = Concat(strings=[Say(word="a").tag("x", 2)])
    assert identifier(Concat(strings=[Say(word="a")])) == identifier(inner)


def test_changing_a_value_changes_the_identifier() -> None:
    """Setting a field after construction changes the identifier of an unfrozen config."""
    say = Say(word="a")
    before = identifier(say)
    say.word = "b"
    assert identifier(Say(word="b")) == identifier(say)
    assert before != identifier(say)


def test_frozen_identifier_is_cached_and_equal() -> None:
    """A frozen config keeps the same identifier."""
    say = Say(word="a")
    freeze(say)
    assert identifier(Say(word="a")) == identifier(say) == identifier(say)


def test_hash_follows_the_identity() -> None:
    """hash(config) is derived from its digest."""
    assert hash(digest(Say(word="a"))) == hash(Say(word="a"))


# --- type ids -----------------------------------------------------------------------------


def test_explicit_type_id_is_used() -> None:
    """An explicit id= is the type id, whatever the class is called."""
    assert "test.value" == Value._partita_type_id
    assert "test.evolving" == Before._partita_type_id == After._partita_type_id


def test_type_id_defaults_to_module_and_qualname() -> None:
    """Without id=, the type id is module.QualName (nested classes included)."""
    assert "cfgclasses.NoId" == NoId._partita_type_id
    assert "cfgclasses.Outer.Inner" == Outer.Inner._partita_type_id
    assert config_digest("cfgclasses.NoId", [("x", b"i" + lp(b"1"))]) == identifier(NoId(x=1))


def test_type_id_counts() -> None:
    """Same fields and values under two type ids give two identifiers."""

    class Other(Config, id="test.other-value"):
        v: Param[Any]

    assert identifier(Value(v=1)) != identifier(Other(v=1))


def test_subclass_does_not_inherit_the_id() -> None:
    """A subclass without id= gets its own module.QualName type id."""

    class Sub(Say):
        pass

    assert f"{__name__}.{Sub.__qualname__}" == Sub._partita_type_id
    assert identifier(Say(word="a")) != identifier(Sub(word="a"))


def test_script_class_without_id_uses_the_file_stem_and_warns() -> None:
    """A class of __main__ without id= gets '<script stem>.QualName' and a PartitaWarning."""
    main_file = getattr(sys.modules["__main__"], "__file__", None)
    stem = Path(main_file).stem if main_file else "main"
    with pytest.warns(PartitaWarning, match="has no explicit id"):
        cls = type("Scripted", (Config,), {"__module__": "__main__", "__annotations__": {}})
    assert f"{stem}.Scripted" == cls._partita_type_id


def test_script_class_with_id_does_not_warn() -> None:
    """An explicit id= silences the script warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls = type(
            "Scripted", (Config,), {"__module__": "__main__", "__annotations__": {}}, id="s.x"
        )
    assert "s.x" == cls._partita_type_id


# --- nesting ------------------------------------------------------------------------------


def test_nested_value_changes_the_parent() -> None:
    """Changing a value deep inside changes every enclosing identifier (Merkle tree)."""
    one = Root(branch=Branch(leaf=Leaf(n=1)))
    two = Root(branch=Branch(leaf=Leaf(n=2)))
    assert identifier(one) != identifier(two)
    assert identifier(one.branch) != identifier(two.branch)


def test_nested_meta_does_not_change_the_parent() -> None:
    """A Meta change deep inside keeps every identifier."""
    one = Root(branch=Branch(leaf=Leaf(n=1)))
    two = Root(branch=Branch(leaf=Leaf(n=1, note="m")))
    assert identifier(one) == identifier(two)


def test_nested_change_after_construction_is_seen() -> None:
    """Mutating a child of an unfrozen parent changes the parent's identifier."""
    root = Root(branch=Branch(leaf=Leaf(n=1)))
    before = identifier(root)
    root.branch.leaf.n = 2
    assert identifier(Root(branch=Branch(leaf=Leaf(n=2)))) == identifier(root)
    assert before != identifier(root)


def test_shared_and_equal_subconfigs_identify_alike() -> None:
    """One sub-config used twice and two equal sub-configs give the same identifier."""
    leaf = Leaf(n=7)
    assert identifier(Value(v=[leaf, leaf])) == identifier(Value(v=[Leaf(n=7), Leaf(n=7)]))


def test_task_dependencies_count() -> None:
    """A task depending on other tasks includes their identifiers."""
    hello = Concat(strings=[Say(word="hello"), Say(word="world")])
    other = Concat(strings=[Say(word="hello"), Say(word="there")])
    assert identifier(hello) != identifier(other)


# --- task outputs -------------------------------------------------------------------------


def test_task_output_encodes_its_producer() -> None:
    """A config produced by a task differs from the same config without producer."""
    say = Say(word="a")
    plain = Checkpoint(path="/data/m")
    produced = task_output(say, "/data/m")
    assert identifier(plain) != identifier(produced)
    assert identifier(produced) == identifier(task_output(Say(word="a"), "/data/m"))


def test_task_output_follows_its_producer() -> None:
    """Outputs of different tasks differ; a producer's Meta change does not count."""
    first = task_output(Train(epochs=1), "/data/m")
    second = task_output(Train(epochs=2), "/data/m")
    same = task_output(Train(epochs=1, device="gpu"), "/data/m")
    assert identifier(first) != identifier(second)
    assert identifier(first) == identifier(same)


def test_task_output_as_a_parameter() -> None:
    """A task taking an output as parameter depends on the producer's identity."""
    first = Value(v=task_output(Say(word="a"), "/data/m"))
    second = Value(v=task_output(Say(word="b"), "/data/m"))
    assert identifier(first) != identifier(second)


# --- workspace-relative paths -------------------------------------------------------------


def test_paths_in_jobs_are_workspace_relative(tmp_path: Path) -> None:
    """Paths under <root>/jobs/ encode relative to the root, so moving the root keeps them."""
    old, new = tmp_path / "old", tmp_path / "new"
    register_workspace(old)
    register_workspace(new)
    inside = "jobs/test.train/abc/model.pt"
    assert b"w" + lp(inside.encode()) == encode_value(old / inside)
    assert identifier(Checkpoint(path=old / inside)) == identifier(Checkpoint(path=new / inside))


def test_paths_outside_jobs_stay_absolute(tmp_path: Path) -> None:
    """Paths of a work directory outside its jobs/ folder, or of unknown roots, stay absolute."""
    old, new = tmp_path / "old", tmp_path / "new"
    register_workspace(old)
    register_workspace(new)
    assert identifier(Checkpoint(path=old / "data")) != identifier(Checkpoint(path=new / "data"))
    assert b"p" + lp((old / "data").as_posix().encode()) == encode_value(old / "data")
    unknown = tmp_path / "unknown" / "jobs" / "x"
    assert b"p" + lp(unknown.as_posix().encode()) == encode_value(unknown)
    assert b"p" + lp(b"jobs/x") == encode_value(Path("jobs/x"))


def test_longest_workspace_root_wins(tmp_path: Path) -> None:
    """A work directory inside another one's jobs/ folder is matched first."""
    outer = tmp_path / "ws"
    inner = outer / "jobs" / "t" / "id" / "ws"
    register_workspace(outer)
    register_workspace(inner)
    assert b"w" + lp(b"jobs/a") == encode_value(inner / "jobs" / "a")


def test_unregistered_root_gives_another_identifier(tmp_path: Path) -> None:
    """Before its work directory is known, a path in jobs/ is an absolute path."""
    path = tmp_path / "ws" / "jobs" / "t" / "x"
    before = identifier(Checkpoint(path=path))
    register_workspace(tmp_path / "ws")
    assert before != identifier(Checkpoint(path=path))


# --- golden file --------------------------------------------------------------------------


def test_golden_identifiers() -> None:
    """Identifiers of the golden cases equal those pinned in tests/unit/golden/identity.json."""
    actual = golden_identifiers()
    assert 40 <= len(actual)
    if not GOLDEN.exists():
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "about": "Identifiers pinned by tests/unit/config/test_identity.py; the cases are "
            "built by tests/unit/config/cfgclasses.py:golden_cases(). Never edit a value: a "
            "change means the identity scheme changed (see docs/identity.md).",
            "scheme": SCHEME,
            "identifiers": actual,
        }
        GOLDEN.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", "utf-8")
        pytest.fail(f"golden file written; check it and commit it: {GOLDEN}")
    expected = json.loads(GOLDEN.read_text("utf-8"))
    assert SCHEME == expected["scheme"]
    pinned = expected["identifiers"]
    changed = sorted(name for name in pinned if name in actual and actual[name] != pinned[name])
    if changed:
        lines = "\n".join(f"  {name}: {pinned[name]} -> {actual[name]}" for name in changed)
        pytest.fail(
            f"the identity scheme changed for {len(changed)} golden case(s):\n{lines}\n"
            "This is a breaking change: every job folder of an existing work directory would "
            "get a new identifier and run again. Restore the previous encoding; if the change "
            "is intended, bump the scheme header 'partita.config/N' in _identity.py, regenerate "
            "tests/unit/golden/identity.json (delete it, run the tests) and announce it as a "
            "breaking change in docs/identity.md."
        )
    removed = sorted(set(pinned) - set(actual))
    assert [] == removed, "golden cases were removed from cfgclasses.golden_cases()"
    added = sorted(set(actual) - set(pinned))
    assert [] == added, "new golden cases: add them to the golden file: " + json.dumps(
        {name: actual[name] for name in added}
    )


def test_golden_cases_are_distinct_where_they_should_be() -> None:
    """Golden cases collide only where the scheme says they must."""
    by_id: dict[str, list[str]] = {}
    for name, ident in golden_identifiers().items():
        by_id.setdefault(ident, []).append(name)
    collisions = sorted(names for names in by_id.values() if len(names) > 1)
    assert [
        ["counted.default", "counted.explicit-default"],
        ["default.after-field-added", "default.before-field-added"],
        ["generic.bound-int", "generic.unbound"],
        ["ignore.absent", "ignore.ignored"],
        ["maybe.default", "maybe.explicit-default"],
        ["meta.changed", "meta.default"],
        ["migrate.after-rename", "migrate.before-rename"],
        ["migrate.after-rename.default", "migrate.before-rename.default"],
        ["migrate.enum-after-rename", "value.enum"],
        ["migrate.nested-after-rename", "migrate.nested-before-rename"],
        ["nested.root", "nested.root-deep-meta"],
        ["nested.root-deep-change", "variant.deep-change"],
        ["pretask.one", "pretask.one.meta"],
        ["task.say", "task.say.tagged"],
        ["value.float.-0", "value.float.0"],
        ["value.path.absolute", "value.path.pure"],
    ] == collisions


STABILITY_CASES = [
    "value.frozenset.mixed",
    "value.dict",
    "value.float.nan",
    "value.enum",
    "value.path.workspace",
    "typed.all-set",
    "output.produced",
    "counted.default",
    "generic.bound-float",
    "ignore.ignored",
    "distinct.untied",
]


def test_golden_identifiers_are_stable_across_processes(tmp_path: Path) -> None:
    """Fresh interpreters with different PYTHONHASHSEED values compute the same identifiers."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import cfgclasses; "
        "print(json.dumps(cfgclasses.golden_identifiers(sys.argv[2:])))"
    )
    expected = golden_identifiers(STABILITY_CASES)
    if GOLDEN.exists():
        pinned = json.loads(GOLDEN.read_text("utf-8"))["identifiers"]
        assert {name: pinned[name] for name in STABILITY_CASES} == expected
    processes = []
    for seed in ("0", "1", "2024", "4294967295"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(HERE), *STABILITY_CASES],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert 0 == process.returncode, err
        assert expected == json.loads(out)


def test_golden_builders_are_fresh() -> None:
    """Each golden builder returns a new, unfrozen config (so cases cannot leak state)."""
    cases = golden_cases()
    first, second = cases["typed.all-set"](), cases["typed.all-set"]()
    assert first is not second
    assert not state_of(first).frozen
