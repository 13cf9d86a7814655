"""Tokens: counted resources shared by every experiment on a work directory.

``gpu = Token("gpu", 2)`` then ``task.submit(tokens={gpu: 1})``: a job starts only when its
units are free. Units are recorded as one file per holder in ``WORKDIR/tokens/<name>/``,
created and counted under a ``flock`` on that folder's ``.lock``; a holder file names the
experiment process and, once launched, the job process. Units whose experiment *and* job
are provably dead are taken back by the next process that looks.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from partita.errors import ConfigTypeError
from partita.launchers import probe_handle
from partita.workspace import Workspace, hold, identity, is_alive
from partita.workspace._atomic import write_json

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class Token:
    """A resource with ``capacity`` units (GPUs, licences, memory...), shared across processes.

    Args:
        name: names the resource in the work directory (``tokens/<name>/``).
        capacity: how many units exist. Experiments sharing a work directory should agree
            on it; each one admits a job when the units in use plus the job's fit *its*
            capacity.
    """

    def __init__(self, name: str, capacity: int) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigTypeError(
                f"Token name: expected letters, digits, '_', '-' or '.', found {name!r}."
            )
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ConfigTypeError(
                f"Token {name!r} capacity: expected a positive int, found {capacity!r}."
            )
        self.name = name
        self.capacity = capacity

    def __repr__(self) -> str:
        return f"Token({self.name!r}, {self.capacity})"

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Token) and other.name == self.name


def check_request(tokens: dict[Any, int]) -> dict[Token, int]:
    """Validate a ``tokens=`` argument of ``submit``."""
    checked: dict[Token, int] = {}
    for token, units in tokens.items():
        if not isinstance(token, Token):
            raise ConfigTypeError(
                f"tokens: expected partita.Token keys, found {type(token).__name__} {token!r}. "
                "Create one with Token('gpu', 2)."
            )
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ConfigTypeError(f"tokens[{token.name!r}]: expected a positive int of units.")
        if units > token.capacity:
            raise ConfigTypeError(
                f"tokens[{token.name!r}]: the task asks for {units} units but the token has "
                f"only {token.capacity}; it could never start."
            )
        checked[token] = units
    return checked


class TokenStore:
    """Acquires and releases token units in a work directory (one per scheduler)."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = workspace.tokens
        self.me = identity()

    def _file(self, key: str) -> str:
        # One file per (job, process): two experiments racing for the same job never
        # overwrite each other's units.
        return f"{key}.{self.me['pid']}.json"

    def _folder(self, token: Token) -> Path:
        folder = self.root / token.name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def try_acquire(self, key: str, tokens: dict[Token, int]) -> bool:
        """Take every requested unit for ``key`` (a job identifier), or none of them."""
        taken: list[Token] = []
        for token in sorted(tokens, key=lambda t: t.name):
            if self._try_one(token, tokens[token], key):
                taken.append(token)
            else:
                for done in taken:
                    self.release(key, {done: tokens[done]})
                return False
        return True

    def _try_one(self, token: Token, units: int, key: str) -> bool:
        # Never waits for the folder lock: a busy folder counts as "not now" and the
        # scheduler looks again shortly (it must not stall its loop on another process).
        folder = self._folder(token)
        with hold(folder / ".lock", blocking=False) as held:
            if not held:
                return False
            used = 0
            for entry in folder.iterdir():
                if entry.name.startswith(".") or not entry.name.endswith(".json"):
                    continue
                holder = _read(entry)
                if holder is None or not _holder_alive(holder):
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()
                    continue
                used += int(holder.get("units", 0))
            if used + units > token.capacity:
                return False
            write_json(
                folder / self._file(key),
                {"units": units, "owner": self.me, "job": None},
                fsync=False,
            )
            return True

    def attach(self, key: str, tokens: dict[Token, int], handle: dict[str, Any]) -> None:
        """Record the launched job's process, so units stay held if the experiment dies."""
        for token in tokens:
            path = self._folder(token) / self._file(key)
            holder = _read(path)
            if holder is not None:
                holder["job"] = handle
                write_json(path, holder, fsync=False)

    def release(self, key: str, tokens: dict[Token, int]) -> None:
        """Give back the units held for ``key``."""
        for token in tokens:
            with contextlib.suppress(FileNotFoundError):
                (self.root / token.name / self._file(key)).unlink()

    def in_use(self, token: Token) -> int:
        """Units currently held by live holders (for diagnostics and tests)."""
        folder = self._folder(token)
        total = 0
        for entry in folder.glob("*.json"):
            holder = _read(entry)
            if holder is not None and _holder_alive(holder):
                total += int(holder.get("units", 0))
        return total


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _holder_alive(holder: dict[str, Any]) -> bool:
    """Held while the experiment that took it or the job it was taken for lives."""
    owner = holder.get("owner")
    if owner and is_alive(owner) is not False:
        return True
    # Only a job its launcher sees running keeps them (a cluster job it cannot see from
    # here does not: its experiment holds its units while it follows it).
    return probe_handle(holder.get("job")) is True
