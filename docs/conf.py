"""Sphinx configuration: Markdown pages (MyST) with the furo theme, API pages by autodoc.

Built by ``nox -s docs`` with ``-W --keep-going -n``: every warning fails the
build, and every cross-reference to django_appdb's own objects must resolve.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# autodoc imports the package, and django_appdb's modules read Django's
# settings: configure Django first, with the test project (which the suite
# runs) as the project. Nothing connects to a database here.
sys.path[:0] = [str(ROOT), str(ROOT / "testproject")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

import django  # noqa: E402

django.setup()

import django_appdb  # noqa: E402

project = "django-appdb"
author = "django-appdb contributors"
copyright = "django-appdb contributors"
release = version = django_appdb.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinxcontrib.mermaid"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"django-appdb {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": False}

# There is no network at build time, so intersphinx cannot fetch other
# projects' inventories: references to their objects cannot resolve and are
# ignored here, by package. django_appdb's own objects are never ignored, so
# a broken reference to them fails the build.
nitpick_ignore_regex = [
    # Django's objects, from our signatures and docstrings (django.db, django.http, ...).
    (r"py:.*", r"django\..*"),
    # SQLAlchemy's objects (Engine, Session, Table, MetaData, TypeEngine, ...).
    (r"py:.*", r"sqlalchemy\..*"),
    # The standard library's and typing's names autodoc writes into signatures.
    (r"py:.*", r"(collections\.abc|contextlib|typing|types|asyncio|argparse|dataclasses|json)\..*"),
    # SQLAlchemy's classes, imported under TYPE_CHECKING only, so autodoc sees their bare names.
    (r"py:class", r"(AsyncEngine|AsyncSession|async_sessionmaker|Session)"),
    # Type aliases in register_field_type's signature; its docstring spells out what they accept.
    (r"py:class", r"(AnyField|FieldTypeSpec)"),
]
