"""The post-import hook the test guard uses to widen Django's test cases once a runner imports them."""

from __future__ import annotations

import importlib
import sys
import uuid
from importlib.machinery import SourceFileLoader

from django_appdb.importhooks import _finder, after_import


def test_the_hook_runs_once_the_module_is_imported_and_the_finder_leaves(tmp_path, monkeypatch):
    name = f"appdb_hooked_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []

    after_import(name, lambda module: seen.append(module.VALUE))
    assert seen == [] and _finder in sys.meta_path
    try:
        module = importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)

    assert seen == [1]
    assert _finder not in sys.meta_path
    # The module keeps its real loader.
    assert type(module.__loader__) is SourceFileLoader
    assert type(module.__spec__.loader) is SourceFileLoader


def test_a_module_already_imported_gets_the_hook_at_once():
    seen = []

    after_import("json", seen.append)

    assert seen == [sys.modules["json"]]
    assert "json" not in _finder.hooks


def test_other_imports_are_not_touched(tmp_path, monkeypatch):
    name = f"appdb_hooked_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{name}_other.py").write_text("")
    seen = []
    after_import(name, seen.append)
    try:
        other = importlib.import_module(f"{name}_other")
        assert type(other.__spec__.loader) is SourceFileLoader
        assert seen == []
    finally:
        _finder.hooks.pop(name, None)
        if not _finder.hooks and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        sys.modules.pop(f"{name}_other", None)
