"""Whether a job process can import a task's class: checked at submission, before launching."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from typing import Any

from partita.errors import TaskImportError

_class_lines: dict[str, dict[str, int]] = {}
_first_entry: dict[str, int] = {}


def _top_level_classes(file: str) -> dict[str, int]:
    cached = _class_lines.get(file)
    if cached is None:
        try:
            tree = ast.parse(Path(file).read_text("utf-8"))
        except (OSError, SyntaxError):
            return {}
        cached = {node.name: node.lineno for node in tree.body if isinstance(node, ast.ClassDef)}
        _class_lines[file] = cached
    return cached


def _caller_location() -> tuple[str, int] | None:
    frame = sys._getframe(1)
    package = os.path.dirname(__file__)
    while frame is not None and os.path.dirname(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    return frame.f_code.co_filename, frame.f_lineno


def note_entry() -> tuple[str, int] | None:
    """Remember where the user's code enters an experiment (the first entry of each file)."""
    entry = _caller_location()
    if entry is not None:
        file, line = entry
        _first_entry[file] = min(line, _first_entry.get(file, line))
    return entry


def check_importable(cls: type) -> None:
    """Raise :class:`TaskImportError` unless the job process can import ``cls`` by its name."""
    qual = cls.__qualname__
    if "<locals>" in qual:
        raise TaskImportError(
            f"{qual} is defined inside a function, so the job process cannot import it. "
            "Define it at the top level of a module or of the script."
        )
    module = cls.__module__
    if module == "__main__":
        main = sys.modules.get("__main__")
        file = getattr(main, "__file__", None)
        if not file:
            raise TaskImportError(
                f"{qual} is defined interactively (no script file), so the job process "
                "cannot import it. Put it in a module or a script file."
            )
        top = _top_level_classes(os.path.abspath(file))
        line = top.get(qual)
        if line is None:
            raise TaskImportError(
                f"{qual} is not defined at the top level of {file} (it may be inside an "
                "'if' block or a function), so the job process cannot import it. Move it "
                "to the top level of the script, before 'with experiment(...)'."
            )
        first = _first_entry.get(file) or _first_entry.get(os.path.abspath(file))
        if first is not None and line > first:
            raise TaskImportError(
                f"{qual} is defined at line {line} of {file}, after the first experiment "
                f"starts (line {first}). The job process imports the script only up to "
                "its first 'with experiment(...)': move the class above it."
            )
    else:
        target: Any = sys.modules.get(module)
        for part in qual.split("."):
            target = getattr(target, part, None)
        if target is not cls:
            raise TaskImportError(
                f"{qual} cannot be found as {module}.{qual}, so the job process cannot "
                "import it. Define it at the top level of its module."
            )
