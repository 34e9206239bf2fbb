"""Each dataset file's size and checksum, computed from the bytes as they are written.

Butler records ``size`` (bytes) and ``checksum`` (``"crc32c:<8 hex digits>"``, the
CRC-32C of the whole file) for every dataset it writes, and ``butler verify --read``
compares them with the file. CRC-32C is chosen for speed: the ``crc32c`` package
computes it with the processor's CRC instruction at about 14 GB/s on this project's
machines (zlib's CRC-32 4, SHA-256 1.8, BLAKE2b 0.9 GB/s), and it detects every flipped
bit and every burst of up to 32 bits, which is what it is for here: silent corruption,
not tampering.

:class:`HashingFile` is the file object formatters write through. It hashes each
write on its way to the disk, never reading the file again: appends (FITS, YAML,
gzip, ...) extend a running CRC; a large write is hashed in a second thread while the
kernel copies it, so it costs little on a machine with a core to spare; a very large
write is split into pieces of ``PARALLEL_BYTES`` that the thread hashes just as the kernel
copies them, so both read each byte from the cache, not memory, once the other has. A
library that seeks (h5py writes its superblock last, at offset 0; the FITS formatter its
header) leaves pieces out of order: large ones are hashed as they pass (a write that
continues the one before extends its CRC), small ones kept, and
:meth:`HashingFile.checksum` joins them in file order with :func:`crc_combine`. Only
writes that go back over bytes already hashed, or too many small out-of-order ones, make
it read the file once at the end (no built-in format does that). :func:`file_checksum`
reads a file that was written by path (a formatter plug-in without
:meth:`Formatter.write_stream`, an ingested link) or that ``verify`` checks.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypedDict

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = [
    "ALGORITHM",
    "FileChecksum",
    "HashingFile",
    "checksum_of",
    "copier",
    "crc_combine",
    "file_checksum",
    "write_hashed",
]

#: The prefix of every checksum value this version writes.
ALGORITHM = "crc32c"
#: Writes at least this long are hashed in a second thread while the kernel copies them,
#: longer ones in pieces of this length.
PARALLEL_BYTES = 4 << 20
#: Out-of-order writes at least this long are hashed as they pass; shorter ones are kept.
LARGE_BYTES = 64 << 10
#: Most bytes of short out-of-order writes kept; past it the file is read once at the end.
KEPT_BYTES = 16 << 20
_CHUNK = 1 << 20
_POLY = 0x82F63B78  # CRC-32C (Castagnoli), bit-reflected


@dataclass(frozen=True, slots=True)
class FileChecksum:
    """A file's size in bytes and its checksum (``"crc32c:0a1b2c3d"``)."""

    size: int
    value: str

    @classmethod
    def of_crc(cls, size: int, crc: int) -> FileChecksum:
        return cls(size, f"{ALGORITHM}:{crc:08x}")

    def columns(self) -> _Columns:
        """The registry's ``size`` and ``checksum`` arguments (``Registry.insert``)."""
        return {"size": self.size, "checksum": self.value}


class _Columns(TypedDict):
    size: int
    checksum: str


def crc32c(data: ReadableBuffer, value: int = 0) -> int:
    """The CRC-32C of ``data``, continuing ``value``, by the ``crc32c`` package: imported on
    first use, since importing it loads its command line (argparse and all), which importing
    the runtime should not pay for."""
    from crc32c import crc32c as compute

    return compute(data, value)


def checksum_of(data: bytes) -> str:
    """The checksum value of ``data`` (as :class:`FileChecksum` has it)."""
    return FileChecksum.of_crc(len(data), crc32c(data)).value


def file_checksum(path: Path) -> FileChecksum:
    """The size and checksum of the file at ``path``, read from its start to its end."""
    crc = size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        while count := file.readinto(buffer):
            crc = crc32c(view[:count], crc)
            size += count
    return FileChecksum.of_crc(size, crc)


# ---- combining CRCs of adjacent pieces ------------------------------------------------------
# A CRC is linear over GF(2): crc(A + B) = crc(A) * x^(8 len B) + crc(B), modulo the
# polynomial. The products are of bit-reflected polynomials, so x^0 is 1 << 31.


def _multiply(a: int, b: int) -> int:
    """``a * b`` modulo the CRC polynomial (both bit-reflected)."""
    product = 0
    bit = 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return product


@functools.cache
def _powers() -> tuple[int, ...]:
    """``x^(2^k)`` modulo the polynomial, for k = 0..66 (made once, on first use)."""
    power, out = 1 << 30, []  # x^1
    for _ in range(67):
        out.append(power)
        power = _multiply(power, power)
    return tuple(out)


def crc_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32C of ``A + B`` from ``crc1`` of A, ``crc2`` of B and B's length in bytes."""
    powers = _powers()
    shift, k, bits = 1 << 31, 3, length2  # x^(8 * length2): start at x^(2^3)
    while bits:
        if bits & 1:
            shift = _multiply(powers[k], shift)
        bits >>= 1
        k += 1
    return _multiply(shift, crc1) ^ crc2


# ---- the file formatters write through ----------------------------------------------------------


