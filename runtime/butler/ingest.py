"""Raw ingest: a file's header -> translated observation -> data ID -> file at its path.

    report = butler.ingest(["HSCA90402512.fits", ...], transfer="copy")
    print(report)          # ingested, skipped (already there), failed (with the reason per file)

Each file's primary header is translated by astro-metadata-translator into an
``ObservationInfo`` (for a multi-extension file whose dataset type has an HDU
key, each extension header merged over the primary). The instrument's
:class:`InstrumentRules` say, as data, which translated property gives which
policy key; the mapper then normalizes the data ID (filling derived keys such
as ``dateObs``), renders the path, and the file is copied, moved, linked or
left in place and recorded in one unit of work. The raw record carries the
observation's time key (``taiObs`` for HSC), which is what calibration lookups
select validity ranges by.

Each record carries the file's size and checksum (:mod:`butler.checksums`): hashed
while copying for ``transfer="copy"``; for ``"move"``, ``"link"``, ``"symlink"`` and
``None``, where no byte passes through Butler, by reading the file once at ingest
(a symbolic link's target: ``verify --read`` then notices if it changes).

Header translation is never written here: only the mapping of translated
properties onto a policy's key names and value conventions (Gen2's, for the
bundled policies). Everything runs offline: astropy is told not to download
site lists or leap-second tables while a header is translated.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import functools
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .checksums import FileChecksum, copier, file_checksum
from .dataid import DataId
from .errors import ButlerError, InvalidDataIdError
from .progress import progress
from .spec import Value

if TYPE_CHECKING:
    from .butler import Butler

__all__ = [
    "RULES",
    "TRANSFERS",
    "IngestError",
    "IngestReport",
    "IngestedFile",
    "InstrumentRules",
    "KeyRule",
    "file_writer",
    "ingest",
    "read_header_file",
    "rules_for",
    "translate",
    "write_header_only_fits",
]

Transfer = Literal["copy", "move", "link", "symlink"] | None
#: The ways a file can get to its templated path (``None``: it stays where it is).
TRANSFERS: tuple[Transfer, ...] = ("copy", "move", "link", "symlink", None)


class IngestError(ButlerError):
    """A file that cannot be ingested (the batch goes on; the report lists it)."""


# ---- rules: translated properties -> policy keys, per instrument ---------------------------


@dataclass(frozen=True, slots=True)
class KeyRule:
    """How one policy key is computed: a ``source`` value, then a ``convert`` step.

    ``source`` is an ``ObservationInfo`` property (``"exposure_id"``), ``"hdu"``
    (the index of the HDU whose header was translated), or ``"header:CARD"``
    for a header card no property covers, read as it is. ``convert`` names an
    entry of :data:`CONVERTERS`; ``argument`` is passed to it.
    """

    source: str
    convert: str = "value"
    argument: int | str | None = None


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """How one instrument's raw files become data IDs of its policy.

    ``instrument`` is the policy's instrument name; ``translated`` the values of
    ``ObservationInfo.instrument`` its files translate to (a file of another
    instrument is refused). ``keys`` maps policy keys to rules; keys the policy
    derives (``dateObs = date(taiObs)``) need none.
    """

    instrument: str
    translated: tuple[str, ...]
    keys: tuple[tuple[str, KeyRule], ...]
    dataset_type: str = "raw"
    doc: str = ""

    @property
    def properties(self) -> frozenset[str]:
        """The ``ObservationInfo`` properties the rules read."""
        return frozenset(
            rule.source
            for _, rule in self.keys
            if rule.source != "hdu" and not rule.source.startswith("header:")
        )

    @property
    def per_hdu(self) -> bool:
        return any(rule.source == "hdu" for _, rule in self.keys)


def _utc_date(value: Any, _: object) -> datetime.date:
    return value.utc.to_datetime().date()  # type: ignore[no-any-return]


def _tai_datetime(value: Any, _: object) -> datetime.datetime:
    return value.tai.to_datetime()  # type: ignore[no-any-return]


def _utc_datetime(value: Any, _: object) -> datetime.datetime:
    return value.utc.to_datetime()  # type: ignore[no-any-return]


def _mjd_since(value: Any, day0: object) -> int:
    return int(value.utc.mjd) - int(str(day0))


def _field_name(value: Any, _: object) -> str:
    text = str(value).strip()
    return "UNKNOWN" if text in ("", "#") else re.sub(r"\W", "_", text).upper()


#: Value conversions rules may name: ``(value, argument) -> key value``.
CONVERTERS: dict[str, Callable[[Any, object], Value]] = {
    "value": lambda value, _: value,
    "str": lambda value, _: str(value).strip(),
    "upper": lambda value, _: str(value).strip().upper(),
    "first_word": lambda value, _: str(value).split()[0],
    "utc_date": _utc_date,
    "utc_datetime": _utc_datetime,
    "tai_datetime": _tai_datetime,
    "mjd_since": _mjd_since,
    "field_name": _field_name,
}

HSC = InstrumentRules(
    instrument="HSC",
    translated=("HSC",),
    keys=(
        ("visit", KeyRule("exposure_id")),  # EXP-ID, as Gen2's HscParseTask.translate_visit
        ("ccd", KeyRule("detector_num")),  # DET-ID
        ("filter", KeyRule("physical_filter")),  # FILTER01, upper-cased
        ("taiObs", KeyRule("datetime_begin", "utc_date")),  # Gen2: DATE-OBS, a UTC date
        ("field", KeyRule("object", "field_name")),  # OBJECT, non-word characters -> "_"
        ("pointing", KeyRule("datetime_begin", "mjd_since", 55927)),  # days since 2012-01-01
    ),
    doc="Gen2 obs_subaru HscParseTask conventions; checked against the real HSC headers.",
)

DECAM = InstrumentRules(
    instrument="DECam",
    translated=("DECam",),
    keys=(
        ("visit", KeyRule("exposure_id")),  # EXPNUM
        ("ccdnum", KeyRule("detector_num")),  # CCDNUM
        ("ccd", KeyRule("detector_num")),
        ("filter", KeyRule("physical_filter", "first_word")),  # "g DECam SDSS c0001 ..." -> "g"
        ("date", KeyRule("datetime_begin", "utc_date")),
        ("dateObs", KeyRule("datetime_begin", "utc_date")),
        ("taiObs", KeyRule("datetime_begin", "tai_datetime")),
        ("hdu", KeyRule("hdu")),
    ),
    doc="Gen2 obs_decam conventions; awaiting the DECam policy to be checked end to end.",
)

MEGACAM = InstrumentRules(
    instrument="MegaCam",
    translated=("MegaPrime",),
    keys=(
        ("visit", KeyRule("exposure_id")),  # EXPNUM
        ("ccd", KeyRule("detector_num")),  # EXTVER - 1
        ("filter", KeyRule("physical_filter", "first_word")),
        ("object", KeyRule("object", "str")),
        ("field", KeyRule("object", "str")),
        ("runId", KeyRule("header:RUNID", "str")),
        ("date", KeyRule("datetime_begin", "utc_date")),
        ("taiObs", KeyRule("datetime_begin", "tai_datetime")),
        ("extension", KeyRule("hdu")),
    ),
    doc="Gen2 obs_cfht conventions; awaiting the MegaCam policy to be checked end to end.",
)

#: Bundled rules, by policy instrument name (looked up without regard to case).
RULES: dict[str, InstrumentRules] = {r.instrument: r for r in (HSC, DECAM, MEGACAM)}


def rules_for(instrument: str) -> InstrumentRules:
    """The bundled rules for a policy's instrument; IngestError if there are none."""
    for name, rules in RULES.items():
        if name.lower() == instrument.lower():
            return rules
    raise IngestError(
        f"no ingest rules for instrument {instrument!r} (rules exist for {', '.join(RULES)}): "
        "the data IDs of its raw files cannot be read from their headers. Record them with "
        "their data IDs instead: from Python, Butler.put, or Butler.ingest(files, "
        "rules=InstrumentRules(...)) with rules of your own; on the command line, `butler "
        "index ROOT` registers files placed at their templated paths (`butler uri ROOT raw "
        "KEY=VALUE ...` prints one) when the path holds every key of the data ID"
    )


