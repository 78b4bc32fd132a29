"""Pin the public API: names may be added deliberately, never lost by accident."""

import django_appdb

EXPECTED = {
    "AppDatabase",
    "AppDatabaseConfigError",
    "AppDatabaseRouter",
    "app_databases",
    "discover_all_app_databases",
    "discover_app_database",
    "get_app_database",
    "mask_url",
    # Read replicas
    "replica_scope",
    "use_primary",
    # SQLAlchemy engines and sessions
    "EngineDoesNotExist",
    "aclose_all_engines",
    "close_all_engines",
    "get_app_session",
    "get_async_engine",
    "get_async_sessionmaker",
    "get_engine",
    "get_session",
    "get_sessionmaker",
    "get_sync_app_session",
    # SQLAlchemy tables and repositories
    "AppRepository",
    "AsyncAppRepository",
    "CrossDatabaseError",
    "MissingDriverError",
    "UnknownAppError",
    "UnsupportedFieldError",
    "metadata_for",
    "register_field_type",
    "table_for",
}


def test_all_is_pinned():
    assert set(django_appdb.__all__) == EXPECTED


def test_the_type_checking_imports_match_the_single_list():
    """Type checkers read the imports under TYPE_CHECKING: each must be the name and module _EXPORTS gives."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(django_appdb))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    imported = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module.startswith("django_appdb."), ast.dump(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name} must be re-exported as itself"
            imported[alias.name] = node.module.removeprefix("django_appdb.")
    assert imported == django_appdb._EXPORTS
    assert django_appdb.__all__ == sorted(django_appdb._EXPORTS)


def test_every_name_in_all_resolves():
    for name in django_appdb.__all__:
        assert getattr(django_appdb, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    try:
        django_appdb.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_py_typed_is_shipped():
    from importlib.resources import files

    assert files("django_appdb").joinpath("py.typed").is_file()
