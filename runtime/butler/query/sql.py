"""A checked :class:`~butler.query.predicate.Predicate` → one SQLAlchemy boolean expression.

Every value becomes a bound parameter (``IN`` lists an expanding one): no value is
ever formatted into SQL text. The caller maps each key to its column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from . import predicate as p

__all__ = ["to_sql"]

Column = sa.ColumnElement[Any]


def _bound(column: Column, value: object) -> sa.BindParameter[Any]:
    """``value`` as a parameter of ``column``'s type (also True/False, which SQLAlchemy
    would otherwise only compare with IS)."""
    return sa.bindparam(None, value, type_=column.type)


def to_sql(predicate: p.Predicate, columns: Mapping[str, Column]) -> sa.ColumnElement[bool]:
    """The WHERE expression of ``predicate`` over ``columns`` (key → column)."""
    if isinstance(predicate, p.Compare):
        column = columns[predicate.key]
        compared: sa.ColumnElement[bool] = p.OPERATORS[predicate.op](
            column, _bound(column, predicate.value)
        )
        return compared
    if isinstance(predicate, p.In):
        column = columns[predicate.key]
        if len(predicate.values) == 1:
            return column == _bound(column, predicate.values[0])
        return column.in_(predicate.values)
    if isinstance(predicate, p.AllOf):
        return sa.and_(sa.true(), *(to_sql(term, columns) for term in predicate.terms))
    if isinstance(predicate, p.AnyOf):
        return sa.or_(sa.false(), *(to_sql(term, columns) for term in predicate.terms))
    return sa.not_(to_sql(predicate.term, columns))