# ---- translation ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No downloads while translating (the SDSS translator asks astropy for a site list)."""
    from astropy.utils import iers
    from astropy.utils.data import conf as data_conf

    with (
        data_conf.set_temp("allow_internet", False),
        iers.conf.set_temp("auto_download", False),
        warnings.catch_warnings(),
    ):
        from astropy.io.fits.verify import VerifyWarning

        warnings.simplefilter("ignore", VerifyWarning)
        yield


@dataclass(frozen=True, slots=True)
class Observation:
    """One translated header: the HDU it came from, its translator and its properties."""

    hdu: int
    translator: str
    info: Any  # astro_metadata_translator.ObservationInfo
    header: Mapping[str, Any]


def _headers(source: Path, per_hdu: bool) -> list[tuple[int, dict[str, Any]]]:
    from astropy.io import fits

    try:
        with fits.open(source, memmap=False) as hdus:
            primary = dict(hdus[0].header)
            extensions = [(i, dict(h.header)) for i, h in enumerate(hdus) if i > 0]
    except (OSError, ValueError) as error:
        raise IngestError(f"cannot read a FITS header from {source}: {error}") from None
    if not per_hdu or not extensions:
        return [(0, primary)]
    from astro_metadata_translator import merge_headers

    return [(i, dict(merge_headers([primary, ext], mode="overwrite"))) for i, ext in extensions]


