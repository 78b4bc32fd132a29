"""SQLAlchemy Core tables generated from Django models.

``table_for(Model)`` returns a :class:`sqlalchemy.Table` describing the table
Django created for ``Model``: its columns (``db_column`` names, keyed by the
field's ``attname`` such as ``category_id``), types, primary key,
nullability, single-field and simple multi-field unique constraints, and
foreign keys. Tables are built from ``Model._meta`` alone: no reflection, no
connection. They are cached, and built lazily, one model (plus the models it
references) at a time.

There is one :class:`sqlalchemy.MetaData` per database alias, shared by every
app routed to that alias, so a foreign key between two apps on the same
database (``catalog.Product.created_by`` to ``auth.User``) is a real
``ForeignKey``. A foreign key to a model on another database becomes a plain
column of the right type without a ``ForeignKey``: the two tables can never be
joined in one query. So does a field with ``db_constraint=False``, as Django
creates no constraint for it.

The tables describe Django's schema for queries. Create and change the schema
with ``migrate``: indexes, check constraints and database defaults are left out.
"""

from __future__ import annotations

import datetime
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.db import connections
from django.db.models import NOT_PROVIDED, Model, UniqueConstraint
from django.utils import timezone
from sqlalchemy import (
    Column,
    FetchedValue,
    ForeignKeyConstraint,
    MetaData,
    Table,
    UniqueConstraint as SAUniqueConstraint,
)

from django_appdb.conf import conf
from django_appdb.dburls import builtin_vendor
from django_appdb.sqlalchemy import fieldtypes
from django_appdb.sqlalchemy.fieldtypes import AnyField
from django_appdb.state import resolve_alias, state

if TYPE_CHECKING:
    from django.db.models import ForeignObject

#: Keys of ``Table.info`` set on every generated table.
INFO_MODEL = "django_model"
INFO_DATABASE = "database"

# Django's workaround for PostgreSQL schemas: db_table = '"schema"."table"'.
_SCHEMA_TABLE = re.compile(r'^"(?P<schema>[^"]+)"\."(?P<name>[^"]+)"$')


@dataclass
class _Database:
    """The tables generated for one database alias."""

    alias: str
    metadata: MetaData
    context: fieldtypes.TypeContext
    tables: dict[type[Model], Table] = field(default_factory=dict)


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.databases: dict[str, _Database] = {}
        # Model class -> table, across databases: the hot path of table_for().
        self.by_model: dict[type[Model], Table] = {}
        self.records: Any = None
        self.version = -1

    def fresh(self) -> bool:
        # Routing changes replace ``state.records``; registrations bump the
        # version; USE_TZ and DATABASES changes clear the cache (see below).
        return self.records is state.records and self.version == fieldtypes.registry_version()

    def database(self, alias: str) -> _Database:
        if not self.fresh():
            with self.lock:
                if not self.fresh():
                    self.databases, self.by_model = {}, {}
                    self.records, self.version = state.records, fieldtypes.registry_version()
        database = self.databases.get(alias)
        if database is None:
            with self.lock:
                database = self.databases.get(alias)
                if database is None:
                    database = _Database(alias, MetaData(info={INFO_DATABASE: alias}), _context(alias))
                    self.databases[alias] = database
        return database

    def clear(self) -> None:
        with self.lock:
            self.databases, self.by_model = {}, {}
            self.records = None


_cache = _Cache()


def _may_use_postgresql() -> bool:
    """Whether a configured database is PostgreSQL, or of a backend whose vendor is not known without importing it."""
    return any(
        builtin_vendor(str(settings_dict.get("ENGINE") or "")) in (None, "postgresql")
        for settings_dict in connections.settings.values()
    )


def _context(alias: str) -> fieldtypes.TypeContext:
    db_settings = connections.settings.get(alias, {})
    return fieldtypes.TypeContext(
        use_tz=conf.USE_TZ, db_timezone=db_settings.get("TIME_ZONE") or None, postgresql=_may_use_postgresql()
    )


def clear_cache() -> None:
    """Forget every generated table and ``MetaData``; the next call builds them again.

    Happens by itself when routing, ``USE_TZ``, ``DATABASES`` or a registered
    field type changes.
    """
    _cache.clear()


