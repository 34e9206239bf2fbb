"""Properties of calibration lookups, on SQLite and PostgreSQL (hypothesis).

Each example certifies, supersedes and decertifies toycam biases (no resolve rule)
or flats (``resolve latest``) on a grid of days, keeps a model of what should be
current, and checks every lookup against it:

* a returned calibration's valid range contains the observation time;
* a lookup ``as_of`` before a certification never sees it;
* certify, then decertify, then a lookup ``as_of`` between the two returns it;
* a lookup never picks one of several valid calibrations without a declared rule.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from butler.butler import Butler
from butler.calibrations import Certification
from butler.errors import AmbiguousCalibrationError, CalibrationNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DAY0 = datetime.datetime(2024, 1, 1)
TICK = datetime.timedelta(microseconds=1)
CALIBS = 4  # calibDate = DAY0 + i days, i < CALIBS
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def day(n: int) -> datetime.datetime:
    return DAY0 + datetime.timedelta(days=n)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


def quarter(q: int) -> datetime.datetime:
    return DAY0 + datetime.timedelta(hours=6 * q)


def visit_of(q: int) -> int:
    """The raw observation (detector 1, filter g) taken at ``quarter(q)``."""
    return 1000 + q


@pytest.fixture
def toy(tmp_path: Path, backend: str | None) -> Iterator[Butler]:
    """A toycam repository holding bias and flat records (no files) for detector 1, filter g,
    and raw records of detector 1 at every quarter day of ``moments``."""
    with Butler.create(tmp_path / "toy", mapper="toycam", registry=backend) as butler:
        butler.ensure_registered(butler.plan("raw"))
        for q in range(-1, QUARTERS + 1):
            data_id = butler.mapper.normalize(
                visit=visit_of(q), detector=1, filter="g", obsTime=quarter(q)
            )
            record = {k: data_id[k] for k in butler.mapper.keys("raw")}
            butler.registry.insert("raw", record, butler.mapper.path("raw", data_id))
        for name in ("bias", "flat"):
            butler.ensure_registered(butler.plan(name))
            for i in range(CALIBS):
                data_id = butler.mapper.normalize(
                    calibDate=day(i).date(),
                    detector=1,
                    **({"filter": "g"} if name == "flat" else {}),
                )
                record = {k: data_id[k] for k in butler.mapper.keys(name)}
                butler.registry.insert(name, record, butler.mapper.path(name, data_id))
        yield butler


def reset(butler: Butler) -> None:
    """Forget every certification (test housekeeping between hypothesis examples)."""
    with butler.registry.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM calib_cert"))


def calib(name: str, i: int) -> dict[str, object]:
    return {
        "calibDate": day(i).date(),
        "detector": 1,
        **({"filter": "g"} if name == "flat" else {}),
    }


@dataclass
class Op:
    kind: str  # "certify", "supersede", "decertify"
    calib: int
    start: int
    length: int | None  # days; None = open-ended


ops = st.lists(
    st.builds(
        Op,
        st.sampled_from(["certify", "certify", "supersede", "decertify"]),
        st.integers(0, CALIBS - 1),
        st.integers(0, 12),
        st.one_of(st.none(), st.integers(1, 6)),
    ),
    min_size=1,
    max_size=8,
)
QUARTERS = 20 * 4
moments = st.lists(st.integers(-1, QUARTERS), min_size=1, max_size=6)  # quarter days


def run(butler: Butler, name: str, script: list[Op]) -> list[Certification]:
    """Apply ``script``; every certification made (refused overlaps are skipped)."""
    made: list[Certification] = []
    for op in script:
        start = day(op.start)
        end = None if op.length is None else day(op.start + op.length)
        if op.kind == "decertify":
            with contextlib.suppress(CalibrationNotFoundError):
                butler.decertify(name, calib(name, op.calib), start, end)
            continue
        try:
            made.append(
                butler.certify(
                    name, calib(name, op.calib), start, end, supersede=op.kind == "supersede"
                )
            )
        except AmbiguousCalibrationError as error:
            assert name == "bias" and op.kind == "certify", error
    return made


def lookup(butler: Butler, name: str, moment: datetime.datetime, as_of: object = None) -> object:
    keys = {"obsTime": moment, "detector": 1, **({"filter": "g"} if name == "flat" else {})}
    try:
        found = butler.find_calibration(name, keys, as_of=as_of)
    except (CalibrationNotFoundError, AmbiguousCalibrationError) as error:
        found = error
    assert_same(found, lookups_by_visit(butler, name, moment, as_of))
    return found


def lookups_by_visit(
    butler: Butler, name: str, moment: datetime.datetime, as_of: object
) -> list[object]:
    """The lookups of the raw observation at ``moment`` (if there is one): by its record in
    one statement (filter given), step by step (a flat's filter from the record), in bulk."""
    q, rest = divmod(moment - DAY0, datetime.timedelta(hours=6))
    if rest or not -1 <= q <= QUARTERS:
        return []
    found: list[object] = []
    for keys in (
        {"visit": visit_of(q), "detector": 1},
        {"visit": visit_of(q), "detector": 1, "filter": "g"},
    ):
        try:
            found.append(butler.find_calibration(name, keys, as_of=as_of))
        except (CalibrationNotFoundError, AmbiguousCalibrationError) as error:
            found.append(error)
    try:
        (bulk,) = butler.find_calibrations(
            name, [{"visit": visit_of(q), "detector": 1}], as_of=as_of, strict=False
        )
        found.append(bulk if bulk is not None else CalibrationNotFoundError("none"))
    except AmbiguousCalibrationError as error:
        found.append(error)
    return found


def assert_same(expected: object, others: list[object]) -> None:
    """Each of ``others`` found the same certification, or failed the same way."""
    for other in others:
        if isinstance(expected, Exception):
            assert type(other) is type(expected), (expected, other)
        else:
            assert not isinstance(other, Exception), other
            assert other.certification == expected.certification  # type: ignore[attr-defined]
            assert other.time == expected.time  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["bias", "flat"])
