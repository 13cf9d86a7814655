"""Migrations in the config layer: renamed classes and fields, deprecated configs."""

from __future__ import annotations

import enum
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from cfgclasses import Optim, Renamed, Value

from partita import Config, Param, Task, field
from partita.config import _runtime, dumps, from_document, identifier, load, renamed_enum
from partita.config._serial import migrated_document
from partita.errors import ConfigDefinitionError, ConfigError, MigrationError


def _renamed_document(cfg: Config) -> dict[str, Any]:
    """cfg's params.json, as if its class had been renamed away in its module since."""
    document = json.loads(dumps(cfg))
    for entry in document["objects"]:
        if entry["class"] == "cfgclasses:Optim":
            entry["class"] = "cfgclasses:OptimGoneSince"
    return document


def test_renamed_fields_encode_under_their_oldest_name_in_its_order() -> None:
    """``beta`` sorts before ``lr``, but is encoded as ``momentum``, after ``learning_rate``."""
    plan = Renamed._partita_plan
    assert [b"\x00\x00\x00\x0dlearning_rate", b"\x00\x00\x00\x08momentum"] == [
        prefix for _, prefix, _, _ in plan.fields
    ]
    assert ["lr", "beta"] == [name for name, _, _, _ in plan.fields]
    assert identifier(Optim(learning_rate=1.0, momentum=2.0)) == identifier(
        Renamed(lr=1.0, beta=2.0)
    )
    assert identifier(Optim(learning_rate=2.0, momentum=1.0)) != identifier(
        Renamed(lr=1.0, beta=2.0)
    )


def test_params_recorded_under_former_names_load_as_the_current_class() -> None:
    """A job written before the rename loads as ``Renamed``, with its identifier."""
    before = Value(v=[Optim(learning_rate=0.5, momentum=0.25)])
    back = from_document(_renamed_document(before))
    (inner,) = back.v  # type: ignore[attr-defined]
    assert (Renamed, 0.5, 0.25) == (type(inner), inner.lr, inner.beta)
    assert identifier(before) == identifier(back)


def test_load_of_a_job_folder_written_before_a_rename(tmp_path: Path) -> None:
    before = Optim(learning_rate=0.5)
    jobdir = tmp_path / "jobs" / "test.optim" / identifier(before)
    jobdir.mkdir(parents=True)
    (jobdir / "params.json").write_text(json.dumps(_renamed_document(before)))
    back = load(jobdir)
    assert isinstance(back, Renamed) and 0.5 == back.lr


def test_migrated_document_says_what_changed(tmp_path: Path) -> None:
    cfg, notes = migrated_document(
        _renamed_document(Optim(learning_rate=0.5, momentum=0.1)), workspace=tmp_path
    )
    assert isinstance(cfg, Renamed)
    assert [
        "type id test.optim is now test.optimizer",
        "field test.optimizer.learning_rate is now lr",
        "field test.optimizer.momentum is now beta",
    ] == notes
    _, none = migrated_document(json.loads(dumps(Renamed(lr=0.5))), workspace=tmp_path)
    assert [] == none


def test_two_classes_claiming_the_same_former_id_are_refused() -> None:
    with pytest.raises(ConfigDefinitionError) as caught:

        class Other(Config, id="test.other-optimizer", renamed_from="test.optim"):
            lr: Param[float] = 0.1

    message = str(caught.value)
    assert "test_migrations:test_two_classes_claiming_the_same_former_id_are_refused." in message
    assert "cfgclasses:Renamed both declare renamed_from='test.optim'" in message
    assert "Remove it from one of them" in message


def test_a_redefinition_of_the_same_class_may_keep_its_former_ids() -> None:
    """A module reloaded (a notebook cell run again) defines the class again: no conflict."""
    made = []
    for _ in range(2):

        class Again(Config, id="test.again", renamed_from="test.again.v1"):
            x: Param[int] = 0

        made.append(Again)
    assert identifier(made[0](x=1)) == identifier(made[1](x=1))


@pytest.mark.parametrize(
    ("renamed_from", "expected"),
    [
        ("", "renamed_from= expected type ids (non-empty str without '/'"),
        ("a/b", "found 'a/b'"),
        ((), "renamed_from= expected a former type id or a tuple of them"),
        (("old", "old"), "renamed_from= lists 'old' twice"),
        ("test.bad", "renamed_from= lists its own type id 'test.bad'"),
        (3, "found 3"),
    ],
)
def test_bad_renamed_from_of_a_class(renamed_from: Any, expected: str) -> None:
    with pytest.raises(ConfigDefinitionError, match=re.escape(expected)):

        class Bad(Config, id="test.bad", renamed_from=renamed_from):
            x: Param[int] = 0


