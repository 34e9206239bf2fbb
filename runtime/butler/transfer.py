"""Transfer datasets between two repositories of one instrument (issue 18).

    report = transfer(source, destination, ["calexp"], where="visit < 100",
                      mode="copy", skip_existing=True)

The source's own datasets that the selection matches (never its parents') are written
into the destination with :func:`butler.moving.receive`: their dataset ids, runs (with
the runs' provenance records) and creation times kept, their files verified against
the recorded checksums, ``batch_size`` at a time, each batch one registry transaction
with its files fsynced together. Calibration certifications of the datasets transferred
follow, with their whole bitemporal history. The two repositories may have any back-ends
(local files, memory, ...): the bytes go through their datastores. ``mode="link"``
hard-links the files, and is refused unless both repositories keep local files (a copy
across file systems); ``mode="move"`` hard-links where it can, copies elsewhere, and
removes each committed batch from the source. Run again with ``skip_existing=True``
after an interruption: what arrived is skipped, the rest transferred. See
docs/transfer.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from . import file_access
from .errors import InvalidQueryError
from .moving import (
    BATCH_SIZE,
    Incoming,
    MoveReport,
    certifications_of,
    check_same_instrument,
    dataset_type_names,
    receive,
    select_records,
    with_certifications,
)

if TYPE_CHECKING:
    from .butler import Butler
    from .registry import DatasetRecord

__all__ = ["MODES", "transfer"]

MODES: tuple[file_access.Mode, ...] = ("copy", "link", "move")


def transfer(
    source: Butler,
    destination: Butler,
    dataset_types: str | Iterable[str] | None = None,
    data_id: Mapping[str, object] | None = None,
    *,
    where: str | None = None,
    bind: Mapping[str, object] | None = None,
    mode: file_access.Mode = "copy",
    skip_existing: bool = False,
    overwrite: bool = False,
    batch_size: int = BATCH_SIZE,
    show_progress: bool = False,
) -> MoveReport:
    """Copy (link, move) the selected datasets of ``source`` into ``destination``.

    ``dataset_types``: one name, several, or None for every dataset type the source has
    datasets of. ``data_id``, ``where`` and ``bind`` select as for :meth:`Butler.query`.
    """
    if mode not in MODES:
        raise InvalidQueryError(f"transfer mode must be one of {', '.join(MODES)}, not {mode!r}")
    what = f"transfer from {source.root} to {destination.root}"
    check_same_instrument(source.mapper.name, destination, what)
    destination.check_writeable(what)
    file_access.check_mode(source, destination, mode)
    if mode == "move":
        source.check_writeable(f"move datasets out of {source.root}")
    names = dataset_type_names(source, dataset_types)
    selected = [
        select_records(source, name, data_id, where=where, bind=bind) for name in names
    ]  # every selection checked before anything is written
    total = sum(source.count(name, data_id, where=where, bind=bind) for name in names)
    _copy_runs(source, destination)
    certified = {name: certifications_of(source, name) for name in names}  # before a move
    committed = None
    if mode == "move":

        def committed(records: Sequence[DatasetRecord]) -> None:
            with source.transaction():
                for record in records:
                    source.remove(record.dataset_type, record.data_id)

    report = receive(
        destination,
        _incoming(source, selected),
        action="transferred",
        mode=mode,
        skip_existing=skip_existing,
        overwrite=overwrite,
        batch_size=batch_size,
        show_progress=show_progress,
        total=total,
        committed=committed,
    )
    return with_certifications(destination, certified, report)


def _incoming(source: Butler, selected: list[Iterator[DatasetRecord]]) -> Iterator[Incoming]:
    """Each record with its bytes: the local file where the source keeps files (linked, or
    read whole), else a writer that copies them out through the source's datastore."""
    for records in selected:
        for record in records:
            local = file_access.local_file(source, record)
            if local is not None:
                yield Incoming(record, local=local)
            else:
                yield Incoming(record, writer=file_access.source_writer(source, record))


def _copy_runs(source: Butler, destination: Butler) -> None:
    """The source's run records (versions, host, user, start) the destination lacks."""
    for name, record in source.provenance.runs().items():
        destination.provenance.import_run(name, record)
