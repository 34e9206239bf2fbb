"""What export, import and transfer share (issue 18): selecting datasets with their whole
records, receiving them into a repository in batches, and the report they end with.

:func:`select_records` streams the records (data ID, path, dataset id, run, creation
time, size, checksum) of one repository's own datasets that a query selects.

:func:`receive` writes datasets into a destination repository, ``batch_size`` at a time:
each dataset's file is staged beside where it goes and verified against its recorded
checksum, the batch's files are fsynced together, then its rows are inserted (keeping the
dataset ids, runs and creation times) and its files published in one registry
transaction. A dataset whose data ID is already stored there is compared by checksum:
the same content is skipped with ``skip_existing`` (a rerun after an interruption
finishes the job without duplicates), other content is a conflict, reported and left
as it is unless ``overwrite``. A batch that fails changes nothing; the others go on.

Dataset bytes are reached only through :mod:`butler.file_access`, so the two repositories
may have any back-ends (local files, memory, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from . import file_access
from .dataid import format_data_id
from .datastore import Location
from .errors import ButlerError, InvalidQueryError
from .progress import progress
from .query.keywords import is_collection
from .registry import DatasetRecord

if TYPE_CHECKING:
    from .butler import Butler
    from .calibrations import Certification
    from .resolved import Plan

__all__ = [
    "BATCH_SIZE",
    "Incoming",
    "MoveReport",
    "certifications_of",
    "check_same_instrument",
    "dataset_type_names",
    "receive",
    "restore_certifications",
    "select_records",
    "with_certifications",
]

#: Datasets per registry transaction (and per fsync of their files).
BATCH_SIZE = 256
#: Threads that stage a batch's local files (the time is the file system's, not Python's).
STAGE_THREADS = 4


@dataclass(frozen=True)
class Incoming:
    """One dataset to receive: its record as the source holds it, and its bytes: a local
    file (``local``), or a ``writer`` that writes them into an open file."""

    record: DatasetRecord
    local: Path | None = None
    writer: Callable[[BinaryIO], None] | None = None


@dataclass(frozen=True)
class MoveReport:
    """How an export, import or transfer went: counts, and one line per problem."""

    action: str
    done: int = 0
    skipped: int = 0
    conflicts: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    certifications: int = 0
    #: The records received (or, for ``skip_existing``, found already there), by source id.
    received: tuple[DatasetRecord, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """Whether everything went: nothing failed and nothing conflicted."""
        return not self.conflicts and not self.failed

    def summary(self) -> str:
        """One line: ``transferred 10, skipped 2, conflicts 1, failed 0``."""
        text = (
            f"{self.action} {self.done}, skipped {self.skipped}, "
            f"conflicts {len(self.conflicts)}, failed {len(self.failed)}"
        )
        if self.certifications:
            text += f"; certifications {self.certifications}"
        return text

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"conflict: {line}" for line in self.conflicts]
        lines += [f"failed: {line}" for line in self.failed]
        return "\n".join(lines)


# ---- selecting ------------------------------------------------------------------------------


def check_same_instrument(source: str, destination: Butler, what: str) -> None:
    """ButlerError unless ``destination`` is a repository of instrument ``source``."""
    if source != destination.mapper.name:
        from .errors import RepositoryError

        raise RepositoryError(
            f"cannot {what}: the data is of instrument {source!r} and repository "
            f"{destination.root} is of {destination.mapper.name!r}; datasets move only "
            "between repositories of the same instrument"
        )


def dataset_type_names(butler: Butler, dataset_types: str | Iterable[str] | None) -> list[str]:
    """The dataset types asked for (checked, with a did-you-mean), or every one with records."""
    if dataset_types is None:
        return [name for name in butler.dataset_types if butler.is_registered(name)]
    names = [dataset_types] if isinstance(dataset_types, str) else list(dataset_types)
    for name in names:
        butler.mapper.dataset_type(name)  # UnknownDatasetTypeError with a did-you-mean
    return names


def select_records(
    butler: Butler,
    dataset_type: str,
    data_id: Mapping[str, object] | None = None,
    *,
    where: str | None = None,
    bind: Mapping[str, object] | None = None,
    with_datasets: Iterable[str] = (),
    without_datasets: Iterable[str] = (),
) -> Iterator[DatasetRecord]:
    """The records of ``butler``'s own ``dataset_type`` datasets that match (as
    :meth:`Butler.query` selects; never a parent's), streamed. Checked before it runs."""
    from .query import run

    plan = butler.plan(dataset_type)
    given = dict(data_id or {})
    collections = {k: v for k, v in given.items() if is_collection(v)}
    scalars = butler.normalize({k: v for k, v in given.items() if k not in collections}, {})
    unknown = [k for k in scalars if k not in plan.keys and k in given]
    if unknown:
        raise InvalidQueryError(
            f"{', '.join(unknown)} is not a key of {dataset_type!r}; its keys are "
            f"{', '.join(plan.spec.keys) or 'none'}"
        )
    request = run.build(
        butler,
        dataset_type,
        butler.restrict(plan, scalars),
        collections,
        where=where,
        bind=bind,
        with_datasets=with_datasets,
        without_datasets=without_datasets,
    )
    if not butler.is_registered(dataset_type):
        return iter(())
    return butler.registry.select_records(dataset_type, request.selection)


