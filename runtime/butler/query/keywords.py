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
    return any(map(is_collection, keys.values())) or (
        data_id is not None and any(map(is_collection, data_id.values()))
    )
