"""Bundles: datasets exported from one repository, to import into another (issue 18).

    report = export_datasets(butler, "out.zip", ["calexp"], where="visit < 100")
    report = import_bundle(other, "out.zip")

A bundle is a folder, or a zip file of the same entries, holding ``manifest.json``
and the dataset files under ``files/``. The manifest (format ``butler-bundle``,
version 1, documented in docs/transfer.md) says which instrument the data is of, the
source repository, its runs' provenance records, each dataset's type, data ID,
dataset id, run, creation time, file, size and checksum, and the certifications of
the calibrations in it with their whole bitemporal history. It is written last: a
bundle without one is incomplete.

Import refuses a bundle of another instrument and checks everything before writing
anything: file names are relative POSIX paths below ``files/`` (no ``..``, no absolute
path, no link, in a zip no symlink entry and no entry larger than its manifest size).
Where a dataset goes in the repository is computed from its data ID by the
repository's own templates, never taken from the bundle, and each file's checksum is
verified as it is copied. Datasets are then received as a transfer receives them
(:func:`butler.moving.receive`): ids, runs and creation times kept, certifications
restored so that ``as_of`` answers are the same.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from crc32c import crc32c

from . import file_access
from .checksums import FileChecksum
from .errors import BundleError, ButlerError
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
from .progress import progress
from .registry import DatasetRecord

if TYPE_CHECKING:
    from .butler import Butler
    from .calibrations import Certification

__all__ = ["FORMAT", "MANIFEST", "VERSION", "export_datasets", "import_bundle", "read_manifest"]

FORMAT = "butler-bundle"
VERSION = 1
MANIFEST = "manifest.json"
FILES = "files/"
#: The largest manifest import reads (bytes).
MAX_MANIFEST = 1 << 30
_CHUNK = 1 << 20


# ---- values in JSON ---------------------------------------------------------------------


def _encode_value(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    return value


def _decode_value(value: object) -> object:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, text),) = value.items()
        if kind == "datetime" and isinstance(text, str):
            return datetime.datetime.fromisoformat(text)
        if kind == "date" and isinstance(text, str):
            return datetime.date.fromisoformat(text)
    if isinstance(value, dict | list):
        raise BundleError(f"a data ID value in the manifest is not a plain value: {value!r}")
    return value


def _time(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: object, what: str) -> datetime.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BundleError(f"manifest: {what} must be an ISO time or null, not {value!r}")
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        raise BundleError(f"manifest: {what} {value!r} is not an ISO time") from None


# ---- export -------------------------------------------------------------------------------


class _FolderOut:
    def __init__(self, root: Path) -> None:
        if root.exists() and any(root.iterdir()):
            raise BundleError(f"cannot export into {root}: it exists and is not empty")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.folders: set[Path] = set()

    def add(self, name: str, reader: BinaryIO) -> FileChecksum:
        target = self.root / name
        if target.parent not in self.folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.folders.add(target.parent)
        with target.open("wb") as writer:
            return _copy_hashed(reader, writer, None)

    def finish(self, manifest: bytes) -> None:
        temporary = self.root / f".{MANIFEST}.tmp"
        temporary.write_bytes(manifest)
        os.replace(temporary, self.root / MANIFEST)

    def abort(self) -> None:
        pass


class _ZipOut:
    def __init__(self, path: Path) -> None:
        if path.exists():
            raise BundleError(f"cannot export to {path}: the file exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def add(self, name: str, reader: BinaryIO) -> FileChecksum:
        with self.zip.open(name, "w", force_zip64=True) as writer:
            return _copy_hashed(reader, writer, None)

    def finish(self, manifest: bytes) -> None:
        self.zip.writestr(MANIFEST, manifest)
        self.zip.close()

    def abort(self) -> None:
        self.zip.close()
        self.path.unlink(missing_ok=True)


def _copy_hashed(reader: Any, writer: Any, limit: int | None) -> FileChecksum:
    """Copy ``reader`` to ``writer``; the bytes' size and checksum. BundleError past ``limit``."""
    crc, size = 0, 0
    while chunk := reader.read(_CHUNK):
        size += len(chunk)
        if limit is not None and size > limit:
            raise BundleError(f"a bundle entry is larger than the {limit} bytes its manifest says")
        crc = crc32c(chunk, crc)
        writer.write(chunk)
    return FileChecksum.of_crc(size, crc)


