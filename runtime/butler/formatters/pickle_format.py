"""Pickle: any picklable Python object.

.. warning::
   Reading a pickle runs code chosen by whoever wrote the file. Never read a
   pickle from a repository you do not trust. Policies must mark a pickle format
   ``unsafe``, and the runtime uses it only for dataset types that say
   ``allow unsafe``; this module itself does not check, it only reads and writes.
   Pickles also break when the classes they hold change: prefer any other format
   for data meant to last.

Written with the highest protocol. ``compress=".gz"`` gzips the file; gzipped
files are read transparently.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from ._common import (
    EncodingFormatter,
    check_compress,
    failed,
    read_bytes,
    unsupported,
)

__all__ = ["PickleFormatter"]


class PickleFormatter(EncodingFormatter):
    """Pickled Python objects (unsafe: see the module docs)."""

    name = "pickle"

    def encode(self, obj: object, compress: str | None, path: Path) -> bytes:
        check_compress(self.name, compress, (".gz",))
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise unsupported(self.name, obj, f"picklable objects: {exc}") from exc

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        data = read_bytes(self.name, path)
        try:
            return pickle.loads(data)
        except Exception as exc:  # a corrupt pickle can raise almost anything
            raise failed("pickle", "read", path, exc) from exc
