"""The inventory app's database: a SQLite file beside the project.

django-appdb reads this module; ``INVENTORY_DATABASE_URL`` overrides the URL.
"""

from pathlib import Path

DATABASE_URL = f"sqlite:///{Path(__file__).resolve().parent.parent / 'inventory.sqlite3'}"

# Passed to Django as DATABASES["inventory"]["OPTIONS"].
DATABASE_OPTIONS = {"timeout": 20}