def export_datasets(
    butler: Butler,
    out: str | os.PathLike[str],
    dataset_types: str | Iterable[str] | None = None,
    data_id: Mapping[str, object] | None = None,
    *,
    where: str | None = None,
    bind: Mapping[str, object] | None = None,
    show_progress: bool = False,
) -> MoveReport:
    """Write the selected datasets of ``butler`` (its own, never a parent's) as a bundle at
    ``out``: a zip file if the name ends in ``.zip``, else a new folder. A report; a file
    whose bytes are not what was recorded is listed as failed and left out."""
    path = Path(out)
    names = dataset_type_names(butler, dataset_types)
    selections = [select_records(butler, name, data_id, where=where, bind=bind) for name in names]
    total = sum(butler.count(name, data_id, where=where, bind=bind) for name in names)
    writer: _FolderOut | _ZipOut = _ZipOut(path) if path.suffix == ".zip" else _FolderOut(path)
    datasets: list[dict[str, Any]] = []
    failed: list[str] = []
    ids: set[str] = set()
    runs: set[str] = set()
    try:
        records = (record for selection in selections for record in selection)
        shown = progress(records, "exported", total=total) if show_progress else records
        for record in shown:
            entry = _export_one(butler, writer, record, failed)
            if entry is not None:
                datasets.append(entry)
                ids.add(str(record.dataset_id))
                if record.run is not None:
                    runs.add(record.run)
        certifications = [
            _certification_entry(dataset_id, row)
            for name in names
            for dataset_id, row in certifications_of(butler, name)
            if dataset_id in ids
        ]
        recorded = butler.provenance.runs()
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created": datetime.datetime.now(datetime.UTC).isoformat(),
            "instrument": butler.mapper.name,
            "source": {"repository_id": butler.repository_id, "root": str(butler.root)},
            "runs": {name: recorded[name] for name in sorted(runs) if name in recorded},
            "datasets": datasets,
            "certifications": certifications,
        }
        writer.finish(json.dumps(manifest, indent=1, sort_keys=True).encode())
    except BaseException:
        writer.abort()
        raise
    return MoveReport(
        "exported", len(datasets), 0, (), tuple(failed), certifications=len(certifications)
    )


def _export_one(
    butler: Butler, writer: _FolderOut | _ZipOut, record: DatasetRecord, failed: list[str]
) -> dict[str, Any] | None:
    name = FILES + butler.mapper.path(record.dataset_type, record.data_id)
    shown = f"{record.dataset_type!r} {record.data_id}"
    try:
        with file_access.open_bytes(butler, record) as reader:
            sums = writer.add(name, reader)
    except (OSError, ButlerError) as error:
        failed.append(f"{shown}: its file could not be read: {error}")
        return None
    if (record.checksum is not None and sums.value != record.checksum) or (
        record.size is not None and sums.size != record.size
    ):
        failed.append(
            f"{shown}: its file is not what was recorded (checksum {sums.value}, size "
            f"{sums.size}; recorded {record.checksum}, size {record.size}); left out"
        )
        return None
    return {
        "dataset_type": record.dataset_type,
        "data_id": {k: _encode_value(v) for k, v in record.data_id.items()},
        "dataset_id": record.dataset_id,
        "run": record.run,
        "created": _time(record.created),
        "file": name,
        "size": sums.size,
        "checksum": sums.value,
    }


def _certification_entry(dataset_id: str, row: Certification) -> dict[str, Any]:
    return {
        "id": row.id,
        "dataset_type": row.dataset_type,
        "dataset_id": dataset_id,
        "match": {k: _encode_value(v) for k, v in row.match.items()},
        "valid_from": _time(row.valid_from),
        "valid_to": _time(row.valid_to),
        "scale": row.scale,
        "recorded_from": _time(row.recorded_from),
        "recorded_to": _time(row.recorded_to),
        "closed_by": row.closed_by,
        "replaces": row.replaces,
        "source": row.source,
    }


# ---- reading a bundle ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    record: DatasetRecord
    file: str


def _check_name(name: object) -> str:
    """A manifest's file name, if it is a plain relative POSIX path below ``files/``."""
    if (
        not isinstance(name, str)
        or not name.startswith(FILES)
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or any(part in ("", ".", "..") for part in name.split("/"))
        or (len(name) > 1 and name[1] == ":")
    ):
        raise BundleError(
            f"bundle entry {name!r} is not a relative path below {FILES!r} without '..': "
            "refusing the bundle (nothing was imported)"
        )
    return name


