"""The code fingerprint a job records: a class's source lines, found without importing."""

from __future__ import annotations

from pathlib import Path

from partita._jobenv import class_source, fingerprint_file

MODULE = '''
import os

class Train(
    object,
):
    """Doc."""
    lr = 1

    class Inner:
        x = 1

    # a comment inside
    def execute(self):
        return 2
# about Other
class Other:
    pass

class Train:
    redefined = True
'''


def test_the_last_definition_at_top_level_wins() -> None:
    assert class_source(MODULE, "Train") == "class Train:\n    redefined = True"


def test_a_class_spans_its_indented_lines_and_closing_brackets() -> None:
    text = MODULE.replace("class Train:\n    redefined = True\n", "")
    source = class_source(text, "Train")
    assert source is not None
    assert source.startswith("class Train(\n    object,\n):")
    assert source.endswith("return 2") and "Other" not in source
    assert class_source(text, "Train.Inner") == "    class Inner:\n        x = 1"
    assert class_source(text, "Inner") is None  # not at top level
    assert class_source(text, "Missing") is None


def test_fingerprint_tells_a_class_change_from_a_module_change(tmp_path: Path) -> None:
    path = tmp_path / "tasks.py"
    path.write_text(MODULE)
    before = fingerprint_file(str(path), "Other")
    path.write_text(MODULE.replace("import os", "import sys"))
    after = fingerprint_file(str(path), "Other")
    assert before["class_sha256"] == after["class_sha256"]
    assert before["file_sha256"] != after["file_sha256"]
    path.write_text(MODULE.replace("    pass", "    value = 3"))
    assert fingerprint_file(str(path), "Other")["class_sha256"] != before["class_sha256"]
    assert fingerprint_file(str(tmp_path / "gone.py"), "Other")["file_sha256"] is None
