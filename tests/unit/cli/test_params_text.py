"""How params.json values read in ``partita jobs show``."""

from __future__ import annotations

from partita.cli._params import flatten


def _document(fields: dict[str, object]) -> dict[str, object]:
    return {"root": 0, "objects": [{"type": "demo.t", "id": "ab" * 32, "fields": fields}]}


def test_container_sizes_are_singular_for_one() -> None:
    leaves = flatten(
        _document(
            {
                "one": [1],
                "two": [1, 2],
                "pair": {"$tuple": [1]},
                "map": {"$dict": {"a": 1}},
                "maps": {"$dict": {"a": 1, "b": 2}},
            }
        )
    )
    texts = {path: leaf.text for path, leaf in leaves.items() if leaf.container}
    assert texts == {
        "one": "[1 item]",
        "two": "[2 items]",
        "pair": "(1 item)",
        "map": "{1 key}",
        "maps": "{2 keys}",
    }


def test_a_field_held_with_ignore_is_marked() -> None:
    document = {
        "root": 1,
        "objects": [
            {"type": "demo.data", "id": "cd" * 32, "fields": {"name": "v1"}},
            {
                "type": "demo.t",
                "id": "ab" * 32,
                "fields": {"lr": 0.1, "validation": {"$ref": 0}},
                "ignored": ["validation"],
            },
        ],
    }
    texts = {path: leaf.text for path, leaf in flatten(document).items()}
    assert texts == {
        "lr": "0.1",
        "validation": "<demo.data>  (ignored)",
        "validation.name": "'v1'  (ignored)",
    }


def test_the_key_of_a_distinct_instance_is_shown() -> None:
    document = {
        "root": 2,
        "objects": [
            {"type": "demo.layer", "id": "cd" * 32, "fields": {"n": 4}, "instance": "enc"},
            {"type": "demo.layer", "id": "ef" * 32, "fields": {"n": 4}, "instance": "dec"},
            {
                "type": "demo.model",
                "id": "ab" * 32,
                "fields": {"encoder": {"$ref": 0}, "decoder": {"$ref": 1}},
            },
        ],
    }
    texts = {p: leaf.text for p, leaf in flatten(document).items() if not leaf.container}
    assert texts == {
        "decoder.(instance)": "'dec'",
        "decoder.n": "4",
        "encoder.(instance)": "'enc'",
        "encoder.n": "4",
    }
