"""Configuration files (YAML): reading them, their includes, and where each value came from.

A file is a mapping of field paths to values (nested mappings for nested configs, or dotted
keys). It may name other files, read first, with ``include: other.yaml`` (a name or a list)
or a Hydra-style ``defaults: [base, _self_]`` list: the file's own values win over those it
includes unless ``_self_`` is listed before them. Names are relative to the file; ``.yaml``
may be left out.

The YAML library is imported only here, and only when a file is read: the job runner never
loads it, and scripts without config files do not need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partita.errors import RunnerError

__all__ = ["Layer", "load_files", "read_disk"]

YAML_HINT = (
    "reading config files needs PyYAML, in the 'runner' extra: pip install 'partita[runner]'."
)

INCLUDE_KEYS = ("include", "defaults")


@dataclass
class Layer:
    """The values of one file (without its include keys), in the order they apply."""

    file: str
    values: dict[str, Any]


def read_disk(path: str) -> str:
    """The text of ``path`` (a :class:`RunnerError` when it cannot be read)."""
    try:
        return Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise RunnerError(f"config file {path} does not exist. Check the path.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RunnerError(f"config file {path} cannot be read: {reason}.") from None


def _parse(path: str, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise RunnerError(YAML_HINT) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise RunnerError(
            f"{path}{where}: {problem}. Fix the YAML syntax (indentation, ':' after keys, "
            "matching quotes and brackets)."
        ) from None
    except yaml.YAMLError as exc:
        raise RunnerError(f"{path}: not valid YAML ({exc}).") from None


def _names(value: Any, key: str, path: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise RunnerError(
        f"{path}: {key!r} must be a file name or a list of file names, found {value!r}. "
        f"Example: {key}: [base.yaml, _self_]."
    )


def _target(name: str, parent: str, exists: Callable[[str], bool]) -> str:
    base = os.path.dirname(parent)
    candidate = os.path.normpath(os.path.join(base, os.path.expanduser(name)))
    if not exists(candidate) and not os.path.splitext(candidate)[1]:
        for suffix in (".yaml", ".yml"):
            if exists(candidate + suffix):
                return candidate + suffix
    return candidate


def load_files(
    names: list[str],
    read: Callable[[str], str] = read_disk,
    exists: Callable[[str], bool] = os.path.exists,
) -> tuple[list[Layer], list[dict[str, str]]]:
    """The layers of ``names`` (in order, includes first) and every file read (path, text).

    Raises :class:`RunnerError` for a file that cannot be read, a YAML syntax error (with
    its line), a file that is not a mapping and an include cycle.
    """
    layers: list[Layer] = []
    read_files: dict[str, str] = {}

    def visit(path: str, chain: list[str]) -> None:
        if path in chain:
            cycle = " → ".join([*chain[chain.index(path) :], path])
            raise RunnerError(
                f"config files include each other in a loop: {cycle}. Remove one include."
            )
        text = read_files[path] if path in read_files else read(path)
        read_files.setdefault(path, text)
        document = _parse(path, text)
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise RunnerError(
                f"{path}: expected a mapping of fields to values (e.g. 'lr: 0.1'), found "
                f"{type(document).__name__}."
            )
        own = {str(k): v for k, v in document.items() if k not in INCLUDE_KEYS}
        order: list[str] = []
        for key in INCLUDE_KEYS:
            if key in document:
                order.extend(_names(document[key], key, path))
        if "_self_" not in order:
            order.append("_self_")
        for name in order:
            if name == "_self_":
                layers.append(Layer(path, own))
            else:
                visit(_target(name, path, exists), [*chain, path])

    for name in names:
        visit(os.path.abspath(os.path.expanduser(name)), [])
    files = [{"path": path, "text": text} for path, text in read_files.items()]
    return layers, files
