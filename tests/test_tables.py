"""table_for() and metadata_for(): tables generated from Django models, without a database."""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import django
import pytest
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import override_settings
from django.test.utils import isolate_apps
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Double,
    FetchedValue,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint as SAUnique,
    Uuid,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.schema import CreateTable

from catalog.models import Category, Product, Tag
from django_appdb import UnsupportedFieldError, metadata_for, register_field_type, table_for
from django_appdb.sqlalchemy.columntypes import AwareDateTime, Duration, EncodedJSON, IPAddress
from django_appdb.sqlalchemy.fieldtypes import sa_type_for, supported_internal_types, unregister_field_type
from django_appdb.sqlalchemy.tables import clear_cache, database_of
from django_appdb.state import state
from inventory.models import StockItem, Warehouse
from orders.models import Order, OrderLine
from tests.zoo import define_zoo

ISOLATED = ("catalog", "inventory", "orders")


@pytest.fixture(autouse=True)
def fresh_tables() -> Iterator[None]:
    """Start and end every test with no generated table (isolated models must not linger)."""
    clear_cache()
    yield
    clear_cache()


class Point(models.Field):
    """A custom field that says nothing about how it is stored."""

    def db_type(self, connection):
        return "point"


class PrecisePoint(Point):
    pass


class Money(models.DecimalField):
    """A custom field stored like a DecimalField: maps without registration."""


def _unique_sets(table) -> list[set[str]]:
    return [{c.key for c in constraint.columns} for constraint in table.constraints if isinstance(constraint, SAUnique)]


def _fk_targets(table) -> set[tuple[str, str, str]]:
    return {(fk.parent.key, fk.column.table.name, fk.column.name) for fk in table.foreign_keys}


# -- every model of the test project ------------------------------------------------


def test_every_model_of_every_app_maps():
    models_seen = 0
    for model in apps.get_models(include_auto_created=True):
        table = table_for(model)
        opts = model._meta
        assert table.name == opts.db_table
        assert list(table.c.keys()) == [f.attname for f in opts.local_concrete_fields]
        assert [c.name for c in table.c] == [f.column for f in opts.local_concrete_fields]
        assert [c.key for c in table.primary_key.columns] == [opts.pk.attname]
        for f in opts.local_concrete_fields:
            assert table.c[f.attname].nullable is (f.null and not f.primary_key), f
        assert table.info == {"django_model": model, "database": database_of(model)}
        models_seen += 1
    assert models_seen >= 15


def test_metadata_for_every_app_holds_its_tables():
    for app_config in apps.get_app_configs():
        metadata = metadata_for(app_config.label)
        for model in app_config.get_models(include_auto_created=True):
            assert metadata.tables[model._meta.db_table] is table_for(model)


