"""URLs of the django-appdb test project."""

from django.contrib import admin
from django.urls import path

from catalog import views
from orders import views as order_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", views.overview, name="overview"),
    path("orders/", order_views.order_list, name="orders"),
]
