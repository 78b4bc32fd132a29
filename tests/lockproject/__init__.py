"""A project for the direct-connection and migration-lock tests, run by ``manage.py``-style subprocesses.

``LOCKPROJECT_DEFAULT`` is the default SQLite file; ``LOCKAPP_POOLED_URL``
and ``LOCKAPP_DIRECT_URL`` are the ``lockapp`` database through PgBouncer and
directly (read by ``lockapp/database.py``).
"""
