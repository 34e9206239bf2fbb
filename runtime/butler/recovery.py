"""The recovery journal: files an operation sets aside, kept until its commit settles.

Every put writes its file as a temporary in the journal and publishes it by a hard
link, so the temporary stays a second name of the published file until the commit
settled; an overwrite keeps the replaced file, and a remove moves the removed file
out of the way. Each of those goes into the Butler's own folder
``ROOT/.butler/pending/<owner>/`` (same file system, so a link or rename is atomic),
under a name that says the order, a token, what it is (``put``, ``kept``, ``aside``,
or ``new`` from earlier versions) and the dataset's path relative to the root
(URL-safe base64; a path too long for one file name goes into a small ``.target``
file written first). A ``put`` entry's token is the new dataset's id; the others'
is the operation's, which the registry commit that makes it real records in the
same transaction (see ``Registry.record_operation``). So after a crash at any point:

- token committed (for a put: the registry holds its dataset id): the "after" state
  is real, and the journal's files are deleted (a put's file keeps its final name);
- not committed: a kept file is put back over its path, a removed file is renamed
  back, and a put's file is deleted from its path if it was published there (the
  path and the entry are one file), then from the journal.

Entries are finished last first, so several operations on one path within a
transaction unwind in order. ``<owner>`` is one Butler object; it holds an
``flock`` on ``<owner>/lock`` while it lives, so recovery (run when a writeable
repository is opened, and by ``butler verify --repair``) only ever finishes the
entries of owners that are gone.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import itertools
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .storage import BUTLER_FOLDER

if TYPE_CHECKING:
    from .registry import Registry

__all__ = [
    "NEW_KINDS",
    "PENDING",
    "Entry",
    "Journal",
    "discard_entry",
    "pending_entries",
    "recover",
]

#: Where the owners' folders are, relative to the root.
PENDING = f"{BUTLER_FOLDER}/pending"
KINDS = ("put", "kept", "aside", "new")
#: Entries of new files (a put's): undone by deleting the file at their path.
NEW_KINDS = frozenset({"put", "new"})
_LOCK = "lock"
_TARGET = ".target"
_NEW_OWNER = ".new-"
#: Longest entry name that carries its path itself (file systems allow 255 bytes).
_NAME_LIMIT = 240


def _encode(relative: str) -> str:
    raw = relative.encode("utf-8", "surrogateescape")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(text: str) -> str:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Entry:
    """One set-aside file (or a ``new`` marker) in an owner's folder."""

    file: Path
    sequence: int
    token: str
    kind: str
    target: str  # relative to the root

    @classmethod
    def parse(cls, file: Path) -> Entry | None:
        """The entry a file name describes; None for a lock or ``.target`` file."""
        parts = file.name.split(".")
        if (
            file.name.endswith(_TARGET)
            or len(parts) not in (3, 4)
            or parts[2] not in KINDS
            or not parts[0].isdigit()
        ):
            return None
        if len(parts) == 4:
            target = _decode(parts[3])
        else:
            try:
                target = file.with_name(file.name + _TARGET).read_text("utf-8", "surrogateescape")
            except FileNotFoundError:
                return None  # cannot happen: the .target file is written first
        return cls(file, int(parts[0]), parts[1], parts[2], target)


def discard_entry(entry: Path) -> None:
    """Delete a settled entry, and the ``.target`` file beside it that a long path needs."""
    entry.unlink(missing_ok=True)
    if entry.name.count(".") == 2:  # "<sequence>.<token>.<kind>": its path is in a file
        entry.with_name(entry.name + _TARGET).unlink(missing_ok=True)


