"""Calibration certifications: a bitemporal table beside the dataset tables.

``calib_cert`` has one row per certification of one stored calibration dataset:

=================  ==========================================================================
``id``             autoincrement primary key
``dataset_type``   the calibration's dataset type
``dataset_id``     ``id`` of the dataset's row in its ``ds_<name>`` table
``match``          the match-key values, canonical JSON (``[["detector", 3]]``), indexed
``valid_from``     valid time, inclusive; naive, in the validity key's time scale (``scale``)
``valid_to``       valid time, exclusive; NULL = open-ended
``scale``          time scale of the valid times (``utc``, ``tai``; NULL for dates)
``recorded_from``  UTC time the row was recorded
``recorded_to``    UTC time the row stopped being current; NULL while it is current
``closed_by``      why it was closed: ``decertified`` or ``superseded by #ID``
``replaces``       the row this one was cut from, when a supersede or a partial decertify
                   kept the part of an older range outside the new one
``source``         free text: who or what certified it (``curated:bias/3/2024...``, ``gen2:...``)
=================  ==========================================================================

Rows are only ever inserted and closed (``recorded_to`` set once); never deleted
or otherwise rewritten. A row is *current* while ``recorded_to`` is NULL, and
*visible as of T* when ``recorded_from <= T < recorded_to``. Valid ranges are
half-open, ``[valid_from, valid_to)``.

Every change reads the rows it changes under the lock it writes under. On SQLite
that is the database's write lock (``BEGIN IMMEDIATE``), taken before the first
read. On PostgreSQL it is a transaction-scoped advisory lock per dataset type and
match value, taken before the rows of that match value are read: certify knows its
match value and locks it first; decertify reads the dataset's current rows, locks
their match values (sorted) and reads them again, until no unlocked match value
turns up. A read after the lock, under READ COMMITTED, sees every change committed
by the lock's previous holder, so two decertifies (or a decertify and a supersede)
never both close, or both cut pieces from, the same current row. As a last guard,
closing a row that is no longer current raises ConflictError and changes nothing.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from ..errors import (
    AmbiguousCalibrationError,
    ConflictError,
    DatasetNotFoundError,
    RegistryError,
)
from ..spec import Value
from ._engine import lock_ddl
from ._schema import utcnow

if TYPE_CHECKING:
    from ._registry import Registry
    from ._statements import DatasetTable

__all__ = [
    "CERT_TABLE",
    "Certification",
    "CertificationStore",
    "OverlapError",
    "certification_table",
    "create_certification_table",
    "encode_match",
    "format_values",
]

CERT_TABLE = "calib_cert"
_TICK = datetime.timedelta(microseconds=1)
_IN_CHUNK = 500
#: Most match values a store remembers the text of (see _MatchTexts).
_MEMO = 10_000


class OverlapError(AmbiguousCalibrationError):
    """A certification whose valid range overlaps a current one with the same match keys."""


def certification_table(metadata: sa.MetaData) -> sa.Table:
    """The ``calib_cert`` table (not created here)."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return sa.Table(
        CERT_TABLE,
        metadata,
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("dataset_type", sa.Text, nullable=False),
        sa.Column("dataset_id", sa.BigInteger, nullable=False),
        sa.Column("match", sa.Text, nullable=False),
        sa.Column("valid_from", sa.DateTime, nullable=False),
        sa.Column("valid_to", sa.DateTime, nullable=True),
        sa.Column("scale", sa.Text, nullable=True),
        sa.Column("recorded_from", sa.DateTime, nullable=False),
        sa.Column("recorded_to", sa.DateTime, nullable=True),
        sa.Column("closed_by", sa.Text, nullable=True),
        sa.Column("replaces", sa.BigInteger, nullable=True),
        sa.Column("source", sa.Text, nullable=True),
        # lookups: one dataset type, one match key, a time
        sa.Index("ix_calib_cert_lookup", "dataset_type", "match", "valid_from"),
        # history and decertify: the certifications of one dataset
        sa.Index("ix_calib_cert_dataset", "dataset_type", "dataset_id"),
    )


def create_certification_table(conn: sa.Connection) -> None:
    """Create ``calib_cert`` and its indexes if they do not exist (inside a write transaction)."""
    table = certification_table(sa.MetaData())
    conn.execute(CreateTable(table, if_not_exists=True))
    for index in sorted(table.indexes, key=lambda index: str(index.name)):
        conn.execute(CreateIndex(index, if_not_exists=True))


def _json_value(value: Value) -> Any:
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return value


