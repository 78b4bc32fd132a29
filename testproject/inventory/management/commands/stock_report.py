"""List stock items at or below a threshold, read through SQLAlchemy from the inventory database."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from sqlalchemy import text

from django_appdb import get_sync_app_session

LOW_STOCK = text(
    """
    SELECT w.code, s.sku, s.quantity
    FROM inventory_stockitem s JOIN inventory_warehouse w ON w.id = s.warehouse_id
    WHERE s.quantity <= :threshold
    ORDER BY s.quantity, w.code, s.sku
    """
)


class Command(BaseCommand):
    help = "List stock items at or below a threshold, read through SQLAlchemy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--below", type=int, default=5, help="Show items with at most this many units.")

    def handle(self, *args, below: int, **options) -> None:
        if below < 0:
            raise CommandError("--below must be 0 or more.")
        with get_sync_app_session("inventory") as session:
            rows = session.execute(LOW_STOCK, {"threshold": below}).all()
        if not rows:
            self.stdout.write(f"No stock item has {below} units or fewer.")
            return
        for warehouse, sku, quantity in rows:
            self.stdout.write(f"{warehouse:<10} {sku:<12} {quantity:>6}")
