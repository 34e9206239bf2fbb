"""Import a Gen2 repository: ``registry.sqlite3`` (raw, raw_visit) and ``calibRegistry.sqlite3``.

    report = import_gen2("/data/gen2/HSC", "/data/gen2/HSC")       # in place: files stay put
    report = import_gen2("/data/gen2/HSC", "/data/butler/HSC", transfer="symlink")
    print(report)

Gen2 kept one row per raw file in ``registry.sqlite3`` (table ``raw``, with
``raw_visit`` holding the per-visit keys) and one row per calibration file in
``calibRegistry.sqlite3`` (one table per calibration, with ``validStart`` and
``validEnd``). Each row becomes a record of the bundled policy's dataset type of
the same name: the columns that are keys of the instrument (or aliases of
one) form the data ID, the mapper normalizes it, and the file is where the
policy's template puts it below the Gen2 root (calibrations: below the
calibration root), or at the registry's own ``path`` column where it has one.

With ``transfer=None`` nothing is copied or moved. Importing into the Gen2 root
itself adds ``butler.yaml`` and a registry beside ``registry.sqlite3`` and each
record holds the file's path below it, calibrations included (``CALIB/BIAS/...``);
importing into another folder records each file's absolute path. ``"copy"``,
``"link"`` and ``"symlink"`` place the files in
a new repository at their templated paths. Importing again records only what is
new.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..butler import Butler
from ..config import CONFIG_NAME
from ..errors import InvalidDataIdError, RepositoryError
from ..ingest import file_writer
from ..mapper import Mapper
from ..registry import new_dataset_id
from ..spec import KeySpec, Value
from ..storage import LocalStorage
from .calib_registry import Gen2Report, import_registry

__all__ = [
    "GEN2_MAPPERS",
    "Gen2ImportReport",
    "find_registries",
    "gen2_instrument",
    "import_gen2",
]

Gen2Transfer = Literal["copy", "link", "symlink"] | None

#: Gen2 mapper class (the ``_mapper`` file of a Gen2 root) -> bundled instrument.
GEN2_MAPPERS: dict[str, str] = {
    "HscMapper": "hsc",
    "DecamMapper": "decam",
    "MegacamMapper": "megacam",
    "LsstCamMapper": "lsstcam",
    "ImsimMapper": "imsim",
    "PhosimMapper": "phosim",
    "LatissMapper": "latiss",
    "Ts8Mapper": "ts8",
    "ComCamMapper": "comcam",
}

REGISTRY_NAME = "registry.sqlite3"
CALIB_REGISTRY_NAME = "calibRegistry.sqlite3"
#: Our registry's URL when the repository is made in the Gen2 root (registry.sqlite3 is Gen2's).
IN_PLACE_REGISTRY = "sqlite:///butler-registry.sqlite3"
#: How many examples of one kind of problem the report shows.
_EXAMPLES = 3


@dataclass(frozen=True)
class Gen2ImportReport:
    """What :func:`import_gen2` recorded, per dataset type, and what it could not."""

    root: str
    registry: str | None
    calib_registry: str | None
    imported: dict[str, int] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    merged: dict[str, int] = field(default_factory=dict)
    missing_files: int = 0
    problems: tuple[str, ...] = ()
    calibrations: Gen2Report | None = None

    @property
    def ok(self) -> bool:
        """No row was left out (overlaps and gaps of validity ranges are only reported)."""
        return not self.problems and (self.calibrations is None or not self.calibrations.refused)

    def __str__(self) -> str:
        total = sum(self.imported.values())
        lines = [f"imported {total} dataset(s) into {self.root}"]
        if self.registry:
            lines.append(f"  from {self.registry}")
        if self.calib_registry:
            lines.append(f"  from {self.calib_registry}")
        for name in sorted({*self.imported, *self.known}):
            extra = []
            if self.known.get(name):
                extra.append(f"{self.known[name]} already recorded")
            if self.merged.get(name):
                extra.append(f"{self.merged[name]} Gen2 rows with the same data ID and file")
            more = f" ({'; '.join(extra)})" if extra else ""
            lines.append(f"  {name}: {self.imported.get(name, 0)}{more}")
        if self.missing_files:
            lines.append(
                f"  {self.missing_files} recorded file(s) are not on disk "
                f"(`butler verify {self.root}` lists them)"
            )
        lines += [f"  problem: {p}" for p in self.problems]
        if self.calibrations is not None:
            lines.append(str(self.calibrations))
        return "\n".join(lines)


# ---- locating a Gen2 repository ------------------------------------------------------------------


def gen2_instrument(gen2_root: str | os.PathLike[str]) -> str | None:
    """The bundled instrument named by a Gen2 root's ``_mapper`` file, or None."""
    mapper_file = Path(gen2_root) / "_mapper"
    if not mapper_file.is_file():
        return None
    name = mapper_file.read_text(encoding="utf-8").strip().rsplit(".", 1)[-1]
    return GEN2_MAPPERS.get(name, name.removesuffix("Mapper").lower() or None)