def encode_match(match: Mapping[str, Value]) -> str:
    """The canonical text of match-key values, in the given key order."""
    return json.dumps([[k, _json_value(v)] for k, v in match.items()], separators=(",", ":"))


def _decode_match(text: str) -> dict[str, Any]:
    return {k: v for k, v in json.loads(text)}


def _same(value: Any) -> Any:
    return value


def _fmt(moment: datetime.datetime | None, open_text: str = "…") -> str:
    if moment is None:
        return open_text
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def format_values(values: Mapping[str, object]) -> str:
    """``{calibDate: 2024-03-01, detector: 3}`` for messages: dates and times in ISO form."""

    def text(value: object) -> str:
        if isinstance(value, datetime.datetime):
            return _fmt(value)
        if isinstance(value, datetime.date):
            return value.isoformat()
        return repr(value)

    return "{" + ", ".join(f"{k}: {text(v)}" for k, v in values.items()) + "}"


def overlaps(
    a_from: datetime.datetime,
    a_to: datetime.datetime | None,
    b_from: datetime.datetime,
    b_to: datetime.datetime | None,
) -> bool:
    """Whether half-open ranges ``[a_from, a_to)`` and ``[b_from, b_to)`` share an instant."""
    return (b_to is None or a_from < b_to) and (a_to is None or b_from < a_to)


@dataclass(frozen=True, slots=True)
class Certification:
    """One row of ``calib_cert``, with its dataset's data ID and path."""

    id: int
    dataset_type: str
    dataset_id: int
    data_id: dict[str, Value]
    path: str
    match: dict[str, Any]
    valid_from: datetime.datetime
    valid_to: datetime.datetime | None
    scale: str | None
    recorded_from: datetime.datetime
    recorded_to: datetime.datetime | None = None
    closed_by: str | None = None
    replaces: int | None = None
    source: str | None = None

    @property
    def current(self) -> bool:
        """Whether this certification is in force now (not decertified or superseded)."""
        return self.recorded_to is None

    def valid_at(self, moment: datetime.datetime) -> bool:
        """Whether ``moment`` (valid time) is in ``[valid_from, valid_to)``."""
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)

    def recorded_at(self, as_of: datetime.datetime | None) -> bool:
        """Whether the registry held this row as current at recorded time ``as_of`` (None: now)."""
        if as_of is None:
            return self.recorded_to is None
        closed = self.recorded_to
        return self.recorded_from <= as_of and (closed is None or as_of < closed)

    @property
    def valid_range(self) -> str:
        """``[from, to)`` for messages; ``…`` for an open end."""
        scale = f" {self.scale}" if self.scale else ""
        return f"[{_fmt(self.valid_from)}, {_fmt(self.valid_to)}){scale}"

    def describe(self) -> str:
        """One line naming the certification, its dataset and both of its ranges."""
        state = (
            "current"
            if self.recorded_to is None
            else f"{self.closed_by or 'closed'} at {_fmt(self.recorded_to)}"
        )
        return (
            f"#{self.id} {self.dataset_type} {format_values(self.data_id)} valid "
            f"{self.valid_range}, certified {_fmt(self.recorded_from)} UTC ({state})"
        )


class _Times:
    """How naive datetimes cross the registry's raw DBAPI cursor on one database.

    SQLite has no datetime type: SQLAlchemy's ``DateTime`` stores text
    (``2024-03-01 04:00:00.000000``, always with six fraction digits), which
    compares and sorts like the instants it spells. The raw reads bind and parse
    through that very type's processors, so they compare exactly what the writes
    (SQLAlchemy Core) stored. psycopg adapts naive datetimes to ``timestamp``
    itself: nothing to do.
    """

    __slots__ = ("_bind", "_parse")

    def __init__(self, column: sa.Column[Any], dialect: sa.Dialect) -> None:
        native = dialect.name != "sqlite"
        impl = column.type.dialect_impl(dialect)
        self._bind = None if native else impl.bind_processor(dialect)
        self._parse = None if native else impl.result_processor(dialect, None)

    def param(self, moment: datetime.datetime) -> Any:
        """A naive datetime as the cursor binds it."""
        return moment if self._bind is None else self._bind(moment)

    def value(self, raw: Any) -> Any:
        """A datetime column's value (or None) as a naive datetime."""
        return raw if self._parse is None or raw is None else self._parse(raw)


