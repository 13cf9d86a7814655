"""Tasks used by the sealing tests (module level, explicit ids: importable by job processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from partita import Config, Meta, Param, PathGenerator, Task, field


class Weights(Config, id="seal.weights"):
    """Where a training task writes its weights."""

    path: Param[Path]


class Split(Task, id="seal.split"):
    """Splits data with a seed."""

    seed: Param[int] = 0

    def execute(self) -> None:
        print(f"split {self.seed}")


class Fit(Task, id="seal.fit"):
    """Trains on a split; outputs its weights."""

    lr: Param[float] = 0.1
    split: Param[Split | None] = None
    device: Meta[str] = "cpu"
    model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))

    def execute(self) -> None:
        self.model.write_text(f"lr={self.lr} device={self.device}")

    def outputs(self) -> Weights:
        return Weights(path=self.model)


class Score(Task, id="seal.score"):
    """Reads the weights of a training task."""

    weights: Param[Weights]

    def execute(self) -> None:
        print(self.weights.path.read_text())


class Store(Config, id="seal.store"):
    """A config with a generated path."""

    file: Meta[Path] = field(default_factory=PathGenerator("store.bin"))


class UsesStore(Task, id="seal.uses_store"):
    """A task holding a config with a generated path."""

    store: Param[Store]
    n: Param[int] = 0


class Holder(Task, id="seal.holder"):
    """Outputs one of its own sub-configs."""

    weights: Param[Weights]

    def outputs(self) -> Weights:
        return self.weights


class Anything(Task, id="seal.anything"):
    """Takes any value."""

    v: Param[Any] = None


class CopiedA(Task, id="seal.copied"):
    """Declares an id that :class:`CopiedB` copies."""

    x: Param[int] = 0


class CopiedB(Task, id="seal.copied"):
    """Same id and fields as :class:`CopiedA`: a copy-paste bug."""

    x: Param[int] = 0


class OnDevice(Task, id="seal.on_device"):
    """Fails on the device "bad" (as a job running out of memory would)."""

    n: Param[int] = 0
    device: Meta[str] = "cpu"

    def execute(self) -> None:
        print(f"on {self.device}")
        if self.device == "bad":
            raise RuntimeError("out of memory")


class Caching(Task, id="seal.caching"):
    """Caches a value on itself inside execute(), as tasks commonly do with a model."""

    n: Param[int] = 3

    def execute(self) -> None:
        self.model = [self.n] * self.n
        print(len(self.model))


class Shard(Config, id="seal.shard"):
    """Data written by :class:`Part`."""

    path: Param[Path]


class Part(Task, id="seal.part"):
    """Writes a shard of data chosen by a seed."""

    seed: Param[int] = 0
    file: Meta[Path] = field(default_factory=PathGenerator("shard.txt"))

    def execute(self) -> None:
        self.file.write_text(str(self.seed))

    def outputs(self) -> Shard:
        return Shard(path=self.file)


class Learn(Task, id="seal.learn"):
    """Learns from a shard; writes a generated model file."""

    shard: Param[Shard]
    model: Meta[Path] = field(default_factory=PathGenerator("model.pt"))

    def execute(self) -> None:
        self.model.write_text(self.shard.path.read_text())


class Link(Task, id="seal.link"):
    """One link of a chain: holds the previous link (``None`` for the first one)."""

    index: Param[int]
    previous: Param[Link | None] = None
    note: Meta[str] = ""


class Adopts(Task, id="seal.adopts"):
    """Outputs a config it does not hold (one built and frozen elsewhere)."""

    n: Param[int] = 0

    def outputs(self) -> Any:
        return ADOPTED[0]


#: What :class:`Adopts` outputs (set by the test).
ADOPTED: list[Any] = []


class Sprout(Config, id="seal.sprout"):
    """What :class:`Grow` outputs."""

    path: Param[Path]


class Grow(Task, id="seal.grow"):
    """One link of a chain through outputs: takes what the previous link output."""

    index: Param[int]
    previous: Param[Sprout | None] = None
    file: Meta[Path] = field(default_factory=PathGenerator("out.txt"))

    def outputs(self) -> Sprout:
        return Sprout(path=self.file)
