"""Settings of the child processes of tests/test_replication.py: the test project, behind ReplicaPinningMiddleware.

The ``orders`` database and its replica come from ``ORDERS_DATABASE_URL`` and
``ORDERS_DATABASE_REPLICA_URLS`` (the cluster of ``.ci/replication.sh``); the
replica settings from ``REPLICATION_TEST_*`` variables, when set. The URLs and
views are in ``tests.replication_scenarios``.
"""

import os

from testproject.settings import *  # noqa: F403

MIDDLEWARE = ["django_appdb.middleware.ReplicaPinningMiddleware"]
ROOT_URLCONF = "tests.replication_scenarios"

for _name in ("RETRY_SECONDS", "MAX_LAG", "LAG_CHECK_SECONDS", "PIN_SECONDS"):
    _value = os.environ.get(f"REPLICATION_TEST_{_name}", "").strip()
    if _value:
        globals()[f"APPDB_REPLICA_{_name}"] = float(_value)
