"""Sealing a task: one pass of the config layer that decides everything submit needs."""

from __future__ import annotations

import json
import sys
import types
import warnings
from pathlib import Path

import pytest
from cfgclasses import Concat, Say
from sealclasses import CopiedA, CopiedB, Fit, Holder, Score, Split, Store, UsesStore, Weights

from partita import tag
from partita.config import _runtime, _seal, identifier, is_frozen
from partita.config._config import state_of
from partita.config._seal import Sealed, seal
from partita.errors import ConfigError, PartitaWarning


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _runtime.set_current_workspace(tmp_path)
    return tmp_path


def test_seal_gives_identity_folder_bytes_and_marked_outputs(root: Path) -> None:
    task = Fit(lr=0.5)
    sealed = seal(task, root)
    assert isinstance(sealed, Sealed)
    assert sealed.identifier == identifier(task)
    assert sealed.jobdir == root / "jobs" / "seal.fit" / sealed.identifier
    assert task.model == sealed.jobdir / "model.pt"
    assert is_frozen(task)
    document = json.loads(sealed.params)
    assert document["objects"][document["root"]]["id"] == sealed.identifier
    assert isinstance(sealed.outputs, Weights)
    assert state_of(sealed.outputs).producer is task
    assert is_frozen(sealed.outputs)


def test_seal_lists_sub_tasks_and_producers_as_dependencies(root: Path) -> None:
    split = Split(seed=1)
    seal(split, root)
    fit = Fit(split=split)
    weights = seal(fit, root).outputs
    score = Score(weights=weights)
    assert seal(fit, root).dependencies == (split,)
    assert seal(score, root).dependencies == (fit,)


