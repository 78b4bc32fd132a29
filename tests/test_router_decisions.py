"""AppDatabaseRouter's answers for the test project's apps, database by database."""

import pytest
from django.db import router

from django_appdb.routers import AppDatabaseRouter


@pytest.mark.parametrize(
    ("db", "app_label", "allowed"),
    [
        ("default", "catalog", True),
        ("default", "auth", True),
        ("default", "inventory", False),
        ("default", "orders", False),
        ("inventory", "inventory", True),
        ("inventory", "catalog", False),
        ("inventory", "orders", False),
        ("orders", "orders", True),
        ("orders", "inventory", False),
        # A label no installed app has belongs to default.
        ("default", "not_installed", True),
        ("inventory", "not_installed", False),
    ],
)
def test_allow_migrate_only_on_the_apps_own_alias(db, app_label, allowed):
    assert AppDatabaseRouter().allow_migrate(db, app_label, model_name="anything") is allowed
    assert router.allow_migrate(db, app_label, model_name="anything") is allowed


def test_allow_migrate_leaves_aliases_no_app_uses_to_other_routers():
    assert AppDatabaseRouter().allow_migrate("replica", "catalog") is None
    assert AppDatabaseRouter().allow_migrate("replica", "inventory") is None


def test_db_for_read_and_write_return_none_for_apps_on_default():
    from catalog.models import Product
    from inventory.models import Warehouse

    ours = AppDatabaseRouter()
    assert ours.db_for_read(Product) is None
    assert ours.db_for_write(Product) is None
    assert ours.db_for_read(Warehouse) == "inventory"
    assert ours.db_for_write(Warehouse) == "inventory"
