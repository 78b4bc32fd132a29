"""System checks: configuration, backends, relations across databases, routers, shared databases."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.db import connections, router

from django_appdb import checks
from django_appdb.dburls import identity
from django_appdb.routers import AppDatabaseRouter
from django_appdb.state import state

from .conftest import run_manage


def physical(settings_dict):
    return identity(settings_dict, physical=True)


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def ours(messages) -> list:
    return [message for message in messages if (message.id or "").startswith("django_appdb.")]


# The test project has async views: without the async extra they get W004 (tests/test_base_install.py).
@pytest.mark.async_drivers
def test_the_test_project_has_no_issues():
    # Only ours: Django 6.1 runs its model checks against every database when
    # none is named, and those connect (JSONField asks SQLite for JSON
    # support). Ours never connect, which the blocked database access proves.
    assert ours(run_checks(tags=[checks.TAG])) == []


@pytest.mark.async_drivers
@pytest.mark.django_db(databases=["default", "inventory", "orders"])
def test_no_issues_while_test_databases_are_in_use():
    # Django's test runner runs the checks after renaming every database.
    assert ours(run_checks()) == []


@pytest.mark.subprocess
@pytest.mark.async_drivers
def test_manage_py_check_passes_on_the_test_project(sqlite_project):
    result = run_manage(sqlite_project(), "check")
    assert "System check identified no issues" in result.stdout


@pytest.mark.subprocess
def test_moving_auth_alone_fails_naming_permission_content_type(sqlite_project, tmp_path):
    env = sqlite_project(AUTH_DATABASE_URL=f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    result = run_manage(env, "check", returncode=1)
    assert (
        "auth.Permission.content_type: (django_appdb.E003) ForeignKey to contenttypes.ContentType crosses "
        "databases: auth.Permission is on 'auth', contenttypes.ContentType is on 'default'." in result.stderr
    )
    assert (
        "HINT: Put 'auth' and 'contenttypes' on one database: set CONTENTTYPES_DATABASE_URL to the URL of "
        "'auth' (AUTH_DATABASE_URL), or unset AUTH_DATABASE_URL." in result.stderr
    )
    # The other relations into auth are named too.
    assert "admin.LogEntry.user: (django_appdb.E003)" in result.stderr
    assert "catalog.Product.created_by: (django_appdb.E003)" in result.stderr
    assert result.stderr.count("(django_appdb.E003)") == 3

    # Moving contenttypes along with auth leaves only the relations from default.
    env["CONTENTTYPES_DATABASE_URL"] = env["AUTH_DATABASE_URL"]
    result = run_manage(env, "check", returncode=1)
    assert "auth.Permission.content_type" not in result.stderr
    assert "admin.LogEntry.content_type: (django_appdb.E003)" in result.stderr


SHELF_MODELS = """
from django.db import models

from catalog.models import Product


class Shelf(models.Model):
    name = models.CharField(max_length=10)
    warehouse = models.ForeignKey("inventory.Warehouse", on_delete=models.CASCADE)
    products = models.ManyToManyField("catalog.Product", related_name="shelves")
    neighbours = models.ManyToManyField("self")
    placed = models.ManyToManyField("catalog.Tag", through="Placement", related_name="shelves")


class Placement(models.Model):
    shelf = models.ForeignKey(Shelf, on_delete=models.CASCADE)
    tag = models.ForeignKey("catalog.Tag", on_delete=models.CASCADE)


class CheapProduct(Product):
    class Meta:
        proxy = True


class Bundle(Product):
    size = models.PositiveIntegerField()
