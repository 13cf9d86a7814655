"""Submitting a chain of dependent tasks costs the same at each link, not more and more.

A frozen config keeps what sealing works out about the graph below it (its classes,
whether it holds tags, its ``params.json`` entry): the structural counts below stay
proportional to the length of the chain, and what is kept is what a fresh computation
gives.
"""

from __future__ import annotations

import enum
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sealclasses import ADOPTED, Adopts, Anything, Fit, Grow, Link, Score, Split, Weights

from partita import Config, Param
from partita.config import _config, _instance, _runtime, _serial, distinct, ignore
from partita.config._seal import seal
from partita.errors import TagConflictWarning


class Mood(enum.Enum):
    CALM = 1
    BUSY = 2


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _runtime.register_workspace(tmp_path)
    _runtime.set_current_workspace(tmp_path)
    return tmp_path


def _fresh(cfg: Any) -> bytes:
    """The ``params.json`` bytes made the plain way, from the whole document."""
    return (_serial._json_text(_serial.to_document(cfg)) + "\n").encode("utf-8", "backslashreplace")


def _short(cfg: Any) -> bytes:
    """The ``params.json`` bytes made from the entries' templates (no fallback)."""
    return (_serial._document_text(cfg) + "\n").encode("utf-8", "backslashreplace")


def _chain(root: Path, n: int, **extra: Any) -> Iterator[tuple[Link, bytes]]:
    previous = None
    for i in range(n):
        link = Link(index=i, previous=previous, **extra)
        sealed = seal(link, root)
        yield link, sealed.params
        previous = sealed.outputs


class _Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.calls = 0
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


