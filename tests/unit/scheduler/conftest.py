"""Scheduler tests: a real ``Scheduler`` on a real work directory, with a ``FakeLauncher``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from schedharness import Harness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "work")
    try:
        yield h
    finally:
        h.close()
