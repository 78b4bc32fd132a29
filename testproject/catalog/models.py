"""Catalog models. Database: ``default`` (catalog has no database.py)."""

from django.conf import settings
from django.db import models


class Category(models.Model):
    """A product category. Lives in: default."""

    name = models.CharField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A product for sale. Lives in: default (same database as auth.User)."""

    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    tags = models.ManyToManyField("Tag", blank=True)

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A free-form label on products. Lives in: default."""

    name = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name
