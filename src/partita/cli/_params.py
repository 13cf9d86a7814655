"""Reading ``params.json`` for people: flat ``path: value`` lines, plain JSON, differences.

The document lists configs as objects that refer to each other with ``{"$ref": i}``; other
values that JSON cannot say are tagged (``$path``, ``$enum``, ``$tuple``, ``$set``,
``$float``, ``$dict``). Nothing here imports the task classes: a job's parameters can be
read even when its code is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from partita.workspace import JobPaths, read_json

Objects = list[dict[str, Any]]


@dataclass(frozen=True)
class Leaf:
    """One flattened value: how it reads and its type name."""

    text: str
    kind: str
    container: bool = False
    """A list, dict, tuple or config: its items follow as their own leaves."""


def load_params(paths: JobPaths) -> dict[str, Any] | None:
    """The ``params.json`` document of a job (``None`` if absent or unreadable)."""
    document = read_json(paths.params)
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("objects"), list)
        or not isinstance(document.get("root"), int)
        or not 0 <= document["root"] < len(document["objects"])
        or not isinstance(document["objects"][document["root"]], dict)
    ):
        return None
    return document


def root_object(document: dict[str, Any]) -> dict[str, Any]:
    """The job's own config in its ``params.json`` document."""
    root: dict[str, Any] = document["objects"][document["root"]]
    return root


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _short_name(entry: dict[str, Any]) -> str:
    return f"{entry.get('type', '?')}/{str(entry.get('id', ''))[:12]}"


def _class_name(reference: str) -> str:
    return reference.rpartition(":")[2] or reference


def _scalar(value: Any) -> Leaf | None:
    if value is None:
        return Leaf("None", "None")
    if isinstance(value, bool):
        return Leaf(repr(value), "bool")
    if isinstance(value, int):
        return Leaf(repr(value), "int")
    if isinstance(value, float):
        return Leaf(repr(value), "float")
    if isinstance(value, str):
        return Leaf(repr(value), "str")
    if not isinstance(value, dict):
        return None
    if "$float" in value:
        return Leaf(str(value["$float"]), "float")
    if "$path" in value:
        return Leaf(f"Path({str(value['$path'])!r})", "Path")
    if "$enum" in value:
        cls = _class_name(str(value["$enum"]))
        return Leaf(f"{cls}.{value.get('name')}", cls)
    return None


def _compact(value: Any, objects: Objects) -> str:
    """One-line text of any value (used for set items)."""
    leaf = _scalar(value)
    if leaf is not None:
        return leaf.text
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v, objects) for v in value) + "]"
    if isinstance(value, dict):
        if "$ref" in value:
            return _short_name(objects[value["$ref"]])
        if "$tuple" in value:
            items = [_compact(v, objects) for v in value["$tuple"]]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if "$set" in value:
            return "{" + ", ".join(_compact(v, objects) for v in value["$set"]) + "}"
        inner = value.get("$dict", value)
        return "{" + ", ".join(f"{k!r}: {_compact(v, objects)}" for k, v in inner.items()) + "}"
    return repr(value)


def _folder(entry: dict[str, Any]) -> str:
    return f"jobs/{entry.get('type', '?')}/{entry.get('id', '?')}"


def flatten(
    document: dict[str, Any],
    *,
    stop: Callable[[dict[str, Any]], bool] | None = None,
    producers: bool = False,
) -> dict[str, Leaf]:
    """``{"strings[1].word": Leaf("'world'", "str"), ...}`` for the job's config.

    Nested configs are followed through their ``$ref``; ``stop(entry)`` may refuse to go
    into one (it is then shown by name only, e.g. a dependency that has its own job).

    With ``producers=True`` (for comparisons), a task output is followed into the task that
    produced it (``data.(from demo.split).seed``), and paths inside the job's own folder or
    a producer's folder read relative to it (``<this job>/model.pt``): they differ between
    two jobs only because the identities differ, which the followed parameters explain.
    """
    objects: Objects = document["objects"]
    out: dict[str, Leaf] = {}
    folders: dict[str, str] = {}
    if producers:
        folders[_folder(root_object(document))] = "<this job>"

    def relabel(value: dict[str, Any]) -> Leaf | None:
        text = str(value["$path"])
        if value.get("base") != "workspace":
            return None
        for folder, label in folders.items():
            if text == folder or text.startswith(folder + "/"):
                return Leaf(f"Path({label + text[len(folder) :]!r})", "Path")
        return None

    def visit(value: Any, path: str) -> None:
        if folders and isinstance(value, dict) and "$path" in value:
            relabelled = relabel(value)
            if relabelled is not None:
                out[path] = relabelled
                return
        leaf = _scalar(value)
        if leaf is not None:
            out[path] = leaf
            return
        if isinstance(value, list):
            out[path] = Leaf(
                f"[{_count(len(value), 'item')}]" if value else "[]", "list", bool(value)
            )
            for i, item in enumerate(value):
                visit(item, f"{path}[{i}]")
            return
        if not isinstance(value, dict):
            out[path] = Leaf(repr(value), type(value).__name__)
            return
        if "$ref" in value:
            entry = objects[value["$ref"]]
            kind = str(entry.get("type", "?"))
            if stop is not None and stop(entry):
                out[path] = Leaf(_short_name(entry), kind)
                return
            out[path] = Leaf(f"<{kind}>", kind, True)
            producer = entry.get("producer")
            if producers and isinstance(producer, int) and 0 <= producer < value["$ref"]:
                made_by = objects[producer]
                folders.setdefault(_folder(made_by), f"<{made_by.get('type', '?')} job>")
                visit({"$ref": producer}, f"{path}.(from {made_by.get('type', '?')})")
            visit_fields(entry, f"{path}.")
            return
        if "$tuple" in value:
            items = value["$tuple"]
            out[path] = Leaf(
                f"({_count(len(items), 'item')})" if items else "()", "tuple", bool(items)
            )
            for i, item in enumerate(items):
                visit(item, f"{path}[{i}]")
            return
        if "$set" in value:
            out[path] = Leaf(_compact(value, objects), "set")
            return
        inner = value.get("$dict", value)
        out[path] = Leaf(f"{{{_count(len(inner), 'key')}}}" if inner else "{}", "dict", bool(inner))
        for key, item in inner.items():
            visit(item, f"{path}[{key!r}]")

    def visit_fields(entry: dict[str, Any], prefix: str) -> None:
        instance = entry.get("instance")
        if isinstance(instance, str):  # a distinct() instance: its key is in its identity
            out[prefix + "(instance)"] = Leaf(repr(instance), "str")
        ignored = entry.get("ignored")
        for name, item in sorted(entry.get("fields", {}).items()):
            if not isinstance(ignored, list) or name not in ignored:
                visit(item, prefix + name)
                continue
            # held with ignore(): shown, but marked as not part of the identity
            before = set(out)
            visit(item, prefix + name)
            for key in [k for k in out if k not in before]:
                leaf = out[key]
                out[key] = Leaf(f"{leaf.text}  (ignored)", leaf.kind, leaf.container)

    root = root_object(document)
    visit_fields(root, "")
    for i, ref in enumerate(_pretask_refs(root)):  # "pretasks" is a reserved name: no clash
        visit({"$ref": ref}, f"pretasks[{i}]")
    return out


