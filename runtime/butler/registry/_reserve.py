"""A preallocated reserve file beside an SQLite registry, so removing works on a full disk.

An SQLite write in WAL mode appends its pages to the ``-wal`` file, which grows
until a checkpoint, so on a full disk even a ``DELETE`` fails ("database or disk
is full") and no space could be freed through Butler. A writeable SQLite
registry therefore keeps ``<database>-reserve``, a file of :data:`RESERVE_BYTES`
allocated in advance on the same file system. When a remove fails because the
disk is full, the registry deletes the reserve and runs the remove again in the
space it freed (a one-row delete appends three 4 KiB pages of WAL frames: 12 KiB
measured). Without a reserve (a repository made before it), the registry
checkpoints and truncates the WAL instead. The reserve is made again, when there
is room, the next time the registry is opened, records or removes a dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ._engine import is_shared_memory

__all__ = ["RESERVE_BYTES", "RESERVE_SUFFIX", "Reserve", "disk_full"]

#: Size of the reserve: far more than the WAL frames, ``-shm`` growth and temporary
#: pages of one remove, little beside a repository's data.
RESERVE_BYTES = 256 * 1024
#: Appended to the SQLite database's file name.
RESERVE_SUFFIX = "-reserve"
#: SQLite's primary result code for "database or disk is full".
_SQLITE_FULL = 13
#: PostgreSQL's SQLSTATE ``disk_full``.
_PG_DISK_FULL = "53100"


def disk_full(error: BaseException | None) -> bool:
    """Whether a database driver's error says the disk holding the database is full."""
    if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    return getattr(error, "sqlstate", None) == _PG_DISK_FULL


@dataclass(frozen=True)
class Reserve:
    """The reserve file of one SQLite registry."""

    path: Path
    size: int = RESERVE_BYTES

    @classmethod
    def beside(cls, url: sa.URL) -> Reserve | None:
        """The reserve of the SQLite database at ``url``; None for another database."""
        if url.get_backend_name() != "sqlite" or not url.database or is_shared_memory(url):
            return None
        return cls(Path(os.path.abspath(url.database + RESERVE_SUFFIX)))

    def ensure(self) -> bool:
        """Allocate the reserve if it is missing and there is room; whether it exists.

        Never raises: without room (or rights) the repository simply has no reserve yet.
        """
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return True
        except OSError:
            return False
        try:
            try:
                os.posix_fallocate(descriptor, 0, self.size)
            finally:
                os.close(descriptor)
        except OSError:
            self.release()
            return False
        return True

    def release(self) -> bool:
        """Delete the reserve, freeing its space; whether there was one."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        return True
