"""Plain text: a ``str`` written and read as UTF-8.

Newlines are kept exactly as given (no platform translation). ``compress=".gz"``
gzips the file; gzipped files are read transparently.
"""

from __future__ import annotations

from pathlib import Path

from ._common import (
    EncodingFormatter,
    check_compress,
    check_python_type,
    read_text,
    unsupported,
)

__all__ = ["TextFormatter"]


class TextFormatter(EncodingFormatter):
    """UTF-8 text files."""

    name = "text"

    def encode(self, obj: object, compress: str | None, path: Path) -> bytes:
        check_compress(self.name, compress, (".gz",))
        if not isinstance(obj, str):
            raise unsupported(self.name, obj, "str")
        return obj.encode("utf-8")

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        check_python_type(self.name, python_type, ("str",))
        return read_text(self.name, path)
