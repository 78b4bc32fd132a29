"""Generated tables against the tables Django really created, on SQLite and PostgreSQL.

``inventory`` is always SQLite; ``orders`` is PostgreSQL when
APPDB_TEST_POSTGRES_URL is set, SQLite otherwise. These tests use plain
SQLAlchemy engines on the test databases (tests/sa_engines.py), so they need
no engine registry.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.db import connections, models
from django.test.utils import isolate_apps
from sqlalchemy import Engine, func, insert, inspect, select, update

from catalog.models import Category, Product, Tag
from django_appdb.sqlalchemy.tables import clear_cache, database_of, table_for
from inventory.models import StockItem, Warehouse
from orders.models import Order, OrderLine
from tests.sa_engines import sync_engine
from tests.zoo import define_zoo, sample_values

ALL = ["default", "inventory", "orders"]


@pytest.fixture(autouse=True)
def fresh_tables() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def engines() -> Iterator[dict[str, Engine]]:
    with sync_engine("default") as default, sync_engine("inventory") as inventory, sync_engine("orders") as orders:
        yield {"default": default, "inventory": inventory, "orders": orders}


@pytest.fixture
def zoo(request) -> Iterator[type[models.Model]]:
    """Create the every-field model's table with Django's schema editor on the parametrized alias."""
    alias = request.param
    with isolate_apps("catalog", "inventory", "orders"):
        model = define_zoo(alias)
    assert database_of(model) == alias
    with connections[alias].schema_editor() as editor:
        editor.create_model(model)
    try:
        yield model
    finally:
        with connections[alias].schema_editor() as editor:
            editor.delete_model(model)


def _as_python(field: models.Field, value: Any) -> Any:
    # Django returns bytes or memoryview for BinaryField depending on the backend.
    return bytes(value) if isinstance(value, memoryview) else value


# -- the generated tables match the real ones ---------------------------------------


def _reflected_uniques(inspector, name: str) -> list[set[str]]:
    found = [set(u["column_names"]) for u in inspector.get_unique_constraints(name)]
    # SQLite keeps an inline UNIQUE as an automatic index, hidden unless asked for.
    kw = {"include_auto_indexes": True} if inspector.dialect.name == "sqlite" else {}
    found += [set(i["column_names"]) for i in inspector.get_indexes(name, **kw) if i.get("unique")]
    found += [set(inspector.get_pk_constraint(name)["constrained_columns"])]
    return found


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_generated_tables_match_what_django_created(engines):
    for model in apps.get_models(include_auto_created=True):
        if model._meta.swapped or not model._meta.managed:
            continue
        alias = database_of(model)
        table = table_for(model)
        inspector = inspect(engines[alias])
        reflected = {column["name"]: column for column in inspector.get_columns(table.name)}
        assert set(reflected) == {c.name for c in table.c}, model
        for column in table.c:
            assert reflected[column.name]["nullable"] == column.nullable, (model, column.name)
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], model
        real_fks = {
            (fk["constrained_columns"][0], fk["referred_table"], fk["referred_columns"][0])
            for fk in inspector.get_foreign_keys(table.name)
        }
        ours = {(fk.parent.name, fk.column.table.name, fk.column.name) for fk in table.foreign_keys}
        assert ours == real_fks, model
        uniques = _reflected_uniques(inspector, table.name)
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                assert {c.name for c in constraint.columns} in uniques, (model, constraint)
        for column in table.c:
            if column.unique:
                assert {column.name} in uniques, (model, column.name)
        if engines[alias].dialect.name == "postgresql":
            dialect = engines[alias].dialect
            for column in table.c:
                ours_sql = column.type.compile(dialect=dialect)
                real_sql = reflected[column.name]["type"].compile(dialect=dialect)
                assert ours_sql == real_sql, (model, column.name)


@pytest.mark.django_db(databases=ALL, transaction=True)
@pytest.mark.parametrize("zoo", ["inventory", "orders"], indirect=True)
def test_every_field_type_matches_the_real_column(zoo, engines):
    alias = database_of(zoo)
    table = table_for(zoo)
    engine = engines[alias]
    reflected = {column["name"]: column for column in inspect(engine).get_columns(table.name)}
    assert set(reflected) == {c.name for c in table.c}
    for column in table.c:
        assert reflected[column.name]["nullable"] == column.nullable, column.name
        if engine.dialect.name == "postgresql":
            ours_sql = column.type.compile(dialect=engine.dialect)
            assert ours_sql == reflected[column.name]["type"].compile(dialect=engine.dialect), column.name


# -- values round-trip: Django writes, SQLAlchemy reads, and the reverse -----------


@pytest.mark.django_db(databases=ALL, transaction=True)
@pytest.mark.parametrize("zoo", ["inventory", "orders"], indirect=True)
def test_every_field_type_round_trips_from_django_to_sqlalchemy(zoo, engines):
    values = sample_values()
    written = zoo.objects.create(**values)
    table = table_for(zoo)
    with engines[database_of(zoo)].connect() as connection:
        row = connection.execute(select(table).where(table.c.id == written.pk)).one()._mapping
        sql_null = connection.execute(select(func.count()).where(table.c.doc.is_(None))).scalar_one()
    assert sql_null == 0
    for f in zoo._meta.concrete_fields:
        got = row[table.c[f.attname]]
        expected = values.get(f.attname, written.pk)
        if f.attname == "ratio":
            assert got == pytest.approx(expected), f.attname
        else:
            assert _as_python(f, got) == expected, f.attname
    assert row[table.c.moment].utcoffset() is not None


@pytest.mark.django_db(databases=ALL, transaction=True)
@pytest.mark.parametrize("zoo", ["inventory", "orders"], indirect=True)
def test_every_field_type_round_trips_from_sqlalchemy_to_django(zoo, engines):
    values = sample_values()
    values["doc"] = None
    values["encoded"] = {"when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                         "price": decimal.Decimal("1.50")}  # fmt: skip
    table = table_for(zoo)
    with engines[database_of(zoo)].begin() as connection:
        pk = connection.execute(insert(table).values(**values)).inserted_primary_key[0]
        sql_null = connection.execute(select(func.count()).where(table.c.doc.is_(None))).scalar_one()
    assert sql_null == 1, "Python None must be SQL NULL, as Django stores it"
    read = zoo.objects.get(pk=pk)
    for f in zoo._meta.concrete_fields:
        if f.attname in ("id", "encoded"):
            continue
        got = _as_python(f, getattr(read, f.attname))
        if f.attname == "ratio":
            assert got == pytest.approx(values["ratio"])
        else:
            assert got == values[f.attname], f.attname
    # The field's DjangoJSONEncoder was used, as Model.save() would.
    assert read.encoded == {"when": "2024-01-02T03:04:05Z", "price": "1.50"}
    assert zoo.objects.filter(encoded__price="1.50", doc__isnull=True).count() == 1


@pytest.mark.django_db(databases=ALL, transaction=True)
@pytest.mark.parametrize("zoo", ["inventory", "orders"], indirect=True)
def test_sqlalchemy_inserts_apply_django_defaults(zoo, engines):
    values = sample_values()
    for name in ("flag", "uid", "encoded", "renamed", "blob"):
        del values[name]
    table = table_for(zoo)
    with engines[database_of(zoo)].begin() as connection:
        connection.execute(insert(table), [values, {**values, "char": "second"}])
    first, second = zoo.objects.order_by("pk")
    assert (first.flag, first.encoded, second.encoded) == (False, {}, {})
    assert (first.renamed, bytes(first.blob)) == ("", b"")
    assert isinstance(first.uid, uuid.UUID) and first.uid != second.uid


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_stock_items_round_trip_uuid_json_and_datetimes(engines):
    warehouse = Warehouse.objects.create(code="N", name="North")
    attributes = {"colour": "red", "sizes": [1, 2], "note": None, "ünï": {"deep": True}}
    item = StockItem.objects.create(warehouse=warehouse, sku="HAM-1", quantity=7, attributes=attributes)
    table = table_for(StockItem)
    with engines["inventory"].begin() as connection:
        row = connection.execute(select(table).where(table.c.sku == "HAM-1")).one()
        assert (row.id, row.warehouse_id, row.quantity, row.attributes) == (item.pk, warehouse.pk, 7, attributes)
        assert row.updated_at == item.updated_at and row.updated_at.utcoffset() == datetime.timedelta(0)
        # Written by SQLAlchemy with only what the model requires: defaults as in Model.save().
        new_id = connection.execute(
            insert(table).values(warehouse_id=warehouse.pk, sku="SAW-2").returning(table.c.id)
        ).scalar_one()
        connection.execute(update(table).where(table.c.id == item.pk).values(quantity=8))
    created = StockItem.objects.get(pk=new_id)
    assert (created.sku, created.quantity, created.attributes, created.warehouse) == ("SAW-2", 0, {}, warehouse)
    assert isinstance(new_id, uuid.UUID)
    updated = StockItem.objects.get(pk=item.pk)
    assert updated.quantity == 8 and updated.updated_at > item.updated_at


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_orders_round_trip_decimal_and_aware_datetimes(engines):
    order = Order.objects.create(number="A-1", customer_email="ada@example.com", total=decimal.Decimal("10.05"))
    OrderLine.objects.create(order=order, sku="HAM-1", quantity=2, unit_price=decimal.Decimal("5.025"))
    orders, lines = table_for(Order), table_for(OrderLine)
    placed = datetime.datetime(2024, 3, 31, 1, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    with engines["orders"].begin() as connection:
        # The foreign key lets SQLAlchemy infer the join.
        row = connection.execute(
            select(orders.c.total, orders.c.placed_at, func.sum(lines.c.quantity * lines.c.unit_price).label("sum"))
            .select_from(orders.join(lines))
            .group_by(orders.c.id)
        ).one()
        assert row.total == decimal.Decimal("10.05") and isinstance(row.total, decimal.Decimal)
        assert row.placed_at == order.placed_at and row.placed_at.utcoffset() is not None
        pk = connection.execute(
            insert(orders).values(number="B-2", customer_email="bob@example.com", total=decimal.Decimal("99999999.99"),
                                  placed_at=placed)
        ).inserted_primary_key[0]  # fmt: skip
    read = Order.objects.get(pk=pk)
    assert (read.total, read.paid, read.placed_at) == (decimal.Decimal("99999999.99"), False, placed)
    # 01:30 in Paris on that day is 00:30 UTC (summer time starts at 02:00).
    utc = datetime.timezone.utc
    assert Order.objects.filter(placed_at__lt=datetime.datetime(2024, 3, 31, 0, 45, tzinfo=utc)).count() == 1
    assert Order.objects.filter(placed_at__lt=datetime.datetime(2024, 3, 31, 0, 15, tzinfo=utc)).count() == 0


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_many_to_many_rows_written_by_django_read_through_the_through_table(engines):
    category = Category.objects.create(name="Tools")
    product = Product.objects.create(sku="HAM-1", name="Hammer", price=decimal.Decimal("9.50"), category=category)
    product.tags.add(Tag.objects.create(name="steel"), Tag.objects.create(name="heavy"))
    products, through, tags = table_for(Product), table_for(Product.tags.through), table_for(Tag)
    with engines["default"].connect() as connection:
        names = connection.execute(
            select(tags.c.name).select_from(products.join(through).join(tags)).where(products.c.sku == "HAM-1")
            .order_by(tags.c.name)
        ).scalars().all()  # fmt: skip
    assert names == ["heavy", "steel"]


@pytest.mark.django_db(databases=ALL, transaction=True)
def test_naive_datetimes_warn_and_are_taken_in_the_default_time_zone(engines):
    orders = table_for(Order)
    with engines["orders"].begin() as connection, pytest.warns(RuntimeWarning, match="naive datetime"):
        connection.execute(
            insert(orders).values(number="N-1", customer_email="n@example.com", placed_at=datetime.datetime(2024, 1, 1))
        )
    assert Order.objects.get(number="N-1").placed_at == datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def test_orders_is_on_postgresql_when_configured(postgres_url):
    assert connections["orders"].vendor == "postgresql"
