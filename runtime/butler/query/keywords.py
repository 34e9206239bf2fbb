"""Keyword values of a query that mean "any of these": ``visit=[42, 43]``, ``range(1, 9)``."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["has_collections", "is_collection"]

_COLLECTIONS = (list, tuple, set, frozenset, range)


def is_collection(value: object) -> bool:
    """Whether a keyword value means "any of these" (a list, tuple, set or range)."""
    return isinstance(value, _COLLECTIONS)


def has_collections(data_id: Mapping[str, object] | None, keys: Mapping[str, object]) -> bool:
    """Whether a query's keys hold any collection: then it is not a plain partial data ID."""
    for value in keys.values():  # a loop: this is on the hot path of every plain query
        if isinstance(value, _COLLECTIONS):
            return True
    if data_id:
        for value in data_id.values():
            if isinstance(value, _COLLECTIONS):
                return True
    return False
