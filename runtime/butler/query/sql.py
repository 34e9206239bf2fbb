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


def to_sql(predicate: p.Predicate, columns: Mapping[str, Column]) -> sa.ColumnElement[bool]:
    """The WHERE expression of ``predicate`` over ``columns`` (key → column)."""
    if isinstance(predicate, p.Compare):
        compared: sa.ColumnElement[bool] = p.OPERATORS[predicate.op](
            columns[predicate.key], predicate.value
        )
        return compared
    if isinstance(predicate, p.In):
        if len(predicate.values) == 1:
            return columns[predicate.key] == predicate.values[0]
        return columns[predicate.key].in_(predicate.values)
    if isinstance(predicate, p.AllOf):
        return sa.and_(sa.true(), *(to_sql(term, columns) for term in predicate.terms))
    if isinstance(predicate, p.AnyOf):
        return sa.or_(sa.false(), *(to_sql(term, columns) for term in predicate.terms))
    return sa.not_(to_sql(predicate.term, columns))