def _resolve(model: type[Model] | Model | str) -> type[Model]:
    if isinstance(model, str):
        try:
            resolved = apps.get_model(model)
        except (LookupError, ValueError) as exc:
            raise LookupError(f"table_for({model!r}): {exc}") from None
    elif isinstance(model, Model):
        resolved = type(model)
    elif isinstance(model, type) and issubclass(model, Model):
        resolved = model
    else:
        raise TypeError(f"table_for() needs a Django model class, instance or 'app_label.ModelName', got {model!r}.")
    opts = resolved._meta
    if opts.abstract:
        raise TypeError(f"{opts.label} is abstract: it has no table. Pass one of its concrete subclasses.")
    if opts.swapped:
        raise LookupError(f"{opts.label} has been swapped for {opts.swapped}: use table_for({opts.swapped!r}).")
    concrete: type[Model] = opts.concrete_model
    return concrete


def database_of(model: type[Model]) -> str:
    """Return the database alias ``model``'s rows live on, as the router decides."""
    return state.alias_of(model)


def table_for(model: type[Model] | Model | str) -> Table:
    """Return the SQLAlchemy ``Table`` of a Django model (class, instance or ``"app_label.Model"``).

    A proxy model gives its concrete model's table; an auto-created many-to-many
    table is ``table_for(Product.tags.through)``. ``table.c`` is keyed by each
    field's ``attname``; ``table.info["django_model"]`` is the model and
    ``table.info["database"]`` its database alias.

    Raise :class:`~django_appdb.exceptions.UnsupportedFieldError` when a field
    of the model, or of a model it references on the same database, has no
    SQLAlchemy type.
    """
    if isinstance(model, type) and _cache.fresh():
        table = _cache.by_model.get(model)
        if table is not None:
            return table
    resolved = _resolve(model)
    database = _cache.database(database_of(resolved))
    # Captured with the database: a concurrent clear() swaps in a new dict.
    by_model = _cache.by_model
    table = database.tables.get(resolved)
    if table is None:
        with _cache.lock:
            table = _build(database, resolved)
    if isinstance(model, type):
        by_model[model] = table
    return table


def metadata_for(app_label: str) -> MetaData:
    """Return the ``MetaData`` of ``app_label``'s database, holding the tables of all its models.

    Apps routed to the same database share one ``MetaData``, so it may hold
    other apps' tables too (at least those the app's models reference).
    Raise ``LookupError`` for an app label that is not installed.
    """
    app_config = apps.get_app_config(app_label)
    alias = resolve_alias(app_config.label)
    for model in app_config.get_models(include_auto_created=True):
        if not model._meta.proxy and not model._meta.swapped:
            table_for(model)
    return _cache.database(alias).metadata


def _build(database: _Database, model: type[Model]) -> Table:
    # Tables are published only once complete (foreign keys attached), since
    # table_for() reads ``database.tables`` without the lock.
    pending: dict[type[Model], Table] = {}
    try:
        table = _build_one(database, model, pending)
    except BaseException:
        # Leave nothing half-made behind: a later call starts from scratch.
        for built in pending.values():
            database.metadata.remove(built)
        raise
    database.tables.update(pending)
    return table


def _split_db_table(db_table: str) -> tuple[str, str | None]:
    match = _SCHEMA_TABLE.match(db_table)
    if match:
        return match.group("name"), match.group("schema")
    return db_table, None


def _build_one(database: _Database, model: type[Model], pending: dict[type[Model], Table]) -> Table:
    existing = database.tables.get(model)
    if existing is None:
        existing = pending.get(model)
    if existing is not None:
        return existing
    opts = model._meta
    name, schema = _split_db_table(opts.db_table)
    key = f"{schema}.{name}" if schema else name
    clash = database.metadata.tables.get(key)
    if clash is not None:
        other = clash.info[INFO_MODEL]._meta.label
        raise ValueError(
            f"{opts.label} and {other} both use table {opts.db_table!r} on database {database.alias!r}; "
            f"table_for() maps one model per table. Give one of them another db_table, or use the other model."
        )
    pk_fields = set(getattr(opts, "pk_fields", [opts.pk]))
    fields = list(opts.local_concrete_fields)
    columns = [_column(f, f in pk_fields, database.context) for f in fields]
    table = Table(
        name,
        database.metadata,
        *columns,
        *_unique_constraints(model),
        schema=schema,
        comment=getattr(opts, "db_table_comment", None) or None,
        info={INFO_MODEL: model, INFO_DATABASE: database.alias},
    )
    pending[model] = table
    for f in fields:
        _add_foreign_key(database, table, f, pending)
    return table


