"""Import Gen2 calibration registries (``calibRegistry.sqlite3``), overlaps and gaps reported.

A Gen2 calibration registry has one table per calibration type (``bias``,
``flat``, ...) whose rows carry the calibration's keys (``ccd``, ``filter``,
``calibDate``; MegaCam also ``path`` and ``extension``) and a validity range
``validStart``/``validEnd``: text dates (``2013-05-07``) or date-times
(``2003-05-22T19:00:00``), both ends inclusive, which Gen2 compared as strings.

Conversion to half-open ranges ``[valid_from, valid_to)``, keeping what the
ranges meant:

* ``validStart`` → its instant (a date: its midnight);
* ``validEnd`` of a date → the next midnight (the whole end day is valid);
* ``validEnd`` of a date-time → that instant plus one microsecond (the end is included).

Gen2's string comparison did not always implement that meaning: an observation
time during a date-only ``validEnd`` day compared greater than the date and
matched nothing (ci_hsc ``defects``). Converted, that day is covered, as intended.

:func:`read_registry` and :func:`analyze` work on a registry file alone;
:func:`import_registry` also records and certifies the rows in a repository
whose instrument defines the same calibration types. Rows a certification
refuses (an overlap, with no ``resolve`` rule in the policy) are listed in the
report, never dropped silently.
"""

from __future__ import annotations

import datetime
import os
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ButlerError
from ..registry._calibrations import format_values, overlaps

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = [
    "Gap",
    "Gen2Calibration",
    "Gen2Report",
    "Overlap",
    "analyze",
    "convert_end",
    "convert_start",
    "import_registry",
    "read_registry",
]

_TICK = datetime.timedelta(microseconds=1)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
#: Columns that are not calibration keys.
_BOOKKEEPING = {"id", "validStart", "validEnd", "path", "registered", "version", "label"}
#: Columns that say which detector (or detector HDU) a row is for.
_DETECTOR_COLUMNS = ("ccd", "detector", "extension")
#: Candidate match columns, in order.
_MATCH_COLUMNS = (*_DETECTOR_COLUMNS, "filter")


def convert_start(text: str) -> datetime.datetime:
    """A Gen2 ``validStart`` as the first instant of validity."""
    return datetime.datetime.fromisoformat(text.strip())


def convert_end(text: str) -> datetime.datetime:
    """A Gen2 inclusive ``validEnd`` as the exclusive end of a half-open range."""
    text = text.strip()
    if _DATE.match(text):
        return datetime.datetime.fromisoformat(text) + datetime.timedelta(days=1)
    return datetime.datetime.fromisoformat(text) + _TICK


@dataclass(frozen=True)
class Gen2Calibration:
    """One row of a Gen2 calibration table, with its range converted."""

    table: str
    row_id: int
    values: dict[str, object]
    valid_start: str
    valid_end: str
    valid_from: datetime.datetime
    valid_to: datetime.datetime
    path: str | None = None

    @property
    def identity(self) -> str:
        """The calibration product a row belongs to (its file; rows differ per detector)."""
        if self.path is not None:
            return self.path
        rest = {k: v for k, v in self.values.items() if k not in _DETECTOR_COLUMNS}
        return format_values(rest)

    def describe(self) -> str:
        """The row: table, id, keys or path, and its Gen2 range."""
        what = self.path or format_values(self.values)
        return f"{self.table} #{self.row_id} {what} [{self.valid_start} .. {self.valid_end}]"

    def product(self) -> str:
        """The calibration product (all its detectors) and its Gen2 range."""
        return f"{self.table} {self.identity} [{self.valid_start} .. {self.valid_end}]"


@dataclass(frozen=True)
class Overlap:
    """Two rows with the same match values whose converted ranges share an instant."""

    table: str
    match: dict[str, object]
    first: Gen2Calibration
    second: Gen2Calibration


