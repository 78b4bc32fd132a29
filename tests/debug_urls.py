"""A URLconf with a view that fails while database URLs sit in its local variables."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


class Connector:
    """An object whose repr shows a URL, as many client objects' reprs do."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"<Connector {self.url}>"


def fail(request: HttpRequest) -> HttpResponse:
    """Fail with credentials in local variables: a URL, a dict holding one, an object and a conninfo string."""
    url = request.META.get("ORDERS_DATABASE_URL", "")
    options = {"url": url, "retries": 3}
    connector = Connector(url)
    conninfo = f"host=db.internal password={request.META.get('HTTP_X_DB_PASSWORD', '')}"
    raise RuntimeError(f"the view failed ({len(options)}, {connector is not None}, {len(conninfo)})")


def fail_with_settings(request: HttpRequest) -> HttpResponse:
    """Fail with a database's settings and a libpq conninfo string in local variables, as a driver's frame has."""
    from django.db import connections

    settings_dict = dict(connections.settings["orders"])
    password = str(settings_dict.get("PASSWORD") or "")
    conninfo = "host=db.internal password='" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise RuntimeError(f"the view failed ({len(settings_dict)}, {len(conninfo)})")


urlpatterns = [path("fail/", fail), path("fail-with-settings/", fail_with_settings)]
