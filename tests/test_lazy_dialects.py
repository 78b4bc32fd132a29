"""Nothing dialect-specific is imported for a vendor the project does not use.

Each check runs a child Python on SQLite-only settings (the test project, its
``orders`` app on a SQLite file) and reads ``sys.modules`` afterwards. Every
child ends with a control that does import the PostgreSQL dialect, so a check
that could no longer see an import would fail.
"""

from __future__ import annotations

import json

import pytest
from django.db.models import JSONField
from sqlalchemy.dialects import postgresql

from django_appdb.sqlalchemy.fieldtypes import TypeContext, sa_type_for

from .conftest import ROOT, run_python

VENDOR_MODULES = ("sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.mysql", "psycopg", "MySQLdb", "pymysql")

CHILD = """
import json, sys
import django
django.setup()
from django.db import connections
engines = sorted({{str(s.get("ENGINE")) for s in connections.settings.values()}})
{body}
loaded = sorted(name for name in {vendor_modules!r} if name in sys.modules)
from django.db.models import JSONField
from django_appdb.sqlalchemy.fieldtypes import TypeContext, sa_type_for
sa_type_for(JSONField(), TypeContext(postgresql=True))
print(json.dumps({{
    "engines": engines,
    "loaded": loaded,
    "control": "sqlalchemy.dialects.postgresql" in sys.modules,
    **extra,
}}))
"""

TABLES = """
from django.apps import apps
from django_appdb import metadata_for, table_for
kinds, tables = set(), 0
for config in apps.get_app_configs():
    for model in config.get_models(include_auto_created=True):
        table_for(model)
        tables += 1
        kinds.update(field.get_internal_type() for field in model._meta.get_fields() if field.concrete)
    metadata_for(config.label)
extra = {"tables": tables, "kinds": sorted(kinds)}
"""

ROUTER = """
import django_appdb
from django_appdb.routers import AppDatabaseRouter
from django.db import router
router.db_for_read(connections.__class__)  # any class: only the call path matters
extra = {"router": type(AppDatabaseRouter()).__name__}
"""


def _run(body: str) -> dict:
    done = run_python(
        CHILD.format(body=body, vendor_modules=VENDOR_MODULES),
        cwd=ROOT,
        DJANGO_SETTINGS_MODULE="tests.settings",
        APPDB_TEST_POSTGRES_URL=None,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The premise: a SQLite-only project.
    assert result["engines"] == ["django.db.backends.sqlite3"], result["engines"]
    # The control: the same check sees the dialect once something needs it.
    assert result["control"] is True
    return result


@pytest.mark.subprocess
def test_tables_of_every_model_import_no_other_vendor_on_sqlite():
    result = _run(TABLES)

    assert result["loaded"] == []
    # Every field kind the test project uses was mapped.
    assert result["tables"] >= 10
    assert {"JSONField", "UUIDField", "DecimalField", "DateTimeField", "ForeignKey", "CharField"} <= set(
        result["kinds"]
    )


@pytest.mark.subprocess
def test_setup_and_the_router_import_no_dialect():
    result = _run(ROUTER)

    assert result["loaded"] == []
    assert result["router"] == "AppDatabaseRouter"


def test_json_columns_get_their_jsonb_variant_when_postgresql_may_be_used():
    column_type = sa_type_for(JSONField(), TypeContext(postgresql=True))

    assert isinstance(column_type.dialect_impl(postgresql.dialect()), postgresql.JSONB)


def test_json_columns_are_plain_json_in_a_project_without_postgresql():
    column_type = sa_type_for(JSONField(), TypeContext(postgresql=False))

    impl = column_type.dialect_impl(postgresql.dialect())
    assert not isinstance(impl, postgresql.JSONB)
    assert column_type.none_as_null
