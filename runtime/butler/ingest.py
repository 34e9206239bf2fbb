"""Raw ingest: a file's header -> translated observation -> data ID -> file at its path.

    report = butler.ingest(["HSCA90402512.fits", ...], transfer="copy")
    print(report)          # ingested, skipped (already there), failed (with the reason per file)

Each file's primary header (for a multi-extension file whose dataset type has an
HDU key, each extension header merged over the primary) is read (the primary alone
by :mod:`butler.fits_cards`, each card parsed only when read), and its translated
properties that the rules read are computed by astro-metadata-translator's
translators (:mod:`butler.translation`). The rules are the ``ingest`` clause of the dataset type in
the instrument's policy (docs/language.md, "Ingest rules"), carried by the
generated mapper as data: which property, header card, HDU index or part of the
file name gives each key, and the conversions on the way. This module is only the
machinery that applies them; the mapper then normalizes the data ID (filling
derived keys such as ``dateObs``), renders the path, and the file is copied,
moved, linked or left in place and recorded in one unit of work. The raw record
carries the observation's time key (``taiObs`` for HSC), which is what
calibration lookups select validity ranges by.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from .checksums import FileChecksum, copier, file_checksum
from .dataid import DataId
from .errors import ButlerError, InvalidDataIdError
from .fits_cards import read_primary_cards
from .process_pool import ordered_map
from .progress import progress
from .spec import IngestSpec, IngestStep, Value
from .storage import LocalStorage
from .translation import Translation, TranslationError

if TYPE_CHECKING:
    from .butler import Butler
    from .mapper import Mapper

__all__ = [
    "CONVERTERS",
    "TRANSFERS",
    "IngestError",
    "IngestReport",
    "IngestedFile",
    "InstrumentRules",
    "file_writer",
    "ingest",
    "read_header_file",
    "read_observations",
    "rules_for",
    "translate",
    "write_header_only_fits",
]

Transfer = Literal["copy", "move", "link", "symlink"] | None


def _storage(butler: Butler) -> LocalStorage:
    """The repository's folder: ingest places local files (RepositoryError elsewhere)."""
    return LocalStorage(butler.datastore.local_root("ingest files"))


#: The ways a file can get to its templated path (``None``: it stays where it is).
TRANSFERS: tuple[Transfer, ...] = ("copy", "move", "link", "symlink", None)


class IngestError(ButlerError):
    """A file that cannot be ingested (the batch goes on; the report lists it)."""


# ---- rules: the policy's ingest clause, applied ------------------------------------------


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """How one instrument's files become data IDs of one dataset type.

    The rules are the ``ingest`` clause of the dataset type in the instrument's
    policy (``IngestSpec``); :func:`rules_for` reads them from a mapper. Headers
    are translated by astro-metadata-translator only when a rule reads a
    translated property, and then a file must translate to one of ``translated``.
    """

    instrument: str
    dataset_type: str
    spec: IngestSpec

    @property
    def translated(self) -> tuple[str, ...]:
        return self.spec.translated

    @property
    def properties(self) -> frozenset[str]:
        """The ``ObservationInfo`` properties the rules read."""
        return frozenset(r.source for r in self.spec.rules if r.source not in _NOT_PROPERTIES)

    @property
    def per_hdu(self) -> bool:
        return any(rule.source == "hdu" for rule in self.spec.rules)


#: Rule sources that are not translated properties.
_NOT_PROPERTIES = frozenset({"header", "hdu", "filename"})

_MJD_ZERO = datetime.date(1858, 11, 17)


def _time(value: Any) -> Any:
    """An astropy Time: a translated one as it is, a header's text parsed as UTC."""
    if isinstance(value, str):
        from astropy.time import Time

        return Time(value.strip(), scale="utc")
    return value


def _utc_date(value: Any, _: str | None) -> datetime.date:
    return _time(value).utc.to_datetime().date()  # type: ignore[no-any-return]


def _tai_datetime(value: Any, _: str | None) -> datetime.datetime:
    return _time(value).tai.to_datetime()  # type: ignore[no-any-return]


def _utc_datetime(value: Any, _: str | None) -> datetime.datetime:
    return _time(value).utc.to_datetime()  # type: ignore[no-any-return]


def _days_since(value: Any, day0: str | None) -> int:
    start = (datetime.date.fromisoformat(str(day0)) - _MJD_ZERO).days
    return int(_time(value).utc.mjd) - start


