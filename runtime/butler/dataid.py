"""``DataId``: a normalized data ID, immutable and hashable.

A raw ``dict`` is never trusted; a ``DataId`` is what a :class:`butler.Mapper`
returns after resolving aliases, mapping and checking every value. Code can
tell the two apart by type: ``DataId`` is a ``Mapping``, not a ``dict``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

from .spec import Value

__all__ = ["DataId", "format_data_id"]


def format_data_id(values: Mapping[str, object]) -> str:
    """``{visit: 903334, ccd: 16, filter: 'HSC-R', dateObs: 2013-11-02}``.

    The one way a data ID is shown, by ``repr(DataId)``, the ``butler`` command
    line, messages and the demo: keys bare, in order; values as Python literals,
    except dates and times, which are shown in ISO form.
    """
    return "{" + ", ".join(f"{k}: {_value_text(v)}" for k, v in values.items()) + "}"


def _value_text(value: object) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return repr(value)


class DataId(Mapping[str, Value]):
    """An immutable mapping of key names to normalized values.

    ``DataId(visit=903334, ccd=16)`` builds one from values as given, without
    checking them; use ``mapper.normalize(...)`` to get one that a mapper has
    normalized and validated (and will render without checking again).
    Equal to any mapping with the same items; hashable; shown by
    :func:`format_data_id`, in key order.
    """

    __slots__ = ("_hash", "_items", "_origin")

    _items: dict[str, Value]
    _origin: object
    _hash: int | None

    def __init__(self, values: Mapping[str, Value] | None = None, /, **keys: Value) -> None:
        items = dict(values) if values is not None else {}
        items.update(keys)
        self._items = items
        self._origin = None
        self._hash = None

    @classmethod
    def trusted(cls, items: dict[str, Value], origin: object) -> DataId:
        """A DataId over ``items`` (not copied), normalized by ``origin`` (for the mapper,
        which has checked every value; any other caller uses ``DataId(...)``)."""
        self = cls.__new__(cls)
        self._items = items
        self._origin = origin
        self._hash = None
        return self

    @property
    def origin(self) -> object:
        """The normalizer that made this data ID (None: made by hand, not normalized)."""
        return self._origin

    @property
    def fields(self) -> dict[str, Value]:
        """The values by key: the DataId's own dict, not a copy (never modify it)."""
        return self._items

    def __getitem__(self, key: str) -> Value:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DataId):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._items.items()))
        return self._hash

    def __repr__(self) -> str:
        return format_data_id(self._items)

    def __reduce__(self) -> tuple[type[DataId], tuple[dict[str, Value]]]:
        return (DataId, (self._items,))

    def to_dict(self) -> dict[str, Value]:
        """A new plain ``dict`` with the same items."""
        return dict(self._items)