# --- duplicate type ids --------------------------------------------------------------------


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process: no class sealed yet."""
    monkeypatch.setattr(_seal, "_classes", {})


def test_two_classes_with_one_type_id_are_refused_in_one_process(
    root: Path, fresh_registry: None
) -> None:
    seal(CopiedA(x=1), root)
    with pytest.raises(ConfigError, match=r"sealclasses:CopiedA and sealclasses:CopiedB"):
        seal(CopiedB(x=2), root)


def test_a_class_redefined_under_its_name_is_not_a_duplicate(
    root: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (
        "from partita import Task, Param\n"
        "class Again(Task, id='seal.again'):\n"
        "    x: Param[int] = 0\n"
    )
    classes = []
    for _ in range(2):  # what a reload or a re-run notebook cell does
        module = types.ModuleType("sealreload")
        monkeypatch.setitem(sys.modules, "sealreload", module)
        exec(source, module.__dict__)
        classes.append(module.Again)
    assert classes[0] is not classes[1]
    seal(classes[0](x=1), root)
    seal(classes[1](x=1), root)


def test_a_job_folder_created_by_another_class_warns(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = seal(CopiedA(), root)
    first.jobdir.mkdir(parents=True)
    (first.jobdir / "params.json").write_bytes(first.params)
    monkeypatch.setattr(_seal, "_classes", {})  # a later process
    with pytest.warns(PartitaWarning, match=r"created by the class sealclasses:CopiedA.*CopiedB"):
        second = seal(CopiedB(), root)
    assert second.jobdir == first.jobdir
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(_seal, "_classes", {})
        seal(CopiedA(), root)  # the same class: silent


def test_a_done_job_is_sealed_without_encoding_and_still_checks_its_classes(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the caller says is done: no params.json bytes are made, the recorded classes
    are still compared (from the folder's file), and the bytes can be asked for later."""
    first = seal(CopiedA(), root)
    first.jobdir.mkdir(parents=True)
    (first.jobdir / "params.json").write_bytes(first.params)
    asked: list[Path] = []

    def is_done(jobdir: Path) -> bool:
        asked.append(jobdir)
        return True

    monkeypatch.setattr(_seal, "_classes", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = seal(CopiedA(), root, is_done=is_done)
    assert asked == [first.jobdir]
    assert again.done and again.encoded is None
    assert again.params == first.params  # made when asked
    monkeypatch.setattr(_seal, "_classes", {})
    with pytest.warns(PartitaWarning, match=r"created by the class sealclasses:CopiedA.*CopiedB"):
        other = seal(CopiedB(), root, is_done=is_done)
    assert other.done and other.jobdir == first.jobdir
    monkeypatch.setattr(_seal, "_classes", {})
    fresh = seal(CopiedA(x=5), root, is_done=is_done)  # no params.json: not asked
    assert not fresh.done and fresh.encoded is not None and fresh.recorded is None
    assert asked == [first.jobdir, first.jobdir]


def test_sealing_leaves_no_reference_cycles(root: Path) -> None:
    """Walking a graph, collecting tags and sealing free everything they made: a rerun of
    100,000 tasks does not feed the garbage collector thousands of cycles a second."""
    import gc

    split = Split(seed=1)
    seal(split, root)
    gc.collect()
    gc.disable()
    try:
        for i in range(20):
            seal(Score(weights=seal(Fit(lr=i / 10, split=split), root).outputs), root)
        assert gc.collect() == 0
    finally:
        gc.enable()


# --- a config with generated paths shared by two tasks -------------------------------------


def test_a_config_with_generated_paths_belongs_to_one_task(root: Path) -> None:
    store = Store()
    first = seal(UsesStore(store=store, n=1), root)
    assert store.file == first.jobdir / "store" / "store.bin"
    with pytest.raises(ConfigError, match=r"UsesStore\.store is a Store with a generated path"):
        seal(UsesStore(store=store, n=2), root)
    again = seal(UsesStore(store=store, n=1), root)  # the same task again: the same folder
    assert store.file == again.jobdir / "store" / "store.bin"
    other = seal(UsesStore(store=Store(), n=2), root)
    assert other.task.store.file == other.jobdir / "store" / "store.bin"


# --- outputs() returning one of the task's own sub-configs ---------------------------------


def test_an_output_that_is_part_of_the_task_gets_a_fresh_identity(root: Path) -> None:
    weights = Weights(path=Path("/data/w.pt"))
    holder = Holder(weights=weights)
    before = identifier(holder)
    sealed = seal(holder, root)
    output = sealed.outputs
    assert output is not weights
    assert state_of(output).producer is holder
    assert state_of(weights).producer is None
    assert identifier(holder) == before == sealed.identifier
    assert identifier(output) != identifier(weights)
    dependent = seal(Score(weights=output), root)  # no RecursionError
    document = json.loads(dependent.params)
    ids = [entry["id"] for entry in document["objects"]]
    assert identifier(output) in ids and sealed.identifier in ids
    assert dependent.dependencies == (holder,)


# --- an unsubmitted task used as a parameter -----------------------------------------------


def test_an_unsubmitted_task_as_a_parameter_is_refused(root: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"Concat\.strings\[0\] is a Say that was never submitted"
    ):
        seal(Concat(strings=[Say(word="a")]), root)
    said = Say(word="a")
    seal(said, root)
    assert seal(Concat(strings=[said]), root).dependencies == (said,)


# --- tags through outputs ------------------------------------------------------------------


def test_outputs_carry_their_producers_tags(root: Path) -> None:
    weights = seal(Fit(lr=tag(0.1)), root).outputs
    assert weights.tags() == {"lr": 0.1}
    score = seal(Score(weights=weights).tag("run", "a"), root)
    assert score.tags == {"lr": 0.1, "run": "a"}


def test_a_task_sealed_again_in_another_work_directory_keeps_its_own_paths(
    root: Path, tmp_path: Path
) -> None:
    task = Fit(lr=0.3)
    first = seal(task, root)
    second = seal(task, tmp_path / "other")
    assert task.model == first.jobdir / "model.pt"  # resolved once, as before
    assert second.identifier == first.identifier


def test_a_done_job_whose_file_names_a_class_in_a_field_is_still_checked(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorded classes of a done job are compared without parsing the file when every
    "class" key names the current class; any other "class" key (here one of a field's
    dict) makes the file parsed, and only the objects' classes count."""
    first = seal(CopiedA(), root)
    first.jobdir.mkdir(parents=True)
    recorded = first.params.replace(
        b'"class": "sealclasses:CopiedA"',
        b'"class": "sealclasses:CopiedA", "extra": {"class": "other:Thing"}',
    )
    (first.jobdir / "params.json").write_bytes(recorded)
    monkeypatch.setattr(_seal, "_classes", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = seal(CopiedA(), root, is_done=lambda _: True)
    assert again.done and again.recorded is False
    monkeypatch.setattr(_seal, "_classes", {})
    with pytest.warns(PartitaWarning, match=r"created by the class sealclasses:CopiedA.*CopiedB"):
        seal(CopiedB(), root, is_done=lambda _: True)