@SETTINGS
@given(script=ops, quarters=moments)
def test_a_found_calibration_is_valid_at_the_observation_time(
    toy: Butler, name: str, script: list[Op], quarters: list[int]
) -> None:
    reset(toy)
    run(toy, name, script)
    current = toy.calibration_history(name, include_closed=False)
    for q in quarters:
        moment = quarter(q)
        valid = [c for c in current if c.valid_at(moment)]
        result = lookup(toy, name, moment)
        if not valid:
            assert isinstance(result, CalibrationNotFoundError)
            continue
        if name == "bias":
            # overlaps are refused at certify time: at most one is valid
            assert len(valid) == 1
        assert not isinstance(result, Exception), result
        ref = result
        assert ref.certification.valid_at(moment)  # type: ignore[attr-defined]
        expected = max(valid, key=lambda c: (c.recorded_from, c.id))
        assert ref.certification.id == expected.id  # type: ignore[attr-defined]
        bulk = toy.find_calibrations(name, [{"obsTime": moment, "detector": 1, "filter": "g"}])
        assert bulk[0] is not None and bulk[0].certification.id == expected.id


@pytest.mark.parametrize("name", ["bias", "flat"])
@SETTINGS
@given(script=ops)
def test_as_of_before_a_certification_never_sees_it(
    toy: Butler, name: str, script: list[Op]
) -> None:
    reset(toy)
    for certification in run(toy, name, script):
        result = lookup(toy, name, certification.valid_from, certification.recorded_from - TICK)
        if not isinstance(result, Exception):
            assert result.certification.id != certification.id  # type: ignore[attr-defined]
        # and at the moment it was recorded, it (or a later one) is what the registry held
        at = lookup(toy, name, certification.valid_from, certification.recorded_from)
        assert not isinstance(at, CalibrationNotFoundError)


@SETTINGS
@given(
    i=st.integers(0, CALIBS - 1),
    start=st.integers(0, 10),
    length=st.one_of(st.none(), st.integers(1, 5)),
    probe=st.floats(0, 1),
)
def test_certify_decertify_then_as_of_between_returns_it(
    toy: Butler, i: int, start: int, length: int | None, probe: float
) -> None:
    reset(toy)
    end = None if length is None else day(start + length)
    made = toy.certify("bias", calib("bias", i), day(start), end)
    (closed,) = toy.decertify("bias", calib("bias", i))
    assert closed.recorded_to is not None
    between = made.recorded_from + (closed.recorded_to - made.recorded_from) * probe
    between = min(between, closed.recorded_to - TICK)
    found = toy.find_calibration("bias", obsTime=day(start), detector=1, as_of=between)
    assert found.certification.id == made.id
    assert isinstance(lookup(toy, "bias", day(start)), CalibrationNotFoundError)
    assert isinstance(lookup(toy, "bias", day(start), closed.recorded_to), CalibrationNotFoundError)


@SETTINGS
@given(script=ops, extra=st.integers(0, CALIBS - 1), quarters=moments)
def test_several_valid_without_a_rule_always_raises(
    toy: Butler, script: list[Op], extra: int, quarters: list[int]
) -> None:
    """Overlaps forced into the table (as a bad import could) are never resolved silently."""
    from butler.calibrations import for_butler

    reset(toy)
    run(toy, "bias", script)
    store = for_butler(toy).store
    store.certify(
        "bias",
        {"calibDate": day(extra).date(), "detector": 1},
        {"detector": 1},
        day(0),
        allow_overlap=True,
    )
    current = toy.calibration_history("bias", include_closed=False)
    for q in quarters:
        moment = quarter(q)
        valid = [c for c in current if c.valid_at(moment)]
        result = lookup(toy, "bias", moment)
        if len(valid) > 1:
            assert isinstance(result, AmbiguousCalibrationError)
            for c in valid:
                assert f"#{c.id}" in str(result)
        elif valid:
            assert result.certification.id == valid[0].id  # type: ignore[attr-defined]