def _field_name(value: Any, _: str | None) -> str:
    text = str(value).strip()
    return "UNKNOWN" if text in ("", "#") else re.sub(r"\W", "_", text).upper()


def _group(value: Any, pattern: str | None) -> str:
    match = re.search(str(pattern), str(value))
    if match is None:
        raise ValueError(f"it does not match r{str(pattern)!r}")
    return str(match.group(1))


def _number(value: Any, _: str | None) -> float:
    return float(getattr(value, "value", value))


def _whole(value: Any, _: str | None) -> int:
    number = float(value) if not isinstance(value, int) else value
    if number != int(number):
        raise ValueError("it is not a whole number")
    return int(number)


#: The steps that convert a time.
_TIME_STEPS = frozenset({"utc_date", "utc_datetime", "tai_datetime", "days_since"})

#: The conversions of the policy language's ingest steps (``butlerc.ingest_rules``), by name.
CONVERTERS: dict[str, Callable[[Any, str | None], Value]] = {
    "text": lambda value, _: str(value).strip(),
    "upper": lambda value, _: str(value).strip().upper(),
    "first_word": lambda value, _: str(value).split()[0],
    "field_name": _field_name,
    "int": _whole,
    "float": _number,
    "utc_date": _utc_date,
    "utc_datetime": _utc_datetime,
    "tai_datetime": _tai_datetime,
    "days_since": _days_since,
    "group": _group,
}


def rules_for(mapper: Mapper, dataset_type: str = "raw") -> InstrumentRules:
    """The ingest rules of a dataset type, from the policy; IngestError if it has none."""
    spec = mapper.dataset_type(dataset_type).ingest
    if spec is None:
        ingestible = [d.name for d in mapper.spec.dataset_types if d.ingest is not None]
        raise IngestError(
            f"dataset type {dataset_type!r} of instrument {mapper.name!r} has no ingest rules, so "
            "the data IDs of its files cannot be read from them"
            + (f" (ingestible here: {', '.join(ingestible)})" if ingestible else "")
            + f". Add an `ingest {{ KEY <- SOURCE ... }}` clause to `dataset {dataset_type}` "
            "in the policy (docs/language.md, 'Ingest rules') and rebuild the repository's "
            "mapper; or place files at their templated paths and register them with `butler "
            "index ROOT`"
        )
    return InstrumentRules(mapper.name, dataset_type, spec)


