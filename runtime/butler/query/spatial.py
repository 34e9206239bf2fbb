"""Spatial queries: the datasets whose recorded sky regions meet a region (issue 17).

``butler.query("calexp", region=Circle(150.1, 2.2, 0.1))``, ``region=Polygon(...)``,
``contains=(ra, dec)`` and ``overlapping=("calexp", {"visit": 903334})`` (the union
of those datasets' regions: a visit's CCDs; a tract or patch of a skymap when no such
dataset is stored), with ordinary keys and ``where`` as :mod:`butler.query.run`
checks them. The registry's pixel-range search (``Registry.search_regions``) finds
candidates; each is kept only if lsst-sphgeom says it meets the query region exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..dataid import DataId, format_data_id
from ..errors import InvalidQueryError
from ..spec import Value
from . import run

if TYPE_CHECKING:
    import lsst.sphgeom

    from ..butler import Butler

__all__ = [
    "SkyTest",
    "as_region",
    "data_ids",
    "overlapping_arg",
    "point",
    "regions_of",
    "sky_test",
    "union_region",
]

#: Query ranges asked of the registry in one statement.
_RANGES_PER_QUERY = 64


@dataclass(frozen=True)
class SkyTest:
    """What a spatial query keeps: regions meeting every one of ``tests``; ``ranges`` are
    the HTM pixel ranges of the first, for the registry's search."""

    tests: tuple[Callable[[Any], bool], ...]
    ranges: tuple[tuple[int, int], ...]


def _meets(query: lsst.sphgeom.Region) -> Callable[[Any], bool]:
    def test(region: Any) -> bool:
        answer = query.overlaps(region)
        return True if answer is None else bool(answer)  # undecidable: kept (a superset)

    return test


def as_region(given: object) -> lsst.sphgeom.Region:
    import lsst.sphgeom as sg

    if isinstance(given, sg.Region):
        return given
    to_sphgeom = getattr(given, "to_sphgeom", None)
    if to_sphgeom is None:
        raise InvalidQueryError(
            f"region={given!r}: give a butler.Circle(ra, dec, radius), a "
            "butler.Polygon([(ra, dec), ...]) (degrees) or an lsst.sphgeom region"
        )
    region: lsst.sphgeom.Region = to_sphgeom()
    return region


def point(given: object) -> tuple[float, float]:
    try:
        first, second = given  # type: ignore[misc]
        ra, dec = float(first), float(second)  # type: ignore[has-type]
    except (TypeError, ValueError):
        raise InvalidQueryError(
            f"contains={given!r}: give a position as (ra, dec) in degrees"
        ) from None
    if not -90.0 <= dec <= 90.0:
        raise InvalidQueryError(f"contains={given!r}: dec {dec} is not in [-90, 90] degrees")
    return ra, dec


def _merged(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for begin, end in sorted(ranges):
        if out and begin <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((begin, end))
    return tuple(out)


def sky_test(
    butler: Butler, region: object = None, contains: object = None, overlapping: object = None
) -> SkyTest:
    """The checked spatial part of a query; InvalidQueryError for anything unusable."""
    import lsst.sphgeom as sg

    from ..regions import QUERY_MAX_RANGES, pixel_ranges

    tests: list[Callable[[Any], bool]] = []
    ranges: list[tuple[int, int]] | None = None
    if region is not None:
        query = as_region(region)
        tests.append(_meets(query))
        ranges = pixel_ranges(query, QUERY_MAX_RANGES)
    if contains is not None:
        ra, dec = point(contains)
        position = sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec))
        tests.append(lambda found: bool(found.contains(position)))
        if ranges is None:
            ranges = pixel_ranges(sg.Circle(position), QUERY_MAX_RANGES)
    if overlapping is not None:
        others = _overlapping(butler, overlapping)
        tests.append(lambda found: any(_meets(other)(found) for other in others))
        if ranges is None:
            ranges = [r for other in others for r in pixel_ranges(other, QUERY_MAX_RANGES)]
    assert ranges is not None, "called with at least one of region, contains, overlapping"
    return SkyTest(tuple(tests), _merged(ranges))


def union_region(
    butler: Butler, dataset_type: str, data_id: Mapping[str, object]
) -> lsst.sphgeom.Region | None:
    """The region of the stored ``dataset_type`` datasets matching ``data_id``: one
    dataset's, or the union of several (a visit's CCDs); a tract's or patch's from the
    skymap if none is stored; None if none has a region."""
    import lsst.sphgeom as sg

    found = _regions_matching(butler, dataset_type, data_id)
    if not found:
        return None
    return found[0] if len(found) == 1 else sg.UnionRegion(*found)


