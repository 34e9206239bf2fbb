"""The one interface every formatter implements, and the small types it speaks.

A formatter turns one kind of file into Python objects and back. The runtime has
already resolved the dataset to a path and a :class:`~butler.spec.FormatSpec`; it
writes to a temporary path and renames it (atomicity is the caller's job), so a
formatter never decides file names, never relies on the suffix of ``path`` and
never overwrites anything but ``path``.

``python_type`` names what :meth:`Formatter.read` returns:

==========================  ====================================================
``"numpy.ndarray"``         the pixels of an image
``"butler.image.Image"``    pixels and metadata (:class:`butler.image.Image`)
``"astropy.table.Table"``   a table
``"dict"``                  a mapping (YAML, JSON; HDF5: a group of datasets)
``"str"``                   text
``None``                    what the file holds: an image with metadata reads as
                            an ``Image``, one without as a ``numpy.ndarray``, a
                            table as a ``Table``
==========================  ====================================================

Butler records each file's size and checksum (:mod:`butler.checksums`) from the bytes as
they are written: a formatter whose library writes to a Python file object implements
:meth:`Formatter.write_stream` and sets ``writes_streams = True`` (every built-in one
does); Butler then hands it a file that hashes each write on its way. A formatter that
writes by path only is hashed by reading its file once after it is written.

A formatter that lacks a capability (metadata-only reads, sub-image reads, table
schema reads) raises :class:`~butler.errors.FormatError` saying so; the defaults
here do exactly that.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

from ..errors import FormatError
from ..image import BBox

__all__ = [
    "COMPRESSIONS",
    "PYTHON_TYPES",
    "Formatter",
    "TableInfo",
]

#: The ``compress`` values a formatter may be asked to write.
COMPRESSIONS = (".gz", ".fz")

#: Python type names understood by the built-in formatters.
PYTHON_TYPES = (
    "numpy.ndarray",
    "butler.image.Image",
    "astropy.table.Table",
    "dict",
    "str",
)


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A table's length and column schema, read without reading its rows.

    ``columns`` maps each column name, in order, to its type: a numpy dtype name
    (``"int64"``, ``"float32"``, ``"bool"``), ``"str"`` or ``"bytes"`` for text of
    any width, ``"object"``; a column whose cells are arrays adds their shape
    (``"float64[3]"``, ``"int16[2,4]"``).
    """

    length: int
    columns: dict[str, str] = field(default_factory=dict)


class Formatter(ABC):
    """Reads and writes one file format.

    Subclasses set :attr:`name` (the name policies use in ``formatter NAME``) and
    implement :meth:`write` and :meth:`read`; the other methods default to a
    :class:`~butler.errors.FormatError` that says the format lacks them.
    Formatters hold no per-file state: one instance serves every call, from any
    number of threads.
    """

    name: ClassVar[str]
    #: Whether :meth:`write_stream` is implemented.
    writes_streams: ClassVar[bool] = False

    @abstractmethod
    def write(
        self, obj: object, path: Path, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        """Write ``obj`` to ``path`` (a new file).

        ``hdu`` places the object in that HDU for formats that have HDUs;
        ``compress`` is ``None``, ``".gz"`` (gzip the whole file) or ``".fz"``
        (FITS tile compression). An object the format cannot hold raises
        :class:`~butler.errors.FormatError` listing what it accepts.
        """

    def write_stream(
        self, obj: object, stream: BinaryIO, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        """Write ``obj`` into ``stream``, a new, empty file (seekable, unbuffered: each
        ``write`` goes to the file), as :meth:`write` would write it to a path.

        Formatters that implement it set ``writes_streams = True``; the default refuses.
        """
        raise FormatError(f"format {self.name!r} writes by path only")

    @abstractmethod
    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        """Read the object at ``path`` as ``python_type`` (see the module docs)."""

    def verify(self, path: Path) -> None:
        """Check the file against the format's own checksums, if it has any (FITS
        ``CHECKSUM``/``DATASUM``); FormatError naming the file if they disagree.

        ``butler verify --read`` calls it; the default checks nothing.
        """
        return None

    def read_metadata(self, path: Path, *, hdu: int | str | None = None) -> dict[str, object]:
        """The header or attributes only, without reading the data."""
        raise FormatError(f"format {self.name!r} has no metadata-only reads ({path})")

    def read_section(self, path: Path, bbox: BBox, *, hdu: int | str | None = None) -> object:
        """The pixels inside ``bbox`` (a ``numpy.ndarray``), reading only those where possible."""
        raise FormatError(f"format {self.name!r} has no sub-image reads ({path})")

    def read_table_info(self, path: Path, *, hdu: int | str | None = None) -> TableInfo:
        """A table's length and column schema, without reading its rows where possible."""
        raise FormatError(f"format {self.name!r} has no table schema reads ({path})")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