# ---- translation ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No downloads while translating (the SDSS translator asks astropy for a site list).

    Cheap inside an outer ``_offline`` (an ingest's loop, a worker process): setting
    astropy's options each time cost a quarter of a millisecond per file.
    """
    from astropy.io.fits.verify import VerifyWarning
    from astropy.utils import iers
    from astropy.utils.data import conf as data_conf

    with contextlib.ExitStack() as stack:
        if data_conf.allow_internet or iers.conf.auto_download:
            stack.enter_context(data_conf.set_temp("allow_internet", False))
            stack.enter_context(iers.conf.set_temp("auto_download", False))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", VerifyWarning)
        yield


def _offline_worker() -> None:
    """A worker process of ``ingest(jobs=N)``: offline for its whole life."""
    from astropy.utils import iers
    from astropy.utils.data import conf as data_conf

    data_conf.allow_internet = False
    iers.conf.auto_download = False


@dataclass(frozen=True, slots=True)
class Observation:
    """One header: the HDU it came from, its translator and its properties (if translated)."""

    hdu: int
    translator: str
    info: Any  # astro_metadata_translator.ObservationInfo
    header: Mapping[str, Any]


_DELETED = object()


class _Cards(MutableMapping[str, Any]):
    """A FITS header's cards, each turned into a Python value only when it is read.

    Translators read a few dozen of a raw header's hundreds of cards; converting
    every card up front (``dict(header)``) was most of the time ingest took.
    """

    __slots__ = ("_header", "_keys", "_values")

    def __init__(self, header: Any) -> None:  # an astropy.io.fits.Header
        self._header = header
        self._keys = list(dict.fromkeys(header.keys()))
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._values[key]
        except KeyError:
            value = self._values[key] = self._header[key]
        if value is _DELETED:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:  # translators fix headers up
        if key not in self:
            self._keys.append(key)
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._keys.remove(key)
        self._values[key] = _DELETED

    def __contains__(self, key: object) -> bool:
        if key in self._values:
            return self._values[key] is not _DELETED
        return key in self._header

    def __copy__(self) -> _Cards:
        copied = _Cards.__new__(_Cards)
        copied._header, copied._keys, copied._values = self._header, [*self._keys], {**self._values}
        return copied

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _headers(source: Path, per_hdu: bool) -> list[tuple[int, MutableMapping[str, Any]]]:
    from astropy.io import fits

    try:
        if not per_hdu:  # the primary header alone, its cards parsed only when read
            return [(0, read_primary_cards(source))]
        with fits.open(source, memmap=False) as hdus:
            primary = _Cards(hdus[0].header)
            extensions = [(i, _Cards(h.header)) for i, h in enumerate(hdus) if i > 0]
    except (OSError, ValueError, EOFError) as error:
        raise IngestError(f"cannot read a FITS header from {source}: {error}") from None
    if not per_hdu or not extensions:
        return [(0, primary)]
    return [(i, _merged(primary, extension)) for i, extension in extensions]


def _merged(
    primary: MutableMapping[str, Any], extension: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """An extension's cards over the primary's (as ``merge_headers(mode="overwrite")``)."""
    from collections import ChainMap

    return ChainMap(extension, primary)


def read_observations(
    source: Path, rules: InstrumentRules, translation: Translation | None = None
) -> list[Observation]:
    """A file's headers as the rules need them: translated only if a rule reads a property."""
    if rules.properties:
        return translate(source, rules.properties, per_hdu=rules.per_hdu, translation=translation)
    with _offline():
        return [Observation(hdu, "", None, h) for hdu, h in _headers(source, rules.per_hdu)]


def translate(
    source: str | os.PathLike[str],
    properties: Iterable[str] = (),
    *,
    per_hdu: bool = False,
    translation: Translation | None = None,
) -> list[Observation]:
    """The translated observations of a FITS file (one, or one per extension with ``per_hdu``).

    Only ``properties`` (and ``instrument``) are computed (:mod:`butler.translation`);
    ``translation`` carries what one ingest's files share (a new one if not given).
    """
    path = Path(source)
    wanted = sorted({"instrument", *properties})
    translation = translation or Translation()
    observations = []
    with _offline():
        for hdu, header in _headers(path, per_hdu):
            try:
                cls, values = translation.translate(header, wanted, str(path))
            except TranslationError as error:
                raise IngestError(str(error)) from None
            info = SimpleNamespace(**values)
            observations.append(Observation(hdu, str(cls.name), info, header))
    return observations


def _key_values(
    rules: InstrumentRules,
    observation: Observation,
    source: Path,
    tables: Mapping[str, Mapping[Any, Value]],
    wanted: set[str],
    times: dict[tuple[Any, ...], Any] | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for rule in rules.spec.rules:
        if rule.key not in wanted:
            continue
        where = rule.source
        if rule.source == "hdu":
            raw: Any = observation.hdu
        elif rule.source == "filename":
            raw = source.name
        elif rule.source == "header":
            card = str(rule.argument)
            where = f"{card} card"
            if card not in observation.header:
                raise IngestError(f"its header has no {card} card, which gives {rule.key!r}")
            raw = observation.header[card]
        else:
            raw = getattr(observation.info, rule.source)
            where = f"translated {rule.source}"
        if raw is None:
            raise IngestError(f"its {where} is unknown, and it gives {rule.key!r}")
        for step in rule.steps:
            raw = _apply(step, raw, tables, rule.key, where, times)
        values[rule.key] = raw
    return values


def _apply(
    step: IngestStep,
    raw: Any,
    tables: Mapping[str, Mapping[Any, Value]],
    key: str,
    where: str,
    times: dict[tuple[Any, ...], Any] | None = None,
) -> Any:
    """One step of a rule. ``times`` remembers conversions of astropy Times (each costs a
    fraction of a millisecond; the files of one exposure share theirs)."""
    try:
        if step.step == "table":
            table = tables[str(step.argument)]
            value = raw.strip() if isinstance(raw, str) else raw
            if value not in table:
                raise ValueError(f"table {step.argument} has no row for it")
            return table[value]
        if times is not None and step.step in _TIME_STEPS and getattr(raw, "isscalar", False):
            memo = (step.step, step.argument, raw.scale, float(raw.jd1), float(raw.jd2))
            value = times.get(memo)
            if value is None:
                value = times[memo] = CONVERTERS[step.step](raw, step.argument)
            return value
        return CONVERTERS[step.step](raw, step.argument)
    except (ValueError, TypeError, AttributeError, IndexError) as error:
        raise IngestError(
            f"cannot turn its {where} {raw!r} into {key!r} ({step.step}): {error}"
        ) from None


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
    jobs: int = 1,
) -> IngestReport:
    """Ingest raw files into ``butler``'s repository; a report (use :meth:`Butler.ingest`).

    Each file is read, translated and copied on its own: one that cannot be (no
    translator, another instrument, a bad value, a clash) is listed in the report's
    ``failed`` with the reason, and the rest go on. The copies of up to
    ``BATCH_FILES`` files are fsynced together and recorded in one registry
    transaction, each renamed into place just before the commit (if the commit fails,
    the batch's files are placed again one by one, so only the one at fault fails).
    A file whose data IDs are already recorded is ``skipped``, never recorded twice,
    and a file already at its path with the source's bytes (placed by an ingest
    killed before its commit) is recorded as it is, so a rerun after an interruption
    goes on where it stopped. With ``jobs`` > 1, that many worker processes
    (:mod:`butler.process_pool`) read, convert and copy the files (each copy a hidden
    temporary, not yet synced); this process checks each against the registry and the
    batch, in the files' order, syncs and records each batch in one transaction, and
    renames the copies into place. A killed ingest leaves only temporaries (``butler
    verify --repair`` removes them) and complete files, recorded or recorded by the rerun.
    The workers load the mapper from ``Butler.mapper_source``.
    """
    if transfer not in TRANSFERS:
        raise IngestError(
            f"unknown transfer {transfer!r}; use one of {', '.join(repr(t) for t in TRANSFERS)}"
        )
    if jobs < 1:
        raise IngestError(f"jobs must be 1 or more, not {jobs}")
    rules = rules or rules_for(butler.mapper)
    name = rules.dataset_type
    butler.registry.register_dataset_type(name, butler.mapper.keys(name))
    reader = _Reader(
        rules,
        {t.name: dict(t.rows) for t in butler.mapper.spec.tables},
        frozenset(key.name for key in butler.mapper.spec.keys),
        sky=butler.plan(name).sky,
    )
    sources = [Path(p) for p in paths]
    batch = _Batch()
    staged: list[_Staged] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_offline())  # once, not per file
        outcomes: Iterator[_Staged | str | ButlerError | OSError]
        if jobs > 1 and len(sources) > 1:
            work = _Work(butler.mapper_source, _storage(butler).root, name, transfer, reader)
            placed = ordered_map(
                _start_worker, work, sources, jobs=jobs, unused=_discard, preload=_PRELOAD
            )
            stack.callback(placed.close)  # stops the workers, removes their unused copies
            outcomes = (_admit(butler, name, p, staged) for p in placed)
        else:
            outcomes = (_read_and_stage(butler, reader, s, transfer, staged) for s in sources)
        pairs = zip(sources, outcomes, strict=True)
        items = progress(pairs, f"ingest {name}", len(sources)) if show_progress else pairs
        try:
            for source, outcome in items:
                if isinstance(outcome, (ButlerError, OSError)):
                    batch.failed.append((str(source), _message(outcome, source)))
                    continue
                if isinstance(outcome, str):
                    batch.skipped.append((str(source), outcome))
                    continue
                staged.append(outcome)
                if len(staged) >= BATCH_FILES:
                    _commit_batch(butler, name, staged, transfer, batch)
                    staged = []
            _commit_batch(butler, name, staged, transfer, batch)
            staged = []
        finally:  # interrupted (KeyboardInterrupt, a registry gone): no temporary stays behind
            for waiting in staged:
                if waiting.temporary is not None:
                    _storage(butler).discard(waiting.temporary)
    return IngestReport(name, tuple(batch.ingested), tuple(batch.skipped), tuple(batch.failed))


