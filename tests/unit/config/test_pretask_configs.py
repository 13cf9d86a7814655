"""Pre-tasks: checked when added, encoded in the identity in order, stored in params.json."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from cfgclasses import Say, Seed, Verbose, task_output

from partita import Config, Param, Task, identifier
from partita.config import digest, dumps, from_document
from partita.config._seal import seal
from partita.errors import FrozenConfigError, PretaskError


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_pretasks_spelled_out() -> None:
    """After the fields: 'P', the count, then 'c' + digest of each pre-task, in order."""
    seed, verbose = Seed(seed=1), Verbose(level="DEBUG")
    task = Say(word="hi").add_pretasks(seed, verbose)
    data = b"partita.config/1\x00" + lp(b"test.say") + b"-" + lp(b"word") + b"s" + lp(b"hi")
    data += b"P" + struct.pack(">I", 2) + b"c" + digest(seed) + b"c" + digest(verbose)
    assert hashlib.sha256(data).hexdigest() == identifier(task)
    assert (seed, verbose) == task.pretasks()


def test_no_pretasks_keeps_the_identity() -> None:
    """A task without pre-tasks encodes as before (add_pretasks() with nothing is a no-op)."""
    assert identifier(Say(word="hi")) == identifier(Say(word="hi").add_pretasks())


def test_order_and_values_count_and_equality_follows() -> None:
    a = Say(word="hi").add_pretasks(Seed(seed=1), Verbose())
    b = Say(word="hi").add_pretasks(Verbose(), Seed(seed=1))
    c = Say(word="hi").add_pretasks(Seed(seed=1)).add_pretasks(Verbose())
    assert identifier(a) != identifier(b)
    assert identifier(a) == identifier(c)
    assert a == c
    assert a != b
    assert a != Say(word="hi")


class NoExecute(Config, id="test.noexecute"):
    x: Param[int] = 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Say(word="x"), "is the task Say; expected a light config"),
        (Seed, "is the class Seed; expected an instance: Seed(...)"),
        (5, "expected a light config (a Config subclass with an execute() method), found int 5"),
        (NoExecute(), "NoExecute is a Config without an execute() method"),
    ],
)
def test_bad_pretasks_are_refused(value: object, expected: str) -> None:
    with pytest.raises(PretaskError, match=r"Say.add_pretasks\(\): pre-task 2") as info:
        Say(word="hi").add_pretasks(Seed(seed=1), value)  # type: ignore[arg-type]
    assert expected in str(info.value)


def test_pretasks_after_submission_are_refused(tmp_path: Path) -> None:
    task = Say(word="hi")
    seal(task, tmp_path)
    with pytest.raises(FrozenConfigError, match="pre-tasks must be added before submitting"):
        task.add_pretasks(Seed(seed=1))


def test_params_json_round_trip() -> None:
    task = Say(word="hi").add_pretasks(Seed(seed=3, note="n"), Verbose())
    document = json.loads(dumps(task))
    root = document["objects"][document["root"]]
    kinds = [document["objects"][i]["type"] for i in root["pretasks"]]
    assert ["test.seed", "test.verbose"] == kinds
    loaded = from_document(document)
    assert identifier(task) == identifier(loaded)
    assert [Seed(seed=3, note="n"), Verbose()] == list(loaded.pretasks())  # type: ignore[attr-defined]
    assert "n" == loaded.pretasks()[0].note  # type: ignore[attr-defined]
    assert "pretasks" not in json.loads(dumps(Say(word="hi")))["objects"][0]


class Warm(Config, id="test.warm"):
    """A pre-task holding a task output (weights to load)."""

    checkpoint: Param[Config]

    def execute(self) -> None:
        pass


def test_sealing_covers_pretasks(tmp_path: Path) -> None:
    """Pre-tasks are frozen, their tags count and what they hold is a dependency."""
    producer = Say(word="train")
    seal(producer, tmp_path)
    weights = task_output(producer, str(tmp_path / "jobs" / "w"))
    seed = Seed(seed=1).tag("seed", 1)
    task = Say(word="eval").add_pretasks(seed, Warm(checkpoint=weights))
    sealed = seal(task, tmp_path)
    assert {"seed": 1} == sealed.tags
    assert (producer,) == sealed.dependencies
    with pytest.raises(FrozenConfigError):
        seed.seed = 2


def test_a_pretask_holding_an_unsubmitted_task_is_refused(tmp_path: Path) -> None:
    class Holder(Config, id="test.holder"):
        task: Param[Task]

        def execute(self) -> None:
            pass

    from partita.errors import ConfigError

    with pytest.raises(ConfigError, match=r"Say.pretasks\[0\].task is a Say that was never"):
        seal(Say(word="x").add_pretasks(Holder(task=Say(word="y"))), tmp_path)


def test_pretasks_is_a_reserved_name() -> None:
    from partita.errors import ConfigDefinitionError

    with pytest.raises(ConfigDefinitionError, match="reserved"):

        class Bad(Task, id="test.bad-pretasks"):
            pretasks: Param[int] = 0


class Fit(Task, id="test.pretask-fit", shared={"ckpt": ("epochs",)}):
    seed: Param[int] = 0
    epochs: Param[int] = 10

    def execute(self) -> None:
        pass


def test_pretasks_count_in_shared_identifiers() -> None:
    """Two tasks share a group's folder only if their pre-tasks are the same too."""
    from partita.config._shared import shared_identifier

    plain = shared_identifier(Fit(), "ckpt")
    seeded = shared_identifier(Fit().add_pretasks(Seed(seed=1)), "ckpt")
    longer = shared_identifier(Fit(epochs=20).add_pretasks(Seed(seed=1)), "ckpt")
    assert plain == shared_identifier(Fit(epochs=20), "ckpt")
    assert plain != seeded
    assert seeded == longer


def test_a_variant_keeps_the_pretasks(tmp_path: Path) -> None:
    task = Say(word="hi").add_pretasks(Seed(seed=1))
    seal(task, tmp_path)
    variant = task.replace(word="ho")
    assert (Seed(seed=1),) == variant.pretasks()
    assert identifier(Say(word="ho").add_pretasks(Seed(seed=1))) == identifier(variant)
    variant.add_pretasks(Verbose())  # the variant is not frozen: it can get more
    assert 2 == len(variant.pretasks()) and 1 == len(task.pretasks())
