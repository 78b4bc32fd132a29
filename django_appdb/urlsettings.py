"""A declared database URL as a ``DATABASES`` entry, with a clear, masked error for every bad one.

Nothing here connects.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import dj_database_url

from django_appdb.dburls import is_file_engine, known_schemes, mask_url, parse_url
from django_appdb.discovery import CONNECTION_SETTINGS, POOLER_URL_OPTION, Declaration, check_pooler
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.nativepool import apply_pool, take_url_pool

__all__ = ["apply_pooler", "pooled_settings_for", "settings_for"]


# Line breaks, tabs, NUL...: never part of a URL someone meant to write.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_FIX_URL = (
    "Check the scheme://user:password@host:port/name form, and percent-encode special "
    "characters in the user and password (urllib.parse.quote)."
)


def _check_form(declaration: Declaration, url: str) -> None:
    """Refuse URLs that dj-database-url would parse into something nobody meant."""
    if _CONTROL_CHARACTER.search(url):
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"{mask_url(url)!r} contains a control character (a line break, tab or NUL).",
            "Remove it, or percent-encode it if it belongs to the password.",
        )
    scheme, colon, rest = url.partition(":")
    if not colon or not rest.startswith("//") or not scheme:
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"{mask_url(url)!r} is not a valid database URL: it does not start with scheme:// "
            "(postgres://, sqlite:///, mysql://, ...).",
            _FIX_URL,
        )
    try:
        parts = urlsplit(url)
    except ValueError:
        return  # dj-database-url reports it
    # With no '@' before the host, one in the query is the end of the
    # credentials too: ``postgres://u:12?service=x@h/db`` would reach host
    # ``u``, port 12.
    query_at = "@" in parts.query and "@" not in parts.netloc
    if parts.netloc and ("@" in parts.path or "@" in parts.fragment or query_at):
        # ``postgres://u:pa/ss@h/db``: the password would become the NAME.
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"{mask_url(url)!r} is not a valid database URL: it has an '@' after the host.",
            "Percent-encode '@', '/', '?' and '#' in the user and password (urllib.parse.quote(password, safe='')).",
        )


def settings_for(declaration: Declaration) -> dict[str, Any]:
    """Return the ``DATABASES`` entry ``declaration``'s URL and options give; raise ``AppDatabaseConfigError``."""
    return pooled_settings_for(declaration)[0]


def apply_pooler(settings_dict: dict[str, Any], pooler: str | None, declared: Collection[str] = ()) -> None:
    """Give ``settings_dict`` the Django settings ``pooler`` needs, keeping what the app declared itself.

    Behind PgBouncer in transaction mode a connection's server changes between
    transactions, so nothing may outlive one: no server-side cursors (Django's
    ``.iterator()`` would use them) and no server-side prepared statements.
    ``declared`` names the ``DATABASES`` keys the app wrote; those are kept,
    and ``django_appdb.W008`` reports the ones that conflict with the pooler.
    """
    if pooler != "pgbouncer-transaction":
        return
    if "DISABLE_SERVER_SIDE_CURSORS" not in declared:
        settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
    settings_dict.setdefault("OPTIONS", {}).setdefault("prepare_threshold", None)


def pooled_settings_for(declaration: Declaration) -> tuple[dict[str, Any], str | None]:
    """Return :func:`settings_for`'s entry and the pooler the declaration names (None for none).

    The URL's ``?appdb_pooler=`` wins over ``DATABASE_POOLER``; both naming
    different poolers is an error, never a silent choice.
    """
    url = declaration.url or ""
    _check_form(declaration, url)
    try:
        settings_dict = parse_url(url)
    except dj_database_url.UnknownSchemeError as exc:
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"{mask_url(url)!r} uses unknown scheme {exc.scheme + '://'!r}.",
            f"Use one of: {', '.join(known_schemes())}.",
        ) from None
    except Exception as exc:
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"{mask_url(url)!r} is not a valid database URL ({type(exc).__name__}).",
            _FIX_URL,
        ) from None
    engine = str(settings_dict.get("ENGINE") or "")
    if is_file_engine(engine) and str(settings_dict.get("NAME") or "").startswith("~"):
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"{mask_url(url)!r}: SQLite paths are not expanded, so Django would open a file below a directory "
            "named '~' in the working directory.",
            "Write the absolute path: sqlite:////home/me/db.sqlite3 (four slashes).",
        )
    if (
        not is_file_engine(engine)
        and not settings_dict.get("NAME")
        and not (settings_dict.get("OPTIONS") or {}).get("service")
    ):
        raise AppDatabaseConfigError(
            declaration.label,
            declaration.where,
            f"{mask_url(url)!r} names no database.",
            "Add the database name after the host (scheme://user:password@host:port/NAME), "
            "or a ?service= for PostgreSQL.",
        )
    in_url = (settings_dict.get("OPTIONS") or {}).pop(POOLER_URL_OPTION, None)
    where = f"{declaration.where} (?{POOLER_URL_OPTION}=)"
    pooler = check_pooler(declaration.label, where, in_url) if in_url is not None else None
    if pooler is not None and declaration.pooler is not None and declaration.pooler != pooler:
        raise AppDatabaseConfigError(
            declaration.label,
            where,
            f"the URL declares pooler {pooler!r} but DATABASE_POOLER is {declaration.pooler!r}.",
            "Declare the pooler once: remove one of them.",
        )
    pooler = pooler or declaration.pooler
    if pooler is not None and "postgresql" not in engine:
        raise AppDatabaseConfigError(
            declaration.label,
            where if in_url is not None else f"{declaration.where} (DATABASE_POOLER)",
            f"pooler {pooler!r} is a PostgreSQL pooler, but {mask_url(url)!r} is not a PostgreSQL database.",
            "Remove the pooler, or point the URL at PostgreSQL (through the pooler).",
        )
    from_url = take_url_pool(declaration, settings_dict.setdefault("OPTIONS", {}))
    options = declaration.options
    if "DATABASE_OPTIONS" in options:
        settings_dict["OPTIONS"] = {**settings_dict.get("OPTIONS", {}), **options["DATABASE_OPTIONS"]}
    if "DATABASE_TEST" in options:
        settings_dict["TEST"] = dict(options["DATABASE_TEST"])
    for key in CONNECTION_SETTINGS:
        if key in options:
            settings_dict[key] = options[key]
    apply_pool(declaration, settings_dict, from_url)
    declared = {key for key in CONNECTION_SETTINGS if key in options}
    apply_pooler(settings_dict, pooler, declared)
    if not settings_dict["OPTIONS"]:
        del settings_dict["OPTIONS"]
    return settings_dict, pooler