def _read_and_stage(
    butler: Butler, reader: _Reader, source: Path, transfer: Transfer, staged: Sequence[_Staged]
) -> _Staged | str | ButlerError | OSError:
    """One file read, converted and written here (``jobs=1``): staged, skipped (why), or
    the error that failed it."""
    name = reader.rules.dataset_type
    try:
        reading = reader(source)
        if isinstance(reading, str):
            raise IngestError(reading)
        keys = butler.mapper.dataset_type(name).keys
        regions = tuple(v.pop(_REGION, None) for v in reading)  # sky (issue 17)
        data_ids = [_normalized(butler.mapper, reader.rules, keys, v) for v in reading]
        outcome = _stage(butler, name, source, data_ids, transfer, staged)
        return outcome if isinstance(outcome, str) else replace(outcome, regions=regions)
    except (ButlerError, OSError) as error:
        return error


def _admit(
    butler: Butler, name: str, placed: _Staged | str, staged: Sequence[_Staged]
) -> _Staged | str | ButlerError | OSError:
    """A file a worker wrote (or why it could not), checked against the registry and the
    batch here: staged, skipped (its temporary removed), or the error that failed it."""
    if isinstance(placed, str):
        return IngestError(placed)
    try:
        skipped = _admitted(butler, name, [r[0] for r in placed.rows], placed.done.path, staged)
    except (ButlerError, OSError) as error:
        _discard(placed)
        return error
    if skipped is not None:
        _discard(placed)
        return skipped
    return placed


