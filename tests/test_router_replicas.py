"""AppDatabaseRouter with replicas, decision by decision: what it asks ``replicas`` and what it returns.

The choice of a replica is :mod:`django_appdb.replicas`' job (its own tests,
``test_replica_routing.py``); here it is replaced by a recorder, and the
router's tables by small dictionaries, so each test states exactly which
primary has replicas.
"""

from __future__ import annotations

import pytest

from catalog.models import Product
from django_appdb import replicas
from django_appdb.routers import AppDatabaseRouter
from inventory.models import Warehouse
from orders.models import Order


class Recorder:
    def __init__(self, chosen: dict[str, str]) -> None:
        self.chosen = chosen
        self.reads: list[str] = []
        self.pins: list[str] = []

    def read_alias(self, primary: str) -> str:
        self.reads.append(primary)
        return self.chosen.get(primary, primary)

    def pin(self, primary: str) -> None:
        self.pins.append(primary)


def router_with(monkeypatch: pytest.MonkeyPatch, topology: dict[str, tuple[str, ...]], chosen: dict[str, str]):
    recorder = Recorder(chosen)
    monkeypatch.setattr(replicas, "read_alias", recorder.read_alias)
    monkeypatch.setattr(replicas, "pin", recorder.pin)
    ours = AppDatabaseRouter()
    ours._replicas = topology
    ours._primaries = {replica: primary for primary, names in topology.items() for replica in names}
    return ours, recorder


def test_a_read_of_an_app_with_replicas_gets_the_replica_chosen(monkeypatch):
    ours, recorder = router_with(monkeypatch, {"orders": ("orders_r1",)}, {"orders": "orders_r1"})
    assert ours.db_for_read(Order) == "orders_r1"
    assert recorder.reads == ["orders"]


def test_a_read_of_an_app_without_replicas_asks_nothing_in_a_project_with_some(monkeypatch):
    ours, recorder = router_with(monkeypatch, {"orders": ("orders_r1",)}, {"orders": "orders_r1"})
    assert ours.db_for_read(Warehouse) == "inventory"
    assert ours.db_for_read(Product) is None
    assert recorder.reads == []


def test_a_read_of_an_app_on_default_gets_defaults_replica(monkeypatch):
    ours, recorder = router_with(monkeypatch, {"default": ("default_r1",)}, {"default": "default_r1"})
    assert ours.db_for_read(Product) == "default_r1"
    assert recorder.reads == ["default"]


def test_a_read_of_an_app_on_default_served_by_default_stays_none(monkeypatch):
    # The primary chosen for an app on default: None, as without replicas, so Django's fallback applies.
    ours, recorder = router_with(monkeypatch, {"default": ("default_r1",)}, {})
    assert ours.db_for_read(Product) is None
    assert recorder.reads == ["default"]


def test_a_write_pins_the_apps_primary_and_returns_it(monkeypatch):
    ours, recorder = router_with(monkeypatch, {"orders": ("orders_r1",), "default": ("default_r1",)}, {})
    assert ours.db_for_write(Order) == "orders"
    assert ours.db_for_write(Product) is None
    assert recorder.pins == ["orders", "default"]


def test_a_write_to_an_app_without_replicas_pins_nothing(monkeypatch):
    ours, recorder = router_with(monkeypatch, {"orders": ("orders_r1",)}, {})
    assert ours.db_for_write(Warehouse) == "inventory"
    assert ours.db_for_write(Product) is None
    assert recorder.pins == []


def test_no_migration_runs_on_a_replica(monkeypatch):
    ours, _ = router_with(monkeypatch, {"orders": ("orders_r1",)}, {})
    assert ours.allow_migrate("orders_r1", "orders") is False
    assert ours.allow_migrate("orders_r1", "catalog") is False
    # An alias that is neither an app's nor a replica is still left to the other routers.
    assert ours.allow_migrate("elsewhere", "orders") is None
