"""Keeping a repository honest: register files already on disk, check records against files.

``Butler.index`` and ``Butler.verify`` call these; they read the Butler's mapper,
registry and storage and never write a file, except ``verify(repair=True)``, which
finishes interrupted operations (see :mod:`butler.recovery`) and deletes the
temporaries of writers that are gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .checksums import file_checksum
from .errors import ButlerError, InvalidDataIdError
from .progress import progress
from .recovery import NEW_KINDS, Entry, pending_entries, recover
from .registry import new_dataset_id
from .storage import TEMP_SUFFIX, LocalStorage

if TYPE_CHECKING:
    from .butler import Butler
    from .datastore.s3 import S3Datastore

__all__ = ["IndexReport", "VerifyReport", "index", "verify"]

#: How ``verify`` names a journal entry's kind (see butler.recovery).
_KIND_TEXT = {"put": "put (new file, not yet committed):", "new": "new (not yet committed):"}


def _in_flight(entries: Iterable[Entry]) -> set[str]:
    """Paths of new files published by puts not yet committed (or interrupted ones)."""
    return {entry.target for entry in entries if entry.kind in NEW_KINDS}


@dataclass(frozen=True)
class IndexReport:
    """What :meth:`Butler.index` found: files registered, already known, and not understood."""

    registered: dict[str, int] = field(default_factory=dict)
    known: int = 0
    unmatched: tuple[str, ...] = ()

    def __str__(self) -> str:
        total = sum(self.registered.values())
        lines = [
            f"registered {total} file(s); {self.known} already known; "
            f"{len(self.unmatched)} not understood"
        ]
        lines += [f"  {name}: {count}" for name, count in sorted(self.registered.items())]
        lines += [f"  not a path of any dataset type: {p}" for p in self.unmatched[:20]]
        if len(self.unmatched) > 20:
            lines.append(f"  ... and {len(self.unmatched) - 20} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Butler.verify` found. ``clean`` means no record lacks its file, and (with
    ``read``) every file reads and matches its recorded size and checksum.

    ``corrupt`` holds ``(dataset type, data ID, path, what differs)`` for a size mismatch,
    a checksum mismatch or a FITS file whose ``CHECKSUM``/``DATASUM`` cards disagree with
    it; ``unchecked`` counts datasets read with no checksum recorded (written before
    Butler recorded them), whose bytes could not be checked.
    """

    datasets: int
    missing: tuple[tuple[str, str], ...] = ()
    unreadable: tuple[tuple[str, str, str], ...] = ()
    untracked: tuple[str, ...] = ()
    temporaries: tuple[str, ...] = ()
    #: Files set aside by an operation in progress or interrupted: (what, dataset path).
    pending: tuple[tuple[str, str], ...] = ()
    #: With ``repair``: interrupted operations' files finished, and temporaries deleted.
    repaired: int = 0
    corrupt: tuple[tuple[str, str, str, str], ...] = ()
    unchecked: int = 0

    @property
    def clean(self) -> bool:
        return not self.missing and not self.unreadable and not self.corrupt

    def __str__(self) -> str:
        lines = [
            f"{self.datasets} dataset(s) checked: {'clean' if self.clean else 'PROBLEMS FOUND'}"
        ]
        lines += [f"  missing file of {dt}: {path}" for dt, path in self.missing]
        lines += [f"  unreadable {dt} {path}: {why}" for dt, path, why in self.unreadable]
        lines += [
            f"  corrupt {dt} {data_id} {path}: {why}" for dt, data_id, path, why in self.corrupt
        ]
        if self.unchecked:
            lines.append(
                f"  {self.unchecked} dataset(s) with no checksum recorded (written before "
                "Butler recorded checksums): read, but their bytes could not be checked"
            )
        if self.untracked:
            lines.append(
                f"  {len(self.untracked)} file(s) with no record (written by another tool, or by "
                "a put killed just before it committed on a file system without hard links; "
                "`butler index` registers them):"
            )
            lines += [f"    {p}" for p in self.untracked[:20]]
        if self.temporaries:
            lines.append(
                f"  {len(self.temporaries)} temporary file(s) of writes in progress or "
                "interrupted (invisible to readers; `butler verify --repair` deletes those "
                "of writers that are gone):"
            )
            lines += [f"    {p}" for p in self.temporaries[:20]]
        if self.pending:
            lines.append(
                f"  {len(self.pending)} file(s) of an operation in progress or interrupted "
                "(interrupted ones will be recovered when the repository is next opened for "
                "writing, or by `butler verify --repair`; never delete them by hand):"
            )
            lines += [
                f"    {_KIND_TEXT.get(what, what)} {path}" for what, path in self.pending[:20]
            ]
        if self.repaired:
            lines.append(f"  repaired: {self.repaired} file(s) of interrupted operations")
        return "\n".join(lines)


