"""Run a function once a module has been imported, without importing that module.

A lean post-import hook: what ``wrapt.register_post_import_hook`` does for the
test guard, without the 35 million instructions importing wrapt (and the
``importlib.metadata`` it pulls in) adds to every ``django.setup()``. The
finder sits on ``sys.meta_path`` only while a hook waits, answers ``None`` for
every other name, and removes itself once the last hook has run.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from importlib.util import find_spec
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

Hook = Callable[[ModuleType], None]


def after_import(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once module ``name`` is imported; now, if it already is."""
    with _lock:
        module = sys.modules.get(name)
        if module is None:
            _finder.hooks.setdefault(name, []).append(hook)
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)
    if module is not None:
        hook(module)


class _Loader:
    """Delegates to the real loader, and runs the hooks once the module has executed."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self.loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps the real loader, as if no hook had been involved.
        if getattr(module, "__loader__", None) in (None, self):
            try:
                module.__loader__ = self.loader
            except AttributeError:  # pragma: no cover - modules that refuse attributes
                pass
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        _finder.fire(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _Finder:
    """A ``sys.meta_path`` finder that wraps the loader of the modules hooks wait for."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Hook]] = {}
        self._searching = threading.local()

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> ModuleSpec | None:
        if fullname not in self.hooks or getattr(self._searching, "name", None) == fullname:
            return None
        # Let the other finders find it (this one answers None meanwhile), then wrap its loader.
        self._searching.name = fullname
        try:
            spec = find_spec(fullname)
        finally:
            self._searching.name = None
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = cast("Loader", _Loader(spec.loader))
        return spec

    def fire(self, module: ModuleType) -> None:
        with _lock:
            hooks = self.hooks.pop(module.__name__, [])
            if not self.hooks and self in sys.meta_path:
                sys.meta_path.remove(self)
        for hook in hooks:
            hook(module)


_lock = threading.RLock()
_finder = _Finder()
