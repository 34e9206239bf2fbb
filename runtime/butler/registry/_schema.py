"""The registry's tables: what they hold and how their names are chosen.

Schema version 2 (version 1 lacked ``dataset_id`` and ``repository_id``; a version 1
registry is migrated in place when opened for writing, see ``_identity.py``):

``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``schema_version``, ``repository_id`` (a UUID) and free key/value metadata
    (instrument, versions).
``dataset_type(name TEXT PRIMARY KEY, table_name TEXT UNIQUE, keys TEXT, created TIMESTAMP)``
    One row per dataset type; ``keys`` is JSON ``[{"name", "type", "column"}, ...]`` in
    column order, so a registry is readable without the mapper module.
``ds_<name>`` (one per dataset type)
    ``id`` (autoincrement primary key), one typed column per data ID key,
    ``path`` (relative POSIX path), ``run`` (nullable), ``created`` (UTC, naive),
    ``dataset_id`` (the dataset's UUID, new for every put, overwrite included; unique),
    ``file_size`` and ``file_checksum`` (nullable: the file's size in bytes and checksum,
    ``"crc32c:..."``, recorded when it was written; NULL in rows written before they were
    kept, see ``_checksum_columns.py``: added without a change of schema version);
    ``UNIQUE`` over the keys (that index also serves queries on the first key)
    plus one index per other key.

A later schema version adds calibration certification as a separate table
referencing ``(dataset_type, id)`` with ``valid_from/valid_to`` and
``recorded_from/recorded_to``; the dataset tables do not change for it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import RegistryError
from ..spec import KEY_TYPES

__all__ = [
    "SCHEMA_VERSION",
    "DatasetTypeDef",
    "build_table",
    "dataset_type_table",
    "meta_table",
    "short_name",
    "static_metadata",
    "utcnow",
]

#: The registry schema version this code writes and reads.
SCHEMA_VERSION = 2

_SQL_TYPES: dict[str, type[sa.types.TypeEngine[Any]]] = {
    "int": sa.BigInteger,
    "str": sa.Text,
    "float": sa.Double,
    "bool": sa.Boolean,
    "date": sa.Date,
    "datetime": sa.DateTime,
}
assert tuple(_SQL_TYPES) == KEY_TYPES

#: Column names of every dataset table that are not data ID keys.
RESERVED_COLUMNS = frozenset(
    {"id", "path", "run", "created", "_singleton", "dataset_id", "file_size", "file_checksum"}
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_NAME = 48  # leaves room for prefixes and a hash within PostgreSQL's 63 bytes


def utcnow() -> datetime.datetime:
    """The current UTC time, naive, as every ``created`` column stores it."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]


