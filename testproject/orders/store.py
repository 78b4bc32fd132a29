"""SQLAlchemy objects made at import time, as application code often makes them.

``Session`` is a factory from django-appdb: every session it makes is bound
to the orders alias's engine at that moment, so it follows Django to the test
database. ``ENGINE`` is an engine kept from import time: it stays bound to
the database it was built for, so while a test run is active it refuses to
connect rather than reach the real orders database.
"""

from django_appdb import get_engine, get_sessionmaker

Session = get_sessionmaker("orders")
ENGINE = get_engine("orders")
