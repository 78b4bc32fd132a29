"""The column types that store values as Django's backends do, checked per dialect."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from django.test import override_settings
from sqlalchemy.dialects import mysql, postgresql, sqlite

from django_appdb.sqlalchemy.columntypes import AwareDateTime, Duration, IPAddress

UTC = datetime.timezone.utc
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
SQLITE, PG, MYSQL = sqlite.dialect(), postgresql.dialect(), mysql.dialect()


@pytest.mark.parametrize("dialect", [SQLITE, MYSQL], ids=["sqlite", "mysql"])
def test_aware_datetimes_become_utc_wall_time_where_the_database_has_no_zones(dialect):
    kind = AwareDateTime(use_tz=True)
    moment = datetime.datetime(2024, 5, 1, 9, 0, tzinfo=TOKYO)
    stored = kind.process_bind_param(moment, dialect)
    assert stored == datetime.datetime(2024, 5, 1, 0, 0) and stored.tzinfo is None
    loaded = kind.process_result_value(stored, dialect)
    assert loaded == moment and loaded.tzinfo is UTC


def test_the_databases_own_time_zone_setting_is_honoured():
    kind = AwareDateTime(use_tz=True, db_timezone="Asia/Tokyo")
    moment = datetime.datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    stored = kind.process_bind_param(moment, SQLITE)
    assert stored == datetime.datetime(2024, 5, 1, 9, 0) and stored.tzinfo is None
    loaded = kind.process_result_value(stored, SQLITE)
    assert loaded == moment and loaded.utcoffset() == datetime.timedelta(hours=9)


def test_postgresql_keeps_aware_datetimes_as_they_are():
    kind = AwareDateTime(use_tz=True)
    moment = datetime.datetime(2024, 5, 1, 9, 0, tzinfo=TOKYO)
    assert kind.process_bind_param(moment, PG) is moment
    assert kind.process_result_value(moment, PG) is moment
    assert kind.compile(dialect=PG) == "TIMESTAMP WITH TIME ZONE"


@override_settings(TIME_ZONE="America/New_York")
def test_naive_datetimes_warn_and_are_read_in_the_default_time_zone():
    kind = AwareDateTime(use_tz=True)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        stored = kind.process_bind_param(datetime.datetime(2024, 1, 1, 12, 0), SQLITE)
    assert stored == datetime.datetime(2024, 1, 1, 17, 0)


@override_settings(USE_TZ=False, TIME_ZONE="America/New_York")
def test_without_use_tz_values_are_naive_wall_time_in_time_zone():
    kind = AwareDateTime(use_tz=False)
    naive = datetime.datetime(2024, 1, 1, 12, 0)
    assert kind.process_bind_param(naive, SQLITE) is naive
    # PostgreSQL gets the zone spelled out, whatever the session's TimeZone is.
    pinned = kind.process_bind_param(naive, PG)
    assert pinned.utcoffset() == datetime.timedelta(hours=-5) and pinned.replace(tzinfo=None) == naive
    assert kind.process_result_value(pinned.astimezone(UTC), PG) == naive
    aware = datetime.datetime(2024, 1, 1, 17, 0, tzinfo=UTC)
    assert kind.process_bind_param(aware, SQLITE) == naive
    assert kind.compile(dialect=PG) == "TIMESTAMP WITHOUT TIME ZONE"


def test_none_and_non_datetimes_pass_through():
    kind = AwareDateTime()
    assert kind.process_bind_param(None, SQLITE) is None
    assert kind.process_result_value(None, SQLITE) is None
    assert kind.process_bind_param("2024-01-01", SQLITE) == "2024-01-01"


def test_durations_are_microseconds_without_a_native_interval():
    kind = Duration()
    span = datetime.timedelta(days=-1, seconds=5, microseconds=7)
    stored = kind.process_bind_param(span, SQLITE)
    assert stored == -86394999993
    assert kind.process_result_value(stored, SQLITE) == span
    assert kind.compile(dialect=SQLITE) == "BIGINT"
    assert kind.compile(dialect=MYSQL) == "BIGINT"


def test_durations_are_intervals_on_postgresql():
    kind = Duration()
    span = datetime.timedelta(hours=5)
    assert kind.process_bind_param(span, PG) is span
    assert kind.process_result_value(span, PG) is span
    assert kind.compile(dialect=PG) == "INTERVAL"


def test_ip_addresses_are_inet_on_postgresql_and_read_as_strings():
    import ipaddress

    kind = IPAddress()
    assert kind.compile(dialect=PG) == "INET"
    assert kind.compile(dialect=SQLITE) == "VARCHAR(39)"
    assert kind.process_result_value(ipaddress.ip_address("2001:db8::1"), PG) == "2001:db8::1"
    assert kind.process_result_value(None, PG) is None