def _discard(placed: _Staged | str) -> None:
    """Remove the temporary of a file written but not to be recorded."""
    if not isinstance(placed, str) and placed.temporary is not None:
        placed.temporary.unlink(missing_ok=True)


#: What ingest workers need, imported once by the fork server (a second or two each).
_PRELOAD = ("butler.ingest", "butler.loading", "astro_metadata_translator", "astropy.time")

#: Files recorded in one registry transaction, their copies fsynced together just before
#: (:meth:`LocalStorage.sync`: one ``syncfs`` from 64 files on).
BATCH_FILES = 256


def _message(error: ButlerError | OSError, source: Path) -> str:
    message = str(error) if isinstance(error, ButlerError) else _os_message(error)
    return message.removeprefix(f"{source}: ")


def _os_message(error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


@dataclass(frozen=True, slots=True)
class _Reader:
    """A file -> the key values its rules give, one dict per data ID (or why not, as text).

    Plain data, so that worker processes can run it (``jobs``).
    """

    rules: InstrumentRules
    tables: Mapping[str, Mapping[Any, Value]]
    keys: frozenset[str]
    translation: Translation = field(default_factory=Translation, compare=False)
    times: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False)
    sky: bool = False  # whether each data ID's sky region is read too (see regions.py)

    def __call__(self, source: Path) -> list[dict[str, Any]] | str:
        try:
            found = []
            for observation in read_observations(source, self.rules, self.translation):
                values = self.values(source, observation)
                if self.sky:
                    values[_REGION] = _region(observation)
                found.append(values)
            return found
        except ButlerError as error:
            return str(error)
        except OSError as error:
            return _os_message(error)

    def values(self, source: Path, observation: Observation) -> dict[str, Any]:
        rules = self.rules
        if observation.info is not None and observation.info.instrument not in rules.translated:
            raise IngestError(
                f"its header is from instrument {observation.info.instrument!r} (the "
                f"{observation.translator} translator), but this repository holds "
                f"{rules.instrument} data"
            )
        return _key_values(rules, observation, source, self.tables, set(self.keys), self.times)


#: Where a reading carries a data ID's sky region (popped before the data ID is normalized).
_REGION = "\0region"


def _region(observation: Observation) -> Any:
    """The observation's region, as the registry stores it; None if it has none (a header
    without sky is not an error, nor is one whose WCS cannot be understood)."""
    from .regions import observation_region

    try:
        return observation_region(observation.header, observation.info)
    except Exception:
        return None


def _normalized(
    mapper: Mapper, rules: InstrumentRules, dataset_keys: Sequence[str], values: dict[str, Any]
) -> DataId:
    try:
        data_id = mapper.normalize(values)
    except InvalidDataIdError as error:
        raise IngestError(f"its translated data ID {values} is not valid: {error}") from None
    missing = [k for k in dataset_keys if k not in data_id]
    if missing:
        raise IngestError(
            f"no rule gives {', '.join(missing)} of {rules.dataset_type!r}; add rules for them "
            f"to the ingest clause of `dataset {rules.dataset_type}` in the "
            f"{rules.instrument} policy"
        )
    return data_id