def index(
    butler: Butler, dataset_types: Iterable[str] | None = None, *, show_progress: bool = False
) -> IndexReport:
    """Register files already below the root by parsing their paths back into data IDs."""
    names = list(dataset_types) if dataset_types is not None else list(butler.dataset_types)
    plans = [butler.plan(n) for n in names]
    registered: dict[str, int] = {}
    known = 0
    unmatched: list[str] = []
    storage = LocalStorage(butler.datastore.local_root("index files"))
    with butler.registry.transaction():
        recorded = _recorded_paths(butler)
        files = list(storage.walk(butler.own_files()))
        # listed after the walk: a put's entry exists before its file is published
        in_flight = _in_flight(pending_entries(storage.root))
        for relative in progress(files, "index") if show_progress else files:
            if relative.endswith(TEMP_SUFFIX) or relative in in_flight:
                continue  # a put's file before its commit is the put's to record
            if relative in recorded:  # already some dataset's file: never a second record
                known += 1
                continue
            matched = False
            for plan in plans:
                candidate = relative
                for suffix in plan.format.compressed:
                    if candidate.endswith(suffix) and not plan.spec.template.endswith(suffix):
                        candidate = candidate[: -len(suffix)]
                try:
                    data_id = butler.mapper.parse(plan.spec.name, candidate)
                except InvalidDataIdError:
                    continue
                if not plan.keys.issubset(data_id):
                    continue
                matched = True
                butler.ensure_registered(plan)
                record = butler.restrict(plan, data_id)
                if butler.registry.find(plan.spec.name, record) is not None:
                    known += 1
                    continue
                stored = file_checksum(storage.absolute(relative))  # one read, once
                dataset_id = new_dataset_id()
                if plan.sky:  # the file's sky region (issue 17; regions.py)
                    from .regions import record_files

                    record_files(butler, plan, [(dataset_id, record, storage.absolute(relative))])
                butler.registry.insert(
                    plan.spec.name,
                    record,
                    relative,
                    dataset_id=dataset_id,
                    size=stored.size,
                    checksum=stored.value,
                )
                recorded.add(relative)
                registered[plan.spec.name] = registered.get(plan.spec.name, 0) + 1
            if not matched:
                unmatched.append(relative)
    return IndexReport(registered, known, tuple(unmatched))


def _recorded_paths(butler: Butler) -> set[str]:
    """Every path the registry records, relative to the root (absolute ones as they are)."""
    return {path for _, _, path in butler.registry.datasets()}


def verify(
    butler: Butler, *, read: bool = False, show_progress: bool = False, repair: bool = False
) -> VerifyReport:
    """Check that every record has its file (and, with ``read``, that each file reads and
    matches the size and checksum recorded when it was written).

    ``repair`` first finishes the operations of Butlers that died mid-call, and
    deletes the temporaries of writers no longer running (on this host).
    """
    if butler.datastore.scheme == "s3":  # its module is loaded: the datastore is one
        from .datastore.s3 import S3Datastore

        assert isinstance(butler.datastore, S3Datastore)
        return _verify_objects(butler, butler.datastore, read=read, repair=repair)
    root = butler.datastore.local_root("verify files")
    storage = LocalStorage(root)
    repaired = recover(root, butler.registry, sweep=True) if repair else 0
    recorded: set[str] = set()
    missing: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str, str]] = []
    corrupt: list[tuple[str, str, str, str]] = []
    unchecked = 0
    count = 0
    records = butler.registry.stored_datasets()
    if show_progress:
        records = progress(records, "verify")
    for stored in records:
        name, data_id, path = stored.dataset_type, stored.data_id, stored.file.path
        count += 1
        recorded.add(path)
        file = storage.absolute(path)
        if not file.is_file():
            missing.append((name, path))
        elif read:
            unchecked += stored.file.checksum is None
            problem = _differs(file, stored.file.size, stored.file.checksum)
            if problem is not None:
                corrupt.append((name, _data_id_text(data_id), path, problem))
            if name not in butler.mapper.dataset_types:
                continue
            plan = butler.plan(name)
            try:
                plan.formatter.read(
                    file, python_type=plan.format.python_type, hdu=butler.hdu(plan, data_id)
                )
            except (ButlerError, OSError, ValueError) as error:
                unreadable.append((name, path, str(error)))
                continue
            try:  # the format's own checksums (FITS), once the file reads
                plan.formatter.verify(file)
            except ButlerError as error:
                corrupt.append((name, _data_id_text(data_id), path, str(error)))
    untracked: list[str] = []
    temporaries: list[str] = []
    files = list(storage.walk(butler.own_files()))
    entries = pending_entries(root)  # after the walk, as in index
    in_flight = _in_flight(entries)
    for relative in files:
        if relative.endswith(TEMP_SUFFIX):
            if repair and not _writer_alive(relative):
                (root / relative).unlink(missing_ok=True)
                repaired += 1
            else:
                temporaries.append(relative)
        elif relative not in recorded and relative not in in_flight:
            untracked.append(relative)
    pending = tuple((entry.kind, entry.target) for entry in entries)
    return VerifyReport(
        count,
        tuple(missing),
        tuple(unreadable),
        tuple(untracked),
        tuple(temporaries),
        pending,
        repaired,
        tuple(corrupt),
        unchecked,
    )


