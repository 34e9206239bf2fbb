"""Calibrations: certify validity ranges and find the calibration valid for an observation.

    butler.certify("bias", {"calibDate": "2024-03-01", "detector": 3}, "2024-03-01T12:00")
    butler.get("bias", visit=1042, detector=3)  # the bias valid when visit 1042 was taken
    butler.get("bias", visit=1042, detector=3, as_of="2024-04-01")  # as the registry stood then

A calibration dataset type (``calibration`` in a policy) declares its ``match``
keys, the date or datetime key its validity is checked against (``valid by``)
and the observation dataset type that key is read from (``from raw``). A lookup:

1. takes the observation's time from the data ID if it holds the ``valid by``
   key, else from the registry's record of the observation dataset type that
   matches the data ID (as it does any match key the data ID lacks);
2. selects the certifications with the same match-key values whose valid range
   ``[valid_from, valid_to)`` contains that time, as the registry stood at
   ``as_of`` (recorded time, UTC; default: now);
3. returns the one found; several are an :class:`AmbiguousCalibrationError`
   unless the policy's ``resolve latest`` picks the latest certified; none is a
   :class:`CalibrationNotFoundError` naming the nearest ranges before and after.

Valid times are naive datetimes in the validity key's time scale (a date key's
day starts at midnight); recorded times are naive UTC. The storage is
:mod:`butler.registry._calibrations`.
"""

from __future__ import annotations

import bisect
import datetime
import operator
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .dataid import DataId, format_data_id
from .errors import (
    AmbiguousCalibrationError,
    AmbiguousDataIdError,
    ButlerError,
    CalibrationNotFoundError,
    InvalidDataIdError,
    ReadOnlyError,
)
from .normalize import to_datetime
from .registry._calibrations import (
    Certification,
    CertificationStore,
    encode_match,
)
from .spec import CalibrationSpec, DatasetTypeSpec, Value

if TYPE_CHECKING:
    from .butler import Butler
    from .mapper import Mapper
    from .resolved import Plan

__all__ = [
    "CalibrationRef",
    "Calibrations",
    "Certification",
    "for_butler",
    "plot_timeline",
    "recorded_time",
    "timeline",
    "timeline_figure",
    "valid_time",
]

#: How many candidates an error lists.
CANDIDATE_LIMIT = 10
#: Most calibration data IDs a lookup manager remembers the normalized form of.
_MEMO = 10_000

_MANAGERS: weakref.WeakKeyDictionary[Butler, Calibrations] = weakref.WeakKeyDictionary()


def for_butler(butler: Butler) -> Calibrations:
    """The calibration manager of a Butler (one per Butler, made on first use)."""
    manager = _MANAGERS.get(butler)
    if manager is None:
        manager = _MANAGERS[butler] = Calibrations(butler)
    return manager


# ---- times ---------------------------------------------------------------------------------


def valid_time(
    value: object, scale: str | None = None, what: str = "valid time"
) -> datetime.datetime:
    """A valid-time instant: a naive datetime in ``scale``.

    Accepts a datetime (naive: already in ``scale``; aware: converted), a date
    (its midnight), an ISO 8601 string, or a scalar astropy ``Time``.
    """
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return datetime.datetime(value.year, value.month, value.day)
    if isinstance(value, str) and len(value) == 10:
        try:
            return valid_time(datetime.date.fromisoformat(value), scale, what)
        except ValueError:
            pass
    return to_datetime(what, scale, value)


def recorded_time(value: object, what: str = "as_of") -> datetime.datetime:
    """A recorded-time instant (naive UTC) from a datetime, date, ISO string or astropy Time."""
    return valid_time(value, "utc", what)


