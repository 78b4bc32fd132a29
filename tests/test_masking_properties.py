"""Property tests: whatever URL and password, start-up raises only the documented error and never shows the password.

Hypothesis generates database URLs -- percent-encoded as documented, and raw
or malformed as people type them -- with passwords full of ``@ : / # %``,
quotes, spaces, control characters and unicode, in an environment variable or
a ``database.py``. For each one:

* planning raises nothing but ``AppDatabaseConfigError``, which names the app
  and the source;
* the password appears nowhere: not in the error (message, repr, traceback),
  not in ``appdb_list`` output (table and JSON), not in the repr of the
  ``AppDatabase`` record, the plan or the declaration, and not in the
  SQLAlchemy engine built from the merged settings (or its error, which must
  be an ``ImproperlyConfigured``).

How a leak is recognised: every generated password embeds two markers,
``PWMK`` and ``KMWP`` followed by four digits, between free-form chunks, so it
is at least 16 characters long. No fixed text (messages, schemes, host names)
contains either marker and user and database names are lower-case, so a marker
in any output can only come from the password, in whatever encoding it leaked
(markers are alphanumeric, so quoting, ``repr`` and JSON leave them intact).
Leaks of a free-form chunk alone (up to six characters, which could be a
legitimate part of a message) are not attributable and not checked; the whole
password and its percent-encoded forms are.

Runs are deterministic (``derandomize=True``, no example database) and bounded
(:data:`EXAMPLES` examples per property).
"""

from __future__ import annotations

import json
import re
import traceback
from io import StringIO
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connections
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from django_appdb.backends import vendor_of
from django_appdb.databases import plan
from django_appdb.dburls import mask_text, mask_url, settings_to_url
from django_appdb.discovery import declare
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.sqlalchemy import dialects
from django_appdb.state import state

EXAMPLES = 200
LABEL = "fuzz"
VAR = "FUZZ_DATABASE_URL"
DEFAULT = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Characters that break URLs, then anything printable or not (no lone surrogates: they cannot be encoded).
SPECIAL = "@:/#%?&=[]!$'()*+,;~ \"\\\t\n"
chunk = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=("Cs",))), max_size=6)
digits = st.text(alphabet="0123456789", min_size=4, max_size=4)
passwords = st.builds(lambda a, m1, b, m2, c: f"{a}PWMK{m1}{b}KMWP{m2}{c}", chunk, digits, chunk, digits, chunk)
lower = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
schemes = st.sampled_from(
    [
        "postgres",
        "postgresql",
        "pgsql",
        "postgis",
        "redshift",
        "cockroach",
        "timescale",
        "mysql",
        "mysql2",
        "sqlite",
        "oracle",
        "mssql",
        "postgresx",
        "http",
        "",
    ]
)
hosts = st.sampled_from(["db.internal", "127.0.0.1", "h", "[::1]", "db-1.example.com", ""])
ports = st.one_of(st.none(), st.integers(1, 65535).map(str), st.sampled_from(["x", "99999999", "-1", "", "1:2"]))
NEXT_PARAMETER = re.compile(r"[&;][A-Za-z_][\w.\-]*=")
shapes = st.sampled_from(["encoded", "raw", "query", "no-slashes", "no-scheme"])


def password_forms(password: str) -> set[str]:
    """Return what a leaked ``password`` could look like in output: whole, encoded, or just its markers."""
    markers = re.findall(r"PWMK\d{4}|KMWP\d{4}", password)
    assert len(markers) == 2
    return {password, quote(password, safe=""), quote(password), json.dumps(password)[1:-1], *markers}


def assert_hidden(password: str, *texts: str) -> None:
    forms = password_forms(password)
    for text in texts:
        found = [form for form in forms if form in text]
        assert not found, f"password leaked as {found!r} in {text!r}"