# ---- receiving ------------------------------------------------------------------------------


@dataclass
class _Tally:
    done: int = 0
    skipped: int = 0
    conflicts: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    received: list[DatasetRecord] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    """One dataset of a batch, staged and ready to commit."""

    source: DatasetRecord
    record: DatasetRecord  # as the destination records it
    staged: file_access.Staged
    replaces: bool


def receive(
    destination: Butler,
    items: Iterable[Incoming],
    *,
    action: str,
    mode: file_access.Mode = "copy",
    skip_existing: bool = False,
    overwrite: bool = False,
    batch_size: int = BATCH_SIZE,
    show_progress: bool = False,
    total: int | None = None,
    committed: Callable[[Sequence[DatasetRecord]], None] | None = None,
) -> MoveReport:
    """Write ``items`` into ``destination`` in batches (see the module's doc); a report.

    ``committed`` is called with the source records of each batch once it is committed
    (a move removes them from its source there).
    """
    destination.check_writeable(action)
    if batch_size < 1:
        raise InvalidQueryError(f"batch size must be at least 1, not {batch_size}")
    tally = _Tally()
    plans: dict[str, Plan | ButlerError] = {}
    batch: list[Incoming] = []
    shown = progress(items, action, total=total) if show_progress else iter(items)
    for item in shown:
        batch.append(item)
        if len(batch) >= batch_size:
            _batch(destination, batch, plans, tally, mode, skip_existing, overwrite, committed)
            batch = []
    if batch:
        _batch(destination, batch, plans, tally, mode, skip_existing, overwrite, committed)
    return MoveReport(
        action,
        tally.done,
        tally.skipped,
        tuple(tally.conflicts),
        tuple(tally.failed),
        received=tuple(tally.received),
    )


def _plan(destination: Butler, name: str, plans: dict[str, Plan | ButlerError]) -> Plan:
    known = plans.get(name)
    if known is None:
        try:
            known = destination.plan(name)
            destination.ensure_registered(known)
        except ButlerError as error:
            known = error
        plans[name] = known
    if isinstance(known, ButlerError):
        raise known
    return known


