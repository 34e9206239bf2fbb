"""Sky regions of datasets, indexed by sky-pixel ranges (issue 17).

Two tables per dataset type that has regions, created the first time one is recorded
(so older registries gain them additively, without a schema version change):

``rg_<name>(id, dataset_id, encoded)``
    ``id`` primary key, given in the order of the regions' first pixels when recorded
    (nearby regions on nearby pages); ``dataset_id`` the dataset's UUID (unique; the
    dataset's row in ``ds_<name>`` has the same); ``encoded`` the region as bytes (the
    caller's encoding: lsst-sphgeom's ``Region.encode``).
``px_<name>(pix_begin, pix_end, region)``
    The half-open sky-pixel ranges ``[pix_begin, pix_end)`` that cover the region, each
    at most :data:`MAX_RANGE` pixels long (longer ones are cut), ``region`` the ``rg``
    row's ``id``; the primary key ``(pix_begin, pix_end, region)`` is the search's
    covering index (on SQLite the table itself: ``WITHOUT ROWID``, rows in key order).
    Registries whose pixel table predates the key have a covering index instead; the
    search is the same.

A search for the ranges ``[b, e)`` of a query region reads only index entries with
``b - MAX_RANGE < pix_begin < e`` (a stored range beginning earlier ends before ``b``),
keeps those with ``pix_end > b``, reads those regions' rows, hands their bytes to the
caller's exact test, and reads the data IDs of the datasets that have the regions kept:
a region recorded for a dataset since removed or overwritten (a new dataset id) is
never returned. The registry knows nothing of the pixelization: callers give ranges
and bytes, and make the exact overlap test on what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from ..errors import RegistryError
from ..query.predicate import Selection
from ..spec import Value
from ._engine import lock_ddl
from ._schema import short_name
from ._select import condition

if TYPE_CHECKING:
    from ._registry import Registry
    from ._statements import DatasetTable

__all__ = ["MAX_RANGE", "RegionRow", "RegionStore", "cut_ranges"]

#: The longest pixel range stored in one row; longer ranges are cut into pieces. A search
#: reads the index entries of ``MAX_RANGE`` pixels before each query range: short, since at
#: a million CCDs over a survey field each pixel has dozens of entries.
MAX_RANGE = 4

#: Searches are padded to a multiple of this many ranges (see ``RegionStore.search``).
RANGE_SLOTS = 8
#: Kept candidates' datasets are read this many ids per statement, padded to ID_SLOTS.
_IDS_PER_STATEMENT = 512
ID_SLOTS = 32

#: One region to record: the dataset's id, the encoded region and its pixel ranges.
RegionRow = tuple[str, bytes, Sequence[tuple[int, int]]]

_CHUNK = 10_000


def cut_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` with every range longer than :data:`MAX_RANGE` cut into pieces."""
    out: list[tuple[int, int]] = []
    for begin, end in ranges:
        while end - begin > MAX_RANGE:
            out.append((begin, begin + MAX_RANGE))
            begin += MAX_RANGE
        if end > begin:
            out.append((begin, end))
    return out


def _tables(dataset_table: str) -> tuple[sa.Table, sa.Table]:
    suffix = dataset_table.removeprefix("ds_")
    metadata = sa.MetaData()
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    regions_name = short_name(f"rg_{suffix}", f"rg:{dataset_table}")
    regions = sa.Table(
        regions_name,
        metadata,
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.Text, nullable=False),
        sa.Column("encoded", sa.LargeBinary, nullable=False),
        sa.Index(
            short_name(f"uq_{regions_name}_dataset_id", f"rgid:{dataset_table}"),
            "dataset_id",
            unique=True,
        ),
    )
    pixels_name = short_name(f"px_{suffix}", f"px:{dataset_table}")
    pixels = sa.Table(
        pixels_name,
        metadata,
        sa.Column("pix_begin", sa.BigInteger, nullable=False),
        sa.Column("pix_end", sa.BigInteger, nullable=False),
        sa.Column("region", sa.BigInteger, nullable=False),
        # the search's covering index is the key; SQLite stores the rows in it, in order
        sa.PrimaryKeyConstraint(
            "pix_begin",
            "pix_end",
            "region",
            name=short_name(f"pk_{pixels_name}", f"pxpk:{dataset_table}"),
        ),
        # for deleting a removed or overwritten dataset's ranges
        sa.Index(short_name(f"ix_{pixels_name}_region", f"pxrg:{dataset_table}"), "region"),
        sqlite_with_rowid=False,
    )
    return regions, pixels


