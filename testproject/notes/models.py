"""A small app in the style of a third-party one: it declares no database of its own.

Set ``NOTES_DATABASE_URL`` to move it to its own database; its tests, which
declare no ``databases`` (Django's default), keep passing.
"""

from django.db import models


class Notebook(models.Model):
    title = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Note(models.Model):
    notebook = models.ForeignKey(Notebook, on_delete=models.CASCADE, related_name="notes")
    text = models.CharField(max_length=200)
    pinned = models.BooleanField(default=False)

    class Meta:
        ordering = ["-pinned", "id"]

    def __str__(self) -> str:
        return self.text