def _regions_matching(
    butler: Butler, dataset_type: str, data_id: Mapping[str, object]
) -> list[lsst.sphgeom.Region]:
    plan = butler.plan(dataset_type)  # UnknownDatasetTypeError with a did-you-mean
    partial = butler.restrict(plan, butler.normalize(data_id, {}, dataset_type))
    request = run.build(butler, dataset_type, partial, {})
    found = [region for _, region in regions_of(butler, dataset_type, request.selection)]
    if found:
        return found
    from ..regions import skymap_region

    region = skymap_region(butler, plan.spec, partial)
    return [] if region is None else [region]


def overlapping_arg(given: object) -> tuple[str, dict[str, object]]:
    """``overlapping=(dataset type, data ID)`` checked; InvalidQueryError for anything else."""
    if (
        not isinstance(given, tuple | list)
        or len(given) != 2
        or not isinstance(given[0], str)
        or not isinstance(given[1], Mapping)
    ):
        raise InvalidQueryError(
            f"overlapping={given!r}: give (dataset type, data ID), e.g. "
            "('calexp', {'visit': 903334})"
        )
    return given[0], dict(given[1])


def _overlapping(butler: Butler, given: object) -> list[lsst.sphgeom.Region]:
    """The regions ``overlapping=(dataset type, data ID)`` names (at least one)."""
    other, data_id = overlapping_arg(given)
    found = _regions_matching(butler, other, data_id)
    if found:
        return found
    raise InvalidQueryError(
        f"overlapping=({other!r}, {format_data_id(data_id)}): no {other!r} dataset with that "
        "data ID has a recorded sky region (regions are recorded for raws and calexps with a "
        "WCS or pointing, and for tracts and patches of a declared skymap); check the data ID "
        f"with butler.query({other!r}, ...)"
    )


def _members(butler: Butler, dataset_type: str) -> list[Butler]:
    return [
        member
        for member in butler.chain.registries(butler, f"query {dataset_type!r} by sky region")
        if dataset_type in member.mapper.dataset_types
        and member.registry.has_dataset_type(dataset_type)
    ]


def regions_of(
    butler: Butler, dataset_type: str, selection: Any = None, test: SkyTest | None = None
) -> Iterator[tuple[dict[str, Value], Any]]:
    """``(data ID, region)`` of the stored datasets ``selection`` selects that have a region
    (meeting ``test``, if given), each data ID once across a chain, in no particular order."""
    import lsst.sphgeom as sg

    seen: set[tuple[Value, ...]] = set()
    keys = butler.mapper.keys(dataset_type)
    batches: list[Sequence[tuple[int, int]] | None] = [None]
    if test is not None:
        batches = [
            test.ranges[i : i + _RANGES_PER_QUERY]
            for i in range(0, len(test.ranges), _RANGES_PER_QUERY)
        ]

    decode = sg.Region.decode
    tests = () if test is None else test.tests
    passed: dict[bytes, Any] = {}  # decoded once: the exact tests, then the caller

    def keep(encoded: bytes) -> bool:
        region = decode(encoded)
        if all(check(region) for check in tests):
            passed[encoded] = region
            return True
        return False

    members = _members(butler, dataset_type)
    for member in members:
        for batch in batches:
            found = member.registry.search_regions(dataset_type, batch, selection, keep)
            for data_id, encoded in found:
                region = passed.get(encoded)
                if region is None:
                    region = decode(encoded)
                if len(members) > 1 or len(batches) > 1:  # each data ID once
                    identity = tuple(data_id[k] for k in keys)
                    if identity in seen:
                        continue
                    seen.add(identity)
                yield data_id, region


def data_ids(butler: Butler, request: run.Request, test: SkyTest) -> Iterator[DataId]:
    """The data IDs ``request`` selects whose regions pass ``test``, in the request's order."""
    rows = [
        data_id for data_id, _ in regions_of(butler, request.dataset_type, request.selection, test)
    ]
    keys = list(butler.mapper.keys(request.dataset_type))
    rows.sort(key=lambda row: tuple(row[k] for k in keys))
    for item in reversed(request.order_by):
        key = item.lstrip("-")
        rows.sort(key=lambda row: row[key], reverse=item.startswith("-"))
    if request.limit is not None:
        rows = rows[: request.limit]
    normalize = butler.mapper.normalize
    return (normalize(row) for row in rows)