def find_registries(
    gen2_root: str | os.PathLike[str], calib_root: str | os.PathLike[str] | None = None
) -> tuple[Path | None, Path | None]:
    """The raw and calibration registries of a Gen2 root (either may be None).

    The calibration registry is looked for in ``calib_root``, else in the root
    itself and then its ``CALIB`` folder (Gen2's usual places).
    """
    root = Path(gen2_root)
    raw = root / REGISTRY_NAME
    if raw.is_file() and _is_ours(raw):
        raw = root / "-"  # our own registry, made by an earlier in-place import
    candidates = (
        [Path(calib_root)] if calib_root is not None else [root, root / "CALIB", root / "calib"]
    )
    calib = next(
        (c / CALIB_REGISTRY_NAME for c in candidates if (c / CALIB_REGISTRY_NAME).is_file()), None
    )
    return (raw if raw.is_file() else None), calib


# ---- the import ----------------------------------------------------------------------------------


def import_gen2(
    gen2_root: str | os.PathLike[str],
    new_root: str | os.PathLike[str],
    *,
    mapper: str | None = None,
    transfer: Gen2Transfer = None,
    calib_root: str | os.PathLike[str] | None = None,
    registry: str | None = None,
) -> Gen2ImportReport:
    """Record a Gen2 repository's raw and calibration files in a (new) Butler repository.

    ``new_root`` is opened if it is a repository, else created for ``mapper``
    (default: the instrument named by the Gen2 root's ``_mapper`` file) with the
    registry URL ``registry``.
    """
    if transfer not in ("copy", "link", "symlink", None):
        raise RepositoryError(
            f"unknown transfer {transfer!r} for a Gen2 import; use copy, link, symlink or None"
        )
    source = Path(gen2_root).absolute()
    if not source.is_dir():
        raise RepositoryError(f"no Gen2 repository at {source}: not a folder")
    raw_registry, calib_registry = find_registries(source, calib_root)
    if raw_registry is None and calib_registry is None:
        raise RepositoryError(
            f"no Gen2 registry in {source}: expected {REGISTRY_NAME} or "
            f"{CALIB_REGISTRY_NAME} (there, or in CALIB/; or pass calib_root)"
        )
    target = Path(new_root).absolute()
    if registry is None and target.resolve() == source.resolve():
        registry = IN_PLACE_REGISTRY  # never write into (or beside, by name) Gen2's registry
    butler = _open_or_create(target, mapper or gen2_instrument(source), registry)
    with butler:
        state = _State()
        if raw_registry is not None:
            _import_raw(butler, raw_registry, source, transfer, state)
        calibrations = None
        if calib_registry is not None:
            _import_calibrations(butler, calib_registry, calib_registry.parent, transfer, state)
            # The records are in place; calib_registry certifies their validity ranges.
            calibrations = import_registry(butler, calib_registry)
        return Gen2ImportReport(
            str(butler.root),
            None if raw_registry is None else str(raw_registry),
            None if calib_registry is None else str(calib_registry),
            state.imported,
            state.known,
            state.merged,
            state.missing_files,
            tuple(state.summary()),
            calibrations,
        )


def _open_or_create(root: Path, mapper: str | None, registry: str | None) -> Butler:
    if (root / CONFIG_NAME).exists():
        butler = Butler(root)
        if mapper is not None and butler.mapper.name.lower() != mapper.lower():
            name = butler.mapper.name
            butler.close()
            raise RepositoryError(
                f"{root} is a repository of instrument {name}, but the Gen2 repository is {mapper}"
            )
        return butler
    if mapper is None:
        raise RepositoryError(
            f"cannot tell the instrument: the Gen2 root has no _mapper file and {root} is not "
            "a repository yet; pass mapper= (--mapper)"
        )
    return Butler.create(root, mapper=mapper, registry=registry)


