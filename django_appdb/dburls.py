"""Database URL helpers: parsing (through dj-database-url), masking and identity.

Nothing here opens a connection.
"""

from __future__ import annotations

import html
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import quote, quote_plus, unquote, urlsplit

import dj_database_url

MASK = "********"

# Query-string keys whose values are secrets (``?sslpassword=...``).
# ``pass`` covers password and sslpassword; ``pwd`` MySQL's pwd and sslpwd.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
# A value runs to the next ``&name=`` (or the end), not to the next ``&`` or
# ``#``: a password typed unencoded may hold either.
_SECRET_QUERY = re.compile(r"(?P<key>[?&;][^=&;#]*=)(?P<value>.*?)(?=[&;][A-Za-z_][\w.\-]*=|$)", re.DOTALL)
# A URL embedded in free text: ``scheme://user:password@``.  Greedy up to the
# last ``@`` on the same token so an unquoted ``@`` or ``/`` in a password
# cannot leave part of it visible.
_URL_IN_TEXT = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@'\"]*:)(?P<password>[^\s'\"]*)@")

# Django backends whose databases are files rather than servers.
_FILE_ENGINES = ("sqlite3", "spatialite")
_DEFAULT_PORTS = {"postgresql": "5432", "postgis": "5432", "mysql": "3306", "oracle": "1521"}

#: ``OPTIONS`` that choose which server, database or schema a connection
#: reaches, by the last part of ENGINE. Two entries differing in one of them
#: are two databases. (``options`` is libpq's ``-c search_path=...``, which
#: dj-database-url also makes of ``?currentSchema=``.)
SELECTING_OPTIONS: dict[str, tuple[str, ...]] = {
    "postgresql": ("service", "host", "hostaddr", "port", "dbname", "options"),
    "postgis": ("service", "host", "hostaddr", "port", "dbname", "options"),
    "mysql": ("unix_socket", "host", "port", "db", "database", "read_default_file", "read_default_group"),
}


def known_schemes() -> list[str]:
    """Return the URL schemes dj-database-url can parse, sorted."""
    return sorted(dj_database_url.ENGINE_SCHEMES)


def _mask_query(query: str) -> str:
    def repl(match: re.Match[str]) -> str:
        if _SECRET_KEY.search(match.group("key")):
            return f"{match.group('key')}{MASK}"
        return match.group(0)

    return _SECRET_QUERY.sub(repl, query)


def mask_text(text: str) -> str:
    """Return ``text`` with the password of every embedded URL masked."""
    return _URL_IN_TEXT.sub(lambda m: f"{m.group('head')}{MASK}@", text)


_SCHEME_SLASHES = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def _secret_query_spans(url: str, start: int) -> list[tuple[int, int]]:
    return [
        match.span("value")
        for match in _SECRET_QUERY.finditer(url, start)
        if _SECRET_KEY.search(match.group("key")) and match.group("value")
    ]


