"""The few storage operations that moving data needs, gathered in one place (issue 18).

Export, import and transfer reach dataset bytes only through these calls, and these
only through the repositories' :class:`~butler.datastore.Datastore` (never a path of
their own), so they work between any two back-ends: local files, memory, and any other
that implements the interface (docs/architecture.md, "Where a new back-end goes").

- :func:`local_file`: the local file of a stored dataset, if its back-end keeps plain
  files (the fast path: a hard link, a whole read by path); None otherwise.
- :func:`open_bytes`: a stored dataset's bytes, as a binary file open for reading (for a
  back-end that keeps objects, the object written by its formatter).
- :func:`check_mode`: whether ``link``/``move`` can be done between two repositories.
- :func:`stage`: write a dataset's bytes (from a writer, from a local file, or by hard
  link to it) into a temporary no reader sees, with their size and checksum.
- :func:`sync`: make a batch of staged temporaries durable (one call per batch).
- :func:`publish`: make a staged temporary the dataset at its place, never over another
  one (one already there with the same checksum is taken as this one: a rerun after a crash).
- :func:`discard`: delete a staged temporary or a dataset published by a batch that failed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from crc32c import crc32c

from .checksums import FileChecksum, copier, file_checksum
from .datastore import Location, ReadRequest
from .errors import ButlerError, DatasetExistsError, FormatError, InvalidQueryError
from .registry import DatasetRecord

if TYPE_CHECKING:
    from .butler import Butler
    from .formatters import Formatter

__all__ = [
    "Mode",
    "Staged",
    "check_mode",
    "discard",
    "is_local",
    "local_file",
    "open_bytes",
    "publish",
    "source_writer",
    "stage",
    "stored_checksum",
    "sync",
]

#: Files up to this size (as recorded) are copied by one read and one write.
SMALL_FILE = 1 << 20
_CHUNK = 1 << 20

#: How a dataset's bytes reach the destination: a copy, a hard link, or a move (a hard
#: link, or a copy where one cannot be made, and the source's dataset removed once committed).
Mode = Literal["copy", "link", "move"]


@dataclass(frozen=True)
class Staged:
    """A dataset's bytes written into a temporary, awaiting :func:`publish`."""

    temporary: Location
    target: Location
    checksum: FileChecksum


# ---- the source ---------------------------------------------------------------------------


def is_local(butler: Butler) -> bool:
    """Whether ``butler``'s datasets are plain local files (the link fast path)."""
    try:
        butler.datastore.local_root("link files")
    except ButlerError:
        return False
    return True


def _request(butler: Butler, record: DatasetRecord) -> ReadRequest:
    plan = butler.plan(record.dataset_type)
    return ReadRequest(
        plan.spec.name,
        plan.load_formatter,
        plan.format.python_type,
        butler.hdu(plan, record.data_id),
        plan.compress,
    )


def local_file(butler: Butler, record: DatasetRecord) -> Path | None:
    """The local file of a dataset stored in ``butler``, if its back-end keeps files."""
    return butler.datastore.local_file(butler.datastore.location(record.path))


def open_bytes(butler: Butler, record: DatasetRecord) -> AbstractContextManager[BinaryIO]:
    """The stored bytes of a dataset of ``butler``, open for reading (``with`` closes them)."""
    datastore = butler.datastore
    return datastore.open_bytes(datastore.location(record.path), _request(butler, record))


def source_writer(butler: Butler, record: DatasetRecord) -> Callable[[BinaryIO], None]:
    """A writer (for :func:`stage`) that copies a stored dataset's bytes into its file."""

    def copy(stream: BinaryIO) -> None:
        with open_bytes(butler, record) as source:
            shutil.copyfileobj(source, stream, _CHUNK)

    return copy