@dataclass
class _State:
    imported: dict[str, int] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    merged: dict[str, int] = field(default_factory=dict)
    missing_files: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)

    def problem(self, kind: str, example: str) -> None:
        short = example if len(example) <= 160 else example[:157] + "..."
        self.problems.setdefault(kind, []).append(short)

    def summary(self) -> Iterator[str]:
        for kind, examples in self.problems.items():
            shown = "; ".join(examples[:_EXAMPLES])
            more = f"; ... {len(examples) - _EXAMPLES} more" if len(examples) > _EXAMPLES else ""
            yield f"{kind} ({len(examples)} row(s)): {shown}{more}"


def _is_ours(path: Path) -> bool:
    with contextlib.closing(_connect(path)) as conn:
        return {"meta", "dataset_type"} <= set(_tables(conn))


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [str(name) for (name,) in rows if name != "sqlite_sequence"]


def _rows(conn: sqlite3.Connection, table: str) -> Iterator[dict[str, Any]]:
    cursor = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


class _Keys:
    """Gen2 column names -> the instrument's keys, and Gen2 text -> values the mapper takes."""

    def __init__(self, mapper: Mapper) -> None:
        self.specs: dict[str, KeySpec] = {}
        for spec in mapper.spec.keys:
            self.specs.setdefault(spec.name, spec)
            for alias in spec.aliases:
                self.specs.setdefault(alias, spec)

    def items(self, row: Mapping[str, Any], wanted: frozenset[str]) -> dict[str, object]:
        """The values of ``row``'s columns that give keys in ``wanted``."""
        items: dict[str, object] = {}
        for column, value in row.items():
            spec = self.specs.get(column)
            if spec is None or spec.name not in wanted or value is None or value == "":
                continue
            items[spec.name] = _gen2_value(spec, value)
        return items

    def wanted(self, mapper: Mapper, dataset_type: str) -> frozenset[str]:
        """The keys of ``dataset_type`` and the keys they are derived from."""
        keys = set(mapper.dataset_type(dataset_type).keys)
        by_name = {spec.name: spec for spec in self.specs.values()}
        for name in list(keys):
            spec = by_name.get(name)
            while spec is not None and spec.derive is not None:
                keys.add(spec.derive.source)
                spec = by_name.get(spec.derive.source)
        return frozenset(keys)


def _gen2_value(spec: KeySpec, value: object) -> object:
    """Gen2 stored dates and times as text, often with nanoseconds; Python reads microseconds."""
    if not isinstance(value, str):
        return value
    if spec.type == "datetime":
        return re.sub(r"(\.\d{6})\d+", r"\1", value)
    if spec.type == "date" and len(value) > 10 and value[10] in "T ":
        return value[:10]
    return value


@dataclass
class _Pending:
    """Rows of one dataset type ready to record: data ID values -> (record, path, file)."""

    rows: dict[tuple[Value, ...], tuple[dict[str, Value], str, Path]] = field(default_factory=dict)


def _import_raw(
    butler: Butler, path: Path, base: Path, transfer: Gen2Transfer, state: _State
) -> None:
    keys = _Keys(butler.mapper)
    with contextlib.closing(_connect(path)) as conn:
        tables = _tables(conn)
        if "raw" not in tables:
            state.problem(f"{path.name} has no raw table", f"tables: {', '.join(tables)}")
            return
        visits: dict[object, dict[str, Any]] = {}
        if "raw_visit" in tables:
            visits = {row.get("visit"): row for row in _rows(conn, "raw_visit")}
        pending = _Pending()
        wanted = keys.wanted(butler.mapper, "raw")
        for row in _rows(conn, "raw"):
            merged = {**visits.get(row.get("visit"), {}), **row}
            _add(butler, "raw", keys.items(merged, wanted), None, base, pending, state)
    _record(butler, "raw", pending, transfer, state)


