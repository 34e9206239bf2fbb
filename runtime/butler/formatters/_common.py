"""Helpers the built-in formatters share: argument checks, gzip, errors, dtypes."""

from __future__ import annotations

import gzip
import os
import warnings
import zlib
from abc import abstractmethod
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import FormatError
from ..objects import BUILTIN_TYPES
from .base import Formatter

if TYPE_CHECKING:  # numpy loads with the formatters that use it (fits, hdf5), not with yaml
    import numpy as np

GZIP_MAGIC = b"\x1f\x8b"


def check_compress(fmt: str, compress: str | None, allowed: Collection[str]) -> None:
    if compress is not None and compress not in allowed:
        can = ", ".join(repr(c) for c in allowed) or "no compression"
        raise FormatError(f"format {fmt!r} cannot write compression {compress!r}; it writes {can}")


def check_python_type(fmt: str, python_type: str | None, allowed: Collection[str]) -> None:
    if python_type is not None and python_type not in allowed:
        raise FormatError(
            f"format {fmt!r} cannot read a {python_type!r}; "
            f"it reads {', '.join(repr(t) for t in allowed)}"
        )


def unsupported(fmt: str, obj: object, accepts: str) -> FormatError:
    return FormatError(
        f"format {fmt!r} cannot write a {type(obj).__qualname__}; it accepts {accepts}"
    )


def failed(fmt: str, verb: str, path: Path, exc: BaseException) -> FormatError:
    """The error for a file a library refused: names the file and what the library said."""
    detail = str(exc).strip() or type(exc).__name__
    return FormatError(f"cannot {verb} {fmt} file '{path}': {detail}")


def is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def read_bytes(fmt: str, path: Path) -> bytes:
    """The file's bytes, gunzipped if the file is gzip (by its content, not its name)."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
    except (OSError, EOFError, zlib.error) as exc:
        raise failed(fmt, "read", path, exc) from exc


def read_text(fmt: str, path: Path) -> str:
    try:
        return read_bytes(fmt, path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise failed(fmt, "read", path, exc) from exc


def write_bytes(fmt: str, path: Path, data: bytes, compress: str | None) -> None:
    """Write ``data``, gzipped for ``compress=".gz"`` (zero timestamp: same bytes each time)."""
    if compress == ".gz":
        data = gzip.compress(data, mtime=0)
    try:  # the system calls themselves: a small dataset's write is mostly Python's overhead
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise failed(fmt, "write", path, exc) from exc


def stream_bytes(fmt: str, stream: BinaryIO, data: bytes, compress: str | None) -> None:
    """:func:`write_bytes` into an open file (see ``Formatter.write_stream``)."""
    if compress == ".gz":
        data = gzip.compress(data, mtime=0)
    try:
        view = memoryview(data)
        while view:
            view = view[stream.write(view) :]
    except OSError as exc:
        raise failed(fmt, "write", Path(getattr(stream, "name", "<stream>")), exc) from exc


class EncodingFormatter(Formatter):
    """A formatter whose files are bytes made in memory (YAML, JSON, ECSV, text, pickle):
    subclasses implement :meth:`encode`; writing to a path or a stream is done here."""

    writes_streams = True

    @abstractmethod
    def encode(self, obj: object, compress: str | None, path: Path) -> bytes:
        """The file's bytes before compression; ``path`` is for messages."""

    def write(
        self, obj: object, path: Path, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        write_bytes(self.name, path, self.encode(obj, compress, path), compress)

    def write_stream(
        self, obj: object, stream: BinaryIO, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        path = Path(getattr(stream, "name", "<stream>"))
        stream_bytes(self.name, stream, self.encode(obj, compress, path), compress)


def write_through(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Run a formatter's ``write_stream`` (as ``write``) on a new file at ``path``."""
    with open(path, "wb", buffering=0) as stream:
        write(stream)


@contextmanager
def captured_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect the warnings a library call emits instead of letting them escape.

    astropy reports a truncated or corrupt FITS file with a warning, not an error,
    and leaks the open file if that warning is turned into an exception mid-open.
    Formatters collect warnings here, turn the fatal ones into ``FormatError`` and
    pass the rest on with :func:`pass_on`.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def pass_on(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def dtype_label(dtype: np.dtype[Any], *, bytes_as: str = "bytes") -> str:
    """The column type a :class:`TableInfo` reports: ``"float64"``, ``"str"``, ``"int32[3]"``."""
    shape: tuple[int, ...] = ()
    if dtype.subdtype is not None:
        dtype, shape = dtype.subdtype
    kind = dtype.kind
    if kind == "U":
        label = "str"
    elif kind == "S":
        label = bytes_as
    elif kind == "O":
        label = "object"
    else:
        label = dtype.newbyteorder("=").name
    return f"{label}[{','.join(str(n) for n in shape)}]" if shape else label


def native(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An in-memory copy of ``array`` in native byte order (FITS data is big-endian)."""
    import numpy as np

    if array.dtype.isnative:
        return np.array(array)
    return array.astype(array.dtype.newbyteorder("="))


def check_result(fmt: str, path: Path, obj: object, python_type: str | None) -> object:
    """``obj`` if it is a ``python_type`` (a builtin type name), else a FormatError."""
    expected = BUILTIN_TYPES.get(python_type or "")
    if expected is not None and not isinstance(obj, expected):
        raise FormatError(f"{fmt} file '{path}' holds a {type(obj).__name__}, not a {python_type}")
    return obj
