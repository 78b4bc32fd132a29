"""The SQLAlchemy bridge: engines, sessions, tables and repositories for each app database."""
