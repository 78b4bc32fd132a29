"""A model with one field of every built-in type, defined inside ``isolate_apps``.

Tests create its table with Django's schema editor on a test database, so the
table is exactly what Django would migrate.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


def define_zoo(app_label: str, name: str = "Zoo") -> type[models.Model]:
    """Return a new model class with every built-in field type, in ``app_label``."""
    meta = type("Meta", (), {"app_label": app_label, "db_table": f"appdb_{name.lower()}_{app_label}"})
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "Meta": meta,
        "big": models.BigIntegerField(),
        "small": models.SmallIntegerField(),
        "pos": models.PositiveIntegerField(),
        "pos_big": models.PositiveBigIntegerField(),
        "pos_small": models.PositiveSmallIntegerField(),
        "integer": models.IntegerField(null=True),
        "char": models.CharField(max_length=40),
        "slug": models.SlugField(),
        "email": models.EmailField(),
        "url": models.URLField(),
        "text": models.TextField(),
        "flag": models.BooleanField(default=False),
        "maybe": models.BooleanField(null=True),
        "day": models.DateField(),
        "moment": models.DateTimeField(),
        "clock": models.TimeField(),
        "span": models.DurationField(),
        "amount": models.DecimalField(max_digits=14, decimal_places=4),
        "ratio": models.FloatField(),
        "uid": models.UUIDField(default=uuid.uuid4),
        "doc": models.JSONField(null=True),
        "encoded": models.JSONField(encoder=DjangoJSONEncoder, default=dict),
        "blob": models.BinaryField(),
        "ip": models.GenericIPAddressField(),
        "attachment": models.FileField(max_length=120),
        "path": models.FilePathField(path="/tmp"),
        "renamed": models.CharField(max_length=10, db_column="RenamedCol", blank=True),
    }
    return type(name, (models.Model,), attrs)


def sample_values() -> dict[str, Any]:
    """Return values for every field of the zoo, chosen to expose conversion mistakes."""
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    return {
        "big": 2**62 + 3,
        "small": -32000,
        "pos": 2**31 - 1,
        "pos_big": 2**62,
        "pos_small": 32000,
        "integer": None,
        "char": "Zoë — ünïcode",
        "slug": "a-slug",
        "email": "ada@example.com",
        "url": "https://example.com/a?b=c",
        "text": "line one\nline two " * 20,
        "flag": True,
        "maybe": None,
        "day": datetime.date(1999, 12, 31),
        # Not UTC, with microseconds: a wrong conversion shows as another instant.
        "moment": datetime.datetime(2024, 2, 29, 23, 30, 15, 123456, tzinfo=tokyo),
        "clock": datetime.time(13, 14, 15, 160000),
        "span": datetime.timedelta(days=3, hours=4, microseconds=17),
        "amount": decimal.Decimal("12345.6789"),
        "ratio": 0.1,
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "doc": {"nested": {"list": [1, 2.5, "x", None, True]}, "ü": "ö"},
        "encoded": {"when": "2024-01-02T03:04:05Z", "price": "1.50"},
        "blob": b"\x00\x01binary\xff",
        "ip": "2001:db8::1",
        "attachment": "uploads/file.txt",
        "path": "/tmp/file.txt",
        "renamed": "renamed",
    }
