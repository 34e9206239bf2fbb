"""Plain text: a ``str`` written and read as UTF-8.

Newlines are kept exactly as given (no platform translation). ``compress=".gz"``
gzips the file; gzipped files are read transparently.
"""

from __future__ import annotations

from pathlib import Path

from ._common import check_compress, check_python_type, read_text, unsupported, write_bytes
from .base import Formatter

__all__ = ["TextFormatter"]


class TextFormatter(Formatter):
    """UTF-8 text files."""

    name = "text"

    def write(
        self, obj: object, path: Path, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        check_compress(self.name, compress, (".gz",))
        if not isinstance(obj, str):
            raise unsupported(self.name, obj, "str")
        write_bytes(self.name, path, obj.encode("utf-8"), compress)

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        check_python_type(self.name, python_type, ("str",))
        return read_text(self.name, path)
