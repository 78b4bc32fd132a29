"""AppDatabaseRouter decisions and its automatic installation."""

import sys
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import router
from django.test import override_settings

from catalog.models import Category, Product
from django_appdb import AppDatabaseRouter
from inventory.models import StockItem, Warehouse
from orders.models import Order, OrderLine


@pytest.fixture
def app_router():
    return AppDatabaseRouter()


def installed():
    return [r for r in router.routers if isinstance(r, AppDatabaseRouter)]


class TestDecisions:
    @pytest.mark.parametrize(
        ("model", "alias"),
        [(Warehouse, "inventory"), (StockItem, "inventory"), (Order, "orders"), (OrderLine, "orders")],
    )
    def test_reads_and_writes_go_to_the_apps_alias(self, app_router, model, alias):
        assert app_router.db_for_read(model) == alias
        assert app_router.db_for_write(model) == alias
        assert router.db_for_read(model) == alias
        assert router.db_for_write(model) == alias

    @pytest.mark.parametrize("model", [Product, Category, User, Permission, ContentType])
    def test_default_apps_fall_through_to_django(self, app_router, model):
        assert app_router.db_for_read(model) is None
        assert app_router.db_for_write(model) is None
        assert router.db_for_write(model) == "default"

    def test_relation_allowed_within_one_database(self, app_router):
        assert app_router.allow_relation(Warehouse(), StockItem()) is True
        assert app_router.allow_relation(Order(), OrderLine()) is True
        assert app_router.allow_relation(Product(), User()) is True

    def test_relation_refused_across_databases(self, app_router):
        assert app_router.allow_relation(Warehouse(), Order()) is False
        assert app_router.allow_relation(Product(), StockItem()) is False
        assert router.allow_relation(Order(), User()) is False

    def test_relation_uses_the_database_an_object_was_loaded_from(self, app_router):
        product = Product()
        product._state.db = "inventory"
        assert app_router.allow_relation(product, Warehouse()) is True
        assert app_router.allow_relation(product, Category()) is False

    @pytest.mark.parametrize(
        ("db", "app_label", "allowed"),
        [
            ("inventory", "inventory", True),
            ("orders", "orders", True),
            ("default", "catalog", True),
            ("default", "auth", True),
            ("default", "inventory", False),
            ("default", "orders", False),
            ("inventory", "orders", False),
            ("orders", "catalog", False),
            ("orders", "auth", False),
            ("orders", "contenttypes", False),
            ("inventory", "django_appdb", False),
        ],
    )
    def test_migrations_only_on_the_apps_own_alias(self, app_router, db, app_label, allowed):
        assert app_router.allow_migrate(db, app_label) is allowed
        assert router.allow_migrate(db, app_label) is allowed

    def test_proxy_models_follow_their_concrete_model(self, app_router):
        from django.test.utils import isolate_apps

        with isolate_apps("catalog"):

            class WarehouseProxy(Warehouse):
                class Meta:
                    proxy = True
                    app_label = "catalog"

            assert app_router.db_for_write(WarehouseProxy) == "inventory"
            assert router.db_for_read(WarehouseProxy) == "inventory"
            assert app_router.allow_relation(WarehouseProxy(), StockItem()) is True

    def test_every_installed_model_is_precomputed(self):
        from django.apps import apps

        from django_appdb.state import state

        models = apps.get_models(include_auto_created=True)
        assert set(state.model_routes) == set(models)
        assert state.model_routes[Product.tags.through] is None
        assert state.model_routes[StockItem] == "inventory"

    def test_aliases_no_app_uses_are_left_to_other_routers(self, app_router):
        assert app_router.allow_migrate("replica", "catalog") is None

    def test_decisions_are_lookups_not_parsing(self, app_router):
        # Every call made while routing, wherever its module imported it from:
        # patching names would miss a module that imported them first.
        parsing = ("django_appdb.discovery", "django_appdb.dburls", "dj_database_url", "importlib", "urllib")
        calls: list[str] = []

        def profiler(frame: Any, event: str, arg: Any) -> None:
            if event == "call" and frame.f_globals.get("__name__", "").startswith(parsing):
                calls.append(f"{frame.f_globals['__name__']}.{frame.f_code.co_name}")

        sys.setprofile(profiler)
        try:
            for _ in range(3):
                app_router.db_for_read(Order)
                app_router.db_for_write(Warehouse)
                app_router.allow_migrate("orders", "orders")
                app_router.allow_relation(Order(), OrderLine())
        finally:
            sys.setprofile(None)
        assert calls == []