@dataclass(frozen=True)
class Gap:
    """Time between consecutive ranges of one match value that no row covers."""

    table: str
    match: dict[str, object]
    before: Gen2Calibration
    after: Gen2Calibration

    @property
    def span(self) -> tuple[datetime.datetime, datetime.datetime]:
        return self.before.valid_to, self.after.valid_from


@dataclass
class Gen2Report:
    """What a Gen2 registry holds and, after an import, what became of it."""

    source: str
    rows: dict[str, int] = field(default_factory=dict)
    match_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    overlaps: list[Overlap] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    imported: int = 0
    refused: list[tuple[Gen2Calibration, str]] = field(default_factory=list)
    skipped_tables: dict[str, str] = field(default_factory=dict)

    def overlap_pairs(self, table: str) -> set[tuple[str, str]]:
        """Distinct pairs of calibration products (files) with overlapping ranges in ``table``."""
        return {(o.first.identity, o.second.identity) for o in self.overlaps if o.table == table}

    def gap_pairs(self, table: str) -> set[tuple[str, str]]:
        """Distinct pairs of calibration products with a gap between them in ``table``."""
        return {(g.before.identity, g.after.identity) for g in self.gaps if g.table == table}

    def __str__(self) -> str:
        lines = [f"Gen2 calibration registry {self.source}"]
        for table, count in sorted(self.rows.items()):
            columns = ", ".join(self.match_columns.get(table, ()))
            lines.append(
                f"  {table}: {count} row(s) matched by ({columns}); "
                f"{len(self.overlap_pairs(table))} overlapping pair(s) of calibrations "
                f"({sum(o.table == table for o in self.overlaps)} per match value), "
                f"{len(self.gap_pairs(table))} gap(s) "
                f"({sum(g.table == table for g in self.gaps)} per match value)"
            )
        shown_overlaps = sorted(
            {(o.table, o.first.product(), o.second.product()) for o in self.overlaps}
        )
        if shown_overlaps:
            lines.append("overlaps (validity ranges that share time; first 20):")
            lines += [f"  {a}\n    overlaps {b}" for _, a, b in shown_overlaps[:20]]
        gaps = sorted({(g.table, g.before.product(), g.after.product()) for g in self.gaps})
        if gaps:
            lines.append("gaps (time no calibration covers, between; first 20):")
            lines += [f"  {a}\n    and {b}" for _, a, b in gaps[:20]]
        if self.imported or self.refused:
            lines.append(f"imported {self.imported} certification(s); refused {len(self.refused)}")
            lines += [
                f"  refused {row.describe()}: {why.splitlines()[0]}"
                for row, why in self.refused[:20]
            ]
        lines += [f"  skipped table {t}: {why}" for t, why in sorted(self.skipped_tables.items())]
        return "\n".join(lines)


def _connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    file = Path(path)
    if not file.is_file():
        raise ButlerError(f"Gen2 calibration registry {file} does not exist")
    return sqlite3.connect(f"{file.absolute().as_uri()}?mode=ro", uri=True)


def read_registry(
    path: str | os.PathLike[str], tables: Iterable[str] | None = None
) -> dict[str, list[Gen2Calibration]]:
    """Every row of each calibration table (those with validStart and validEnd)."""
    connection = _connect(path)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        wanted = set(tables) if tables is not None else None
        result: dict[str, list[Gen2Calibration]] = {}
        for name in names:
            if wanted is not None and name not in wanted:
                continue
            cursor = connection.execute(f'SELECT * FROM "{name}"')
            columns = [d[0] for d in cursor.description]
            if "validStart" not in columns or "validEnd" not in columns:
                continue
            records = []
            for row in cursor:
                entry = dict(zip(columns, row, strict=True))
                values = {k: v for k, v in entry.items() if k not in _BOOKKEEPING}
                start, end = str(entry["validStart"]), str(entry["validEnd"])
                try:
                    valid_from, valid_to = convert_start(start), convert_end(end)
                except ValueError as error:
                    raise ButlerError(
                        f"{path}: table {name} row {entry.get('id')}: bad validity "
                        f"{start!r}..{end!r}: {error}"
                    ) from None
                path_value = entry.get("path")
                records.append(
                    Gen2Calibration(
                        name,
                        int(entry.get("id") or 0),
                        values,
                        start,
                        end,
                        valid_from,
                        valid_to,
                        None if path_value is None else str(path_value),
                    )
                )
            result[name] = records
        return result
    finally:
        connection.close()


