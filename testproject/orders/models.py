"""Orders models. Database: ``orders`` when ORDERS_DATABASE_URL is set, else default."""

from django.db import models


class Order(models.Model):
    """A customer order. Lives in: orders (ORDERS_DATABASE_URL)."""

    number = models.CharField(max_length=20, unique=True)
    customer_email = models.EmailField()
    placed_at = models.DateTimeField(auto_now_add=True)
    paid = models.BooleanField(default=False)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    """One SKU on an order. Lives in: orders, with its order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # A catalog SKU, by value: catalog.Product lives in another database.
    sku = models.CharField(max_length=32)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.order_id}:{self.sku}"
