"""Map Django model fields to SQLAlchemy column types.

A field's type is found, in order:

1. in the types registered with :func:`register_field_type` for its class or
   the nearest registered base class;
2. for a ``ForeignKey``/``OneToOneField``, from the field it points at (an
   ``AutoField`` target gives a plain ``Integer``, as in Django);
3. from ``field.get_internal_type()``, so a custom field that says it is
   stored like a ``CharField`` maps like one.

Anything else raises :class:`~django_appdb.exceptions.UnsupportedFieldError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.db.models import Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Double,
    Integer as SAInteger,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
)
from sqlalchemy.types import TypeEngine

from django_appdb.exceptions import UnsupportedFieldError
from django_appdb.sqlalchemy.columntypes import AwareDateTime, Duration, EncodedJSON, IPAddress

if TYPE_CHECKING:
    from django.contrib.postgres.fields import ArrayField
    from django.db.models import DecimalField, ForeignObject

#: Any model field (django-stubs makes ``Field`` generic in its value types).
AnyField: TypeAlias = "Field[Any, Any]"

#: What :func:`register_field_type` accepts: a type instance, a type class
#: (instantiated without arguments), or a callable taking the field.
FieldTypeSpec = TypeEngine[Any] | type[TypeEngine[Any]] | Callable[["AnyField"], TypeEngine[Any]]


@dataclass(frozen=True)
class TypeContext:
    """What a column type may depend on besides the field: the database's time settings."""

    use_tz: bool = True
    db_timezone: str | None = None
    #: Whether the project may use PostgreSQL: JSON columns then get their JSONB variant. Without it,
    #: nothing imports ``sqlalchemy.dialects.postgresql``.
    postgresql: bool = True


_lock = threading.Lock()
_registry: dict[type[AnyField], FieldTypeSpec] = {}
_version = 0


def register_field_type(field_class: type[AnyField], sa_type: FieldTypeSpec) -> None:
    """Map ``field_class`` and its subclasses to ``sa_type``.

    ``sa_type`` is a SQLAlchemy type instance (``Text()``), a type class
    (``Text``), or a callable that takes the field and returns a type
    instance (``lambda field: String(field.max_length)``). A registration wins
    over the built-in mapping; tables already generated are rebuilt on next use.
    """
    global _version
    if not (isinstance(field_class, type) and issubclass(field_class, Field)):
        raise TypeError(f"register_field_type() needs a Django Field subclass, got {field_class!r}.")
    if not (isinstance(sa_type, TypeEngine) or callable(sa_type)):
        raise TypeError(
            f"register_field_type({field_class.__name__}, ...) needs a SQLAlchemy type, a type class, "
            f"or a callable taking the field; got {sa_type!r}."
        )
    with _lock:
        _registry[field_class] = sa_type
        _version += 1


def unregister_field_type(field_class: type[AnyField]) -> None:
    """Forget the type registered for ``field_class`` (no error if there is none)."""
    global _version
    with _lock:
        if _registry.pop(field_class, None) is not None:
            _version += 1


def registry_version() -> int:
    """Return a number that changes whenever the registry changes."""
    return _version


def _registered(field: AnyField) -> TypeEngine[Any] | None:
    for klass in type(field).__mro__:
        spec = _registry.get(klass)
        if spec is None:
            continue
        if isinstance(spec, TypeEngine):
            return spec
        if isinstance(spec, type) and issubclass(spec, TypeEngine):
            return spec()
        result = cast("Callable[[AnyField], TypeEngine[Any]]", spec)(field)
        if not isinstance(result, TypeEngine):
            raise TypeError(
                f"The type registered for {klass.__name__} returned {result!r} for field "
                f"{_describe(field)}, not a SQLAlchemy type instance."
            )
        return result
    return None


def _string(field: AnyField, ctx: TypeContext) -> TypeEngine[Any]:
    return String(field.max_length) if field.max_length else String()


def _json(field: AnyField, ctx: TypeContext) -> TypeEngine[Any]:
    encoder = getattr(field, "encoder", None)
    decoder = getattr(field, "decoder", None)
    if encoder is not None or decoder is not None:
        return EncodedJSON(encoder, decoder)
    # Django stores Python None as SQL NULL, and uses jsonb on PostgreSQL.
    if not ctx.postgresql:
        return JSON(none_as_null=True)
    from sqlalchemy.dialects import postgresql

    return JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _ip(length: int) -> Callable[[AnyField, TypeContext], TypeEngine[Any]]:
    return lambda field, ctx: IPAddress(length)


def _array(field: AnyField, ctx: TypeContext) -> TypeEngine[Any]:
    base, dimensions = cast("ArrayField[Any, Any]", field).base_field, 1
    while base.get_internal_type() == "ArrayField":
        base, dimensions = cast("ArrayField[Any, Any]", base).base_field, dimensions + 1
    from sqlalchemy.dialects import postgresql

    return postgresql.ARRAY(sa_type_for(base, ctx), dimensions=dimensions)


