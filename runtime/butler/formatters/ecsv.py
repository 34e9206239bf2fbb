"""ECSV tables through astropy: an ``astropy.table.Table`` with units, dtypes and meta.

ECSV keeps a table's schema and ``meta`` in a YAML header, so metadata and table
schema reads parse the header only (rows are counted, not parsed). Text is UTF-8;
``compress=".gz"`` gzips the file and gzipped files are read transparently
(recognised by content, not by name).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from astropy.table import Table
from astropy.table.meta import get_header_from_yaml

from ..errors import FormatError
from ._common import (
    EncodingFormatter,
    captured_warnings,
    check_compress,
    check_python_type,
    failed,
    is_gzip,
    pass_on,
    read_text,
    unsupported,
)
from .base import TableInfo

__all__ = ["EcsvFormatter"]


class EcsvFormatter(EncodingFormatter):
    """ECSV text tables."""

    name = "ecsv"

    def encode(self, obj: object, compress: str | None, path: Path) -> bytes:
        check_compress(self.name, compress, (".gz",))
        if not isinstance(obj, Table):
            raise unsupported(self.name, obj, "astropy.table.Table")
        buffer = io.StringIO()
        try:
            with captured_warnings() as caught:
                obj.write(buffer, format="ascii.ecsv")
        except Exception as exc:
            raise failed("ECSV", "write", path, exc) from exc
        pass_on(caught)
        return buffer.getvalue().encode("utf-8")

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        check_python_type(self.name, python_type, ("astropy.table.Table",))
        text = read_text(self.name, path)
        try:
            with captured_warnings() as caught:
                table = Table.read(text.splitlines(), format="ascii.ecsv")
        except Exception as exc:
            raise failed("ECSV", "read", path, exc) from exc
        pass_on(caught)
        return table

    def read_metadata(self, path: Path, *, hdu: int | str | None = None) -> dict[str, object]:
        with _lines(path) as lines:
            return dict(_header(path, lines).get("meta") or {})

    def read_table_info(self, path: Path, *, hdu: int | str | None = None) -> TableInfo:
        with _lines(path) as lines:
            header = _header(path, lines)  # consumes the row of column names too
            reader = csv.reader(lines, delimiter=header.get("delimiter", " "), quotechar='"')
            try:
                length = sum(1 for row in reader if row)
            except csv.Error as exc:
                raise failed("ECSV", "read", path, exc) from exc
        columns = {str(c["name"]): _label(c) for c in header.get("datatype", [])}
        return TableInfo(length=length, columns=columns)


@contextmanager
def _lines(path: Path) -> Iterator[Iterator[str]]:
    """The file's lines, streamed (gunzipped if need be); read errors become FormatError."""
    try:
        gz = is_gzip(path)
        with (
            gzip.open(path, "rt", encoding="utf-8", newline="")
            if gz
            else path.open(encoding="utf-8", newline="")
        ) as stream:
            yield iter(stream)
    except FormatError:
        raise
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise failed("ECSV", "read", path, exc) from exc


def _header(path: Path, lines: Iterator[str]) -> dict[str, Any]:
    """The YAML header: reads the ``#`` lines and the first other line (column names)."""
    first = next(lines, "")
    if not first.startswith("# %ECSV"):
        raise FormatError(f"cannot read ECSV file '{path}': it does not start with '# %ECSV'")
    yaml_lines = []
    for line in lines:
        if not line.startswith("#"):
            break
        yaml_lines.append(line[2:].rstrip("\r\n"))
    try:
        header: dict[str, Any] = get_header_from_yaml(yaml_lines)
    except Exception as exc:
        raise failed("ECSV", "read", path, exc) from exc
    return header


def _label(column: dict[str, Any]) -> str:
    datatype = str(column.get("subtype") or column.get("datatype", "object"))
    if datatype == "json":
        return "object"
    return "str" + datatype[6:] if datatype.startswith("string") else datatype
