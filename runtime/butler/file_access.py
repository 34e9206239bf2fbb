"""The few file operations that moving data needs, gathered in one place (issue 18).

Export, import and transfer reach dataset files only through these calls, never
through paths of their own, so that they work on any storage the repositories have:
today files below a local root (:class:`butler.storage.LocalStorage`); a Datastore
with other back-ends later replaces the bodies here, not the callers.

- :func:`source_file`: the local file of a stored dataset (for link, move, or reading).
- :func:`stage`: write a dataset's bytes (from a writer, or by hard link from a local
  file) into a hidden temporary beside where it goes, with its size and checksum.
- :func:`sync`: force a batch of staged temporaries to disk (one call per batch).
- :func:`publish`: rename a staged temporary into place, never over another file (a file
  already there with the same checksum is taken as this one: a rerun after a crash).
- :func:`discard`: delete a staged temporary or a file published by a batch that failed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from crc32c import crc32c

from .checksums import FileChecksum, copier, file_checksum
from .errors import DatasetExistsError

if TYPE_CHECKING:
    from .butler import Butler

__all__ = ["Mode", "Staged", "discard", "publish", "source_file", "stage", "sync"]

#: Files up to this size (as recorded) are copied by one read and one write.
SMALL_FILE = 1 << 20

#: How a dataset's file reaches the destination: a copy, a hard link, or a move (a hard
#: link, or a copy across file systems, and the source's dataset removed once committed).
Mode = Literal["copy", "link", "move"]


@dataclass(frozen=True)
class Staged:
    """A dataset file written into a temporary, awaiting :func:`publish`."""

    temporary: Path
    target: Path
    checksum: FileChecksum


def source_file(butler: Butler, path: str) -> Path:
    """The local file of a dataset stored in ``butler`` at (registry) ``path``."""
    return butler.storage.absolute(path)


def stage(
    butler: Butler,
    relative: str,
    *,
    writer: Callable[[BinaryIO], None] | None = None,
    local: Path | None = None,
    mode: Mode = "copy",
    checksum: FileChecksum | None = None,
    folders: set[Path] | None = None,
) -> Staged:
    """Write a dataset's bytes into a temporary beside ``relative`` in ``butler`` (not synced).

    With ``local`` (a file on this machine) and mode ``link``/``move`` the temporary is a
    hard link to it, falling back to a copy across file systems; its ``checksum`` (as
    recorded at the source) is trusted then, since the bytes are the same file's. Otherwise
    the bytes come from ``writer`` (or a copy of ``local``) and are hashed as they are written.
    ``folders``: the folders a batch has made already (each is made once, before its first
    file, rather than after a failed create).
    """
    storage = butler.storage
    target = storage.checked(relative)
    if folders is not None and target.parent not in folders:
        target.parent.mkdir(parents=True, exist_ok=True)
        folders.add(target.parent)
    if local is not None and mode != "copy":
        temporary = storage.temporary_for(target)
        try:
            _link(local, temporary)
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                raise
        else:
            return Staged(temporary, target, checksum or file_checksum(temporary))
    if writer is None:
        assert local is not None, "stage needs a writer or a local file"
        if checksum is not None and checksum.size <= SMALL_FILE:
            return _stage_small(butler, local, target)
        writer = copier(local)
    temporary, sums = storage.write_stream(target, writer, sync=False)
    return Staged(temporary, target, sums)


def _stage_small(butler: Butler, local: Path, target: Path) -> Staged:
    """A small file: read whole, hashed, written in one call (no file object in between)."""
    data = local.read_bytes()

    def write(temporary: Path) -> None:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)

    temporary = butler.storage.write(target, write, sync=False)
    return Staged(temporary, target, FileChecksum.of_crc(len(data), crc32c(data)))


def _link(source: Path, temporary: Path) -> None:
    try:
        os.link(source, temporary)
    except FileNotFoundError:
        if not temporary.parent.is_dir():
            temporary.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, temporary)
        else:
            raise


def sync(butler: Butler, staged: Sequence[Staged]) -> None:
    """Force a batch of staged files to disk before their rows are committed."""
    butler.storage.sync([item.temporary for item in staged])


def publish(butler: Butler, staged: Staged) -> bool:
    """Rename a staged file into place; False if an identical file was already there (left
    by an interrupted run: the temporary is discarded and that file kept).

    DatasetExistsError if a different file is in the way (nothing is replaced)."""
    try:
        butler.storage.publish(staged.temporary, staged.target)
    except DatasetExistsError:
        if staged.target.is_file() and file_checksum(staged.target) == staged.checksum:
            discard(staged.temporary)
            return False
        discard(staged.temporary)
        raise
    return True


def discard(path: Path) -> None:
    """Delete a temporary (or a file a failed batch published); nothing if it is gone."""
    path.unlink(missing_ok=True)