def _batch(
    destination: Butler,
    batch: list[Incoming],
    plans: dict[str, Plan | ButlerError],
    tally: _Tally,
    mode: file_access.Mode,
    skip_existing: bool,
    overwrite: bool,
    committed: Callable[[Sequence[DatasetRecord]], None] | None,
) -> None:
    """One batch: decide each dataset, stage the files (local ones in threads: the time is
    the file system's), sync them, commit."""
    decided = [
        chosen
        for item in batch
        if (chosen := _decide(destination, item, plans, tally, skip_existing, overwrite))
    ]

    def stage(chosen: _Chosen) -> _Prepared | str:
        return _stage(destination, chosen, mode)

    local = [chosen for chosen in decided if chosen.item.writer is None]
    streamed = [chosen for chosen in decided if chosen.item.writer is not None]
    threads = min(STAGE_THREADS, len(local))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(stage, local))
    else:
        results = [stage(chosen) for chosen in local]
    results += [stage(chosen) for chosen in streamed]
    prepared = [result for result in results if isinstance(result, _Prepared)]
    tally.failed.extend(result for result in results if isinstance(result, str))
    if not prepared:
        return
    try:
        file_access.sync(destination, [p.staged for p in prepared])
        _commit(destination, prepared)
    except (ButlerError, OSError) as error:
        for ready in prepared:
            file_access.discard(destination, ready.staged.temporary)
        first = prepared[0].source
        tally.failed.append(
            f"a batch of {len(prepared)} dataset(s) from {first.dataset_type!r} "
            f"{format_data_id(first.data_id)} was not written (nothing of it changed): {error}"
        )
        return
    tally.done += len(prepared)
    sources = [p.source for p in prepared]
    tally.received.extend(sources)
    if committed is not None:
        committed(sources)


@dataclass(frozen=True)
class _Chosen:
    """A dataset to write: where it goes and whether it replaces one stored there."""

    item: Incoming
    keys: dict[str, Any]
    relative: str
    replaces: bool
    shown: str


def _decide(
    destination: Butler,
    item: Incoming,
    plans: dict[str, Plan | ButlerError],
    tally: _Tally,
    skip_existing: bool,
    overwrite: bool,
) -> _Chosen | None:
    """Whether to write one dataset (looked up by data ID in the destination), or count it
    skipped, conflicting or failed (None)."""
    source = item.record
    name = source.dataset_type
    try:
        plan = _plan(destination, name, plans)
        data_id = destination.normalize(source.data_id, {})
        keys = destination.restrict(plan, data_id)
        existing = destination.registry.find_record(name, keys)
        relative = destination.mapper.path(name, data_id)
    except ButlerError as error:
        tally.failed.append(f"{name!r} {format_data_id(source.data_id)}: {error}")
        return None
    shown = f"{name!r} {format_data_id(keys)}"
    if existing is None:
        return _Chosen(item, keys, relative, False, shown)
    if _same_content(existing, source):
        if skip_existing:
            tally.skipped += 1
            tally.received.append(source)
            return None
        tally.failed.append(
            f"{shown} is already in {destination.root} (the same content); pass "
            "--skip-existing (skip_existing=True) to skip what is already there"
        )
        return None
    if not overwrite:
        tally.conflicts.append(
            f"{shown}: {destination.root} holds other content for this data ID "
            f"(checksum {existing.checksum}, size {existing.size}; incoming "
            f"{source.checksum}, size {source.size}); left as it is (pass --overwrite "
            "to replace it)"
        )
        return None
    return _Chosen(item, keys, relative, True, shown)


def _stage(destination: Butler, chosen: _Chosen, mode: file_access.Mode) -> _Prepared | str:
    """Stage one dataset's bytes and verify them; what failed, as text, if it did not."""
    item, source = chosen.item, chosen.item.record
    try:
        staged = file_access.stage(
            destination,
            chosen.relative,
            writer=item.writer,
            local=item.local,
            mode=mode,
            checksum=_recorded(source),
        )
    except (ButlerError, OSError) as error:
        return f"{chosen.shown}: its file could not be written: {error}"
    got = staged.checksum
    if (source.checksum is not None and got.value != source.checksum) or (
        source.size is not None and got.size != source.size
    ):
        file_access.discard(destination, staged.temporary)
        return (
            f"{chosen.shown}: its file is not what was recorded (checksum {got.value}, size "
            f"{got.size}; recorded {source.checksum}, size {source.size}): corrupt at the "
            "source or in transit; nothing was written for it"
        )
    record = DatasetRecord(  # not dataclasses.replace: this is per dataset, and cheaper
        source.dataset_type,
        chosen.keys,
        chosen.relative,
        source.dataset_id,
        source.run,
        source.created,
        got.size,
        got.value,
    )
    return _Prepared(source, record, staged, chosen.replaces)


