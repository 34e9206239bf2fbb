"""The object cache: a get of a dataset this process already holds returns that object.

Opt-in, per repository or per dataset type (``Butler(root, object_cache=True)``,
``object_cache={"calexp"}``, or :meth:`Butler.cache_objects`). Entries are weak
references keyed by dataset id: an object stays cached exactly as long as something else
in the process holds it, and costs no memory after. The registry lookup of a get still
runs, so a remove or an overwrite (which records a new dataset id) by this or any other
process is seen at once; a cached object is never served for replaced content.

Only whole-dataset reads are cached: a section, metadata or table-info read is never
stored as the dataset, nor answered from it. Objects that cannot be weakly referenced
(``dict``, ``list``, ``str``: most YAML and JSON datasets) are read every time.
Cached objects are shared: a caller that modifies one changes what every other holder sees.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

__all__ = ["ObjectCache"]


class ObjectCache:
    """Weak references to the objects read, by dataset id; for all or some dataset types."""

    def __init__(self, dataset_types: Iterable[str] | None = None) -> None:
        """Cache every dataset type (``None``) or only those named."""
        self._types = None if dataset_types is None else frozenset(dataset_types)
        self._objects: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def wants(self, dataset_type: str) -> bool:
        """Whether datasets of ``dataset_type`` are cached."""
        return self._types is None or dataset_type in self._types

    def get(self, dataset_id: str) -> object | None:
        """The object read for ``dataset_id``, if this process still holds it."""
        with self._lock:
            return self._objects.get(dataset_id)

    def add(self, dataset_id: str, obj: object) -> None:
        """Remember ``obj`` as the dataset ``dataset_id`` (not if it has no weak references)."""
        try:
            with self._lock:
                self._objects[dataset_id] = obj
        except TypeError:  # dict, list, str, ...: cannot be weakly referenced
            pass

    def __len__(self) -> int:
        return len(self._objects)