class _Folder:
    """A bundle folder: each file must be a regular file reached without a link."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def manifest(self) -> bytes:
        path = self.root / MANIFEST
        if not path.is_file() or path.is_symlink():
            raise BundleError(f"{self.root} has no {MANIFEST}: not a bundle, or an incomplete one")
        if path.stat().st_size > MAX_MANIFEST:
            raise BundleError(f"{path} is larger than {MAX_MANIFEST} bytes: refusing it")
        return path.read_bytes()

    def check(self, entries: list[_Entry]) -> None:
        for entry in entries:
            self._file(entry)

    def _file(self, entry: _Entry) -> Path:
        path = self.root
        for part in entry.file.split("/"):
            path = path / part
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                raise BundleError(f"bundle {self.root} lacks {entry.file!r}") from None
            if stat.S_ISLNK(mode):
                raise BundleError(
                    f"bundle entry {entry.file!r} goes through a symbolic link ({path}): "
                    "refusing the bundle (nothing was imported)"
                )
        if not stat.S_ISREG(mode):
            raise BundleError(f"bundle entry {entry.file!r} is not a regular file")
        if entry.record.size is not None and os.lstat(path).st_size != entry.record.size:
            raise BundleError(
                f"bundle entry {entry.file!r} is {os.lstat(path).st_size} bytes, not the "
                f"{entry.record.size} its manifest says: refusing the bundle"
            )
        return path

    def incoming(self, entry: _Entry) -> Incoming:
        return Incoming(entry.record, local=self._file(entry))

    def close(self) -> None:
        pass


class _Zip:
    """A zipped bundle: no symlink entry, no entry larger than its manifest size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise BundleError(f"{path} is not a readable zip file: {error}") from None

    def manifest(self) -> bytes:
        try:
            info = self.zip.getinfo(MANIFEST)
        except KeyError:
            raise BundleError(f"{self.path} has no {MANIFEST}: not a bundle") from None
        if info.file_size > MAX_MANIFEST:
            raise BundleError(f"{self.path}: its manifest is too large; refusing it")
        with self.zip.open(info) as stream:
            return stream.read(MAX_MANIFEST + 1)

    def check(self, entries: list[_Entry]) -> None:
        for info in self.zip.infolist():
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise BundleError(
                    f"{self.path}: entry {info.filename!r} is a symbolic link; refusing the "
                    "bundle (nothing was imported)"
                )
        for entry in entries:
            self._info(entry)

    def _info(self, entry: _Entry) -> zipfile.ZipInfo:
        try:
            info = self.zip.getinfo(entry.file)
        except KeyError:
            raise BundleError(f"{self.path} lacks entry {entry.file!r}") from None
        if entry.record.size is not None and info.file_size != entry.record.size:
            raise BundleError(
                f"{self.path}: entry {entry.file!r} is {info.file_size} bytes, not the "
                f"{entry.record.size} its manifest says: refusing the bundle"
            )
        return info

    def incoming(self, entry: _Entry) -> Incoming:
        info = self._info(entry)
        limit = entry.record.size

        def write(stream: BinaryIO) -> None:
            try:
                with self.zip.open(info) as member:
                    _copy_hashed(member, stream, limit)
            except (zipfile.BadZipFile, OSError) as error:
                raise BundleError(f"{self.path}: entry {entry.file!r}: {error}") from None

        return Incoming(entry.record, writer=write)

    def close(self) -> None:
        self.zip.close()


def _open(path: Path) -> _Folder | _Zip:
    if path.is_dir():
        return _Folder(path)
    if path.is_file():
        return _Zip(path)
    raise BundleError(f"no bundle at {path}: expected a folder or a .zip made by `butler export`")


def read_manifest(data: bytes, source: object = "the bundle") -> dict[str, Any]:
    """The manifest's content, checked for its format and version."""
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise BundleError(f"{source}: {MANIFEST} is not JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{source}: {MANIFEST} is not a {FORMAT!r} manifest")
    if manifest.get("version") != VERSION:
        raise BundleError(
            f"{source}: manifest version {manifest.get('version')!r}; this Butler reads "
            f"version {VERSION}: use a Butler of the version that wrote it"
        )
    for key, kind in (("instrument", str), ("datasets", list), ("runs", dict)):
        if not isinstance(manifest.get(key), kind):
            raise BundleError(f"{source}: manifest field {key!r} is missing or malformed")
    return manifest


