"""Curated calibrations: ingest a tree laid out like the LSST ``obs_*_data`` packages.

    <calib type>/<detector>/<valid start>.<ext>
    <calib type>/<detector>/<filter>/<valid start>.<ext>

``<calib type>`` is a calibration dataset type of the repository's instrument
(``defects``, ``bias``, ...). Starts are written in any of the spellings found
in real packages: ``20130131T000000``, ``2012-09-12T00:00:00``,
``20130115t0130``, or a bare date ``20130131``; they are read in the time scale
of the calibration's validity key. Within one calibration type, detector and
filter, each file is valid from its start until the next file's start; the last
is open-ended.

Each file is copied to the path the policy gives the calibration (its other
keys, such as ``calibDate``, are filled from the start), recorded in the
registry and certified. The curated tree is the truth: ingesting again changes
nothing, and a file added later supersedes the open end of the one before it.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..checksums import copier
from ..dataid import DataId
from ..errors import ButlerError, InvalidDataIdError
from ..spec import Value

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = ["CuratedFile", "CuratedReport", "ingest_curated", "parse_start", "scan"]

_START = re.compile(
    r"(?P<y>\d{4})-?(?P<mo>\d{2})-?(?P<d>\d{2})"
    r"(?:[Tt](?P<h>\d{2}):?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?)?)?"
)


def parse_start(text: str) -> datetime.datetime:
    """The start of validity a curated file name spells (``20130115t0130`` → 2013-01-15 01:30)."""
    found = _START.fullmatch(text)
    if found is None:
        raise ValueError(
            f"{text!r} is not a validity start (expected e.g. 20130131T000000, "
            "2012-09-12T00:00:00 or 20130115t0130)"
        )
    parts = found.groupdict()
    return datetime.datetime(
        int(parts["y"]),
        int(parts["mo"]),
        int(parts["d"]),
        int(parts["h"] or 0),
        int(parts["mi"] or 0),
        int(parts["s"] or 0),
        int((parts["f"] or "0").ljust(6, "0")),
    )


@dataclass(frozen=True)
class CuratedFile:
    """One file of a curated tree, understood."""

    relative: str
    calib_type: str
    detector: str
    filter: str | None
    start: datetime.datetime
    extension: str


@dataclass
class CuratedReport:
    """What :func:`ingest_curated` did."""

    stored: int = 0
    certified: int = 0
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"{self.stored} file(s) stored, {self.certified} certification(s) made, "
            f"{self.unchanged} already certified; {len(self.skipped)} skipped"
        ]
        lines += [f"  {name}: {count} file(s)" for name, count in sorted(self.types.items())]
        lines += [f"  skipped {path}: {why}" for path, why in self.skipped[:50]]
        if len(self.skipped) > 50:
            lines.append(f"  ... and {len(self.skipped) - 50} more")
        return "\n".join(lines)


def _split_name(name: str) -> tuple[str, str]:
    """``20130131T000000.ecsv`` → (``20130131T000000``, ``.ecsv``)."""
    found = _START.match(name)
    if found is None or not name[found.end() :].startswith("."):
        raise ValueError(f"file name {name!r} does not start with a validity start and a '.'")
    return name[: found.end()], name[found.end() :]


def scan(directory: str | os.PathLike[str]) -> tuple[list[CuratedFile], list[tuple[str, str]]]:
    """The files of a curated tree, and the ones that do not fit its layout (with why)."""
    root = Path(directory)
    if not root.is_dir():
        raise ButlerError(f"curated calibration folder {root} does not exist")
    files: list[CuratedFile] = []
    skipped: list[tuple[str, str]] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(s for s in subfolders if not s.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            relative = (Path(folder) / name).relative_to(root).as_posix()
            parts = PurePosixPath(relative).parts
            if len(parts) not in (3, 4):
                skipped.append(
                    (relative, "not <calib type>/<detector>[/<filter>]/<valid start>.<ext>")
                )
                continue
            try:
                start_text, extension = _split_name(name)
                start = parse_start(start_text)
            except ValueError as error:
                skipped.append((relative, str(error)))
                continue
            files.append(
                CuratedFile(
                    relative,
                    parts[0],
                    parts[1],
                    parts[2] if len(parts) == 4 else None,
                    start,
                    extension,
                )
            )
    return files, skipped


def ingest_curated(
    butler: Butler,
    directory: str | os.PathLike[str],
    *,
    dataset_types: Iterable[str] | None = None,
    detector_key: str | None = None,
    filter_key: str | None = None,
) -> CuratedReport:
    """Copy, record and certify the curated calibrations below ``directory``."""
    from ..calibrations import for_butler

    butler.check_writeable("ingest curated calibrations")
    root = Path(directory)
    files, skipped = scan(root)
    report = CuratedReport(skipped=skipped)
    wanted = set(dataset_types) if dataset_types is not None else None
    groups: dict[tuple[str, str, str | None], list[CuratedFile]] = {}
    for file in files:
        if wanted is not None and file.calib_type not in wanted:
            continue
        spec = (
            butler.mapper.dataset_type(file.calib_type)
            if file.calib_type in butler.dataset_types
            else None
        )
        if spec is None or spec.calibration is None:
            report.skipped.append(
                (
                    file.relative,
                    f"{file.calib_type!r} is not a calibration of instrument {butler.mapper.name}",
                )
            )
            continue
        groups.setdefault((file.calib_type, file.detector, file.filter), []).append(file)
    manager = for_butler(butler)
    for (calib_type, _, _), group in sorted(groups.items(), key=lambda item: repr(item[0])):
        group.sort(key=lambda f: f.start)
        starts = [f.start for f in group]
        duplicates = {s for s in starts if starts.count(s) > 1}
        if duplicates:
            report.skipped += [
                (f.relative, "another file of this detector and filter has the same start")
                for f in group
                if f.start in duplicates
            ]
            continue
        ends: list[datetime.datetime | None] = [*starts[1:], None]
        try:
            _ingest_group(
                butler, manager, calib_type, group, ends, detector_key, filter_key, root, report
            )
        except ButlerError as error:
            report.skipped += [(f.relative, str(error)) for f in group]
    return report


def _data_id(
    butler: Butler,
    calib_type: str,
    file: CuratedFile,
    detector_key: str | None,
    filter_key: str | None,
) -> DataId:
    spec = butler.mapper.dataset_type(calib_type)
    calibration = spec.calibration
    assert calibration is not None
    match = list(calibration.match)
    det_key = detector_key or next((k for k in match if k != "filter"), match[0])
    values: dict[str, object] = {det_key: file.detector}
    if file.filter is not None:
        fil_key = filter_key or ("filter" if "filter" in match else None)
        if fil_key is None:
            raise InvalidDataIdError(
                f"{calib_type!r} has no filter match key for the folder {file.filter!r}"
            )
        values[fil_key] = file.filter
    values = _detector(butler, det_key, values)
    keys = butler.mapper.keys(calib_type)
    for key, type_name in keys.items():
        if key in values:
            continue
        if type_name == "date":
            values[key] = file.start.date()
        elif type_name == "datetime":
            values[key] = file.start
        elif type_name == "str":
            values[key] = (
                file.start.date().isoformat()
                if file.start.time() == datetime.time()
                else file.start.isoformat()
            )
    return butler.mapper.normalize(values)


def _detector(butler: Butler, det_key: str, values: dict[str, object]) -> dict[str, object]:
    """``values`` with the detector folder name as the detector key, or as a key derived from it."""
    try:
        butler.mapper.normalize(values)
        return values
    except InvalidDataIdError as error:
        first_error = error
    text = values.pop(det_key)
    for key in butler.mapper.spec.keys:  # e.g. detectorName derived from detector by a table
        if key.derive is not None and key.derive.source == det_key and key.derive.table:
            try:
                normalized = butler.mapper.normalize({**values, key.name: text})
            except InvalidDataIdError:
                continue
            if det_key in normalized:
                return {**values, det_key: normalized[det_key]}
    raise first_error


def _ingest_group(
    butler: Butler,
    manager: object,
    calib_type: str,
    group: list[CuratedFile],
    ends: list[datetime.datetime | None],
    detector_key: str | None,
    filter_key: str | None,
    root: Path,
    report: CuratedReport,
) -> None:
    from ..calibrations import Calibrations

    assert isinstance(manager, Calibrations)
    plan = butler.plan(calib_type)
    butler.ensure_registered(plan)
    written: list[tuple[Path, Path]] = []
    began = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    try:
        with butler.registry.transaction():
            for file, end in zip(group, ends, strict=True):
                data_id = _data_id(butler, calib_type, file, detector_key, filter_key)
                relative = butler.mapper.path(calib_type, data_id)
                if not relative.endswith(file.extension):
                    raise InvalidDataIdError(
                        f"{calib_type!r} files are written as {relative!r}, not as "
                        f"{file.extension!r} files; convert the curated file first"
                    )
                record: dict[str, Value] = butler.restrict(plan, data_id)
                existing = butler.registry.find(calib_type, record)
                if existing is None:
                    target = butler.datastore.target(relative)
                    source = root / file.relative  # hashed as it is copied
                    temporary, sums = butler.datastore.write_stream(target, copier(source))
                    written.append((temporary, target))
                    butler.registry.insert(calib_type, record, relative, **sums.columns())
                    report.stored += 1
                certification = manager.certify(
                    calib_type,
                    record,
                    file.start,
                    end,
                    supersede=True,
                    source=f"curated:{file.relative}",
                )
                if certification.recorded_from < began:
                    report.unchanged += 1
                else:
                    report.certified += 1
                report.types[calib_type] = report.types.get(calib_type, 0) + 1
            for temporary, target in written:
                butler.datastore.publish(temporary, target)
    except BaseException:
        for temporary, _ in written:
            butler.datastore.discard(temporary)
        raise