class _MatchTexts:
    """Match values to their canonical text and back, remembered.

    Every lookup encodes its match values and decodes each row's; a repository
    has few distinct ones (detectors x filters), so remembering them saves the
    JSON work. The memo is emptied if it ever grows past ``_MEMO`` entries.
    """

    __slots__ = ("_decoded", "_encoded")

    def __init__(self) -> None:
        self._encoded: dict[tuple[Any, ...], str] = {}
        self._decoded: dict[str, dict[str, Any]] = {}

    def encode(self, match: Mapping[str, Value]) -> str:
        """:func:`encode_match`; the types are part of the key (``1 == True`` encode apart)."""
        key = tuple((k, type(v), v) for k, v in match.items())
        text = self._encoded.get(key)
        if text is None:
            if len(self._encoded) >= _MEMO:
                self._encoded.clear()
            text = self._encoded[key] = encode_match(match)
        return text

    def decode(self, text: str) -> dict[str, Any]:
        """The match values of a row: a new dict each time (a certification owns its own)."""
        decoded = self._decoded.get(text)
        if decoded is None:
            if len(self._decoded) >= _MEMO:
                self._decoded.clear()
            decoded = self._decoded[text] = _decode_match(text)
        return dict(decoded)


@dataclass(frozen=True, slots=True)
class _Plan:
    """One calibration dataset type's SQL: ``calib_cert`` joined to its dataset table.

    ``select`` (SQLAlchemy Core) serves the reads that are not hot. Lookups run
    SQL text built here once, on the registry's raw per-thread cursor, as
    :meth:`Registry.find` does: building, compiling and executing a Core
    statement on a pooled connection cost most of a lookup. Both select the
    same columns: the dataset's keys, its path, then every ``calib_cert`` column.
    """

    dataset_type: str
    keys: tuple[str, ...]
    table: DatasetTable
    select: sa.Select[Any]
    columns: str  # the columns above, as raw SQL's select list (aliases c and d)
    raw_select: str  # those columns of this dataset type's rows; bound: dataset type
    by_id_sql: str  # one row; bound: dataset type, id
    now_sql: str  # candidates now; bound: dataset type, match, moment, moment
    past_sql: str  # candidates as of a recorded time; also: as_of, as_of


def _raw_columns(table: DatasetTable, cert: sa.Table, dialect: sa.Dialect) -> str:
    """The select list of the raw lookups: ``d.<keys>, d.path, c.<calib_cert columns>``."""
    quote = dialect.identifier_preparer.quote
    columns = [f"d.{quote(column)}" for column in table.definition.columns]
    columns.append("d.path")
    columns += [f"c.{quote(column.name)}" for column in cert.c]
    return ", ".join(columns)


