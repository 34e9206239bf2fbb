"""Where dataset files live: a local folder, written atomically.

A write goes to a hidden temporary file in the destination folder, is flushed
and fsynced (or, in a repository with ``durability: close``, fsynced later with
others), and only then renamed to the final name, so a reader (or a process
that dies mid-write) never sees half a file. The rename of a new dataset's file
refuses to replace a file already there, in the same system call, so no check
and no concurrent writer can race it. Temporary names start with ``.`` and end
with ``.butler-tmp``, so ``verify`` can find any left behind. The folder
``.butler`` at the root is the Butler's own (its recovery journal, see
:mod:`butler.recovery`) and holds no datasets.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .checksums import FileChecksum, write_hashed
from .errors import DatasetExistsError, InvalidDataIdError, RepositoryError

__all__ = ["BUTLER_FOLDER", "TEMP_SUFFIX", "LocalStorage", "out_of_space"]

TEMP_SUFFIX = ".butler-tmp"
#: The Butler's own folder below the root; never part of a dataset's path.
BUTLER_FOLDER = ".butler"
#: Longest path the system takes (Linux PATH_MAX), and the most bytes a temporary's
#: name adds to its target's (``.NAME.PID-RANDOM.butler-tmp``).
PATH_MAX = 4096
TEMP_EXTRA = 40

#: Most fsyncs :meth:`LocalStorage.sync` runs at once. The file system commits
#: concurrent fsyncs in one journal commit, so N files cost far less than N fsyncs.
SYNC_THREADS = 16
#: From this many files on, :meth:`LocalStorage.sync` flushes their whole file system
#: at once (Linux ``syncfs``): one call, about 10 µs per file against 90 µs for
#: concurrent fsyncs, at the price of also flushing other writers' dirty data.
SYNCFS_FILES = 64


def out_of_space(error: BaseException) -> bool:
    """Whether ``error`` or an error it wraps (a formatter's FormatError) says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
    return False


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_if_present(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        _fsync(path)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """The C library's ``syncfs``, where there is one (Linux)."""
    import ctypes

    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None
    return function


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
#: What ``renameat2`` says on a file system (or kernel) without ``RENAME_NOREPLACE``.
_NO_RENAMEAT2 = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


@functools.cache
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """The C library's ``renameat2``, where there is one (Linux, glibc 2.28 on)."""
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    path, descriptor = ctypes.c_char_p, ctypes.c_int
    function.argtypes = (descriptor, path, descriptor, path, ctypes.c_uint)
    function.restype = ctypes.c_int
    renameat2: Callable[[int, bytes, int, bytes, int], int] = function
    return renameat2


def _rename_no_replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` in one step; FileExistsError if ``target`` exists.

    Uses ``renameat2(RENAME_NOREPLACE)``; where the file system lacks it, a hard
    link (which also refuses an existing name) and an unlink; where hard links are
    refused too, a check and a rename, which a concurrent writer could race.
    """
    renameat2 = _renameat2()
    if renameat2 is not None:
        old, new = os.fsencode(source), os.fsencode(target)
        if renameat2(_AT_FDCWD, old, _AT_FDCWD, new, _RENAME_NOREPLACE) == 0:
            return
        import ctypes

        code = ctypes.get_errno()
        if code not in _NO_RENAMEAT2:
            raise OSError(code, os.strerror(code), str(source), None, str(target))
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP):  # EEXIST among the rest
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.rename(source, target)
        return
    os.unlink(source)


def _sync_file_systems(files: Sequence[Path], syncfs: Callable[[int], int]) -> None:
    """Flush every file system that holds one of ``files`` (through their folders)."""
    import ctypes

    devices: dict[int, Path] = {}
    for folder in {path.parent for path in files}:
        with contextlib.suppress(FileNotFoundError):  # a removed folder has nothing to flush
            devices.setdefault(os.stat(folder).st_dev, folder)
    for folder in devices.values():
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            if syncfs(descriptor) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), str(folder))
        finally:
            os.close(descriptor)


@dataclass(frozen=True)
class LocalStorage:
    """Dataset files under one root folder, addressed by relative POSIX paths."""

    root: Path

    def absolute(self, relative: str) -> Path:
        """The file for a stored path; absolute stored paths (imported trees) stay as they are."""
        if relative.startswith("/"):
            return Path(relative)
        return self.root / relative

    def checked(self, relative: str) -> Path:
        """The file a new dataset is written to; refuses paths that leave the root.

        Besides the path's own text, the folder it goes in is checked: a folder
        inside the repository that is a symbolic link to somewhere else would carry
        the write out of it (RepositoryError).
        """
        parts = [part for part in relative.split("/") if part and part != "."]
        if not parts or relative.startswith("/") or ".." in parts or "\0" in relative:
            raise InvalidDataIdError(
                f"path {relative!r} would leave the repository {self.root}; "
                "check the data ID values that fill its template"
            )
        target = self.root / relative
        if len(os.fsencode(target)) + TEMP_EXTRA >= PATH_MAX:
            raise InvalidDataIdError(
                f"path {relative!r} is too long: below {self.root} it (and the hidden temporary "
                f"a write goes through) would pass the system's limit of {PATH_MAX} bytes; "
                "check the data ID values that fill its template"
            )
        return self.inside(relative)

    def inside(self, relative: str) -> Path:
        """The file at ``relative``, once its folder is known to be inside the root.

        Each folder on the way below the root is looked at without following links
        (one ``lstat`` each; a missing one ends the walk, as a write creates real
        folders there); a folder that is a symbolic link must resolve to a place
        under the root's real path. The file itself may be a link (an ingest with
        ``transfer="symlink"`` makes one), so removing it removes the link only.
        RepositoryError if a folder leads outside.
        """
        target = self.root / relative
        folder = str(self.root)
        for name in relative.split("/")[:-1]:
            folder = f"{folder}/{name}"
            try:
                mode = os.lstat(folder).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break
            if stat.S_ISLNK(mode):
                real = Path(os.path.realpath(folder))
                if real != self._real_root and not real.is_relative_to(self._real_root):
                    raise RepositoryError(
                        f"{relative!r} is in folder {folder}, a symbolic link to {real}, "
                        f"outside the repository {self.root}; Butler writes and deletes files "
                        "only inside the repository: replace the link with a real folder, or "
                        "ingest the files with transfer='symlink'"
                    )
        return target

    @functools.cached_property
    def _real_root(self) -> Path:
        return self.root.resolve()

    def uri(self, relative: str) -> str:
        return self.absolute(relative).absolute().as_uri()

    def temporary_for(self, target: Path) -> Path:
        """A fresh hidden temporary name beside ``target``."""
        return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")

    def write(
        self,
        target: Path,
        writer: Callable[[Path], None],
        *,
        sync: bool = True,
        at: Path | None = None,
    ) -> Path:
        """Write through ``writer`` into a fsynced temporary beside ``target``; the temporary.

        The caller renames it into place with :meth:`publish` (or removes it
        with :meth:`discard`) once the registry has the record. With
        ``sync=False`` the caller must :meth:`sync` the temporary before that.
        ``at`` is the temporary to write instead, a fresh name in a folder that exists
        (a put's entry in the recovery journal), published with :meth:`link`.
        """
        temporary = self.temporary_for(target) if at is None else at
        try:
            try:
                writer(temporary)
            except Exception:  # most often a missing folder; only then is it worth a look
                # (made here, or by a concurrent writer since: then no temporary was made)
                if at is not None or (not self._make_folder(target.parent) and temporary.exists()):
                    raise
                writer(temporary)
            if sync:
                _fsync(temporary)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary

    def link(self, temporary: Path, target: Path) -> None:
        """Give a written temporary its final name, which must be free, as a second name.

        The temporary keeps its name until the caller discards it (after its commit), so
        recovery can tell a published file by its link count. A file already at ``target``
        is left as it is (DatasetExistsError). Where the temporary cannot be linked there
        (no hard links on the file system, or the target's folder is on another file
        system), the file is moved (or copied, fsynced, then moved) into place the old
        way instead: the temporary then no longer names it.
        """
        try:
            try:
                os.link(temporary, target)
            except FileNotFoundError:
                if not self._make_folder(target.parent):
                    raise
                os.link(temporary, target)
        except FileExistsError:
            raise self._taken(target) from None
        except OSError as error:
            if error.errno == errno.EXDEV:
                self._copy_into_place(temporary, target)
            elif error.errno in (errno.EPERM, errno.EOPNOTSUPP):
                self.publish(temporary, target)
            else:
                raise

    def _copy_into_place(self, temporary: Path, target: Path) -> None:
        """The target's folder is on another file system: copy, fsync, rename beside it."""
        import shutil

        def copy_to(path: Path) -> None:
            shutil.copyfile(temporary, path)

        copy = self.write(target, copy_to)
        try:
            self.publish(copy, target)
        finally:
            copy.unlink(missing_ok=True)

    def _taken(self, target: Path) -> DatasetExistsError:
        return DatasetExistsError(
            f"a file is already at {target} and no record being written knows it; "
            f"nothing was replaced (`butler verify {self.root}` lists such files)"
        )

    def write_stream(
        self,
        target: Path,
        writer: Callable[[BinaryIO], None],
        *,
        sync: bool = True,
        at: Path | None = None,
    ) -> tuple[Path, FileChecksum]:
        """:meth:`write`, with ``writer`` writing into an open file that hashes every byte
        on its way (:class:`~butler.checksums.HashingFile`); the temporary and its size
        and checksum."""
        checksums: list[FileChecksum] = []

        def by_path(temporary: Path) -> None:
            checksums[:] = [write_hashed(temporary, writer)]

        return self.write(target, by_path, sync=sync, at=at), checksums[0]

    @staticmethod
    def _make_folder(folder: Path) -> bool:
        """Create ``folder`` (and its parents) if it is missing; whether it was missing."""
        if folder.is_dir():
            return False
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RepositoryError(f"cannot create folder {folder}: {error.strerror}") from None
        return True

    @staticmethod
    def sync(files: Sequence[Path], *, missing_ok: bool = False) -> None:
        """Fsync written files, several at once (a bulk write's temporaries).

        ``missing_ok`` skips files removed since they were written.
        """
        syncfs = _syncfs() if len(files) >= SYNCFS_FILES else None
        if syncfs is not None:
            if not missing_ok:  # what fsync would say of a file that is gone
                for path in files:
                    os.stat(path)
            _sync_file_systems(files, syncfs)
            return
        fsync = _fsync_if_present if missing_ok else _fsync
        if len(files) <= 1:
            for path in files:
                fsync(path)
            return
        with ThreadPoolExecutor(min(SYNC_THREADS, len(files))) as pool:
            for _ in pool.map(fsync, files):
                pass

    def publish(self, temporary: Path, target: Path) -> None:
        """Rename a written temporary to its final name, which must be free.

        A file already at ``target`` is left as it is and DatasetExistsError is
        raised; the temporary stays for the caller to discard.
        """
        try:
            _rename_no_replace(temporary, target)
        except FileExistsError:
            raise self._taken(target) from None

    def replace(self, temporary: Path, target: Path, keep_as: Path) -> bool:
        """Rename a written temporary over ``target``, keeping the replaced file as ``keep_as``.

        ``keep_as`` is a second name for the replaced file (a hard link made
        before the rename, so ``target`` is never missing), in the same file
        system; the caller deletes it with :meth:`discard` once its commit
        succeeded, or puts it back with :meth:`restore`. Whether there was a file
        to keep.
        """
        kept = self._keep(target, keep_as)
        try:
            try:
                os.replace(temporary, target)
            except FileNotFoundError:  # the dataset's folder is gone too (a temporary in
                if not self._make_folder(target.parent):  # the journal does not make it)
                    raise
                os.replace(temporary, target)
        except OSError as error:
            if kept:
                self.restore(keep_as, target)
            if error.errno == errno.EXDEV:
                raise self._elsewhere(target) from error
            raise
        except BaseException:
            if kept:
                self.restore(keep_as, target)
            raise
        return kept

    def _keep(self, target: Path, keep_as: Path) -> bool:
        """Give the file at ``target`` the second name ``keep_as``; False if there is no file."""
        try:
            os.link(target, keep_as)
        except FileNotFoundError:  # the dataset's file was missing: nothing to keep
            return False
        except OSError as error:
            if error.errno == errno.EXDEV:
                raise self._elsewhere(target) from error
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP):
                raise
            # a file system without hard links: move the file aside instead
            return self.set_aside(target, keep_as)
        return True

    def set_aside(self, target: Path, aside: Path) -> bool:
        """Move a removed dataset's file to ``aside``; False if there was no file."""
        try:
            os.rename(target, aside)
        except FileNotFoundError:
            return False
        except OSError as error:
            if error.errno == errno.EXDEV:
                raise self._elsewhere(target) from error
            raise
        return True

    def _elsewhere(self, target: Path) -> RepositoryError:
        return RepositoryError(
            f"{target.parent} is on another file system than the repository {self.root}; "
            f"Butler keeps the files it replaces or removes in {self.root / BUTLER_FOLDER} "
            "until the registry commits, which needs one file system; nothing was changed"
        )

    @staticmethod
    def restore(kept: Path, target: Path) -> None:
        """Put a file kept by :meth:`replace` (or set aside) back at ``target``."""
        os.replace(kept, target)
        kept.unlink(missing_ok=True)  # still there if both were names of one file

    @staticmethod
    def discard(path: Path) -> None:
        path.unlink(missing_ok=True)

    def walk(self, skip: frozenset[str] = frozenset()) -> Iterator[str]:
        """Every file below the root as a relative POSIX path, in sorted order."""
        for folder, subfolders, files in os.walk(self.root):
            relative_folder = Path(folder).relative_to(self.root)
            if relative_folder == Path("."):
                subfolders[:] = [name for name in subfolders if name != BUTLER_FOLDER]
            subfolders.sort()
            for name in sorted(files):
                relative = (relative_folder / name).as_posix()
                if relative not in skip:
                    yield relative
