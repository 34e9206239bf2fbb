"""SELECTs of checked queries (issue 18): a predicate, other dataset types, order, limit.

Built with SQLAlchemy Core, so that every value is a bound parameter; one statement
per query, with ``EXISTS``/``NOT EXISTS`` subqueries for the other dataset types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from ..errors import RegistryError
from ..query import predicate as p
from ..query.predicate import Selection, keys_of
from ..query.sql import to_sql
from ._statements import DatasetTable

__all__ = ["condition", "ordering"]

#: The table of a dataset type by name, or None if it is not registered.
TableLookup = Callable[[str], "DatasetTable | None"]


def _check_values(table: DatasetTable, selection: Selection) -> None:
    unknown = sorted(keys_of(selection.where) - set(table.keys))
    if unknown:
        raise RegistryError(
            f"query of dataset type {table.name!r} names key(s) {', '.join(unknown)}, which it "
            f"does not have; its keys are {', '.join(table.keys) or '(none)'}"
        )
    _check_types(table, selection.where)


def _check_types(table: DatasetTable, predicate: p.Predicate) -> None:
    """RegistryError for a value not of its key's type (or not storable text)."""
    if isinstance(predicate, p.Compare):
        table.check_partial({predicate.key: predicate.value})
    elif isinstance(predicate, p.In):
        for value in predicate.values:
            table.check_partial({predicate.key: value})
    elif isinstance(predicate, p.Negate):
        _check_types(table, predicate.term)
    else:
        for term in predicate.terms:
            _check_types(table, term)


def condition(
    table: DatasetTable, selection: Selection, lookup: TableLookup
) -> sa.ColumnElement[bool]:
    """The WHERE clause of ``selection`` on ``table``."""
    _check_values(table, selection)
    columns = {key: table.column(key) for key in table.keys}
    terms = [to_sql(selection.where, columns)]
    for name, wanted in [(n, True) for n in selection.with_datasets] + [
        (n, False) for n in selection.without_datasets
    ]:
        other = lookup(name)
        if other is None:  # never registered here: no dataset of it exists
            if wanted:
                terms.append(sa.false())
            continue
        shared = [key for key in table.keys if key in other.keys]
        if not shared:
            raise RegistryError(
                f"dataset types {table.name!r} and {name!r} share no key, so no dataset of "
                f"one can be matched with one of the other"
            )
        alias = other.table.alias(f"other_{len(terms)}")
        match = [alias.c[other.column(key).name] == columns[key] for key in shared]
        exists = sa.exists(sa.select(sa.literal(1)).select_from(alias).where(*match))
        terms.append(exists if wanted else ~exists)
    return sa.and_(*terms)


def ordering(table: DatasetTable, order_by: Sequence[str], dialect: sa.Dialect) -> list[Any]:
    """ORDER BY terms: ``order_by`` (``-key`` descending), then the other keys ascending.

    Text sorts by code point on every database (PostgreSQL: ``COLLATE "C"``, as SQLite's
    default), so an order is the same on both, and the same as Python's (a chain merges
    its repositories' ordered streams in Python).
    """
    terms: list[Any] = []
    used: set[str] = set()
    for item in order_by:
        key = item[1:] if item.startswith("-") else item
        if key not in table.keys:
            raise RegistryError(
                f"cannot order {table.name!r} by {key!r}: not one of its keys "
                f"({', '.join(table.keys) or 'none'})"
            )
        if key in used:
            continue
        used.add(key)
        column = _sortable(table.column(key), dialect)
        terms.append(column.desc() if item.startswith("-") else column.asc())
    terms += [_sortable(table.column(key), dialect).asc() for key in table.keys if key not in used]
    return terms


def _sortable(column: sa.Column[Any], dialect: sa.Dialect) -> sa.ColumnElement[Any]:
    if dialect.name == "postgresql" and isinstance(column.type, sa.Text):
        return column.collate("C")
    return column