def _column(f: AnyField, primary_key: bool, ctx: fieldtypes.TypeContext) -> Column[Any]:
    kwargs: dict[str, Any] = {
        "key": f.attname,
        "primary_key": primary_key,
        "nullable": bool(f.null) and not primary_key,
        "comment": getattr(f, "db_comment", None) or None,
    }
    if f.unique and not primary_key:
        kwargs["unique"] = True
    if primary_key:
        kwargs["autoincrement"] = f.get_internal_type() in fieldtypes.AUTO_FIELD_TYPES
    kwargs.update(_defaults(f, primary_key))
    return Column(f.column, fieldtypes.sa_type_for(f, ctx), **kwargs)


def _defaults(f: AnyField, primary_key: bool) -> dict[str, Any]:
    """Return the column defaults that make SQLAlchemy inserts behave like ``Model.save()``."""
    if getattr(f, "generated", False):
        return {"server_default": FetchedValue(), "server_onupdate": FetchedValue()}
    result: dict[str, Any] = {}
    if getattr(f, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
        result["server_default"] = FetchedValue()
    if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
        now = _now_for(f)
        result["default"] = now
        if getattr(f, "auto_now", False):
            result["onupdate"] = now
    elif f.has_default():
        result["default"] = f.get_default if callable(f.default) or f.is_relation else f.default
    elif "server_default" not in result and not primary_key and not f.is_relation:
        # Like Model.save(), a text field left out is stored empty ("", or b"" for binary).
        implicit = f.get_default()
        if implicit is not None:
            result["default"] = implicit
    return result


def _now_for(f: AnyField) -> Any:
    internal = f.get_internal_type()
    if internal == "DateField":
        return datetime.date.today
    if internal == "TimeField":
        return lambda: datetime.datetime.now().time()
    return timezone.now


def _unique_constraints(model: type[Model]) -> list[SAUniqueConstraint]:
    opts = model._meta
    local = {f.name: f for f in opts.local_concrete_fields}
    groups: list[tuple[tuple[str, ...], str | None]] = [(tuple(names), None) for names in opts.unique_together]
    for constraint in opts.constraints:
        if (
            isinstance(constraint, UniqueConstraint)
            and constraint.fields
            and not constraint.condition
            and not constraint.expressions
            # Not in django-stubs' UniqueConstraint, though Django has them.
            and not getattr(constraint, "include", None)
            and not getattr(constraint, "opclasses", None)
            and getattr(constraint, "nulls_distinct", None) is None
        ):
            groups.append((tuple(constraint.fields), constraint.name))
    result = []
    for names, name in groups:
        # Django itself rejects fields of parent models here; skip rather than guess.
        if names and all(n in local for n in names):
            result.append(SAUniqueConstraint(*(local[n].attname for n in names), name=name))
    return result


def _add_foreign_key(database: _Database, table: Table, f: AnyField, pending: dict[type[Model], Table]) -> None:
    if not (f.is_relation and (f.many_to_one or f.one_to_one)) or not getattr(f, "db_constraint", True):
        return
    target_field = cast("ForeignObject[Any, Any]", f).target_field
    target_model = target_field.model._meta.concrete_model
    if database_of(target_model) != database.alias:
        return
    target_table = _build_one(database, target_model, pending)
    table.append_constraint(
        ForeignKeyConstraint(
            [table.c[f.attname]],
            [target_table.c[target_field.attname]],
            # As Django creates them: checked at commit, no ON DELETE action
            # (Django runs on_delete in Python).
            deferrable=True,
            initially="DEFERRED",
        )
    )
