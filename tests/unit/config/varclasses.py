"""Classes of the variant and identity-control tests (module level, explicit ids, so that job
processes can import them)."""

from __future__ import annotations

from pathlib import Path
from typing import Generic, TypeVar

from partita import Config, Constant, Meta, Param, PathGenerator, Task, field

T = TypeVar("T")
N = TypeVar("N", bound=float)


class Layer(Config, id="var.layer"):
    """A layer of a model."""

    units: Param[int] = 8
    activation: Param[str] = "relu"


class Model(Config, id="var.model"):
    """A model of layers; the encoder is shared with nothing."""

    encoder: Param[Layer]
    decoder: Param[Layer]
    layers: Param[int] = 2


class Optim(Config, id="var.optim"):
    """An optimiser whose state file is generated inside the job folder."""

    lr: Param[float] = 0.1
    state: Meta[Path] = field(default_factory=PathGenerator("optim.state"))


class Data(Config, id="var.data"):
    """A data set."""

    name: Param[str]


class Fit(Task, id="var.fit"):
    """Writes what it was given (and its derived state) to ``out.json``."""

    model: Param[Model]
    lr: Param[float] = 0.01
    data: Param[Data | None] = None
    validation: Param[Data | None] = None
    version: Constant[int] = 1

    def __post_init__(self) -> None:
        self.summary = f"{self.model.layers}x{self.model.encoder.units}@{self.lr}"

    def execute(self) -> None:
        import json

        from partita.config._config import state_of

        (self.jobdir / "out.json").write_text(
            json.dumps(
                {
                    "summary": self.summary,
                    "validation": self.validation.name if self.validation else None,
                    "ignored": sorted(state_of(self).ignored),
                    "tied": self.model.encoder is self.model.decoder,
                    "encoder": state_of(self.model.encoder).instance,
                }
            )
        )


class Trainer(Task, id="var.trainer"):
    """A task holding an optimiser with a generated path."""

    optim: Param[Optim]
    epochs: Param[int] = 1

    def execute(self) -> None:
        self.optim.state.parent.mkdir(parents=True, exist_ok=True)
        self.optim.state.write_text(str(self.epochs))


class Box(Config, Generic[T], id="var.box"):
    """A config generic in the type of its item."""

    item: Param[T]
    label: Param[str] = ""


class Number(Config, Generic[N], id="var.number"):
    """A type parameter with a bound."""

    value: Param[N]


class IntBox(Box[int], id="var.intbox"):
    """A subclass that binds the type parameter."""


class Holder(Task, id="var.holder"):
    """A task holding a box of floats; writes the item's repr."""

    box: Param[Box[float]]

    def execute(self) -> None:
        (self.jobdir / "item.txt").write_text(repr(self.box.item))


class Derived(Config, id="var.derived"):
    """A config with derived state."""

    a: Param[int] = 1
    b: Param[int] = 2

    def __post_init__(self) -> None:
        if self.a > 100:
            from partita.errors import ConfigError

            raise ConfigError(f"Derived: a must be at most 100, found {self.a}.")
        self.total = self.a + self.b
        self._calls = getattr(self, "_calls", 0) + 1


class Schedule(Config, id="var.schedule"):
    """A config on a replaced path holding a config with a generated path."""

    optim: Param[Optim]
    warmup: Param[int] = 0


class Planned(Task, id="var.planned"):
    """A task whose optimiser is two levels down."""

    schedule: Param[Schedule]

    def execute(self) -> None:
        self.schedule.optim.state.parent.mkdir(parents=True, exist_ok=True)
        self.schedule.optim.state.write_text(str(self.schedule.warmup))
