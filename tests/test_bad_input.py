"""Bad input gives an ImproperlyConfigured naming the app and the source, never the password."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_appdb.databases import plan
from django_appdb.exceptions import AppDatabaseConfigError

SECRET = "Sup3rSecretPw"
DEFAULT = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}


def error_for(apps, environ=None) -> AppDatabaseConfigError:
    with pytest.raises(ImproperlyConfigured) as info:
        plan(apps, DEFAULT, environ=environ or {})
    assert isinstance(info.value, AppDatabaseConfigError)
    assert SECRET not in str(info.value)
    return info.value


@pytest.mark.parametrize(
    "url",
    [
        f"postgres://user:{SECRET}@host:notaport/db",
        f"postgres://user:{SECRET}@[::1/db",
        f"mysql://user:{SECRET}@host:99999999/db",
    ],
)
def test_malformed_url_from_env_var(make_app, url):
    error = error_for([make_app("billing")], {"BILLING_DATABASE_URL": url})
    assert error.app_label == "billing"
    assert error.source == "environment variable BILLING_DATABASE_URL"
    assert "'billing'" in str(error) and "BILLING_DATABASE_URL" in str(error)
    assert "not a valid database URL" in str(error)


def test_unknown_scheme_lists_the_known_ones(make_app):
    error = error_for([make_app("billing")], {"BILLING_DATABASE_URL": f"postgresx://u:{SECRET}@h/db"})
    message = str(error)
    assert "unknown scheme 'postgresx://'" in message
    for scheme in ("postgres", "postgresql", "sqlite", "mysql"):
        assert scheme in message.split("Use one of:")[1]


def test_url_without_scheme(make_app):
    error = error_for([make_app("billing")], {"BILLING_DATABASE_URL": f"user:{SECRET}@host/db"})
    assert "BILLING_DATABASE_URL" in str(error)


def test_unknown_scheme_from_database_py_names_the_module(make_app):
    app = make_app("billing", f'DATABASE_URL = "oracle2://u:{SECRET}@h/db"\n')
    error = error_for([app])
    assert f"module {app.name}.database" in str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("DATABASE_URL = 42\n", "DATABASE_URL must be str, got int"),
        ("DATABASE_URL = None\n", "DATABASE_URL must be str, got NoneType"),
        ("DATABASE_URL = b'sqlite://'\n", "DATABASE_URL must be str, got bytes"),
        ('DATABASE_URL = ""\n', "DATABASE_URL is empty"),
        ('DATABASE_URL = "   "\n', "DATABASE_URL is empty"),
        ("DATABASE_OPTIONS = ['timeout']\n", "DATABASE_OPTIONS must be dict"),
        ("CONN_MAX_AGE = '60'\n", "CONN_MAX_AGE must be int or None"),
        ("CONN_MAX_AGE = True\n", "CONN_MAX_AGE must be int or None"),
        ("CONN_MAX_AGE = -1\n", "CONN_MAX_AGE must be >= 0"),
        ("CONN_HEALTH_CHECKS = 1\n", "CONN_HEALTH_CHECKS must be bool"),
        ("DATABASE_ALIAS = 'has space'\n", "is not a valid alias name"),
        ("DATABASE_OPTION = {}\n", "unknown setting DATABASE_OPTION"),
        ("SQLALCHEMY_ENGINE_OPTION = {}\n", "unknown setting SQLALCHEMY_ENGINE_OPTION"),
    ],
)
def test_invalid_database_py_values(make_app, body, expected):
    app = make_app("billing", body)
    error = error_for([app])
    assert expected in str(error)
    assert f"module {app.name}.database" in str(error)
    assert error.app_label == "billing"


def test_unknown_setting_lists_the_valid_ones(make_app):
    error = error_for([make_app("billing", "DATABASE_PORT = 5\n")])
    assert "Valid settings are: DATABASE_URL, DATABASE_ALIAS" in str(error)


def test_wrong_type_of_url_like_value_is_masked(make_app):
    app = make_app("billing", f'DATABASE_OPTIONS = "postgres://u:{SECRET}@h/db"\n')
    assert "DATABASE_OPTIONS must be dict" in str(error_for([app]))


def test_database_py_that_fails_to_import(make_app):
    app = make_app("billing", "import appdb_no_such_module_anywhere\n")
    error = error_for([app])
    assert f"module {app.name}.database" in str(error)
    assert "ModuleNotFoundError" in str(error) and "appdb_no_such_module_anywhere" in str(error)


def test_database_py_that_raises(make_app):
    app = make_app("billing", f'raise RuntimeError("cannot reach postgres://u:{SECRET}@vault/db")\n')
    error = error_for([app])
    assert "RuntimeError" in str(error) and "postgres://u:********@vault/db" in str(error)


def test_database_py_with_a_syntax_error(make_app):
    app = make_app("billing", f'DATABASE_URL = "postgres://u:{SECRET}@h/db"\ndef (:\n')
    error = error_for([app])
    assert "SyntaxError" in str(error) and "database.py:2" in str(error)
    assert error.__cause__ is None and error.__suppress_context__


def test_broken_database_py_is_reported_even_when_the_env_var_is_set(make_app):
    app = make_app("billing", "1/0\n")
    error = error_for([app], {"BILLING_DATABASE_URL": "sqlite:////tmp/b.db"})
    assert "ZeroDivisionError" in str(error)


def test_error_says_what_to_do(make_app):
    error = error_for([make_app("billing")], {"BILLING_DATABASE_URL": f"postgres://u:{SECRET}@h:x/db"})
    assert "percent-encode" in str(error)
