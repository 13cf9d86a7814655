"""generated_folders(): the folders a task's generated paths need inside its job folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sealclasses import Fit, Store, UsesStore

from partita import Config, Meta, Param, PathGenerator, Task, field
from partita.config import _runtime
from partita.config._seal import generated_folders, seal


class Scratch(Config, id="genfold.scratch"):
    """A config whose generated path is a folder."""

    folder: Meta[Path] = field(default_factory=PathGenerator())
    log: Meta[Path] = field(default_factory=PathGenerator("logs/run.log"))


class Many(Task, id="genfold.many"):
    """Holds configs with generated paths directly, in a list and by a hand-given path."""

    scratch: Param[Scratch]
    stores: Param[list[Store]]
    manual: Param[Store]
    checkpoint: Meta[Path] = field(default_factory=PathGenerator("ckpt/last.pt"))

    def execute(self) -> None:
        pass


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _runtime.set_current_workspace(tmp_path)
    return tmp_path


def test_a_top_level_generated_file_needs_no_folder_but_its_subfolder(root: Path) -> None:
    sealed = seal(Fit(lr=0.3), root)
    assert generated_folders(sealed.task, sealed.jobdir) == []  # <job>/model.pt
    nested = seal(UsesStore(store=Store(), n=7), root)
    assert generated_folders(nested.task, nested.jobdir) == [nested.jobdir / "store"]


def test_folders_of_nested_lists_folder_generators_and_hand_given_paths(root: Path) -> None:
    outside = root / "elsewhere" / "store.bin"
    task = Many(scratch=Scratch(), stores=[Store(), Store()], manual=Store(file=outside))
    sealed = seal(task, root)
    job = sealed.jobdir
    assert task.stores[1].file == job / "stores.1" / "store.bin"
    assert sorted(generated_folders(task, job)) == sorted(
        [
            job / "ckpt",
            job / "scratch",  # PathGenerator(): the path is the folder itself
            job / "scratch" / "logs",
            job / "stores.0",
            job / "stores.1",
        ]  # no folder for manual: a path given by hand is the caller's
    )