def test_tables_are_built_without_any_database_access(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a table was built with a database connection")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)
    monkeypatch.setattr(BaseDatabaseWrapper, "connect", refuse)
    monkeypatch.setattr("sqlalchemy.create_engine", refuse)
    for app_config in apps.get_app_configs():
        metadata_for(app_config.label)


def test_threads_building_at_once_share_one_complete_table_per_model():
    every = apps.get_models(include_auto_created=True)
    barrier = threading.Barrier(16)

    def build() -> list:
        barrier.wait()
        # Each thread sees the models in another order, and checks every
        # table it gets is complete, foreign keys included.
        order = every[threading.get_ident() % len(every) :] + every[: threading.get_ident() % len(every)]
        return [(model, table_for(model), len(table_for(model).foreign_keys)) for model in order]

    with ThreadPoolExecutor(16) as pool:
        results = [future.result() for future in [pool.submit(build) for _ in range(16)]]
    for model in every:
        seen = {(id(table), fks) for result in results for m, table, fks in result if m is model}
        assert seen == {(id(table_for(model)), len(table_for(model).foreign_keys))}, model


def test_ddl_compiles_for_every_dialect():
    for model in apps.get_models(include_auto_created=True):
        for dialect in (sqlite.dialect(), postgresql.dialect(), mysql.dialect()):
            assert str(CreateTable(table_for(model)).compile(dialect=dialect)).startswith("\nCREATE TABLE")


# -- caching and identity -----------------------------------------------------------


def test_tables_are_cached_and_shared_by_label_instance_and_proxy():
    table = table_for(Order)
    assert table_for(Order) is table
    assert table_for("orders.Order") is table
    assert table_for(Order(number="X")) is table
    with isolate_apps(*ISOLATED):

        class RushOrder(Order):
            class Meta:
                app_label = "orders"
                proxy = True

        assert table_for(RushOrder) is table


def test_bad_arguments_are_refused_with_clear_errors():
    with pytest.raises(LookupError, match=r"orders\.Nope"):
        table_for("orders.Nope")
    with pytest.raises(TypeError, match="needs a Django model"):
        table_for(42)  # type: ignore[arg-type]
    with isolate_apps(*ISOLATED):

        class Base(models.Model):
            class Meta:
                app_label = "orders"
                abstract = True

        with pytest.raises(TypeError, match="abstract"):
            table_for(Base)
    with pytest.raises(LookupError, match="nope"):
        metadata_for("nope")


def test_one_metadata_per_database():
    assert metadata_for("catalog") is metadata_for("auth")
    assert metadata_for("catalog").info == {"database": "default"}
    assert metadata_for("inventory").info == {"database": "inventory"}
    assert metadata_for("orders").info == {"database": "orders"}
    assert metadata_for("inventory") is not metadata_for("orders")
    assert set(metadata_for("orders").tables) == {"orders_order", "orders_orderline"}
    assert table_for(Product).metadata is table_for(Category).metadata is metadata_for("catalog")


def test_routing_change_rebuilds_the_tables(monkeypatch):
    before = table_for(Order)
    assert table_for(Order) is before
    # configure() replaces the records whenever routing is planned again.
    monkeypatch.setattr(state, "records", dict(state.records))
    after = table_for(Order)
    assert after is not before and table_for(Order) is after


def test_use_tz_change_rebuilds_the_tables():
    assert table_for(Order).c.placed_at.type.use_tz is True
    with override_settings(USE_TZ=False):
        placed_at = table_for(Order).c.placed_at
        assert placed_at.type.use_tz is False
        assert placed_at.type.impl.timezone is False
    assert table_for(Order).c.placed_at.type.use_tz is True


# -- the test project's tables ------------------------------------------------------


def test_product_columns_keys_and_foreign_keys_across_apps_on_one_database():
    table = table_for(Product)
    assert isinstance(table.c.id.type, BigInteger) and table.c.id.autoincrement is True
    assert isinstance(table.c.sku.type, String) and table.c.sku.type.length == 32 and table.c.sku.unique
    assert isinstance(table.c.price.type, Numeric)
    assert (table.c.price.type.precision, table.c.price.type.scale, table.c.price.type.asdecimal) == (10, 2, True)
    # auth.User uses AutoField: a plain Integer where it is referenced.
    assert type(table.c.created_by_id.type) is Integer and table.c.created_by_id.nullable
    assert type(table.c.category_id.type) is BigInteger and not table.c.category_id.nullable
    assert _fk_targets(table) == {
        ("category_id", "catalog_category", "id"),
        ("created_by_id", "auth_user", "id"),
    }
    fk = next(iter(table.c.category_id.foreign_keys))
    assert (fk.constraint.deferrable, fk.constraint.initially, fk.constraint.ondelete) == (True, "DEFERRED", None)


def test_auto_created_many_to_many_table():
    through = Product.tags.through
    table = table_for(through)
    assert table.name == "catalog_product_tags"
    assert list(table.c.keys()) == ["id", "product_id", "tag_id"]
    assert _fk_targets(table) == {("product_id", "catalog_product", "id"), ("tag_id", "catalog_tag", "id")}
    uniques = _unique_sets(table)
    assert {"product_id", "tag_id"} in uniques
    assert table.metadata.tables["catalog_tag"] is table_for(Tag)


def test_stock_item_uuid_json_defaults_and_unique_together():
    table = table_for(StockItem)
    assert isinstance(table.c.id.type, Uuid) and table.c.id.autoincrement is False
    first, second = table.c.id.default.arg(None), table.c.id.default.arg(None)
    assert isinstance(first, uuid.UUID) and first != second
    assert isinstance(table.c.attributes.type, JSON) and table.c.attributes.type.none_as_null
    # The JSONB variant on PostgreSQL: tests/test_lazy_dialects.py.
    made = table.c.attributes.default.arg(None)
    assert made == {} and made is not table.c.attributes.default.arg(None)
    assert table.c.quantity.default.arg == 0
    assert isinstance(table.c.updated_at.type, AwareDateTime)
    assert table.c.updated_at.default is not None and table.c.updated_at.onupdate is not None
    assert _fk_targets(table) == {("warehouse_id", "inventory_warehouse", "id")}
    uniques = _unique_sets(table)
    assert {"warehouse_id", "sku"} in uniques
    assert table_for(Warehouse).c.code.unique


def test_order_auto_now_add_defaults_but_never_updates():
    table = table_for(Order)
    placed_at = table.c.placed_at
    assert placed_at.onupdate is None
    now = placed_at.default.arg(None)
    assert isinstance(now, datetime.datetime) and now.tzinfo is not None
    assert isinstance(table.c.paid.type, Boolean) and table.c.paid.default.arg is False
    assert isinstance(table.c.customer_email.type, String) and table.c.customer_email.type.length == 254
    # As in Model.save(), a text field without a default is stored empty; other fields get no default.
    assert table.c.customer_email.default.arg == "" and table.c.number.default.arg == ""
    assert table_for(OrderLine).c.quantity.default is None and table_for(OrderLine).c.order_id.default is None
    assert _fk_targets(table_for(OrderLine)) == {("order_id", "orders_order", "id")}


# -- every field type ---------------------------------------------------------------


def test_every_built_in_field_type_maps():
    with isolate_apps(*ISOLATED):
        table = table_for(define_zoo("orders"))
    c = table.c
    expected_classes = {
        "big": BigInteger, "small": SmallInteger, "pos": Integer, "pos_big": BigInteger,
        "pos_small": SmallInteger, "integer": Integer, "text": Text, "flag": Boolean, "maybe": Boolean,
        "day": Date, "clock": Time, "ratio": Double, "uid": Uuid, "blob": LargeBinary,
        "moment": AwareDateTime, "span": Duration, "encoded": EncodedJSON,
    }  # fmt: skip
    for key, klass in expected_classes.items():
        assert type(c[key].type) is klass, key
    lengths = {"char": 40, "slug": 50, "email": 254, "url": 200, "attachment": 120, "path": 100}
    for key, length in lengths.items():
        assert isinstance(c[key].type, String) and c[key].type.length == length, key
    assert c.ip.type.compile(dialect=sqlite.dialect()) == "VARCHAR(39)"
    assert isinstance(c.ip.type, IPAddress) and c.ip.type.compile(dialect=postgresql.dialect()) == "INET"
    assert (c.amount.type.precision, c.amount.type.scale) == (14, 4)
    assert isinstance(c.doc.type, JSON) and c.doc.nullable
    assert c.integer.nullable and c.maybe.nullable and not c.flag.nullable
    assert c.renamed.name == "RenamedCol" and c.renamed.key == "renamed"
    assert c.encoded.type.encoder is DjangoJSONEncoder
    assert {"JSONField", "UUIDField", "DateTimeField", "DecimalField", "BooleanField"} <= set(
        supported_internal_types()
    )


def test_auto_fields_and_what_references_them():
    with isolate_apps(*ISOLATED):

        class Small(models.Model):
            id = models.SmallAutoField(primary_key=True)

            class Meta:
                app_label = "orders"

        class Plain(models.Model):
            id = models.AutoField(primary_key=True)
            small = models.ForeignKey(Small, models.CASCADE)

            class Meta:
                app_label = "orders"

        class Natural(models.Model):
            code = models.CharField(max_length=8, primary_key=True)
            plain = models.OneToOneField(Plain, models.CASCADE)
            by_code = models.ForeignKey("self", models.CASCADE, to_field="code", null=True, related_name="+")

            class Meta:
                app_label = "orders"

        small, plain, natural = table_for(Small), table_for(Plain), table_for(Natural)
    assert type(small.c.id.type) is SmallInteger and small.c.id.autoincrement is True
    assert type(plain.c.id.type) is Integer and plain.c.id.autoincrement is True
    assert type(plain.c.small_id.type) is SmallInteger
    assert natural.c.code.autoincrement is False and natural.c.code.type.length == 8
    assert natural.c.code.default is None
    assert type(natural.c.plain_id.type) is Integer and natural.c.plain_id.unique
    assert isinstance(natural.c.by_code_id.type, String) and natural.c.by_code_id.type.length == 8
    assert _fk_targets(natural) == {("plain_id", plain.name, "id"), ("by_code_id", natural.name, "code")}


def test_foreign_key_to_another_database_is_a_plain_column():
    with isolate_apps(*ISOLATED):

        class Thing(models.Model):
            id = models.UUIDField(primary_key=True)

            class Meta:
                app_label = "catalog"

        class Shelf(models.Model):
            class Meta:
                app_label = "inventory"

        class Slot(models.Model):
            thing = models.ForeignKey(Thing, models.DO_NOTHING)
            shelf = models.ForeignKey(Shelf, models.CASCADE)
            loose = models.ForeignKey(Shelf, models.CASCADE, db_constraint=False, related_name="+")

            class Meta:
                app_label = "inventory"

        slot = table_for(Slot)
    assert database_of(Thing) == "default" and database_of(Slot) == "inventory"
    assert isinstance(slot.c.thing_id.type, Uuid) and not slot.c.thing_id.foreign_keys
    assert _fk_targets(slot) == {("shelf_id", Shelf._meta.db_table, "id")}
    assert type(slot.c.loose_id.type) is BigInteger and not slot.c.loose_id.foreign_keys
    assert Thing._meta.db_table not in slot.metadata.tables


def test_multi_table_inheritance():
    with isolate_apps(*ISOLATED):

        class Parent(models.Model):
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "orders"

        class Child(Parent):
            extra = models.IntegerField()

            class Meta:
                app_label = "orders"

        child = table_for(Child)
    assert list(child.c.keys()) == ["parent_ptr_id", "extra"]
    assert [c.key for c in child.primary_key.columns] == ["parent_ptr_id"]
    assert child.c.parent_ptr_id.autoincrement is False
    assert _fk_targets(child) == {("parent_ptr_id", Parent._meta.db_table, "id")}


def test_custom_table_schema_comments_and_unique_constraints():
    with isolate_apps(*ISOLATED):

        class Invoice(models.Model):
            number = models.CharField(max_length=10, db_column="NUM", db_comment="Printed number")
            year = models.IntegerField()
            deleted = models.BooleanField(default=False)

            class Meta:
                app_label = "orders"
                db_table = '"billing"."invoices"'
                db_table_comment = "Issued invoices"
                constraints = [
                    models.UniqueConstraint(fields=["number", "year"], name="invoice_number_year"),
                    models.UniqueConstraint(
                        fields=["number"], condition=models.Q(deleted=False), name="live_invoice_number"
                    ),
                ]

        table = table_for(Invoice)
    assert (table.schema, table.name, table.comment) == ("billing", "invoices", "Issued invoices")
    assert table.c.number.name == "NUM" and table.c.number.comment == "Printed number"
    named = {
        constraint.name: {c.key for c in constraint.columns}
        for constraint in table.constraints
        if isinstance(constraint, SAUnique)
    }
    # A conditional unique constraint is a partial index: left to migrations.
    assert named == {"invoice_number_year": {"number", "year"}}


@pytest.mark.skipif(django.VERSION < (5, 0), reason="GeneratedField and db_default need Django 5.0")
def test_generated_fields_and_database_defaults_are_left_to_the_database():
    from django.db.models.functions import Now

    with isolate_apps(*ISOLATED):

        class Box(models.Model):
            width = models.IntegerField()
            height = models.IntegerField()
            area = models.GeneratedField(
                expression=models.F("width") * models.F("height"),
                output_field=models.BigIntegerField(),
                db_persist=True,
            )
            created = models.DateTimeField(db_default=Now())

            class Meta:
                app_label = "orders"

        table = table_for(Box)
    assert type(table.c.area.type) is BigInteger
    assert isinstance(table.c.area.server_default, FetchedValue) and table.c.area.default is None
    assert isinstance(table.c.created.server_default, FetchedValue) and table.c.created.default is None


@pytest.mark.skipif(django.VERSION < (5, 2), reason="CompositePrimaryKey needs Django 5.2")
def test_composite_primary_key():
    with isolate_apps(*ISOLATED):

        class Release(models.Model):
            pk = models.CompositePrimaryKey("product", "version")
            product = models.CharField(max_length=10)
            version = models.IntegerField()

            class Meta:
                app_label = "orders"

        table = table_for(Release)
    assert list(table.c.keys()) == ["product", "version"]
    assert [c.key for c in table.primary_key.columns] == ["product", "version"]
    assert table.c.version.autoincrement is False


@pytest.mark.psycopg
def test_postgres_contrib_fields():
    from django.contrib.postgres import fields as pg
    from django.contrib.postgres.search import SearchVectorField

    with isolate_apps(*ISOLATED):

        class Survey(models.Model):
            grid = pg.ArrayField(pg.ArrayField(models.IntegerField()))
            labels = pg.ArrayField(models.CharField(max_length=5))
            extra = pg.HStoreField()
            ages = pg.IntegerRangeField()
            window = pg.DateTimeRangeField()
            search = SearchVectorField()

            class Meta:
                app_label = "orders"

        c = table_for(Survey).c
    assert isinstance(c.grid.type, postgresql.ARRAY) and c.grid.type.dimensions == 2
    assert type(c.grid.type.item_type) is Integer
    assert c.labels.type.dimensions == 1 and c.labels.type.item_type.length == 5
    assert isinstance(c.extra.type, postgresql.HSTORE)
    assert isinstance(c.ages.type, postgresql.INT4RANGE)
    assert isinstance(c.window.type, postgresql.TSTZRANGE)
    assert isinstance(c.search.type, postgresql.TSVECTOR)


# -- unsupported and registered field types -----------------------------------------


def _gadget() -> type[models.Model]:
    class Gadget(models.Model):
        location = Point()
        precise = PrecisePoint(null=True)
        price = Money(max_digits=8, decimal_places=3)

        class Meta:
            app_label = "orders"

    return Gadget


def test_unsupported_field_names_model_field_internal_type_and_fix():
    with isolate_apps(*ISOLATED):
        with pytest.raises(UnsupportedFieldError) as caught:
            table_for(_gadget())
    message = str(caught.value)
    assert "'orders.Gadget.location'" in message
    assert "tests.test_tables.Point" in message
    assert "internal type 'Point'" in message
    assert "django_appdb.register_field_type(Point, sqlalchemy.Text)" in message
    assert "get_internal_type()" in message
    assert caught.value.model_label == "orders.Gadget" and caught.value.internal_type == "Point"


@pytest.mark.parametrize(
    "spec",
    [Text, Text(), lambda field: String(64 if field.null else 32)],
    ids=["class", "instance", "callable"],
)
def test_registered_types_cover_subclasses_and_win_over_internal_types(spec):
    register_field_type(Point, spec)
    try:
        with isolate_apps(*ISOLATED):
            c = table_for(_gadget()).c
        assert isinstance(c.location.type, (Text, String))
        assert isinstance(c.precise.type, (Text, String))
        if not isinstance(spec, (type, Text)):
            assert (c.location.type.length, c.precise.type.length) == (32, 64)
        assert (c.price.type.precision, c.price.type.scale) == (8, 3)
    finally:
        unregister_field_type(Point)


def test_a_more_specific_registration_wins():
    register_field_type(Point, Text)
    register_field_type(PrecisePoint, LargeBinary)
    try:
        with isolate_apps(*ISOLATED):
            c = table_for(_gadget()).c
        assert type(c.location.type) is Text and type(c.precise.type) is LargeBinary
    finally:
        unregister_field_type(Point)
        unregister_field_type(PrecisePoint)


def test_registration_rebuilds_tables_already_generated():
    before = table_for(Order)
    register_field_type(Point, Text)
    try:
        assert table_for(Order) is not before
    finally:
        unregister_field_type(Point)


def test_register_field_type_checks_its_arguments():
    with pytest.raises(TypeError, match="Field subclass"):
        register_field_type(int, Text)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SQLAlchemy type"):
        register_field_type(Point, "text")  # type: ignore[arg-type]
    register_field_type(Point, lambda field: "text")
    try:
        with isolate_apps(*ISOLATED), pytest.raises(TypeError, match="not a SQLAlchemy type instance"):
            table_for(_gadget())
    finally:
        unregister_field_type(Point)


def test_a_failed_build_leaves_nothing_behind():
    with isolate_apps(*ISOLATED):
        Gadget = _gadget()

        class Part(models.Model):
            gadget = models.ForeignKey(Gadget, models.CASCADE)

            class Meta:
                app_label = "orders"

        with pytest.raises(UnsupportedFieldError, match=r"Gadget\.location"):
            table_for(Part)
        metadata = metadata_for("orders")
        assert Part._meta.db_table not in metadata.tables and Gadget._meta.db_table not in metadata.tables
        register_field_type(Point, Text)
        try:
            assert _fk_targets(table_for(Part)) == {("gadget_id", Gadget._meta.db_table, "id")}
        finally:
            unregister_field_type(Point)


def test_two_models_on_one_table_are_refused():
    with isolate_apps(*ISOLATED):

        class Legacy(models.Model):
            number = models.CharField(max_length=20)

            class Meta:
                app_label = "orders"
                db_table = "orders_order"
                managed = False

        table_for(Order)
        with pytest.raises(ValueError, match=r"orders.Legacy and orders.Order both use table 'orders_order'"):
            table_for(Legacy)


def test_foreign_key_to_a_registered_custom_primary_key():
    class Code(models.CharField):
        def get_internal_type(self):
            return "Code"

    register_field_type(Code, lambda field: String(field.max_length))
    try:
        with isolate_apps(*ISOLATED):

            class Coded(models.Model):
                code = Code(max_length=6, primary_key=True)

                class Meta:
                    app_label = "orders"

            class User(models.Model):
                coded = models.ForeignKey(Coded, models.CASCADE)

                class Meta:
                    app_label = "orders"

            assert table_for(User).c.coded_id.type.length == 6
            assert sa_type_for(User._meta.get_field("coded")).length == 6
    finally:
        unregister_field_type(Code)


def test_encoded_json_uses_the_fields_encoder_and_decoder():
    class Decoder(json.JSONDecoder):
        def __init__(self, **kwargs):
            super().__init__(object_hook=lambda d: {**d, "decoded": True}, **kwargs)

    kind = EncodedJSON(DjangoJSONEncoder, Decoder)
    dialect = sqlite.dialect()
    bound = kind.process_bind_param({"at": datetime.date(2024, 1, 2), "n": None}, dialect)
    assert bound == {"at": "2024-01-02", "n": None}
    assert kind.process_result_value({"a": 1}, dialect) == {"a": 1, "decoded": True}
    assert kind.process_bind_param(None, dialect) is None
    assert isinstance(kind.load_dialect_impl(postgresql.dialect()), postgresql.JSONB)


def test_metadata_for_builds_tables_only_from_meta():
    metadata = metadata_for("inventory")
    assert isinstance(metadata, MetaData)
    assert set(metadata.tables) == {"inventory_warehouse", "inventory_stockitem"}
