"""The registry: which datasets are stored, under which data IDs, at which paths."""

from __future__ import annotations

import contextlib
import difflib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from ..dataid import format_data_id
from ..errors import (
    ButlerError,
    DatasetExistsError,
    ReadOnlyError,
    RegistryError,
    RegistryNotFoundError,
    StorageFullError,
    UnknownDatasetTypeError,
)
from ..query.predicate import Selection
from ..spec import InstrumentSpec, Value
from ._checksum_columns import add_checksum_columns, tables_without_checksums  # issue 12
from ._engine import WRITE_OPTION, create_engine, describe_url, is_shared_memory, lock_ddl
from ._identity import REPOSITORY_ID, migrate_to_ids, new_id  # dataset ids (issue 13)
from ._operations import chunks, create_operations_table, operations_table
from ._reserve import Reserve, disk_full
from ._schema import SCHEMA_VERSION, DatasetTypeDef, build_table, static_metadata, utcnow
from ._select import condition, ordering
from ._statements import DatasetTable, dialect_insert

if TYPE_CHECKING:
    from ._regions import RegionRow, RegionStore  # sky regions (issue 17)

__all__ = ["DatasetRecord", "Registry", "StoredDataset", "StoredFile"]

_T = TypeVar("_T")
_FindColumns = Literal["path", "ref", "stored", "stored_ref", "record"]
_FETCH = 1000


class StoredFile(NamedTuple):  # not a dataclass: made on every get, and this is cheaper
    """Where a dataset's file is, and its size and checksum as recorded when it was written
    (None when they were not recorded: see ``_checksum_columns.py``)."""

    path: str
    size: int | None
    checksum: str | None


@dataclass(frozen=True, slots=True)
class StoredDataset:
    """One record of :meth:`Registry.stored_datasets`."""

    dataset_type: str
    data_id: dict[str, Value]
    file: StoredFile


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    """Everything the registry holds of one dataset: what export, import and transfer move
    (issue 18). ``created`` is a naive UTC datetime; ``size`` and ``checksum`` are None when
    they were not recorded (a table made before checksums)."""

    dataset_type: str
    data_id: dict[str, Value]
    path: str
    dataset_id: str | None
    run: str | None
    created: Any
    size: int | None
    checksum: str | None


class _Local(threading.local):
    """Per-thread state: the open write transaction and the cursors reads use."""

    def __init__(self) -> None:
        self.txn: sa.Connection | None = None
        self.txn_cursor: Any = None
        self.read_cursor: Any = None
        self.cursor: Any = None  # what find() uses now: txn_cursor inside a transaction
        self.pending: list[str] = []  # dataset types registered inside the open transaction
        self.writer_cursor: Any = None  # on the thread's own connection for one-row writes


