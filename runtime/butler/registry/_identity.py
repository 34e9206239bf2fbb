"""Dataset and repository identity: UUIDs, and the migration of version 1 registries.

Every stored dataset has a ``dataset_id``, a random UUID (text, canonical form) given
when it is recorded: by a put, an ingest, ``index``, an import. An overwrite records a
new one, so anything keyed by a dataset id never serves replaced content. Every
registry has a ``repository_id`` in its ``meta`` table, given when it is created.

Schema version 1 registries (made before ids existed) are migrated in place the first
time they are opened for writing: each dataset table gains the ``dataset_id`` column,
every row an id, the column its unique index; the registry gains its repository id and
schema version 2, all in one transaction under the DDL lock. Opened read-only, a
version 1 registry works as before, without ids.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from ._schema import dataset_id_index

__all__ = ["REPOSITORY_ID", "migrate_to_ids", "new_id"]

#: The ``meta`` key of the repository's UUID.
REPOSITORY_ID = "repository_id"


def new_id() -> str:
    """A new dataset or repository id: a random UUID, canonical text form."""
    return str(uuid.uuid4())


def migrate_to_ids(connection: sa.Connection) -> int:
    """Give a version 1 registry's dataset tables ids; how many rows were given one.

    Call inside a write transaction holding the DDL lock; the caller records the new
    schema version and repository id in the same transaction.
    """
    quote = connection.dialect.identifier_preparer.quote_identifier
    tables = [
        str(row[0]) for row in connection.execute(sa.text("SELECT table_name FROM dataset_type"))
    ]
    assigned = 0
    for table in sorted(tables):
        name = quote(table)
        connection.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN dataset_id TEXT"))
        ids = [row[0] for row in connection.execute(sa.text(f"SELECT id FROM {name}"))]
        if ids:
            connection.execute(
                sa.text(f"UPDATE {name} SET dataset_id = :dataset_id WHERE id = :id"),
                [{"dataset_id": new_id(), "id": row_id} for row_id in ids],
            )
        connection.execute(
            sa.text(f"CREATE UNIQUE INDEX {quote(dataset_id_index(table))} ON {name} (dataset_id)")
        )
        assigned += len(ids)
    return assigned
