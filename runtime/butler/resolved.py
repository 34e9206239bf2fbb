"""What resolving a dataset type and a data ID produces: a :class:`Plan` and a :class:`Found`.

These are the records the layers pass each other (see docs/architecture.md): the
Butler makes them, and the features built on it (calibrations, chains, ingest,
maintenance, provenance, curated calibrations) take them from its public methods
(:meth:`Butler.plan`, :meth:`Butler.find_dataset`, ...) instead of reaching into it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dataid import DataId
from .datastore.base import ReadRequest, Staged, WriteRequest
from .errors import FormatError
from .formatters import Formatter, FormatterRegistry
from .objects import check_object
from .spec import DatasetTypeSpec, FormatSpec

if TYPE_CHECKING:
    from .member import ChainMember
    from .refs import DatasetRef

__all__ = ["Found", "Plan"]


@dataclass(frozen=True)
class Plan:
    """Everything about one dataset type that get and put need, looked up once.

    The formatter is loaded only when a read or write first asks for it: queries,
    counts, ``exists``, ``index`` and calibration lookups never need one, so a dataset
    type whose formatter plug-in is not installed is still listed, queried and counted.
    """

    spec: DatasetTypeSpec
    format: FormatSpec
    formatters: FormatterRegistry
    keys: frozenset[str]
    compress: str | None

    @functools.cached_property
    def formatter(self) -> Formatter:
        """The format's formatter; FormatError naming the missing plug-in if none is installed."""
        try:
            return self.formatters.get(self.format.formatter)
        except FormatError as error:
            raise FormatError(
                f"cannot read or write dataset type {self.spec.name!r} (format "
                f"{self.format.name!r}): {error}"
            ) from None

    def load_formatter(self) -> Formatter:
        """:attr:`formatter`, as a function (what a datastore's read and write requests take)."""
        return self.formatter

    def read_request(self, hdu: int | str | None) -> ReadRequest:
        """What the datastore needs to read a dataset of this type (at ``hdu``); the one for
        no HDU, which nearly every get asks for, is made once."""
        if hdu is None:
            return self._read_whole
        return ReadRequest(self.spec.name, self.load_formatter, self.format.python_type, hdu)

    @functools.cached_property
    def _read_whole(self) -> ReadRequest:
        return ReadRequest(self.spec.name, self.load_formatter, self.format.python_type, None)

    def write_request(self, hdu: int | None) -> WriteRequest:
        """What the datastore needs to write a dataset of this type (into ``hdu``); the one
        for no HDU is made once."""
        if hdu is None:
            return self._write_whole
        return WriteRequest(self.spec.name, self.load_formatter, hdu, self.compress)

    @functools.cached_property
    def _write_whole(self) -> WriteRequest:
        return WriteRequest(self.spec.name, self.load_formatter, None, self.compress)

    @functools.cached_property
    def sky(self) -> bool:
        """Whether this dataset type's datasets may have a sky region (see regions.py)."""
        from .regions import has_sky

        return has_sky(self.spec, self.format)

    def check_put(self, obj: object) -> None:
        """Refuse ``obj`` before anything is written: no formatter, or the wrong type (a
        :class:`~butler.datastore.base.Staged` upload was written by the formatter, on
        the client of a server, and checked by the datastore)."""
        if self.formatter is not None and not isinstance(obj, Staged):
            check_object(self.spec.name, self.format.python_type, obj)


@dataclass(frozen=True)
class Found:
    """A stored dataset as a lookup found it: its data ID, and where, in which repository.

    ``path`` is as ``repository``'s registry records it: relative to that repository's
    root, or absolute for a file left where another tool put it. ``repository`` is this
    Butler or the parent of its chain that answered (a :class:`~butler.member.ChainMember`);
    a parent's find has no path but its ``ref``, by which the chain reads it.
    """

    data_id: DataId
    path: str
    repository: ChainMember
    #: The dataset's id, when the lookup knew it (a ref's); else None.
    dataset_id: str | None = None
    #: The file's size in bytes as recorded when it was written, if it was (get checks it).
    size: int | None = None
    #: The file's checksum as recorded when it was written, if it was (a remote read checks it).
    checksum: str | None = None
    #: A parent's find: the parent's ref of the dataset (the chain reads by it).
    ref: DatasetRef | None = None