class TestInstallation:
    def test_installed_once_automatically(self):
        assert len(installed()) == 1

    def test_stays_installed_after_routers_are_overridden(self):
        class Other:
            def db_for_read(self, model, **hints):
                return None

        with override_settings(DATABASE_ROUTERS=[Other()]):
            assert isinstance(router.routers[0], Other)
            assert len(installed()) == 1
        assert len(installed()) == 1
        assert router.db_for_write(Order) == "orders"

    def test_setting_turns_automatic_install_off(self):
        with override_settings(APPDB_INSTALL_ROUTER=False):
            assert installed() == []
            assert router.db_for_write(Order) == "default"
        assert len(installed()) == 1

    def test_listed_router_keeps_its_position(self):
        class First:
            pass

        routers = [First(), "django_appdb.routers.AppDatabaseRouter", First()]
        with override_settings(DATABASE_ROUTERS=routers):
            assert [type(r).__name__ for r in router.routers] == ["First", "AppDatabaseRouter", "First"]

    def test_installing_again_adds_no_second_router(self):
        from django_appdb import routers

        routers.install()
        routers.install()
        assert len(installed()) == 1

    def test_patching_djangos_router_list_twice_wraps_it_once(self):
        from django.db.utils import ConnectionRouter

        from django_appdb import routers

        wrapped = ConnectionRouter.__dict__["routers"]
        routers._patch_connection_router()
        assert ConnectionRouter.__dict__["routers"] is wrapped
        assert len([r for r in ConnectionRouter().routers if isinstance(r, AppDatabaseRouter)]) == 1


class TestWhatDjangosRouterApiAccepts:
    """The router takes whatever Django's router API takes, and never raises."""

    @pytest.mark.parametrize(("model", "alias"), [(Order, "orders"), (Warehouse, "inventory"), (Category, None)])
    def test_an_unsaved_instance_is_routed_like_its_model(self, app_router, model, alias):
        # django-silk calls router.db_for_write(self) on a model instance with no primary key yet.
        instance = model()
        assert instance.pk is None
        assert app_router.db_for_write(instance) == alias
        assert app_router.db_for_read(instance) == alias
        assert router.db_for_write(instance) == (alias or "default")

    def test_a_saved_instance_is_routed_like_its_model(self, app_router):
        instance = Order(pk=7)
        assert app_router.db_for_write(instance) == app_router.db_for_read(instance) == "orders"
        assert router.db_for_read(instance, instance=instance) == "orders"

    def test_a_proxy_instance_follows_its_concrete_model(self, app_router):
        from django.test.utils import isolate_apps

        with isolate_apps("orders"):

            class RushOrder(Order):
                class Meta:
                    app_label = "orders"
                    proxy = True

        assert app_router.db_for_write(RushOrder()) == "orders"

    def test_hints_with_an_instance_are_accepted(self, app_router):
        order = Order()
        assert app_router.db_for_write(Order, instance=order) == "orders"
        assert router.db_for_write(Order, instance=order) == "orders"

    @pytest.mark.parametrize("thing", [object(), "orders.Order", None, 3])
    def test_what_is_not_a_model_gets_no_opinion(self, app_router, thing):
        assert app_router.db_for_read(thing) is None
        assert app_router.db_for_write(thing) is None
