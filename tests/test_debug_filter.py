"""AppDatabaseExceptionReporterFilter keeps database passwords off the debug page and out of error e-mails.

Every test renders a real report for a view that raises (tests/debug_urls.py)
with ``*_DATABASE_URL`` in ``request.META`` (as ``runserver`` puts the whole
environment there), a URL in a custom setting and URLs in local variables.
The same request under Django's own filter shows the password: the checks can fail.
"""

from __future__ import annotations

from urllib.parse import quote

import django
import pytest
from django.core import mail
from django.test import Client
from django.views.debug import get_default_exception_reporter_filter

from django_appdb.debug import MIN_LITERAL_PASSWORD, AppDatabaseExceptionReporterFilter

OURS = "django_appdb.debug.AppDatabaseExceptionReporterFilter"
DJANGOS = "django.views.debug.SafeExceptionReporterFilter"

# Special characters, and a marker that no fixed text of a report contains.
PASSWORD = "Rel1ab!e:p@ss/w#rd%Zq7PWMK"
ENCODED = quote(PASSWORD, safe="")
ORDERS_URL = f"postgresql://shop:{ENCODED}@db.internal:5432/orders"
BROKER_PASSWORD = "Br0kerPWMKsecret"
BROKER_URL = f"amqp://worker:{BROKER_PASSWORD}@mq.internal:5672//"


def leaks(text: str) -> list[str]:
    """Return the forms of the passwords that appear in ``text``."""
    forms = [PASSWORD, ENCODED, "Zq7PWMK", BROKER_PASSWORD, quote(PASSWORD), PASSWORD.replace("&", "&amp;")]
    return [form for form in forms if form in text]


@pytest.fixture
def reporter_filter(settings):
    """Return a function that switches DEFAULT_EXCEPTION_REPORTER_FILTER (Django caches the instance)."""

    def use(path: str) -> None:
        settings.DEFAULT_EXCEPTION_REPORTER_FILTER = path
        get_default_exception_reporter_filter.cache_clear()

    yield use
    get_default_exception_reporter_filter.cache_clear()


@pytest.fixture
def failing_request(settings):
    settings.ROOT_URLCONF = "tests.debug_urls"
    settings.CELERY_BROKER_URL = BROKER_URL

    def send() -> tuple[int, str]:
        client = Client(raise_request_exception=False)
        response = client.get(
            "/fail/",
            ORDERS_DATABASE_URL=ORDERS_URL,
            DATABASE_URL=f"postgres://main:{ENCODED}@db.internal/main",
            HTTP_X_DB_PASSWORD=PASSWORD,
        )
        return response.status_code, response.content.decode()

    return send


def test_debug_page_masks_database_urls_and_passwords(settings, reporter_filter, failing_request):
    settings.DEBUG = True
    reporter_filter(OURS)
    status, page = failing_request()

    assert status == 500
    assert "RuntimeError" in page and "the view failed" in page
    assert leaks(page) == []
    # Still useful: everything but the password is shown.
    assert "ORDERS_DATABASE_URL" in page
    assert "postgresql://shop:********@db.internal:5432/orders" in page
    assert "postgres://main:********@db.internal/main" in page
    assert "amqp://worker:********@mq.internal:5672//" in page
    assert "&lt;Connector postgresql://shop:********@db.internal:5432/orders&gt;" in page
    assert "host=db.internal password=********" in page


def test_without_the_filter_django_shows_the_passwords(settings, reporter_filter, failing_request):
    settings.DEBUG = True
    reporter_filter(DJANGOS)
    status, page = failing_request()

    assert status == 500
    assert set(leaks(page)) >= {ENCODED, "Zq7PWMK", BROKER_PASSWORD, PASSWORD}


