"""Store URLs and engines: the SQLite default, PostgreSQL through psycopg 3, DuckDB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from riskengine.diagnostics import RiskEngineError

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "StoreError",
    "backend_name",
    "check_reachable",
    "connect",
    "database_errors",
    "permission_denied",
    "resolve_url",
]

#: Where the store lives when neither ``--db``/``--url`` nor ``RISKENGINE_DB`` says otherwise:
#: a SQLite file in the working folder, so a first run needs no configuration.
DEFAULT_URL = "sqlite:///riskengine.db"

#: The environment variable that overrides the default URL.
ENV_VAR = "RISKENGINE_DB"

#: File suffixes understood when a plain path is given instead of a URL.
_PATH_SCHEMES = {
    ".db": "sqlite",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".duckdb": "duckdb",
    ".ddb": "duckdb",
}

_DRIVERS = {
    # SQLAlchemy's default PostgreSQL driver is psycopg2; riskengine ships with psycopg 3.
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


#: The extra of pyproject.toml that installs each backend's driver.
_EXTRAS = {"postgresql": "postgres", "duckdb": "duckdb"}


class StoreError(RiskEngineError):
    """The store cannot be used as asked: a bad URL, an unreachable server, an old schema."""


def resolve_url(url: str | None = None) -> str:
    """The store URL to use: ``url``, else ``$RISKENGINE_DB``, else :data:`DEFAULT_URL`.

    A plain file path ending in ``.db``/``.sqlite``/``.sqlite3`` (SQLite) or ``.duckdb``/``.ddb``
    (DuckDB) is turned into a URL; ``postgresql://`` and ``postgres://`` select psycopg 3.
    """
    text = url if url else os.environ.get(ENV_VAR) or DEFAULT_URL
    if "://" not in text:
        suffix = os.path.splitext(text)[1].lower()
        scheme = _PATH_SCHEMES.get(suffix)
        if scheme is None:
            known = ", ".join(sorted(_PATH_SCHEMES))
            raise StoreError(
                f"not a database URL: {text!r} (write e.g. sqlite:///file.db, "
                f"postgresql://user@host/db, duckdb:///file.duckdb, or a path ending in {known})"
            )
        return f"{scheme}:///{text}"
    scheme, sep, rest = text.partition("://")
    return _DRIVERS.get(scheme, scheme) + sep + rest


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r} ({exc})") from None


def backend_name(url_or_engine: str | Engine | sa.Connection) -> str:
    """The backend's name: ``"sqlite"``, ``"postgresql"``, ``"duckdb"`` (or another dialect)."""
    if isinstance(url_or_engine, str):
        return _parse(resolve_url(url_or_engine)).get_backend_name()
    return url_or_engine.dialect.name


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def connect(url: str | None = None, **engine_options: Any) -> Engine:
    """An engine for the store at ``url`` (resolved with :func:`resolve_url`).

    SQLite files are opened in WAL mode with foreign keys on. Nothing is connected yet: the first
    use opens the connection, and :class:`StoreError` is raised there by :func:`check_reachable`.
    """
    parsed = _parse(resolve_url(url))
    backend = parsed.get_backend_name()
    options: dict[str, Any] = {}
    if backend == "postgresql":
        options["pool_pre_ping"] = True
    options.update(engine_options)
    try:
        engine = sa.create_engine(parsed, **options)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        extra = _EXTRAS.get(backend)
        if extra is not None:  # a backend we know, its driver not installed
            raise StoreError(
                f"cannot use the database {parsed!r}: its driver is not installed "
                f"(pip install 'riskengine[{extra}]'): {exc}"
            ) from None
        if backend != "sqlite":
            raise StoreError(
                f"cannot use the database {parsed!r}: {parsed.drivername!r} is not a kind of "
                "database riskengine knows (write sqlite:///file.db, postgresql://user@host/db "
                "or duckdb:///file.duckdb)"
            ) from None
        raise StoreError(f"cannot use the database {parsed!r}: {exc}") from None
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"cannot use the database {parsed!r}: {exc}") from None
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def check_reachable(engine: Engine) -> None:
    """Open and close one connection; a :class:`StoreError` says why it failed."""
    with database_errors(engine), engine.connect():
        pass


def permission_denied(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database refused ``exc``'s statement for lack of a privilege (SQLSTATE 42501,
    PostgreSQL's ``insufficient_privilege``)."""
    return getattr(exc.orig, "sqlstate", None) == "42501"


@contextmanager
def database_errors(engine: Engine | None = None) -> Iterator[None]:
    """Turn a failure to reach or use the database (or a refused read) into a
    :class:`StoreError` with its reason."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        refused = permission_denied(exc)
        if refused or exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError):
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            where = f" {engine.url!r}" if engine is not None else ""
            what = "permission denied on" if refused else "cannot use"
            raise StoreError(f"{what} the database{where}: {reason}") from None
        raise