def _decimal(field: DecimalField[Any, Any]) -> TypeEngine[Any]:
    return Numeric(field.max_digits, field.decimal_places, asdecimal=True)


def _postgresql(name: str) -> Callable[[AnyField, TypeContext], TypeEngine[Any]]:
    """Return a maker of the ``sqlalchemy.dialects.postgresql`` type ``name``, imported only when a field needs it."""

    def make(field: AnyField, ctx: TypeContext) -> TypeEngine[Any]:
        from sqlalchemy.dialects import postgresql

        return cast("TypeEngine[Any]", getattr(postgresql, name)())

    return make


def _simple(sa_type: Callable[[], TypeEngine[Any]]) -> Callable[[AnyField, TypeContext], TypeEngine[Any]]:
    return lambda field, ctx: sa_type()


_BUILTIN: dict[str, Callable[[AnyField, TypeContext], TypeEngine[Any]]] = {
    "AutoField": _simple(SAInteger),
    "BigAutoField": _simple(BigInteger),
    "SmallAutoField": _simple(SmallInteger),
    "IntegerField": _simple(SAInteger),
    "BigIntegerField": _simple(BigInteger),
    "SmallIntegerField": _simple(SmallInteger),
    "PositiveIntegerField": _simple(SAInteger),
    "PositiveBigIntegerField": _simple(BigInteger),
    "PositiveSmallIntegerField": _simple(SmallInteger),
    # EmailField, URLField and the contrib.postgres CI*Fields report "CharField";
    # ImageField reports "FileField".
    "CharField": _string,
    "SlugField": _string,
    "FileField": _string,
    "FilePathField": _string,
    "TextField": _simple(Text),
    "BooleanField": _simple(Boolean),
    "DateField": _simple(Date),
    "DateTimeField": lambda field, ctx: AwareDateTime(ctx.use_tz, ctx.db_timezone),
    "TimeField": _simple(Time),
    "DurationField": _simple(Duration),
    "DecimalField": lambda field, ctx: _decimal(cast("DecimalField[Any, Any]", field)),
    "FloatField": _simple(Double),
    "UUIDField": _simple(Uuid),
    "JSONField": _json,
    "BinaryField": _simple(LargeBinary),
    "GenericIPAddressField": _ip(39),
    "IPAddressField": _ip(15),
    # django.contrib.postgres
    "ArrayField": _array,
    "HStoreField": _postgresql("HSTORE"),
    "SearchVectorField": _postgresql("TSVECTOR"),
    "IntegerRangeField": _postgresql("INT4RANGE"),
    "BigIntegerRangeField": _postgresql("INT8RANGE"),
    "DecimalRangeField": _postgresql("NUMRANGE"),
    "DateTimeRangeField": _postgresql("TSTZRANGE"),
    "DateRangeField": _postgresql("DATERANGE"),
}

# Auto fields are integers when something points at them.
_REFERENCED_AUTO = {
    "AutoField": "IntegerField",
    "BigAutoField": "BigIntegerField",
    "SmallAutoField": "SmallIntegerField",
}

AUTO_FIELD_TYPES = frozenset(_REFERENCED_AUTO)


def supported_internal_types() -> list[str]:
    """Return the ``get_internal_type()`` names mapped without registration, sorted."""
    return sorted(_BUILTIN)


def _describe(field: AnyField) -> str:
    model = getattr(field, "model", None)
    where = f"{model._meta.label}.{field.name}" if model is not None else repr(field)
    return f"'{where}'"


def sa_type_for(field: AnyField, ctx: TypeContext | None = None) -> TypeEngine[Any]:
    """Return the SQLAlchemy type of ``field``'s column.

    Raise :class:`~django_appdb.exceptions.UnsupportedFieldError` naming the
    model, the field and its internal type when there is no mapping.
    """
    ctx = ctx or TypeContext()
    registered = _registered(field)
    if registered is not None:
        return registered
    if field.is_relation and (field.many_to_one or field.one_to_one) and field.concrete:
        target = cast("ForeignObject[Any, Any]", field).target_field
        internal = target.get_internal_type()
        if internal in _REFERENCED_AUTO and _registered(target) is None:
            return _BUILTIN[_REFERENCED_AUTO[internal]](target, ctx)
        return sa_type_for(target, ctx)
    # A GeneratedField reports its output field's type, which holds the details.
    source = getattr(field, "output_field", field) if getattr(field, "generated", False) else field
    internal = source.get_internal_type()
    factory = _BUILTIN.get(internal)
    if factory is None:
        raise UnsupportedFieldError(field, internal)
    return factory(source, ctx)