"""


@pytest.fixture
def shelf_project(tmp_path: Path, sqlite_project):
    """Return a ``manage.py`` environment with an extra app, ``shelf``, on a database of its own."""
    package = tmp_path / "extra" / "shelf"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(SHELF_MODELS))
    (package / "database.py").write_text(f'DATABASE_URL = "sqlite:///{tmp_path / "shelf.sqlite3"}"\n')
    (tmp_path / "extra" / "shelf_settings.py").write_text(
        "from testproject.settings import *\n\nINSTALLED_APPS = [*INSTALLED_APPS, 'shelf']\n"
    )
    return sqlite_project(tmp_path / "extra", DJANGO_SETTINGS_MODULE="shelf_settings")


@pytest.mark.subprocess
def test_relations_across_databases_are_named_with_their_fields(shelf_project):
    result = run_manage(shelf_project, "check", returncode=1)
    errors = [line for line in result.stderr.splitlines() if "(django_appdb.E" in line]
    named = sorted(line.split(":", 1)[0] for line in errors)
    assert named == [
        "shelf.Bundle.product_ptr",
        "shelf.Placement.tag",
        "shelf.Shelf.placed",
        "shelf.Shelf.products",
        "shelf.Shelf.warehouse",
    ]
    text = "\n".join(errors)
    assert (
        "shelf.Shelf.products: (django_appdb.E003) ManyToManyField to catalog.Product crosses databases: "
        "shelf.Shelf is on 'shelf', catalog.Product is on 'default', its table shelf_shelf_products is on 'shelf'."
        in text
    )
    assert "shelf.Shelf.warehouse: (django_appdb.E003) ForeignKey to inventory.Warehouse crosses databases" in text
    assert "shelf.Bundle.product_ptr: (django_appdb.E003) OneToOneField to catalog.Product" in text
    # A proxy is routed with its concrete model, so it needs no report.
    assert "shelf.CheapProduct" not in text
    assert "shelf.Placement.tag: (django_appdb.E003)" in text
    assert (
        "HINT: Put 'shelf' and 'inventory' on one database: set INVENTORY_DATABASE_URL to the URL of 'shelf' "
        "(shelf.database), or set SHELF_DATABASE_URL to the URL of 'inventory' (INVENTORY_DATABASE_URL)."
        in result.stderr
    )

    # `check <app_label>` narrows the relation checks to that app.
    narrowed = run_manage(shelf_project, "check", "catalog")
    assert "(django_appdb." not in narrowed.stderr


def test_relation_checks_follow_the_routing(monkeypatch):
    monkeypatch.setitem(state.aliases, "contenttypes", "orders")
    monkeypatch.setitem(state.routes, "contenttypes", "orders")
    messages = checks.check_relations()
    assert {str(message.obj) for message in messages} == {
        "auth.Permission.content_type",
        "admin.LogEntry.content_type",
    }
    assert ids(messages) == ["django_appdb.E003"] * 2
    assert checks.check_relations(app_configs=[apps.get_app_config("catalog")]) == []


def test_invalid_configuration_is_reported(monkeypatch):
    monkeypatch.setenv("ORDERS_DATABASE_URL", "nosuch://shop:pw-Secret@host/db")
    (message,) = checks.check_configuration()
    assert message.id == "django_appdb.E001"
    assert message.msg.startswith("app 'orders' (environment variable ORDERS_DATABASE_URL): ")
    assert "unknown scheme 'nosuch://'" in message.msg
    assert "pw-Secret" not in message.msg + (message.hint or "")


def test_a_routed_alias_missing_from_databases_is_reported(monkeypatch):
    from django.conf import settings

    monkeypatch.delitem(settings.DATABASES, "inventory")
    messages = checks.check_configuration()
    assert ids(messages) == ["django_appdb.E001"]
    assert "apps 'inventory' are routed to database alias 'inventory', which is no longer in" in messages[0].msg


def test_a_backend_that_cannot_be_loaded_is_reported(monkeypatch):
    monkeypatch.setitem(connections.settings["orders"], "ENGINE", "nosuch_backend")
    (message,) = checks.check_backends()
    assert message.id == "django_appdb.E002"
    assert message.msg.startswith("database alias 'orders' of apps 'orders' uses ENGINE 'nosuch_backend'")


class ShadowRouter:
    """Send everything to default, before django_appdb can answer."""

    def db_for_read(self, model, **hints):
        return "default"


class PoliteRouter:
    """Answer only for what django_appdb does not route."""

    def db_for_read(self, model, **hints):
        return None

    def db_for_write(self, model, **hints):
        return "default" if model._meta.app_label == "catalog" else None

    def allow_migrate(self, db, app_label, **hints):
        return None


class MigrationHog:
    def allow_migrate(self, db, app_label, **hints):
        return db == "default"


def test_a_router_answering_first_is_reported(monkeypatch):
    monkeypatch.setattr(router, "routers", [ShadowRouter(), AppDatabaseRouter()])
    messages = checks.check_router()
    assert ids(messages) == ["django_appdb.W001"] * 2
    path = f"{ShadowRouter.__module__}.ShadowRouter"
    assert messages[0].msg.startswith(
        f"router {path} answers before django_appdb.routers.AppDatabaseRouter and sends app 'inventory' elsewhere: "
        "db_for_read(inventory.Warehouse) returns 'default', not 'inventory'."
    )
    assert "'orders'" in messages[1].msg

    monkeypatch.setattr(router, "routers", [MigrationHog(), AppDatabaseRouter()])
    messages = checks.check_router()
    assert ids(messages) == ["django_appdb.W001"] * 2
    assert "allow_migrate('default', 'inventory') returns True, but 'inventory' is migrated on 'inventory'" in (
        messages[0].msg
    )


def test_routers_that_leave_our_apps_alone_are_fine(monkeypatch):
    monkeypatch.setattr(router, "routers", [PoliteRouter(), AppDatabaseRouter(), ShadowRouter()])
    assert checks.check_router() == []


def test_a_missing_router_is_reported(monkeypatch):
    monkeypatch.setattr(router, "routers", [PoliteRouter()])
    (message,) = checks.check_router()
    assert message.id == "django_appdb.W002"
    assert "apps 'inventory', 'orders' have a database of their own" in message.msg
    # With every app on default there is nothing to route.
    monkeypatch.setattr(state, "routes", {})
    assert checks.check_router() == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"HOST": "localhost"}, {"HOST": "127.0.0.1", "PORT": "5432"}),
        ({"HOST": "::1", "USER": "app"}, {"HOST": "", "USER": "admin"}),
        ({"HOST": "/var/run/postgresql"}, {"HOST": "LOCALHOST"}),
        ({"ENGINE": "django.contrib.gis.db.backends.postgis"}, {}),
    ],
)
def test_physical_identity_sees_through_spelling(first, second):
    base = {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "HOST": "db", "PORT": ""}
    assert physical({**base, **first}) == physical({**base, **second})


@pytest.mark.parametrize(
    "other", [{"NAME": "shop2"}, {"HOST": "db.example"}, {"PORT": "5433"}, {"ENGINE": "django.db.backends.mysql"}]
)
def test_physical_identity_tells_databases_apart(other):
    base = {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", "HOST": "localhost", "PORT": ""}
    assert physical(base) != physical({**base, **other})


def test_physical_identity_of_sqlite(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    sqlite = "django.db.backends.sqlite3"
    assert physical({"ENGINE": sqlite, "NAME": str(tmp_path / "link" / "db.sqlite3")}) == physical(
        {"ENGINE": sqlite, "NAME": str(tmp_path / "real" / "db.sqlite3")}
    )
    assert physical({"ENGINE": sqlite, "NAME": ":memory:"}) is None
    shared = "file:memorydb_default?mode=memory&cache=shared"
    assert physical({"ENGINE": sqlite, "NAME": shared}) == ("sqlite", shared)
    assert physical({"ENGINE": sqlite, "NAME": shared}) != physical(
        {"ENGINE": sqlite, "NAME": "file:memorydb_orders?mode=memory&cache=shared"}
    )


@pytest.mark.subprocess
def test_the_same_database_under_two_aliases_is_reported(sqlite_project, tmp_path):
    (tmp_path / "link").symlink_to(tmp_path)
    env = sqlite_project(ORDERS_DATABASE_URL=f"sqlite:///{tmp_path / 'link' / 'default.sqlite3'}")
    listing = run_manage(env, "appdb_list")
    assert any(line.split()[:2] == ["orders", "orders"] for line in listing.stdout.splitlines())
    result = run_manage(env, "check")
    assert (
        "?: (django_appdb.W003) database alias 'orders' (apps 'orders') reaches the same database as "
        "'default'" in result.stderr
    )
    # Nothing else, but W004 where the async extra is not installed.
    reported = [line for line in result.stderr.splitlines() if "(django_appdb." in line and "W004" not in line]
    assert len(reported) == 1, result.stderr


@pytest.mark.subprocess
def test_router_not_installed_is_reported(sqlite_project, tmp_path):
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "norouter_settings.py").write_text(
        "from testproject.settings import *\n\nAPPDB_INSTALL_ROUTER = False\n"
    )
    result = run_manage(sqlite_project(tmp_path / "extra", DJANGO_SETTINGS_MODULE="norouter_settings"), "check")
    assert "(django_appdb.W002) django_appdb.routers.AppDatabaseRouter is not installed" in result.stderr


def test_physical_identity_tells_schemas_and_services_apart():
    base = {"ENGINE": "django.db.backends.postgresql", "NAME": "main", "HOST": "localhost", "USER": "a"}
    ledger = {**base, "OPTIONS": {"options": "-c search_path=ledger"}}
    assert physical(ledger) != physical(base)
    assert physical({**base, "OPTIONS": {"sslmode": "require"}}) == physical(base)
    service = {"ENGINE": "django.db.backends.postgresql", "NAME": "", "OPTIONS": {"service": "x"}}
    assert physical(service) != physical({**service, "OPTIONS": {"service": "y"}})


class TestSettingTypes:
    """Every APPDB_* setting is type-checked (E004, E005), as django-cors-headers does."""

    @pytest.mark.parametrize("value", ["False", 0, None, "no"])
    def test_install_router_must_be_a_bool(self, settings, value):
        settings.APPDB_INSTALL_ROUTER = value
        (message,) = checks.check_settings()
        assert message.id == "django_appdb.E004"
        assert "APPDB_INSTALL_ROUTER must be True or False" in message.msg and repr(value) in message.msg

    @pytest.mark.parametrize("value", [True, False])
    def test_a_bool_is_fine(self, settings, value):
        settings.APPDB_INSTALL_ROUTER = value
        assert checks.check_settings() == []

    def test_the_string_false_does_not_silently_turn_routing_off_or_on_unnoticed(self, settings):
        from django_appdb.conf import conf

        settings.APPDB_INSTALL_ROUTER = "False"
        # Routing stays on (the safe side) and E004 says why.
        assert conf.INSTALL_ROUTER is True
        assert ids(checks.check_settings()) == ["django_appdb.E004"]

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ([("pool_size", 3)], "must be a dict, got list"),
            ({"connect_args": "sslmode=require"}, "'connect_args' must be a dict, got str"),
            ({1: 2}, "keys must be strings"),
        ],
    )
    def test_engine_options_must_be_a_dict_of_keyword_arguments(self, settings, value, problem):
        settings.APPDB_SQLALCHEMY_ENGINE_OPTIONS = value
        (message,) = checks.check_settings()
        assert message.id == "django_appdb.E005" and problem in message.msg

    def test_engines_refuse_options_of_the_wrong_type_instead_of_dropping_them(self, settings):
        from django_appdb.conf import conf
        from django_appdb.exceptions import AppDatabaseConfigError

        settings.APPDB_SQLALCHEMY_ENGINE_OPTIONS = [("pool_size", 3)]
        with pytest.raises(AppDatabaseConfigError, match=r"APPDB_SQLALCHEMY_ENGINE_OPTIONS.*must be a dict"):
            conf.SQLALCHEMY_ENGINE_OPTIONS  # noqa: B018


def test_an_env_var_for_a_label_that_is_not_installed_is_reported(monkeypatch):
    monkeypatch.setenv("ORDER_DATABASE_URL", "postgres://u:pw@h/typo")
    monkeypatch.setenv("NOSUCHAPP_DATABASE_URL", "postgres://u:pw@h/x")
    monkeypatch.setenv("BLANK_DATABASE_URL", "  ")
    messages = checks.check_environment()
    assert ids(messages) == ["django_appdb.W005", "django_appdb.W005"]
    nosuch, order = messages
    assert "NOSUCHAPP_DATABASE_URL is set, but no installed app has the label 'nosuchapp'" in nosuch.msg
    assert "the installed labels are" in nosuch.hint and "inventory" in nosuch.hint
    assert order.hint == "Did you mean ORDERS_DATABASE_URL?"
    assert all("pw" not in message.msg + message.hint for message in messages)


def test_database_py_options_without_a_url_are_reported(monkeypatch, make_app):
    from django_appdb.databases import AppDatabase

    app = make_app("floating", "CONN_MAX_AGE = 60\nATOMIC_REQUESTS = False\n")
    record = AppDatabase("floating", "default", "default", "default", {})
    monkeypatch.setitem(state.records, "floating", record)
    monkeypatch.setattr(apps, "get_app_config", lambda label: app if label == "floating" else None)
    (message,) = [m for m in checks.check_unused_module_settings() if "floating" in m.msg]
    assert message.id == "django_appdb.W006"
    assert f"module {app.name}.database sets ATOMIC_REQUESTS, CONN_MAX_AGE" in message.msg
    assert "FLOATING_DATABASE_URL is unset" in message.msg


def test_generic_relations_across_databases_are_reported():
    from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
    from django.contrib.contenttypes.models import ContentType
    from django.db import models
    from django.test.utils import isolate_apps

    with isolate_apps("orders", "inventory"):

        class Tag(models.Model):
            content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
            object_id = models.PositiveIntegerField()
            target = GenericForeignKey("content_type", "object_id")

            class Meta:
                app_label = "orders"

        class Shelf(models.Model):
            tags = GenericRelation(Tag)

            class Meta:
                app_label = "inventory"

        class Bin(models.Model):
            tags = GenericRelation(Tag)

            class Meta:
                app_label = "orders"

    (relation,) = list(checks._crossing_fields(Shelf))
    assert relation.id == "django_appdb.E003" and str(relation.obj) == "inventory.Shelf.tags"
    assert (
        "GenericRelation to orders.Tag crosses databases: inventory.Shelf is on 'inventory', orders.Tag is on "
        "'orders'." == relation.msg
    )
    assert list(checks._crossing_fields(Bin)) == []
    by_id = {message.id: message for message in checks._crossing_fields(Tag)}
    # The content type is on default: E003, as for any ForeignKey; the generic key itself: W007.
    assert set(by_id) == {"django_appdb.E003", "django_appdb.W007"}
    warning = by_id["django_appdb.W007"]
    assert warning.msg.startswith(
        "GenericForeignKey orders.Tag.target can point at any model, but orders.Tag is on "
        "'orders' and other apps' models are on 'default', 'inventory'"
    )
