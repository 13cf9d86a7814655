"""The tests tree keeps every module name unique, which pytest's collection relies on.

The test folders are not packages (no ``__init__.py``): pytest imports each test file, and
the helper modules next to them (``cfgclasses.py``, ``xputil.py``...), by its bare name
with its folder put first on ``sys.path``. Two files with one name in two folders would
then be one module: pytest stops with "import file mismatch", or a test silently imports
the other folder's helper. ``conftest.py`` files are the exception pytest handles itself.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

#: File names pytest imports by their path, not their bare name.
EXEMPT = frozenset({"conftest.py", "__init__.py"})


def clashes(root: Path) -> dict[str, list[str]]:
    """Module names used by more than one ``.py`` file under ``root`` → those files."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        if path.name in EXEMPT or "__pycache__" in path.parts:
            continue
        found[path.name].append(path.relative_to(root).as_posix())
    return {name: paths for name, paths in found.items() if len(paths) > 1}


def test_no_two_test_modules_share_a_name() -> None:
    assert [] != sorted(TESTS.rglob("test_*.py"))  # the walk sees the tests
    found = clashes(TESTS)
    assert {} == found, (
        "these files share a module name, which breaks pytest's collection (the test "
        f"folders are not packages): {found}. Rename one of each, e.g. test_<area>_<what>.py."
    )


def test_a_clash_is_reported(tmp_path: Path) -> None:
    """The check can fail: the same name in two folders, helpers included."""
    for folder in ("unit/a", "unit/b", "integration"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "conftest.py").write_text("")
    (tmp_path / "unit/a/test_load.py").write_text("")
    (tmp_path / "integration/test_load.py").write_text("")
    (tmp_path / "unit/a/util.py").write_text("")
    (tmp_path / "unit/b/util.py").write_text("")
    (tmp_path / "unit/b/test_other.py").write_text("")
    assert {
        "test_load.py": ["integration/test_load.py", "unit/a/test_load.py"],
        "util.py": ["unit/a/util.py", "unit/b/util.py"],
    } == clashes(tmp_path)
