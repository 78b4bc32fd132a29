"""Settings for django-appdb's own test suite: the test project, with orders moved.

``orders`` is routed by ``ORDERS_DATABASE_URL``: a SQLite file here, or a
PostgreSQL database when ``APPDB_TEST_POSTGRES_URL`` is set. Test runs only
ever touch the test databases Django derives from these.
"""

import os
import tempfile
from pathlib import Path

_pg = os.environ.get("APPDB_TEST_POSTGRES_URL", "").strip()
if _pg:
    os.environ.setdefault("ORDERS_DATABASE_URL", _pg.rsplit("/", 1)[0] + "/appdb_orders")
else:
    os.environ.setdefault("ORDERS_DATABASE_URL", f"sqlite:///{Path(tempfile.gettempdir()) / 'appdb_orders.sqlite3'}")

from testproject.settings import *  # noqa: E402,F403
