"""Engines for the registry: SQLite (embedded, several processes) and PostgreSQL.

SQLite connections run in WAL mode with ``synchronous=NORMAL`` and a busy
timeout, and SQLAlchemy (not the ``sqlite3`` module) emits ``BEGIN``: write
transactions take the write lock at once (``BEGIN IMMEDIATE``), so two
processes never deadlock upgrading a read lock, and DDL is transactional.
Outside a transaction a connection is in autocommit mode, which the fast read
path relies on: every ``SELECT`` sees the latest committed data.

A read-only engine (``create_engine(url, read_only=True)``) cannot write even if
asked to: SQLite opens the file with ``mode=ro``, and every PostgreSQL session
starts with ``default_transaction_read_only = on``.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from ..errors import RegistryError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "WRITE_OPTION",
    "create_engine",
    "describe_url",
    "is_shared_memory",
    "lock_ddl",
]

#: How long a SQLite writer waits for another process's write lock, in milliseconds.
BUSY_TIMEOUT_MS = 60_000

#: Execution option that marks a SQLAlchemy connection as a writer (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "butler_registry_write"


def describe_url(url: str | sa.URL) -> str:
    """The URL as it may appear in a message: never with its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


def create_engine(url: str, *, read_only: bool = False) -> sa.Engine:
    """An engine for ``url`` configured for the registry; RegistryError if the URL is unusable.

    ``read_only``: the database refuses every write made through the engine.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as err:
        raise RegistryError(f"invalid registry URL {url!r}: {err}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if is_shared_memory(parsed):  # an in-memory repository's (datastore/memory.py)
            engine = sa.create_engine(
                parsed, poolclass=sa.pool.QueuePool, connect_args={"check_same_thread": False}
            )
            event.listen(engine, "connect", _sqlite_shared_memory)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
            raise RegistryError(
                f"registry URL {describe_url(parsed)!r} names an in-memory SQLite database; "
                "the registry needs a file, e.g. 'sqlite:////path/to/registry.sqlite3'"
            )
        if read_only:  # an SQLite URI filename: file:PATH?mode=ro
            uri = "file:" + urllib.parse.quote(os.path.abspath(database), safe="/")
            parsed = parsed.set(database=uri).update_query_dict({"mode": "ro", "uri": "true"})
        engine = sa.create_engine(parsed)
        event.listen(engine, "connect", _sqlite_read_only if read_only else _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            engine = sa.create_engine(parsed)
        except ImportError as err:
            raise RegistryError(
                f"registry URL {describe_url(parsed)!r} needs the PostgreSQL driver psycopg: "
                "pip install 'butler[postgres]'"
            ) from err
        if read_only:
            event.listen(engine, "connect", _postgres_read_only)
        return engine
    raise RegistryError(
        f"registry URL {describe_url(parsed)!r}: unsupported database {backend!r}; "
        "use 'sqlite:///FILE' or 'postgresql+psycopg://USER@HOST/DB'"
    )


def is_shared_memory(url: sa.URL) -> bool:
    """Whether ``url`` names an in-memory SQLite database shared by the process's connections
    (``sqlite:///file:NAME?mode=memory&cache=shared&uri=true``): the registry of an in-memory
    repository, kept alive by one connection its datastore holds open."""
    query = url.query
    return (
        url.get_backend_name() == "sqlite"
        and bool(url.database)
        and str(url.database).startswith("file:")
        and query.get("mode") == "memory"
        and query.get("cache") == "shared"
        and query.get("uri") == "true"
    )


def _sqlite_shared_memory(dbapi_connection: Any, connection_record: Any) -> None:
    # Readers take no table locks (shared-cache locks fail at once instead of waiting):
    # a read outside a transaction may see another thread's uncommitted write.
    _sqlite_setup(dbapi_connection, "PRAGMA read_uncommitted = 1")


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    _sqlite_setup(dbapi_connection, "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL")


def _sqlite_read_only(dbapi_connection: Any, connection_record: Any) -> None:
    # Setting the journal mode is a write: the file is already in WAL mode, as a writer left it.
    _sqlite_setup(dbapi_connection, "PRAGMA query_only = ON")


def _sqlite_setup(dbapi_connection: Any, *pragmas: str) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" event emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        for pragma in (*pragmas, "PRAGMA foreign_keys = ON"):
            cursor.execute(pragma)
    finally:
        cursor.close()


def _postgres_read_only(dbapi_connection: Any, connection_record: Any) -> None:
    # Every later transaction of the session is READ ONLY: PostgreSQL refuses any write.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    finally:
        dbapi_connection.autocommit = autocommit


def _sqlite_begin(connection: sa.Connection) -> None:
    writer = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def lock_ddl(connection: sa.Connection) -> None:
    """Serialize schema changes among concurrent creators, until the transaction ends.

    SQLite needs nothing: a write transaction already holds the database's only
    write lock. PostgreSQL's ``CREATE TABLE IF NOT EXISTS`` is not safe against a
    concurrent creator (it can fail on ``pg_type``'s unique index), so writers
    take a transaction-scoped advisory lock keyed by the current schema.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':butler-registry-ddl'))"
        )
