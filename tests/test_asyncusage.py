"""Finding async use of app databases (for django_appdb.W004): which views and repositories, on which alias."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from types import ModuleType

import pytest

from django_appdb.sqlalchemy.asyncusage import AsyncUse, async_uses

VIEWS = """
from django.http import JsonResponse
from django.views import View
from django.views.decorators.http import require_POST

from django_appdb import get_app_session, get_sync_app_session
from orders.repositories import AsyncOrderRepository


async def names_inventory(request):
    async with get_app_session("inventory"):
        pass
    return JsonResponse({})


@require_POST
async def wrapped_names_orders(request):
    async with get_app_session("orders"):
        pass
    return JsonResponse({})


async def names_nothing(request):
    return JsonResponse({})


def sync_view(request):
    with get_sync_app_session("inventory"):
        pass
    return JsonResponse({})


class AsyncClassView(View):
    async def get(self, request):
        return JsonResponse({"rows": len(await AsyncOrderRepository().summaries())})


class SyncClassView(View):
    def get(self, request):
        return JsonResponse({})
"""

ORM_ONLY_VIEWS = """
from django.http import JsonResponse
from catalog.models import Category


async def orm_only(request):
    return JsonResponse({"count": await Category.objects.acount()})
"""


def _module(name: str, source: str) -> ModuleType:
    module = ModuleType(name)
    sys.modules[name] = module
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), module.__dict__)
    return module


@pytest.fixture
def urlconf() -> Iterator[ModuleType]:
    suffix = uuid.uuid4().hex[:8]
    views = _module(f"appdb_tmp_views_{suffix}", VIEWS)
    orm_only = _module(f"appdb_tmp_orm_views_{suffix}", ORM_ONLY_VIEWS)
    urls = _module(f"appdb_tmp_urls_{suffix}", "")
    from django.urls import include, path

    nested = _module(f"appdb_tmp_nested_urls_{suffix}", "")
    nested.urlpatterns = [path("orders/", views.wrapped_names_orders)]  # type: ignore[attr-defined]
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("inventory/", views.names_inventory),
        path("nothing/", views.names_nothing),
        path("sync/", views.sync_view),
        path("class/", views.AsyncClassView.as_view()),
        path("sync-class/", views.SyncClassView.as_view()),
        path("orm/", orm_only.orm_only),
        path("api/", include(nested.__name__)),
    ]
    try:
        yield urls
    finally:
        for module in (views, orm_only, urls, nested):
            sys.modules.pop(module.__name__, None)


def _views(uses: list[AsyncUse]) -> dict[str, str]:
    return {use.what.split()[2]: use.alias for use in uses if use.what.startswith("async view ")}


def test_async_views_using_the_async_side_are_found_on_the_alias_they_name(urlconf):
    views = _views(async_uses(urlconf))
    prefix = urlconf.__name__.replace("urls", "views")
    assert views == {
        f"{prefix}.names_inventory": "inventory",
        # Decorators are seen through, and included URLconfs are walked.
        f"{prefix}.wrapped_names_orders": "orders",
        # No label in its code: the alias of the module's app, or default outside any app.
        f"{prefix}.names_nothing": "default",
        f"{prefix}.AsyncClassView": "default",
    }


def test_check_narrowed_to_apps_reports_only_their_uses(monkeypatch):
    from django.apps import apps

    from django_appdb import checks
    from django_appdb.exceptions import MissingDriverError

    def missing(vendor, is_async, **kwargs):
        raise MissingDriverError("no driver", problem="no driver", install="django-appdb[async]")

    monkeypatch.setattr("django_appdb.sqlalchemy.dialects.driver_for", missing)
    (warning,) = checks.check_async_drivers()
    assert warning.id == "django_appdb.W004" and "database alias 'orders'" in warning.msg
    assert warning.hint.startswith("Install it: pip install 'django-appdb[async]'.")
    assert checks.check_async_drivers([apps.get_app_config("orders")]) != []
    assert checks.check_async_drivers([apps.get_app_config("catalog")]) == []


def test_routes_are_shown(urlconf):
    shown = [use.what for use in async_uses(urlconf)]
    assert any(what.endswith("(/api/orders/)") for what in shown)


def test_sync_views_and_async_views_using_only_the_orm_are_left_alone(urlconf):
    views = _views(async_uses(urlconf))
    assert not any(name.endswith(("sync_view", "SyncClassView", "orm_only")) for name in views)


def test_async_repositories_are_found_on_their_apps_alias():
    import orders.repositories  # noqa: F401

    uses = async_uses(None)
    assert AsyncUse("orders", "orders.repositories.AsyncOrderRepository", "orders") in uses
    assert not any(use.what == "orders.repositories.OrderRepository" for use in uses)