@dataclass(frozen=True, slots=True)
class _Staged:
    """A file ready to be recorded: its rows, and its written temporary (if it moves).

    ``temporary`` is None for a file recorded where it already is (``transfer=None``,
    or a file already at its path with the source's bytes: the copy of an ingest
    killed between placing it and recording it).
    """

    source: Path
    rows: tuple[tuple[Mapping[str, Value], str, int, str], ...]
    done: IngestedFile
    temporary: Path | None
    target: Path
    regions: tuple[Any, ...] = ()  # one per row: its sky region as stored, or None


def _stage(
    butler: Butler,
    name: str,
    source: Path,
    data_ids: list[DataId],
    transfer: Transfer,
    staged: Sequence[_Staged] = (),
    *,
    sync: bool = False,
) -> _Staged | str:
    """Write one file beside its templated path, not yet recorded; a reason if skipped.

    ``staged`` are the files of the batch not yet committed: a file mapping to one
    of their paths is skipped (the same data IDs) or refused, as if they were in.
    """
    records, relative = _records(butler.mapper, name, data_ids)
    skipped = _admitted(butler, name, records, relative, staged)
    if skipped is not None:
        return skipped
    return _locate(butler.mapper, _storage(butler), name, source, data_ids, transfer, sync=sync)


def _records(
    mapper: Mapper, name: str, data_ids: Sequence[DataId]
) -> tuple[list[dict[str, Value]], str]:
    """The registry records of a file's data IDs, and the one path they share."""
    keys = mapper.dataset_type(name).keys
    records = [{k: d[k] for k in keys} for d in data_ids]
    paths = {mapper.path(name, d) for d in data_ids}
    if len(paths) != 1:
        raise IngestError(f"its HDUs map to different paths: {', '.join(sorted(paths))}")
    (relative,) = paths
    return records, relative


def _admitted(
    butler: Butler,
    name: str,
    records: Sequence[Mapping[str, Value]],
    relative: str,
    staged: Sequence[_Staged],
) -> str | None:
    """None if a file's records may go in; why it is skipped (already in); IngestError if
    it clashes with what is recorded or staged."""
    found = [butler.registry.find(name, record) for record in records]
    for other in staged:
        if other.done.path == relative:
            found = [relative if (r, relative) in _recorded(other) else None for r in records]
            if not any(found):
                raise IngestError(f"{other.source} of this ingest maps to its path {relative}")
    if all(path is not None for path in found):
        return f"already ingested at {found[0]}"
    if any(path is not None for path in found):
        raise IngestError(f"some of its data IDs are already recorded (at {relative})")
    return None


def _locate(
    mapper: Mapper,
    storage: LocalStorage,
    name: str,
    source: Path,
    data_ids: list[DataId],
    transfer: Transfer,
    *,
    sync: bool = False,
) -> _Staged:
    """Write one file beside its templated path (no registry is asked: a worker can do it)."""
    records, relative = _records(mapper, name, data_ids)
    source = source.absolute()
    target = storage.checked(relative)
    in_place = _same_file(source, target, transfer)
    if transfer is None or in_place:
        stored = relative if in_place else _inside(storage.root, source)
        sums = file_checksum(target if in_place else source)
        rows = tuple((r, stored, sums.size, sums.value) for r in records)
        return _Staged(
            source, rows, IngestedFile(str(source), stored, tuple(data_ids)), None, target
        )
    if target.exists() or target.is_symlink():
        raise IngestError(
            f"a file with no record is already at {relative!r}; `butler verify` lists it and "
            "`butler index` registers it"
        )
    file: FileChecksum
    if transfer == "copy":
        temporary, file = storage.write_stream(target, copier(source), sync=sync)
    else:
        temporary = storage.write(target, file_writer(source, transfer), sync=sync)
        file = file_checksum(temporary)
    rows = tuple((r, relative, file.size, file.value) for r in records)
    return _Staged(
        source, rows, IngestedFile(str(source), relative, tuple(data_ids)), temporary, target
    )


@dataclass(frozen=True, slots=True)
class _Work:
    """What an ingest worker process needs (pickled to it once): it reads, converts and
    writes files, and the parent records them."""

    mapper: str  # what it is loaded from (Butler.mapper_source)
    root: Path
    name: str
    transfer: Transfer
    reader: _Reader


