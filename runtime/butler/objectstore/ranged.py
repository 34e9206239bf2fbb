"""A read-only, seekable file over byte-range GETs of one object: FITS headers and
sections, and HDF5 datasets, read without downloading the whole object.

``astropy.io.fits.open(RangedFile(store, key))`` reads the header blocks it needs; an
image's ``section[y0:y1, x0:x1]`` then reads only the rows of the section (one range per
row of an uncompressed image). ``h5py.File(RangedFile(store, key, block_size=1 << 16))``
reads the superblock, B-tree and chunks it needs; the block cache turns HDF5's many small
metadata reads into a few requests.

``block_size=0`` (the default) sends each read as it comes (exact bytes, one request per
read); a ``block_size`` fetches aligned blocks and keeps the last ``max_blocks`` of them.
:attr:`RangedFile.bytes_fetched` and :attr:`RangedFile.requests` count what crossed the
network, so callers and benchmarks can show what a read cost.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import TYPE_CHECKING

from ..errors import ObjectMissingError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

    from .client import ObjectStore

__all__ = ["RangedFile"]


class RangedFile(io.RawIOBase):
    """The object at ``relative`` in ``store`` as a read-only binary file."""

    def __init__(
        self,
        store: ObjectStore,
        relative: str,
        *,
        size: int | None = None,
        block_size: int = 0,
        max_blocks: int = 64,
    ) -> None:
        super().__init__()
        self.store = store
        self.relative = relative
        if size is None:
            info = store.head(relative)
            if info is None:
                uri = store.uri(relative)
                raise ObjectMissingError(f"no object at {uri} to read", uri)
            size = info.size
        self.size = size
        self.block_size = block_size
        self.max_blocks = max_blocks
        self.position = 0
        self.bytes_fetched = 0
        self.requests = 0
        self.blocks: OrderedDict[int, bytes] = OrderedDict()

    @property
    def name(self) -> str:
        return self.store.uri(self.relative)

    @property
    def mode(self) -> str:
        return "rb"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self.position = base + offset
        return self.position

    def _fetch(self, start: int, stop: int) -> bytes:
        data = self.store.get_range(self.relative, start, stop)
        self.requests += 1
        self.bytes_fetched += len(data)
        return data

    def _block(self, number: int) -> bytes:
        block = self.blocks.get(number)
        if block is None:
            start = number * self.block_size
            block = self._fetch(start, min(start + self.block_size, self.size))
            self.blocks[number] = block
            if len(self.blocks) > self.max_blocks:
                self.blocks.popitem(last=False)
        else:
            self.blocks.move_to_end(number)
        return block

    def pread(self, start: int, stop: int) -> bytes:
        """Bytes ``start`` to ``stop - 1`` (fewer at the end), without moving the position."""
        stop = min(stop, self.size)
        if stop <= start:
            return b""
        if not self.block_size:
            return self._fetch(start, stop)
        first, last = start // self.block_size, (stop - 1) // self.block_size
        joined = b"".join(self._block(n) for n in range(first, last + 1))
        offset = start - first * self.block_size
        return joined[offset : offset + stop - start]

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.pread(self.position, self.position + len(view))
        view[: len(data)] = data
        self.position += len(data)
        return len(data)

    def readall(self) -> bytes:
        data = self.pread(self.position, self.size)
        self.position += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        data = self.pread(self.position, self.position + size)
        self.position += len(data)
        return data