@st.composite
def database_urls(draw: st.DrawFn) -> tuple[str, str]:
    """Return ``(url, password)``: a URL as documented (percent-encoded) or as typed (raw, malformed)."""
    password = draw(passwords)
    scheme, user, host, name = draw(schemes), draw(lower), draw(hosts), draw(st.one_of(lower, st.just("")))
    port = draw(ports)
    where = f"{host}:{port}" if port is not None else host
    shape = draw(shapes)
    encoded = quote(password, safe="")
    if shape == "encoded":
        return f"{scheme}://{user}:{encoded}@{where}/{name}", password
    if shape == "raw":
        return f"{scheme}://{user}:{password}@{where}/{name}", password
    if shape == "query":
        key = draw(st.sampled_from(["sslpassword", "password", "passfile_secret", "token"]))
        value = draw(st.sampled_from([encoded, password]))
        # Unencoded, "&name=" starts the next parameter for every URL parser: it cannot be told from one.
        assume(value == encoded or not NEXT_PARAMETER.search(password))
        return f"{scheme}://{user}@{where}/{name}?sslmode=require&{key}={value}", password
    if shape == "no-slashes":
        return f"{scheme}:{draw(st.sampled_from(['', '/']))}{user}:{password}@{where}/{name}", password
    return f"{user}:{password}@{where}/{name}", password


def listing_output(record) -> str:
    """Return ``appdb_list`` output, table and JSON, for a project whose only app is ``record``'s."""
    out = StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(state, "records", {record.label: record})
        if record.alias not in connections.settings:
            patch.setitem(connections.settings, record.alias, dict(record.settings))
        call_command("appdb_list", stdout=out)
        call_command("appdb_list", "--json", stdout=out)
    return out.getvalue()


def engine_output(record) -> str:
    """Return what building a sync SQLAlchemy engine for ``record`` shows: reprs, or its error."""
    alias = record.alias
    try:
        vendor = vendor_of(alias) if alias in connections.settings else "sqlite"
        spec = dialects.derive_spec(alias, record.settings, vendor, is_async=False)
        engine = dialects.create(spec)
    except ImproperlyConfigured as exc:
        return "\n".join([str(exc), repr(exc)])
    try:
        return "\n".join([repr(spec), repr(engine), str(engine.url), repr(engine.url)])
    finally:
        engine.dispose()


def check_one(url: str, password: str, app: SimpleNamespace, environ: dict[str, str]) -> str:
    """Plan one app from ``url``; assert the outcome; return "error" or "ok"."""
    try:
        result = plan([app], DEFAULT, environ=environ)
    except AppDatabaseConfigError as error:
        assert error.app_label == LABEL
        assert f"app '{LABEL}'" in str(error) and f"({error.source})" in str(error)
        assert_hidden(password, str(error), repr(error), "".join(traceback.format_exception(error)))
        return "error"
    record = result.records[LABEL]
    shown = [
        repr(record),
        record.masked_url,
        repr(result),
        repr(declare(app, environ)),
        mask_url(settings_to_url(record.settings)),
        listing_output(record),
    ]
    if record.alias != "default":
        shown.append(engine_output(record))
    assert_hidden(password, *shown)
    return "ok"


def test_start_up_never_shows_a_generated_password(make_app, record_property):
    outcomes = {"error": 0, "ok": 0}
    env_app = make_app(LABEL)

    @PROPERTY
    @given(database_urls(), st.sampled_from(["env", "module"]))
    def check(generated: tuple[str, str], source: str) -> None:
        url, password = generated
        if source == "env":
            outcome = check_one(url, password, env_app, {VAR: url})
        else:
            outcome = check_one(url, password, make_app(LABEL, f"DATABASE_URL = {url!r}\n"), {})
        outcomes[outcome] += 1

    check()
    record_property("hypothesis_examples", sum(outcomes.values()))
    # Both paths were exercised: the property is not vacuous.
    assert outcomes["error"] > 10 and outcomes["ok"] > 10, outcomes


def test_mask_url_never_shows_a_generated_password(record_property):
    examples = 0

    @PROPERTY
    @given(database_urls())
    def check(generated: tuple[str, str]) -> None:
        nonlocal examples
        url, password = generated
        masked = mask_url(url)
        assert_hidden(password, masked, mask_url(masked))
        examples += 1

    check()
    record_property("hypothesis_examples", examples)


def test_mask_text_hides_every_encoded_url_in_a_message(record_property):
    examples = 0

    @PROPERTY
    @given(st.lists(st.tuples(passwords, schemes.filter(bool), lower, hosts), min_size=1, max_size=3), chunk)
    def check(urls: list[tuple[str, str, str, str]], glue: str) -> None:
        nonlocal examples
        parts = [f"{scheme}://{user}:{quote(password, safe='')}@{host}/db" for password, scheme, user, host in urls]
        text = f"could not connect to {parts[0]}" + "".join(f"{glue} then {part}" for part in parts[1:])
        masked = mask_text(text)
        for password, *_ in urls:
            assert_hidden(password, masked)
        examples += 1

    check()
    record_property("hypothesis_examples", examples)
