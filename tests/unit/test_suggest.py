"""The "did you mean" of error messages (partita._suggest.closest)."""

from __future__ import annotations

import pytest

from partita import Config, Param
from partita._suggest import closest
from partita.errors import UnknownFieldError


@pytest.mark.parametrize(
    ("name", "choices", "expected"),
    [
        ("Cee", ["seeds", "C", "lr"], "C"),
        ("LR", ["lr", "seeds"], "lr"),
        ("bach_size", ["batch_size", "epochs"], "batch_size"),
        ("learning_rat", ["learning_rate", "C"], "learning_rate"),
        ("se", ["seeds", "C"], "seeds"),
        ("xyz", ["lr", "C"], None),
        ("s", ["seeds", "steps"], None),
        ("anything", [], None),
    ],
)
def test_closest(name: str, choices: list[str], expected: str | None) -> None:
    assert expected == closest(name, choices)


class Svm(Config, id="suggest.svm"):
    C: Param[float]
    seeds: Param[int] = 1


def test_unknown_field_suggests_by_case() -> None:
    with pytest.raises(UnknownFieldError, match=r"has no field 'Cee'\. Did you mean 'C'\?"):
        Svm(Cee=1.0)  # type: ignore[call-arg]
