"""What kind of database an alias is, and its errors described without secrets. Nothing here connects."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db import connections
from django.db.utils import load_backend

from django_appdb.dburls import MASK, builtin_vendor, mask_text, sqlite_path

__all__ = ["describe_error", "missing_sqlite_file", "vendor_of"]


def vendor_of(alias: str) -> str:
    """Return the vendor (``"postgresql"``, ``"sqlite"``, ...) of ``alias`` without connecting."""
    engine = str(connections.settings[alias].get("ENGINE") or "")
    try:
        return str(load_backend(engine).DatabaseWrapper.vendor)
    except Exception:
        return builtin_vendor(engine) or engine.rsplit(".", 1)[-1] or "unknown"


def missing_sqlite_file(settings_dict: Mapping[str, Any]) -> Path | None:
    """Return the file of a SQLite database if it does not exist yet, else None."""
    path = sqlite_path(settings_dict)
    return path if path is not None and not path.exists() else None


def describe_error(exc: BaseException, settings_dict: Mapping[str, Any] | None = None) -> str:
    """Return ``exc`` as one line, ``"Type: message"``, with any password masked.

    Besides URLs, the literal password of ``settings_dict`` is masked wherever
    a driver happens to echo it.
    """
    message = " ".join(str(exc).split())
    password = (settings_dict or {}).get("PASSWORD")
    if password:
        message = message.replace(str(password), MASK)
    message = mask_text(message)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
