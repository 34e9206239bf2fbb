"""Sky regions of datasets, indexed by sky-pixel ranges (issue 17).

Two tables per dataset type that has regions, created the first time one is recorded
(so older registries gain them additively, without a schema version change):

``rg_<name>(id, dataset_id, encoded)``
    ``id`` autoincrement primary key; ``dataset_id`` the dataset's UUID (unique; the
    dataset's row in ``ds_<name>`` has the same); ``encoded`` the region as bytes (the
    caller's encoding: lsst-sphgeom's ``Region.encode``).
``px_<name>(pix_begin, pix_end, region)``
    The half-open sky-pixel ranges ``[pix_begin, pix_end)`` that cover the region, each
    at most :data:`MAX_RANGE` pixels long (longer ones are cut), ``region`` the ``rg``
    row's ``id``; one covering index on ``(pix_begin, pix_end, region)``.

A search for the ranges ``[b, e)`` of a query region reads only index entries with
``b - MAX_RANGE < pix_begin < e`` (a stored range beginning earlier ends before ``b``),
keeps those with ``pix_end > b``, and joins the regions to the datasets that have them:
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
        sa.Index(
            short_name(f"ix_{pixels_name}", f"pxix:{dataset_table}"),
            "pix_begin",
            "pix_end",
            "region",
        ),
        # for deleting a removed or overwritten dataset's ranges
        sa.Index(short_name(f"ix_{pixels_name}_region", f"pxrg:{dataset_table}"), "region"),
    )
    return regions, pixels


class RegionStore:
    """The regions of one registry's datasets: recorded and searched by pixel ranges."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._present: set[str] = set()  # dataset tables whose region tables exist
        # the same Table objects every time: SQLAlchemy's compiled-statement cache keys on them
        self._tables: dict[str, tuple[sa.Table, sa.Table]] = {}
        self._sql: dict[tuple[str, int], str] = {}  # searches, by table and range slots
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
        """Record regions of ``dataset_type`` datasets (joins an open transaction); how many."""
        table = self._registry.dataset_table(dataset_type)
        rows = list(rows)
        if not rows:
            return 0
        regions, pixels = self._ensure(table)
        dialect = self._registry.engine.dialect
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # plain SQL with tuples: SQLAlchemy's per-row parameter handling cost more than the rows
        insert_pixels = (
            f"INSERT INTO {quote(pixels.name)} (pix_begin, pix_end, region) "
            f"VALUES ({mark}, {mark}, {mark})"
        )
        with self._registry.writer() as conn:
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                ids = self._insert_regions(conn, regions, chunk, mark)
                conn.exec_driver_sql(
                    insert_pixels,
                    [
                        (begin, end, region_id)
                        for region_id, (_, _, ranges) in zip(ids, chunk, strict=True)
                        for begin, end in cut_ranges(ranges)
                    ],
                )
        return len(rows)

    @staticmethod
    def _insert_regions(
        conn: sa.Connection, regions: sa.Table, chunk: Sequence[RegionRow], mark: str
    ) -> list[int]:
        """Insert the ``rg`` rows of a chunk; their ids, in order."""
        dataset_ids = [dataset_id for dataset_id, _, _ in chunk]
        if len(set(dataset_ids)) != len(dataset_ids):
            raise RegistryError("a dataset id appears twice among the regions recorded at once")
        quote = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(
            f"INSERT INTO {quote(regions.name)} (dataset_id, encoded) VALUES ({mark}, {mark})",
            [(d, encoded) for d, encoded, _ in chunk],
        )
        found: dict[str, int] = {}
        column = regions.c
        for start in range(0, len(dataset_ids), 500):
            part = dataset_ids[start : start + 500]
            rows = conn.execute(
                sa.select(column.dataset_id, column.id).where(column.dataset_id.in_(part))
            )
            found.update((str(d), int(i)) for d, i in rows)
        return [found[d] for d in dataset_ids]

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

        One statement: the pixel search's candidate regions joined to their datasets (and,
        with a ``selection``, its condition). Without a selection it is plain SQL, one text
        per table and number of range slots, run on the DBAPI cursor: at a few milliseconds
        a query SQLAlchemy's per-statement work would be most of the time.
        """
        table = self._registry.dataset_table(dataset_type)
        tables = self._existing(table)
        if tables is None or (ranges is not None and not ranges):
            return iter(())
        regions, pixels = tables
        ds = table.table
        plain = selection is None or selection == Selection()
        keys = [table.column(key) for key in table.keys]
        width = len(keys)
        found: Iterator[tuple[dict[str, Value], bytes]]
        if ranges is None or not plain:
            where = condition(table, selection or Selection(), self._registry.dataset_table_or_none)
            statement = (
                sa.select(*keys, regions.c.encoded)
                .select_from(ds.join(regions, regions.c.dataset_id == ds.c.dataset_id))
                .where(where)
            )
            if ranges is not None:
                terms = [
                    sa.and_(
                        pixels.c.pix_begin > int(begin) - MAX_RANGE,
                        pixels.c.pix_begin < int(end),
                        pixels.c.pix_end > int(begin),
                    )
                    for begin, end in ranges
                ]
                statement = statement.where(
                    regions.c.id.in_(sa.select(pixels.c.region).where(sa.or_(*terms)))
                )
            names = table.keys  # Core has run the columns' result processors already
            found = self._registry.select_rows(
                statement,
                lambda row: (dict(zip(names, row[:width], strict=True)), bytes(row[width])),
            )
        else:
            # padded to a multiple of RANGE_SLOTS ranges (repeating the last): a few texts
            ranges = [*ranges, *[ranges[-1]] * (-len(ranges) % RANGE_SLOTS)]
            params: list[int] = []
            for begin, end in ranges:
                params += [int(begin) - MAX_RANGE, int(end), int(begin)]
            found = self._registry.rows(
                self._search_sql(table, regions, pixels, len(ranges)),
                params,
                lambda row: (table.data_id(row[:width]), bytes(row[width])),
            )
        if keep is None:
            return found
        return (item for item in found if keep(item[1]))

    def _search_sql(
        self, table: DatasetTable, regions: sa.Table, pixels: sa.Table, count: int
    ) -> str:
        """``SELECT <keys>, encoded`` of the datasets whose regions have a pixel range
        meeting one of ``count`` ranges, each given as three parameters:
        ``begin - MAX_RANGE, end, begin``."""
        key = (regions.name, count)
        sql = self._sql.get(key)
        if sql is None:
            dialect = self._registry.engine.dialect
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            terms = " OR ".join(
                [f"(pix_begin > {mark} AND pix_begin < {mark} AND pix_end > {mark})"] * count
            )
            columns = ", ".join(f"d.{quote(table.column(k).name)}" for k in table.keys)
            sql = self._sql[key] = (
                f"SELECT {columns}, r.encoded FROM {quote(table.table.name)} d "
                f"JOIN {quote(regions.name)} r ON r.dataset_id = d.dataset_id "
                f"WHERE r.id IN (SELECT region FROM {quote(pixels.name)} WHERE {terms})"
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
