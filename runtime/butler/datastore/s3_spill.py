"""A written, not yet published S3 dataset: its local *spill* file, and the conditional
PUT that publishes it, sent as soon as the spill is written.

A put's round trips are its PUT and the registry's: the row's insert, then its commit,
which must follow the PUT (a committed row always has its object). The S3 datastore
sends the PUT (``If-None-Match: *``) in the background as soon as the formatter has
written the spill (:class:`EarlyPut`), so it travels while the registry inserts the
row: a put then waits for the slower of the two, then the commit, not for all three.

An early PUT's object is not a dataset until the Butler publishes the spill: until then
no registry row names it, and no reader looks for it (the registry is the index; ``get``
never lists). Whoever ends the spill settles the PUT:

- :meth:`EarlyPut.claim` (publish): wait for the PUT; its object is the dataset now.
  DatasetExistsError if the key was taken (the PUT was refused, as a publish is).
- :meth:`EarlyPut.settle` (discard, after a failed insert or commit, or after the
  commit, when the spill's file is removed): wait for the PUT, and unless it was
  claimed, delete what it published (``If-Match`` on its ETag: never another writer's).

A process killed between an early PUT and its commit leaves an object without a record,
as one killed between a PUT and its commit always did: ``butler verify`` lists it and
``--repair`` deletes it once stale (docs/s3.md).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from ..checksums import FileChecksum
from ..errors import ButlerError
from ..objectstore import ObjectInfo, ObjectStore

__all__ = ["EarlyPut", "Spill"]


class EarlyPut:
    """The conditional PUT of one spill to its target key, under way or done."""

    def __init__(self, target: str, future: Future[ObjectInfo]) -> None:
        self.target = target
        self.future = future
        self.claimed = False

    def claim(self) -> ObjectInfo:
        """Wait for the PUT; its object is now the published dataset (the PUT's error, e.g.
        DatasetExistsError, if it failed: nothing was published)."""
        info = self.future.result()
        self.claimed = True
        return info

    def settle(self, store: ObjectStore) -> None:
        """Wait for the PUT; delete its object unless it was claimed. A failure to delete
        leaves an object without a record (listed by ``verify``), never a lost one."""
        try:
            info = self.future.result()
        except Exception:
            return  # nothing was published
        if self.claimed:
            return
        with contextlib.suppress(ButlerError):  # another writer's since: not ours to delete
            store.delete(self.target, info.etag)


@dataclass(frozen=True)
class Spill:
    """A written, not yet published dataset: a local file and its checksum, and the PUT
    publishing it, if one was started (see the module docs)."""

    path: Path
    checksum: FileChecksum
    early: EarlyPut | None = field(default=None, compare=False)

    def early_for(self, target: str) -> EarlyPut | None:
        """The early PUT, if one was sent to ``target``."""
        return self.early if self.early is not None and self.early.target == target else None
