"""Committed file operations: the registry half of the Butler's recovery journal.

``butler_op(token TEXT PRIMARY KEY)`` holds one row per overwrite, remove or
transaction whose registry commit made it real. The Butler sets aside the files
such an operation replaces or removes under the operation's token (see
``butler.recovery``) and records the token in the same transaction as the
rows, so after a crash the token alone says which way to finish the files:
committed (delete what was set aside) or not (put it back). The table is
created on the first use, with ``IF NOT EXISTS``, so existing registries get it
without a schema version change; a registry without it has committed no token.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

__all__ = ["OPERATIONS_TABLE", "create_operations_table", "operations_table"]

OPERATIONS_TABLE = "butler_op"


def operations_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(OPERATIONS_TABLE, metadata, sa.Column("token", sa.String(64), primary_key=True))


def create_operations_table(conn: sa.Connection) -> None:
    """Create the table if it does not exist (inside a write transaction)."""
    conn.execute(CreateTable(operations_table(sa.MetaData()), if_not_exists=True))


def chunks(tokens: Iterable[str], size: int = 500) -> Iterable[list[str]]:
    """``tokens`` in lists of at most ``size`` (bound-parameter limits)."""
    chunk: list[str] = []
    for token in tokens:
        chunk.append(token)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
