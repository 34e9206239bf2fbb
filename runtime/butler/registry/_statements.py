"""Per-dataset-type statements: checked values in, plain dicts out, SQL built once.

The hot statements (``find``, and the one-row ``insert`` and ``replace`` of a
put) are hand-written SQL run on a raw DBAPI cursor: they are called millions
of times, and SQLAlchemy's per-call overhead would dominate them. Bulk writes,
deletes and DDL go through SQLAlchemy Core. The values bound to the raw SQL go
through the same SQLAlchemy type processors that Core uses, so both agree on
how a date, a datetime or a bool is stored on every database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from ..dataid import format_data_id
from ..errors import RegistryError
from ..spec import Value, coerce_value, is_unicode_text
from ._schema import DatasetTypeDef, build_table

__all__ = ["DatasetTable", "dialect_insert"]

_Processor = Callable[[Any], Any] | None


_DESCRIPTIONS = {
    "int": "an int",
    "str": "a str",
    "float": "a float (or int)",
    "bool": "a bool",
    "date": "a date (not a datetime)",
    "datetime": "a naive datetime",
}


class DatasetTable:
    """One dataset type's table on one database: its statements and value conversions."""

    def __init__(
        self,
        definition: DatasetTypeDef,
        table: sa.Table,
        dialect: sa.Dialect,
        *,
        ids: bool = True,
        checksums: bool = True,
    ) -> None:
        """``ids=False``: a version 1 table opened read-only, without ``dataset_id``;
        ``checksums=False``: a table made before the size and checksum columns."""
        self.definition = definition
        self.ids = ids
        # Whether the table has the size and checksum columns (see _checksum_columns.py).
        self.checksums = checksums and not {"file_size", "file_checksum"} & set(definition.columns)
        self.name = definition.name
        self.keys = definition.keys
        self.table = table
        self._types = dict(zip(definition.keys, definition.types, strict=True))
        self._columns = dict(zip(definition.keys, definition.columns, strict=True))
        native = dialect.name != "sqlite"  # psycopg adapts dates, datetimes and bools itself
        self._bind: dict[str, _Processor] = {}
        self._result: list[_Processor] = []
        for key in self.keys:
            impl = table.c[self._columns[key]].type.dialect_impl(dialect)
            self._bind[key] = None if native else impl.bind_processor(dialect)
            self._result.append(None if native else impl.result_processor(dialect, None))
        self._plain_results = not any(self._result)
        self._binds = [self._bind[key] for key in self.keys]
        self._plain_binds = not any(self._binds)
        preparer = dialect.identifier_preparer
        self._placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        self._quoted = {key: preparer.quote_identifier(self._columns[key]) for key in self.keys}
        self._from = preparer.quote_identifier(definition.table_name)
        self._order = ", ".join(self._quoted[key] for key in self.keys)
        self.find_sql = f"SELECT path FROM {self._from}{self._where(self.keys)}"
        id_column = "dataset_id" if ids else "NULL"
        self.find_ref_sql = (
            f"SELECT path, {id_column}, run FROM {self._from}{self._where(self.keys)}"
        )
        size = "file_size" if self.checksums else "NULL"
        by_id = f"{', '.join([*(self._quoted[k] for k in self.keys), 'path', 'run', size])}"
        self.by_id_sql = (
            f"SELECT {by_id} FROM {self._from} WHERE dataset_id = {self._placeholder}"
            if ids
            else ""
        )
        self._stored = "path, file_size, file_checksum" if self.checksums else "path, NULL, NULL"
        self.stored_sql = f"SELECT {self._stored} FROM {self._from}{self._where(self.keys)}"
        # a get's lookups: the file and the dataset's id (the key of a remote read cache)
        self.stored_ref_sql = (
            f"SELECT {self._stored}, {id_column} FROM {self._from}{self._where(self.keys)}"
        )
        self.stored_by_id_sql = (
            f"SELECT {self._stored} FROM {self._from} WHERE dataset_id = {self._placeholder}"
            if ids
            else ""
        )
        self.record_sql = (
            f"SELECT path, {id_column}, run, created, {self._stored.partition(', ')[2]} "
            f"FROM {self._from}{self._where(self.keys)}"
        )
        self._where_cache: dict[tuple[str, ...], str] = {}
        self.insert_sql, self.replace_sql = self._insert_sql()
        created = table.c.created.type.dialect_impl(dialect)
        self._bind_created: _Processor = None if native else created.bind_processor(dialect)
        self._created_result: _Processor = (
            None if native else created.result_processor(dialect, None)
        )

    @classmethod
    def build(
        cls,
        definition: DatasetTypeDef,
        dialect: sa.Dialect,
        *,
        ids: bool = True,
        checksums: bool = True,
    ) -> DatasetTable:
        table = build_table(definition, sa.MetaData())
        return cls(definition, table, dialect, ids=ids, checksums=checksums)

    # ---- values in -------------------------------------------------------------------------

    def find_params(self, data_id: Mapping[str, Value]) -> list[Any]:
        """Bound values of ``find_sql``; raises (anything) if ``data_id`` does not fit exactly."""
        if len(data_id) != len(self.keys):
            raise KeyError("wrong number of keys")
        if self._plain_binds:
            return [data_id[key] for key in self.keys]
        return [
            data_id[key] if proc is None else proc(data_id[key])
            for key, proc in zip(self.keys, self._binds, strict=True)
        ]

    def check_complete(self, data_id: Mapping[str, object]) -> dict[str, Value]:
        """``data_id`` with every value checked; RegistryError unless it has exactly the keys."""
        if not isinstance(data_id, Mapping):
            raise RegistryError(
                f"data ID for dataset type {self.name!r} must be a mapping, not {data_id!r}"
            )
        missing = [key for key in self.keys if key not in data_id]
        if missing:
            raise RegistryError(
                f"data ID {format_data_id(data_id)} for dataset type {self.name!r} is missing "
                f"key(s) {', '.join(missing)}; its keys are {self._key_list()}"
            )
        checked = self.check_partial(data_id)
        return {key: checked[key] for key in self.keys}

    def check_partial(self, partial: Mapping[str, object]) -> dict[str, Value]:
        """``partial`` with every value checked; RegistryError for unknown keys or bad values."""
        if not isinstance(partial, Mapping):
            raise RegistryError(
                f"data ID for dataset type {self.name!r} must be a mapping, not {partial!r}"
            )
        checked: dict[str, Value] = {}
        for key, value in partial.items():
            type_name = self._types.get(key)
            if type_name is None:
                raise RegistryError(
                    f"unknown key {key!r} in data ID {format_data_id(partial)} for dataset type "
                    f"{self.name!r}; its keys are {self._key_list()}"
                )
            coerced = coerce_value(type_name, value)
            if coerced is None:
                what = _DESCRIPTIONS[type_name]
                raise RegistryError(
                    f"key {key!r} of dataset type {self.name!r} must be {what}, "
                    f"not {value!r} ({type(value).__name__})"
                )
            if isinstance(coerced, str) and not is_unicode_text(coerced):
                raise RegistryError(
                    f"key {key!r} of dataset type {self.name!r}: {value!r} holds a lone "
                    "surrogate, which no database can store; values must be valid Unicode text"
                )
            checked[key] = coerced
        return checked

    def row(
        self,
        data_id: Mapping[str, object],
        path: object,
        dataset_id: str,
        size: int | None = None,
        checksum: str | None = None,
    ) -> dict[str, Any]:
        """The column values of one insert (without ``run`` and ``created``)."""
        checked = self.check_complete(data_id)
        values: dict[str, Any] = {self._columns[key]: checked[key] for key in self.keys}
        if not self.keys:
            values["_singleton"] = 1
        values["path"] = self._check_path(path, checked)
        values["dataset_id"] = dataset_id
        if self.checksums:
            values["file_size"], values["file_checksum"] = size, checksum
        return values

    def insert_params(
        self,
        data_id: Mapping[str, object],
        path: object,
        run: str | None,
        created: Any,
        dataset_id: str,
        size: int | None = None,
        checksum: str | None = None,
    ) -> list[Any]:
        """Bound values of ``insert_sql`` and ``replace_sql``, checked like :meth:`row`."""
        checked = self.check_complete(data_id)
        params = self.find_params(checked) if self.keys else [1]
        created_value = created if self._bind_created is None else self._bind_created(created)
        params += [self._check_path(path, checked), run, created_value, dataset_id]
        if self.checksums:
            params += [size, checksum]
        return params

    def match(self, checked: Mapping[str, Value]) -> sa.ColumnElement[bool]:
        """A WHERE clause (SQLAlchemy) equal on every key of ``checked``."""
        columns = self.table.c
        return sa.and_(
            sa.true(), *(columns[self._columns[key]] == value for key, value in checked.items())
        )

    def column(self, key: str) -> sa.Column[Any]:
        """The SQLAlchemy column of one key (for statements built with Core)."""
        return self.table.c[self._columns[key]]

    def _check_path(self, path: object, data_id: Mapping[str, Value]) -> str:
        if (
            not isinstance(path, str)
            or not path
            or "\\" in path
            or ".." in path.split("/")
            or not is_unicode_text(path)
        ):
            raise RegistryError(
                f"dataset {self.name!r} {format_data_id(data_id)}: path {path!r} must be a "
                "non-empty POSIX path without '..' segments, of valid Unicode text (relative "
                "to the repository root, or absolute for files left where another tool put them)"
            )
        return path

    def _key_list(self) -> str:
        return ", ".join(self.keys) if self.keys else "(none)"

    # ---- SQL for the raw read path -----------------------------------------------------------

    def _where(self, keys: tuple[str, ...]) -> str:
        if not keys:
            return ""
        return " WHERE " + " AND ".join(f"{self._quoted[k]} = {self._placeholder}" for k in keys)

    def _insert_sql(self) -> tuple[str, str]:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING id``, and the upserting variant."""
        keys = [self._quoted[key] for key in self.keys] or ["_singleton"]
        # an overwrite is a new dataset: it gets the new dataset_id (and its new checksum)
        stored = ["path", "run", "created", "dataset_id"]
        if self.checksums:
            stored += ["file_size", "file_checksum"]
        columns = [*keys, *stored]
        values = ", ".join([self._placeholder] * len(columns))
        insert = f"INSERT INTO {self._from} ({', '.join(columns)}) VALUES ({values})"
        conflict = f" ON CONFLICT ({', '.join(keys)})"
        ignore = f"{insert}{conflict} DO NOTHING RETURNING id"
        update = ", ".join(f"{c} = excluded.{c}" for c in stored)
        upsert = f"{insert}{conflict} DO UPDATE SET {update} RETURNING id"
        return ignore, upsert

    def where(self, checked: Mapping[str, Value]) -> tuple[str, list[Any]]:
        """`` WHERE ...`` and its bound values for checked partial values."""
        keys = tuple(checked)
        sql = self._where_cache.get(keys)
        if sql is None:
            sql = self._where_cache[keys] = self._where(keys)
        params = []
        for key in keys:
            proc = self._bind[key]
            params.append(checked[key] if proc is None else proc(checked[key]))
        return sql, params

    def bound(self, key: str, values: Sequence[Value]) -> list[Any]:
        """Values of one key as the raw cursor binds them (an ``IN (...)`` list's)."""
        proc = self._bind[key]
        return list(values) if proc is None else [proc(value) for value in values]

    def select_keys_sql(
        self, where: str, limit: int | None, *, path: bool = False, stored: bool = False
    ) -> str:
        """Every key (and optionally ``path``, or with ``stored`` the path, size and
        checksum) of matching rows, ordered by the keys."""
        columns = [self._quoted[key] for key in self.keys]
        if stored:
            columns.append(self._stored)
        elif path:
            columns.append("path")
        sql = f"SELECT {', '.join(columns) or '1'} FROM {self._from}{where}"
        if self.keys:
            sql += f" ORDER BY {self._order}"
        if limit is not None:
            sql += f" LIMIT {int(limit):d}"
        return sql

    def select_values_sql(self, key: str, where: str) -> str:
        column = self._quoted[key]
        return f"SELECT DISTINCT {column} FROM {self._from}{where} ORDER BY {column}"

    def count_sql(self, where: str) -> str:
        return f"SELECT COUNT(*) FROM {self._from}{where}"

    # ---- values out --------------------------------------------------------------------------

    def data_id(self, row: Any) -> dict[str, Value]:
        """A data ID dict from the leading key columns of a result row."""
        if self._plain_results:
            return dict(zip(self.keys, row, strict=False))
        return {
            key: value if proc is None else proc(value)
            for key, value, proc in zip(self.keys, row, self._result, strict=False)
        }

    def created_value(self, raw: Any) -> Any:
        """The ``created`` column's value from a raw result (a naive datetime)."""
        proc = self._created_result
        return raw if proc is None else proc(raw)

    def value(self, key: str, raw: Any) -> Value:
        """One key's value from a result column."""
        proc = self._result[self.keys.index(key)]
        return raw if proc is None else proc(raw)  # type: ignore[no-any-return]


def dialect_insert(table: sa.Table, dialect: sa.Dialect) -> Any:
    """An INSERT that supports ``ON CONFLICT`` on this database."""
    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(table)