def _recorded(record: DatasetRecord) -> Any:
    from .checksums import FileChecksum

    if record.checksum is None or record.size is None:
        return None
    return FileChecksum(record.size, record.checksum)


def _same_content(existing: DatasetRecord, incoming: DatasetRecord) -> bool:
    if existing.checksum is not None and incoming.checksum is not None:
        return existing.checksum == incoming.checksum and existing.size == incoming.size
    # no checksum recorded on one side: the same dataset id is the same dataset
    return existing.dataset_id is not None and existing.dataset_id == incoming.dataset_id


def _commit(destination: Butler, prepared: list[_Prepared]) -> None:
    """One transaction: replaced datasets removed, rows inserted, files published."""
    published: list[Location] = []
    with destination.transaction():
        try:
            for ready in prepared:
                if ready.replaces:
                    destination.remove(ready.record.dataset_type, ready.record.data_id)
            destination.registry.insert_records([ready.record for ready in prepared])
            for ready in prepared:
                if file_access.publish(destination, ready.staged):
                    published.append(ready.staged.target)
        except BaseException:
            for location in published:
                file_access.discard(destination, location)
            raise


# ---- certifications -------------------------------------------------------------------------


def certifications_of(butler: Butler, dataset_type: str) -> list[tuple[str, Certification]]:
    """Every certification (closed ones too) of ``butler``'s ``dataset_type`` datasets, each
    with its dataset's id, in the order they were recorded."""
    from .calibrations import for_butler

    if butler.mapper.dataset_type(dataset_type).calibration is None:
        return []
    found = []
    for row in for_butler(butler).store.history(dataset_type):
        record = butler.registry.find_record(dataset_type, row.data_id)
        if record is not None and record.dataset_id is not None:
            found.append((record.dataset_id, row))
    found.sort(key=lambda pair: pair[1].id)
    return found


def restore_certifications(
    destination: Butler, dataset_type: str, rows: Sequence[Certification]
) -> int:
    """Record ``rows`` (with their datasets' data IDs) in ``destination`` as they were
    recorded; how many were added (see ``CertificationStore.restore``)."""
    from .calibrations import for_butler

    store = for_butler(destination).store
    mapped = []
    for row in rows:
        dataset_row = store.dataset_id(dataset_type, row.data_id)
        if dataset_row is None:
            continue  # its dataset was not received
        mapped.append(dataclasses.replace(row, dataset_id=dataset_row))
    return store.restore(dataset_type, mapped)


def with_certifications(
    destination: Butler,
    certified: Mapping[str, list[tuple[str, Certification]]],
    report: MoveReport,
) -> MoveReport:
    """``report`` with the certifications of the datasets it received recorded in
    ``destination`` (``certified``: by dataset type, each with its dataset's id)."""
    ids = {record.dataset_id for record in report.received if record.dataset_id is not None}
    added = 0
    failed = list(report.failed)
    for name, pairs in certified.items():
        rows = [row for dataset_id, row in pairs if dataset_id in ids]
        if not rows:
            continue
        try:
            added += restore_certifications(destination, name, rows)
        except ButlerError as error:  # histories that differ, a registry failure
            failed.append(f"the certifications of {name!r} were not recorded: {error}")
    return dataclasses.replace(report, certifications=added, failed=tuple(failed))
