"""Runner tests: make ``rclasses`` importable and isolate process-wide state."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from partita.config import _config, _runtime  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_runtime, "_workspace_roots", [])
    monkeypatch.setattr(_runtime, "_current_workspace", [])
    monkeypatch.setattr(_config, "_submitter", [])
