"""A local cache of remote dataset files, shared by every process of a user.

Reads of remote (S3) datasets go through it: ``with cache.open(dataset_id, fetch) as path``
gives a local file holding the dataset, downloading it with ``fetch(path)`` only when no
process has it cached. Entries are keyed by dataset id, which names immutable content
(an overwrite records a new id), so an entry is never stale.

Layout of the cache folder (``BUTLER_CACHE_DIR``, default ``~/.cache/butler``)::

    files/<dataset id><suffix>   the cached copies; their mtime is their last use
    held/<pid>-<random><suffix>  hard links to copies in use by a reader
    tmp/<pid>-<random>/          downloads under way
    lock                         taken (flock) by whoever evicts
    usage                        the bytes and files in ``files/`` (see SharedCache.evict)

Safety between processes: a reader never uses ``files/...`` itself; it first makes a
hard link to it under ``held/`` (one atomic ``link``) and reads that. Eviction only
unlinks ``files/...``, so a file another process is reading keeps its bytes until the
reader drops its link. A download goes to ``tmp/`` and is published with one atomic
rename, so no reader sees a partial file; two processes fetching the same id at once
both succeed (the second rename replaces identical bytes). Eviction runs after each
download, under the lock: the least recently used copies (oldest mtime) go until the
cache is within ``max_bytes`` and ``max_files`` (the folder is listed only when the
``usage`` count says a bound is passed); links and downloads left by processes that died
are removed at the same time.

:func:`cache_from_environment` reads ``BUTLER_CACHE_DIR``, ``BUTLER_CACHE_SIZE``
(``10GB``, ``500MB``, bytes; ``0`` or ``off`` turns the cache off) and
``BUTLER_CACHE_FILES``; with the cache off each read downloads to a temporary file,
removed after use (:class:`NoCache`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError, RepositoryError

__all__ = ["DEFAULT_SIZE", "NoCache", "ReadCache", "SharedCache", "cache_from_environment"]

DEFAULT_SIZE = 4 << 30
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}

#: Writes the dataset's bytes to the path it is given (a new file).
Fetch = Callable[[Path], None]


class ReadCache(Protocol):
    def open(
        self, dataset_id: str, fetch: Fetch, suffix: str = ""
    ) -> contextlib.AbstractContextManager[Path]:
        """A local file holding the dataset, valid until the ``with`` block ends."""
        ...


@dataclass(frozen=True, slots=True)
class CacheStats:
    files: int
    size: int


class SharedCache:
    """A size- and count-bounded cache folder, safe to share between processes."""

    def __init__(
        self, folder: Path, max_bytes: int | None = DEFAULT_SIZE, max_files: int | None = None
    ) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.files = self.folder / "files"
        self.held = self.folder / "held"
        self.tmp = self.folder / "tmp"
        try:
            for sub in (self.files, self.held, self.tmp):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RepositoryError(
                f"cannot use the read cache folder {self.folder}: {error.strerror}; set"
                " BUTLER_CACHE_DIR to a writable folder, or BUTLER_CACHE_SIZE=0 to turn it off"
            ) from None

    def _name(self, dataset_id: str, suffix: str) -> str:
        name = f"{dataset_id}{suffix}"
        if not _SAFE.match(name) or ".." in name:
            raise ValueError(f"dataset id {dataset_id!r} / suffix {suffix!r} cannot name a file")
        return name

    @contextlib.contextmanager
    def open(self, dataset_id: str, fetch: Fetch, suffix: str = "") -> Iterator[Path]:
        entry = self.files / self._name(dataset_id, suffix)
        held = self.held / f"{os.getpid()}-{secrets.token_hex(8)}{suffix}"
        try:
            os.link(entry, held)
            with contextlib.suppress(FileNotFoundError):
                os.utime(entry)  # last use, for LRU eviction
        except FileNotFoundError:
            self._fetch(entry, held, fetch)
        try:
            yield held
        finally:
            with contextlib.suppress(FileNotFoundError):
                held.unlink()

    def contains(self, dataset_id: str, suffix: str = "") -> bool:
        return (self.files / self._name(dataset_id, suffix)).exists()

    def _fetch(self, entry: Path, held: Path, fetch: Fetch) -> None:
        # A folder per download, so whatever the fetcher writes beside its target (a
        # client's own partial file) goes with it, also when the process dies.
        work = self.tmp / f"{os.getpid()}-{secrets.token_hex(8)}"
        work.mkdir()
        temporary = work / "data"
        try:
            fetch(temporary)
            size = temporary.stat().st_size
            os.link(temporary, held)  # ours to read, whatever eviction does next
            os.replace(temporary, entry)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                held.unlink()
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.evict(added=size)

    def stats(self) -> CacheStats:
        sizes = [s.st_size for s in _stats(self.files).values()]
        return CacheStats(len(sizes), sum(sizes))

    def evict(self, added: int | None = None) -> None:
        """Drop least recently used copies until within bounds; clear dead processes' files.

        ``added``: the size of the one copy just downloaded. The bytes and files in the
        cache are kept in ``usage`` (under the lock): a download within the bounds adds
        itself there instead of listing every copy, so it costs the same in a cache of ten
        files or of a hundred thousand. The count never falls short of the copies there
        (only a download killed between its publish and this call is missed, until the
        next listing); when it passes a bound, or is missing, the folder is listed and the
        count made exact.
        """
        with open(self.folder / "lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._clear_dead()
                usage = self._usage() if added is not None else None
                if usage is not None and added is not None:
                    total, count = usage[0] + added, usage[1] + 1
                    if self._within(total, count):
                        self._write_usage(total, count)
                        return
                self._write_usage(*self._evict_listed())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _within(self, total: int, count: int) -> bool:
        return (self.max_bytes is None or total <= self.max_bytes) and (
            self.max_files is None or count <= self.max_files
        )

    def _evict_listed(self) -> tuple[int, int]:
        """List every copy, drop the least recently used until within bounds; what is left."""
        entries = sorted(_stats(self.files).items(), key=lambda item: item[1].st_mtime_ns)
        total = sum(s.st_size for _, s in entries)
        count = len(entries)
        for path, stat in entries:
            if self._within(total, count):
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= stat.st_size
            count -= 1
        return total, count

    def _usage(self) -> tuple[int, int] | None:
        """The bytes and files counted in ``usage``; None if missing or unreadable."""
        try:
            total, count = (self.folder / "usage").read_text().split()
            return int(total), int(count)
        except (OSError, ValueError):
            return None

    def _write_usage(self, total: int, count: int) -> None:
        with contextlib.suppress(OSError):  # a missing count only costs the next a listing
            (self.folder / "usage").write_text(f"{total} {count}\n")

    def _clear_dead(self) -> None:
        for folder in (self.held, self.tmp):
            for path in folder.iterdir():
                pid = path.name.split("-", 1)[0]
                if pid.isdigit() and not _alive(int(pid)):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()

    def clear(self) -> None:
        """Remove every cached copy (files in use stay readable by their readers)."""
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "usage").unlink()  # the next download lists the folder
        for path in self.files.iterdir():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class NoCache:
    """The cache turned off: each read downloads to a temporary file, removed after use."""

    @contextlib.contextmanager
    def open(self, dataset_id: str, fetch: Fetch, suffix: str = "") -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="butler-read-"))
        try:
            path = folder / f"dataset{suffix}"
            fetch(path)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _stats(folder: Path) -> dict[Path, os.stat_result]:
    found: dict[Path, os.stat_result] = {}
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            found[path] = path.stat()
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def parse_size(text: str) -> int:
    """``"10GB"`` → 10**10, ``"512MiB"`` → 2**29, ``"1000"`` → 1000."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _UNITS:
        raise ConfigError(
            f"cache size {text!r} is not a size; write e.g. 10GB, 500MB, 2GiB, or 0 for off"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def cache_from_environment(
    environ: Mapping[str, str] | None = None, config: Mapping[str, object] | None = None
) -> SharedCache | NoCache:
    """The read cache the environment (or a ``cache:`` config section) asks for.

    The environment wins: ``BUTLER_CACHE_DIR``, ``BUTLER_CACHE_SIZE``, ``BUTLER_CACHE_FILES``;
    config keys ``folder``, ``size``, ``files``.
    """
    environ = os.environ if environ is None else environ
    config = config or {}
    size_text = environ.get("BUTLER_CACHE_SIZE") or str(config.get("size", DEFAULT_SIZE))
    if size_text.strip().lower() in ("0", "off", "none", "false"):
        return NoCache()
    files_text = environ.get("BUTLER_CACHE_FILES") or config.get("files")
    try:
        max_files = int(str(files_text)) if files_text not in (None, "") else None
    except ValueError:
        raise ConfigError(f"BUTLER_CACHE_FILES={files_text!r} is not a number of files") from None
    default_home = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "butler"
    folder = environ.get("BUTLER_CACHE_DIR") or str(config.get("folder", default_home))
    return SharedCache(Path(folder).expanduser(), parse_size(size_text), max_files)
