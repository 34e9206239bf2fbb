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
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .dataid import DataId
from .errors import (
    AmbiguousCalibrationError,
    AmbiguousDataIdError,
    ButlerError,
    CalibrationNotFoundError,
    InvalidDataIdError,
    ReadOnlyError,
)
from .normalize import _to_datetime
from .registry._calibrations import (
    Certification,
    CertificationStore,
    encode_match,
    format_values,
)
from .spec import CalibrationSpec, DatasetTypeSpec, Value

if TYPE_CHECKING:
    from .butler import Butler, _Plan

__all__ = [
    "CalibrationRef",
    "Calibrations",
    "Certification",
    "for_butler",
    "recorded_time",
    "valid_time",
]

#: How many candidates an error lists.
CANDIDATE_LIMIT = 10

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
    return _to_datetime(what, scale, value)


def recorded_time(value: object, what: str = "as_of") -> datetime.datetime:
    """A recorded-time instant (naive UTC) from a datetime, date, ISO string or astropy Time."""
    return valid_time(value, "utc", what)


def _fmt(moment: datetime.datetime | None) -> str:
    if moment is None:
        return "…"
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


_format_data_id = format_values


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
    """An observation's validity time and match values, and where they came from."""

    time: datetime.datetime
    match: dict[str, Value]
    source: str


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


