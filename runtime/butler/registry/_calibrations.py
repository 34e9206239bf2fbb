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

Certifying takes the write lock (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL a
transaction-scoped advisory lock per dataset type and match key), so the overlap
check and the insert cannot interleave with another writer's.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from ..errors import AmbiguousCalibrationError, DatasetNotFoundError, RegistryError
from ..spec import Value
from ._engine import lock_ddl
from ._schema import utcnow

if TYPE_CHECKING:
    from ._registry import Registry

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


@dataclass(frozen=True, slots=True)
class _Plan:
    """One calibration dataset type's SQL: ``calib_cert`` joined to its dataset table."""

    dataset_type: str
    keys: tuple[str, ...]
    ds: sa.Table
    key_columns: tuple[sa.Column[Any], ...]
    select: sa.Select[Any]
    current: sa.Select[Any]  # candidates now: bound ``match``, ``moment``
    past: sa.Select[Any]  # candidates as of a recorded time: also ``as_of``


class CertificationStore:
    """Certify, close and look up certifications in one registry's ``calib_cert`` table."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._table = certification_table(sa.MetaData())
        self._plans: dict[str, _Plan] = {}
        self._exists = False
        self._postgres = registry.engine.dialect.name == "postgresql"

    # ---- plumbing -------------------------------------------------------------------------

    def _plan(self, dataset_type: str) -> _Plan:
        plan = self._plans.get(dataset_type)
        if plan is not None:
            return plan
        dataset_table = self._registry._table(dataset_type)
        definition = dataset_table.definition
        ds = dataset_table.table
        key_columns = tuple(ds.c[column] for column in definition.columns)
        cert = self._table
        select = (
            sa.select(*key_columns, ds.c.path, *cert.c)
            .select_from(cert.join(ds, ds.c.id == cert.c.dataset_id))
            .where(cert.c.dataset_type == dataset_type)
        )
        # The lookup statements are built once with bound parameters (the hot path).
        moment = sa.bindparam("moment", type_=sa.DateTime())
        valid = (
            cert.c.match == sa.bindparam("match", type_=sa.Text()),
            cert.c.valid_from <= moment,
            sa.or_(cert.c.valid_to.is_(None), cert.c.valid_to > moment),
        )
        as_of = sa.bindparam("as_of", type_=sa.DateTime())
        order = (cert.c.valid_from, cert.c.recorded_from, cert.c.id)
        current = select.where(*valid, cert.c.recorded_to.is_(None)).order_by(*order)
        past = select.where(
            *valid,
            cert.c.recorded_from <= as_of,
            sa.or_(cert.c.recorded_to.is_(None), cert.c.recorded_to > as_of),
        ).order_by(*order)
        plan = _Plan(dataset_type, definition.keys, ds, key_columns, select, current, past)
        self._plans[dataset_type] = plan
        return plan

    def _row(self, plan: _Plan, row: Sequence[Any]) -> Certification:
        n = len(plan.keys)
        data_id = dict(zip(plan.keys, row[:n], strict=True))
        path = row[n]
        (id_, dataset_type, dataset_id, match, valid_from, valid_to, scale) = row[n + 1 : n + 8]
        recorded_from, recorded_to, closed_by, replaces, source = row[n + 8 : n + 13]
        return Certification(
            int(id_),
            dataset_type,
            int(dataset_id),
            data_id,
            path,
            _decode_match(match),
            valid_from,
            valid_to,
            scale,
            recorded_from,
            recorded_to,
            closed_by,
            None if replaces is None else int(replaces),
            source,
        )

    def _table_exists(self, conn: sa.Connection) -> bool:
        if not self._exists:
            self._exists = sa.inspect(conn).has_table(CERT_TABLE)
        return self._exists

    def ensure_table(self) -> None:
        """Create ``calib_cert`` in a registry made before certifications existed."""
        with self._registry._write() as conn:
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
        with self._registry._reader() as conn:
            if not self._table_exists(conn):
                return []
            rows = conn.execute(stmt).all()
        return [self._row(plan, row) for row in rows]

    # ---- writes ---------------------------------------------------------------------------

    def dataset_id(self, dataset_type: str, data_id: Mapping[str, Value]) -> int | None:
        """The registry id of a stored dataset with this complete data ID, or None."""
        table = self._registry._table(dataset_type)
        checked = table.check_complete(data_id)
        with self._registry._reader() as conn:
            found = conn.scalar(sa.select(table.table.c.id).where(table.match(checked)))
        return None if found is None else int(found)

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
        self.ensure_table()
        plan = self._plan(dataset_type)
        match_text = encode_match(match)
        c = self._table.c
        with self._registry._write() as conn:
            self._lock(conn, dataset_type, match_text)
            dataset_id = self.dataset_id(dataset_type, data_id)
            if dataset_id is None:
                raise DatasetNotFoundError(
                    f"cannot certify {dataset_type!r} with data ID {format_values(data_id)}: "
                    f"no such dataset is stored in {self._registry.url}; put or ingest it first"
                )
            current = self._select(
                plan,
                c.match == match_text,
                c.recorded_to.is_(None),
                c.valid_from < valid_to if valid_to is not None else sa.true(),
                sa.or_(c.valid_to.is_(None), c.valid_to > valid_from),
            )
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
        (certification,) = self._select(plan, c.id == new_id)
        return certification

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
        self.ensure_table()
        plan = self._plan(dataset_type)
        c = self._table.c
        with self._registry._write() as conn:
            dataset_id = self.dataset_id(dataset_type, data_id)
            if dataset_id is None:
                raise DatasetNotFoundError(
                    f"cannot decertify {dataset_type!r} with data ID {format_values(data_id)}: "
                    f"no such dataset is stored in {self._registry.url}"
                )
            low = valid_from or datetime.datetime.min
            rows = [
                row
                for row in self._select(plan, c.dataset_id == dataset_id, c.recorded_to.is_(None))
                if overlaps(row.valid_from, row.valid_to, low, valid_to)
            ]
            for match_text in sorted({encode_match(row.match) for row in rows}):
                self._lock(conn, dataset_type, match_text)
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
            conn.execute(
                sa.update(self._table)
                .where(c.id == row.id, c.recorded_to.is_(None))
                .values(recorded_to=now, closed_by=reason)
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
        """Certifications visible ``as_of`` (None: current) whose range contains ``moment``."""
        plan = self._plan(dataset_type)
        params: dict[str, Any] = {"match": encode_match(match), "moment": moment}
        if as_of is not None:
            params["as_of"] = as_of
        with self._registry._reader() as conn:
            if not self._table_exists(conn):
                return []
            rows = conn.execute(plan.current if as_of is None else plan.past, params).all()
        return [self._row(plan, row) for row in rows]

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
        c = self._table.c
        keys = sorted(set(matches))
        found: dict[str, list[Certification]] = {key: [] for key in keys}
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            for row in self._select(
                plan,
                c.match.in_(chunk),
                c.valid_from <= high,
                sa.or_(c.valid_to.is_(None), c.valid_to > low),
                self._visible(as_of),
            ):
                found[encode_match(row.match)].append(row)
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
        with self._registry._reader() as conn:
            if not self._table_exists(conn):
                return []
            column = self._table.c.dataset_type
            return [str(v) for v in conn.scalars(sa.select(column).distinct().order_by(column))]

    def observation_rows(
        self, dataset_type: str, key: str, values: Iterable[Value]
    ) -> Iterator[dict[str, Value]]:
        """Complete data IDs of ``dataset_type`` whose ``key`` is one of ``values`` (bulk)."""
        table = self._registry._table(dataset_type)
        definition = table.definition
        column = table.table.c[definition.columns[definition.keys.index(key)]]
        columns = [table.table.c[col] for col in definition.columns]
        unique = sorted(set(values), key=repr)
        with self._registry._reader() as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                for row in conn.execute(sa.select(*columns).where(column.in_(chunk))):
                    yield dict(zip(definition.keys, row, strict=True))
