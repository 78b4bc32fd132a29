"""Settings of the lock project (see the package docstring)."""

import os

SECRET_KEY = "lockproject-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_appdb", "tests.lockproject.lockapp"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["LOCKPROJECT_DEFAULT"]}}
