"""Bad values, tags and classes get a PartitaError that says what to do (never a crash)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfgclasses import Node, Typed, Value
from sealclasses import Anything

from partita import Meta, Task
from partita.config import _runtime, dumps, from_document, identifier, load
from partita.config._seal import seal
from partita.errors import (
    ConfigDefinitionError,
    ConfigTypeError,
    CycleError,
    EncodingError,
    FrozenConfigError,
    LoadError,
    PartitaError,
    UnknownFieldError,
)


@pytest.mark.parametrize("make", [list, dict, "tuple-in-list"])
def test_a_container_that_contains_itself_is_an_encoding_error(make: Any) -> None:
    if make is list:
        loop: Any = []
        loop.append(loop)
    elif make is dict:
        loop = {}
        loop["self"] = loop
    else:
        inner: list[Any] = []
        loop = [(inner,)]
        inner.append(loop)
    with pytest.raises(EncodingError, match=r"Value\.v.*contains itself"):
        Value(v=loop)


def test_a_value_shared_twice_is_not_a_loop() -> None:
    shared = [1, 2]
    assert Value(v=[shared, shared]).v == [[1, 2], [1, 2]]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_tags_are_refused(value: float) -> None:
    with pytest.raises(ConfigTypeError, match=r"tag 'x'.*Tag a finite number"):
        Value(v=1).tag("x", value)


def test_an_int_tag_over_the_digit_limit_is_refused() -> None:
    huge = 10 ** (sys.get_int_max_str_digits() + 10)
    with pytest.raises(ConfigTypeError, match="too large for a tag"):
        Value(v=1).tag("n", huge)


def test_a_lone_surrogate_tag_is_refused() -> None:
    with pytest.raises(ConfigTypeError, match="lone surrogate"):
        Value(v=1).tag("s", "a\udcff")


def test_a_lone_surrogate_is_stored_in_params_and_read_back(tmp_path: Path) -> None:
    _runtime.set_current_workspace(tmp_path)
    task = Anything(v={"k\udc80": "a\udcff"})
    sealed = seal(task, tmp_path)
    sealed.jobdir.mkdir(parents=True)
    (sealed.jobdir / "params.json").write_bytes(sealed.params)
    sealed.params.decode("utf-8")  # valid UTF-8
    loaded = load(sealed.jobdir)
    assert loaded.v == {"k\udc80": "a\udcff"}  # type: ignore[attr-defined]
    assert identifier(loaded) == sealed.identifier


def test_an_int_over_the_digit_limit_is_an_encoding_error_in_identity_and_params() -> None:
    huge = 10 ** (sys.get_int_max_str_digits() + 10)
    with pytest.raises(EncodingError, match="too large to encode"):
        identifier(Value(v=huge))

    class Big(Task, id="trust.big"):
        size: Meta[int] = 0

    with pytest.raises(EncodingError, match=r"Big\.size: an int .* too large to write"):
        dumps(Big(size=huge))


def test_non_finite_floats_in_values_are_json_safe() -> None:
    document = json.loads(dumps(Value(v=[float("nan"), float("inf"), -float("inf")])))
    again = from_document(document)
    assert again == Value(v=[float("nan"), float("inf"), -float("inf")])


def test_every_error_here_is_a_partita_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    for attempt in (lambda: Value(v=loop), lambda: Value(v=1).tag("x", float("nan"))):
        with pytest.raises(PartitaError):
            attempt()


def test_a_class_inside_a_function_says_so_even_with_string_annotations() -> None:
    def define() -> type:
        from partita import Param as LocalParam
        from partita import Task as LocalTask

        class Inner(LocalTask, id="trust.inner"):
            x: LocalParam[int] = 0

        return Inner

    inner = define()
    with pytest.raises(ConfigDefinitionError, match=r"Inner is defined inside a function"):
        inner()


def test_non_field_attributes_are_plain_attributes_once_submitted(tmp_path: Path) -> None:
    task = Anything(v=1)
    with pytest.raises(UnknownFieldError, match="has no field 'cache'"):
        task.cache = 1  # type: ignore[attr-defined]  # before submit: a typo is caught
    sealed = seal(task, tmp_path)
    task.cache = {"model": [1, 2]}  # type: ignore[attr-defined]
    assert task.cache == {"model": [1, 2]}  # type: ignore[attr-defined]
    assert identifier(task) == sealed.identifier
    assert dumps(task) == sealed.params
    assert task == Anything(v=1)
    with pytest.raises(FrozenConfigError, match="cannot change"):
        task.v = 2
    with pytest.raises(FrozenConfigError, match="method of every task"):
        task.submit = None  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("field", "value"),
    [("count", True), ("count", 1.0), ("count", "5"), ("rate", True), ("flag", 1), ("name", 5)],
)
def test_the_documented_refusals(field: str, value: Any) -> None:
    with pytest.raises(ConfigTypeError, match=rf"Typed\.{field}: expected"):
        Typed(**{field: value})


def test_the_documented_conversions() -> None:
    typed = Typed(ints=(1, 2), rate=2, floats=[1, 2], labels=["a"], path="data/x")
    assert (typed.ints, typed.rate, typed.floats) == ([1, 2], 2.0, (1.0, 2.0))
    assert (typed.labels, typed.path) == (frozenset({"a"}), Path("data/x"))
    assert type(typed.rate) is float
    assert identifier(Typed(rate=2)) == identifier(Typed(rate=2.0))
    assert identifier(Value(v=2)) != identifier(Value(v=2.0))


def _written(tmp_path: Path, task: Task) -> Path:
    _runtime.set_current_workspace(tmp_path)
    sealed = seal(task, tmp_path)
    sealed.jobdir.mkdir(parents=True)
    (sealed.jobdir / "params.json").write_bytes(sealed.params)
    return sealed.jobdir


def test_a_hand_edited_params_json_says_it_was_edited(tmp_path: Path) -> None:
    folder = _written(tmp_path, Anything(v=1))
    params = folder / "params.json"
    params.write_text(params.read_text().replace('"v": 1', '"v": 2'))
    with pytest.raises(LoadError, match=r"params\.json was edited by hand"):
        load(folder)


def test_a_params_json_copied_from_another_job_says_so(tmp_path: Path) -> None:
    one, two = _written(tmp_path, Anything(v=1)), _written(tmp_path, Anything(v=2))
    (one / "params.json").write_bytes((two / "params.json").read_bytes())
    with pytest.raises(LoadError, match="edited or copied from another job"):
        load(one)
    assert load(two).v == 2  # type: ignore[attr-defined]


def test_comparing_configs_that_contain_a_loop_is_a_cycle_error() -> None:
    first, second = Node(), Node()
    first.child, second.child = first, second
    with pytest.raises(CycleError, match="contains itself"):
        assert first == second
    assert Node(child=Node()) == Node(child=Node())  # no loop: compared as usual


def test_tag_conflicts_inside_a_set_do_not_depend_on_hash_order() -> None:
    code = (
        "from cfgclasses import Leaf, Typed\n"
        "leaves = frozenset(Leaf(n=i).tag('x', i) for i in range(8))\n"
        "print(Typed(leaf_set=leaves).tags())\n"
    )
    seen = set()
    for seed in ("1", "2", "3", "4"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(sys.path)},
            capture_output=True,
            text=True,
            check=True,
        )
        seen.add(result.stdout)
    assert len(seen) == 1, seen