@pytest.mark.parametrize(("path", "leaked"), [(OURS, False), (DJANGOS, True)])
def test_error_email_masks_database_urls_and_passwords(settings, reporter_filter, failing_request, path, leaked):
    settings.DEBUG = False
    # Django 6.0 takes plain addresses and deprecates the (name, address)
    # pairs that Django 5.2 requires.
    settings.ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]
    reporter_filter(path)
    status, _ = failing_request()

    assert status == 500
    assert len(mail.outbox) == 1
    report = mail.outbox[0].body
    assert "RuntimeError" in report and "ORDERS_DATABASE_URL" in report
    assert bool(leaks(report)) is leaked
    if not leaked:
        assert "postgresql://shop:********@db.internal:5432/orders" in report


def test_plain_text_report_from_exception_reporter(settings, reporter_filter, rf):
    from django.views.debug import ExceptionReporter

    settings.DEBUG = True
    settings.CELERY_BROKER_URL = BROKER_URL
    reporter_filter(OURS)
    request = rf.get("/fail/", ORDERS_DATABASE_URL=ORDERS_URL)
    try:
        raise ValueError("failed")
    except ValueError as exc:
        text = ExceptionReporter(request, type(exc), exc, exc.__traceback__).get_traceback_text()
    # The text report has no local variables: META and settings are what it shows.
    assert "ORDERS_DATABASE_URL = 'postgresql://shop:********@db.internal:5432/orders'" in text
    assert "CELERY_BROKER_URL = 'amqp://worker:********@mq.internal:5672//'" in text
    assert leaks(text) == []


class TestFilterUnit:
    filter = AppDatabaseExceptionReporterFilter()

    @pytest.mark.parametrize("name", ["DATABASE_URL", "ORDERS_DATABASE_URL", "orders_database_url", "A_B_DATABASE_URL"])
    def test_database_url_names_are_masked(self, name):
        assert self.filter.cleanse_setting(name, ORDERS_URL) == "postgresql://shop:********@db.internal:5432/orders"

    def test_malformed_database_url_is_masked_whole(self):
        raw = f"postgresql://shop:{PASSWORD}@db.internal/orders"
        assert leaks(self.filter.cleanse_setting("ORDERS_DATABASE_URL", raw)) == []

    def test_names_that_only_look_alike_are_not_special(self):
        assert self.filter.cleanse_setting("DATABASE_URLS_DOC", "see the README") == "see the README"
        assert self.filter.cleanse_setting("MYDATABASE_URL_HELP", "text") == "text"

    def test_django_still_hides_secret_names_and_recurses(self):
        cleansed = self.filter.cleanse_setting(
            "DATABASES", {"default": {"PASSWORD": PASSWORD, "NAME": "x", "OPTIONS": {"url": BROKER_URL}}}
        )
        assert cleansed["default"]["PASSWORD"] == self.filter.cleansed_substitute
        assert cleansed["default"]["OPTIONS"]["url"] == "amqp://worker:********@mq.internal:5672//"
        assert self.filter.cleanse_setting("API_TOKEN", "abc") == self.filter.cleansed_substitute

    def test_other_values_are_left_alone(self):
        assert self.filter.cleanse_setting("DEBUG", True) is True
        assert self.filter.cleanse_setting("TIMEOUT", 30) == 30
        assert self.filter.cleanse_setting("SITE", "https://example.com/") == "https://example.com/"

    def test_configured_database_passwords_are_masked_literally(self, settings):
        from django.db import connections

        connections.settings["default"]["PASSWORD"] = PASSWORD
        try:
            value = self.filter.cleanse_setting("HELP_TEXT", f"dsn: user=x password={PASSWORD}")
        finally:
            connections.settings["default"]["PASSWORD"] = ""
        assert value == "dsn: user=x password=********"

    def test_short_passwords_are_masked_only_inside_urls(self, monkeypatch):
        short = "ab"
        assert len(short) < MIN_LITERAL_PASSWORD
        monkeypatch.setenv("SHORT_DATABASE_URL", f"postgres://u:{short}@h/db")
        assert self.filter.cleanse_setting("TEXT", "tab stab") == "tab stab"
        assert self.filter.cleanse_setting("OTHER", f"mysql://u:{short}@h/db") == "mysql://u:********@h/db"

    def test_environment_database_urls_are_known_secrets(self, monkeypatch):
        monkeypatch.setenv("ORDERS_DATABASE_URL", ORDERS_URL)
        assert self.filter.cleanse_setting("NOTE", f"pw is {PASSWORD}") == "pw is ********"