def match_columns(records: list[Gen2Calibration]) -> tuple[str, ...]:
    """The columns that select a calibration for an observation (detector, HDU, filter)."""
    present = set(records[0].values) if records else set()
    return tuple(c for c in _MATCH_COLUMNS if c in present)


def analyze(
    records: Mapping[str, list[Gen2Calibration]],
    columns: Mapping[str, tuple[str, ...]] | None = None,
    source: str = "",
) -> Gen2Report:
    """Overlaps and gaps among the converted ranges, per table and match value."""
    report = Gen2Report(source)
    for table, rows in records.items():
        match = (columns or {}).get(table) or match_columns(rows)
        report.rows[table] = len(rows)
        report.match_columns[table] = match
        groups: dict[tuple[object, ...], list[Gen2Calibration]] = {}
        for row in rows:
            groups.setdefault(tuple(row.values.get(c) for c in match), []).append(row)
        for key, group in groups.items():
            values = dict(zip(match, key, strict=True))
            group.sort(key=lambda r: (r.valid_from, r.valid_to, r.row_id))
            active: list[Gen2Calibration] = []
            latest: Gen2Calibration | None = None
            for row in group:
                active = [a for a in active if a.valid_to > row.valid_from]
                for other in active:
                    if overlaps(other.valid_from, other.valid_to, row.valid_from, row.valid_to):
                        report.overlaps.append(Overlap(table, values, other, row))
                if latest is not None and latest.valid_to < row.valid_from:
                    report.gaps.append(Gap(table, values, latest, row))
                if latest is None or row.valid_to > latest.valid_to:
                    latest = row
                active.append(row)
    return report


def import_registry(
    butler: Butler,
    path: str | os.PathLike[str],
    *,
    tables: Iterable[str] | None = None,
    rename: Mapping[str, str] | None = None,
) -> Gen2Report:
    """Record and certify the rows of a Gen2 calibration registry in ``butler``'s repository.

    Table names are calibration dataset types of the repository's instrument;
    ``rename`` maps a Gen2 column to a key of another name. Each calibration is
    recorded at its ``path`` column if there is one, else at the path the
    policy gives it (the files themselves are not copied). All in one
    transaction; the report lists overlaps, gaps and refused rows.
    """
    from ..calibrations import for_butler

    butler.check_writeable("import a Gen2 calibration registry")
    records = read_registry(path, tables)
    report = analyze(records, source=str(path))
    manager = for_butler(butler)
    renames = dict(rename or {})
    with butler.registry.transaction():
        for table, rows in sorted(records.items()):
            if table not in butler.dataset_types:
                report.skipped_tables[table] = (
                    f"instrument {butler.mapper.name} has no dataset type {table!r}"
                )
                continue
            plan = butler.plan(table)
            if plan.spec.calibration is None:
                report.skipped_tables[table] = f"{table!r} is not a calibration"
                continue
            butler.ensure_registered(plan)
            keys = butler.mapper.keys(table)
            for row in rows:
                values = {renames.get(k, k): v for k, v in row.values.items()}
                try:
                    data_id = butler.mapper.normalize(
                        {k: v for k, v in values.items() if k in keys}
                    )
                    record = butler.restrict(plan, data_id)
                    if butler.registry.find(table, record) is None:
                        butler.registry.insert(
                            table, record, row.path or butler.mapper.path(table, data_id)
                        )
                    manager.certify(
                        table,
                        record,
                        row.valid_from,
                        row.valid_to,
                        source=f"gen2:{Path(path).name}:{table}#{row.row_id}",
                    )
                    report.imported += 1
                except ButlerError as error:
                    report.refused.append((row, str(error)))
    return report
