"""The size and checksum columns of dataset tables, added to registries made without them.

Every dataset table has ``file_size`` (BIGINT) and ``file_checksum`` (TEXT, e.g.
``"crc32c:0a1b2c3d"``), both nullable: a row written before they existed, or by a path
that could not know them, has NULL there, which ``verify`` reports as "no checksum
recorded". Registries created before these columns (issue 12) are upgraded when a
writeable Butler opens them: :func:`tables_without_checksums` finds the tables that lack
them (one query) and :func:`add_checksum_columns` adds them. The change is additive
(``ALTER TABLE ... ADD COLUMN``, no rewrite of rows) and idempotent, and runs under the
registry's DDL lock, so concurrent openers add each column once. The schema version does
not change: an older Butler names its columns explicitly and leaves the new ones NULL.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["CHECKSUM_COLUMNS", "add_checksum_columns", "tables_without_checksums"]

#: The columns and their SQL types (the same on SQLite and PostgreSQL).
CHECKSUM_COLUMNS = (("file_size", "BIGINT"), ("file_checksum", "TEXT"))

_HAS_COLUMN = {
    "sqlite": "SELECT 1 FROM pragma_table_info({table}) WHERE name = {column}",
    "postgresql": (
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(quote_ident({table})) "
        "AND attname = {column} AND NOT attisdropped"
    ),
}


def tables_without_checksums(connection: sa.Connection) -> frozenset[str]:
    """The dataset tables that lack a checksum column."""
    has_column = _HAS_COLUMN[connection.dialect.name]
    missing = " OR ".join(
        f"NOT EXISTS ({has_column.format(table='d.table_name', column=repr(column))})"
        for column, _ in CHECKSUM_COLUMNS
    )
    rows = connection.execute(sa.text(f"SELECT d.table_name FROM dataset_type d WHERE {missing}"))
    return frozenset(str(row[0]) for row in rows)


def add_checksum_columns(connection: sa.Connection) -> int:
    """Add the missing checksum columns to every dataset table; how many were added.

    Call inside a write transaction holding the DDL lock (``_engine.lock_ddl``).
    """
    quote = connection.dialect.identifier_preparer.quote_identifier
    has_column = sa.text(
        _HAS_COLUMN[connection.dialect.name].format(table=":table", column=":column")
    )
    added = 0
    for table in sorted(tables_without_checksums(connection)):
        for column, sql_type in CHECKSUM_COLUMNS:
            if connection.execute(has_column, {"table": table, "column": column}).first():
                continue
            connection.execute(
                sa.text(f"ALTER TABLE {quote(table)} ADD COLUMN {column} {sql_type}")
            )
            added += 1
    return added