def test_bad_field_renames() -> None:
    with pytest.raises(ConfigDefinitionError, match=re.escape("but 'a' is a field of")):

        class Clash(Config, id="test.clash"):
            a: Param[int] = 0
            b: Param[int] = field(default=0, renamed_from="a")

    with pytest.raises(
        ConfigDefinitionError,
        match=re.escape("the fields 'b' and 'c' both declare renamed_from='a'"),
    ):

        class Twice(Config, id="test.twice"):
            b: Param[int] = field(default=0, renamed_from="a")
            c: Param[int] = field(default=0, renamed_from="a")

    with pytest.raises(ConfigDefinitionError, match=re.escape("found '_x'")):
        field(renamed_from="_x")
    with pytest.raises(ConfigDefinitionError, match=re.escape("a former name is listed twice")):
        field(renamed_from=("x", "x"))


def test_sealing_refuses_a_class_whose_id_another_class_took_over(tmp_path: Path) -> None:
    """``Optim`` still exists with the id ``Renamed`` declares as its former id."""

    class Holder(Task, id="test.migrations.holder"):
        optim: Param[Config]

        def execute(self) -> None:
            pass

    from partita.config._seal import seal

    _runtime.set_current_workspace(tmp_path)
    with pytest.raises(ConfigError) as caught:
        seal(Holder(optim=Optim(learning_rate=0.1)), tmp_path)
    assert (
        "cfgclasses:Optim has the type id 'test.optim', which cfgclasses:Renamed declares as "
        "its former id (renamed_from=): both would claim the same jobs." in str(caught.value)
    )
    assert not (tmp_path / "jobs").exists()


# --- deprecated configs ---------------------------------------------------------------------


class Sgd(Config, id="test.migrations.sgd"):
    lr: Param[float]
    momentum: Param[float] = 0.0


class Schedule(Config, id="test.migrations.schedule"):
    steps: Param[int]


class SgdScheduled(Config, id="test.migrations.sgd-scheduled"):
    """The split replacement: the schedule became a config of its own."""

    sgd: Param[Sgd]
    schedule: Param[Schedule]


def _split(old: OldSgd) -> Config:
    return SgdScheduled(
        sgd=Sgd(lr=old.lr, momentum=old.momentum), schedule=Schedule(steps=old.steps)
    )


class OldSgd(Config, id="test.migrations.old-sgd", deprecated=_split):
    lr: Param[float]
    momentum: Param[float] = 0.0
    steps: Param[int] = 10


def _raises(old: Config) -> Config:
    raise ValueError("no such schedule")


class Broken(Config, id="test.migrations.broken", deprecated=_raises):
    x: Param[int] = 0


class NotAConfig(Config, id="test.migrations.not-a-config", deprecated=lambda old: {"x": 1}):
    x: Param[int] = 0


def test_a_deprecated_config_is_converted_by_migration(tmp_path: Path) -> None:
    old = Value(v=OldSgd(lr=0.1, steps=5))
    cfg, notes = migrated_document(json.loads(dumps(old)), workspace=tmp_path)
    assert ["test.migrations.old-sgd converted to test.migrations.sgd-scheduled"] == notes
    expected = Value(v=SgdScheduled(sgd=Sgd(lr=0.1), schedule=Schedule(steps=5)))
    assert identifier(expected) == identifier(cfg)
    assert identifier(old) != identifier(cfg)
    # Plain loading keeps what was recorded: the old class still exists.
    assert identifier(old) == identifier(from_document(json.loads(dumps(old))))


def test_a_conversion_that_raises_is_a_migration_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError) as caught:
        migrated_document(json.loads(dumps(Value(v=Broken()))), workspace=tmp_path, source="p")
    assert (
        "p: the conversion _raises of the deprecated Broken raised ValueError: no such "
        "schedule. Fix the conversion function; nothing was migrated." == str(caught.value)
    )
    with pytest.raises(MigrationError, match=re.escape("must return a config of another class")):
        migrated_document(json.loads(dumps(NotAConfig())), workspace=tmp_path)


def test_deprecated_must_be_a_function() -> None:
    with pytest.raises(ConfigDefinitionError, match=re.escape("deprecated= expected a conversion")):

        class Wrong(Config, id="test.migrations.wrong", deprecated="Sgd"):  # type: ignore[arg-type]
            x: Param[int] = 0


def test_an_override_by_a_former_field_name_says_the_new_one() -> None:
    from partita.errors import RunnerError
    from partita.runner._resolve import field_at

    class Holder(Config, id="test.migrations.override-holder"):
        optim: Param[Renamed] = field(default_factory=lambda: Renamed(lr=0.1))

    assert "lr" == field_at(Holder, ("optim", "lr"), "override").name
    with pytest.raises(RunnerError) as caught:
        field_at(Holder, ("optim", "learning_rate"), "override 'optim.learning_rate=0.2'")
    assert (
        "override 'optim.learning_rate=0.2': the field 'optim.learning_rate' of Renamed was "
        "renamed to 'optim.lr' (field(renamed_from=...)). Write optim.lr=... instead."
        == str(caught.value)
    )