def check_mode(source: Butler | None, destination: Butler, mode: Mode) -> None:
    """InvalidQueryError for ``link`` unless both repositories keep local files (``source``
    None: files on this machine, an import's bundle). ``move`` works between any two: a
    hard link where one can be made, a copy elsewhere, then the source's datasets removed;
    ``link`` falls back to a copy across local file systems."""
    if mode != "link":
        return
    for butler in (source, destination):
        if butler is not None and not is_local(butler):
            raise InvalidQueryError(
                f"cannot link datasets {'into' if butler is destination else 'out of'} "
                f"{butler.root}: links need both repositories on local files, and it keeps "
                f"its datasets in {butler.datastore.scheme}:// storage; use --transfer copy "
                "(mode='copy'), or move to also remove them from the source"
            )


# ---- the destination ----------------------------------------------------------------------


def stage(
    butler: Butler,
    relative: str,
    *,
    writer: Callable[[BinaryIO], None] | None = None,
    local: Path | None = None,
    mode: Mode = "copy",
    checksum: FileChecksum | None = None,
) -> Staged:
    """Write a dataset's bytes into a temporary for ``relative`` in ``butler`` (not synced).

    With ``local`` (a file on this machine) and mode ``link``/``move`` the temporary is a
    hard link to it where the destination's back-end can make one (local files, the same
    file system), and its ``checksum`` (as recorded at the source) is trusted, since the
    bytes are the same file's. Otherwise the bytes come from ``writer`` (or a copy of
    ``local``) and are hashed as they are written.
    """
    datastore = butler.datastore
    target = datastore.target(relative)
    if local is not None and mode != "copy":
        temporary = datastore.link(local, target)
        if temporary is not None:
            local_copy = datastore.local_file(temporary)
            if checksum is None and local_copy is not None:
                checksum = file_checksum(local_copy)
            if checksum is not None:
                return Staged(temporary, target, checksum)
            datastore.discard(temporary)  # a link this back-end cannot hash: copy instead
    if writer is None:
        assert local is not None, "stage needs a writer or a local file"
        small = checksum is not None and checksum.size <= SMALL_FILE
        writer = _whole(local) if small else copier(local)
    temporary, sums = datastore.write_stream(target, writer, sync=False)
    return Staged(temporary, target, sums)


def _whole(local: Path) -> Callable[[BinaryIO], None]:
    """A small file's writer: read whole, written in one call (no copy loop in between)."""

    def write(stream: BinaryIO) -> None:
        view = memoryview(local.read_bytes())
        while view:
            view = view[stream.write(view) or 0 :]

    return write


def sync(butler: Butler, staged: Sequence[Staged]) -> None:
    """Make a batch of staged temporaries durable before their rows are committed."""
    butler.datastore.sync([item.temporary for item in staged])


def publish(butler: Butler, staged: Staged) -> bool:
    """Make a staged temporary the dataset at its target; False if identical bytes were
    already there (left by an interrupted run: the temporary is discarded, they are kept).

    DatasetExistsError if other content is in the way (nothing is replaced)."""
    datastore = butler.datastore
    try:
        datastore.publish(staged.temporary, staged.target)
    except DatasetExistsError:
        datastore.discard(staged.temporary)
        if stored_checksum(butler, staged.target) == staged.checksum:
            return False
        raise
    return True


def stored_checksum(butler: Butler, location: Location) -> FileChecksum | None:
    """The size and checksum of the bytes stored at ``location``; None if there are none."""
    datastore = butler.datastore
    path = datastore.local_file(location)
    if path is not None:
        return file_checksum(path) if path.is_file() else None
    try:
        with datastore.open_bytes(location, _BYTES_ONLY) as stored:
            crc, size = 0, 0
            while chunk := stored.read(_CHUNK):
                crc, size = crc32c(chunk, crc), size + len(chunk)
    except (FileNotFoundError, ButlerError):  # nothing there, or an object, not bytes
        return None
    return FileChecksum.of_crc(size, crc)


def _no_formatter() -> Formatter:
    raise FormatError("the stored content is an object, not bytes")


#: A read of stored bytes as they are (an object there is not bytes: FormatError).
_BYTES_ONLY = ReadRequest("", _no_formatter, None, None)


def discard(butler: Butler, location: Location) -> None:
    """Delete a temporary (or a dataset a failed batch published); nothing if it is gone."""
    butler.datastore.discard(location)
