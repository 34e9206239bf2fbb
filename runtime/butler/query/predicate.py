"""Checked queries: what the registry runs, in the dataset type's own keys and values.

A :class:`Predicate` names only canonical keys of one dataset type, and holds only
values of those keys' types, already normalized by the instrument's rules. It is
plain data: :mod:`butler.query.sql` turns it into SQL, :func:`matches` evaluates it
in Python (for chains and tests of the translation).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec import Value

__all__ = [
    "OPERATORS",
    "TRUE",
    "AllOf",
    "AnyOf",
    "Compare",
    "In",
    "Negate",
    "Predicate",
    "Selection",
    "keys_of",
    "matches",
]


@dataclass(frozen=True, slots=True)
class Compare:
    """``key OP value``; ``op`` is one of ``= != < <= > >=``."""

    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class In:
    """``key IN values`` (an empty tuple matches nothing)."""

    key: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every term holds (no terms: always true)."""

    terms: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Some term holds (no terms: never true)."""

    terms: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    term: Predicate


Predicate = Compare | In | AllOf | AnyOf | Negate

#: The predicate that every data ID satisfies.
TRUE = AllOf(())


@dataclass(frozen=True)
class Selection:
    """Which datasets of one type a query selects.

    ``where`` over the type's keys; ``with_datasets``/``without_datasets``: other
    dataset types that must (must not) have a dataset with the same values of the
    keys they share with this one.
    """

    where: Predicate = field(default=TRUE)
    with_datasets: tuple[str, ...] = ()
    without_datasets: tuple[str, ...] = ()


#: Each comparison operator as a function (on Python values, or on SQLAlchemy columns).
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def matches(predicate: Predicate, data_id: Mapping[str, Value]) -> bool:
    """Whether ``data_id`` (holding every key the predicate names) satisfies it."""
    if isinstance(predicate, Compare):
        return bool(OPERATORS[predicate.op](data_id[predicate.key], predicate.value))
    if isinstance(predicate, In):
        return data_id[predicate.key] in predicate.values
    if isinstance(predicate, AllOf):
        return all(matches(term, data_id) for term in predicate.terms)
    if isinstance(predicate, AnyOf):
        return any(matches(term, data_id) for term in predicate.terms)
    return not matches(predicate.term, data_id)


def keys_of(predicate: Predicate) -> set[str]:
    """The keys a predicate names."""
    if isinstance(predicate, Compare | In):
        return {predicate.key}
    if isinstance(predicate, Negate):
        return keys_of(predicate.term)
    return set().union(*(keys_of(term) for term in predicate.terms))