class Registry:
    """Every stored dataset's data ID and path, in SQLite or PostgreSQL.

    Build one with :meth:`create` or :meth:`open`. Data IDs going in are plain
    mappings whose values the caller has already normalized; data IDs coming
    out are plain dicts in the dataset type's key order. One ``Registry`` may
    be shared by threads (each has its own connection and transaction); a
    process that forks or spawns opens its own.
    """

    def __init__(self, engine: sa.Engine, url: str, *, read_only: bool = False) -> None:
        """Use :meth:`create` or :meth:`open`."""
        self._engine = engine
        self._read_only = read_only
        # SQLite: space set aside so that a remove can commit on a full disk (_reserve.py)
        self._reserve = None if read_only else Reserve.beside(engine.url)
        self._reserve_missing = self._reserve is not None  # checked at open
        self._url = describe_url(url)
        self._dialect = engine.dialect
        self._metadata, self._meta, self._dataset_type = static_metadata()
        self._operations = operations_table(sa.MetaData())
        self._operations_ready = False
        self._tables: dict[str, DatasetTable] = {}
        self._local = _Local()
        self._lock = threading.Lock()
        # An in-memory registry's connections share one cache, whose table locks fail at
        # once instead of waiting: its write transactions take turns on this lock instead.
        self._turns = threading.Lock() if is_shared_memory(engine.url) else None
        self._raw_connections: list[Any] = []
        self._closed = False
        # SQLite reports a bad bound value without harm; PostgreSQL would abort the transaction.
        self._check_finds = self._dialect.name != "sqlite"
        self._db_error: type[Exception] = self._dialect.loaded_dbapi.Error
        # False for a schema version 1 registry opened read-only: no dataset ids (_identity.py)
        self._ids = True
        # Dataset tables made before the size and checksum columns (see upgrade_checksums).
        self._without_checksums: frozenset[str] = frozenset()

    # ---- life cycle ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        url: str,
        instrument: InstrumentSpec | str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> Registry:
        """Create the registry's tables at ``url`` and open it.

        ``instrument`` (an :class:`~butler.spec.InstrumentSpec` or a name) is
        recorded in the metadata; a spec's dataset types are registered too.
        An existing registry is an error unless ``exist_ok``.
        """
        registry = cls(create_engine(url), url)
        try:
            entries = dict(metadata or {})
            if isinstance(instrument, str):
                entries["instrument"] = instrument
            elif instrument is not None:
                entries.update(
                    instrument=instrument.name,
                    instrument_title=instrument.title,
                    compiler_version=instrument.compiler_version,
                    policy_sha256=instrument.source_sha256,
                )
            with registry._write() as conn:
                lock_ddl(conn)
                if sa.inspect(conn).has_table("meta"):
                    if not exist_ok:
                        raise RegistryError(
                            f"a registry already exists at {registry._url}; "
                            "open it with Registry.open, or pass exist_ok=True"
                        )
                    registry._check_version(conn)
                    registry._without_checksums = tables_without_checksums(conn)
                    if (name := entries.get("instrument")) is not None:
                        found = conn.scalar(
                            sa.select(registry._meta.c.value).where(
                                registry._meta.c.key == "instrument"
                            )
                        )
                        if found not in (None, name):
                            raise RegistryError(
                                f"the registry at {registry._url} is for instrument {found!r}, "
                                f"not {name!r}"
                            )
                else:
                    registry._metadata.create_all(conn)
                    # Calibration certifications (issue 4): table calib_cert, see _calibrations.py
                    # (imported here: opening a registry does not need it). Registries made
                    # before it get the table on their first certify.
                    from ._calibrations import create_certification_table

                    create_certification_table(conn)
                    create_operations_table(conn)  # committed file operations (issue 12)
                    entries["schema_version"] = str(SCHEMA_VERSION)
                    entries[REPOSITORY_ID] = new_id()
                for key, value in entries.items():
                    registry._set_metadata(conn, key, value)
                if instrument is not None and not isinstance(instrument, str):
                    types = {key.name: key.type for key in instrument.keys}
                    for spec in instrument.dataset_types:
                        registry.register_dataset_type(
                            spec.name, {key: types[key] for key in spec.keys}
                        )
            if registry.schema_version < 2:  # an existing version 1 registry (exist_ok)
                registry._upgrade_to_ids()
            registry._ensure_reserve()
        except BaseException:
            registry.close()
            raise
        return registry

    @classmethod
    def open(cls, url: str, *, read_only: bool = False, upgrade: bool = True) -> Registry:
        """Open the registry at ``url``; RegistryError if there is none or it is too new.

        A ``read_only`` registry refuses every write with ReadOnlyError naming it,
        and its connections are read-only too (SQLite ``mode=ro``; PostgreSQL
        ``READ ONLY`` transactions), so no write can slip through. A schema version 1
        registry opened writeable is migrated in place (dataset ids; see ``_identity.py``)
        unless ``upgrade=False``; then, as read-only, it has no ids.
        """
        registry = cls(create_engine(url, read_only=read_only), url, read_only=read_only)
        try:
            with registry._reader() as conn:
                if not sa.inspect(conn).has_table("meta"):
                    raise RegistryNotFoundError(
                        f"no registry at {registry._url}; create one with Registry.create"
                    )
                version = registry._check_version(conn)
                registry._without_checksums = tables_without_checksums(conn)
            if version < 2:
                registry._upgrade_to_ids(upgrade)
            registry._ensure_reserve()
        except BaseException:
            registry.close()
            raise
        return registry

    def _upgrade_to_ids(self, upgrade: bool = True) -> None:
        """Migrate a version 1 registry in place (see _identity.py); read-only (or not
        ``upgrade``, for a registry only looked at): no ids."""
        if self._read_only or not upgrade:
            self._ids = False
            return
        with self._write() as conn:
            lock_ddl(conn)
            if self._check_version(conn) < 2:  # not done meanwhile by a concurrent opener
                migrate_to_ids(conn)
                self._set_metadata(conn, "schema_version", str(SCHEMA_VERSION))
                self._set_metadata(conn, REPOSITORY_ID, new_id())

    @property
    def repository_id(self) -> str | None:
        """The repository's UUID (None: a version 1 registry opened read-only)."""
        with self._reader() as conn:
            value = conn.scalar(
                sa.select(self._meta.c.value).where(self._meta.c.key == REPOSITORY_ID)
            )
        return None if value is None else str(value)

    def upgrade_checksums(self) -> int:
        """Add the size and checksum columns to dataset tables made without them (registries
        written before they were recorded); how many columns were added.

        Additive and idempotent; old rows keep NULL there ("no checksum recorded"). The
        schema version does not change (see ``_checksum_columns.py``).
        """
        if not self._without_checksums:
            return 0
        self.check_writable("add the checksum columns")
        with self._write() as conn:
            lock_ddl(conn)
            added = add_checksum_columns(conn)
        self._without_checksums = frozenset()
        self._tables.clear()  # built without the columns
        return added

    def _ensure_reserve(self) -> None:
        """Allocate the SQLite reserve if it was missing (at open, after a remove spent it)."""
        if self._reserve_missing and self._reserve is not None:
            self._reserve_missing = not self._reserve.ensure()

    def make_room(self) -> bool:
        """On a full disk: free the SQLite reserve, or else checkpoint and truncate the WAL;
        whether room was made for a write to try again (a remove, which frees space)."""
        if self._reserve is None:
            return False
        self._reserve_missing = True
        if self._reserve.release():
            return True
        try:  # no reserve (a repository made before it): the WAL's pages may fit in the file
            with self._engine.connect() as conn:
                row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        except sa.exc.DBAPIError:
            return False
        return row is not None and row[0] == 0  # not blocked by a reader

    def close(self) -> None:
        """Close every connection; the registry cannot be used afterwards."""
        self._closed = True
        with self._lock:
            connections, self._raw_connections = self._raw_connections, []
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close()
        self._engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self._url!r})"

    @property
    def read_only(self) -> bool:
        """Whether the registry was opened read-only (every write raises ReadOnlyError)."""
        return self._read_only

    def check_writable(self, action: str) -> None:
        """ReadOnlyError naming ``action`` if the registry was opened read-only."""
        if self._read_only:
            raise ReadOnlyError(
                f"cannot {action}: the registry at {self._url} was opened read-only; "
                "open the repository (or Registry.open) writeable to change it"
            )

    @property
    def url(self) -> str:
        """The database URL, without its password."""
        return self._url

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for tools and tests; the registry's tables are its own)."""
        return self._engine

    # ---- metadata ------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        with self._reader() as conn:
            return self._check_version(conn)

    @property
    def metadata(self) -> dict[str, str]:
        """Every metadata entry (``schema_version``, ``instrument``, ...), sorted by key."""
        with self._reader() as conn:
            rows = conn.execute(sa.select(self._meta.c.key, self._meta.c.value))
            return dict(sorted((str(k), str(v)) for k, v in rows))

    def set_metadata(self, key: str, value: str) -> None:
        """Set one metadata entry (``schema_version`` is not yours to set)."""
        if key == "schema_version":
            raise RegistryError("the registry's schema_version cannot be set by hand")
        if not isinstance(key, str) or not isinstance(value, str):
            raise RegistryError(f"metadata keys and values are strings, not {key!r}: {value!r}")
        self.check_writable(f"set registry metadata {key!r}")
        with self._write() as conn:
            self._set_metadata(conn, key, value)

    def _set_metadata(self, conn: sa.Connection, key: str, value: str) -> None:
        insert = dialect_insert(self._meta, self._dialect).values(key=key, value=value)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[self._meta.c.key], set_={"value": insert.excluded.value}
            )
        )

    def _check_version(self, conn: sa.Connection) -> int:
        raw = conn.scalar(sa.select(self._meta.c.value).where(self._meta.c.key == "schema_version"))
        try:
            version = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise RegistryError(
                f"the registry at {self._url} has no valid schema_version (found {raw!r}); "
                "it is not a Butler registry or it is damaged"
            ) from None
        if version > SCHEMA_VERSION:
            raise RegistryError(
                f"the registry at {self._url} has schema version {version}, newer than the "
                f"version {SCHEMA_VERSION} this butler knows; upgrade butler to use it"
            )
        if version < 1:
            raise RegistryError(f"the registry at {self._url} has invalid schema version {version}")
        return version

    # ---- dataset types -------------------------------------------------------------------------

    def register_dataset_type(self, name: str, keys: Mapping[str, str]) -> None:
        """Define a dataset type by its keys (key → type name) and create its table.

        Idempotent; safe against other processes registering the same name at
        once. A different definition for a registered name is a RegistryError.
        """
        self.check_writable(f"register dataset type {name!r}")
        definition = DatasetTypeDef.define(name, keys)
        cached = self._tables.get(name)
        if cached is not None:
            self._check_same(cached.definition, definition)
            return
        try:
            with self._write() as conn:
                lock_ddl(conn)
                column = self._dataset_type.c
                row = conn.execute(
                    sa.select(column.table_name, column["keys"]).where(column.name == name)
                ).first()
                if row is not None:
                    existing = DatasetTypeDef.from_row(name, row[0], row[1])
                    self._check_same(existing, definition)
                    definition = existing
                else:
                    conn.execute(
                        sa.insert(self._dataset_type).values(
                            name=name,
                            table_name=definition.table_name,
                            keys=definition.keys_json(),
                            created=utcnow(),
                        )
                    )
                    table = build_table(definition, sa.MetaData())
                    conn.execute(CreateTable(table, if_not_exists=True))
                    for index in sorted(table.indexes, key=lambda index: str(index.name)):
                        conn.execute(CreateIndex(index, if_not_exists=True))
                    self._local.pending.append(name)
        except sa.exc.IntegrityError as err:
            raise RegistryError(
                f"cannot register dataset type {definition.describe()}: its table name "
                f"{definition.table_name!r} is taken by another dataset type"
            ) from err
        self._tables[name] = DatasetTable.build(definition, self._dialect)

    def _check_same(self, existing: DatasetTypeDef, new: DatasetTypeDef) -> None:
        if existing.key_types != new.key_types:
            raise RegistryError(
                f"dataset type {existing.name!r} is already registered as "
                f"{existing.describe()}; cannot register it again as {new.describe()}"
            )

    def has_dataset_type(self, name: str) -> bool:
        """Whether ``name`` is registered (by any process)."""
        return name in self._tables or self._load(name) is not None

    def keys(self, dataset_type: str) -> dict[str, str]:
        """A registered dataset type's keys and their type names, in column order."""
        return self._table(dataset_type).definition.key_types

    def dataset_types(self) -> dict[str, dict[str, str]]:
        """Every registered dataset type → its keys and type names, sorted by name."""
        column = self._dataset_type.c
        with self._reader() as conn:
            rows = conn.execute(
                sa.select(column.name, column.table_name, column["keys"]).order_by(column.name)
            ).all()
        return {
            name: DatasetTypeDef.from_row(name, table_name, keys).key_types
            for name, table_name, keys in rows
        }

    def _table(self, name: str) -> DatasetTable:
        table = self._tables.get(name)
        if table is None:
            definition = self._load(name)
            if definition is None:
                raise self._unknown(name)
            checksums = definition.table_name not in self._without_checksums
            table = DatasetTable.build(
                definition, self._dialect, ids=self._ids, checksums=checksums
            )
            self._tables[name] = table
        return table

    def _load(self, name: str) -> DatasetTypeDef | None:
        column = self._dataset_type.c
        with self._reader() as conn:
            row = conn.execute(
                sa.select(column.table_name, column["keys"]).where(column.name == name)
            ).first()
        return None if row is None else DatasetTypeDef.from_row(name, row[0], row[1])

    def _unknown(self, name: object) -> UnknownDatasetTypeError:
        known = list(self.dataset_types())
        message = f"dataset type {name!r} is not registered in {self._url}"
        close = difflib.get_close_matches(str(name), known, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif known:
            message += f"; registered: {', '.join(known)}"
        else:
            message += "; none is registered yet (register_dataset_type adds one)"
        return UnknownDatasetTypeError(message)

    # ---- writes --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all commit at the end, or none if the block raises.

        A nested call joins the outer transaction (no savepoint): the outermost
        block decides. Reads inside the block see its uncommitted writes.
        """
        self.check_writable("begin a registry transaction")
        outermost = self._local.txn is None
        with self._write():
            yield
        if outermost:  # after a commit (a remove's may have freed space): the reserve again
            self._ensure_reserve()

    def insert(
        self,
        dataset_type: str,
        data_id: Mapping[str, Value],
        path: str,
        run: str | None = None,
        *,
        before_commit: Callable[[], object] | None = None,
        dataset_id: str | None = None,
        size: int | None = None,
        checksum: str | None = None,
    ) -> int:
        """Record one dataset; its row number. DatasetExistsError if the data ID is taken.

        ``before_commit`` runs once the row is written and before it is committed
        (a put publishes its file there); if it raises, nothing is recorded. Inside
        :meth:`transaction` it runs at once, and the transaction commits later.
        ``dataset_id`` is the dataset's UUID (default: a new one); ``size`` and ``checksum``
        describe the file (see :mod:`butler.checksums`).
        """
        self.check_writable(f"insert {dataset_type!r} {format_data_id(data_id)}")
        stored = (path, dataset_id or new_id(), size, checksum)
        row = self._write_one(dataset_type, data_id, stored, run, before_commit, upsert=False)
        if row is None:
            raise self._exists(self._table(dataset_type), data_id)
        return int(row[0])

    def replace(
        self,
        dataset_type: str,
        data_id: Mapping[str, Value],
        path: str,
        run: str | None = None,
        *,
        before_commit: Callable[[], object] | None = None,
        dataset_id: str | None = None,
        size: int | None = None,
        checksum: str | None = None,
    ) -> int:
        """Record one dataset, overwriting any record of the same data ID; its row number.

        The arguments are as for :meth:`insert`: an overwrite is a new dataset, with a
        new ``dataset_id`` (and its file's new size and checksum).
        """
        self.check_writable(f"replace {dataset_type!r} {format_data_id(data_id)}")
        stored = (path, dataset_id or new_id(), size, checksum)
        table = self._table(dataset_type)
        if self._regions.present(table):  # the replaced dataset's sky region goes with it
            with self._write() as conn:
                self._regions.forget(conn, table, table.match(table.check_complete(data_id)))
                row = self._write_one(
                    dataset_type, data_id, stored, run, before_commit, upsert=True
                )
            assert row is not None, "an upsert returns the row's id"
            return int(row[0])
        row = self._write_one(dataset_type, data_id, stored, run, before_commit, upsert=True)
        assert row is not None, "an upsert returns the row's id"
        return int(row[0])

    def _write_one(
        self,
        dataset_type: str,
        data_id: Mapping[str, Value],
        stored: tuple[str, str, int | None, str | None],
        run: str | None,
        before_commit: Callable[[], object] | None,
        *,
        upsert: bool,
    ) -> Any:
        """Run a one-row ``... RETURNING id`` insert (or ``upsert``); its row, or None if the
        data ID was taken and nothing was written.

        Inside an open transaction it joins it. Otherwise it is a transaction of
        its own on the thread's own connection, begun and committed on the driver:
        SQLAlchemy's per-transaction machinery costs more than the insert itself.
        """
        table = self._table(dataset_type)
        sql = table.replace_sql if upsert else table.insert_sql
        path, dataset_id, size, checksum = stored
        params = table.insert_params(
            data_id, path, _check_run(run), utcnow(), dataset_id, size, checksum
        )
        local = self._local
        own = local.txn is None  # else it joins the open transaction, which commits later
        if own:
            self._check_open()
            self._ensure_reserve()
            cursor = local.writer_cursor or self._writer_cursor()
        else:
            cursor = local.txn_cursor or self._find_cursor()
        with self._turn() if own else contextlib.nullcontext():
            return self._run_one(cursor, sql, params, own, before_commit, table, data_id)

    def _turn(self) -> contextlib.AbstractContextManager[Any]:
        """Held for a write transaction: an in-memory registry's turn (see ``_turns``)."""
        return contextlib.nullcontext() if self._turns is None else self._turns

    def _run_one(
        self,
        cursor: Any,
        sql: str,
        params: Any,
        own: bool,
        before_commit: Callable[[], object] | None,
        table: DatasetTable,
        data_id: Mapping[str, Value],
    ) -> Any:
        try:
            if own and self._dialect.name == "sqlite":  # psycopg begins at the first statement
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row is not None and before_commit is not None:
                before_commit()
            if own:
                cursor.connection.commit()
        except BaseException as err:
            if own:
                self._roll_back_writer(cursor.connection)
            if isinstance(err, self._db_error):
                raise self._write_error(table, data_id, err) from err
            raise
        return row

    def _roll_back_writer(self, connection: Any) -> None:
        try:
            connection.rollback()
        except Exception:  # a broken connection: the next write opens a new one
            self._local.writer_cursor = None
            with contextlib.suppress(Exception):
                connection.close()

    def _write_error(
        self, table: DatasetTable, data_id: Mapping[str, Value], err: Exception
    ) -> ButlerError:
        if disk_full(err):
            return StorageFullError(
                f"cannot record {table.name!r} {format_data_id(data_id)} in the registry at "
                f"{self._url}: the disk holding the registry is full ({err}); nothing was "
                f"changed. {_FREE_SPACE}"
            )
        return RegistryError(
            f"recording {table.name!r} {format_data_id(data_id)} in the registry at {self._url} "
            f"failed: {err}"
        )

    def insert_many(
        self,
        dataset_type: str,
        rows: Iterable[
            tuple[Mapping[str, Value], str]
            | tuple[Mapping[str, Value], str, int | None, str | None]
        ],
        run: str | None = None,
        *,
        dataset_ids: Iterable[str] | None = None,
    ) -> int:
        """Record many datasets in one transaction (all or none); how many.

        Each row is ``(data ID, path)`` or ``(data ID, path, size, checksum)``;
        ``dataset_ids``: one per row (default: new ones). Inside :meth:`transaction` a
        failure rolls back only these rows.
        """
        self.check_writable(f"insert {dataset_type!r} datasets")
        table = self._table(dataset_type)
        run = _check_run(run)
        created = utcnow()
        data_ids: list[Mapping[str, Value]] = []
        params: list[dict[str, Any]] = []
        ids = iter(dataset_ids) if dataset_ids is not None else None
        for row in rows:
            if len(row) == 4:
                data_id, path, size, checksum = row
            else:
                (data_id, path), size, checksum = row, None, None
            dataset_id = new_id() if ids is None else next(ids)
            values = table.row(data_id, path, dataset_id, size, checksum)
            values.update(run=run, created=created)
            params.append(values)
            data_ids.append(data_id)
        if not params:
            return 0
        joined = self._local.txn is not None
        if not joined:
            self._ensure_reserve()
        try:
            with self._write() as conn:
                if joined:
                    with conn.begin_nested():
                        conn.execute(table.table.insert(), params)
                else:
                    conn.execute(table.table.insert(), params)
        except sa.exc.IntegrityError as err:
            raise self._duplicate(table, data_ids) from err
        return len(params)

    def remove(
        self, dataset_type: str, data_id: Mapping[str, Value], *, dataset_id: str | None = None
    ) -> bool:
        """Forget one dataset's record; whether there was one (with ``dataset_id``: only if
        the record still has that id)."""
        self.check_writable(f"remove {dataset_type!r} {format_data_id(data_id)}")
        table = self._table(dataset_type)
        checked = table.check_complete(data_id)
        which = table.match(checked)
        if dataset_id is not None:
            which = sa.and_(which, table.table.c.dataset_id == dataset_id)
        delete = sa.delete(table.table).where(which)
        sky = self._regions.present(table)  # its sky region goes in the same transaction
        own = self._local.txn is None
        if own:
            self._ensure_reserve()
        try:
            with self._write() as conn:
                if sky:
                    self._regions.forget(conn, table, which)
                deleted = conn.execute(delete)
        except StorageFullError:
            # On a full disk, spend the reserve (_reserve.py) and delete again in its space.
            # Inside an open transaction() the whole transaction failed: nothing to retry.
            if not own or not self.make_room():
                raise
            with self._write() as conn:
                if sky:
                    self._regions.forget(conn, table, which)
                deleted = conn.execute(delete)
        return bool(deleted.rowcount)

    # ---- sky regions (issue 17; see _regions.py) ---------------------------------------------

    @functools.cached_property
    def _regions(self) -> RegionStore:
        """The region tables' store, made (and _regions.py imported) on first use."""
        from ._regions import RegionStore

        return RegionStore(self)

    def record_regions(self, dataset_type: str, rows: Iterable[RegionRow]) -> int:
        """Record the sky regions of datasets of ``dataset_type``: ``(dataset id, encoded
        region, pixel ranges)`` each; how many. Joins an open transaction (else one of its
        own). A region may be recorded before its dataset's row: it is found only once a
        dataset with that id is recorded, and never once the dataset is removed or
        overwritten."""
        self.check_writable(f"record sky regions of {dataset_type!r}")
        return self._regions.record(dataset_type, rows)

    def search_regions(
        self,
        dataset_type: str,
        ranges: Sequence[tuple[int, int]] | None,
        selection: Selection | None = None,
        keep: Callable[[bytes], bool] | None = None,
    ) -> Iterator[tuple[dict[str, Value], bytes]]:
        """``(data ID, encoded region)`` of the datasets ``selection`` selects whose recorded
        regions have a pixel range meeting one of ``ranges`` (half-open; None: any region)
        and whose encoded region ``keep`` keeps, in no particular order. A range search
        finds a superset: ``keep`` is the caller's exact test (on SQLite made before the
        kept candidates' dataset rows are read). No regions recorded for the type:
        nothing."""
        if not self.has_dataset_type(dataset_type):
            return iter(())
        return self._regions.search(dataset_type, ranges, selection, keep)

    # ---- committed file operations (the Butler's recovery journal; see _operations.py) ---------

    def prepare_operations(self) -> None:
        """Create the committed-operations table if this (older) registry lacks it."""
        if self._operations_ready:
            return
        with self._reader() as conn:
            present = sa.inspect(conn).has_table(self._operations.name)
        if not present:  # checked again next time, in case this transaction rolls back
            with self._write() as conn:
                lock_ddl(conn)
                create_operations_table(conn)
        self._operations_ready = present

    def record_operation(self, token: str) -> None:
        """Record ``token`` as committed by the thread's open write transaction.

        Call it inside :meth:`transaction`: the token commits with the rows, or not at all.
        """
        self.prepare_operations()
        with self._write() as conn:
            conn.execute(sa.insert(self._operations).values(token=token))

    def committed_operations(self, tokens: Iterable[str] | None) -> set[str]:
        """Those of ``tokens`` (None: of all) that :meth:`record_operation` committed."""
        self.prepare_operations()
        token = self._operations.c.token
        found: set[str] = set()
        with self._reader() as conn:
            if tokens is None:
                return set(conn.scalars(sa.select(token)))
            for chunk in chunks(tokens):
                found.update(conn.scalars(sa.select(token).where(token.in_(chunk))))
        return found

    def forget_operations(self, tokens: Iterable[str]) -> None:
        """Delete settled tokens (joins an open transaction)."""
        self.prepare_operations()
        token = self._operations.c.token
        with self._write() as conn:
            for chunk in chunks(tokens):
                conn.execute(sa.delete(self._operations).where(token.in_(chunk)))

    def _exists(self, table: DatasetTable, data_id: Mapping[str, Value]) -> DatasetExistsError:
        path = self.find(table.name, data_id)
        return DatasetExistsError(
            f"dataset {table.name!r} with data ID {format_data_id(data_id)} is already in the "
            f"registry (path {path!r}); use replace to overwrite it"
        )

    def _duplicate(
        self, table: DatasetTable, data_ids: list[Mapping[str, Value]]
    ) -> ButlerErrorLike:
        seen: set[tuple[Value, ...]] = set()
        for data_id in data_ids:
            key = tuple(data_id[k] for k in table.keys)
            if key in seen:
                return DatasetExistsError(
                    f"dataset {table.name!r} with data ID {format_data_id(data_id)} appears twice "
                    "in one insert_many call; nothing was inserted"
                )
            seen.add(key)
            if self.find(table.name, data_id) is not None:
                error = self._exists(table, data_id)
                error.args = (f"{error.args[0]}; nothing was inserted",)
                return error
        return RegistryError(
            f"insert_many into dataset type {table.name!r} violated a constraint; "
            "nothing was inserted"
        )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """The thread's write transaction: joined if open, else begun and ended here."""
        local = self._local
        if local.txn is not None:
            yield local.txn
            return
        self._check_open()
        self.check_writable("write to the registry")
        try:
            conn = self._engine.connect()
        except sa.exc.DBAPIError as err:
            raise self._connection_error(err) from err
        with self._turn():  # an in-memory registry's writers take turns
            try:
                conn.execution_options(**{WRITE_OPTION: True})
                trans = conn.begin()
                local.txn, local.txn_cursor, local.cursor, local.pending = conn, None, None, []
                committed = False
                try:
                    yield conn
                    trans.commit()
                    committed = True
                finally:
                    if local.txn_cursor is not None:
                        with contextlib.suppress(Exception):
                            local.txn_cursor.close()
                    pending, local.pending = local.pending, []
                    local.txn, local.txn_cursor, local.cursor = None, None, local.read_cursor
                    if not committed:
                        for name in pending:
                            self._tables.pop(name, None)
                        if trans.is_active:
                            with contextlib.suppress(sa.exc.SQLAlchemyError):
                                trans.rollback()
            except sa.exc.IntegrityError:
                raise
            except sa.exc.DBAPIError as err:
                if disk_full(err.orig):
                    raise StorageFullError(
                        f"registry write to {self._url} failed: the disk holding the registry is "
                        f"full ({err.orig}); nothing was changed. {_FREE_SPACE}"
                    ) from err
                raise RegistryError(f"registry write to {self._url} failed: {err.orig}") from err
            finally:
                conn.close()

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sa.Connection]:
        """A SQLAlchemy connection for reads that are not hot: the transaction's, if one is open."""
        if self._local.txn is not None:
            yield self._local.txn
            return
        self._check_open()
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.DBAPIError as err:
            raise self._connection_error(err) from err

    # ---- reads ---------------------------------------------------------------------------------

    def find(self, dataset_type: str, data_id: Mapping[str, Value]) -> str | None:
        """The path of the dataset with this complete data ID, or None."""
        row = self._find_row(dataset_type, data_id, "path")
        return None if row is None else row[0]

    def stored(self, dataset_type: str, data_id: Mapping[str, Value]) -> StoredFile | None:
        """:meth:`find`, with the file's recorded size and checksum."""
        row = self._find_row(dataset_type, data_id, "stored")
        return None if row is None else StoredFile(*row)

    def stored_ref(
        self, dataset_type: str, data_id: Mapping[str, Value]
    ) -> tuple[StoredFile, str | None] | None:
        """:meth:`stored`, with the dataset's id (None only in a version 1 registry opened
        read-only): what a get looks up."""
        row = self._find_row(dataset_type, data_id, "stored_ref")
        if row is None:
            return None
        return StoredFile(row[0], row[1], row[2]), None if row[3] is None else str(row[3])

    def stored_id(self, dataset_type: str, dataset_id: str) -> StoredFile | None:
        """The file of the dataset with this id, with its recorded size and checksum, or
        None (as :meth:`find_id`): the hot lookup of a get by ref, on the thread's cursor."""
        table = self._tables.get(dataset_type)
        if table is None:
            if not self._ids or not self.has_dataset_type(dataset_type):
                return None
            table = self._table(dataset_type)
        if not table.stored_by_id_sql:
            return None
        cursor = self._local.cursor
        if cursor is None:
            cursor = self._find_cursor()
        try:
            cursor.execute(table.stored_by_id_sql, [dataset_id])
            row = cursor.fetchone()
        except self._db_error as err:
            raise RegistryError(f"registry query on {self._url} failed: {err}") from err
        return None if row is None else StoredFile(*row)

    def _find_row(
        self, dataset_type: str, data_id: Mapping[str, Value], columns: _FindColumns
    ) -> Any:
        """The hot lookup by complete data ID, on the thread's raw cursor: ``columns`` are
        the path (``find``), with the id and run (``find_ref``), with the recorded size
        and checksum (``stored``), and the id too (``stored_ref``)."""
        table = self._tables.get(dataset_type)
        if table is None:
            table = self._table(dataset_type)
        cursor = self._local.cursor
        if cursor is None:
            cursor = self._find_cursor()
        try:
            if self._check_finds:
                data_id = table.check_complete(data_id)
            cursor.execute(
                table.find_sql
                if columns == "path"
                else table.find_ref_sql
                if columns == "ref"
                else table.record_sql
                if columns == "record"
                else table.stored_ref_sql
                if columns == "stored_ref"
                else table.stored_sql,
                table.find_params(data_id),
            )
            return cursor.fetchone()
        except Exception as err:
            raise self._find_error(table, data_id, err) from None

    def find_ref(
        self, dataset_type: str, data_id: Mapping[str, Value]
    ) -> tuple[str, str | None, str | None] | None:
        """:meth:`find` with the dataset's id and run: ``(path, dataset_id, run)``, or None.

        The id is None only in a version 1 registry opened read-only.
        """
        row = self._find_row(dataset_type, data_id, "ref")
        return None if row is None else (str(row[0]), row[1], row[2])

    def find_id(
        self, dataset_type: str, dataset_id: str
    ) -> tuple[dict[str, Value], str, str | None, int | None] | None:
        """The dataset with this id: ``(data ID, path, run, recorded file size)``, or None
        (removed, overwritten, never stored here, or a dataset type not registered here)."""
        if not self._ids or not self.has_dataset_type(dataset_type):
            return None
        table = self._table(dataset_type)
        cursor = self._local.cursor  # the hot path's cursor, as _find_row's (a get by ref)
        if cursor is None:
            cursor = self._find_cursor()
        try:
            cursor.execute(table.by_id_sql, [dataset_id])
            row = cursor.fetchone()
        except self._db_error as err:
            if self._closed:
                raise RegistryError(f"the registry at {self._url} is closed") from None
            raise RegistryError(
                f"registry lookup of {dataset_type!r} dataset {dataset_id} in {self._url} "
                f"failed: {err}"
            ) from err
        if row is None:
            return None
        n = len(table.keys)
        return table.data_id(row[:n]), str(row[n]), row[n + 1], row[n + 2]

    def stored_ids(self, dataset_ids: Iterable[str]) -> set[str]:
        """Those of ``dataset_ids`` that some dataset has (of any dataset type); a few
        queries per dataset type (recovery asks it of a dead writer's puts)."""
        wanted = list(dataset_ids)
        found: set[str] = set()
        if not self._ids or not wanted:
            return found
        with self._reader() as conn:
            for name in self.dataset_types():
                column = self._table(name).table.c.dataset_id
                for chunk in chunks(wanted):
                    found.update(conn.scalars(sa.select(column).where(column.in_(chunk))))
        return found

    def dataset_type_of(self, dataset_id: str) -> str | None:
        """The dataset type of the dataset with this id, or None if none has it."""
        if not self._ids:
            return None
        for name in self.dataset_types():
            if self.find_id(name, dataset_id) is not None:
                return name
        return None

    def _dbapi_fetch(self, conn: sa.Connection, sql: str, params: list[Any]) -> Any:
        cursor = self._dbapi(conn).cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchone()
        except self._db_error as err:
            raise RegistryError(f"registry query on {self._url} failed: {err}") from err
        finally:
            cursor.close()

    def query(
        self,
        dataset_type: str,
        partial: Mapping[str, Value] | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Value]]:
        """Complete data IDs matching ``partial``, ordered by the keys, at most ``limit``."""
        table = self._table(dataset_type)
        where, params = table.where(table.check_partial(partial or {}))
        limit = _check_limit(limit)
        # Most queries match a few rows: fetch up to _FETCH + 1 at once on the thread's own
        # connection, and stream (on a pooled connection) only a result larger than that.
        # (Inside a transaction nothing streams.)
        sql = table.select_keys_sql(where, limit)
        if self._local.txn is not None or (limit is not None and limit <= _FETCH):
            return self._rows(sql, params, table.data_id)
        first = self._rows(table.select_keys_sql(where, _FETCH + 1), params, table.data_id)
        rows = list(first)
        if len(rows) <= _FETCH:
            return iter(rows)
        return self._rows(sql, params, table.data_id, stream=True)

    def complete(
        self,
        dataset_type: str,
        partial: Mapping[str, Value] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Value]]:
        """Up to ``limit`` complete data IDs matching ``partial`` (the caller judges ambiguity)."""
        return list(self.query(dataset_type, partial, limit))

    def query_values(
        self,
        dataset_type: str,
        key: str,
        partial: Mapping[str, Value] | None = None,
    ) -> list[Value]:
        """The distinct values of ``key`` among datasets matching ``partial``, sorted."""
        table = self._table(dataset_type)
        _check_key(table, key)
        where, params = table.where(table.check_partial(partial or {}))
        sql = table.select_values_sql(key, where)
        return list(self._rows(sql, params, lambda row: table.value(key, row[0])))

    def count(self, dataset_type: str, partial: Mapping[str, Value] | None = None) -> int:
        """How many datasets match ``partial``."""
        table = self._table(dataset_type)
        where, params = table.where(table.check_partial(partial or {}))
        (row,) = self._rows(table.count_sql(where), params, tuple)
        return int(row[0])

    # ---- queries with expressions (issue 18) ------------------------------------------------

    def select(
        self,
        dataset_type: str,
        selection: Selection | None = None,
        *,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> Iterator[dict[str, Value]]:
        """Complete data IDs of the datasets ``selection`` selects, streamed.

        One parameterized statement; ``order_by`` keys first (``-key``: descending),
        then the other keys ascending; at most ``limit``. The rows are read in chunks
        (a server-side cursor on PostgreSQL) as the iterator is consumed.
        """
        table = self._table(dataset_type)
        limit = _check_limit(limit)
        where = condition(table, selection or Selection(), self._table_or_none)
        columns: list[sa.ColumnElement[Any]] = [table.column(key) for key in table.keys]
        columns = columns or [sa.literal(1)]
        statement = (
            sa.select(*columns).where(where).order_by(*ordering(table, order_by, self._dialect))
        )
        if limit is not None:
            statement = statement.limit(limit)
        keys = table.keys
        return self._select_rows(statement, lambda row: dict(zip(keys, row, strict=False)))

    def select_count(self, dataset_type: str, selection: Selection | None = None) -> int:
        """How many datasets ``selection`` selects."""
        table = self._table(dataset_type)
        where = condition(table, selection or Selection(), self._table_or_none)
        statement = sa.select(sa.func.count()).select_from(table.table).where(where)
        return int(next(iter(self._select_rows(statement, lambda row: row[0]))))

    def select_values(
        self, dataset_type: str, key: str, selection: Selection | None = None
    ) -> list[Value]:
        """The distinct values of ``key`` among the datasets ``selection`` selects, sorted."""
        table = self._table(dataset_type)
        _check_key(table, key)
        where = condition(table, selection or Selection(), self._table_or_none)
        column = table.column(key)
        statement = sa.select(column).distinct().where(where).order_by(column)
        return list(self._select_rows(statement, lambda row: row[0]))

    def select_records(
        self,
        dataset_type: str,
        selection: Selection | None = None,
        *,
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> Iterator[DatasetRecord]:
        """:meth:`select`, with each dataset's whole record (path, id, run, created, size,
        checksum), streamed."""
        table = self._table(dataset_type)
        limit = _check_limit(limit)
        where = condition(table, selection or Selection(), self._table_or_none)
        c = table.table.c
        keys = table.keys
        stored: list[Any] = [
            c.path,
            c.dataset_id if table.ids else sa.null(),
            c.run,
            c.created,
            c.file_size if table.checksums else sa.null(),
            c.file_checksum if table.checksums else sa.null(),
        ]
        columns = [*(table.column(key) for key in keys), *stored]
        statement = (
            sa.select(*columns).where(where).order_by(*ordering(table, order_by, self._dialect))
        )
        if limit is not None:
            statement = statement.limit(limit)
        n = len(keys)

        def convert(row: Any) -> DatasetRecord:
            return DatasetRecord(dataset_type, dict(zip(keys, row[:n], strict=True)), *row[n:])

        return self._select_rows(statement, convert)

    def find_record(self, dataset_type: str, data_id: Mapping[str, Value]) -> DatasetRecord | None:
        """The record of the dataset with this complete data ID, or None (on the raw cursor,
        as :meth:`find`: cheap enough to ask once per dataset of a transfer)."""
        if not self.has_dataset_type(dataset_type):
            return None
        row = self._find_row(dataset_type, data_id, "record")
        if row is None:
            return None
        table = self._tables[dataset_type]
        created = table.created_value(row[3])
        return DatasetRecord(dataset_type, dict(data_id), row[0], row[1], row[2], created, *row[4:])

    def insert_records(self, records: Sequence[DatasetRecord]) -> int:
        """Record datasets as they were recorded elsewhere: their ids, runs, creation times,
        sizes and checksums kept (import and transfer). One transaction (joined if open):
        all or none; DatasetExistsError if a data ID or dataset id is taken."""
        if not records:
            return 0
        by_type: dict[str, list[DatasetRecord]] = {}
        for record in records:
            by_type.setdefault(record.dataset_type, []).append(record)
        self.check_writable(f"import {len(records)} dataset record(s)")
        if self._local.txn is None:
            self._ensure_reserve()
        with self._write() as conn:
            for name, group in by_type.items():
                table = self._table(name)
                params = []
                for record in group:
                    values = table.row(
                        record.data_id,
                        record.path,
                        record.dataset_id or new_id(),
                        record.size,
                        record.checksum,
                    )
                    values.update(run=_check_run(record.run), created=record.created or utcnow())
                    params.append(values)
                try:
                    with conn.begin_nested():
                        conn.execute(table.table.insert(), params)
                except sa.exc.IntegrityError as err:
                    raise self._duplicate(table, [r.data_id for r in group]) from err
        return len(records)

    def _table_or_none(self, name: str) -> DatasetTable | None:
        return self._table(name) if self.has_dataset_type(name) else None

    def _select_rows(self, statement: sa.Select[Any], convert: Callable[[Any], _T]) -> Iterator[_T]:
        """Run a Core SELECT: at once inside a transaction, else streamed from the pool."""
        txn = self._local.txn
        if txn is not None:
            try:
                rows = txn.execute(statement).all()
            except sa.exc.DBAPIError as err:
                raise RegistryError(f"registry query on {self._url} failed: {err.orig}") from err
            return iter([convert(row) for row in rows])
        self._check_open()
        try:
            conn = self._engine.connect()
        except sa.exc.DBAPIError as err:
            raise self._connection_error(err) from err
        try:
            result = conn.execution_options(yield_per=_FETCH).execute(statement)
        except BaseException as err:
            conn.close()
            if isinstance(err, sa.exc.DBAPIError):
                raise RegistryError(f"registry query on {self._url} failed: {err.orig}") from err
            raise
        return _stream_result(conn, result, convert)

    def record(
        self, dataset_type: str, data_id: Mapping[str, Value]
    ) -> tuple[str, Any, Any] | None:
        """``(path, run, created)`` of the dataset with this complete data ID, or None.

        ``created`` is a naive UTC datetime (provenance, issue 6).
        """
        table = self._table(dataset_type)
        checked = table.check_complete(data_id)
        columns = table.table.c
        with self._reader() as conn:
            row = conn.execute(
                sa.select(columns.path, columns.run, columns.created).where(table.match(checked))
            ).first()
        return None if row is None else (str(row[0]), row[1], row[2])

    def stored_datasets(self, dataset_type: str | None = None) -> Iterator[StoredDataset]:
        """Every dataset with its file, size and checksum, by dataset type then data ID."""
        names = [dataset_type] if dataset_type is not None else list(self.dataset_types())
        for name in names:
            table = self._table(name)
            sql = table.select_keys_sql("", None, stored=True)
            for row in self._rows(sql, [], tuple, stream=True):
                file = StoredFile(row[-3], row[-2], row[-1])
                yield StoredDataset(name, table.data_id(row), file)

    def run_counts(self) -> dict[str | None, int]:
        """How many datasets each run wrote, over every dataset type (None: no run recorded)."""
        counts: dict[str | None, int] = {}
        for name in self.dataset_types():
            column = self._table(name).table.c
            with self._reader() as conn:
                rows = conn.execute(
                    sa.select(column.run, sa.func.count()).group_by(column.run)
                ).all()
            for run, count in rows:
                counts[run] = counts.get(run, 0) + int(count)
        return counts

    def all_paths(self, dataset_type: str) -> Iterator[str]:
        """The path of every dataset of one type, ordered by data ID."""
        table = self._table(dataset_type)
        sql = table.select_keys_sql("", None, path=True)
        return self._rows(sql, [], lambda row: row[-1], stream=True)

    def datasets(
        self, dataset_type: str | None = None
    ) -> Iterator[tuple[str, dict[str, Value], str]]:
        """Every ``(dataset type, data ID, path)``, by dataset type then data ID."""
        names = [dataset_type] if dataset_type is not None else list(self.dataset_types())
        for name in names:
            table = self._table(name)
            sql = table.select_keys_sql("", None, path=True)
            for row in self._rows(sql, [], tuple, stream=True):
                yield name, table.data_id(row), row[-1]

    def _rows(
        self,
        sql: str,
        params: list[Any],
        convert: Callable[[Any], _T],
        *,
        stream: bool = False,
    ) -> Iterator[_T]:
        """Run a read; its rows, converted.

        Small results are fetched at once on the thread's read connection (or the
        open transaction's). A ``stream`` is read in chunks from a pooled
        connection of its own, so a long iteration never pins the read snapshot
        that :meth:`find` uses; the connection returns to the pool at the end.
        """
        txn = self._local.txn
        pooled: Any = None
        if txn is not None:
            connection, stream = self._dbapi(txn), False
        elif stream:
            self._check_open()
            try:
                connection = pooled = self._engine.raw_connection()
            except sa.exc.DBAPIError as err:
                raise self._connection_error(err) from err
        else:
            connection = self._read_connection()
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            if not stream:
                return iter([convert(row) for row in cursor.fetchall()])
        except self._db_error as err:
            raise RegistryError(f"registry query on {self._url} failed: {err}") from err
        finally:
            if not stream:
                cursor.close()
        return _stream(cursor, pooled, convert)

    def _find_cursor(self) -> Any:
        local = self._local
        if local.txn is not None:
            local.txn_cursor = local.cursor = self._dbapi(local.txn).cursor()
        else:
            local.read_cursor = local.cursor = self._read_connection().cursor()
        return local.cursor

    def _find_error(
        self, table: DatasetTable, data_id: Mapping[str, Value], err: Exception
    ) -> Exception:
        if isinstance(err, RegistryError):
            return err
        if self._closed:
            return RegistryError(f"the registry at {self._url} is closed")
        try:
            table.check_complete(data_id)
        except RegistryError as bad:
            return bad
        return RegistryError(
            f"registry lookup of {table.name!r} {format_data_id(data_id)} in {self._url} "
            f"failed: {err}"
        )

    def _read_connection(self) -> Any:
        """The thread's own autocommit DBAPI connection, outside the pool."""
        local = self._local
        if local.read_cursor is not None:
            return local.read_cursor.connection
        dbapi = self._own_connection(autocommit=True)
        local.read_cursor = dbapi.cursor()
        if local.txn is None:
            local.cursor = local.read_cursor
        return dbapi

    def _writer_cursor(self) -> Any:
        """A cursor on the thread's own DBAPI connection for one-row write transactions."""
        self._local.writer_cursor = self._own_connection(autocommit=False).cursor()
        return self._local.writer_cursor

    def _own_connection(self, *, autocommit: bool) -> Any:
        """A new DBAPI connection for this thread alone, outside the pool; closed by close().

        SQLite's are always in autocommit mode at the driver (transactions are begun
        explicitly). On PostgreSQL a reader is in autocommit mode, so each SELECT
        sees the latest commits and no transaction idles.
        """
        self._check_open()
        try:
            fairy = self._engine.raw_connection()
        except sa.exc.DBAPIError as err:
            raise self._connection_error(err) from err
        fairy.detach()
        dbapi: Any = fairy.dbapi_connection
        if self._dialect.name == "postgresql":
            dbapi.rollback()
            dbapi.autocommit = autocommit
        with self._lock:
            self._raw_connections.append(fairy)
        return dbapi

    @staticmethod
    def _dbapi(conn: sa.Connection) -> Any:
        return conn.connection.dbapi_connection

    def _check_open(self) -> None:
        if self._closed:
            raise RegistryError(f"the registry at {self._url} is closed")

    def _connection_error(self, err: sa.exc.DBAPIError) -> RegistryError:
        return RegistryError(f"cannot connect to the registry at {self._url}: {err.orig}")

    # The package interface, for the certification tables (_calibrations.py), which share
    # the registry's connections and transactions: public inside the registry package.
    dataset_table = _table
    dataset_table_or_none = _table_or_none
    reader = _reader
    writer = _write
    rows = _rows
    select_rows = _select_rows


ButlerErrorLike = DatasetExistsError | RegistryError

_FREE_SPACE = "Free space (removing datasets works on a full disk) and try again."


def _stream(cursor: Any, connection: Any, convert: Callable[[Any], _T]) -> Iterator[_T]:
    try:
        while rows := cursor.fetchmany(_FETCH):
            for row in rows:
                yield convert(row)
    finally:
        with contextlib.suppress(Exception):
            cursor.close()
        connection.close()  # back to the pool


def _stream_result(
    conn: sa.Connection, result: sa.CursorResult[Any], convert: Callable[[Any], _T]
) -> Iterator[_T]:
    try:
        for row in result:
            yield convert(row)
    finally:
        with contextlib.suppress(Exception):
            result.close()
        conn.close()  # back to the pool


def _check_key(table: DatasetTable, key: str) -> None:
    if key not in table.keys:
        raise RegistryError(
            f"unknown key {key!r} for dataset type {table.name!r}; "
            f"its keys are {', '.join(table.keys) or '(none)'}"
        )


def _check_run(run: object) -> str | None:
    if run is not None and not isinstance(run, str):
        raise RegistryError(f"run must be a string or None, not {run!r}")
    return run


def _check_limit(limit: object) -> int | None:
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise RegistryError(f"limit must be a non-negative integer or None, not {limit!r}")
    return limit
