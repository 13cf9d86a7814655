"""Shared folders: declaring groups, their identity (golden), their place and their lock."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from partita import Config, Meta, Param, Task, field, identifier
from partita.config import _runtime, _shared
from partita.config._identity import length_prefixed
from partita.errors import ConfigDefinitionError, PendingPathError, SharedFolderTimeout
from partita.workspace import FileLock

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "shared.json"


class Opt(Config, id="golden.shared.opt"):
    lr: Param[float] = 0.1


class Train(Task, id="golden.shared.train", shared={"checkpoints": ("max_epochs", "device")}):
    seed: Param[int]
    max_epochs: Param[int] = 10
    device: Param[str] = "cpu"
    opt: Param[Opt] = field(default_factory=Opt)
    note: Meta[str] = ""

    def execute(self) -> None:
        pass


class Both(Task, id="golden.shared.both", shared={"a": ("x",), "b": ("y",), "none": ()}):
    x: Param[int] = 0
    y: Param[int] = 0

    def execute(self) -> None:
        pass


class LongerTrain(Train, id="golden.shared.longer"):
    """Inherits the groups of Train."""


class Fit(Task, id="golden.shared.fit", renamed_from="golden.shared.old-fit", shared={"c": ("n",)}):
    """Renamed (class and field): its shared folders keep their identifiers."""

    s: Param[int] = field(renamed_from="seed")
    n: Param[int] = 1

    def execute(self) -> None:
        pass


def golden_cases() -> dict[str, tuple[Task, str]]:
    """Named (task, group) pairs whose shared identifiers are pinned."""
    return {
        "train.seed0": (Train(seed=0), "checkpoints"),
        "train.seed0.epochs20": (Train(seed=0, max_epochs=20), "checkpoints"),
        "train.seed1": (Train(seed=1), "checkpoints"),
        "train.seed0.opt": (Train(seed=0, opt=Opt(lr=0.5)), "checkpoints"),
        "both.a": (Both(x=1, y=2), "a"),
        "both.b": (Both(x=1, y=2), "b"),
        "both.none": (Both(x=1, y=2), "none"),
        "longer.seed0": (LongerTrain(seed=0), "checkpoints"),
        "renamed.seed3": (Fit(s=3), "c"),
    }


def test_golden_shared_identifiers() -> None:
    actual = {name: _shared.shared_identifier(t, g) for name, (t, g) in golden_cases().items()}
    if not GOLDEN.exists():
        GOLDEN.write_text(
            json.dumps(
                {
                    "about": "Shared folder identifiers pinned by tests/unit/config/"
                    "test_shared.py (docs/identity.md, 'Shared folders'). Never edit a value.",
                    "identifiers": actual,
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
        pytest.fail(f"golden file written; check it and commit it: {GOLDEN}")
    pinned = json.loads(GOLDEN.read_text())["identifiers"]
    assert actual == pinned


def test_the_shared_identity_leaves_out_the_group_and_nothing_else() -> None:
    ids = {name: _shared.shared_identifier(t, g) for name, (t, g) in golden_cases().items()}
    assert ids["train.seed0"] == ids["train.seed0.epochs20"]
    assert (
        _shared.shared_identifier(Train(seed=0, device="gpu", note="x"), "checkpoints")
        == (ids["train.seed0"])
    )
    assert len(set(ids.values()) - {ids["train.seed0"]}) == len(ids) - 2
    # Not the task's identifier, although the bytes are those of a task without the group.
    assert ids["train.seed0"] != identifier(Train(seed=0))


def test_the_shared_identity_is_spelled_out() -> None:
    """The bytes of docs/identity.md, 'Shared folders'."""
    import hashlib

    task = Both(x=1, y=2)
    expected = (
        b"partita.shared/1\x00"
        + length_prefixed(b"golden.shared.both")
        + length_prefixed(b"a")
        + b"-"
        + length_prefixed(b"y")
        + b"i"
        + length_prefixed(b"2")
    )
    assert _shared.shared_identifier(task, "a") == hashlib.sha256(expected).hexdigest()


def test_a_renamed_class_keeps_its_shared_identifiers() -> None:
    """Its oldest type id and field names are encoded, as in its identity."""
    import hashlib

    expected = (
        b"partita.shared/1\x00"
        + length_prefixed(b"golden.shared.old-fit")
        + length_prefixed(b"c")
        + b"-"
        + length_prefixed(b"seed")
        + b"i"
        + length_prefixed(b"3")
    )
    assert _shared.shared_identifier(Fit(s=3, n=5), "c") == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize(
    ("shared", "message"),
    [
        ({"checkpoints": ("max_epoch",)}, "does not have. Did you mean 'max_epochs'?"),
        ({"checkpoints": ("note",)}, "which is a Meta field"),
        ({"../x": ("seed",)}, "group names are folder names"),
        ({"checkpoints": (1,)}, "expected a tuple of field names"),
        (["max_epochs"], "expected a dict of group name"),
    ],
)
def test_bad_groups_are_refused_at_class_definition(shared: object, message: str) -> None:
    with pytest.raises(ConfigDefinitionError) as caught:

        class Bad(Task, id="bad.shared", shared=shared):  # type: ignore[call-arg]
            seed: Param[int]
            max_epochs: Param[int] = 1
            note: Meta[str] = ""

    assert message in str(caught.value)


def test_a_config_cannot_declare_shared_folders() -> None:
    with pytest.raises(ConfigDefinitionError, match="not a Task"):

        class Bad(Config, shared={"x": ()}):  # type: ignore[call-arg]
            seed: Param[int]


def test_an_unknown_group_is_refused(tmp_path: Path) -> None:
    _runtime.set_current_workspace(tmp_path)
    with pytest.raises(ConfigDefinitionError, match=r"no shared folder 'ckpt'.*'checkpoints'"):
        Train(seed=0).shared_folder("ckpt")


def test_the_folder_is_under_shared_of_the_work_directory(tmp_path: Path) -> None:
    with pytest.raises(PendingPathError):
        Train(seed=0).shared_folder("checkpoints")
    _runtime.set_current_workspace(tmp_path)
    folder = Train(seed=0, max_epochs=3).shared_folder("checkpoints")
    ident = _shared.shared_identifier(Train(seed=0), "checkpoints")
    assert folder == tmp_path / "shared" / "golden.shared.train" / "checkpoints" / ident
    assert folder.is_dir()


def test_the_lock_keeps_a_second_holder_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_shared, "_lock_factory", [FileLock])
    _runtime.set_current_workspace(tmp_path)
    task = Train(seed=0)
    with task.shared("checkpoints") as folder:
        assert folder == task.shared_folder("checkpoints")
        # Another holder (another process's lock: flock locks are per open file).
        other = Train(seed=0, max_epochs=99)
        with (
            pytest.raises(SharedFolderTimeout, match="stayed locked"),
            other.shared("checkpoints", timeout=0.05),
        ):
            pass
        released = threading.Event()

        def wait() -> None:
            with Train(seed=0, max_epochs=5).shared("checkpoints"):
                released.set()

        thread = threading.Thread(target=wait)
        thread.start()
        assert not released.wait(0.1)
    thread.join(timeout=30)
    assert released.is_set()


def _wait_until_blocked(path: Path, deadline: float = 30.0) -> None:
    """Wait until some thread waits for the flock of the file ``path`` names (Linux)."""
    import time

    ino = os.stat(path).st_ino
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            if "->" in parts and parts[-3].rsplit(":", 1)[-1] == str(ino):
                return
        time.sleep(0.01)
    raise AssertionError(f"nobody started waiting for the lock {path}")


def test_gc_deleting_the_folder_while_a_job_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc unlinks the lock file it holds; the job waiting on it locks the new one."""
    from partita.workspace import Workspace, delete_shared
    from partita.workspace import _shared as workspace_shared

    monkeypatch.setattr(_shared, "_lock_factory", [lambda p: FileLock(p, check_path=True)])
    workspace = Workspace(tmp_path, create=True)
    _runtime.set_current_workspace(tmp_path)
    task = Train(seed=0)
    with task.shared("checkpoints") as folder:
        (folder / "old").write_text("stale")
    lock_path = folder.with_name(folder.name + ".lock")
    holding, done = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def job() -> None:
        with task.shared("checkpoints") as mine:
            seen.append(sorted(p.name for p in mine.iterdir()))
            (mine / "new").write_text("fresh")
            holding.set()
            done.wait(30)

    thread = threading.Thread(target=job)
    real = os

    class GcStepsInOrder:
        """``os`` for delete_shared: the job starts waiting while gc holds the lock."""

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def replace(self, source: Path, target: Path) -> None:
            thread.start()
            _wait_until_blocked(lock_path)
            real.replace(source, target)

    monkeypatch.setattr(workspace_shared, "os", GcStepsInOrder())
    assert delete_shared(workspace, folder) is None
    assert holding.wait(30)
    try:
        # The job found a fresh folder, made under the lock, and holds the lock of the file
        # the path names now: nobody else can take it.
        assert seen == [[]]
        assert sorted(p.name for p in folder.iterdir()) == ["new"]
        assert not FileLock(lock_path).acquire(blocking=False)
    finally:
        done.set()
        thread.join(30)
    assert FileLock(lock_path).acquire(blocking=False)


def test_a_lock_file_unlinked_by_its_holder_is_not_held_by_the_waiter(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = FileLock(path, check_path=True)
    assert first.acquire()
    got = threading.Event()
    waiter = FileLock(path, check_path=True)

    def wait() -> None:
        waiter.acquire()
        got.set()

    thread = threading.Thread(target=wait)
    thread.start()
    _wait_until_blocked(path)
    path.unlink()
    first.release()
    assert got.wait(30)
    thread.join(30)
    # The waiter relocked the file now at the path, so a third party is kept out.
    assert path.exists()
    assert not FileLock(path).acquire(blocking=False)
    waiter.release()