def translate(
    source: str | os.PathLike[str],
    properties: Iterable[str] = (),
    *,
    per_hdu: bool = False,
) -> list[Observation]:
    """The translated observations of a FITS file (one, or one per extension with ``per_hdu``)."""
    from astro_metadata_translator import MetadataTranslator, ObservationInfo

    path = Path(source)
    wanted = {"instrument", *properties}
    observations = []
    with _offline():
        for hdu, header in _headers(path, per_hdu):
            try:
                translator = MetadataTranslator.determine_translator(header, filename=str(path))
            except ValueError:
                known = ", ".join(MetadataTranslator.translators)
                raise IngestError(
                    f"no metadata translator understands its header (tried {known})"
                ) from None
            try:
                info = ObservationInfo(
                    header,
                    filename=str(path),
                    translator_class=translator,
                    required=wanted,
                    subset=wanted,
                    quiet=True,
                )
            except (KeyError, ValueError, TypeError) as error:
                raise IngestError(
                    f"{path}: the {translator.name} translator cannot give "
                    f"{', '.join(sorted(wanted))}: {error}"
                ) from None
            observations.append(Observation(hdu, str(translator.name), info, header))
    return observations


def _key_values(
    rules: InstrumentRules, observation: Observation, wanted: set[str]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, rule in rules.keys:
        if key not in wanted:
            continue
        if rule.source == "hdu":
            raw: Any = observation.hdu
        elif rule.source.startswith("header:"):
            card = rule.source.partition(":")[2]
            if card not in observation.header:
                raise IngestError(f"its header has no {card} card, which gives {key!r}")
            raw = observation.header[card]
        else:
            raw = getattr(observation.info, rule.source)
        if raw is None:
            raise IngestError(f"its translated {rule.source} is unknown, and it gives {key!r}")
        try:
            values[key] = CONVERTERS[rule.convert](raw, rule.argument)
        except (ValueError, TypeError, AttributeError, IndexError) as error:
            raise IngestError(
                f"cannot turn its {rule.source} {raw!r} into {key!r} ({rule.convert}): {error}"
            ) from None
    return values


# ---- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestedFile:
    """One file ingested: where it came from, where it is recorded, and its data IDs."""

    source: str
    path: str
    data_ids: tuple[DataId, ...]


@dataclass(frozen=True)
class IngestReport:
    """What :func:`ingest` did with each file. ``ok`` means no file failed."""

    dataset_type: str
    ingested: tuple[IngestedFile, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        datasets = sum(len(f.data_ids) for f in self.ingested)
        lines = [
            f"ingested {len(self.ingested)} file(s) as {datasets} {self.dataset_type!r} "
            f"dataset(s); {len(self.skipped)} skipped (already ingested); "
            f"{len(self.failed)} failed"
        ]
        lines += [f"  failed {source}: {why}" for source, why in self.failed]
        lines += [f"  skipped {source}: {why}" for source, why in self.skipped[:20]]
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more skipped")
        return "\n".join(lines)


@dataclass
class _Batch:
    ingested: list[IngestedFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


# ---- ingest --------------------------------------------------------------------------------------


def ingest(
    butler: Butler,
    paths: Iterable[str | os.PathLike[str]],
    *,
    transfer: Transfer = "copy",
    rules: InstrumentRules | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Ingest raw files into ``butler``'s repository; a report (use :meth:`Butler.ingest`).

    Each file is ingested on its own: one that cannot be (no translator, another
    instrument, a bad value, a clash) is listed in the report's ``failed`` with the
    reason, and the rest go on. A file whose data IDs are already recorded is
    ``skipped``, never recorded twice.
    """
    if transfer not in TRANSFERS:
        raise IngestError(
            f"unknown transfer {transfer!r}; use one of {', '.join(repr(t) for t in TRANSFERS)}"
        )
    rules = rules or rules_for(butler.mapper.name)
    name = rules.dataset_type
    spec = butler.mapper.dataset_type(name)
    butler.registry.register_dataset_type(name, butler.mapper.keys(name))
    instrument_keys = {key.name for key in butler.mapper.spec.keys}
    sources = [Path(p) for p in paths]
    batch = _Batch()
    items = progress(sources, f"ingest {name}", len(sources)) if show_progress else sources
    for source in items:
        try:
            observations = translate(source, rules.properties, per_hdu=rules.per_hdu)
            data_ids = [
                _data_id(butler, rules, spec.keys, instrument_keys, o) for o in observations
            ]
            outcome = _place(butler, name, source, data_ids, transfer)
        except (ButlerError, OSError) as error:
            message = str(error) if isinstance(error, ButlerError) else _os_message(error)
            batch.failed.append((str(source), message.removeprefix(f"{source}: ")))
            continue
        if isinstance(outcome, str):
            batch.skipped.append((str(source), outcome))
        else:
            batch.ingested.append(outcome)
    return IngestReport(name, tuple(batch.ingested), tuple(batch.skipped), tuple(batch.failed))


def _os_message(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


def _data_id(
    butler: Butler,
    rules: InstrumentRules,
    dataset_keys: Sequence[str],
    instrument_keys: set[str],
    observation: Observation,
) -> DataId:
    if observation.info.instrument not in rules.translated:
        raise IngestError(
            f"its header is from instrument {observation.info.instrument!r} (the "
            f"{observation.translator} translator), but this repository holds "
            f"{butler.mapper.name} data"
        )
    values = _key_values(rules, observation, instrument_keys)
    try:
        data_id = butler.mapper.normalize(values)
    except InvalidDataIdError as error:
        raise IngestError(f"its translated data ID {values} is not valid: {error}") from None
    missing = [k for k in dataset_keys if k not in data_id]
    if missing:
        raise IngestError(
            f"no rule gives {', '.join(missing)} of {rules.dataset_type!r}; add them to the "
            f"{rules.instrument} rules in butler.ingest"
        )
    return data_id


def _place(
    butler: Butler, name: str, source: Path, data_ids: list[DataId], transfer: Transfer
) -> IngestedFile | str:
    """Put one file at its templated path and record its data IDs; a reason if skipped."""
    mapper, registry, storage = butler.mapper, butler.registry, butler.storage
    keys = mapper.dataset_type(name).keys
    records = [{k: d[k] for k in keys} for d in data_ids]
    paths = {mapper.path(name, d) for d in data_ids}
    if len(paths) != 1:
        raise IngestError(f"its HDUs map to different paths: {', '.join(sorted(paths))}")
    (relative,) = paths
    found = [registry.find(name, record) for record in records]
    if all(path is not None for path in found):
        return f"already ingested at {found[0]}"
    if any(path is not None for path in found):
        raise IngestError(f"some of its data IDs are already recorded (at {relative})")
    source = source.absolute()
    target = storage.checked(relative)
    in_place = target.exists() and target.resolve() == source.resolve()
    if transfer is None or in_place:
        stored = relative if in_place else _inside(butler.root, source)
        sums = file_checksum(source)
        with registry.transaction():
            registry.insert_many(name, [(r, stored, sums.size, sums.value) for r in records])
        return IngestedFile(str(source), stored, tuple(data_ids))
    if target.exists() or target.is_symlink():
        raise IngestError(
            f"a file with no record is already at {relative!r}; `butler verify` lists it and "
            "`butler index` registers it"
        )
    file: FileChecksum
    if transfer == "copy":
        temporary, file = storage.write_stream(target, copier(source))
    else:
        temporary = storage.write(target, file_writer(source, transfer))
        file = file_checksum(temporary)
    published = False
    try:
        with registry.transaction():
            registry.insert_many(name, [(r, relative, file.size, file.value) for r in records])
            storage.publish(temporary, target)
            published = True
    except BaseException:
        storage.discard(target if published else temporary)
        raise
    if transfer == "move":
        source.unlink()
    return IngestedFile(str(source), relative, tuple(data_ids))


def _inside(root: Path, source: Path) -> str:
    """The path of a file left where it is, relative to the repository it must lie in."""
    try:
        return source.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise IngestError(
            f"transfer=None leaves a file where it is, but it is outside the repository "
            f"{root} (the registry records only paths inside it); use transfer='symlink', "
            "'link', 'copy' or 'move'"
        ) from None


def file_writer(source: Path, transfer: Transfer) -> Callable[[Path], None]:
    """A writer for :meth:`LocalStorage.write` that copies, links or symlinks ``source``.

    ``"move"`` hard-links (or copies, across file systems); the caller removes
    the source once the record is committed.
    """

    def write(temporary: Path) -> None:
        if transfer == "symlink":
            os.symlink(source.resolve(), temporary)
        elif transfer in ("link", "move"):
            try:
                os.link(source, temporary)
            except OSError as error:
                if transfer == "link" or error.errno not in (errno.EXDEV, errno.EPERM):
                    raise IngestError(
                        f"cannot hard-link {source} into the repository: "
                        f"{_os_message(error)}; use transfer='copy' or 'symlink'"
                    ) from None
                shutil.copyfile(source, temporary)
        else:
            shutil.copyfile(source, temporary)

    return write


# ---- header files: real headers as YAML/JSON, written as header-only FITS files --------------


def read_header_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A header stored as YAML (a ``lsst.daf.base.PropertyList`` or a plain mapping) or JSON."""
    import yaml

    file = Path(path)
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        loaded = json.loads(text)
    else:
        loaded = yaml.load(text, Loader=_property_list_loader())  # a SafeLoader, plus one tag
    if not isinstance(loaded, dict):
        raise IngestError(f"{file} does not hold a header (a mapping of cards)")
    if loaded.get("__CONTENT__") is not None:
        raise IngestError(f"{file} holds a translated observation, not a header")
    return loaded


@functools.cache
def _property_list_loader() -> Any:
    """A SafeLoader that reads ``lsst.daf.base.PropertyList`` documents (made on first use)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def property_list(loader: yaml.SafeLoader, node: Any) -> Iterator[dict[str, Any]]:
        cards: dict[str, Any] = {}
        yield cards
        for key, kind, value, *_ in loader.construct_sequence(node, deep=True):
            if kind == "Double" and value is not None:
                value = float(value)
            elif kind == "Int" and value is not None:
                value = int(value)
            cards[key] = value

    Loader.add_constructor("lsst.daf.base.PropertyList", property_list)
    return Loader


#: Cards that describe a FITS HDU's structure; a header-only primary HDU writes its own.
_STRUCTURAL = re.compile(
    r"SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|BSCALE|BZERO|BLANK|CHECKSUM|DATASUM|"
    r"Z[A-Z]+\d*|TFIELDS|T(FORM|TYPE)\d+"
)


def write_header_only_fits(
    header: Mapping[str, Any], path: str | os.PathLike[str], *, extension: bool = False
) -> Path:
    """Write ``header`` into a FITS file with no pixel data; the path.

    The cards go into the primary HDU, or with ``extension`` into one image
    extension after an empty primary: the shape of a multi-extension raw (DECam,
    MegaCam) whose headers are stored as primary and extension merged.
    """
    from astropy.io import fits

    target = Path(path)
    out = fits.Header()
    with warnings.catch_warnings():
        from astropy.io.fits.verify import VerifyWarning

        warnings.simplefilter("ignore", VerifyWarning)
        for key, value in header.items():
            if _STRUCTURAL.fullmatch(key) or key in ("COMMENT", "HISTORY", ""):
                continue
            out[key] = value
        target.parent.mkdir(parents=True, exist_ok=True)
        if extension:
            hdus = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(header=out)])
        else:
            hdus = fits.HDUList([fits.PrimaryHDU(header=out)])
        hdus.writeto(target, overwrite=True, output_verify="silentfix")
    return target