class CertificationStore:
    """Certify, close and look up certifications in one registry's ``calib_cert`` table."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._table = certification_table(sa.MetaData())
        self._plans: dict[str, _Plan] = {}
        self._exists = False
        dialect = registry.engine.dialect
        self._dialect = dialect
        self._postgres = dialect.name == "postgresql"
        self._mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._times = _Times(self._table.c.valid_from, dialect)
        self._matches = _MatchTexts()
        self._observed_sql: dict[tuple[str, str, str, tuple[str, ...], bool], str | None] = {}

    # ---- plumbing -------------------------------------------------------------------------

    def _plan(self, dataset_type: str) -> _Plan:
        plan = self._plans.get(dataset_type)
        if plan is not None:
            return plan
        dataset_table = self._registry.dataset_table(dataset_type)
        ds = dataset_table.table
        key_columns = tuple(ds.c[column] for column in dataset_table.definition.columns)
        cert = self._table
        select = (
            sa.select(*key_columns, ds.c.path, *cert.c)
            .select_from(cert.join(ds, ds.c.id == cert.c.dataset_id))
            .where(cert.c.dataset_type == dataset_type)
        )
        mark, quote = self._mark, self._quote
        columns = _raw_columns(dataset_table, cert, self._dialect)
        raw = (
            f"SELECT {columns} FROM {quote(CERT_TABLE)} c "
            f"JOIN {quote(dataset_table.definition.table_name)} d ON d.id = c.dataset_id "
            f"WHERE c.dataset_type = {mark}"
        )
        valid = (
            f"{raw} AND c.{quote('match')} = {mark} AND c.valid_from <= {mark} "
            f"AND (c.valid_to IS NULL OR c.valid_to > {mark})"
        )
        now = f"{valid} AND {self._visible_sql(True)}"
        past = f"{valid} AND {self._visible_sql(False)}"
        plan = _Plan(
            dataset_type,
            dataset_table.keys,
            dataset_table,
            select,
            columns,
            raw,
            f"{raw} AND c.id = {mark}",
            now,
            past,
        )
        self._plans[dataset_type] = plan
        return plan

    def _quote(self, name: str) -> str:
        return str(self._dialect.identifier_preparer.quote(name))

    def _row(self, plan: _Plan, row: Sequence[Any]) -> Certification:
        """A certification from a SQLAlchemy row (values already converted)."""
        data_id = dict(zip(plan.keys, row[: len(plan.keys)], strict=True))
        return self._certification(plan, row, data_id, _same)

    def _raw_row(self, plan: _Plan, row: Sequence[Any]) -> Certification:
        """A certification from a raw cursor's row (dates and times as the database gave them)."""
        return self._certification(plan, row, plan.table.data_id(row), self._times.value)

    def _certification(
        self,
        plan: _Plan,
        row: Sequence[Any],
        data_id: dict[str, Value],
        time: Callable[[Any], Any],
    ) -> Certification:
        """``row``: the plan's columns (keys, path, then calib_cert's), ``time`` converts times."""
        n = len(plan.keys)
        replaces = row[n + 11]
        return Certification(
            int(row[n + 1]),  # id
            row[n + 2],  # dataset_type
            int(row[n + 3]),  # dataset_id
            data_id,
            row[n],  # path
            self._matches.decode(row[n + 4]),
            time(row[n + 5]),  # valid_from
            time(row[n + 6]),  # valid_to
            row[n + 7],  # scale
            time(row[n + 8]),  # recorded_from
            time(row[n + 9]),  # recorded_to
            row[n + 10],  # closed_by
            None if replaces is None else int(replaces),
            row[n + 12],  # source
        )

    def _fetch(self, plan: _Plan, sql: str, params: list[Any]) -> list[Certification]:
        """Run a lookup on the registry's raw per-thread cursor (the open transaction's, if any)."""
        if not self._has_table():
            return []
        return list(self._registry.rows(sql, params, functools.partial(self._raw_row, plan)))

    def _has_table(self) -> bool:
        if self._exists:
            return True
        with self._registry.reader() as conn:
            return self._table_exists(conn)

    def _table_exists(self, conn: sa.Connection) -> bool:
        if not self._exists:
            self._exists = sa.inspect(conn).has_table(CERT_TABLE)
        return self._exists

    def ensure_table(self) -> None:
        """Create ``calib_cert`` in a registry made before certifications existed."""
        if self._exists:
            return
        with self._registry.writer() as conn:
            if not self._table_exists(conn):
                lock_ddl(conn)
                create_certification_table(conn)
                self._exists = True

    def _visible(self, as_of: datetime.datetime | None) -> sa.ColumnElement[bool]:
        c = self._table.c
        if as_of is None:
            return c.recorded_to.is_(None)
        return sa.and_(
            c.recorded_from <= as_of, sa.or_(c.recorded_to.is_(None), c.recorded_to > as_of)
        )

    def _select(
        self,
        plan: _Plan,
        *where: sa.ColumnElement[bool],
        order_by: Sequence[sa.ColumnElement[Any]] | None = None,
        limit: int | None = None,
    ) -> list[Certification]:
        c = self._table.c
        stmt = plan.select.where(*where)
        if order_by is None:
            order_by = (c.match, c.valid_from, c.recorded_from, c.id)
        stmt = stmt.order_by(*order_by)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._registry.reader() as conn:
            if not self._table_exists(conn):
                return []
            rows = conn.execute(stmt).all()
        return [self._row(plan, row) for row in rows]

    # ---- writes ---------------------------------------------------------------------------

    def dataset_id(self, dataset_type: str, data_id: Mapping[str, Value]) -> int | None:
        """The registry id of a stored dataset with this complete data ID, or None."""
        table = self._registry.dataset_table(dataset_type)
        where, params = table.where(table.check_complete(data_id))
        sql = f"SELECT id FROM {self._quote(table.definition.table_name)}{where}"
        found = list(self._registry.rows(sql, params, tuple))
        return int(found[0][0]) if found else None

    def certify(
        self,
        dataset_type: str,
        data_id: Mapping[str, Value],
        match: Mapping[str, Value],
        valid_from: datetime.datetime,
        valid_to: datetime.datetime | None = None,
        *,
        scale: str | None = None,
        allow_overlap: bool = False,
        supersede: bool = False,
        source: str | None = None,
    ) -> Certification:
        """Record that a stored dataset is valid in ``[valid_from, valid_to)`` for ``match``.

        An overlap with a current certification of the same match keys raises
        OverlapError naming it, unless ``allow_overlap`` (the policy resolves
        overlaps) or ``supersede`` (the overlapped rows are closed, and the parts
        of their ranges outside the new one are recorded anew). Certifying the
        same dataset for exactly the same range again changes nothing.
        """
        if valid_to is not None and valid_to <= valid_from:
            raise RegistryError(
                f"cannot certify {dataset_type!r} {format_values(data_id)}: its valid range "
                f"[{_fmt(valid_from)}, {_fmt(valid_to)}) is empty; valid_to must be later "
                "than valid_from"
            )
        self._registry.check_writable(f"certify {dataset_type!r} {format_values(data_id)}")
        self.ensure_table()
        plan = self._plan(dataset_type)
        match_text = encode_match(match)
        with self._registry.writer() as conn:
            self._lock(conn, dataset_type, match_text)
            dataset_id = self.dataset_id(dataset_type, data_id)
            if dataset_id is None:
                raise DatasetNotFoundError(
                    f"cannot certify {dataset_type!r} with data ID {format_values(data_id)}: "
                    f"no such dataset is stored in {self._registry.url}; put or ingest it first"
                )
            current = self._overlapping(plan, match_text, valid_from, valid_to)
            for row in current:
                if (row.dataset_id, row.valid_from, row.valid_to) == (
                    dataset_id,
                    valid_from,
                    valid_to,
                ):
                    return row  # already certified exactly so
            if current and not (allow_overlap or supersede):
                shown = "\n".join(f"  {row.describe()}" for row in current[:10])
                raise OverlapError(
                    f"cannot certify {dataset_type!r} {format_values(data_id)} for "
                    f"[{_fmt(valid_from)}, {_fmt(valid_to)}): it overlaps current "
                    f"certification(s) with the same match keys {format_values(match)}:\n"
                    f"{shown}\n"
                    "decertify those first, pass supersede=True to replace them for this "
                    "range, or declare `resolve latest` in the policy"
                )
            now = self._now(current if supersede else [])
            new_id = self._insert(
                conn,
                dataset_type,
                dataset_id,
                match_text,
                valid_from,
                valid_to,
                scale,
                now,
                None,
                source,
            )
            if supersede:
                self._cut(conn, current, valid_from, valid_to, now, f"superseded by #{new_id}")
        (certification,) = self._fetch(plan, plan.by_id_sql, [dataset_type, new_id])
        return certification

    def restore(self, dataset_type: str, rows: Sequence[Certification]) -> int:
        """Record certifications exactly as another registry recorded them (import and
        transfer, issue 18): valid and recorded ranges, ``closed_by``, ``scale`` and ``source``
        kept, so ``as_of`` answers stay the same. Each row's ``dataset_id`` must already be
        this registry's row id of its dataset; ``replaces`` is mapped to the new ids.

        Rows already here (same dataset, match, valid range and recorded start) are skipped,
        so a rerun adds nothing. ConflictError, and nothing recorded, if this registry
        holds other certifications of the same match values (the histories differ). How
        many rows were added.
        """
        if not rows:
            return 0
        self._registry.check_writable(f"import certifications of {dataset_type!r}")
        self.ensure_table()
        plan = self._plan(dataset_type)
        incoming = {_identity(row): row for row in rows}
        matches = {encode_match(row.match) for row in rows}
        ids: dict[int, int] = {}
        with self._registry.writer() as conn:
            here = self._select(plan, self._table.c.match.in_(sorted(matches)))
            present = {_identity(row): row.id for row in here}
            foreign = [row for row in here if _identity(row) not in incoming]
            if foreign:
                shown = "\n".join(f"  {row.describe()}" for row in foreign[:10])
                raise ConflictError(
                    f"cannot import the certifications of {dataset_type!r}: this registry "
                    f"({self._registry.url}) has other certifications of the same match "
                    f"values, so the two histories differ:\n{shown}\n"
                    "decertify is no remedy (history is kept); import into a repository "
                    "without them, or certify by hand"
                )
            added = 0
            for row in sorted(rows, key=lambda r: r.id):
                known = present.get(_identity(row))
                if known is not None:
                    ids[row.id] = known
                    continue
                replaces = None if row.replaces is None else ids.get(row.replaces)
                result = conn.execute(
                    sa.insert(self._table)
                    .values(
                        dataset_type=dataset_type,
                        dataset_id=row.dataset_id,
                        match=encode_match(row.match),
                        valid_from=row.valid_from,
                        valid_to=row.valid_to,
                        scale=row.scale,
                        recorded_from=row.recorded_from,
                        recorded_to=row.recorded_to,
                        closed_by=row.closed_by,
                        replaces=replaces,
                        source=row.source,
                    )
                    .returning(self._table.c.id)
                )
                ids[row.id] = int(result.scalar_one())
                added += 1
        return added

    def _overlapping(
        self,
        plan: _Plan,
        match_text: str,
        valid_from: datetime.datetime,
        valid_to: datetime.datetime | None,
    ) -> list[Certification]:
        """The current certifications of one match value whose ranges meet ``[valid_from,
        valid_to)``, by valid_from, recorded_from, id."""
        mark, param = self._mark, self._times.param
        sql = (
            f"{plan.raw_select} AND c.{self._quote('match')} = {mark} AND c.recorded_to IS NULL "
            f"AND (c.valid_to IS NULL OR c.valid_to > {mark})"
        )
        params = [plan.dataset_type, match_text, param(valid_from)]
        if valid_to is not None:
            sql += f" AND c.valid_from < {mark}"
            params.append(param(valid_to))
        found = self._fetch(plan, sql, params)
        found.sort(key=_lookup_order)
        return found

    def decertify(
        self,
        dataset_type: str,
        data_id: Mapping[str, Value],
        valid_from: datetime.datetime | None = None,
        valid_to: datetime.datetime | None = None,
    ) -> list[Certification]:
        """Close a dataset's current certifications (all, or the part in a valid range).

        Rows are closed, never deleted: the part of a range outside
        ``[valid_from, valid_to)`` is recorded anew. The closed rows, as they are now.
        """
        self._registry.check_writable(f"decertify {dataset_type!r} {format_values(data_id)}")
        self.ensure_table()
        plan = self._plan(dataset_type)
        c = self._table.c
        with self._registry.writer() as conn:
            dataset_id = self.dataset_id(dataset_type, data_id)
            if dataset_id is None:
                raise DatasetNotFoundError(
                    f"cannot decertify {dataset_type!r} with data ID {format_values(data_id)}: "
                    f"no such dataset is stored in {self._registry.url}"
                )
            low = valid_from or datetime.datetime.min
            locked: set[str] = set()
            while True:  # read, lock what was read, read again under the locks (module doc)
                rows = [
                    row
                    for row in self._select(
                        plan, c.dataset_id == dataset_id, c.recorded_to.is_(None)
                    )
                    if overlaps(row.valid_from, row.valid_to, low, valid_to)
                ]
                unlocked = {encode_match(row.match) for row in rows} - locked
                if not unlocked or not self._postgres:
                    break
                for match_text in sorted(unlocked):
                    self._lock(conn, dataset_type, match_text)
                locked |= unlocked
            now = self._now(rows)
            self._cut(conn, rows, low, valid_to, now, "decertified")
            ids = [row.id for row in rows]
            closed = self._select(plan, c.id.in_(ids)) if ids else []
        return closed

    def _lock(self, conn: sa.Connection, dataset_type: str, match_text: str) -> None:
        if self._postgres:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"butler-calib:{dataset_type}:{match_text}"},
            )

    @staticmethod
    def _now(closing: Iterable[Certification]) -> datetime.datetime:
        """The recorded time of a change: now, but later than any row it closes was recorded."""
        now = utcnow()
        for row in closing:
            if row.recorded_from >= now:
                now = row.recorded_from + _TICK
        return now

    def _insert(
        self,
        conn: sa.Connection,
        dataset_type: str,
        dataset_id: int,
        match_text: str,
        valid_from: datetime.datetime,
        valid_to: datetime.datetime | None,
        scale: str | None,
        now: datetime.datetime,
        replaces: int | None,
        source: str | None,
    ) -> int:
        result = conn.execute(
            sa.insert(self._table)
            .values(
                dataset_type=dataset_type,
                dataset_id=dataset_id,
                match=match_text,
                valid_from=valid_from,
                valid_to=valid_to,
                scale=scale,
                recorded_from=now,
                replaces=replaces,
                source=source,
            )
            .returning(self._table.c.id)
        )
        return int(result.scalar_one())

    def _cut(
        self,
        conn: sa.Connection,
        rows: Iterable[Certification],
        low: datetime.datetime,
        high: datetime.datetime | None,
        now: datetime.datetime,
        reason: str,
    ) -> None:
        """Close ``rows``; record again the parts of their ranges outside ``[low, high)``."""
        c = self._table.c
        for row in rows:
            closed = conn.execute(
                sa.update(self._table)
                .where(c.id == row.id, c.recorded_to.is_(None))
                .values(recorded_to=now, closed_by=reason)
            )
            if closed.rowcount != 1:  # the lock should make this impossible (module doc)
                raise ConflictError(
                    f"certification {row.describe()} was closed by another writer while it "
                    f"was being {reason.split(' ')[0]}; nothing was changed: try again"
                )
            match_text = encode_match(row.match)
            pieces: list[tuple[datetime.datetime, datetime.datetime | None]] = []
            if row.valid_from < low:
                pieces.append((row.valid_from, low))
            if high is not None and (row.valid_to is None or row.valid_to > high):
                pieces.append((high, row.valid_to))
            for start, end in pieces:
                self._insert(
                    conn,
                    row.dataset_type,
                    row.dataset_id,
                    match_text,
                    start,
                    end,
                    row.scale,
                    now,
                    row.id,
                    row.source,
                )

    # ---- reads ----------------------------------------------------------------------------

    def candidates(
        self,
        dataset_type: str,
        match: Mapping[str, Value],
        moment: datetime.datetime,
        as_of: datetime.datetime | None = None,
    ) -> list[Certification]:
        """Certifications visible ``as_of`` (None: current) whose range contains ``moment``.

        Ordered by valid_from, recorded_from, id.
        """
        plan = self._plans.get(dataset_type) or self._plan(dataset_type)
        at = self._times.param(moment)
        params = [dataset_type, self._matches.encode(match), at, at]
        if as_of is None:
            sql = plan.now_sql
        else:
            sql = plan.past_sql
            params += [self._times.param(as_of)] * 2
        found = self._fetch(plan, sql, params)
        if len(found) > 1:
            found.sort(key=_lookup_order)
        return found

    def nearest(
        self,
        dataset_type: str,
        match: Mapping[str, Value],
        moment: datetime.datetime,
        as_of: datetime.datetime | None = None,
    ) -> tuple[Certification | None, Certification | None]:
        """The visible certifications ending last before ``moment`` and starting first after it."""
        plan = self._plan(dataset_type)
        c = self._table.c
        common = (c.match == encode_match(match), self._visible(as_of))
        before = self._select(
            plan, *common, c.valid_to <= moment, order_by=(c.valid_to.desc(), c.id.desc()), limit=1
        )
        after = self._select(
            plan, *common, c.valid_from > moment, order_by=(c.valid_from, c.id), limit=1
        )
        return (before[0] if before else None, after[0] if after else None)

    def bulk(
        self,
        dataset_type: str,
        matches: Iterable[str],
        low: datetime.datetime,
        high: datetime.datetime,
        as_of: datetime.datetime | None = None,
    ) -> dict[str, list[Certification]]:
        """Visible certifications for several encoded match values overlapping ``[low, high]``.

        One query per 500 match values; grouped by encoded match, ordered by valid_from.
        """
        plan = self._plan(dataset_type)
        mark = self._mark
        param = self._times.param
        keys = sorted(set(matches))
        found: dict[str, list[Certification]] = {key: [] for key in keys}
        visible = self._visible_sql(as_of is None)
        seen = [] if as_of is None else [param(as_of)] * 2
        overlapping = f"c.valid_from <= {mark} AND (c.valid_to IS NULL OR c.valid_to > {mark})"
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            marks = ", ".join([mark] * len(chunk))
            sql = (
                f"{plan.raw_select} AND c.{self._quote('match')} IN ({marks}) "
                f"AND {overlapping} AND {visible}"
            )
            params = [dataset_type, *chunk, param(high), param(low), *seen]
            for row in self._fetch(plan, sql, params):
                found[self._matches.encode(row.match)].append(row)
        for rows in found.values():
            rows.sort(key=_lookup_order)
        return found

    def history(
        self,
        dataset_type: str,
        match: Mapping[str, Value] | None = None,
        *,
        as_of: datetime.datetime | None = None,
        include_closed: bool = True,
    ) -> list[Certification]:
        """Every certification of a dataset type (or one match key), closed ones too unless told.

        With ``as_of``, only the rows visible at that recorded time.
        """
        c = self._table.c
        where: list[sa.ColumnElement[bool]] = []
        if match is not None:
            where.append(c.match == encode_match(match))
        if as_of is not None or not include_closed:
            where.append(self._visible(as_of))
        return self._select(self._plan(dataset_type), *where)

    def certified_types(self) -> list[str]:
        """The dataset types that have any certification."""
        with self._registry.reader() as conn:
            if not self._table_exists(conn):
                return []
            column = self._table.c.dataset_type
            return [str(v) for v in conn.scalars(sa.select(column).distinct().order_by(column))]

    def observation_rows(
        self, dataset_type: str, key: str, values: Iterable[Value]
    ) -> Iterator[dict[str, Value]]:
        """Complete data IDs of ``dataset_type`` whose ``key`` is one of ``values`` (bulk).

        One query per 500 values, on the registry's raw per-thread cursor.
        """
        table = self._registry.dataset_table(dataset_type)
        definition = table.definition
        column = definition.columns[definition.keys.index(key)]
        unique = sorted(set(values), key=repr)
        columns = ", ".join(self._quote(name) for name in definition.columns)
        head = f"SELECT {columns} FROM {self._quote(definition.table_name)}"
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            marks = ", ".join([self._mark] * len(chunk))
            sql = f"{head} WHERE {self._quote(column)} IN ({marks})"
            params = table.bound(key, chunk)
            yield from self._registry.rows(sql, params, table.data_id)

    def observed_candidates(
        self,
        dataset_type: str,
        observation_type: str,
        valid_by: str,
        partial: Mapping[str, Value],
        match: Mapping[str, Value],
        as_of: datetime.datetime | None = None,
    ) -> tuple[dict[str, Value], list[Certification]] | None:
        """The one record of ``observation_type`` matching ``partial``, and :meth:`candidates`
        at its ``valid_by`` time, in one statement; None unless exactly one record matches.

        The hot path of a lookup by observation (``get("bias", visit=, detector=)``):
        the record's time is compared in SQL, so ``valid_by`` must be a ``datetime``
        key (a date would compare as text against a datetime on SQLite); else None.
        """
        observed = self._registry.dataset_table(observation_type)
        plan = self._plans.get(dataset_type) or self._plan(dataset_type)
        where, params = observed.where(observed.check_partial(partial))
        key = (dataset_type, observation_type, valid_by, tuple(partial), as_of is None)
        try:
            sql = self._observed_sql[key]
        except KeyError:
            sql = self._observed_sql[key] = self._observed_select(
                plan, observed, valid_by, where, as_of is None
            )
        if sql is None or not self._has_table():
            return None
        params += [dataset_type, self._matches.encode(match)]
        if as_of is not None:
            params += [self._times.param(as_of)] * 2
        rows = list(self._registry.rows(sql, params, tuple))
        record = len(plan.keys) + 1 + len(self._table.c)  # where the record's columns start
        if not rows or (len(rows) > 1 and any(row[record:] != rows[0][record:] for row in rows)):
            return None  # no record, or two
        path = len(plan.keys)
        found = [self._raw_row(plan, row) for row in rows if row[path] is not None]
        if len(found) > 1:
            found.sort(key=_lookup_order)
        return observed.data_id(rows[0][record:]), found

    def _observed_select(
        self, plan: _Plan, observed: DatasetTable, valid_by: str, where: str, now: bool
    ) -> str | None:
        """SQL of :meth:`observed_candidates`: at most two records, each with its candidates.

        The plan's columns come first (as :meth:`_raw_row` reads them), then the
        record's. Left joins keep a record that has no candidate; a certification
        whose dataset row is gone has no path, and is dropped as :meth:`candidates`'s
        inner join drops it. None if ``valid_by`` is not a datetime key.
        """
        quote, mark = self._quote, self._mark
        definition = observed.definition
        if definition.key_types.get(valid_by) != "datetime":
            return None
        record_columns = [f"o.{quote(column)}" for column in definition.columns]
        time = f"o.{quote(definition.columns[definition.keys.index(valid_by)])}"
        records = (
            f"SELECT {', '.join(quote(column) for column in definition.columns)} "
            f"FROM {quote(definition.table_name)}{where} LIMIT 2"
        )
        return (
            f"SELECT {plan.columns}, {', '.join(record_columns)} FROM ({records}) o "
            f"LEFT JOIN {quote(CERT_TABLE)} c ON c.dataset_type = {mark} "
            f"AND c.{quote('match')} = {mark} AND c.valid_from <= {time} "
            f"AND (c.valid_to IS NULL OR c.valid_to > {time}) AND {self._visible_sql(now)} "
            f"LEFT JOIN {quote(plan.table.definition.table_name)} d ON d.id = c.dataset_id"
        )

    def _visible_sql(self, now: bool) -> str:
        """The rows current now, or (bound twice: ``as_of``) visible at a recorded time."""
        if now:
            return "c.recorded_to IS NULL"
        mark = self._mark
        return f"c.recorded_from <= {mark} AND (c.recorded_to IS NULL OR c.recorded_to > {mark})"


def _identity(row: Certification) -> tuple[Any, ...]:
    """What makes two certifications the same record (for :meth:`CertificationStore.restore`)."""
    return (
        row.dataset_id,
        encode_match(row.match),
        row.valid_from,
        row.valid_to,
        row.recorded_from,
    )


def _lookup_order(row: Certification) -> tuple[datetime.datetime, datetime.datetime, int]:
    return (row.valid_from, row.recorded_from, row.id)
