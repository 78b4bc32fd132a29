"""Migrate every app database of the test project, add sample rows, and show where they went.

Everything here is sync, so it runs on a base install (``pip install
django-appdb``, without the ``[async]`` extra).
"""

from decimal import Decimal

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections, router

from catalog.models import Category, Product
from django_appdb import app_databases
from inventory.models import StockItem, Warehouse
from orders.models import Order, OrderLine
from orders.repositories import OrderRepository


class Command(BaseCommand):
    help = "Migrate every app database, add sample rows and show which database holds them."

    def handle(self, *args, **options) -> None:
        # appdb_migrate runs each app's migrations on its own database, default first.
        call_command("appdb_migrate", interactive=False, verbosity=0)
        aliases = sorted({record.alias for record in app_databases().values()})
        self.stdout.write(self.style.MIGRATE_HEADING(f"Migrated databases: {', '.join(aliases)}"))

        category, _ = Category.objects.get_or_create(name="Tools")
        Product.objects.get_or_create(
            sku="HAM-1", defaults={"name": "Hammer", "price": Decimal("9.50"), "category": category}
        )
        warehouse, _ = Warehouse.objects.get_or_create(code="NORTH", defaults={"name": "North depot"})
        StockItem.objects.get_or_create(warehouse=warehouse, sku="HAM-1", defaults={"quantity": 40})
        order, created = Order.objects.get_or_create(number="A-0001", defaults={"customer_email": "ada@example.com"})
        if created:
            OrderLine.objects.create(order=order, sku="HAM-1", quantity=2, unit_price=Decimal("9.50"))

        self.stdout.write("")
        self.stdout.write(f"{'model':<22} {'alias':<10} {'rows':>4}  database")
        for model in (Category, Product, Warehouse, StockItem, Order, OrderLine):
            alias = router.db_for_write(model)
            self.stdout.write(
                f"{model._meta.label:<22} {alias:<10} {model.objects.count():>4}  "
                f"{connections[alias].settings_dict['NAME']}"
            )

        # The same rows through SQLAlchemy: a sync repository on the orders database.
        repo = OrderRepository()
        self.stdout.write("")
        self.stdout.write(f"Through SQLAlchemy (OrderRepository, database {repo.alias!r}):")
        for row in repo.summaries():
            self.stdout.write(f"  {row.number}  {row.customer_email}  lines={row.line_count}  paid={row.paid}")
