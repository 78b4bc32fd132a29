"""Masking and identity of database URLs."""

from pathlib import Path

import pytest

from django_appdb.dburls import identity, mask_settings, mask_text, mask_url, parse_url, settings_to_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgres://u:pw@h/db", "postgres://u:********@h/db"),
        ("postgres://u:p%40ss%3A%2F@h:5432/db", "postgres://u:********@h:5432/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("sqlite://:memory:", "sqlite://:memory:"),
        ("postgres://h/db?sslmode=require&sslpassword=abc", "postgres://h/db?sslmode=require&sslpassword=********"),
        # Unquoted special characters cut the netloc short: mask greedily.
        ("postgres://u:pa/ss@h/db", "postgres://u:********@h/db"),
        ("postgres://u:pa@ss@h/db", "postgres://u:********@h/db"),
        ("postgres://u:pa#ss@h/db", "postgres://u:********@h/db"),
        ("postgres://u:[pw@h/db", "postgres://u:********@h/db"),
        ("user:pw@host/db", "user:********@host/db"),
        ("postgres:/u:pw@host/db", "postgres:********@host/db"),
        # Found by tests/test_masking_properties.py: a line break before the last "@"...
        ("postgres://u:@\nsecret@h/db", "postgres://u:********@h/db"),
        # ... and unencoded "&", "@" or "#" in a secret query value.
        ("postgres://h/db?sslmode=require&sslpassword=se&cret", "postgres://h/db?sslmode=require&sslpassword=********"),
        (
            "postgres://u@h/db?sslmode=require&sslpassword=se@cret",
            "postgres://u@h/db?sslmode=require&sslpassword=********",
        ),
        (
            "postgres://u@h/db?sslpassword=se#cret&sslmode=require",
            "postgres://u@h/db?sslpassword=********&sslmode=require",
        ),
        # MySQL's names for them.
        ("mysql://u@h/db?pwd=Zq9secret&charset=utf8", "mysql://u@h/db?pwd=********&charset=utf8"),
        ("mysql://u@h/db?ssl_ca=/ca.pem&sslpwd=Zq9secret", "mysql://u@h/db?ssl_ca=/ca.pem&sslpwd=********"),
        # Ambiguous: an "@" in the query could end a password; masking errs on the side of hiding.
        ("postgres://u@h:5432/db?application_name=a@b", "postgres://u@h:********@b"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_text_masks_every_embedded_url():
    text = "tried postgres://a:one@h/x then mysql://b:two@k/y"
    assert mask_text(text) == "tried postgres://a:********@h/x then mysql://b:********@k/y"


def test_mask_settings():
    masked = mask_settings({"PASSWORD": "pw", "OPTIONS": {"sslpassword": "x", "sslmode": "require"}, "USER": "u"})
    assert masked == {"PASSWORD": "********", "OPTIONS": {"sslpassword": "********", "sslmode": "require"}, "USER": "u"}
    masked_options = mask_settings({"OPTIONS": {"pwd": "x", "sslpwd": "y"}})["OPTIONS"]
    assert masked_options == {"pwd": "********", "sslpwd": "********"}


@pytest.mark.psycopg
def test_engine_creation_errors_mask_the_sslpwd_connect_argument():
    from django.core.exceptions import ImproperlyConfigured

    from django_appdb.sqlalchemy import dialects

    spec = dialects.derive_spec(
        "shop",
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "db",
            "OPTIONS": {"sslpwd": "Zq9secret", "pwd": "Zq9other"},
        },
        "postgresql",
        is_async=False,
    )
    spec.options["pool_size"] = "not a number"
    spec.options["no_such_option"] = True
    with pytest.raises(ImproperlyConfigured) as info:
        dialects.create(spec)
    assert "Zq9" not in str(info.value) and "sslpwd" in str(info.value)


def test_identity_ignores_password_and_normalises_port_and_paths(tmp_path, monkeypatch):
    pg = {"ENGINE": "django.db.backends.postgresql", "NAME": "d", "HOST": "H", "USER": "u"}
    assert identity({**pg, "PASSWORD": "a"}) == identity({**pg, "PORT": 5432, "HOST": "h"})
    assert identity(pg) != identity({**pg, "PORT": "5433"})
    monkeypatch.chdir(tmp_path)
    lite = {"ENGINE": "django.db.backends.sqlite3"}
    assert identity({**lite, "NAME": "x.db"}) == identity({**lite, "NAME": str(tmp_path / "x.db")})


def test_reprs_of_declarations_and_plans_mask_the_password(make_app):
    from django_appdb.databases import plan
    from django_appdb.discovery import declare

    app = make_app("billing")
    environ = {"BILLING_DATABASE_URL": "postgres://u:Hunter2PWMK@h/db"}
    default = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    declaration, result = declare(app, environ), plan([app], default, environ=environ)
    for shown in (repr(declaration), repr(result), repr(result.records["billing"])):
        assert "Hunter2PWMK" not in shown
        assert "postgres://u:********@h/db" in shown or "'PASSWORD': '********'" in shown


SQLITE = "django.db.backends.sqlite3"
POSTGRES = "django.db.backends.postgresql"


def test_settings_to_url_keeps_a_sqlite_shared_memory_name_whole():
    # The name Django gives a SQLite test database: SQLAlchemy 2.0 rendered its
    # "?" unencoded, so parsing the URL back cut the name at "file:memorydb_default".
    name = "file:memorydb_default?mode=memory&cache=shared"
    url = settings_to_url({"ENGINE": SQLITE, "NAME": name})
    assert url == "sqlite:///file%3Amemorydb_default%3Fmode%3Dmemory%26cache%3Dshared"
    assert parse_url(url)["NAME"] == name


@pytest.mark.parametrize(
    ("settings_dict", "url"),
    [
        ({"ENGINE": SQLITE, "NAME": "/tmp/a b%c#d.sqlite3"}, "sqlite:////tmp/a b%25c%23d.sqlite3"),
        ({"ENGINE": SQLITE, "NAME": ":memory:"}, "sqlite:///%3Amemory%3A"),
        ({"ENGINE": SQLITE, "NAME": "relative/x.db"}, "sqlite:///relative/x.db"),
        (
            {"ENGINE": POSTGRES, "NAME": "d?b#x%", "USER": "u@x", "PASSWORD": "p@ss:/?#%&=", "HOST": "h", "PORT": 5433},
            "postgres://u%40x:p%40ss%3A%2F%3F%23%25%26%3D@h:5433/d%3Fb%23x%25",
        ),
        ({"ENGINE": POSTGRES, "NAME": "d", "PASSWORD": "pw", "HOST": "h"}, "postgres://:pw@h/d"),
        ({"ENGINE": POSTGRES, "NAME": "d", "HOST": "/var/run/postgresql"}, "postgres://%2Fvar%2Frun%2Fpostgresql/d"),
        ({"ENGINE": POSTGRES, "NAME": "d", "USER": "u", "HOST": "::1", "PORT": "5432"}, "postgres://u@[::1]:5432/d"),
    ],
)
def test_settings_to_url_round_trips_through_parse_url(settings_dict, url):
    assert settings_to_url(settings_dict) == url
    parsed = parse_url(url)
    for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
        assert str(parsed.get(key) or "") == str(settings_dict.get(key) or ""), key


PG = "django.db.backends.postgresql"
SQLITE = "django.db.backends.sqlite3"


def test_sqlite_path_is_the_resolved_file_and_none_for_memory_and_other_engines(tmp_path):
    from django_appdb.dburls import sqlite_path

    assert sqlite_path({"ENGINE": SQLITE, "NAME": str(tmp_path / "a.db")}) == (tmp_path / "a.db").resolve()
    assert sqlite_path({"ENGINE": SQLITE, "NAME": f"file:{tmp_path / 'b.db'}?mode=ro"}) == (tmp_path / "b.db").resolve()
    for name in ("", ":memory:", "file:x?mode=memory&cache=shared", None):
        assert sqlite_path({"ENGINE": SQLITE, "NAME": name}) is None
    assert sqlite_path({"ENGINE": PG, "NAME": "app"}) is None
    assert sqlite_path({"NAME": str(tmp_path / "a.db")}) is None


def test_selecting_options_are_the_engines_own_non_empty_ones():
    from django_appdb.dburls import selecting_options

    options = {"service": "svc", "options": "-c search_path=s", "sslmode": "require", "host": "", "port": None}
    assert selecting_options({"ENGINE": PG, "OPTIONS": options}) == (
        ("service", "svc"),
        ("options", "-c search_path=s"),
    )
    assert selecting_options({"ENGINE": PG}) == ()
    assert selecting_options({"ENGINE": PG, "OPTIONS": "not a mapping"}) == ()
    assert selecting_options({"OPTIONS": options}) == ()


def test_identity_keeps_engine_host_port_name_user_and_selecting_options_apart():
    base = {"ENGINE": PG, "HOST": "Db.Example", "PORT": "", "NAME": "app", "USER": "u", "OPTIONS": {"service": "s"}}
    assert identity(base) == (PG, "db.example", "5432", "app", "u", (("service", "s"),))
    assert identity({**base, "USER": None}) == (PG, "db.example", "5432", "app", "", (("service", "s"),))
    assert identity({**base, "HOST": None})[1] == ""


def test_physical_identity_joins_local_hosts_users_and_vendor_families():
    local = {"ENGINE": PG, "HOST": "127.0.0.1", "PORT": "5432", "NAME": "app", "USER": "a"}
    assert identity(local, physical=True) == ("postgresql", "localhost", "5432", "app", ())
    assert identity({**local, "HOST": "/var/run/postgresql", "USER": "b"}, physical=True) == identity(
        local, physical=True
    )
    remote = identity({**local, "HOST": "db.example"}, physical=True)
    assert remote == ("postgresql", "db.example", "5432", "app", ())
    custom = {**local, "ENGINE": "my.backends.postgres"}
    assert identity(custom, physical=True)[0] == "my.backends.postgres"


def test_physical_identity_of_sqlite_files_and_memory(tmp_path):
    path = tmp_path / "a.db"
    assert identity({"ENGINE": SQLITE, "NAME": str(path)}, physical=True) == ("sqlite", str(path.resolve()))
    shared = "file:m?mode=memory&cache=shared"
    assert identity({"ENGINE": SQLITE, "NAME": shared}, physical=True) == ("sqlite", shared)
    assert identity({"ENGINE": SQLITE, "NAME": ":memory:"}, physical=True) is None
    assert identity({"ENGINE": SQLITE, "NAME": "file:m?mode=memory"}, physical=True) is None
    assert identity({"ENGINE": SQLITE, "NAME": "file:m?cache=shared"}, physical=True) == (
        "sqlite",
        str(Path("m").resolve()),
    )


def test_routing_identity_of_sqlite_makes_only_plain_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert identity({"ENGINE": SQLITE, "NAME": "a.db"}) == (SQLITE, str(tmp_path / "a.db"))
    assert identity({"ENGINE": SQLITE, "NAME": ":memory:"}) == (SQLITE, ":memory:")
    assert identity({"ENGINE": SQLITE, "NAME": "file:a.db?mode=ro"}) == (SQLITE, "file:a.db?mode=ro")
    assert identity({"ENGINE": SQLITE, "NAME": ""}) == (SQLITE, "")