class RegionStore:
    """The regions of one registry's datasets: recorded and searched by pixel ranges."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._present: set[str] = set()  # dataset tables whose region tables exist
        # the same Table objects every time: SQLAlchemy's compiled-statement cache keys on them
        self._tables: dict[str, tuple[sa.Table, sa.Table]] = {}
        self._sql: dict[tuple[str, int], str] = {}  # searches, by table and slots
        self._absent: set[str] = set()  # dataset tables found without region tables
        self._indexed: set[str] = set()  # dataset tables whose pixel table has a region index

    def _pair(self, dataset_table: str) -> tuple[sa.Table, sa.Table]:
        pair = self._tables.get(dataset_table)
        if pair is None:
            pair = self._tables[dataset_table] = _tables(dataset_table)
        return pair

    def _ensure(self, table: DatasetTable) -> tuple[sa.Table, sa.Table]:
        regions, pixels = self._pair(table.table.name)
        if table.table.name in self._present:
            return regions, pixels
        with self._registry.writer() as conn:
            if not sa.inspect(conn).has_table(pixels.name):
                lock_ddl(conn)
                for created in (regions, pixels):
                    conn.execute(CreateTable(created, if_not_exists=True))
                    for index in sorted(created.indexes, key=lambda index: str(index.name)):
                        conn.execute(CreateIndex(index, if_not_exists=True))
        self._present.add(table.table.name)
        self._absent.discard(table.table.name)
        return regions, pixels

    def _existing(self, table: DatasetTable) -> tuple[sa.Table, sa.Table] | None:
        regions, pixels = self._pair(table.table.name)
        if table.table.name not in self._present:
            with self._registry.reader() as conn:
                if not sa.inspect(conn).has_table(pixels.name):
                    return None
            self._present.add(table.table.name)
        return regions, pixels

    def present(self, table: DatasetTable) -> bool:
        """Whether ``table``'s datasets may have regions (its region tables exist; an absent
        answer is remembered: regions recorded by another process since are left for the
        search's join to skip)."""
        name = table.table.name
        if name in self._present:
            return True
        if name in self._absent:
            return False
        if self._existing(table) is None:
            self._absent.add(name)
            return False
        return True

    def record(self, dataset_type: str, rows: Iterable[RegionRow]) -> int:
        """Record regions of ``dataset_type`` datasets (joins an open transaction); how many.

        The regions get consecutive ids in the order of their first pixel (nearby regions
        on nearby pages: a search reads few), and their ranges are inserted in the order
        of the pixel table's key; one ``executemany`` per table and chunk."""
        table = self._registry.dataset_table(dataset_type)
        ordered = sorted(rows, key=lambda row: min(row[2], default=(-1, 0)))
        if not ordered:
            return 0
        dataset_ids = [dataset_id for dataset_id, _, _ in ordered]
        if len(set(dataset_ids)) != len(dataset_ids):
            raise RegistryError("a dataset id appears twice among the regions recorded at once")
        regions, pixels = self._ensure(table)
        dialect = self._registry.engine.dialect
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # plain SQL with tuples: SQLAlchemy's per-row parameter handling cost more than the rows
        insert_regions = (
            f"INSERT INTO {quote(regions.name)} (id, dataset_id, encoded) "
            f"VALUES ({mark}, {mark}, {mark})"
        )
        insert_pixels = (
            f"INSERT INTO {quote(pixels.name)} (pix_begin, pix_end, region) "
            f"VALUES ({mark}, {mark}, {mark})"
        )
        with self._registry.writer() as conn:
            first = self._next_id(conn, regions)
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                ids = range(first + start, first + start + len(chunk))
                conn.exec_driver_sql(
                    insert_regions,
                    [(i, d, encoded) for i, (d, encoded, _) in zip(ids, chunk, strict=True)],
                )
                conn.exec_driver_sql(
                    insert_pixels,
                    sorted(
                        (begin, end, region_id)
                        for region_id, (_, _, ranges) in zip(ids, chunk, strict=True)
                        for begin, end in cut_ranges(ranges)
                    ),
                )
        return len(ordered)

    @staticmethod
    def _next_id(conn: sa.Connection, regions: sa.Table) -> int:
        """The first free region id, held for this transaction (PostgreSQL: an advisory
        lock per table until it ends; SQLite's write transaction is the only writer)."""
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %(key)s))",
                {"key": f":butler-regions:{regions.name}"},
            )
        last = conn.execute(sa.select(sa.func.max(regions.c.id))).scalar()
        return 1 if last is None else int(last) + 1

    def search(
        self,
        dataset_type: str,
        ranges: Sequence[tuple[int, int]] | None,
        selection: Selection | None = None,
        keep: Callable[[bytes], bool] | None = None,
    ) -> Iterator[tuple[dict[str, Value], bytes]]:
        """``(data ID, encoded region)`` of the selected datasets whose regions have a pixel
        range meeting one of ``ranges`` (None: every region) and that ``keep`` keeps, in no
        particular order.

        With ranges, two statements: the candidates' ``(dataset id, encoded region)`` from
        the pixel search (index entries, then the regions' rows, near each other as they
        were recorded in sky order), ``keep`` made on those bytes, then the data IDs of the
        kept datasets alone (with a ``selection``, its condition too): on SQLite a dataset
        row is a page read at a random place of the file, and reading only the kept ones
        measured 1.3 ms a query at 1,000,000 regions against 15 ms for one statement
        joining every candidate. On PostgreSQL without a selection, one statement
        joining the candidates to their datasets (a round trip costs more than the
        server's lookups), ``keep`` made after. Without a selection the statements are
        plain SQL, one text per table and number of slots, run on the DBAPI cursor: at a
        millisecond a query SQLAlchemy's per-statement work would be most of the time.
        """
        table = self._registry.dataset_table(dataset_type)
        tables = self._existing(table)
        if tables is None or (ranges is not None and not ranges):
            return iter(())
        regions, pixels = tables
        if ranges is None:
            found = self._every(table, regions, selection or Selection())
            return found if keep is None else (item for item in found if keep(item[1]))
        # padded to a multiple of RANGE_SLOTS ranges (repeating the last): a few texts
        ranges = [*ranges, *[ranges[-1]] * (-len(ranges) % RANGE_SLOTS)]
        params: list[int] = []
        for begin, end in ranges:
            params += [int(begin) - MAX_RANGE, int(end), int(begin)]
        plain = selection is None or selection == Selection()
        if plain and self._registry.engine.dialect.name == "postgresql":
            width = len(table.keys)
            found = self._registry.rows(
                self._joined_sql(table, regions, pixels, len(ranges)),
                params,
                lambda row: (table.data_id(row[:width]), bytes(row[width])),
            )
            return iter(found) if keep is None else (item for item in found if keep(item[1]))
        candidates = self._registry.rows(
            self._candidates_sql(regions, pixels, len(ranges)),
            params,
            lambda row: (str(row[0]), bytes(row[1])),
        )
        kept = dict(candidates if keep is None else (c for c in candidates if keep(c[1])))
        if not kept:
            return iter(())
        return self._datasets(table, kept, selection)

    def _every(
        self, table: DatasetTable, regions: sa.Table, selection: Selection
    ) -> Iterator[tuple[dict[str, Value], bytes]]:
        """``(data ID, encoded region)`` of every dataset ``selection`` selects that has one."""
        ds = table.table
        keys = [table.column(key) for key in table.keys]
        width = len(keys)
        where = condition(table, selection, self._registry.dataset_table_or_none)
        statement = (
            sa.select(*keys, regions.c.encoded)
            .select_from(ds.join(regions, regions.c.dataset_id == ds.c.dataset_id))
            .where(where)
        )
        names = table.keys  # Core has run the columns' result processors already
        return self._registry.select_rows(
            statement,
            lambda row: (dict(zip(names, row[:width], strict=True)), bytes(row[width])),
        )

    def _datasets(
        self, table: DatasetTable, kept: dict[str, bytes], selection: Selection | None
    ) -> Iterator[tuple[dict[str, Value], bytes]]:
        """``(data ID, encoded region)`` of the recorded datasets among ``kept`` (dataset id:
        encoded region) that ``selection`` selects: a region recorded before its dataset,
        or for one since removed or overwritten, has no dataset row and is left out."""
        ids = list(kept)
        width = len(table.keys)
        if selection is not None and selection != Selection():
            ds = table.table
            where = condition(table, selection, self._registry.dataset_table_or_none)
            names = table.keys
            for start in range(0, len(ids), _IDS_PER_STATEMENT):
                statement = sa.select(
                    *[table.column(key) for key in table.keys], ds.c.dataset_id
                ).where(where, ds.c.dataset_id.in_(ids[start : start + _IDS_PER_STATEMENT]))
                yield from self._registry.select_rows(
                    statement,
                    lambda row: (
                        dict(zip(names, row[:width], strict=True)),
                        kept[str(row[width])],
                    ),
                )
            return
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            part = ids[start : start + _IDS_PER_STATEMENT]
            part += [part[-1]] * (-len(part) % ID_SLOTS)  # a few statement texts
            yield from self._registry.rows(
                self._datasets_sql(table, len(part)),
                part,
                lambda row: (table.data_id(row[:width]), kept[str(row[width])]),
            )

    def _mark(self) -> tuple[Callable[[str], str], str]:
        dialect = self._registry.engine.dialect
        return dialect.identifier_preparer.quote, "?" if dialect.paramstyle == "qmark" else "%s"

    def _candidate_ids(self, regions: sa.Table, pixels: sa.Table, count: int) -> str:
        """The condition on ``regions`` (as ``r``) that its row has a pixel range meeting one
        of ``count`` ranges, each given as three parameters: ``begin - MAX_RANGE, end,
        begin`` (a stored range is at most MAX_RANGE long: one beginning earlier ends
        before ``begin``).

        On PostgreSQL the ids are an array (``r.id = ANY(ARRAY(...))``): a prepared
        statement's generic plan then still reads the regions by key, where ``IN``'s
        semi-join was planned as a scan of every region (10 ms at 100,000 regions)."""
        quote, mark = self._mark()
        terms = " OR ".join(
            [f"(pix_begin > {mark} AND pix_begin < {mark} AND pix_end > {mark})"] * count
        )
        ids = f"SELECT region FROM {quote(pixels.name)} WHERE {terms}"
        if self._registry.engine.dialect.name == "postgresql":
            return f"r.id = ANY(ARRAY({ids}))"
        return f"r.id IN ({ids})"

    def _candidates_sql(self, regions: sa.Table, pixels: sa.Table, count: int) -> str:
        """``SELECT dataset_id, encoded`` of the regions meeting ``count`` ranges (SQLite:
        the exact test is made on these before any dataset row is read, at random
        places of the file)."""
        key = (regions.name, count)
        sql = self._sql.get(key)
        if sql is None:
            quote, _ = self._mark()
            sql = self._sql[key] = (
                f"SELECT r.dataset_id, r.encoded FROM {quote(regions.name)} r "
                f"WHERE {self._candidate_ids(regions, pixels, count)}"
            )
        return sql

    def _joined_sql(
        self, table: DatasetTable, regions: sa.Table, pixels: sa.Table, count: int
    ) -> str:
        """``SELECT <keys>, encoded`` of the datasets whose regions meet ``count`` ranges
        (PostgreSQL: one round trip, the server's index lookups cost less than a second)."""
        key = (f"{regions.name}+{table.table.name}", count)
        sql = self._sql.get(key)
        if sql is None:
            quote, _ = self._mark()
            columns = ", ".join(f"d.{quote(table.column(k).name)}" for k in table.keys)
            sql = self._sql[key] = (
                f"SELECT {columns}, r.encoded FROM {quote(regions.name)} r "
                f"JOIN {quote(table.table.name)} d ON d.dataset_id = r.dataset_id "
                f"WHERE {self._candidate_ids(regions, pixels, count)}"
            )
        return sql

    def _datasets_sql(self, table: DatasetTable, count: int) -> str:
        """``SELECT <keys>, dataset_id`` of the datasets with one of ``count`` ids."""
        key = (table.table.name, count)
        sql = self._sql.get(key)
        if sql is None:
            quote, mark = self._mark()
            columns = ", ".join(quote(table.column(k).name) for k in table.keys)
            sql = self._sql[key] = (
                f"SELECT {columns}, dataset_id FROM {quote(table.table.name)} "
                f"WHERE dataset_id IN ({', '.join([mark] * count)})"
            )
        return sql

    def forget(self, conn: sa.Connection, table: DatasetTable, which: Any) -> None:
        """Delete the regions (and their pixel ranges) of the datasets of ``table`` that
        ``which`` (a condition on its rows) selects, on ``conn``'s open transaction, before
        they are removed or overwritten: the pixel search then never scans them."""
        tables = self._existing(table)
        if tables is None:
            return
        regions, pixels = tables
        ds = table.table
        if table.table.name not in self._indexed:  # registries of before the region index
            index = _region_index(pixels)
            conn.execute(CreateIndex(index, if_not_exists=True))
            self._indexed.add(table.table.name)
        stale = sa.select(ds.c.dataset_id).where(which)
        conn.execute(
            sa.delete(pixels).where(
                pixels.c.region.in_(sa.select(regions.c.id).where(regions.c.dataset_id.in_(stale)))
            )
        )
        conn.execute(sa.delete(regions).where(regions.c.dataset_id.in_(stale)))


def _region_index(pixels: sa.Table) -> sa.Index:
    for index in pixels.indexes:
        if [c.name for c in index.columns] == ["region"]:
            return index
    raise AssertionError("the pixel table has an index on region")
