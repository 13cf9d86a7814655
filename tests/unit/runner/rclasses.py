"""Config classes of the runner's unit tests."""

from __future__ import annotations

import enum
from pathlib import Path

from partita import Config, Constant, Meta, Param, Task, field


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Model(Config, id="rt.model"):
    """A model.

    Attributes:
        layers: How many layers.
        width (float): Width of
            each layer.
    """

    layers: Param[int] = 2
    width: Param[float] = 1.0


class Setup(Config, id="rt.setup"):
    """Digits sweep."""

    C: Param[list[float]] = (0.1, 1.0)  # type: ignore[assignment]
    """Regularisation values to try."""
    kernel: Param[str] = "rbf"
    seeds: Param[int] = 2
    model: Param[Model] = field(default_factory=Model)
    name: Param[str | None] = None
    color: Param[Color] = Color.RED
    flag: Param[bool] = False
    out: Param[Path] = Path("out")
    pair: Param[tuple[int, str]] = (1, "a")
    weights: Param[dict[str, float]] = field(default_factory=dict)
    device: Meta[str] = "cpu"
    version: Constant[int] = 1


class Needs(Config, id="rt.needs"):
    """A config with a required field."""

    steps: Param[int]


class Fit(Task, id="rt.fit"):
    """A task."""

    C: Param[float]

    def execute(self) -> None:
        print(self.C)