def _start_worker(work: _Work) -> Callable[[Path], _Staged | str]:
    """A worker's set-up (offline, the mapper built once); its work on one file."""
    from .loading import load_mapper

    _offline_worker()
    mapper, storage = load_mapper(work.mapper), LocalStorage(work.root)
    keys = mapper.dataset_type(work.name).keys
    rules = work.reader.rules

    def place(source: Path) -> _Staged | str:
        try:
            reading = work.reader(source)
            if isinstance(reading, str):
                return reading
            regions = tuple(v.pop(_REGION, None) for v in reading)  # sky (issue 17)
            data_ids = [_normalized(mapper, rules, keys, v) for v in reading]
            staged = _locate(mapper, storage, work.name, source, data_ids, work.transfer)
        except (ButlerError, OSError) as error:
            return _message(error, source)
        plain = tuple(DataId(dict(d)) for d in staged.done.data_ids)  # no mapper in a pickle
        done = IngestedFile(staged.done.source, staged.done.path, plain)
        return _Staged(staged.source, staged.rows, done, staged.temporary, staged.target, regions)

    return place


def _recorded(staged: _Staged) -> list[tuple[Mapping[str, Value], str]]:
    return [(row[0], row[1]) for row in staged.rows]


def _same_file(source: Path, target: Path, transfer: Transfer) -> bool:
    """Whether the file at ``target`` is ``source``, or (copied) holds the same bytes.

    An ingest killed after placing a file but before recording it leaves such a
    file; the rerun records it instead of refusing it as a file in the way.
    """
    try:
        if not target.exists():
            return False
        if target.resolve() == source.resolve() or os.path.samefile(source, target):
            return True
    except OSError:
        return False
    if transfer != "copy" or target.stat().st_size != source.stat().st_size:
        return False
    return file_checksum(target) == file_checksum(source)


def _commit(butler: Butler, name: str, staged: Sequence[_Staged], transfer: Transfer) -> None:
    """Record staged files in one transaction, renaming each into place just before the commit.

    A failure records none of them and leaves none of their files (nor temporaries).
    """
    from .regions import rows
    from .registry import new_dataset_id

    registry, storage = butler.registry, _storage(butler)
    published: list[Path] = []
    records = [row for s in staged for row in s.rows]
    ids = [new_dataset_id() for _ in records]
    found = [r for s in staged for r in (s.regions or (None,) * len(s.rows))]
    try:
        with registry.transaction():
            registry.insert_many(name, records, dataset_ids=ids)
            if any(r is not None for r in found):  # sky regions (issue 17)
                registry.record_regions(name, rows(zip(ids, found, strict=True)))
            for file in staged:
                if file.temporary is not None:
                    storage.publish(file.temporary, file.target)
                    published.append(file.target)
    except BaseException:
        for file in staged:
            if file.target in published:
                storage.discard(file.target)
            elif file.temporary is not None:
                storage.discard(file.temporary)
        raise
    if transfer == "move":
        for file in staged:
            if file.done.path != _inside_or_none(butler.root, file.source):
                file.source.unlink(missing_ok=True)


def _inside_or_none(root: Path, source: Path) -> str | None:
    try:
        return source.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _commit_batch(
    butler: Butler, name: str, staged: list[_Staged], transfer: Transfer, batch: _Batch
) -> None:
    """Fsync a batch's copies at once and record them in one transaction.

    If that fails (a concurrent ingest recorded one of them, a file appeared in the
    way), each file is placed again on its own, so that only the one at fault fails.
    """
    if not staged:
        return
    written = [s.temporary for s in staged if s.temporary is not None]
    try:
        _storage(butler).sync(written)
        _commit(butler, name, staged, transfer)
    except (ButlerError, OSError):
        for file in staged:
            try:
                outcome = _place(
                    butler, name, file.source, list(file.done.data_ids), transfer, file.regions
                )
            except (ButlerError, OSError) as error:
                batch.failed.append((str(file.source), _message(error, file.source)))
                continue
            if isinstance(outcome, str):
                batch.skipped.append((str(file.source), outcome))
            else:
                batch.ingested.append(outcome)
        return
    batch.ingested.extend(s.done for s in staged)


def _place(
    butler: Butler,
    name: str,
    source: Path,
    data_ids: list[DataId],
    transfer: Transfer,
    regions: tuple[Any, ...] = (),
) -> IngestedFile | str:
    """Put one file at its templated path and record its data IDs; a reason if skipped."""
    staged = _stage(butler, name, source, data_ids, transfer, sync=True)
    if isinstance(staged, str):
        return staged
    staged = replace(staged, regions=regions)
    _commit(butler, name, [staged], transfer)
    return staged.done


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
