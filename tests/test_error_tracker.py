"""An error tracker that sends frame variables (Sentry's default) never receives a database password.

A child process starts Django with a bad app database URL under sentry-sdk,
whose transport records events instead of sending them (no network), and
captures the start-up error as Sentry's Django integration would.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from .conftest import run_python

pytestmark = pytest.mark.subprocess

CHILD = """
import json
import sentry_sdk
from sentry_sdk.transport import Transport

events = []

class Recording(Transport):
    def capture_envelope(self, envelope):
        events.extend(item.payload.json for item in envelope.items if item.type == "event")

sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=Recording, include_local_variables=True,
                default_integrations=False)
import django
try:
    django.setup()
except Exception as exc:
    sentry_sdk.capture_exception(exc)
    raised = type(exc).__name__
sentry_sdk.flush()
print(json.dumps({"raised": raised, "events": events}))
"""


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("ORDERS_DATABASE_URL", "nosuch://shop:Zq9secretPW@db.internal/orders"),
        ("ORDERS_DATABASE_URL", "postgres://shop:Zq9secretPW@db.internal/"),
        ("ORDERS_DATABASE_URL", "postgres://shop:Zq9sec/retPW@db.internal/orders"),
    ],
)
def test_start_up_errors_carry_no_password_in_frame_variables(tmp_path, variable, url):
    result = run_python(textwrap.dedent(CHILD), cwd=tmp_path, **{variable: url})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["raised"] == "AppDatabaseConfigError"
    (event,) = report["events"]
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    # Sentry did record frame variables: the check can fail.
    assert any(frame.get("vars") for frame in frames)
    text = json.dumps(event)
    assert "Zq9" not in text and "secretPW" not in text
