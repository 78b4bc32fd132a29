"""Looking for an app's ``database`` module: the directory listing agrees with importlib.

:func:`django_appdb.discovery.has_database_module` answers plain directory
packages from one listing of their directory and sends everything else to
Django's ``module_has_submodule`` (importlib's full search). Every case here
checks the answer against ``module_has_submodule`` itself, and which of the
two paths gave it.
"""

from __future__ import annotations

import importlib
import py_compile
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from django.utils.module_loading import module_has_submodule

from django_appdb.discovery import _in_directories, declare, has_database_module, load_database_module
from django_appdb.exceptions import AppDatabaseConfigError

URL = "DATABASE_URL = 'sqlite:////tmp/appdb-lookup.sqlite3'\n"


@pytest.fixture
def make_package(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """Return a factory writing ``{relative path: text}`` under a fresh top-level name; yields (name, root)."""
    sys.path.insert(0, str(tmp_path))
    names: list[str] = []

    def factory(files: dict[str, str]) -> tuple[str, Path]:
        name = f"appdb_lookup_{uuid.uuid4().hex[:8]}"
        names.append(name)
        for relative, text in files.items():
            path = tmp_path / relative.replace("PKG", name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        importlib.invalidate_caches()
        return name, tmp_path

    yield factory
    sys.path.remove(str(tmp_path))
    for key in [key for key in sys.modules if any(key == n or key.startswith(n + ".") for n in names)]:
        del sys.modules[key]


def load(name: str) -> ModuleType:
    """Import an app module as Django does: it looks for ``apps`` in it first (which caches its directory's finder)."""
    module = importlib.import_module(name)
    module_has_submodule(module, "apps")
    return module


def app(module: ModuleType) -> SimpleNamespace:
    """Return what discovery needs of an AppConfig."""
    return SimpleNamespace(label=module.__name__, name=module.__name__, module=module)


def agrees(module: ModuleType, expected: bool, *, listed: bool) -> None:
    """Check the answer, that importlib gives the same, and whether the listing gave it."""
    assert (_in_directories(module) is not None) is listed
    assert has_database_module(module) is expected
    assert module_has_submodule(module, "database") is expected


def test_plain_package_with_database_py(make_package):
    name, _ = make_package({"PKG/__init__.py": "", "PKG/database.py": URL})
    module = load(name)

    agrees(module, True, listed=True)
    assert declare(app(module)).url == "sqlite:////tmp/appdb-lookup.sqlite3"


def test_plain_package_without_database_py(make_package):
    name, _ = make_package({"PKG/__init__.py": "", "PKG/models.py": "", "PKG/databases.py": URL})
    module = load(name)

    agrees(module, False, listed=True)
    assert load_database_module(app(module)) is None


def test_database_as_a_package(make_package):
    name, _ = make_package({"PKG/__init__.py": "", "PKG/database/__init__.py": URL})
    module = load(name)

    agrees(module, True, listed=True)
    assert declare(app(module)).url == "sqlite:////tmp/appdb-lookup.sqlite3"


def test_database_directory_without_init_is_a_namespace_portion(make_package):
    name, _ = make_package({"PKG/__init__.py": "", "PKG/database/README": "not python\n"})
    module = load(name)

    # importlib finds a namespace package there, so Django's check says yes too.
    agrees(module, True, listed=True)
    assert declare(app(module)).source_kind == "default"


def test_a_directory_named_database_py_is_not_a_module(make_package):
    name, root = make_package({"PKG/__init__.py": ""})
    (root / name / "database.py").mkdir()
    module = load(name)

    agrees(module, False, listed=True)


def test_namespace_package_app_goes_through_importlib(make_package):
    name, _ = make_package({"PKG/database.py": URL, "PKG/models.py": ""})
    module = load(name)
    assert getattr(module, "__file__", None) is None  # a namespace package

    agrees(module, True, listed=False)
    assert declare(app(module)).url == "sqlite:////tmp/appdb-lookup.sqlite3"


def test_single_module_app_has_no_database_module(make_package):
    name, _ = make_package({"PKG.py": "", "database.py": URL})
    module = load(name)

    agrees(module, False, listed=False)
    assert load_database_module(app(module)) is None


def test_compiled_only_app(make_package):
    name, root = make_package({"PKG/__init__.py": "", "PKG/database.py": URL})
    for source in (root / name).glob("*.py"):
        # A legacy .pyc beside where the source was: importable without it.
        py_compile.compile(str(source), cfile=str(source.with_suffix(".pyc")), doraise=True)
        source.unlink()
    importlib.invalidate_caches()
    module = load(name)
    assert module.__file__.endswith("__init__.pyc")

    agrees(module, True, listed=True)
    assert declare(app(module)).url == "sqlite:////tmp/appdb-lookup.sqlite3"


def test_zipped_app_goes_through_importlib(tmp_path):
    name = f"appdb_lookup_zip_{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "apps.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"{name}/__init__.py", "")
        bundle.writestr(f"{name}/database.py", URL)
    sys.path.insert(0, str(archive))
    try:
        module = load(name)
        agrees(module, True, listed=False)
        assert declare(app(module)).url == "sqlite:////tmp/appdb-lookup.sqlite3"
    finally:
        sys.path.remove(str(archive))
        for key in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
            del sys.modules[key]


def test_an_already_imported_database_module_goes_through_importlib(make_package):
    name, _ = make_package({"PKG/__init__.py": "", "PKG/database.py": URL})
    module = load(name)
    importlib.import_module(f"{name}.database")

    agrees(module, True, listed=False)


def test_a_database_py_added_after_the_first_look_is_seen(make_package):
    name, root = make_package({"PKG/__init__.py": ""})
    module = load(name)
    agrees(module, False, listed=True)

    (root / name / "database.py").write_text(URL)

    assert has_database_module(module) is True


def test_a_directory_no_finder_has_looked_in_yet_goes_through_importlib(make_package):
    name, _ = make_package({"PKG/__init__.py": "", "PKG/database.py": URL})
    module = importlib.import_module(name)

    agrees(module, True, listed=False)


def test_broken_database_py_still_raises_the_named_error(make_package):
    name, _ = make_package({"PKG/__init__.py": "", "PKG/database.py": "raise RuntimeError('boom')\n"})
    module = load(name)
    assert _in_directories(module) is True

    with pytest.raises(AppDatabaseConfigError) as caught:
        declare(app(module))

    assert f"module {name}.database" in str(caught.value)
    assert "importing it raised RuntimeError: boom" in str(caught.value)
