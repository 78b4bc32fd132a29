"""URLs of the django-appdb test project."""

from django.contrib import admin
from django.urls import path

from catalog import views
from inventory import views as inventory_views
from orders import views as orders_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", views.overview, name="overview"),
    path("inventory/stock/", inventory_views.stock_levels, name="stock-levels"),
    path("orders/summary/", orders_views.order_summary, name="order-summary"),
    path("orders/<str:number>/paid/", orders_views.mark_paid, name="mark-paid"),
    path("orders/", orders_views.order_list, name="orders"),
]
