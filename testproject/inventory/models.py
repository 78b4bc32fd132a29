"""Inventory models. Database: ``inventory`` (inventory/database.py, inventory.sqlite3)."""

import uuid

from django.db import models


class Warehouse(models.Model):
    """A place that holds stock. Lives in: inventory."""

    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.code


class StockItem(models.Model):
    """How many of one SKU a warehouse holds. Lives in: inventory, with its warehouse."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="stock")
    # A catalog SKU, by value: catalog.Product lives in another database.
    sku = models.CharField(max_length=32)
    quantity = models.PositiveIntegerField(default=0)
    attributes = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        unique_together = [("warehouse", "sku")]

    def __str__(self) -> str:
        return f"{self.sku}@{self.warehouse_id}"