# Each character that an escaping could change, and unicode and spaces. The
# markers around it are what a leak shows, however the character was escaped.
SPECIAL = ["\\", "'", '"', "%", "@", ":", "/", "#", "?", "&", "=", "\n", "é", "日本", " ", "\\'\""]


def marked(special: str) -> str:
    return f"Zq9{special}mK7leakPW"


def marker_leaks(text: str) -> bool:
    return "Zq9" in text or "mK7leakPW" in text


@pytest.fixture
def settings_request(settings, monkeypatch):
    """Return a function sending a request to a view whose locals hold the orders database's settings."""
    from django.db import connections

    settings.ROOT_URLCONF = "tests.debug_urls"

    def send(password: str, *, as_option: str | None = None, meta_url: str | None = None) -> tuple[int, str]:
        entry = dict(connections.settings["orders"])
        if as_option:
            entry["OPTIONS"] = {**entry.get("OPTIONS", {}), as_option: password}
        else:
            entry["PASSWORD"] = password
        monkeypatch.setitem(connections.settings, "orders", entry)
        extra = {"ORDERS_DATABASE_URL": meta_url} if meta_url else {}
        response = Client(raise_request_exception=False).get("/fail-with-settings/", **extra)
        return response.status_code, response.content.decode()

    return send


@pytest.mark.parametrize("special", SPECIAL)
def test_debug_page_masks_a_password_however_it_is_escaped(settings, reporter_filter, settings_request, special):
    settings.DEBUG = True
    reporter_filter(OURS)
    status, page = settings_request(marked(special))
    assert status == 500 and "the view failed" in page
    assert not marker_leaks(page)


@pytest.mark.parametrize("option", ["password", "sslpassword", "pwd", "sslpwd"])
def test_debug_page_masks_passwords_given_as_options(settings, reporter_filter, settings_request, option):
    settings.DEBUG = True
    reporter_filter(OURS)
    status, page = settings_request(marked("\\'"), as_option=option)
    assert status == 500 and not marker_leaks(page)


@pytest.mark.parametrize("key", ["password", "sslpassword"])
def test_a_password_in_a_database_url_query_is_masked(settings, reporter_filter, failing_request, key):
    settings.DEBUG = True
    reporter_filter(OURS)
    settings.ROOT_URLCONF = "tests.debug_urls"
    url = f"postgresql://shop@db.internal/orders?{key}={quote(marked(chr(92) + chr(39)), safe='')}"
    response = Client(raise_request_exception=False).get("/fail/", ORDERS_DATABASE_URL=url)
    assert response.status_code == 500 and not marker_leaks(response.content.decode())


@pytest.mark.parametrize("special", ["\\", "'", '"', "&", "\n", "日本"])
def test_error_email_masks_a_password_however_it_is_escaped(
    settings, reporter_filter, settings_request, special, monkeypatch
):
    import logging

    from django.utils.log import AdminEmailHandler

    (handler,) = [h for h in logging.getLogger("django").handlers if isinstance(h, AdminEmailHandler)]
    # The HTML report attached to the e-mail: the debug page, sent with DEBUG = False.
    monkeypatch.setattr(handler, "include_html", True)
    settings.DEBUG = False
    settings.ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]
    reporter_filter(OURS)
    status, _ = settings_request(marked(special))
    assert status == 500 and len(mail.outbox) == 1
    message = mail.outbox[0]
    html = next(content for content, kind in message.alternatives if kind == "text/html")
    assert "the view failed" in html
    assert not marker_leaks(message.body) and not marker_leaks(html)


def test_djangos_filter_shows_such_a_password_so_the_checks_can_fail(settings, reporter_filter, settings_request):
    settings.DEBUG = True
    reporter_filter(DJANGOS)
    _, page = settings_request(marked("\\"))
    assert marker_leaks(page)