def _pretask_refs(entry: dict[str, Any]) -> list[int]:
    refs = entry.get("pretasks")
    return [ref for ref in refs if isinstance(ref, int)] if isinstance(refs, list) else []


def to_plain(document: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters as plain JSON: nested configs become objects with
    ``$type``/``$id``, paths and enums strings, tuples and sets lists."""
    objects: Objects = document["objects"]

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "$ref" in value:
            entry = objects[value["$ref"]]
            fields = {name: plain(v) for name, v in sorted(entry.get("fields", {}).items())}
            return {"$type": entry.get("type"), "$id": entry.get("id"), **fields}
        if "$path" in value:
            return value["$path"]
        if "$enum" in value:
            return f"{_class_name(str(value['$enum']))}.{value.get('name')}"
        if "$float" in value:
            return str(value["$float"])
        if "$tuple" in value:
            return [plain(v) for v in value["$tuple"]]
        if "$set" in value:
            return [plain(v) for v in value["$set"]]
        inner = value.get("$dict", value)
        return {key: plain(v) for key, v in inner.items()}

    root = root_object(document)
    out = {name: plain(value) for name, value in sorted(root.get("fields", {}).items())}
    pretasks = _pretask_refs(root)
    if pretasks:  # the task's pre-tasks, in the order they run
        out["pretasks"] = [plain({"$ref": ref}) for ref in pretasks]
    return out


@dataclass(frozen=True)
class Change:
    """A parameter that differs between two jobs."""

    path: str
    before: Leaf | None
    after: Leaf | None

    @property
    def type_changed(self) -> bool:
        """Whether the value changed type (``1`` → ``'1'``), not only value."""
        return (
            self.before is not None
            and self.after is not None
            and self.before.kind != self.after.kind
        )

    def describe(self) -> str:
        """``strings[1].word: 'hello' → 'world'`` (types added when they differ)."""
        before = self.before.text if self.before else "(absent)"
        after = self.after.text if self.after else "(absent)"
        if self.type_changed:
            assert self.before is not None and self.after is not None
            before = f"{before} ({self.before.kind})"
            after = f"{after} ({self.after.kind})"
        return f"{self.path}: {before} → {after}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "path": self.path,
            "before": self.before.text if self.before else None,
            "after": self.after.text if self.after else None,
            "before_type": self.before.kind if self.before else None,
            "after_type": self.after.kind if self.after else None,
        }


def diff(first: dict[str, Any], second: dict[str, Any]) -> list[Change]:
    """Parameters that differ between two ``params.json`` documents, in reading order.

    Outputs are followed into the tasks that produced them, and paths inside the jobs'
    own folders (generated paths) or their producers' compare relative to those folders.
    """
    a, b = flatten(first, producers=True), flatten(second, producers=True)
    changes = []
    for path in [*a, *(p for p in b if p not in a)]:
        before, after = a.get(path), b.get(path)
        if before == after:
            continue
        if (
            before is not None
            and after is not None
            and before.kind == after.kind
            and (before.container or after.container)
        ):
            continue  # same kind of container: its items say what changed
        if _under_absent(path, a, b):
            continue
        changes.append(Change(path, before, after))
    return changes


def _under_absent(path: str, a: dict[str, Leaf], b: dict[str, Leaf]) -> bool:
    """Whether ``path`` is inside a value that exists on one side only (already reported)."""
    for cut in range(len(path) - 1, 0, -1):
        if path[cut] in ".[":
            parent = path[:cut]
            if (parent in a) != (parent in b):
                return True
    return False
