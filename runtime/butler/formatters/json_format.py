"""JSON through the standard library: dicts, lists and scalars.

Written as UTF-8 (non-ASCII as is), indented, keys in their order. Strict JSON:
NaN and infinities are refused on write (``allow_nan=False``), as other JSON
readers would choke on them. ``compress=".gz"`` gzips the file; gzipped files are
read transparently.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._common import (
    EncodingFormatter,
    check_compress,
    check_python_type,
    check_result,
    failed,
    read_text,
    unsupported,
)

__all__ = ["JsonFormatter"]

_READS = ("dict", "list", "str", "int", "float", "bool")


class JsonFormatter(EncodingFormatter):
    """JSON documents of dicts, lists and scalars."""

    name = "json"

    def encode(self, obj: object, compress: str | None, path: Path) -> bytes:
        check_compress(self.name, compress, (".gz",))
        try:
            text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=2) + "\n"
        except (TypeError, ValueError) as exc:
            raise unsupported(
                self.name, obj, f"dict (str keys), list, str, int, finite float, bool, None: {exc}"
            ) from exc
        return text.encode("utf-8")

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        check_python_type(self.name, python_type, _READS)
        text = read_text(self.name, path)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise failed("JSON", "read", path, exc) from exc
        return check_result("JSON", path, obj, python_type)
