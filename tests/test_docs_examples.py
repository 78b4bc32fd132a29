"""The documentation's examples run, and its reference tables match the code.

Every ```python block of README.md and docs/*.md runs here, page by page in
one namespace, in the order the page shows them (top-level ``await`` runs in
an event loop). Longer examples are included into the pages from files of the
test project (``literalinclude``), which the suite runs anyway.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import load_command_class

import django_appdb
from django_appdb import close_all_engines
from django_appdb.conf import DEFAULTS
from django_appdb.sqlalchemy import fieldtypes
from tests.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```$", re.M | re.S)
# The modules the documentation may tell users to import from.
PUBLIC_MODULES = {
    "django_appdb",
    "django_appdb.routers",
    "django_appdb.debug",
    "django_appdb.testing",
    "django_appdb.exceptions",
    "django_appdb.sqlalchemy.columntypes",
}
COMMANDS = ("appdb_list", "appdb_check", "appdb_createdb", "appdb_migrate", "appdb_graph")


def python_blocks(page: Path) -> list[str]:
    """Return the page's ```python blocks, dedented (a block may sit in a list item)."""
    blocks = []
    for indent, body in FENCE.findall(page.read_text()):
        blocks.append("".join(line[len(indent) :] for line in body.splitlines(keepends=True)))
    return blocks


def test_the_pages_have_runnable_blocks():
    pages = {page.name for page in PAGES if python_blocks(page)}
    assert {"README.md", "discovery.md", "tables.md", "testing.md", "commands.md"} <= pages, pages
    # A block the pattern would miss (an unusual fence) would silently not run.
    for page in PAGES:
        text = page.read_text()
        assert text.count("```python") == len(python_blocks(page)), page.name


@pytest.fixture
def _restore_field_types() -> Iterator[None]:
    before = dict(fieldtypes._registry)
    yield
    for field_class in set(fieldtypes._registry) - set(before):
        fieldtypes.unregister_field_type(field_class)


def run_block(source: str, namespace: dict[str, object], name: str) -> None:
    code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)


@pytest.mark.django_db(databases=["default", "inventory", "orders"], transaction=True)
@pytest.mark.usefixtures("_restore_field_types")
@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, id=page.name, marks=[pytest.mark.async_drivers] if "await " in page.read_text() else [])
        for page in PAGES
        if python_blocks(page)
    ],
)
def test_the_python_blocks_of_each_page_run(page: Path):
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    try:
        for number, block in enumerate(python_blocks(page), 1):
            run_block(block, namespace, f"{page.name}, block {number}")
    finally:
        close_all_engines()


IMPORT = re.compile(r"^\s*(?:from\s+(django_appdb[\w.]*)\s+import|import\s+(django_appdb[\w.]*))", re.M)


def test_examples_import_only_public_modules():
    included = re.compile(r"```\{literalinclude\} (\S+)")
    for page in PAGES:
        text = page.read_text()
        sources = [text, *((page.parent / path).read_text() for path in included.findall(text))]
        for source in sources:
            for match in IMPORT.finditer(source):
                module = match.group(1) or match.group(2)
                assert module in PUBLIC_MODULES, (page.name, module)


def test_the_api_page_documents_every_public_name():
    api = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"^\.\. (?:auto\w+|py:\w+):: ([\w.]+)", api, re.M))
    for name in django_appdb.__all__:
        assert f"django_appdb.{name}" in documented, name
    for name in ("AppDatabaseRouter",):
        assert f"django_appdb.routers.{name}" in documented
    assert "django_appdb.debug.AppDatabaseExceptionReporterFilter" in documented
    from django_appdb import testing

    for name in testing.__all__:
        assert f"django_appdb.testing.{name}" in documented, name


def test_the_settings_reference_lists_every_setting_with_its_default():
    page = (DOCS / "discovery.md").read_text()
    rows = dict(re.findall(r"^\| `(APPDB_\w+)` \| `\w+` \| `([^`]*)` \|", page, re.M))
    assert rows == {name: repr(default) for name, default in DEFAULTS.items()}


def test_the_checks_table_lists_exactly_the_registered_check_ids():
    code = (ROOT / "django_appdb" / "checks.py").read_text()
    page = (DOCS / "commands.md").read_text()
    in_code = set(re.findall(r'id="(django_appdb\.[EW]\d{3})"', code))
    in_table = re.findall(r"^\| `(django_appdb\.[EW]\d{3})` \| (Error|Warning) \|", page, re.M)
    assert sorted(check_id for check_id, _ in in_table) == sorted(in_code)
    for check_id, level in in_table:
        assert level == {"E": "Error", "W": "Warning"}[check_id.split(".")[1][0]], check_id


@pytest.mark.parametrize("command", COMMANDS)
def test_the_commands_page_names_every_option(command: str):
    page = (DOCS / "commands.md").read_text()
    assert f"## `manage.py {command}`" in page
    parser = load_command_class("django_appdb", command).create_parser("manage.py", command)
    own = {
        *("--json", "--timeout", "--dry-run", "--noinput", "--fake", "--fake-initial", "--plan", "--check"),
        *("--format", "--output"),
        "--lock-timeout",
    }
    own |= {"--connections", "--processes", "--threads", "--sqlalchemy"}
    options = {opt for action in parser._actions for opt in action.option_strings if opt in own}
    assert options, command
    section = page.split(f"## `manage.py {command}`", 1)[1].split("\n## ", 1)[0]
    missing = sorted(option for option in options if f"`{option}" not in section)
    assert not missing, (command, missing)
