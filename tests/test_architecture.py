"""The architecture page matches the tree: every module listed, with its layer, and the long ones explained."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_appdb"
PAGE = ROOT / "docs" / "architecture.md"
LONG = 400


def _page() -> str:
    return PAGE.read_text()


def _listed() -> set[str]:
    return set(re.findall(r"^\| `(django_appdb/[\w/]+\.py)` \|", _page(), flags=re.M))


def _modules() -> set[str]:
    return {path.relative_to(ROOT).as_posix() for path in PACKAGE.rglob("*.py")}


def test_the_page_lists_exactly_the_modules_in_the_tree():
    assert _listed() == _modules()


def test_every_module_over_the_limit_has_a_stated_reason():
    section = _page().split("## Modules over 400 lines, and why", 1)[1].split("\n## ", 1)[0]
    explained = set(re.findall(r"^\| `(django_appdb/[\w/]+\.py)` \|", section, flags=re.M))
    long = {name for name in _modules() if len((ROOT / name).read_text().splitlines()) > LONG}
    assert long == explained


def test_every_module_says_its_job_in_a_docstring():
    for name in sorted(_modules()):
        tree = ast.parse((ROOT / name).read_text())
        if name.endswith("__init__.py") and not tree.body:
            continue  # an empty package marker (Django's management/)
        assert ast.get_docstring(tree), f"{name} has no module docstring"


def _imports(path: Path) -> set[str]:
    """Return the django_appdb modules ``path`` imports at module level (not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks are not run
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("django_appdb"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("django_appdb"))
    return found


@pytest.mark.parametrize("part", ["sqlalchemy", "operations", "testing"])
def test_the_core_does_not_import_the_other_layers_at_import_time(part):
    for path in PACKAGE.glob("*.py"):
        crossing = {name for name in _imports(path) if name.startswith(f"django_appdb.{part}")}
        assert not crossing, f"{path.name} imports {sorted(crossing)} at module level"


def test_the_bridge_does_not_import_the_commands_or_the_test_machinery_at_import_time():
    for path in (PACKAGE / "sqlalchemy").glob("*.py"):
        crossing = {name for name in _imports(path) if name.startswith("django_appdb.operations")}
        assert not crossing, f"{path.name} imports {sorted(crossing)}"


def test_importing_the_testing_package_imports_nothing_of_django():
    import subprocess

    code = "import sys, django_appdb.testing; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
