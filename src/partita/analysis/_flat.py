"""A job's parameters as flat ``{dotted name: value}``, following the tasks that produced them.

Read from ``params.json`` alone (no task class is imported): a config held by a field is
followed into its fields (``model.split.seed``), and a task output is followed into the task
that produced it, so an ``Evaluate`` row carries its ``Train``'s ``lr``. Paths inside the
job's own folder or a producer's folder read relative to it (``<this job>/model.pt``): they
differ between jobs only because the identities differ.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["flat_params", "valid_document"]


def valid_document(document: Any) -> bool:
    """Whether ``document`` has the shape of a ``params.json`` document."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("objects"), list)
        and isinstance(document.get("root"), int)
        and 0 <= document["root"] < len(document["objects"])
        and all(isinstance(entry, dict) for entry in document["objects"])
    )


def _folder(entry: dict[str, Any]) -> str:
    return f"jobs/{entry.get('type', '?')}/{entry.get('id', '?')}"


def flat_params(document: dict[str, Any]) -> dict[str, Any]:
    """``{"lr": 0.1, "model.split.seed": 1, ...}`` for the root config of ``document``."""
    objects: list[dict[str, Any]] = document["objects"]
    root = objects[document["root"]]
    folders = {_folder(root): "<this job>"}
    out: dict[str, Any] = {}

    def put(path: str, value: Any, weak: bool) -> None:
        if weak:
            out.setdefault(path, value)
        else:
            out[path] = value

    def plain(value: Any) -> Any:
        """A value that is not flattened further (an item of a set, a dict key's value)."""
        if isinstance(value, list):
            return [plain(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "$ref" in value:
            entry = objects[value["$ref"]]
            return f"{entry.get('type', '?')}/{str(entry.get('id', ''))[:12]}"
        if "$path" in value:
            return path_text(value)
        if "$enum" in value:
            return f"{str(value['$enum']).rpartition(':')[2]}.{value.get('name')}"
        if "$float" in value:
            return float(value["$float"])
        if "$tuple" in value:
            return [plain(v) for v in value["$tuple"]]
        if "$set" in value:
            return sorted((plain(v) for v in value["$set"]), key=repr)
        inner = value.get("$dict", value)
        return {k: plain(v) for k, v in inner.items()}

    def path_text(value: dict[str, Any]) -> str:
        text = str(value["$path"])
        if value.get("base") == "workspace":
            for folder, label in folders.items():
                if text == folder or text.startswith(folder + "/"):
                    return label + text[len(folder) :]
        return text

    def visit(value: Any, path: str, weak: bool, depth: int) -> None:
        if depth > 50:
            put(path, plain(value), weak)
            return
        if value is None or isinstance(value, bool | int | float | str):
            put(path, value, weak)
            return
        if isinstance(value, list) or (isinstance(value, dict) and "$tuple" in value):
            items = value if isinstance(value, list) else value["$tuple"]
            if all(not isinstance(item, dict) or "$ref" not in item for item in items):
                put(path, plain(items), weak)
                return
            for i, item in enumerate(items):
                visit(item, f"{path}[{i}]", weak, depth + 1)
            return
        if not isinstance(value, dict):
            put(path, repr(value), weak)
            return
        if "$ref" in value:
            index = value["$ref"]
            entry = objects[index] if isinstance(index, int) and 0 <= index < len(objects) else {}
            for name, item in sorted(entry.get("fields", {}).items()):
                visit(item, f"{path}.{name}", weak, depth + 1)
            producer = entry.get("producer")
            if isinstance(producer, int) and 0 <= producer < len(objects):
                made_by = objects[producer]
                folders.setdefault(_folder(made_by), f"<{made_by.get('type', '?')} job>")
                for name, item in sorted(made_by.get("fields", {}).items()):
                    visit(item, f"{path}.{name}", True, depth + 1)
            return
        if "$path" in value or "$enum" in value or "$float" in value or "$set" in value:
            put(path, plain(value), weak)
            return
        inner = value.get("$dict", value)
        for key, item in inner.items():
            visit(item, f"{path}.{key}", weak, depth + 1)

    for name, value in sorted(root.get("fields", {}).items()):
        visit(value, name, False, 0)
    pretasks = root.get("pretasks")
    for i, ref in enumerate(pretasks if isinstance(pretasks, list) else ()):
        visit({"$ref": ref}, f"pretasks[{i}]", False, 1)  # "pretasks" is reserved: no clash
    producer = root.get("producer")
    if isinstance(producer, int) and 0 <= producer < len(objects):
        for name, value in sorted(objects[producer].get("fields", {}).items()):
            visit(value, name, True, 0)
    return out


def same(a: Any, b: Any) -> bool:
    """Equality for table cells: NaN equals NaN, ``1`` differs from ``True`` and ``1.0``."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)