def _verify_objects(
    butler: Butler, datastore: S3Datastore, *, read: bool, repair: bool
) -> VerifyReport:
    """:func:`verify` of a repository in object storage (see docs/s3.md, "verify").

    Missing objects are found with concurrent HEADs; objects without records and
    unfinished multipart uploads by one listing each. ``repair`` finishes the journal
    entries of gone writers, then deletes objects without records and aborts uploads,
    but only those older than the datastore's ``stale_seconds``: a live writer's object
    is published just before its registry row commits, and its upload is in flight.
    """
    repaired = datastore.recover(butler.registry, sweep=True) if repair else 0
    records = list(butler.registry.stored_datasets())
    recorded = {stored.file.path for stored in records}
    present = datastore.exists_many(sorted(recorded))
    missing: list[tuple[str, str]] = []
    corrupt: list[tuple[str, str, str, str]] = []
    unchecked = 0
    for stored in records:
        path = stored.file.path
        if not present.get(path, False):
            missing.append((stored.dataset_type, path))
        elif read:
            unchecked += stored.file.checksum is None
            problem = datastore.differs(path, stored.file.size, stored.file.checksum)
            if problem is not None:
                corrupt.append((stored.dataset_type, _data_id_text(stored.data_id), path, problem))
    untracked: list[str] = []
    for info in datastore.listed(butler.own_files()):
        if info.relative in recorded:
            continue
        if repair and datastore.is_stale(info.modified):
            datastore.discard(info.relative)
            repaired += 1
        else:
            untracked.append(info.relative)
    temporaries: list[str] = []
    for upload in datastore.uploads():
        if repair and datastore.is_stale(upload.initiated):
            datastore.store.abort(upload)
            repaired += 1
        else:
            temporaries.append(f"{upload.relative} (unfinished upload begun {upload.initiated})")
    for info in datastore.staged_leftovers():  # a server's signed uploads never committed
        if repair and datastore.is_stale(info.modified):
            datastore.discard(info.relative)
            repaired += 1
        else:
            temporaries.append(f"{info.relative} (signed upload staged {info.modified})")
    pending = tuple((entry.kind, entry.target) for entry in datastore.pending())
    return VerifyReport(
        len(records),
        tuple(missing),
        (),
        tuple(untracked),
        tuple(temporaries),
        pending,
        repaired,
        tuple(corrupt),
        unchecked,
    )


def _differs(file: Path, size: int | None, checksum: str | None) -> str | None:
    """What differs between ``file`` and the size and checksum recorded for it, if anything."""
    if size is None and checksum is None:
        return None
    try:
        actual = file_checksum(file)
    except OSError as error:
        return f"cannot read it: {error.strerror or error}"
    if size is not None and actual.size != size:
        return f"size mismatch: {size} bytes were written, the file has {actual.size}"
    if checksum is not None and actual.value != checksum:
        return f"checksum mismatch: {checksum} was written, the file has {actual.value}"
    return None


def _data_id_text(data_id: Mapping[str, object]) -> str:
    return "{" + ", ".join(f"{key}: {value!r}" for key, value in data_id.items()) + "}"


def _writer_alive(temporary: str) -> bool:
    """Whether the process that named a temporary (``.NAME.PID-HEX.butler-tmp``) still runs."""
    stem = temporary.rsplit("/", 1)[-1][: -len(TEMP_SUFFIX)]
    pid = stem.rsplit(".", 1)[-1].split("-", 1)[0]
    if not pid.isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