class Calibrations:
    """Certification and lookup of the calibration dataset types of one Butler."""

    def __init__(self, butler: Butler) -> None:
        self._butler = butler
        self.store = CertificationStore(butler.registry)
        self._scales = {key.name: key.scale for key in butler.mapper.spec.keys}

    # ---- policy ---------------------------------------------------------------------------

    def _calibration(self, dataset_type: str) -> tuple[_Plan, CalibrationSpec]:
        plan = self._butler._plan(dataset_type)
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

    def _stored(self, plan: _Plan, data_id: Mapping[str, object] | None) -> DataId:
        butler = self._butler
        normalized = butler._normalize(data_id, {})
        found = butler._find(plan, normalized)
        if found is None:
            raise CalibrationNotFoundError(
                f"no stored {plan.spec.name!r} with data ID {_format_data_id(normalized)} in "
                f"repository {butler.root}; put or ingest the calibration before certifying it"
            )
        if found.repository is not butler:
            raise ReadOnlyError(
                f"cannot certify {plan.spec.name!r} {_format_data_id(found.data_id)}: it is stored "
                f"in parent repository {found.repository.root}; certify it there"
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
        self._butler._check_writeable(f"certify {dataset_type!r}")
        plan, calibration = self._calibration(dataset_type)
        scale = self._scales.get(calibration.valid_by)
        start = valid_time(valid_from, scale, "valid_from")
        end = None if valid_to is None else valid_time(valid_to, scale, "valid_to")
        complete = self._stored(plan, data_id)
        return self.store.certify(
            dataset_type,
            self._butler._restrict(plan, complete),
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
        self._butler._check_writeable(f"decertify {dataset_type!r}")
        plan, calibration = self._calibration(dataset_type)
        scale = self._scales.get(calibration.valid_by)
        start = None if valid_from is None else valid_time(valid_from, scale, "valid_from")
        end = None if valid_to is None else valid_time(valid_to, scale, "valid_to")
        complete = self._stored(plan, data_id)
        closed = self.store.decertify(
            dataset_type, self._butler._restrict(plan, complete), start, end
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
            normalized = self._butler._normalize(data_id, {})
            match = self._match(calibration, normalized)
        moment = None if as_of is None else recorded_time(as_of)
        return self.store.history(dataset_type, match, as_of=moment, include_closed=include_closed)

    # ---- lookup ---------------------------------------------------------------------------

    def _observation(
        self, spec: DatasetTypeSpec, calibration: CalibrationSpec, given: DataId
    ) -> _Observation:
        butler = self._butler
        needed = [calibration.valid_by, *calibration.match]
        missing = [k for k in needed if k not in given]
        values: dict[str, Value] = {k: given[k] for k in needed if k in given}
        source = f"{calibration.valid_by} given in the data ID"
        if missing:
            observation = calibration.observation
            keys = butler.mapper.keys(observation)
            partial = {k: v for k, v in given.items() if k in keys}
            rows = (
                butler.registry.complete(observation, partial, CANDIDATE_LIMIT + 1)
                if partial and butler._is_registered(observation)
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
                values[key] = distinct.pop()
            source = (
                f"{', '.join(missing)} from the {observation!r} record {_format_data_id(rows[0])}"
            )
        moment = valid_time(
            values[calibration.valid_by],
            self._scales.get(calibration.valid_by),
            calibration.valid_by,
        )
        return _Observation(moment, {k: values[k] for k in calibration.match}, source)

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
        data_id = self._butler.mapper.normalize(chosen.data_id)
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
        given = self._butler._normalize(data_id, keys)
        moment = None if as_of is None else recorded_time(as_of)
        observation = self._observation(plan.spec, calibration, given)
        candidates = self.store.candidates(
            dataset_type, observation.match, observation.time, moment
        )
        chosen, rule = self._choose(plan.spec, given, observation, candidates, moment)
        return self._ref(plan.spec, given, observation, chosen, rule, moment)

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
        given = [self._butler._normalize(d, {}) for d in data_ids]
        observations = self._observations(spec, calibration, given)
        if not observations:
            return []
        times = [o.time for o in observations]
        encoded = [encode_match(o.match) for o in observations]
        found = self.store.bulk(dataset_type, encoded, min(times), max(times), moment)
        groups = {key: _Group(rows) for key, rows in found.items()}
        results: list[CalibrationRef | None] = []
        for data_id, observation, key in zip(given, observations, encoded, strict=True):
            candidates = groups[key].at(observation.time)
            if not candidates and not strict:
                results.append(None)
                continue
            chosen, rule = self._choose(spec, data_id, observation, candidates, moment)
            results.append(self._ref(spec, data_id, observation, chosen, rule, moment))
        return results

    def _observations(
        self, spec: DatasetTypeSpec, calibration: CalibrationSpec, given: Sequence[DataId]
    ) -> list[_Observation]:
        """The observation of each data ID; records of the observation type read in bulk."""
        butler = self._butler
        needed = [calibration.valid_by, *calibration.match]
        observation_type = calibration.observation
        keys = butler.mapper.keys(observation_type)
        lacking = [d for d in given if any(k not in d for k in needed)]
        index: dict[tuple[tuple[str, Value], ...], list[dict[str, Value]]] = {}
        if lacking and butler._is_registered(observation_type):
            first = [k for k in keys if all(k in d for d in lacking)]
            if first:
                by = first[0]
                rows = self.store.observation_rows(observation_type, by, [d[by] for d in lacking])
                partial_keys = {tuple(k for k in keys if k in d) for d in lacking}
                for row in rows:
                    for names in partial_keys:
                        index.setdefault(tuple((k, row[k]) for k in names), []).append(row)
        result = []
        scale = self._scales.get(calibration.valid_by)
        for data_id in given:
            if all(k in data_id for k in needed):
                values: Mapping[str, Value] = data_id
            else:
                partial = tuple((k, data_id[k]) for k in keys if k in data_id)
                matching = index.get(partial, [])
                if len(matching) != 1 or not partial:
                    result.append(self._observation(spec, calibration, data_id))  # says why
                    continue
                values = {**matching[0], **data_id}
            result.append(
                _Observation(
                    valid_time(values[calibration.valid_by], scale, calibration.valid_by),
                    {k: values[k] for k in calibration.match},
                    "bulk",
                )
            )
        return result

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
            given = self._butler._normalize(data_id, keys)
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
        self, plan: _Plan, data_id: Mapping[str, object] | None, keys: Mapping[str, object]
    ) -> tuple[_Plan, DataId, str] | None:
        """For ``Butler._locate``: the calibration for an observation's data ID.

        None when the data ID names the calibration itself (all of its own keys
        and no ``as_of``): the caller finds it like any dataset.
        """
        rest = dict(keys)
        as_of = rest.pop("as_of", None)
        if as_of is None:
            given = self._butler._normalize(data_id, rest)
            if plan.keys.issubset(given):
                return None
        ref = self.find(plan.spec.name, data_id, as_of=as_of, **rest)
        return plan, ref.data_id, ref.path


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
                " ".join(f"{k}={v}" for k, v in row.match.items()),
                f"#{row.id}",
                _fmt(row.valid_from),
                _fmt(row.valid_to),
                " ".join(f"{k}={v}" for k, v in row.data_id.items()),
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
    """Draw certifications as bars: one row per match value; closed ones hatched and grey.

    Needs matplotlib (``pip install 'butler[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise ButlerError(
            "plotting calibrations needs matplotlib: pip install 'butler[plot]'"
        ) from None

    def _num(moment: datetime.datetime) -> float:
        return float(mdates.date2num(moment))

    # one row per match value, in the values' own order (ccd 2 before ccd 10)
    firsts = {encode_match(r.match): tuple(r.match.values()) for r in history}
    labels = sorted(firsts, key=firsts.__getitem__)
    names = {
        key: " ".join(f"{k}={v}" for k, v in r.match.items())
        for r in history
        for key in [encode_match(r.match)]
    }
    starts = [r.valid_from for r in history]
    ends = [r.valid_to for r in history if r.valid_to is not None]
    low = min(starts, default=datetime.datetime(2000, 1, 1))
    high = max([*ends, *starts], default=low)
    pad = max((high - low) * 0.1, datetime.timedelta(days=1))
    right = high + pad
    figure, axes = plt.subplots(figsize=(10, 1 + 0.4 * max(len(labels), 1)))
    for row in history:
        y = labels.index(encode_match(row.match))
        end = row.valid_to or right
        offset = 0.0 if row.current else -0.2
        axes.barh(
            y + offset,
            _num(end) - _num(row.valid_from),
            left=_num(row.valid_from),
            height=0.35 if row.current else 0.2,
            color="tab:blue" if row.current else "lightgrey",
            edgecolor="black" if row.current else "grey",
            hatch=None if row.current else "//",
            linewidth=0.5,
        )
    axes.set_yticks(range(len(labels)), [names[key] for key in labels])
    axes.xaxis_date()
    axes.set_xlim(_num(low - pad), _num(right))
    axes.set_xlabel("valid time (bars reaching the right edge are open-ended)")
    from matplotlib.patches import Patch

    axes.legend(
        handles=[
            Patch(facecolor="tab:blue", edgecolor="black", label="current"),
            Patch(facecolor="lightgrey", edgecolor="grey", hatch="//", label="closed"),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),  # above the axes, beside the title: never over a bar
        ncol=2,
        frameon=False,
        fontsize="small",
    )
    axes.set_title(title or "certifications", loc="left")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
