"""Moving an app keeps its requests' transactions: ATOMIC_REQUESTS follows default unless the app says otherwise."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from .conftest import run_python

pytestmark = pytest.mark.subprocess

SETTINGS = """
from testproject.settings import *

DATABASES["default"]["ATOMIC_REQUESTS"] = True
ROOT_URLCONF = "atomic_urls"
"""

URLS = """
from django.http import HttpResponse
from django.urls import path

from inventory.models import Warehouse
from orders.models import Order


def write_then_fail(request):
    Warehouse.objects.create(code="LOST", name="written, then the view raised")
    Order.objects.create(number="LOST", customer_email="lost@example.com")
    raise RuntimeError("the view failed after writing")


def write(request):
    Warehouse.objects.create(code="KEPT", name="written by a view that returned")
    return HttpResponse("ok")


urlpatterns = [path("fail/", write_then_fail), path("ok/", write)]
"""

CHILD = """
import json
import django
django.setup()
from django.core.management import call_command
from django.db import connections
from django.test import Client

call_command("appdb_migrate", interactive=False, verbosity=0)
from inventory.models import Warehouse
from orders.models import Order

client = Client(raise_request_exception=False)
failed = client.post("/fail/").status_code
kept = client.post("/ok/").status_code
print(json.dumps({
    "statuses": [failed, kept],
    "atomic": {alias: connections[alias].settings_dict["ATOMIC_REQUESTS"]
               for alias in ("default", "inventory", "orders")},
    "warehouses": sorted(Warehouse.objects.values_list("code", flat=True)),
    "orders": list(Order.objects.values_list("number", flat=True)),
}))
"""


@pytest.fixture
def project(tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "atomic_settings.py").write_text(textwrap.dedent(SETTINGS))
    (extra / "atomic_urls.py").write_text(textwrap.dedent(URLS))
    from .conftest import ROOT

    return {
        "PYTHONPATH": os.pathsep.join(map(str, (extra, ROOT, ROOT / "testproject"))),
        "DJANGO_SETTINGS_MODULE": "atomic_settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.sqlite3'}",
        "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orders.sqlite3'}",
    }


def test_a_failing_view_leaves_nothing_in_the_moved_apps_databases(project, tmp_path):
    result = run_python(textwrap.dedent(CHILD), cwd=tmp_path, **project)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["statuses"] == [500, 200]
    assert report["atomic"] == {"default": True, "inventory": True, "orders": True}
    # Rolled back on both moved databases; the view that returned committed.
    assert report["warehouses"] == ["KEPT"]
    assert report["orders"] == []