def _sanitize(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def _short(name: str, original: str) -> str:
    """``name`` if it fits, else a truncated form made unique by a hash of ``original``."""
    return name if len(name) <= 63 else f"{name[:54]}_{_digest(original)}"


def short_name(name: str, original: str) -> str:
    """A table or index name: ``name`` if it fits PostgreSQL's 63 bytes, else cut and made
    unique by a hash of ``original``."""
    return _short(name, original)


def table_name_for(dataset_type: str) -> str:
    """The table of a dataset type: ``ds_<name>``, plus a hash if the name had to change."""
    base = _sanitize(dataset_type)
    if base == dataset_type and len(base) <= _MAX_NAME:
        return f"ds_{base}"
    return f"ds_{base[:_MAX_NAME]}_{_digest(dataset_type)}"


def _column_names(keys: tuple[str, ...]) -> tuple[str, ...]:
    """One column per key: the key itself unless that would clash or is not a plain name."""
    columns: list[str] = []
    used: set[str] = set()
    for key in keys:
        column = key
        if (
            not _IDENTIFIER.match(key)
            or len(key) > _MAX_NAME
            or key.lower() in RESERVED_COLUMNS
            or key.lower() in used  # SQLite column names ignore case
        ):
            column = f"k_{_sanitize(key)[:_MAX_NAME]}_{_digest(key)}"
        columns.append(column)
        used.add(column.lower())
    return tuple(columns)


@dataclass(frozen=True, slots=True)
class DatasetTypeDef:
    """A dataset type as the registry stores it: keys, their types and where they live."""

    name: str
    table_name: str
    keys: tuple[str, ...]
    types: tuple[str, ...]
    columns: tuple[str, ...]

    @classmethod
    def define(cls, name: str, keys: Mapping[str, str]) -> DatasetTypeDef:
        """A new definition; RegistryError if the name, a key or a type is not valid."""
        if not isinstance(name, str) or not name.strip():
            raise RegistryError(f"dataset type name must be a non-empty string, not {name!r}")
        key_names = tuple(keys)
        for key in key_names:
            if not isinstance(key, str) or not key:
                raise RegistryError(
                    f"dataset type {name!r}: key names must be non-empty strings, not {key!r}"
                )
        types = tuple(keys[key] for key in key_names)
        for key, type_name in zip(key_names, types, strict=True):
            if type_name not in _SQL_TYPES:
                raise RegistryError(
                    f"dataset type {name!r}: key {key!r} has unknown type {type_name!r}; "
                    f"expected one of {', '.join(KEY_TYPES)}"
                )
        return cls(name, table_name_for(name), key_names, types, _column_names(key_names))

    @classmethod
    def from_row(cls, name: str, table_name: str, keys_json: str) -> DatasetTypeDef:
        """The definition stored in a ``dataset_type`` row."""
        try:
            entries = json.loads(keys_json)
            keys = tuple(str(entry["name"]) for entry in entries)
            types = tuple(str(entry["type"]) for entry in entries)
            columns = tuple(str(entry["column"]) for entry in entries)
        except (ValueError, TypeError, KeyError) as err:
            raise RegistryError(
                f"dataset type {name!r}: corrupt key definition in the registry: {keys_json!r}"
            ) from err
        unknown = [t for t in types if t not in _SQL_TYPES]
        if unknown:
            raise RegistryError(
                f"dataset type {name!r} uses key type(s) {', '.join(map(repr, unknown))} "
                "that this version of butler does not know; upgrade butler"
            )
        return cls(name, table_name, keys, types, columns)

    def keys_json(self) -> str:
        """The ``keys`` column of this definition's ``dataset_type`` row."""
        return json.dumps(
            [
                {"name": k, "type": t, "column": c}
                for k, t, c in zip(self.keys, self.types, self.columns, strict=True)
            ]
        )

    @property
    def key_types(self) -> dict[str, str]:
        """Key name → key type name, in column order."""
        return dict(zip(self.keys, self.types, strict=True))

    def same_as(self, keys: Mapping[str, str]) -> bool:
        """Whether ``keys`` defines the same key types (order does not matter)."""
        return dict(keys) == self.key_types

    def describe(self) -> str:
        """``name(key: type, ...)`` for messages."""
        inner = ", ".join(f"{k}: {t}" for k, t in zip(self.keys, self.types, strict=True))
        return f"{self.name}({inner})"


def static_metadata() -> tuple[sa.MetaData, sa.Table, sa.Table]:
    """A fresh MetaData holding the ``meta`` and ``dataset_type`` tables."""
    metadata = sa.MetaData()
    return metadata, meta_table(metadata), dataset_type_table(metadata)


def meta_table(metadata: sa.MetaData) -> sa.Table:
    """``meta``: key/value pairs, ``schema_version`` among them."""
    return sa.Table(
        "meta",
        metadata,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def dataset_type_table(metadata: sa.MetaData) -> sa.Table:
    """``dataset_type``: one row per dataset type, with its keys and table name."""
    return sa.Table(
        "dataset_type",
        metadata,
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("table_name", sa.Text, nullable=False, unique=True),
        sa.Column("keys", sa.Text, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )


def build_table(definition: DatasetTypeDef, metadata: sa.MetaData) -> sa.Table:
    """The SQLAlchemy table of one dataset type (not created here)."""
    name = definition.table_name
    key_columns = [
        sa.Column(column, _SQL_TYPES[type_name](), nullable=False)
        for column, type_name in zip(definition.columns, definition.types, strict=True)
    ]
    unique = list(definition.columns)
    if not key_columns:  # a dataset type with no keys holds at most one dataset
        key_columns = [sa.Column("_singleton", sa.SmallInteger, nullable=False)]
        unique = ["_singleton"]
    indexes = [
        sa.Index(_short(f"ix_{name}_{column}", f"{name}.{column}"), column)
        for column in definition.columns[1:]
    ]
    return sa.Table(
        name,
        metadata,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        *key_columns,
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("run", sa.Text, nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        # nullable only because a migrated version 1 table gained it by ALTER TABLE
        sa.Column("dataset_id", sa.Text, nullable=True),
        sa.Column("file_size", sa.BigInteger, nullable=True),
        sa.Column("file_checksum", sa.Text, nullable=True),
        sa.UniqueConstraint(*unique, name=_short(f"uq_{name}", name)),
        sa.Index(dataset_id_index(name), "dataset_id", unique=True),
        *indexes,
    )


def dataset_id_index(table_name: str) -> str:
    """The name of the unique index on a dataset table's ``dataset_id``."""
    return _short(f"uq_{table_name}_dataset_id", f"{table_name}.dataset_id")
