"""The "did you mean" of error messages: the known name closest to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice ``name`` most likely stands for, or ``None``.

    A choice that differs only in case wins, then the closest by ``difflib`` with case
    ignored (so ``Cee`` suggests ``C``, not ``seeds``), then the only choice that starts
    with ``name`` (a name cut short).
    """
    options = list(choices)
    folded = name.casefold()
    by_fold: dict[str, str] = {}
    for option in options:
        by_fold.setdefault(option.casefold(), option)
    if folded in by_fold:
        return by_fold[folded]
    close = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=cutoff)
    if close:
        return by_fold[close[0]]
    # A short name against long ones scores low on ratio; a shared first letter and a
    # length within one still make a likely slip (``Cee`` for ``C``, ``lrr`` for ``lr``).
    near = [
        o
        for f, o in by_fold.items()
        if f and f[0] == folded[:1] and abs(len(f) - len(folded)) <= 2 and len(f) <= 3
    ]
    if len(near) == 1:
        return near[0]
    starting = [o for f, o in by_fold.items() if folded and f.startswith(folded)]
    return starting[0] if len(starting) == 1 else None