def _entries(manifest: Mapping[str, Any]) -> list[_Entry]:
    entries = []
    for item in manifest["datasets"]:
        if not isinstance(item, dict) or not isinstance(item.get("data_id"), dict):
            raise BundleError(f"manifest: malformed dataset entry {item!r}")
        size, checksum = item.get("size"), item.get("checksum")
        if not isinstance(size, int) or size < 0 or not isinstance(checksum, str):
            raise BundleError(f"manifest: dataset entry without size and checksum: {item!r}")
        for field_name in ("dataset_type", "dataset_id"):
            if not isinstance(item.get(field_name), str):
                raise BundleError(f"manifest: dataset entry without {field_name}: {item!r}")
        record = DatasetRecord(
            item["dataset_type"],
            {str(k): _decode_value(v) for k, v in item["data_id"].items()},  # type: ignore[misc]
            "",
            item["dataset_id"],
            item.get("run"),
            _parse_time(item.get("created"), "created"),
            size,
            checksum,
        )
        entries.append(_Entry(record, _check_name(item.get("file"))))
    return entries


def _certifications(
    manifest: Mapping[str, Any], entries: list[_Entry]
) -> dict[str, list[tuple[str, Certification]]]:
    from .calibrations import Certification

    by_id = {entry.record.dataset_id: entry.record for entry in entries}
    found: dict[str, list[tuple[str, Certification]]] = {}
    for item in manifest.get("certifications") or []:
        if not isinstance(item, dict) or item.get("dataset_id") not in by_id:
            raise BundleError(f"manifest: certification of no dataset in the bundle: {item!r}")
        record = by_id[item["dataset_id"]]
        valid_from = _parse_time(item.get("valid_from"), "valid_from")
        recorded_from = _parse_time(item.get("recorded_from"), "recorded_from")
        if valid_from is None or recorded_from is None or not isinstance(item.get("id"), int):
            raise BundleError(f"manifest: malformed certification {item!r}")
        row = Certification(
            item["id"],
            record.dataset_type,
            0,  # the dataset's row id: mapped when it is restored
            record.data_id,
            "",
            {str(k): _decode_value(v) for k, v in dict(item.get("match") or {}).items()},
            valid_from,
            _parse_time(item.get("valid_to"), "valid_to"),
            item.get("scale"),
            recorded_from,
            _parse_time(item.get("recorded_to"), "recorded_to"),
            item.get("closed_by"),
            item.get("replaces"),
            item.get("source"),
        )
        found.setdefault(record.dataset_type, []).append((str(item["dataset_id"]), row))
    return found


def import_bundle(
    butler: Butler,
    bundle: str | os.PathLike[str],
    *,
    skip_existing: bool = False,
    overwrite: bool = False,
    batch_size: int = BATCH_SIZE,
    show_progress: bool = False,
) -> MoveReport:
    """Import a bundle written by :func:`export_datasets` into ``butler`` (see the module's
    doc); a report. BundleError, with nothing imported, for a bundle that is malformed,
    hostile or of another instrument."""
    path = Path(bundle)
    butler.check_writeable(f"import {path}")
    reader = _open(path)
    try:
        manifest = read_manifest(reader.manifest(), path)
        check_same_instrument(manifest["instrument"], butler, f"import {path}")
        entries = _entries(manifest)
        certified = _certifications(manifest, entries)
        reader.check(entries)
        for name, record in manifest["runs"].items():
            if isinstance(record, dict):
                butler.provenance.import_run(str(name), record)
        report = receive(
            butler,
            (reader.incoming(entry) for entry in entries),
            action="imported",
            skip_existing=skip_existing,
            overwrite=overwrite,
            batch_size=batch_size,
            show_progress=show_progress,
            total=len(entries),
        )
        return with_certifications(butler, certified, report)
    except ButlerError:
        raise
    except (ValueError, TypeError, KeyError) as error:  # a manifest of the wrong shapes
        raise BundleError(f"{path}: malformed manifest: {error!r}") from None
    finally:
        reader.close()