def _import_calibrations(
    butler: Butler, path: Path, base: Path, transfer: Gen2Transfer, state: _State
) -> None:
    """Record the calibration files (placed per ``transfer``); certification is calib_registry's."""
    keys = _Keys(butler.mapper)
    with contextlib.closing(_connect(path)) as conn:
        for table in _tables(conn):
            if table.endswith("_visit") or table not in butler.mapper.dataset_types:
                continue  # calib_registry's report names the tables it skips
            pending = _Pending()
            wanted = keys.wanted(butler.mapper, table)
            for row in _rows(conn, table):
                items = keys.items(row, wanted)
                _add(butler, table, items, row.get("path"), base, pending, state)
            _record(butler, table, pending, transfer, state)


def _add(
    butler: Butler,
    name: str,
    items: dict[str, object],
    stored_path: object,
    base: Path,
    pending: _Pending,
    state: _State,
) -> dict[str, Value] | None:
    """Queue one Gen2 row; its record (the dataset type's keys), or None if it cannot be."""
    spec = butler.mapper.dataset_type(name)
    try:
        data_id = butler.mapper.normalize(items)
    except InvalidDataIdError as error:
        state.problem(f"{name}: invalid data ID", f"{items}: {error}")
        return None
    missing = [k for k in spec.keys if k not in data_id]
    if missing:
        state.problem(
            f"{name}: the Gen2 registry has no value for {', '.join(missing)} "
            f"(keys of template {spec.template!r})",
            str(items),
        )
        return None
    record = {k: data_id[k] for k in spec.keys}
    relative = str(stored_path) if stored_path else butler.mapper.path(name, data_id)
    relative = relative.split("[", 1)[0] if relative.endswith("]") else relative
    key = tuple(record.values())
    earlier = pending.rows.get(key)
    if earlier is not None:
        if earlier[1] != relative:
            state.problem(
                f"{name}: Gen2 rows with one data ID but different files",
                f"{record}: {earlier[1]} and {relative}",
            )
        else:
            state.merged[name] = state.merged.get(name, 0) + 1
        return None
    pending.rows[key] = (record, relative, base / relative)
    return record


def _record(
    butler: Butler, name: str, pending: _Pending, transfer: Gen2Transfer, state: _State
) -> None:
    """Record the queued rows of one dataset type (placing files first unless transfer=None)."""
    registry = butler.registry
    storage = LocalStorage(butler.datastore.local_root("import a Gen2 repository"))
    registry.register_dataset_type(name, butler.mapper.keys(name))
    new: list[tuple[dict[str, Value], str]] = []
    sources: list[Path] = []  # each new row's Gen2 file, for its sky region (issue 17)
    placed: list[tuple[Path, Path]] = []
    published: list[Path] = []
    try:
        with registry.transaction():
            for record, relative, source in pending.rows.values():
                if registry.find(name, record) is not None:
                    state.known[name] = state.known.get(name, 0) + 1
                    continue
                if transfer is None:
                    if not source.exists():
                        state.missing_files += 1
                    new.append((record, _stored(butler.root, source)))
                    sources.append(source)
                    continue
                if not source.is_file():
                    state.problem(f"{name}: Gen2 file missing, not {transfer}ed", str(source))
                    continue
                target = storage.checked(relative)
                if target.exists() or target.is_symlink():
                    state.problem(f"{name}: a file with no record is in the way", relative)
                    continue
                placed.append((storage.write(target, file_writer(source, transfer)), target))
                new.append((record, relative))
                sources.append(source)
            ids = [new_dataset_id() for _ in new]
            plan = butler.plan(name)
            if plan.sky and new:
                from ..regions import record_files

                files = [(i, r, f) for i, (r, _), f in zip(ids, new, sources, strict=True)]
                record_files(butler, plan, [(i, r, f) for i, r, f in files if f.exists()])
            registry.insert_many(name, new, dataset_ids=ids)
            for temporary, target in placed:
                storage.publish(temporary, target)
                published.append(target)
    except BaseException:
        for temporary, target in placed:
            storage.discard(target if target in published else temporary)
        raise
    if new:
        state.imported[name] = state.imported.get(name, 0) + len(new)


def _stored(root: Path, source: Path) -> str:
    """A file's stored path: relative to the repository root if inside it, else absolute."""
    resolved = source.resolve()
    if resolved.is_relative_to(root.resolve()):
        return resolved.relative_to(root.resolve()).as_posix()
    return resolved.as_posix()