def _mask_spans(url: str, spans: list[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    pieces, position = [], 0
    for begin, end in merged:
        pieces += [url[position:begin], MASK]
        position = end
    pieces.append(url[position:])
    return "".join(pieces)


def _mask_loose(url: str) -> str:
    """Mask a URL that does not parse cleanly, under every reading of it.

    An unencoded ``@ / ? #`` in a password makes a URL ambiguous, so both
    readings are masked: everything from the first ``:`` after ``scheme://``
    (or from the first ``:`` at all, without ``//``) to the last ``@``, and
    every secret query value. Over-masking is the price of never leaking.
    """
    anchored = _SCHEME_SLASHES.match(url)
    start = anchored.end() if anchored else 0
    spans = _secret_query_spans(url, start)
    at = url.rfind("@")
    colon = url.find(":", start)
    if 0 <= colon < at:
        spans.append((colon + 1, at))
    return _mask_spans(url, spans)


def mask_url(url: str) -> str:
    """Return ``url`` with its password (and secret query values) masked.

    A URL that does not parse cleanly (an unencoded ``@ / ? #`` in the
    password, say) is masked generously: everything between ``user:`` and
    the last ``@`` is hidden, and so is every secret query value, whichever
    reading of the URL is right.
    """
    anchored = _SCHEME_SLASHES.match(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return _mask_loose(url)
    netloc = parts.netloc
    start = anchored.end() if anchored else -1
    # An ``@`` outside the netloc means the netloc was cut short by an
    # unquoted character in the password: mask greedily instead.
    if start < 0 or url.count("@") != netloc.count("@") or url[start : start + len(netloc)] != netloc:
        return _mask_loose(url)
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostinfo}"
    return url[:start] + netloc + _mask_query(url[start + len(parts.netloc) :])


def is_secret_key(name: object) -> bool:
    """Return whether an ``OPTIONS`` key or URL query name holds a secret (``password``, ``sslpwd``...)."""
    return _SECRET_KEY.search(str(name)) is not None


def settings_secrets(settings_dict: Mapping[str, Any]) -> set[str]:
    """Return the secrets of a ``DATABASES`` entry: ``PASSWORD`` and secret ``OPTIONS`` (``sslpassword``...)."""
    found = set()
    if settings_dict.get("PASSWORD"):
        found.add(str(settings_dict["PASSWORD"]))
    options = settings_dict.get("OPTIONS")
    if isinstance(options, Mapping):
        found.update(
            str(value) for key, value in options.items() if is_secret_key(key) and isinstance(value, str) and value
        )
    return found


def _repr_body(text: str, quote_mark: str) -> str:
    # What repr() writes between its quotes when it chose ``quote_mark``.
    escaped = {"\\": "\\\\", quote_mark: "\\" + quote_mark, "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(escaped.get(char, char if char.isprintable() else repr(char)[1:-1]) for char in text)


def secret_forms(secret: str) -> set[str]:
    """Return ``secret`` as it may appear in text: raw, and escaped every way a report or driver writes it.

    ``repr()`` with either quote, JSON, libpq's conninfo quoting (``\\`` and
    ``\'``), percent-encoding (``quote`` and ``quote_plus``) and HTML
    escaping. Masking each form makes masking independent of how the text
    holding the secret was produced.
    """
    forms = {
        secret,
        # Inside single and double quotes: repr() picks either, by the text around the secret.
        _repr_body(secret, "'"),
        _repr_body(secret, '"'),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        unquote(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    forms |= {html.escape(form) for form in list(forms)}
    return {form for form in forms if form}


def mask_settings(settings_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a Django database settings dict with secrets masked."""
    masked = dict(settings_dict)
    if masked.get("PASSWORD"):
        masked["PASSWORD"] = MASK
    options = masked.get("OPTIONS")
    if isinstance(options, Mapping):
        masked["OPTIONS"] = {key: (MASK if is_secret_key(key) and value else value) for key, value in options.items()}
    return masked


def parse_url(url: str) -> dict[str, Any]:
    """Parse ``url`` into a Django ``DATABASES`` entry with dj-database-url.

    Raise dj-database-url's ``UnknownSchemeError`` or ``ParseError`` (both
    ``ValueError``) on bad input; callers turn those into configuration errors.
    """
    _check_bracketed_host(url)
    return dict(dj_database_url.parse(url))


_BRACKETED = re.compile(r"\[([^\]]*)\](?::[^:]*)?")


def _check_bracketed_host(url: str) -> None:
    # Python 3.11.4+ refuses a bracketed host that is not an IPv6 address;
    # 3.10 reads "[zz]" as the host name "zz". Refuse it on every Python.
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return  # dj-database-url reports it
    host = netloc.rpartition("@")[2]
    if "[" not in host and "]" not in host:
        return
    match = _BRACKETED.fullmatch(host)
    try:
        if match is None:
            raise ValueError(host)
        ipaddress.IPv6Address(match.group(1))
    except ValueError:
        raise dj_database_url.ParseError() from None


def _engine_kind(engine: str) -> str:
    return engine.rsplit(".", 1)[-1]


def is_file_engine(engine: str) -> bool:
    """Return whether the Django ENGINE stores its database in a local file."""
    return _engine_kind(engine) in _FILE_ENGINES


# Vendors of Django's built-in backends, by the last part of their ENGINE, for
# when the backend cannot be imported (its driver is not installed).
_VENDORS = {
    "sqlite3": "sqlite",
    "spatialite": "sqlite",
    "postgresql": "postgresql",
    "postgresql_psycopg2": "postgresql",
    "postgis": "postgresql",
    "mysql": "mysql",
    "oracle": "oracle",
}

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1", "[::1]", "0:0:0:0:0:0:0:1"}


def builtin_vendor(engine: str) -> str | None:
    """Return the vendor of one of Django's own backends from its ENGINE alone, else None."""
    if not engine.startswith("django."):
        return None
    return _VENDORS.get(engine.rsplit(".", 1)[-1])


def sqlite_path(settings_dict: Mapping[str, Any]) -> Path | None:
    """Return the file of a SQLite database, or None for other engines and in-memory databases."""
    name = str(settings_dict.get("NAME") or "")
    if not is_file_engine(str(settings_dict.get("ENGINE") or "")):
        return None
    if not name or name == ":memory:" or "mode=memory" in name:
        return None
    if name.startswith("file:"):
        name = name[len("file:") :].split("?", 1)[0]
    return Path(name).expanduser().resolve()


def selecting_options(settings_dict: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Return the ``OPTIONS`` of a ``DATABASES`` entry that choose its server, database or schema."""
    options = settings_dict.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        return ()
    keys = SELECTING_OPTIONS.get(_engine_kind(str(settings_dict.get("ENGINE") or "")), ())
    return tuple((key, str(options[key])) for key in keys if options.get(key) not in (None, ""))


@overload
def identity(settings_dict: Mapping[str, Any], *, physical: Literal[False] = False) -> tuple[Any, ...]: ...


@overload
def identity(settings_dict: Mapping[str, Any], *, physical: bool) -> tuple[Any, ...] | None: ...


def identity(settings_dict: Mapping[str, Any], *, physical: bool = False) -> tuple[Any, ...] | None:
    """Return a key that is equal for two ``DATABASES`` entries naming the same database.

    The one rule for "the same database", used for routing, for
    ``django_appdb.W003`` and by repositories. It holds the host, port and
    name, and every ``OPTIONS`` entry that chooses the server, database or
    schema (:data:`SELECTING_OPTIONS`: a PostgreSQL ``service``, ``options``
    with a ``search_path``...). The password and the other options never
    count: they do not change which database is meant.

    By default (routing: may two declarations share one Django connection?)
    the ENGINE and the user count too, and SQLite paths are made absolute.
    With ``physical=True`` (do two connections reach the same data?) the
    user does not count, PostGIS is PostgreSQL and SpatiaLite SQLite, local
    host names (``localhost``, ``127.0.0.1``, ``::1``, a socket directory)
    are one host, SQLite paths are resolved through symbolic links, and a
    private in-memory SQLite database, which nothing else can reach, gives
    None.
    """
    engine = str(settings_dict.get("ENGINE") or "")
    name = str(settings_dict.get("NAME") or "")
    family = (builtin_vendor(engine) or engine) if physical else engine
    if is_file_engine(engine):
        if not physical:
            if name and name != ":memory:" and not name.startswith("file:"):
                name = os.path.abspath(name)
            return (engine, name)
        if "mode=memory" in name and "cache=shared" in name:
            # A named, shared in-memory database: one per process and name.
            return (family, name)
        path = sqlite_path(settings_dict)
        return None if path is None else (family, str(path))
    port = str(settings_dict.get("PORT") or _DEFAULT_PORTS.get(_engine_kind(engine), ""))
    host = str(settings_dict.get("HOST") or "").strip().lower()
    if not physical:
        return (engine, host, port, name, str(settings_dict.get("USER") or ""), selecting_options(settings_dict))
    if host in _LOCAL_HOSTS or host.startswith("/"):
        host = "localhost"
    return (family, host, port, name, selecting_options(settings_dict))


def settings_to_url(settings_dict: Mapping[str, Any]) -> str:
    """Return a dj-database-url style URL for a Django ``DATABASES`` entry.

    ``OPTIONS`` are not rendered. The password is included; mask it with
    :func:`mask_url` before showing it. :func:`parse_url` gives back the
    user, password, host, port and name.
    """
    engine = str(settings_dict.get("ENGINE") or "")
    scheme = None
    for candidate, registered in dj_database_url.ENGINE_SCHEMES.items():
        if registered.backend == engine:
            scheme = candidate
            break
    if scheme is None:
        scheme = _engine_kind(engine) or "unknown"
    # Rendered here rather than by SQLAlchemy's URL: SQLAlchemy 2.0 leaves the
    # database name unencoded, so a ``?`` or ``#`` in it (SQLite's
    # ``file:name?mode=memory&cache=shared``) starts a query or fragment and
    # the name comes back cut short. The quoting is SQLAlchemy 2.1's.
    user = str(settings_dict.get("USER") or "")
    password = str(settings_dict.get("PASSWORD") or "")
    host = str(settings_dict.get("HOST") or "")
    port = settings_dict.get("PORT")
    name = str(settings_dict.get("NAME") or "")
    url = f"{scheme}://"
    if user or password:
        url += quote(user, safe=" +")
        if password:
            url += ":" + quote(password, safe=" +")
        url += "@"
    if ":" in host:
        url += f"[{host}]"
    else:
        # Encoded so that a socket directory (``/var/run/postgresql``) stays
        # the host; a host name has nothing to encode.
        url += quote(host, safe="")
    if port not in (None, ""):
        url += f":{int(port)}"
    if name:
        url += "/" + quote(name, safe=" +/")
    return url
