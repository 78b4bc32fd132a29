"""List, place and pay orders through the orders repository (SQLAlchemy, orders database)."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError, CommandParser
from sqlalchemy.exc import IntegrityError

from orders.repositories import Line, OrderRepository


def _line(text: str) -> Line:
    try:
        sku, quantity, price = text.split(":")
        return Line(sku, int(quantity), Decimal(price))
    except (ValueError, InvalidOperation):
        raise CommandError(f"Bad line {text!r}: use SKU:QUANTITY:UNIT_PRICE, e.g. HAM-1:2:9.50.") from None


class Command(BaseCommand):
    help = "List, place and pay orders in the orders app's database, through SQLAlchemy."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="List orders, newest first.")
        listing.add_argument("--unpaid", action="store_true", help="Only unpaid orders.")
        place = actions.add_parser("place", help="Place an order with its lines, in one transaction.")
        place.add_argument("number")
        place.add_argument("email")
        place.add_argument("lines", nargs="+", metavar="SKU:QUANTITY:UNIT_PRICE")
        pay = actions.add_parser("pay", help="Mark an order paid.")
        pay.add_argument("number")

    def handle(self, *args, **options) -> None:
        repo = OrderRepository()
        action = options["action"]
        if action == "place":
            lines = [_line(text) for text in options["lines"]]
            try:
                order = repo.place(options["number"], options["email"], lines)
            except IntegrityError:
                raise CommandError(f"Order {options['number']} already exists.") from None
            self.stdout.write(f"Placed order {order.number} ({len(lines)} lines, total {order.total}).")
        elif action == "pay":
            if not repo.pay(options["number"]):
                raise CommandError(f"No unpaid order {options['number']}.")
            self.stdout.write(f"Order {options['number']} is paid.")
        else:
            rows = repo.summaries(paid=False if options["unpaid"] else None)
            for row in rows:
                self.stdout.write(
                    f"{row.number:<12} {row.customer_email:<28} {'paid' if row.paid else 'unpaid':<7} "
                    f"{row.total:>10} {row.line_count:>3} lines"
                )
            self.stdout.write(f"{len(rows)} orders in database {repo.alias!r}.")
