"""``DatasetRef``: one stored dataset, by identity.

    ref = butler.put(image, "calexp", visit=903334, ccd=16)
    str(ref)               # 'butler:<repository-uuid>/<dataset-uuid>'
    butler.get(ref)        # that dataset, and no other
    butler.get_ref(str(ref)) == ref

A ref names the dataset a put (or an ingest, ``index``, an import) recorded: its
dataset type, normalized data ID, its id (a UUID given when it was recorded), the run
that wrote it, and the id of the repository that holds it. An overwrite records a new
dataset with a new id, so a ref never reaches replaced content: a ref whose dataset
was removed or overwritten is *stale* (DatasetNotFoundError), and one from a
repository not in the chain asked is *foreign* (ForeignRefError). Neither ever reads
another dataset.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from .dataid import DataId
from .errors import InvalidDataIdError

__all__ = ["SCHEME", "DatasetRef", "parse_ref"]

#: The prefix of a ref's text form.
SCHEME = "butler:"


@dataclass(frozen=True)
class DatasetRef:
    """A stored dataset: dataset type, data ID, id, run, and the repository holding it."""

    dataset_type: str
    data_id: DataId
    id: str
    run: str | None
    repository: str

    def __str__(self) -> str:
        """``butler:<repository-uuid>/<dataset-uuid>``; :meth:`Butler.get_ref` reads it."""
        return f"{SCHEME}{self.repository}/{self.id}"


def parse_ref(text: str) -> tuple[str, str]:
    """``(repository id, dataset id)`` of a ref's text form; InvalidDataIdError if it is not one."""
    if isinstance(text, str) and text.startswith(SCHEME):
        repository, _, dataset = text[len(SCHEME) :].partition("/")
        try:
            return str(uuid.UUID(repository)), str(uuid.UUID(dataset))
        except ValueError:
            pass
    raise InvalidDataIdError(
        f"{text!r} is not a dataset ref; a ref reads 'butler:<repository-uuid>/<dataset-uuid>' "
        "(str() of a DatasetRef)"
    )