class HashingFile(io.RawIOBase):
    """A new binary file, opened for writing (and reading, seeking, truncating), whose
    size and CRC-32 are known when it is closed, without reading it again.

    Use it as a context manager (or call :meth:`close`); :attr:`checksum` is then set.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.name = str(path)
        self.mode = "wb"  # what libraries that look (astropy) should take it for: a new file
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        self._position = 0
        self._end = 0
        self._crc = 0  # of bytes [0, _hashed): the writes so far, while they are appends
        self._hashed = 0
        self._appending = True
        self._large: list[tuple[int, int, int, int]] = []  # (offset, length, crc, order)
        self._small: list[tuple[int, bytes, int]] = []  # (offset, bytes, order)
        self._kept = 0
        self._order = 0
        self._reread = False
        self._pool: ThreadPoolExecutor | None = None  # the second thread, once needed
        self._checksum: FileChecksum | None = None
        self.reread = False  #: whether :meth:`close` had to read the file back

    # -- io.RawIOBase ------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._end}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset} in {self.name}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self._fd, len(view), self._position)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data).cast("B")
        length, offset = len(view), self._position
        if not length:  # not even past the end: the file does not grow
            return 0
        self._order += 1
        if self._appending and offset == self._end == self._hashed:
            self._crc = self._hash_while_writing(view, offset, self._crc)
            self._hashed += length
        else:
            self._appending = False
            if offset < self._hashed:
                self._reread = True  # back over bytes already in the running CRC
                self._write_all(view, offset)
            elif length >= LARGE_BYTES:
                self._add_large(view, offset)
            else:
                self._write_all(view, offset)
                self._keep(offset, view)
        self._position = offset + length
        self._end = max(self._end, self._position)
        return length

    def truncate(self, size: int | None = None) -> int:
        size = self._position if size is None else size
        os.ftruncate(self._fd, size)
        if size < self._end:
            self._reread = True
        self._appending = self._appending and size == self._end
        self._end = size
        return size

    def flush(self) -> None:
        pass  # unbuffered: every write is already in the kernel's hands

    def close(self) -> None:
        if not self.closed:
            try:
                if self._pool is not None:
                    self._pool.shutdown()
                self._checksum = self._finish()
            finally:
                os.close(self._fd)
        super().close()

    @property
    def checksum(self) -> FileChecksum:
        """The file's size and checksum (closes the file)."""
        self.close()
        assert self._checksum is not None
        return self._checksum

    # -- hashing ---------------------------------------------------------------------------

    def _write_all(self, view: memoryview, offset: int) -> None:
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def _hash_while_writing(self, view: memoryview, offset: int, seed: int) -> int:
        """Write ``view`` at ``offset``; its CRC, continuing ``seed``."""
        if len(view) < PARALLEL_BYTES:
            self._write_all(view, offset)
            return crc32c(view, seed)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="crc32c")
        for start in range(0, len(view), PARALLEL_BYTES):
            piece = view[start : start + PARALLEL_BYTES]
            crc = self._pool.submit(crc32c, piece, seed)  # both release the GIL
            self._write_all(piece, offset + start)
            seed = crc.result()
        return seed

    def _add_large(self, view: memoryview, offset: int) -> None:
        """Write and hash a large out-of-order piece; one that continues the previous
        write (a library writing a block in pieces) extends that piece's CRC instead."""
        if self._large:
            start, length, crc, order = self._large[-1]
            if start + length == offset and order == self._order - 1:
                crc = self._hash_while_writing(view, offset, crc)
                self._large[-1] = (start, length + len(view), crc, self._order)
                return
        crc = self._hash_while_writing(view, offset, 0)
        self._large.append((offset, len(view), crc, self._order))

    def _keep(self, offset: int, view: memoryview) -> None:
        self._kept += len(view)
        if self._kept > KEPT_BYTES:
            self._reread = True
            self._small.clear()
        elif not self._reread:
            self._small.append((offset, bytes(view), self._order))

    def _finish(self) -> FileChecksum:
        if self._reread or not self._joinable():
            self.reread = True
            return self._read_back()
        crc, position = self._crc, self._hashed
        for offset, length, piece, _ in sorted(self._large):
            crc = self._hash_gap(crc, position, offset)
            crc, position = crc_combine(crc, piece, length), offset + length
        return FileChecksum.of_crc(self._end, self._hash_gap(crc, position, self._end))

    def _joinable(self) -> bool:
        """Whether no large piece overlaps another, or a short write made after it."""
        pieces = sorted(self._large)
        for (offset, length, _, _), after in itertools.pairwise(pieces):
            if after[0] < offset + length:
                return False
        for offset, data, order in self._small:
            for start, length, _, written in pieces:
                if order > written and offset < start + length and start < offset + len(data):
                    return False
        return all(offset + length <= self._end for offset, length, _, _ in pieces)

    def _hash_gap(self, crc: int, start: int, stop: int) -> int:
        """``crc`` extended over [start, stop): the short writes there, zeros elsewhere."""
        for low in range(start, stop, _CHUNK):
            high = min(stop, low + _CHUNK)
            chunk = bytearray(high - low)
            for offset, data, _ in self._small:  # in the order written: later ones win
                first, last = max(offset, low), min(offset + len(data), high)
                if first < last:
                    chunk[first - low : last - low] = data[first - offset : last - offset]
            crc = crc32c(chunk, crc)
        return crc

    def _read_back(self) -> FileChecksum:
        crc = 0
        for offset in range(0, self._end, _CHUNK):
            crc = crc32c(os.pread(self._fd, min(_CHUNK, self._end - offset), offset), crc)
        return FileChecksum.of_crc(self._end, crc)


def copier(source: Path) -> Callable[[BinaryIO], None]:
    """A writer (for ``LocalStorage.write_stream``) that copies ``source`` into its file."""

    def copy(stream: BinaryIO) -> None:
        with source.open("rb") as original:
            shutil.copyfileobj(original, stream, _CHUNK)

    return copy


def write_hashed(path: Path, writer: Callable[[BinaryIO], None]) -> FileChecksum:
    """Create ``path`` and let ``writer`` write it through a :class:`HashingFile`; its checksum."""
    with HashingFile(path) as file:
        writer(file)  # type: ignore[arg-type]  # a RawIOBase is a binary file
    return file.checksum