class UsesOptim(Task, id="test.migrations.uses-optim"):
    optim: Param[Config]

    def execute(self) -> None:
        pass


def test_submitting_a_deprecated_config_warns_once(tmp_path: Path) -> None:
    from partita.config import _seal
    from partita.errors import PartitaWarning

    _runtime.set_current_workspace(tmp_path)
    _seal._warned_deprecated.discard(OldSgd)
    with pytest.warns(PartitaWarning) as caught:
        _seal.seal(UsesOptim(optim=OldSgd(lr=0.1)), tmp_path)
    assert [
        "OldSgd (test.migrations.old-sgd) is deprecated: its class declares a conversion to "
        "the config that replaces it. Build the new config instead, and run 'partita migrate "
        "WORKDIR' to convert the jobs recorded with the old one."
    ] == [str(w.message) for w in caught]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _seal.seal(UsesOptim(optim=OldSgd(lr=0.2)), tmp_path)


def test_former_ids_are_known_before_forward_references_resolve() -> None:
    from partita.config import _migrations

    class Early(Config, id="test.migrations.early", renamed_from="test.migrations.earlier"):
        later: Param[LaterDefined]  # noqa: F821 - defined below, resolved on first use

    assert Early is _migrations.claimant("test.migrations.earlier")
    assert "_partita_fields" not in Early.__dict__


# --- enums ----------------------------------------------------------------------------------


@renamed_enum(("gone_module.Shade", "gone_module.Tint"), members={"DARK": ("BLACK", "NOIR")})
class Tone(enum.Enum):
    """Renamed twice (and moved here), its member BLACK renamed NOIR, then DARK."""

    DARK = 1
    LIGHT = 2


def test_a_renamed_enum_keeps_identifiers() -> None:
    """The identity encodes the oldest enum name and member name."""
    old = enum.Enum("Shade", {"BLACK": 1, "LIGHT": 2}, module="gone_module", qualname="Shade")
    assert identifier(Value(v=old.BLACK)) == identifier(Value(v=Tone.DARK))  # type: ignore[attr-defined]
    assert identifier(Value(v=old.LIGHT)) == identifier(Value(v=Tone.LIGHT))  # type: ignore[attr-defined]
    assert identifier(Value(v=old.LIGHT)) != identifier(Value(v=Tone.DARK))  # type: ignore[attr-defined]


def test_a_value_recorded_under_former_enum_names_loads_and_migrates(tmp_path: Path) -> None:
    document = json.loads(dumps(Value(v=[Tone.DARK, Tone.LIGHT])))
    (entry,) = document["objects"]
    for item, name in zip(entry["fields"]["v"], ("NOIR", "LIGHT"), strict=True):
        assert item["$enum"].endswith(":Tone")
        item["$enum"], item["name"] = "gone_module:Tint", name
    back = from_document(document)
    assert [Tone.DARK, Tone.LIGHT] == back.v  # type: ignore[attr-defined]
    cfg, notes = migrated_document(document, workspace=tmp_path)
    assert [
        f"enum gone_module.Tint is now {Tone.__module__}.Tone",
        "enum member Tone.NOIR is now DARK",
    ] == notes
    rewritten = json.loads(dumps(cfg))["objects"][0]["fields"]["v"]
    assert ["DARK", "LIGHT"] == [item["name"] for item in rewritten]
    assert all(item["$enum"].endswith(":Tone") for item in rewritten)


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("x.Old",), {"members": {"MISSING": "OLD"}}, "'MISSING', which is not a member"),
        ((), {"members": {"A": "B"}}, "the former member name 'B' is a current member"),
        ((), {"members": {"A": "OLD", "B": "OLD"}}, "'OLD' is claimed twice"),
        ((42,), {}, "expected a former name or a tuple"),
        ((("x.A", "x.A"),), {}, "expected a former name or a tuple of distinct"),
    ],
)
def test_bad_enum_renames(args: Any, kwargs: Any, expected: str) -> None:
    class Two(enum.Enum):
        A = 1
        B = 2

    with pytest.raises(ConfigDefinitionError, match=re.escape(expected)):
        renamed_enum(*args, **kwargs)(Two)


def test_renamed_enum_refuses_other_classes_and_a_former_name_taken() -> None:
    with pytest.raises(ConfigDefinitionError, match="decorates Enum classes"):
        renamed_enum("x.Old")(Value)

    class Other(enum.Enum):
        DARK = 1

    with pytest.raises(ConfigDefinitionError, match="both declare the former enum name"):
        renamed_enum("gone_module.Shade")(Other)
