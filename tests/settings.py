"""Settings for django-appdb's own test suite: the test project, with orders moved.

``orders`` is routed by ``ORDERS_DATABASE_URL``: a SQLite file here, or the
PostgreSQL database ``<name>_orders`` beside ``APPDB_TEST_POSTGRES_URL`` when
that is set. Test runs only ever touch the test databases Django derives from
these (``test_<name>``, or SQLite in memory).
"""

import hashlib
import os
import tempfile
from pathlib import Path

_checkout = hashlib.sha1(str(Path(__file__).resolve().parent.parent).encode()).hexdigest()[:8]
_pg = os.environ.get("APPDB_TEST_POSTGRES_URL", "").strip()
if _pg:
    os.environ.setdefault("ORDERS_DATABASE_URL", f"{_pg}_orders")
else:
    os.environ.setdefault(
        "ORDERS_DATABASE_URL", f"sqlite:///{Path(tempfile.gettempdir()) / f'appdb_orders_{_checkout}.sqlite3'}"
    )

from testproject.settings import *  # noqa: E402,F403