@pytest.mark.parametrize("n", [10, 40])
def test_sealing_a_chain_encodes_each_link_a_bounded_number_of_times(
    root: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    entries = _Counter(monkeypatch, _serial, "_make_entry")
    filled = _Counter(monkeypatch, _serial, "_filled")
    indented = _Counter(monkeypatch, _serial, "_indented")
    visits = _Counter(monkeypatch, _config._Walk, "visit")
    tags = _Counter(monkeypatch, _config, "_collect_tags_of")
    links = list(_chain(root, n))
    # Each link's entry is made when it is submitted (the first one once more, when the
    # second one is): a link keeps the objects of its document, which the next link
    # takes over; nothing below it is encoded again.
    assert entries.calls == n + 1
    assert filled.calls == n + 1  # each document: the previous one's objects, one entry
    assert indented.calls <= 20 * n
    # Sealing a link walks itself and the previous one (the walks stop at frozen configs).
    assert visits.calls <= 6 * n
    assert tags.calls <= 2 * n
    for link, params in links:
        assert params == _fresh(link) == _short(link)


def test_a_chain_through_outputs_encodes_each_link_a_bounded_number_of_times(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _Counter(monkeypatch, _serial, "_make_entry")
    filled = _Counter(monkeypatch, _serial, "_filled")
    previous, tasks = None, []
    for i in range(30):
        task = Grow(index=i, previous=previous)
        sealed = seal(task, root)
        assert sealed.params == _fresh(task)
        previous = sealed.outputs
        tasks.append(task)
    # The task's entry when it is submitted, its output's when the next task holds it.
    assert entries.calls <= 2 * 30 + 2
    # And the objects of each document are those of the previous one, and two entries.
    assert filled.calls <= 2 * 30 + 2
    objects = _serial.json.loads(sealed.params)["objects"]
    assert len(objects) == 2 * 30 - 1


def test_a_chain_s_params_list_every_link(root: Path) -> None:
    *_, (last, params) = _chain(root, 30)
    document = _serial.json.loads(params)
    assert [o["fields"]["index"] for o in document["objects"]] == list(range(30))
    assert document["root"] == 29
    assert params == _fresh(last)


def test_a_link_held_by_two_tasks_is_written_whole_for_both(root: Path) -> None:
    links = [link for link, _ in _chain(root, 6)]
    branch = Link(index=100, previous=links[3])  # the link after it took its objects over
    assert seal(branch, root).params == _fresh(branch)
    tip = Link(index=6, previous=links[-1])
    assert seal(tip, root).params == _fresh(tip)
    both = Anything(v=[tip, branch])
    assert seal(both, root).params == _fresh(both)
    after = Link(index=7, previous=tip)
    assert seal(after, root).params == _fresh(after) == _short(after)


def test_kept_entries_equal_fresh_ones_for_rich_values_and_shared_configs(root: Path) -> None:
    split = Split(seed=3)
    seal(split, root)
    fit = Fit(lr=0.5, split=split)
    weights = seal(fit, root).outputs
    twin = Weights(path=weights.path)  # equal to an output's config, but not one
    copies = [Weights(path=root / "same"), Weights(path=root / "same")]  # listed once
    values = {
        "list": [split, weights, split],
        "tuple": (1, 2.5, float("nan"), float("inf")),
        "set": frozenset({"b", "a"}),
        "dict": {"$x": weights, "y": [copies[0], twin]},
        "enum": Mood.BUSY,
        "path": root / "jobs" / "x" / "y",
        "outside": Path("/elsewhere/file"),
        "text": 'caf\u00e9 "quoted" \n',
        "twins": copies,
    }
    first = Anything(v=values)
    seal(first, root)
    other = distinct(Weights(path=root / "same"), "other")
    blind = Score(weights=ignore(Weights(path=root / "same")))
    seal(blind, root)
    second = Anything(v=[first, other, blind, weights, Weights(path=root / "same")])
    sealed = seal(second, root)
    assert sealed.params == _fresh(second)
    # Again, from what is now kept on every config of the graph:
    assert _short(second) == _fresh(second) == _short(second)
    assert _short(first) == _fresh(first)
    objects = _serial.json.loads(sealed.params)["objects"]
    # The four equal Weights at root / "same" are listed once; the distinct one apart.
    assert sum(o["fields"].get("path") == {"$path": str(root / "same")} for o in objects) == 2


def test_a_config_given_a_producer_after_it_was_frozen_is_written_again(root: Path) -> None:
    weights = Weights(path=root / "w.pt")
    score = Score(weights=weights)
    seal(score, root)
    before = _serial.dumps(score)
    assert before == _fresh(score)
    ADOPTED[:] = [weights]
    try:
        seal(Adopts(n=1), root)  # gives the frozen weights a producer
    finally:
        ADOPTED.clear()
    after = _short(score)
    assert after == _fresh(score)
    assert after != before
    assert '"producer"' in after.decode()


def test_kept_entries_follow_the_known_work_directories(root: Path, tmp_path: Path) -> None:
    inner = Anything(v=tmp_path / "other" / "jobs" / "t" / "i")
    seal(inner, root)
    outer = Anything(v=inner)
    seal(outer, root)
    before = _serial.dumps(outer)
    _runtime.register_workspace(tmp_path / "other")
    after = _short(outer)
    assert after == _fresh(outer)
    assert after != before
    assert '"base": "workspace"' in after.decode()


def test_kept_entries_follow_the_file_of_the_script(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = types.ModuleType(_runtime.SCRIPT_MODULE)
    script.__file__ = str(root / "first.py")
    monkeypatch.setitem(sys.modules, _runtime.SCRIPT_MODULE, script)

    class Local(Config, id="seal.chain.local"):
        n: Param[int] = 0

    Local.__module__ = _runtime.SCRIPT_MODULE
    inner = Anything(v=Local(n=1))
    seal(inner, root)
    outer = Anything(v=inner)
    seal(outer, root)
    assert str(root / "first.py") in _short(outer).decode()
    again = types.ModuleType(_runtime.SCRIPT_MODULE)  # the script imported from elsewhere
    again.__file__ = str(root / "second.py")
    monkeypatch.setitem(sys.modules, _runtime.SCRIPT_MODULE, again)
    after = _short(outer)
    assert after == _fresh(outer)
    assert str(root / "second.py") in after.decode()


def test_tags_of_a_chain_are_those_of_a_fresh_walk(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = None
    links = []
    for i in range(8):
        link = Link(index=i, previous=previous)
        if i % 3 == 0:
            link.tag("every_third", i)
        if i == 5:
            link.tag("five", True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TagConflictWarning)
            previous = seal(link, root).outputs
        links.append(link)
    kept = [_config.collect_tags(link) for link in links]
    kept_classes = [_config.classes_in(link) for link in links]
    monkeypatch.setattr(_config, "memo_of", lambda cfg, make=True: None)
    assert kept == [_config.collect_tags(link) for link in links]
    assert kept[-1][0] == {"every_third": 6, "five": True}
    assert "previous.previous.previous.previous" in kept[-1][1][0]
    assert kept_classes == [_config.classes_in(link) for link in links] == [(Link,)] * 8


def test_a_task_of_a_sweep_keeps_nothing(root: Path) -> None:
    sealed = seal(Split(seed=11), root)
    assert _instance.state_of(sealed.task).memo is None
    _serial.dumps(sealed.task)
    assert _instance.state_of(sealed.task).memo is None
