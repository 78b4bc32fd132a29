"""SQLAlchemy column types that store values exactly as Django's backends do.

SQLAlchemy's generic types are used wherever they already agree with Django.
These decorators cover the places where they do not: datetimes on databases
without time zone support, durations on databases without an interval type,
JSON with a custom encoder or decoder, and IP addresses read as strings.
"""

from __future__ import annotations

import datetime
import json
import warnings
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.duration import duration_microseconds
from sqlalchemy import JSON, BigInteger, DateTime, Interval, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# Dialects whose datetime column stores an instant (Django's
# ``features.supports_timezones``) and whose interval column Django uses
# (``features.has_native_duration_field``).
NATIVE_TIMEZONE_DIALECTS = frozenset({"postgresql"})
NATIVE_DURATION_DIALECTS = frozenset({"postgresql", "oracle"})


@cache
def _zone(name: str | None) -> datetime.tzinfo:
    return datetime.timezone.utc if name in (None, "UTC") else ZoneInfo(name)


class AwareDateTime(TypeDecorator[datetime.datetime]):
    """Store and load datetimes the way Django's ``DateTimeField`` does.

    With ``use_tz``, values are aware: on PostgreSQL they go to
    ``timestamp with time zone`` unchanged; elsewhere they are stored as naive
    wall time in the database's ``TIME_ZONE`` (UTC unless the ``DATABASES``
    entry sets one) and made aware again when read. A naive value is taken to
    be in the default time zone, with the same ``RuntimeWarning`` Django gives.

    Without ``use_tz``, values are naive wall time in ``settings.TIME_ZONE``;
    on PostgreSQL they are pinned to that zone whatever the session's own
    ``TimeZone`` is.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self, use_tz: bool = True, db_timezone: str | None = None) -> None:
        super().__init__(timezone=use_tz)
        self.use_tz = use_tz
        self.db_timezone = db_timezone

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or not isinstance(value, datetime.datetime):
            return value
        native = dialect.name in NATIVE_TIMEZONE_DIALECTS
        default = timezone.get_default_timezone()
        if self.use_tz:
            if timezone.is_naive(value):
                warnings.warn(
                    f"A naive datetime ({value}) was bound while time zone support is active; "
                    f"it is taken to be in {default}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                value = timezone.make_aware(value, default)
            return value if native else timezone.make_naive(value, _zone(self.db_timezone))
        if timezone.is_aware(value):
            value = timezone.make_naive(value, default)
        return timezone.make_aware(value, default) if native else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or not isinstance(value, datetime.datetime):
            return value
        if self.use_tz:
            return timezone.make_aware(value, _zone(self.db_timezone)) if timezone.is_naive(value) else value
        return timezone.make_naive(value, timezone.get_default_timezone()) if timezone.is_aware(value) else value


class Duration(TypeDecorator[datetime.timedelta]):
    """Store ``timedelta`` values the way Django's ``DurationField`` does.

    A native ``INTERVAL`` on PostgreSQL and Oracle; elsewhere a ``BIGINT`` of
    microseconds (SQLAlchemy's own ``Interval`` would store a datetime there,
    which Django could not read).
    """

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in NATIVE_DURATION_DIALECTS:
            return dialect.type_descriptor(Interval())
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name in NATIVE_DURATION_DIALECTS or not isinstance(value, datetime.timedelta):
            return value
        return duration_microseconds(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name in NATIVE_DURATION_DIALECTS or isinstance(value, datetime.timedelta):
            return value
        return datetime.timedelta(microseconds=int(value))


class EncodedJSON(TypeDecorator[Any]):
    """JSON passed through a ``JSONField``'s own ``encoder`` and ``decoder``.

    Values are encoded with the field's encoder before SQLAlchemy serialises
    them, and decoded with the field's decoder after SQLAlchemy parses them, so
    a ``DjangoJSONEncoder`` field accepts datetimes and decimals here too.
    """

    impl = JSON
    cache_ok = True

    def __init__(
        self,
        encoder: type[json.JSONEncoder] | None = None,
        decoder: type[json.JSONDecoder] | None = None,
    ) -> None:
        super().__init__(none_as_null=True)
        self.encoder = encoder
        self.decoder = decoder

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or self.encoder is None:
            return value
        return json.loads(json.dumps(value, cls=self.encoder))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or self.decoder is None:
            return value
        return json.loads(json.dumps(value), cls=self.decoder)


class IPAddress(TypeDecorator[str]):
    """Store IP addresses the way Django's ``GenericIPAddressField`` does.

    ``inet`` on PostgreSQL, a string elsewhere; always read back as ``str``
    (PostgreSQL drivers would otherwise return ``ipaddress`` objects).
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int = 39) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import INET

            return dialect.type_descriptor(INET())
        return dialect.type_descriptor(String(self.length))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else str(value)
