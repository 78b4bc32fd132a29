"""The bad-input matrix: every bad configuration stops start-up with a clear, masked error.

Each row of :data:`CASES` is one bad configuration -- a URL in an environment
variable, a ``database.py``, or ``settings.DATABASES`` -- planned exactly as
``AppConfig.ready()`` plans it. Every row must raise
``AppDatabaseConfigError`` (an ``ImproperlyConfigured``) that

* names the app label and where the value came from (the environment variable,
  the ``database.py`` module, or ``settings.DATABASES``),
* says what is wrong (the row's expected fragments),
* shows no password: neither in its message, nor its repr, nor its formatted
  traceback (chained exceptions from dj-database-url would quote the raw URL).

Every password holds :data:`MARK`, a token no fixed text contains, so even a
partly masked password is caught, whether it leaks raw or percent-encoded.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_appdb.databases import plan
from django_appdb.exceptions import AppDatabaseConfigError

MARK = "Zq7PWMK"
SECRET = f"p@ss:{MARK}/#%"
Q = quote(SECRET, safe="")  # the password as it belongs in a URL
ENV = "environment variable BILLING_DATABASE_URL"
SQLITE_DEFAULT = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}


def pg(name: str, password: str = SECRET, host: str = "db.internal") -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "u",
        "PASSWORD": password,
        "HOST": host,
        "PORT": "",
    }


@dataclass(frozen=True)
class Case:
    """One bad configuration of the app ``billing`` (or of the project) and the error it must give."""

    id: str
    expected: tuple[str, ...]
    #: "env", "module" or "settings": where the error must say the bad value came from.
    source: str
    env: Mapping[str, str] = field(default_factory=dict)
    #: billing's database.py (None: it has none).
    module: str | None = None
    #: Apps planned before billing: (label, database.py).
    others: tuple[tuple[str, str | None], ...] = ()
    databases: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: SQLITE_DEFAULT)
    label: str = "billing"


def env(case_id: str, url: str, *expected: str) -> Case:
    return Case(case_id, expected, "env", env={"BILLING_DATABASE_URL": url})


def module(case_id: str, body: str, *expected: str, **extra: Any) -> Case:
    return Case(case_id, expected, "module", module=body, **extra)


NOT_VALID = ("is not a valid database URL (", "percent-encode special characters")
AT_AFTER_HOST = ("it has an '@' after the host", "Percent-encode '@', '/', '?' and '#'")
NO_SCHEME = ("does not start with scheme://", "percent-encode special characters")

CASES = [
    # --- URLs in <APP_LABEL>_DATABASE_URL
    env("env-port-not-a-number", f"postgres://u:{Q}@h:notaport/db", *NOT_VALID),
    env("env-port-out-of-range", f"postgres://u:{Q}@h:65536/db", *NOT_VALID),
    env("env-port-negative", f"postgres://u:{Q}@h:-1/db", *NOT_VALID),
    env("env-port-huge-mysql", f"mysql://u:{Q}@h:99999999/db", *NOT_VALID),
    env("env-port-full-width-digits", f"postgres://u:{Q}@h:\uff15\uff14\uff13\uff12/db", *NOT_VALID),
    env("env-two-ports", f"postgres://u:{Q}@h:5432:5433/db", *NOT_VALID),
    env("env-port-with-space", f"postgres://u:{Q}@h: 5432/db", *NOT_VALID),
    env("env-ipv6-unclosed", f"postgres://u:{Q}@[::1/db", *NOT_VALID),
    env("env-ipv6-invalid", f"postgres://u:{Q}@[zz]/db", *NOT_VALID),
    env("env-stray-bracket", f"postgres://u:{Q}@h]/db", *NOT_VALID),
    env("env-raw-hash-in-password", f"postgres://u:pa#{MARK}@h/db", *AT_AFTER_HOST),
    env("env-raw-slash-in-password", f"postgres://u:pa/{MARK}@h/db", *AT_AFTER_HOST),
    # The password would have become the database NAME, and host "u" the server.
    env("env-raw-slash-after-colon", f"postgres://u:/{MARK}@h/db", *AT_AFTER_HOST),
    env("env-raw-slash-after-digits", f"postgres://u:123/{MARK}@h/db", *AT_AFTER_HOST),
    env("env-unknown-scheme", f"postgresx://u:{Q}@h/db", "uses unknown scheme 'postgresx://'", "Use one of: "),
    env("env-http-scheme", f"http://u:{Q}@h/db", "uses unknown scheme 'http://'", "Use one of: "),
    env("env-no-scheme", f"u:{Q}@h/db", *NO_SCHEME),
    env("env-empty-scheme", f"://u:{Q}@h/db", *NO_SCHEME),
    env("env-single-slash", f"postgres:/u:{Q}@h/db", *NO_SCHEME),
    env("env-scheme-without-slashes", f"postgres:u:{Q}@h/db", *NO_SCHEME),
    env("env-no-database-name", f"postgres://u:{Q}@h/", "names no database", "/NAME"),
    env("env-scheme-only", "postgres://", "names no database"),
    env("env-mysql-no-database-name", f"mysql://u:{Q}@h:3306", "names no database"),
    env("env-line-break", f"postgres://u:{Q}@h\n/db", "contains a control character"),
    env("env-nul", f"postgres://u:{Q}@h/db\x00", "contains a control character"),
    env("env-raw-tab-in-password", f"postgres://u:pa\t{MARK}@h/db", "contains a control character"),
    # --- database.py contents
    module("module-url-int", "DATABASE_URL = 42\n", "DATABASE_URL must be str, got int"),
    module("module-url-none", "DATABASE_URL = None\n", "DATABASE_URL must be str, got NoneType"),
    module("module-url-bytes", "DATABASE_URL = b'sqlite://'\n", "DATABASE_URL must be str, got bytes"),
    module("module-url-empty", 'DATABASE_URL = ""\n', "DATABASE_URL is empty", "remove it to use the default"),
    module("module-url-blank", 'DATABASE_URL = " \\t "\n', "DATABASE_URL is empty"),
    module("module-url-not-valid", f"DATABASE_URL = {f'postgres://u:{Q}@h:x/db'!r}\n", *NOT_VALID),
    module(
        "module-url-unknown-scheme", f"DATABASE_URL = {f'oracle2://u:{Q}@h/db'!r}\n", "uses unknown scheme 'oracle2://'"
    ),
    module("module-url-no-scheme", f"DATABASE_URL = {f'u:{Q}@h/db'!r}\n", *NO_SCHEME),
    module("module-url-no-database-name", f"DATABASE_URL = {f'mysql://u:{Q}@h'!r}\n", "names no database"),
    module("module-options-list", "DATABASE_OPTIONS = ['timeout']\n", "DATABASE_OPTIONS must be dict, got list"),
    module(
        "module-options-url-string",
        f"DATABASE_OPTIONS = {f'postgres://u:{Q}@h/db'!r}\n",
        "DATABASE_OPTIONS must be dict, got postgres://u:********@h/db",
    ),
    module("module-test-list", "DATABASE_TEST = []\n", "DATABASE_TEST must be dict, got list"),
    module(
        "module-engine-options-string",
        "SQLALCHEMY_ENGINE_OPTIONS = 'pool_size=5'\n",
        "SQLALCHEMY_ENGINE_OPTIONS must be dict",
    ),
    module("module-max-age-string", "CONN_MAX_AGE = '60'\n", "CONN_MAX_AGE must be int or None, got"),
    module("module-max-age-bool", "CONN_MAX_AGE = True\n", "CONN_MAX_AGE must be int or None, got bool"),
    module("module-max-age-float", "CONN_MAX_AGE = 1.5\n", "CONN_MAX_AGE must be int or None, got float"),
    module("module-max-age-negative", "CONN_MAX_AGE = -1\n", "CONN_MAX_AGE must be >= 0"),
    module("module-health-checks-int", "CONN_HEALTH_CHECKS = 1\n", "CONN_HEALTH_CHECKS must be bool, got int"),
    module("module-alias-int", "DATABASE_ALIAS = 5\n", "DATABASE_ALIAS must be str, got int"),
    module("module-alias-with-space", "DATABASE_ALIAS = 'has space'\n", "is not a valid alias name"),
    module("module-alias-empty", "DATABASE_ALIAS = ''\n", "is not a valid alias name"),
    module(
        "module-unknown-setting",
        "DATABASE_OPTION = {}\n",
        "unknown setting DATABASE_OPTION",
        "Valid settings are: DATABASE_URL, DATABASE_ALIAS, DATABASE_OPTIONS",
    ),
    module(
        "module-unknown-engine-setting", "SQLALCHEMY_ENGINE_OPTION = {}\n", "unknown setting SQLALCHEMY_ENGINE_OPTION"
    ),
    module("module-unknown-conn-setting", "CONN_MAX_AGES = 5\n", "unknown setting CONN_MAX_AGES"),
    module(
        "module-import-fails",
        "import appdb_no_such_module_anywhere\n",
        "importing it raised ModuleNotFoundError",
        "appdb_no_such_module_anywhere",
        "delete it to use the default",
    ),
    module(
        "module-raises-with-url",
        f'raise RuntimeError("cannot reach postgres://u:{Q}@vault/db")\n',
        "importing it raised RuntimeError",
        "postgres://u:********@vault/db",
    ),
    module(
        "module-raises-with-raw-url",
        f'raise RuntimeError("cannot reach postgres://u:{SECRET}@vault/db")\n',
        "importing it raised RuntimeError",
        "postgres://u:********@vault/db",
    ),
    module(
        "module-exits-with-url",
        f'import sys\nsys.exit("cannot reach postgres://u:{SECRET}@vault/db")\n',
        "importing it raised SystemExit",
        "postgres://u:********@vault/db",
    ),
    module(
        "module-raises-base-exception",
        f'raise BaseException("postgres://u:{Q}@vault/db")\n',
        "importing it raised BaseException",
        "postgres://u:********@vault/db",
    ),
    module("module-atomic-requests-string", "ATOMIC_REQUESTS = 'yes'\n", "ATOMIC_REQUESTS must be bool, got"),
    module("module-alias-no-db", "DATABASE_ALIAS = '__no_db__'\n", "is Django's internal alias"),
    env("env-sqlite-tilde", "sqlite:///~/orders.sqlite3", "SQLite paths are not expanded"),
    env("env-question-mark-in-password", f"postgres://u:12?service=x{MARK}@127.0.0.1/db", "has an '@' after the host"),
    module("module-syntax-error", f'DATABASE_URL = "postgres://u:{Q}@h/db"\ndef (:\n', "SyntaxError", "database.py:2"),
    module(
        "module-broken-although-env-set",
        "1/0\n",
        "importing it raised ZeroDivisionError",
        env={"BILLING_DATABASE_URL": "sqlite:////tmp/b.db"},
    ),
    module(
        "module-bad-value-under-blank-env",
        "CONN_MAX_AGE = -5\n",
        "CONN_MAX_AGE must be >= 0",
        env={"BILLING_DATABASE_URL": "   "},
    ),
    # --- database.py against settings.DATABASES and other apps
    module(
        "module-alias-unknown",
        "DATABASE_ALIAS = 'nope'\n",
        "DATABASE_ALIAS 'nope' is not in settings.DATABASES",
        "Use one of: default",
    ),
    module(
        "module-alias-options-on-existing",
        "DATABASE_ALIAS = 'default'\nCONN_MAX_AGE = 60\n",
        "CONN_MAX_AGE cannot change the existing alias 'default'",
    ),
    module(
        "module-alias-names-another-database",
        f"DATABASE_ALIAS = 'reports'\nDATABASE_URL = {f'postgres://u:{Q}@db.internal/billing'!r}\n",
        "DATABASE_ALIAS 'reports' already names another database",
        "postgres://u:********@db.internal/reports",
        databases={**SQLITE_DEFAULT, "reports": pg("reports")},
    ),
    module(
        "module-label-alias-taken",
        f"DATABASE_URL = {f'postgres://u:{Q}@db.internal/billing'!r}\n",
        "settings.DATABASES already has an alias 'billing' for another database",
        databases={**SQLITE_DEFAULT, "billing": pg("legacy_billing")},
    ),
    module(
        "module-shared-alias-other-credentials",
        f"DATABASE_ALIAS = 'shared'\nDATABASE_URL = {f'postgres://u:{Q}@db.internal/shared'!r}\n",
        "shares database alias 'shared' with app 'ledger' but with different credentials",
        others=(("ledger", "DATABASE_ALIAS = 'shared'\nDATABASE_URL = 'postgres://u:0ther@db.internal/shared'\n"),),
    ),
    module(
        "module-shared-alias-other-options",
        "DATABASE_ALIAS = 'shared'\nDATABASE_URL = 'postgres://u@db.internal/shared'\nCONN_MAX_AGE = 5\n",
        "shares database alias 'shared' with app 'ledger' but with different credentials or connection options",
        others=(("ledger", "DATABASE_ALIAS = 'shared'\nDATABASE_URL = 'postgres://u@db.internal/shared'\n"),),
    ),
    Case(
        "env-same-database-other-credentials",
        ("shares database alias 'ledger' with app 'ledger'",),
        "env",
        env={
            "LEDGER_DATABASE_URL": "postgres://u:0ther@db.internal/books",
            "BILLING_DATABASE_URL": f"postgres://u:{Q}@db.internal/books",
        },
        others=(("ledger", None),),
    ),
    # --- settings.DATABASES
    Case(
        "settings-no-default",
        ("there is no 'default' database", "Define DATABASES['default']"),
        "settings",
        databases={"reports": pg("reports")},
        label="*",
    ),
]


def test_the_matrix_is_large_and_its_ids_unique():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_configuration_gives_a_clear_masked_error(make_app, case):
    apps = [make_app(label, body) for label, body in case.others]
    billing = make_app("billing", case.module)
    apps.append(billing)

    with pytest.raises(ImproperlyConfigured) as info:
        plan(apps, case.databases, environ=case.env)

    error = info.value
    assert type(error) is AppDatabaseConfigError
    message = str(error)
    assert error.app_label == case.label
    assert f"app '{case.label}'" in message
    if case.source == "env":
        assert error.source == ENV
    elif case.source == "module":
        assert error.source.startswith(f"module {billing.name}.database")
    else:
        assert error.source == "settings.DATABASES"
    assert f"({error.source})" in message
    for fragment in case.expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"

    shown = "\n".join([message, repr(error), *traceback.format_exception(error)])
    assert MARK not in shown
    assert SECRET not in shown and Q not in shown
    # No chained exception (which would quote the raw value) is displayed.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_unknown_scheme_lists_every_scheme_dj_database_url_knows(make_app):
    with pytest.raises(AppDatabaseConfigError) as info:
        plan([make_app("billing")], SQLITE_DEFAULT, environ={"BILLING_DATABASE_URL": f"postgresx://u:{Q}@h/db"})
    listed = str(info.value).split("Use one of:")[1]
    for scheme in ("postgres", "postgresql", "sqlite", "mysql", "postgis"):
        assert f" {scheme}," in listed or f" {scheme}." in listed


@pytest.mark.parametrize(
    "url",
    ["postgres://?service=billing", "sqlite://", "sqlite:///:memory:", "postgres://u@h/db name"],
)
def test_unusual_but_valid_urls_are_accepted(make_app, url):
    result = plan([make_app("billing")], SQLITE_DEFAULT, environ={"BILLING_DATABASE_URL": url})
    assert result.records["billing"].label == "billing"