class Journal:
    """The entries of one Butler object: created on first use, removed by :meth:`close`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = os.fspath(root).rstrip("/") + "/"
        self._folder: Path | None = None
        self._lock: int | None = None
        self._sequence = itertools.count()
        self._mutex = threading.Lock()

    @staticmethod
    def token() -> str:
        return secrets.token_hex(8)

    def entry(self, token: str, kind: str, target: Path) -> Path:
        """A fresh name in this owner's folder for a file set aside from ``target``
        (every put asks for one: the few microseconds are worth keeping few)."""
        folder = self._folder or self._owner_folder()
        text = os.fspath(target)
        if text.startswith(self._prefix):
            relative = text[len(self._prefix) :]
        else:
            relative = target.relative_to(self.root).as_posix()
        with self._mutex:
            sequence = next(self._sequence)
        name = f"{sequence:012d}.{token}.{kind}"
        encoded = f"{name}.{_encode(relative)}"
        if len(encoded) <= _NAME_LIMIT:
            return folder / encoded
        (folder / (name + _TARGET)).write_text(relative, "utf-8", "surrogateescape")
        return folder / name

    def _owner_folder(self) -> Path:
        with self._mutex:
            if self._folder is None:
                self._folder, self._lock = _new_owner(self.root / PENDING)
            return self._folder

    def close(self) -> None:
        """Remove the (settled, so empty) folder and release the lock."""
        with self._mutex:
            folder, lock, self._folder, self._lock = self._folder, self._lock, None, None
        if folder is None or lock is None:
            return
        try:
            if not _entries(folder):  # left: the lock, and .target files of nothing set aside
                for leftover in folder.iterdir():
                    leftover.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()
        finally:
            os.close(lock)


def _new_owner(pending: Path) -> tuple[Path, int]:
    """A new owner folder with its lock held; made under a hidden name, then renamed,
    so recovery never sees an owner folder whose lock is not yet taken."""
    pending.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{secrets.token_hex(6)}"
    making = pending / f"{_NEW_OWNER}{name}"
    making.mkdir()
    lock = os.open(making / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.rename(making, pending / name)
    return pending / name, lock


def _owners(root: Path) -> Iterator[Path]:
    try:
        names = sorted(os.listdir(root / PENDING))
    except FileNotFoundError:
        return
    for name in names:
        yield root / PENDING / name


def _entries(folder: Path) -> list[Entry]:
    entries = [Entry.parse(path) for path in folder.iterdir()]
    return sorted((e for e in entries if e is not None), key=lambda e: e.sequence)


def pending_entries(root: Path) -> list[Entry]:
    """Every entry of every owner, live or gone (what ``verify`` reports)."""
    found: list[Entry] = []
    for folder in _owners(root):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            found += _entries(folder)
    return found


@contextlib.contextmanager
def _gone_owner(folder: Path) -> Iterator[bool]:
    """Whether ``folder``'s owner is gone; its lock is held (by us) while the block runs."""
    try:
        lock = os.open(folder / _LOCK, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        # an owner still making its folder, or a recovery that died removing one
        yield not folder.name.startswith(_NEW_OWNER) and folder.is_dir()
        return
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield False
            return
        yield True
    finally:
        os.close(lock)


def recover(root: Path, registry: Registry, *, sweep: bool = False) -> int:
    """Finish the operations of every gone owner; how many entries were finished.

    Cheap when nothing is pending: one listing of a usually missing folder.
    ``sweep`` also forgets committed tokens that no entry names any more (left by
    a process that died after settling its files, before forgetting the token).
    """
    # read before listing: a token committed then, and named by no entry listed after,
    # was settled (an operation's entries exist before its token commits)
    known = registry.committed_operations(None) if sweep else set()
    finished = 0
    for folder in _owners(root):
        try:
            finished += _recover_owner(root, folder, registry)
        except (FileNotFoundError, NotADirectoryError):
            continue  # another recovery finished it first
    if known:
        registry.forget_operations(known - {entry.token for entry in pending_entries(root)})
    return finished


def _recover_owner(root: Path, folder: Path, registry: Registry) -> int:
    with _gone_owner(folder) as gone:
        if not gone:
            return 0
        entries = _entries(folder)
        tokens = {e.token for e in entries if e.kind != "put"}
        committed = registry.committed_operations(tokens) if tokens else set()
        ids = {e.token for e in entries if e.kind == "put"}
        stored = registry.stored_ids(ids) if ids else set()
        for entry in reversed(entries):
            _finish(root, entry, entry.token in (stored if entry.kind == "put" else committed))
        for leftover in folder.iterdir():  # .target files and the lock
            leftover.unlink(missing_ok=True)
        folder.rmdir()
    if committed:  # only once no entry names them any more
        registry.forget_operations(committed)
    return len(entries)


def _finish(root: Path, entry: Entry, committed: bool) -> None:
    target = root / entry.target
    if not committed and entry.kind in ("kept", "aside"):
        target.parent.mkdir(parents=True, exist_ok=True)  # in case a tool removed the folder
        os.replace(entry.file, target)  # a no-op if both are links to one file
    elif not committed and entry.kind in NEW_KINDS:
        with contextlib.suppress(FileNotFoundError):
            if _same_file(entry.file, target):  # published: the path is the entry's file
                target.unlink()
    entry.file.unlink(missing_ok=True)


def _same_file(entry: Path, target: Path) -> bool:
    """Whether ``target`` (not followed, if it is a link) is the file ``entry`` names."""
    mine, there = os.stat(entry), os.lstat(target)
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)
