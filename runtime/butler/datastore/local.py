"""The local back-end: dataset files under a repository folder.

Locations are ``Path`` objects, and formatters read and write them directly: the
Path-based fast path of local files (a get is one ``stat`` and the formatter's read).
The file operations themselves (atomic publish, keeping replaced files, fsync in bulk)
are :class:`butler.storage.LocalStorage`'s; the journal is :mod:`butler.recovery`'s.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..checksums import FileChecksum, file_checksum
from ..config import CONFIG_NAME, RepositoryConfig, read_config, write_config
from ..creation import undone_on_failure
from ..errors import RepositoryError
from ..recovery import PENDING, Journal, discard_entry, recover
from ..storage import LocalStorage
from .base import Datastore, ReadRequest, WriteRequest

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["LocalDatastore", "local_root"]

#: What ``os.link`` says where a hard link cannot be made (the caller copies instead).
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK})


def local_root(root: str | os.PathLike[str]) -> Path:
    """``root`` as an absolute local folder (``file://`` URLs too)."""
    text = os.fspath(root)
    if isinstance(text, str) and text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text).absolute()


class LocalDatastore(Datastore):
    """Dataset files under one folder, ``root``."""

    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = LocalStorage(root)
        self._pending = f"{root / PENDING}/"

    def __repr__(self) -> str:
        return f"LocalDatastore({str(self.root)!r})"

    # ---- the repository ------------------------------------------------------------------

    def read_config(self) -> RepositoryConfig:
        return read_config(self.root)

    def write_config(self, config: RepositoryConfig) -> None:
        write_config(self.root, config)

    def registry_url(self, url: str) -> str:
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            return prefix + str(self.root / url[len(prefix) :])
        return url

    def local_root(self, action: str) -> Path:
        return self.root

    def journal(self) -> Journal:
        return Journal(self.root)

    def recover(self, registry: Registry, *, sweep: bool = False) -> int:
        return recover(self.root, registry, sweep=sweep)

    def close(self) -> None:
        return None

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """Refuse a folder that is already a repository; make the folder, and if the block
        fails, remove what the create made (see :func:`butler.creation.undone_on_failure`)."""
        if (self.root / CONFIG_NAME).exists():
            raise RepositoryError(
                f"{self.root} is already a Butler repository: use it as it is (Butler(root) in "
                f"Python, `butler COMMAND {self.root}` on the command line), or create the new "
                "one in another folder"
            )
        with undone_on_failure(self.root):
            yield

    # ---- writing -------------------------------------------------------------------------

    def target(self, relative: str) -> Path:
        return self.storage.checked(relative)

    def write(
        self,
        target: Path,
        obj: object,
        request: WriteRequest,
        *,
        sync: bool = True,
        at: Path | None = None,
    ) -> tuple[Path, FileChecksum]:
        """The formatter writes into a hidden temporary beside ``target`` (or at the
        journal entry ``at``), hashed as it is written (by one read after it, for a
        formatter plug-in that writes by path only)."""
        formatter, hdu, compress = request.formatter(), request.hdu, request.compress
        if formatter.writes_streams:

            def stream_writer(stream: BinaryIO) -> None:
                formatter.write_stream(obj, stream, hdu=hdu, compress=compress)

            return self.storage.write_stream(target, stream_writer, sync=sync, at=at)

        def writer(path: Path) -> None:
            formatter.write(obj, path, hdu=hdu, compress=compress)

        temporary = self.storage.write(target, writer, sync=sync, at=at)
        return temporary, file_checksum(temporary)

    def write_stream(
        self, target: Path, writer: Callable[[BinaryIO], None], *, sync: bool = True
    ) -> tuple[Path, FileChecksum]:
        return self.storage.write_stream(target, writer, sync=sync)

    def link(self, local: Path, target: Path) -> Path | None:
        """A hard link beside ``target``; None across file systems (or where links are not
        allowed), so that the caller copies."""
        temporary = self.storage.temporary_for(target)
        for attempt in range(2):
            try:
                os.link(local, temporary)
            except FileNotFoundError:  # the folder is missing (or was, until another
                # thread of a transfer made it: so no is_dir() check here), or ``local`` is
                if attempt or not local.exists():
                    raise
                temporary.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                if error.errno in _NO_LINK:
                    return None
                raise
            else:
                return temporary
        return None

    def sync(self, locations: Sequence[Path], *, missing_ok: bool = False) -> None:
        self.storage.sync(locations, missing_ok=missing_ok)

    def publish(self, temporary: Path, target: Path) -> None:
        self.storage.publish(temporary, target)

    def publish_entry(self, temporary: Path, target: Path) -> None:
        self.storage.link(temporary, target)

    def replace(self, temporary: Path, target: Path, keep_as: Path) -> bool:
        return self.storage.replace(temporary, target, keep_as)

    def set_aside(self, target: Path, aside: Path) -> bool:
        return self.storage.set_aside(target, aside)

    def restore(self, kept: Path, target: Path) -> None:
        self.storage.restore(kept, target)

    def discard(self, location: Path) -> None:
        if str(location).startswith(self._pending):  # a journal entry (every put has one)
            discard_entry(location)
        else:
            self.storage.discard(location)

    # ---- reading -------------------------------------------------------------------------

    def location(self, path: str) -> Path:
        return self.storage.absolute(path)

    def check_inside(self, path: str) -> None:
        if not path.startswith("/"):
            self.storage.inside(path)

    def read(self, location: Path, request: ReadRequest, method: str, *args: Any) -> Any:
        formatter = request.formatter()
        if method == "read":
            return formatter.read(location, python_type=request.python_type, hdu=request.hdu)
        return getattr(formatter, method)(location, *args, hdu=request.hdu)

    def open_bytes(self, location: Path, request: ReadRequest) -> BinaryIO:
        return location.open("rb")

    def local_file(self, location: Path) -> Path:
        return location

    def exists(self, location: Path) -> bool:
        return location.exists()

    def size(self, location: Path) -> int:
        return os.stat(location).st_size

    def uri(self, path: str) -> str:
        return self.storage.uri(path)

    def walk(self, skip: frozenset[str] = frozenset()) -> Iterator[str]:
        return self.storage.walk(skip)


def open_local(root: str | os.PathLike[str]) -> LocalDatastore:
    """The datastore of the repository folder ``root``."""
    return LocalDatastore(local_root(root))


def create_local(root: str | os.PathLike[str]) -> LocalDatastore:
    """The datastore of a repository about to be created in folder ``root``."""
    return LocalDatastore(local_root(root))