def _fmt(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "…"
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


_format_data_id = format_data_id


# ---- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationRef:
    """What a lookup found: the calibration, its certification and how it was chosen."""

    dataset_type: str
    data_id: DataId
    path: str
    certification: Certification
    observation: DataId
    time: datetime.datetime
    rule: str
    as_of: datetime.datetime | None = None

    def __str__(self) -> str:
        return (
            f"{self.dataset_type} {_format_data_id(self.data_id)} at {self.path!r} "
            f"(certification {self.certification.describe()}; {self.rule})"
        )


@dataclass(frozen=True)
class _Observation:
    """An observation's validity time and match values, and where they came from.

    ``missing`` names the keys read from ``record``, the first record of the
    observation dataset type that matched; none were when the data ID held them
    all. The words for messages are made only when a message needs them.
    """

    time: datetime.datetime
    match: dict[str, Value]
    valid_by: str
    observation_type: str = ""
    missing: tuple[str, ...] = ()
    record: Mapping[str, Value] | None = None
    bulk: bool = False

    @property
    def source(self) -> str:
        """Where the time and match values came from, in words."""
        if self.bulk:
            return "bulk"
        if self.record is None:
            return f"{self.valid_by} given in the data ID"
        return (
            f"{', '.join(self.missing)} from the {self.observation_type!r} record "
            f"{_format_data_id(self.record)}"
        )


class _Group:
    """The certifications of one match value, sorted for interval lookups (bulk)."""

    __slots__ = ("ends", "rows", "starts")

    def __init__(self, rows: list[Certification]) -> None:
        rows.sort(key=lambda r: (r.valid_from, r.id))
        self.rows = rows
        self.starts = [r.valid_from for r in rows]
        # ends[i]: the latest valid_to among rows[:i + 1] (None: open-ended)
        self.ends: list[datetime.datetime | None] = []
        latest: datetime.datetime | None = datetime.datetime.min
        for row in rows:
            if latest is not None and (row.valid_to is None or row.valid_to > latest):
                latest = row.valid_to
            self.ends.append(latest)

    def at(self, moment: datetime.datetime) -> list[Certification]:
        found = []
        index = bisect.bisect_right(self.starts, moment) - 1
        while index >= 0:
            end = self.ends[index]
            if end is not None and end <= moment:
                break
            row = self.rows[index]
            if row.valid_to is None or moment < row.valid_to:
                found.append(row)
            index -= 1
        return found


_ONLY = "the only valid certification"


@dataclass(frozen=True)
class _Shape:
    """How data IDs with one set of keys give a lookup its time and match values.

    ``complete``: they hold the validity key and every match key. ``partial``
    gets their values of the observation type's keys, with which records are
    indexed (None: they hold none). A record supplies the validity time if
    ``time_from_record``, and the match values the data ID lacks.
    """

    complete: bool
    partial: Callable[[Mapping[str, Value]], object] | None
    valid_by: str
    time_from_record: bool
    match: tuple[tuple[str, bool], ...]  # each match key, and whether a record supplies it
    given_match: Callable[[Mapping[str, Value]], tuple[Value, ...]] | None  # all in the data ID

    def time(self, data_id: Mapping[str, Value], record: Mapping[str, Value]) -> Value:
        return (record if self.time_from_record else data_id)[self.valid_by]

    def match_values(
        self, data_id: Mapping[str, Value], record: Mapping[str, Value]
    ) -> tuple[Value, ...]:
        if self.given_match is not None:
            return self.given_match(data_id)
        return tuple(record[key] if recorded else data_id[key] for key, recorded in self.match)


class _Shapes:
    """The :class:`_Shape` of each set of data ID keys in one bulk lookup, made once each."""

    def __init__(self, calibration: CalibrationSpec, keys: tuple[str, ...]) -> None:
        self.calibration = calibration
        self.keys = keys  # the observation type's keys
        self._shapes: dict[tuple[str, ...], _Shape] = {}
        self._getters: dict[tuple[str, ...], Callable[[Mapping[str, Value]], object]] = {}

    def of(self, data_id: DataId) -> _Shape:
        names = tuple(data_id)
        shape = self._shapes.get(names)
        if shape is None:
            shape = self._shapes[names] = self._shape(set(names))
        return shape

    def _shape(self, names: set[str]) -> _Shape:
        partial = tuple(k for k in self.keys if k in names)
        getter = None
        if partial:  # one getter per set of keys: the getter is part of the index's keys
            getter = self._getters.setdefault(partial, operator.itemgetter(*partial))
        calibration = self.calibration
        match = tuple((k, k not in names) for k in calibration.match)
        given = all(k in names for k in calibration.match)
        return _Shape(
            given and calibration.valid_by in names,
            getter,
            calibration.valid_by,
            calibration.valid_by not in names,
            match,
            _values_getter(calibration.match) if given else None,
        )


def _values_getter(keys: tuple[str, ...]) -> Callable[[Mapping[str, Value]], tuple[Value, ...]]:
    """The values of ``keys`` in a mapping, as a tuple (even of one key)."""
    if len(keys) == 1:
        (key,) = keys
        return lambda mapping: (mapping[key],)
    getter: Callable[[Mapping[str, Value]], tuple[Value, ...]] = operator.itemgetter(*keys)
    return getter


@dataclass(frozen=True)
class _Seen:
    """The validity time and match values of each data ID of a bulk lookup, in order.

    ``settled`` holds, by position, the observations :meth:`Calibrations._observation`
    made (they know where their values came from); the others came from the
    data ID or one record read in bulk.
    """

    times: list[datetime.datetime]
    matches: list[tuple[Value, ...]]
    settled: dict[int, _Observation]

    def add_settled(self, observation: _Observation) -> None:
        self.settled[len(self.times)] = observation
        self.times.append(observation.time)
        self.matches.append(tuple(observation.match.values()))

    def observation(self, i: int, calibration: CalibrationSpec) -> _Observation:
        """The ``i``-th observation, for a message."""
        settled = self.settled.get(i)
        if settled is not None:
            return settled
        match = dict(zip(calibration.match, self.matches[i], strict=True))
        return _Observation(self.times[i], match, calibration.valid_by, bulk=True)


class _Records:
    """Records of an observation type by index key: the one record of a key, unless several."""

    __slots__ = ("_one", "_several")

    def __init__(self) -> None:
        self._one: dict[object, dict[str, Value]] = {}
        self._several: set[object] = set()

    def add(self, key: object, record: dict[str, Value]) -> None:
        if key in self._one:
            self._several.add(key)
        else:
            self._one[key] = record

    def one(self, key: object) -> dict[str, Value] | None:
        """The only record of ``key``; None if there is none, or several."""
        return None if key in self._several else self._one.get(key)


class _MapperMemo:
    """Answers of one mapper that every lookup asks for again, remembered.

    A Butler replaces its mapper when a dataset type is registered at run time;
    :meth:`Calibrations._memo` then starts a new memo. The data IDs remembered
    are those of certified calibrations (few); past ``_MEMO`` they are forgotten.
    """

    __slots__ = ("_data_ids", "_keys", "mapper")

    def __init__(self, mapper: Mapper) -> None:
        self.mapper = mapper
        self._keys: dict[str, tuple[str, ...]] = {}
        self._data_ids: dict[tuple[tuple[str, Value], ...], DataId] = {}

    def keys(self, dataset_type: str) -> tuple[str, ...]:
        """The keys of a dataset type's data IDs, in order."""
        keys = self._keys.get(dataset_type)
        if keys is None:
            keys = self._keys[dataset_type] = tuple(self.mapper.keys(dataset_type))
        return keys

    def normalize(self, data_id: Mapping[str, Value]) -> DataId:
        """``mapper.normalize(data_id)``, for the registry's data IDs of calibrations."""
        items = tuple(data_id.items())
        normalized = self._data_ids.get(items)
        if normalized is None:
            if len(self._data_ids) >= _MEMO:
                self._data_ids.clear()
            normalized = self._data_ids[items] = self.mapper.normalize(data_id)
        return normalized


class Calibrations:
    """Certification and lookup of the calibration dataset types of one Butler."""

    def __init__(self, butler: Butler) -> None:
        self._butler = butler
        self.store = CertificationStore(butler.registry)
        self._scales = {key.name: key.scale for key in butler.mapper.spec.keys}
        self._mapper_memo = _MapperMemo(butler.mapper)

    def _memo(self) -> _MapperMemo:
        memo = self._mapper_memo
        if memo.mapper is not self._butler.mapper:
            memo = self._mapper_memo = _MapperMemo(self._butler.mapper)
        return memo

    # ---- policy ---------------------------------------------------------------------------

    def _calibration(self, dataset_type: str) -> tuple[Plan, CalibrationSpec]:
        plan = self._butler.plan(dataset_type)
        calibration = plan.spec.calibration
        if calibration is None:
            calibrations = [
                name
                for name in self._butler.dataset_types
                if self._butler.mapper.dataset_type(name).calibration is not None
            ]
            raise InvalidDataIdError(
                f"{dataset_type!r} is not a calibration of instrument {self._butler.mapper.name} "
                f"(its calibrations: {', '.join(calibrations) or 'none'}); only calibrations are "
                "certified and found by observation time"
            )
        return plan, calibration

    def scale(self, dataset_type: str) -> str | None:
        """The time scale of a calibration's validity key (None for dates)."""
        return self._scales.get(self._calibration(dataset_type)[1].valid_by)

    def rule(self, spec: DatasetTypeSpec) -> str:
        """The lookup rule of a calibration, in words."""
        calibration = spec.calibration
        assert calibration is not None
        scale = self._scales.get(calibration.valid_by)
        scale_text = f" ({scale})" if scale else ""
        resolve = (
            "of several valid, the latest certified wins (resolve latest)"
            if calibration.resolve == "latest"
            else "several valid is an error (no resolve rule)"
        )
        return (
            f"match {', '.join(calibration.match)}; valid by {calibration.valid_by}{scale_text} "
            f"from {calibration.observation!r}; {resolve}"
        )

    # ---- certification --------------------------------------------------------------------

    def _stored(self, plan: Plan, data_id: Mapping[str, object] | None) -> DataId:
        butler = self._butler
        normalized = butler.normalize(data_id, {})
        found = butler.find_dataset(plan, normalized)
        if found is None:
            raise CalibrationNotFoundError(
                f"no stored {plan.spec.name!r} with data ID {_format_data_id(normalized)} in "
                f"repository {butler.root}; put or ingest the calibration before certifying it"
            )
        if found.repository is not butler:
            raise ReadOnlyError(
                f"cannot certify {plan.spec.name!r} {_format_data_id(found.data_id)}: it is stored "
                f"in parent repository {found.repository.address}; certify it there"
            )
        return found.data_id

    def _match(
        self, calibration: CalibrationSpec, data_id: Mapping[str, Value]
    ) -> dict[str, Value]:
        missing = [k for k in calibration.match if k not in data_id]
        if missing:
            raise InvalidDataIdError(
                f"calibration data ID {_format_data_id(data_id)} lacks match key(s) "
                f"{', '.join(missing)}"
            )
        return {k: data_id[k] for k in calibration.match}

    def certify(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None,
        valid_from: object,
        valid_to: object = None,
        *,
        supersede: bool = False,
        source: str | None = None,
    ) -> Certification:
        """Certify a stored calibration as valid in ``[valid_from, valid_to)`` (None: open)."""
        self._butler.check_writeable(f"certify {dataset_type!r}")
        plan, calibration = self._calibration(dataset_type)
        scale = self._scales.get(calibration.valid_by)
        start = valid_time(valid_from, scale, "valid_from")
        end = None if valid_to is None else valid_time(valid_to, scale, "valid_to")
        complete = self._stored(plan, data_id)
        return self.store.certify(
            dataset_type,
            self._butler.restrict(plan, complete),
            self._match(calibration, complete),
            start,
            end,
            scale=scale,
            allow_overlap=calibration.resolve is not None,
            supersede=supersede,
            source=source,
        )

    def decertify(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None,
        valid_from: object = None,
        valid_to: object = None,
    ) -> list[Certification]:
        """Close a calibration's current certifications (or the part in a range); the closed."""
        self._butler.check_writeable(f"decertify {dataset_type!r}")
        plan, calibration = self._calibration(dataset_type)
        scale = self._scales.get(calibration.valid_by)
        start = None if valid_from is None else valid_time(valid_from, scale, "valid_from")
        end = None if valid_to is None else valid_time(valid_to, scale, "valid_to")
        complete = self._stored(plan, data_id)
        closed = self.store.decertify(
            dataset_type, self._butler.restrict(plan, complete), start, end
        )
        if not closed:
            raise CalibrationNotFoundError(
                f"{dataset_type!r} {_format_data_id(complete)} has no current certification"
                + (f" overlapping [{_fmt(start)}, {_fmt(end)})" if start or end else "")
                + "; nothing was decertified"
            )
        return closed

    def history(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        include_closed: bool = True,
    ) -> list[Certification]:
        """Every certification of a calibration type, optionally of one match value."""
        _, calibration = self._calibration(dataset_type)
        match = None
        if data_id:
            normalized = self._butler.normalize(data_id, {})
            match = self._match(calibration, normalized)
        moment = None if as_of is None else recorded_time(as_of)
        return self.store.history(dataset_type, match, as_of=moment, include_closed=include_closed)

    # ---- lookup ---------------------------------------------------------------------------

    def _observation(
        self, spec: DatasetTypeSpec, calibration: CalibrationSpec, given: DataId
    ) -> _Observation:
        valid_by = calibration.valid_by
        missing = tuple(k for k in (valid_by, *calibration.match) if k not in given)
        values: Mapping[str, Value] = given
        record = None
        if missing:
            record = self._record(spec, calibration, given, missing)
            values = {**record, **given}
        moment = valid_time(values[valid_by], self._scales.get(valid_by), valid_by)
        return _Observation(
            moment,
            {k: values[k] for k in calibration.match},
            valid_by,
            calibration.observation,
            missing,
            record,
        )

    def _record(
        self,
        spec: DatasetTypeSpec,
        calibration: CalibrationSpec,
        given: DataId,
        missing: Sequence[str],
    ) -> dict[str, Value]:
        """The first record of the observation type matching ``given``; the missing keys agree.

        CalibrationNotFoundError if none matches, AmbiguousDataIdError if the
        matching records disagree on a missing key's value.
        """
        butler = self._butler
        observation = calibration.observation
        keys = butler.mapper.keys(observation)
        partial = {k: v for k, v in given.items() if k in keys}
        rows = (
            butler.registry.complete(observation, partial, CANDIDATE_LIMIT + 1)
            if partial and butler.is_registered(observation)
            else []
        )
        if not rows:
            raise CalibrationNotFoundError(
                f"cannot find {spec.name!r} for data ID {_format_data_id(given)}: it lacks "
                f"{', '.join(missing)}, and no stored {observation!r} matches "
                f"{_format_data_id(partial)} to take "
                f"{'it' if len(missing) == 1 else 'them'} from; give "
                f"{', '.join(missing)} in the data ID, or the keys of the {observation!r} "
                f"observation ({', '.join(keys)})"
            )
        if len(rows) == 1:
            return rows[0]
        for key in missing:
            distinct = {row[key] for row in rows}
            if len(rows) > CANDIDATE_LIMIT and len(distinct) == 1:
                distinct = set(butler.registry.query_values(observation, key, partial))
            if len(distinct) > 1:
                shown = ", ".join(repr(v) for v in sorted(distinct, key=repr)[:CANDIDATE_LIMIT])
                raise AmbiguousDataIdError(
                    f"cannot find {spec.name!r} for data ID {_format_data_id(given)}: the "
                    f"{observation!r} records matching {_format_data_id(partial)} have "
                    f"several values of {key} ({shown}); add keys to choose one observation"
                )
        return rows[0]

    def _not_found(
        self,
        spec: DatasetTypeSpec,
        given: Mapping[str, Value],
        observation: _Observation,
        as_of: datetime.datetime | None,
    ) -> CalibrationNotFoundError:
        calibration = spec.calibration
        assert calibration is not None
        before, after = self.store.nearest(spec.name, observation.match, observation.time, as_of)
        scale = self._scales.get(calibration.valid_by)
        when = "now" if as_of is None else f"of {_fmt(as_of)} UTC"
        near = [
            "nearest before: " + (before.describe() if before else "none"),
            "nearest after: " + (after.describe() if after else "none"),
        ]
        return CalibrationNotFoundError(
            f"no {spec.name!r} calibration is valid for data ID {_format_data_id(given)}: "
            f"searched the certifications of {spec.name!r} with "
            f"{_format_data_id(observation.match)} for {calibration.valid_by} "
            f"{_fmt(observation.time)}{' ' + scale if scale else ''} ({observation.source}), "
            f"as the registry {self._butler.registry.url} stands {when};\n  "
            + "\n  ".join(near)
            + "\ncertify one for this time (`butler certify`), or see `butler calibs`"
        )

    def _choose(
        self,
        spec: DatasetTypeSpec,
        given: Mapping[str, Value],
        observation: _Observation,
        candidates: list[Certification],
        as_of: datetime.datetime | None,
    ) -> tuple[Certification, str]:
        calibration = spec.calibration
        assert calibration is not None
        if not candidates:
            raise self._not_found(spec, given, observation, as_of)
        if len(candidates) == 1:
            return candidates[0], "the only valid certification"
        if calibration.resolve == "latest":
            chosen = max(candidates, key=lambda r: (r.recorded_from, r.id))
            return chosen, f"latest certified of {len(candidates)} valid (resolve latest)"
        shown = "\n".join(f"  {row.describe()}" for row in candidates[:CANDIDATE_LIMIT])
        raise AmbiguousCalibrationError(
            f"{len(candidates)} {spec.name!r} calibrations are valid for data ID "
            f"{_format_data_id(given)} at {calibration.valid_by} {_fmt(observation.time)} and "
            f"the policy declares no rule to pick one (e.g. `resolve latest`):\n{shown}\n"
            "decertify all but one"
        )

    def _ref(
        self,
        spec: DatasetTypeSpec,
        given: DataId,
        observation: _Observation,
        chosen: Certification,
        rule: str,
        as_of: datetime.datetime | None,
    ) -> CalibrationRef:
        data_id = self._memo().normalize(chosen.data_id)
        return CalibrationRef(
            spec.name, data_id, chosen.path, chosen, given, observation.time, rule, as_of
        )

    def find(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        **keys: object,
    ) -> CalibrationRef:
        """The calibration valid for an observation, as the registry stood ``as_of``."""
        plan, calibration = self._calibration(dataset_type)
        given = self._butler.normalize(data_id, keys)
        return self._find(plan.spec, calibration, given, as_of)

    def _find(
        self, spec: DatasetTypeSpec, calibration: CalibrationSpec, given: DataId, as_of: object
    ) -> CalibrationRef:
        """:meth:`find` for a normalized data ID."""
        moment = None if as_of is None else recorded_time(as_of)
        observation, chosen, rule = self._pick(spec, calibration, given, moment)
        return self._ref(spec, given, observation, chosen, rule, moment)

    def _pick(
        self,
        spec: DatasetTypeSpec,
        calibration: CalibrationSpec,
        given: DataId,
        as_of: datetime.datetime | None,
    ) -> tuple[_Observation, Certification, str]:
        """The observation of a normalized data ID, the certification chosen for it, and why."""
        found = self._observed(spec, calibration, given, as_of)
        if found is None:
            observation = self._observation(spec, calibration, given)
            candidates = self.store.candidates(
                spec.name, observation.match, observation.time, as_of
            )
        else:
            observation, candidates = found
        chosen, rule = self._choose(spec, given, observation, candidates, as_of)
        return observation, chosen, rule

    def _observed(
        self,
        spec: DatasetTypeSpec,
        calibration: CalibrationSpec,
        given: DataId,
        as_of: datetime.datetime | None,
    ) -> tuple[_Observation, list[Certification]] | None:
        """The observation and its candidates in one statement, when that can be done.

        It can when the data ID lacks only the validity time, and exactly one
        record of the observation type matches it (see
        :meth:`CertificationStore.observed_candidates`). Else None:
        :meth:`_observation` then :meth:`CertificationStore.candidates` answer,
        and say what is wrong if anything is.
        """
        valid_by = calibration.valid_by
        if valid_by in given or any(k not in given for k in calibration.match):
            return None
        observation_type = calibration.observation
        partial = {k: given[k] for k in self._memo().keys(observation_type) if k in given}
        if not partial or not self._butler.is_registered(observation_type):
            return None
        match = {k: given[k] for k in calibration.match}
        found = self.store.observed_candidates(
            spec.name, observation_type, valid_by, partial, match, as_of
        )
        if found is None:
            return None
        record, candidates = found
        moment = valid_time(record[valid_by], self._scales.get(valid_by), valid_by)
        observation = _Observation(moment, match, valid_by, observation_type, (valid_by,), record)
        return observation, candidates

    def find_many(
        self,
        dataset_type: str,
        data_ids: Iterable[Mapping[str, object]],
        *,
        as_of: object = None,
        strict: bool = True,
    ) -> list[CalibrationRef | None]:
        """:meth:`find` for many observations, in order, with one certification query.

        Observation records are read with one query per 500 observations. With
        ``strict=False`` an observation with no valid calibration gives None
        instead of raising; ambiguity always raises.
        """
        plan, calibration = self._calibration(dataset_type)
        spec = plan.spec
        moment = None if as_of is None else recorded_time(as_of)
        normalize = self._butler.normalize
        given = [normalize(d, {}) for d in data_ids]
        seen = self._observations(spec, calibration, given)
        if not given:
            return []
        texts = {
            values: encode_match(dict(zip(calibration.match, values, strict=True)))
            for values in set(seen.matches)
        }
        found = self.store.bulk(
            dataset_type, texts.values(), min(seen.times), max(seen.times), moment
        )
        groups = {text: _Group(rows) for text, rows in found.items()}
        memo = self._memo()
        normalized: dict[int, DataId] = {}  # by certification id
        results: list[CalibrationRef | None] = []
        for i, (data_id, time, values) in enumerate(
            zip(given, seen.times, seen.matches, strict=True)
        ):
            candidates = groups[texts[values]].at(time)
            if len(candidates) == 1:
                chosen, rule = candidates[0], _ONLY
            elif not candidates and not strict:
                results.append(None)
                continue
            else:
                observation = seen.observation(i, calibration)
                chosen, rule = self._choose(spec, data_id, observation, candidates, moment)
            calibration_id = normalized.get(chosen.id)
            if calibration_id is None:
                calibration_id = normalized[chosen.id] = memo.normalize(chosen.data_id)
            results.append(
                CalibrationRef(
                    spec.name,
                    calibration_id,
                    chosen.path,
                    chosen,
                    data_id,
                    time,
                    rule,
                    moment,
                )
            )
        return results

    def _observations(
        self, spec: DatasetTypeSpec, calibration: CalibrationSpec, given: Sequence[DataId]
    ) -> _Seen:
        """The validity time and match values of each data ID; records read in bulk.

        A data ID its records do not settle (none matches, or several) gets
        :meth:`_observation`, which says why, or settles it as a single lookup would.
        """
        valid_by = calibration.valid_by
        scale = self._scales.get(valid_by)
        shapes = _Shapes(calibration, self._memo().keys(calibration.observation))
        each = [shapes.of(data_id) for data_id in given]
        records = self._records(calibration, given, each, shapes.keys)
        seen = _Seen([], [], {})
        for data_id, shape in zip(given, each, strict=True):
            record: Mapping[str, Value] = data_id
            if not shape.complete:
                getter = shape.partial
                found = None if getter is None else records.one((getter, getter(data_id)))
                if found is None:  # none, or several: _observation settles it or says why
                    seen.add_settled(self._observation(spec, calibration, data_id))
                    continue
                record = found
            seen.times.append(valid_time(shape.time(data_id, record), scale, valid_by))
            seen.matches.append(shape.match_values(data_id, record))
        return seen

    def _records(
        self,
        calibration: CalibrationSpec,
        given: Sequence[DataId],
        shapes: Sequence[_Shape],
        keys: tuple[str, ...],
    ) -> _Records:
        """Records of the observation type for the data IDs lacking a needed key.

        Read by the first key all of those data IDs hold; indexed by each of
        their shapes' ``partial`` getter and its values.
        """
        butler = self._butler
        observation_type = calibration.observation
        records = _Records()
        lacking = [d for d, shape in zip(given, shapes, strict=True) if not shape.complete]
        if not lacking or not butler.is_registered(observation_type):
            return records
        first = [k for k in keys if all(k in d for d in lacking)]
        if not first:
            return records
        by = first[0]
        getters = {shape.partial for shape in shapes if not shape.complete and shape.partial}
        for row in self.store.observation_rows(observation_type, by, [d[by] for d in lacking]):
            for getter in getters:
                records.add((getter, getter(row)), row)
        return records

    def explain(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        **keys: object,
    ) -> str:
        """Each step of a lookup: the rule, the observation, the candidates, the pick."""
        plan, calibration = self._calibration(dataset_type)
        spec = plan.spec
        lines = [
            f"calibration {dataset_type!r} of instrument {self._butler.mapper.name}",
            f"rule: {self.rule(spec)}",
        ]
        try:
            given = self._butler.normalize(data_id, keys)
            lines.append(f"data ID: {_format_data_id(given)}")
            moment = None if as_of is None else recorded_time(as_of)
            lines.append(
                "as of: now (current certifications)"
                if moment is None
                else f"as of: {_fmt(moment)} UTC (certifications the registry held then)"
            )
            observation = self._observation(spec, calibration, given)
            scale = self._scales.get(calibration.valid_by)
            lines.append(
                f"observation time: {calibration.valid_by} = {_fmt(observation.time)}"
                f"{' ' + scale if scale else ''} ({observation.source})"
            )
            lines.append(f"match: {_format_data_id(observation.match)}")
            candidates = self.store.candidates(
                dataset_type, observation.match, observation.time, moment
            )
            lines.append(f"valid certifications: {len(candidates)}")
            lines += [f"  {row.describe()}" for row in candidates[:CANDIDATE_LIMIT]]
            chosen, rule = self._choose(spec, given, observation, candidates, moment)
            lines.append(f"chosen: #{chosen.id} ({rule})")
            lines.append(f"stored at {chosen.path!r}")
        except ButlerError as error:
            lines.append(f"{type(error).__name__}: {error}")
        return "\n".join(lines)

    def locate(
        self, plan: Plan, data_id: Mapping[str, object] | None, keys: Mapping[str, object]
    ) -> tuple[Plan, DataId, str] | None:
        """For ``Butler._locate``: the calibration for an observation's data ID.

        None when the data ID names the calibration itself (all of its own keys
        and no ``as_of``): the caller finds it like any dataset.
        """
        rest = dict(keys)
        as_of = rest.pop("as_of", None)
        calibration = plan.spec.calibration
        assert calibration is not None
        given = self._butler.normalize(data_id, rest)
        if as_of is None and plan.keys.issubset(given):
            return None
        moment = None if as_of is None else recorded_time(as_of)
        _, chosen, _ = self._pick(plan.spec, calibration, given, moment)
        return plan, self._memo().normalize(chosen.data_id), chosen.path


# ---- pictures ------------------------------------------------------------------------------


def timeline(history: Sequence[Certification], *, include_closed: bool = True) -> str:
    """A text table of certifications, grouped by match value, in valid-time order."""
    rows = [r for r in history if include_closed or r.current]
    if not rows:
        return "(no certifications)"
    header = ("match", "id", "valid from", "valid to", "calibration", "certified (UTC)", "state")
    table = [header]
    # match values in their own order (ccd 2 before ccd 10), then by valid time
    for row in sorted(rows, key=lambda r: (tuple(r.match.values()), r.valid_from, r.id)):
        state = "current" if row.current else f"{row.closed_by} {_fmt(row.recorded_to)}"
        table.append(
            (
                format_data_id(row.match),
                f"#{row.id}",
                _fmt(row.valid_from),
                _fmt(row.valid_to),
                format_data_id(row.data_id),
                _fmt(row.recorded_from),
                state,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def plot_timeline(history: Sequence[Certification], path: str, title: str = "") -> None:
    """Draw certifications as bars (see :func:`timeline_figure`) into an image file.

    Needs matplotlib, the ``plot`` extra (``pip install -e '.[plot]'`` in a checkout).
    """
    timeline_figure(history, title).savefig(path, dpi=100)


def timeline_figure(history: Sequence[Certification], title: str = "") -> Any:
    """A matplotlib ``Figure`` of certifications: one row per match value, a bar each.

    Rows are in the order of :func:`timeline` (first at the top), labelled with
    the match values. Current certifications are blue bars, each labelled with
    what tells it apart (its other keys, usually ``calibDate``) where that fits;
    closed ones (superseded or decertified) are thin grey hatched bars below
    them; an open-ended one runs to the right edge and ends in an arrow. Uses
    no pyplot state: safe in a notebook or a server.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ButlerError(
            "plotting calibrations needs matplotlib, the 'plot' extra: in a checkout, "
            "`pip install -e '.[plot]'` (or `.venv/bin/pip install matplotlib`); where butler "
            "was installed as a package, `pip install 'butler[plot]'`"
        ) from None
    import matplotlib.dates as mdates
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    def _num(moment: datetime.datetime) -> float:
        return float(mdates.date2num(moment))

    # one row per match value, in the values' own order (ccd 2 before ccd 10)
    firsts = {encode_match(r.match): tuple(r.match.values()) for r in history}
    rows = sorted(firsts, key=firsts.__getitem__)
    names = {encode_match(r.match): format_data_id(r.match) for r in history}
    starts = [r.valid_from for r in history]
    ends = [r.valid_to for r in history if r.valid_to is not None]
    low = min(starts, default=datetime.datetime(2000, 1, 1))
    high = max([*ends, *starts], default=low)
    # room on the right for the open-ended bars that start last (the ones in use now)
    pad = max((high - low) * 0.05, datetime.timedelta(days=1))
    left, right = _num(low - pad), _num(high + 4 * pad)
    figure = Figure(figsize=(10, 1.4 + 0.35 * max(len(rows), 1)))
    axes = figure.add_subplot()
    labels: list[tuple[float, float, int, str]] = []  # (x, width, row, text) of current bars
    for record in history:
        y = rows.index(encode_match(record.match))
        start = _num(record.valid_from)
        end = right if record.valid_to is None else _num(record.valid_to)
        if record.current:
            axes.barh(
                y,
                end - start,
                left=start,
                height=0.5,
                color="tab:blue",
                edgecolor="white",
                linewidth=1.0,
            )
            labels.append((start, end - start, y, _bar_text(record)))
            if record.valid_to is None:
                axes.plot(right, y, marker=">", color="tab:blue", markersize=7, clip_on=False)
        else:
            axes.barh(
                y + 0.32,
                end - start,
                left=start,
                height=0.14,
                color="lightgrey",
                edgecolor="grey",
                hatch="////",
                linewidth=0.5,
            )
    axes.set_yticks(range(len(rows)), [names[key] for key in rows])
    axes.set_ylim(len(rows) - 0.4, -0.6)  # first row at the top, as in the text timeline
    axes.set_xlim(left, right)
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    dates = mdates.ConciseDateFormatter(locator)
    dates.offset_formats[2] = "%Y"  # ticks name months and days: the year is enough
    axes.xaxis.set_major_formatter(dates)
    axes.grid(axis="x", color="0.9")
    axes.set_axisbelow(True)
    axes.set_xlabel("valid time")
    axes.legend(
        handles=[
            Patch(facecolor="tab:blue", edgecolor="white", label="current"),
            Patch(
                facecolor="lightgrey",
                edgecolor="grey",
                hatch="////",
                label="closed (superseded or decertified)",
            ),
            Line2D([], [], color="tab:blue", marker=">", linestyle="", label="open-ended"),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),  # above the axes, beside the title: never over a bar
        ncol=3,
        frameon=False,
        fontsize="small",
    )
    axes.set_title(title or "certifications", loc="left")
    figure.tight_layout()
    # label the bars wide enough for their text (about 6 pixels a character at this size)
    pixels = figure.get_figwidth() * figure.dpi * axes.get_position().width / (right - left)
    for start, width, y, text in labels:
        if width * pixels > 6 * len(text) + 8:
            axes.text(start + 4 / pixels, y, text, va="center_baseline", fontsize=8, color="white")
    return figure


def _bar_text(record: Certification) -> str:
    """What tells a certification apart from others of its row: its non-match keys."""
    rest = [v for k, v in record.data_id.items() if k not in record.match]
    return ", ".join(v.isoformat() if isinstance(v, datetime.date) else str(v) for v in rest)
