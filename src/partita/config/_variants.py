"""Variants of configs: ``cfg.replace(...)`` and distinct instances.

``replace`` copies a config (submitted or not) into a new, unfrozen one with some fields
changed, including fields of the configs it holds (``"model.layers"``). ``distinct`` gives a
config an instance key that is part of its identity, so two equal configs stay two.
"""

from __future__ import annotations

from typing import Any, TypeVar

from partita.config._classdef import resolve_fields
from partita.config._config import (
    Config,
    Task,
    _replacer,
    _State,
    run_post_init,
    state_of,
    walk,
)
from partita.config._fields import Ignored, Tagged
from partita.errors import ConfigTypeError, FrozenConfigError, UnknownFieldError

C = TypeVar("C", bound=Config)


def _copy(cfg: C) -> C:
    """A new, unfrozen config with the fields, tags and marks of ``cfg``.

    Generated paths are left out (they are given again when the copy is submitted), and so
    are plain attributes (``__post_init__`` runs again on the copy).
    """
    cls = type(cfg)
    fields = resolve_fields(cls)
    st = state_of(cfg)
    new = cls.__new__(cls)
    d = new.__dict__
    fresh = _State()
    fresh.tags = dict(st.tags)
    fresh.ignored = st.ignored
    fresh.instance = st.instance
    fresh.bound = st.bound
    fresh.producer = st.producer
    fresh.pretasks = st.pretasks  # a variant of a task runs the same pre-tasks
    d["__partita__"] = fresh
    own = st.bound or fields
    for name, f in fields.items():
        if name not in cfg.__dict__ or f.generator is not None:
            continue
        # validate() rebuilds lists and dicts: the copy's are its own, and not read-only.
        d[name] = own[name].type.validate(cfg.__dict__[name], f"{cls.__qualname__}.{name}")
    return new


def _has_generated(cfg: Config) -> bool:
    for _, current in walk(cfg, into_tasks=False):
        if isinstance(current, Task) and current is not cfg:
            continue
        if any(f.generator is not None for f in type(current)._partita_fields.values()):
            return True
    return False


def _unshare_generated(cfg: Config, done: dict[int, Config]) -> None:
    """Copy the sub-configs of ``cfg`` whose generated paths belong to another job."""
    cls = type(cfg)
    d = cfg.__dict__
    for name in cls._partita_walk:
        if name in d:
            d[name] = _unshare_value(d[name], done)


def _unshare_value(value: Any, done: dict[int, Config]) -> Any:
    if isinstance(value, Config):
        known = done.get(id(value))
        if known is not None:
            return known
        if isinstance(value, Task) or not _has_generated(value):
            return value
        known = _copy(value)
        done[id(value)] = done[id(known)] = known
        _unshare_generated(known, done)
        run_post_init(known)
        return known
    if isinstance(value, list):
        return [_unshare_value(v, done) for v in value]
    if isinstance(value, tuple):
        return tuple(_unshare_value(v, done) for v in value)
    if isinstance(value, dict):
        return {k: _unshare_value(v, done) for k, v in value.items()}
    if isinstance(value, frozenset):
        return frozenset(_unshare_value(v, done) for v in value)
    return value


def _no_field(cfg: Config, name: str, path: str) -> UnknownFieldError:
    fields = resolve_fields(type(cfg))
    from partita._suggest import closest

    close = closest(name, fields)
    hint = f" Did you mean {(path + '.' if path else '') + close!r}?" if close else ""
    where = f"{type(cfg).__qualname__}" + (f" (at {path!r})" if path else "")
    return UnknownFieldError(
        f"replace(): {where} has no field {name!r}.{hint} Its fields are: "
        f"{', '.join(sorted(fields)) or '(none)'}."
    )


def replace(cfg: C, changes: dict[str, Any]) -> C:
    """A new, unfrozen variant of ``cfg`` (see :meth:`partita.Config.replace`)."""
    tree: dict[str, Any] = {}
    for key, value in changes.items():
        parts = key.split(".")
        if not all(parts):
            raise UnknownFieldError(
                f"replace(): {key!r} is not a field path. Use field names joined by dots, "
                "e.g. replace(lr=0.1, **{'model.layers': 4})."
            )
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigTypeError(
                    f"replace(): {key!r} changes a field of {part!r}, which is also "
                    "replaced as a whole. Give one or the other."
                )
            node = child
        if parts[-1] in node:
            raise ConfigTypeError(
                f"replace(): {key!r} is given twice (as a value and through its fields)."
            )
        node[parts[-1]] = _Leaf(value)
    copies: dict[int, Config] = {}
    result = _apply(cfg, tree, "", copies)
    # The copies on changed paths may still hold (deeper) configs whose generated paths
    # belong to the original's job folder: copy those too.
    done = dict(copies)
    done.update({id(copy): copy for copy in copies.values()})
    for copy in list(copies.values()):
        _unshare_generated(copy, done)
    run_post_init(result)
    return result


class _Leaf:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _apply(cfg: C, tree: dict[str, Any], path: str, copies: dict[int, Config]) -> C:
    fields = resolve_fields(type(cfg))
    for name in tree:
        if name not in fields:
            raise _no_field(cfg, name, path)
    new = _copy(cfg)
    copies[id(cfg)] = new
    for name, change in tree.items():
        where = f"{path}.{name}" if path else name
        if isinstance(change, _Leaf):
            setattr(new, name, change.value)  # checked as at construction
            continue
        held = new.__dict__.get(name)
        if not isinstance(held, Config):
            raise ConfigTypeError(
                f"replace(): {where} holds {type(held).__name__} {held!r}, not a config, so "
                f"it has no fields to change. Replace it as a whole: replace({where}=...)."
            )
        if isinstance(held, Task) and state_of(held).frozen:
            raise FrozenConfigError(
                f"replace(): {where} is a submitted {type(held).__qualname__}; a variant of "
                f"it must be submitted too. Submit {where}.replace(...) and pass what "
                "submit() returns."
            )
        sub = _apply(held, change, where, copies)
        run_post_init(sub)
        new.__dict__[name] = sub  # held is a config, so sub is one of its type
    return new


def distinct(cfg: C, key: str) -> C:
    """Mark ``cfg`` as a distinct instance named ``key``: ``key`` is part of its identity.

    Two equal configs have one identifier and are one object after a reload.
    ``Model(encoder=distinct(Layer(n=4), "encoder"), decoder=distinct(Layer(n=4), "decoder"))``
    keeps two layers (untied weights): two identifiers, two objects in ``params.json``.
    Returns ``cfg`` (marked; it must not be submitted yet).
    """
    if isinstance(cfg, Tagged | Ignored) or not isinstance(cfg, Config):
        raise ConfigTypeError(
            f"distinct(): expected a config instance, found {type(cfg).__name__} {cfg!r}. "
            "Mark the config, then wrap it: ignore(distinct(cfg, 'key'))."
        )
    if not isinstance(key, str) or not key:
        raise ConfigTypeError(
            f"distinct(): expected a non-empty str key, found {key!r}. Name the instance, "
            "e.g. distinct(Layer(n=4), 'encoder')."
        )
    st = state_of(cfg)
    if st.frozen:
        raise FrozenConfigError(
            f"distinct(): this {type(cfg).__qualname__} is submitted (or loaded) and its "
            f"identity cannot change. Mark a variant: distinct(cfg.replace(), {key!r})."
        )
    st.instance = key
    st.digest = None
    return cfg


_replacer[:] = [replace]
