"""Calibrations: certify, look up by observation, reproduce the past (issue 4).

Every test runs on SQLite and PostgreSQL. The repository uses the tutorial camera
``toycam``: ``bias`` (match detector, no resolve rule) and ``flat`` (match detector
and filter, ``resolve latest``), both valid by ``obsTime`` (UTC) from ``raw``.
Raw observations are recorded in the registry without files: lookups need only
their records.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from butler.butler import Butler
from butler.calibrations import recorded_time, timeline, valid_time
from butler.errors import (
    AmbiguousCalibrationError,
    AmbiguousDataIdError,
    ButlerError,
    CalibrationNotFoundError,
    DatasetNotFoundError,
    InvalidDataIdError,
    ReadOnlyError,
    RegistryError,
)
from butler.image import Image

T = datetime.datetime
#: visit -> obsTime of the raw records every repository here starts with
VISITS = {
    1: T(2024, 3, 1, 4, 0),
    2: T(2024, 3, 5, 4, 0),
    3: T(2024, 3, 9, 23, 59, 59),
    4: T(2024, 2, 1),
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


def record_raw(butler: Butler, visit: int, detector: int, obs_time: T, band: str = "g") -> None:
    data_id = butler.mapper.normalize(visit=visit, detector=detector, filter=band, obsTime=obs_time)
    butler.ensure_registered(butler.plan("raw"))
    record = {k: data_id[k] for k in butler.mapper.keys("raw")}
    butler.registry.insert("raw", record, butler.mapper.path("raw", data_id))


@pytest.fixture
def toy(tmp_path: Path, backend: str | None) -> Iterator[Butler]:
    with Butler.create(tmp_path / "toy", mapper="toycam", registry=backend) as butler:
        for visit, obs_time in VISITS.items():
            for detector in (1, 2):
                record_raw(butler, visit, detector, obs_time)
        for day in ("2024-02-28", "2024-03-04", "2024-03-08"):
            for detector in (1, 2):
                value = float(detector * 100 + int(day[-2:]))
                butler.put(
                    Image(np.full((3, 3), value, "f4")), "bias", calibDate=day, detector=detector
                )
                butler.put(
                    Image(np.full((3, 3), value, "f4")),
                    "flat",
                    calibDate=day,
                    detector=detector,
                    filter="g",
                )
        yield butler


def bias(day: str, detector: int = 1) -> dict[str, object]:
    return {"calibDate": day, "detector": detector}


def pixel(image: Image) -> float:
    return float(np.asarray(image.array)[0, 0])


# ---- certify and get -----------------------------------------------------------------------


def test_get_finds_the_bias_valid_at_the_observation_time(toy: Butler) -> None:
    toy.certify("bias", bias("2024-02-28"), "2024-02-28", "2024-03-04")
    toy.certify("bias", bias("2024-03-04"), "2024-03-04", "2024-03-08")
    toy.certify("bias", bias("2024-03-08"), "2024-03-08")
    assert pixel(toy.get("bias", visit=1, detector=1)) == 128
    assert pixel(toy.get("bias", visit=2, detector=1)) == 104
    assert pixel(toy.get("bias", visit=3, ccd=1)) == 108  # ccd is an alias of detector
    ref = toy.find_calibration("bias", visit=2, detector=1)
    assert ref.data_id["calibDate"] == datetime.date(2024, 3, 4)
    assert ref.time == VISITS[2]
    assert ref.certification.valid_at(ref.time)
    assert ref.path == "calib/bias/20240304/bias-01.fits"


def test_observation_time_may_be_given_in_the_data_id(toy: Butler) -> None:
    toy.certify("bias", bias("2024-03-04"), "2024-03-04", "2024-03-08")
    ref = toy.find_calibration("bias", obsTime="2024-03-06T10:00:00", detector=1)
    assert ref.data_id["calibDate"] == datetime.date(2024, 3, 4)
    assert "given in the data ID" in toy.explain_calibration(
        "bias", obsTime="2024-03-06T10:00:00", detector=1
    )


def test_the_calibration_own_data_id_still_finds_it_directly(toy: Butler) -> None:
    assert pixel(toy.get("bias", calibDate="2024-03-04", detector=2)) == 204


def test_valid_ranges_are_half_open(toy: Butler) -> None:
    toy.certify("bias", bias("2024-02-28"), "2024-02-28", VISITS[2])
    toy.certify("bias", bias("2024-03-04"), VISITS[2])
    assert toy.find_calibration("bias", visit=2, detector=1).data_id["calibDate"] == (
        datetime.date(2024, 3, 4)
    )


def test_certify_refuses_an_overlap_naming_the_existing_record(toy: Butler) -> None:
    first = toy.certify("bias", bias("2024-02-28"), "2024-02-28", "2024-03-05")
    with pytest.raises(AmbiguousCalibrationError) as caught:
        toy.certify("bias", bias("2024-03-04"), "2024-03-04")
    message = str(caught.value)
    assert f"#{first.id}" in message
    assert "calibDate: 2024-02-28" in message
    assert "[2024-02-28T00:00:00, 2024-03-05T00:00:00)" in message
    # another detector does not overlap
    toy.certify("bias", bias("2024-03-04", detector=2), "2024-03-04")


def test_certifying_the_same_range_again_changes_nothing(toy: Butler) -> None:
    first = toy.certify("bias", bias("2024-02-28"), "2024-02-28", "2024-03-05")
    again = toy.certify("bias", bias("2024-02-28"), "2024-02-28", "2024-03-05")
    assert again == first
    assert len(toy.calibration_history("bias")) == 1


def test_certify_needs_a_stored_calibration_and_a_non_empty_range(toy: Butler) -> None:
    with pytest.raises(DatasetNotFoundError, match="put or ingest"):
        toy.certify("bias", bias("2024-01-01"), "2024-01-01")
    with pytest.raises(RegistryError, match="empty"):
        toy.certify("bias", bias("2024-02-28"), "2024-03-01", "2024-03-01")
    with pytest.raises(InvalidDataIdError, match="not a calibration"):
        toy.certify("raw", {"visit": 1, "detector": 1}, "2024-03-01")


def test_certify_is_refused_on_a_read_only_repository(toy: Butler) -> None:
    with (
        Butler(toy.root, writeable=False) as reader,
        pytest.raises(ReadOnlyError, match="cannot certify"),
    ):
        reader.certify("bias", bias("2024-02-28"), "2024-02-28")


# ---- errors --------------------------------------------------------------------------------


def test_not_found_names_what_was_searched_and_the_nearest_ranges(toy: Butler) -> None:
    toy.certify("bias", bias("2024-02-28"), "2024-02-28", "2024-03-04")
    toy.certify("bias", bias("2024-03-08"), "2024-03-08")
    with pytest.raises(CalibrationNotFoundError) as caught:
        toy.get("bias", visit=2, detector=1)
    message = str(caught.value)
    assert "'bias'" in message
    assert "{detector: 1}" in message
    assert "obsTime 2024-03-05T04:00:00 utc" in message
    assert "nearest before: #1" in message and "2024-03-04T00:00:00)" in message
    assert "nearest after: #2" in message and "[2024-03-08T00:00:00, …)" in message
    with pytest.raises(CalibrationNotFoundError, match="nearest before: none"):
        toy.get("bias", visit=1, detector=2)


def test_an_observation_that_is_not_recorded_is_reported(toy: Butler) -> None:
    with pytest.raises(CalibrationNotFoundError, match="no stored 'raw' matches"):
        toy.get("bias", visit=99, detector=1)
    with pytest.raises(AmbiguousDataIdError, match="several values of detector"):
        toy.find_calibration("bias", visit=1)


def test_several_valid_without_a_rule_is_an_error_listing_them(toy: Butler) -> None:
    from butler.calibrations import for_butler

    store = for_butler(toy).store
    a = toy.certify("bias", bias("2024-02-28"), "2024-02-28")
    # an overlap that only a concurrent writer or an import could leave behind
    b = store.certify(
        "bias",
        {"calibDate": datetime.date(2024, 3, 4), "detector": 1},
        {"detector": 1},
        T(2024, 3, 4),
        allow_overlap=True,
    )
    with pytest.raises(AmbiguousCalibrationError) as caught:
        toy.get("bias", visit=2, detector=1)
    assert f"#{a.id}" in str(caught.value) and f"#{b.id}" in str(caught.value)
    with pytest.raises(AmbiguousCalibrationError):
        toy.find_calibrations("bias", [{"visit": 2, "detector": 1}], strict=False)
    assert toy.find_calibration("bias", visit=1, detector=1).certification.id == a.id


def test_resolve_latest_lets_the_latest_certified_win(toy: Butler) -> None:
    toy.certify("flat", {"calibDate": "2024-03-04", "detector": 1, "filter": "g"}, "2024-03-01")
    toy.certify("flat", {"calibDate": "2024-02-28", "detector": 1, "filter": "g"}, "2024-02-01")
    ref = toy.find_calibration("flat", visit=2, detector=1)  # filter comes from the raw record
    assert ref.data_id["calibDate"] == datetime.date(2024, 2, 28)
    assert "latest certified of 2" in ref.rule
    assert "resolve latest" in toy.explain_calibration("flat", visit=2, detector=1)
    # before the second certification existed, the first one was the answer
    older = toy.find_calibration(
        "flat",
        visit=2,
        detector=1,
        as_of=ref.certification.recorded_from - datetime.timedelta(microseconds=1),
    )
    assert older.data_id["calibDate"] == datetime.date(2024, 3, 4)


# ---- bitemporal history --------------------------------------------------------------------


def cert_rows(butler: Butler) -> int:
    with butler.registry.engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT COUNT(*) FROM calib_cert")) or 0)


def test_decertify_closes_the_record_and_as_of_reproduces_the_past(toy: Butler) -> None:
    made = toy.certify("bias", bias("2024-03-04"), "2024-03-04")
    (closed,) = toy.decertify("bias", bias("2024-03-04"))
    assert closed.id == made.id and closed.closed_by == "decertified"
    assert closed.recorded_to is not None and closed.recorded_to > made.recorded_from
    with pytest.raises(CalibrationNotFoundError):
        toy.get("bias", visit=2, detector=1)
    between = made.recorded_from + (closed.recorded_to - made.recorded_from) / 2
    assert pixel(toy.get("bias", visit=2, detector=1, as_of=between)) == 104
    with pytest.raises(CalibrationNotFoundError):
        toy.get(
            "bias", visit=2, detector=1, as_of=made.recorded_from - datetime.timedelta(seconds=1)
        )
    assert cert_rows(toy) == 1  # closed, not deleted
    with pytest.raises(CalibrationNotFoundError, match="no current certification"):
        toy.decertify("bias", bias("2024-03-04"))


def test_partial_decertify_keeps_the_rest_of_the_range(toy: Butler) -> None:
    made = toy.certify("bias", bias("2024-02-28"), "2024-02-28", "2024-03-10")
    toy.decertify("bias", bias("2024-02-28"), "2024-03-04", "2024-03-06")
    assert toy.find_calibration("bias", visit=1, detector=1).certification.replaces == made.id
    assert toy.find_calibration("bias", visit=3, detector=1).certification.replaces == made.id
    with pytest.raises(CalibrationNotFoundError):
        toy.get("bias", visit=2, detector=1)
    history = toy.calibration_history("bias")
    assert [(r.valid_from, r.valid_to, r.current) for r in history] == [
        (T(2024, 2, 28), T(2024, 3, 10), False),
        (T(2024, 2, 28), T(2024, 3, 4), True),
        (T(2024, 3, 6), T(2024, 3, 10), True),
    ]


def test_supersede_replaces_a_range_and_keeps_the_old_answer(toy: Butler) -> None:
    old = toy.certify("bias", bias("2024-02-28"), "2024-02-01")
    new = toy.certify("bias", bias("2024-03-04"), "2024-03-04", supersede=True)
    assert toy.find_calibration("bias", visit=2, detector=1).certification.id == new.id
    assert toy.find_calibration("bias", visit=1, detector=1).certification.replaces == old.id
    before = new.recorded_from - datetime.timedelta(microseconds=1)
    assert (
        toy.find_calibration("bias", visit=2, detector=1, as_of=before).certification.id == old.id
    )
    (closed,) = [r for r in toy.calibration_history("bias") if r.id == old.id]
    assert closed.closed_by == f"superseded by #{new.id}"
    table = timeline(toy.calibration_history("bias"))
    assert "superseded by" in table and "{detector: 1}" in table


def test_history_as_of_shows_what_the_registry_held(toy: Butler) -> None:
    a = toy.certify("bias", bias("2024-02-28"), "2024-02-28", "2024-03-04")
    toy.certify("bias", bias("2024-03-04"), "2024-03-04")
    assert [r.id for r in toy.calibration_history("bias", as_of=a.recorded_from)] == [a.id]
    assert len(toy.calibration_history("bias", {"detector": 1}, include_closed=False)) == 2
    assert toy.calibration_history("bias", {"detector": 2}) == []


# ---- bulk ----------------------------------------------------------------------------------


def test_bulk_lookup_agrees_with_single_lookups(toy: Butler) -> None:
    for detector in (1, 2):
        toy.certify("bias", bias("2024-02-28", detector), "2024-02-28", "2024-03-04")
        toy.certify("bias", bias("2024-03-04", detector), "2024-03-04", "2024-03-08")
        toy.certify("bias", bias("2024-03-08", detector), "2024-03-08")
    data_ids = [
        {"visit": visit, "detector": detector} for visit in (1, 2, 3) for detector in (1, 2)
    ]
    data_ids.append({"obsTime": "2024-03-06T00:00:00", "detector": 2})
    bulk = toy.find_calibrations("bias", data_ids)
    single = [toy.find_calibration("bias", d) for d in data_ids]
    assert [r.certification.id for r in bulk if r] == [r.certification.id for r in single]
    assert toy.find_calibrations("bias", [{"visit": 4, "detector": 1}], strict=False) == [None]
    with pytest.raises(CalibrationNotFoundError):
        toy.find_calibrations("bias", [{"visit": 4, "detector": 1}])
    assert toy.find_calibrations("bias", []) == []


# ---- the ways of looking up agree ----------------------------------------------------------
#
# A data ID that lacks only the time is answered by one statement (the raw record joined to
# the certifications, compared in SQL); one that gives the time, by the candidates query;
# many at once, by the bulk path matched in Python. All must answer alike.

TICK = datetime.timedelta(microseconds=1)


def three_ways(
    butler: Butler, name: str, visit: int, detector: int, as_of: object = None
) -> list[object]:
    """The certification id (or the error type) by record, by time, and in bulk."""
    (record,) = butler.registry.complete("raw", {"visit": visit, "detector": detector})
    by_time = {"obsTime": record["obsTime"], "detector": detector, "filter": record["filter"]}
    by_visit = {"visit": visit, "detector": detector}
    answers: list[object] = []
    for data_id in (by_visit, by_time):
        try:
            answers.append(butler.find_calibration(name, data_id, as_of=as_of).certification.id)
        except ButlerError as error:
            answers.append(type(error))
    (bulk,) = butler.find_calibrations(name, [by_visit], as_of=as_of, strict=False)
    answers.append(CalibrationNotFoundError if bulk is None else bulk.certification.id)
    return answers


def test_valid_ranges_are_half_open_to_the_microsecond(toy: Butler) -> None:
    edge = T(2024, 3, 6, 12, 0, 0, 123457)
    first = toy.certify("bias", bias("2024-03-04"), "2024-03-04", edge)
    record_raw(toy, 10, 1, edge - TICK)
    record_raw(toy, 11, 1, edge)
    assert three_ways(toy, "bias", 10, 1) == [first.id] * 3
    assert three_ways(toy, "bias", 11, 1) == [CalibrationNotFoundError] * 3
    second = toy.certify("bias", bias("2024-03-08"), edge)
    assert second.valid_from == edge and first.valid_to == edge  # stored to the microsecond
    assert three_ways(toy, "bias", 10, 1) == [first.id] * 3
    assert three_ways(toy, "bias", 11, 1) == [second.id] * 3


def test_aware_times_are_converted_to_utc_everywhere(toy: Butler) -> None:
    plus_one = datetime.timezone(datetime.timedelta(hours=1))
    made = toy.certify(
        "bias",
        bias("2024-03-04"),
        T(2024, 3, 4, 1, tzinfo=plus_one),
        T(2024, 3, 6, 1, tzinfo=plus_one),
    )
    assert (made.valid_from, made.valid_to) == (T(2024, 3, 4), T(2024, 3, 6))
    record_raw(toy, 20, 1, T(2024, 3, 6, 0, 59, 59, 999999, tzinfo=plus_one))
    record_raw(toy, 21, 1, T(2024, 3, 6, 1, tzinfo=plus_one))
    assert three_ways(toy, "bias", 20, 1) == [made.id] * 3
    assert three_ways(toy, "bias", 21, 1) == [CalibrationNotFoundError] * 3
    recorded = made.recorded_from.replace(tzinfo=datetime.UTC)
    assert three_ways(toy, "bias", 20, 1, recorded.astimezone(plus_one)) == [made.id] * 3
    before = (recorded - TICK).astimezone(plus_one)
    assert three_ways(toy, "bias", 20, 1, before) == [CalibrationNotFoundError] * 3


def test_as_of_at_the_instants_a_supersede_recorded(toy: Butler) -> None:
    old = toy.certify("bias", bias("2024-02-28"), "2024-02-01")
    new = toy.certify("bias", bias("2024-03-04"), "2024-03-01", supersede=True)
    (closed,) = [r for r in toy.calibration_history("bias") if r.id == old.id]
    assert closed.recorded_to == new.recorded_from
    expected = {
        old.recorded_from - TICK: CalibrationNotFoundError,
        old.recorded_from: old.id,  # recorded_from is inclusive
        new.recorded_from - TICK: old.id,
        new.recorded_from: new.id,  # recorded_to is exclusive
        None: new.id,
    }
    for as_of, answer in expected.items():
        assert three_ways(toy, "bias", 2, 1, as_of) == [answer] * 3, as_of
    (piece,) = [r for r in toy.calibration_history("bias") if r.replaces == old.id]
    assert three_ways(toy, "bias", 4, 1) == [piece.id] * 3  # the part before 2024-03-01


def test_resolve_latest_agrees_by_record_by_time_and_in_bulk(toy: Butler) -> None:
    early = toy.certify(
        "flat", {"calibDate": "2024-03-04", "detector": 1, "filter": "g"}, "2024-03-01"
    )
    late = toy.certify(
        "flat", {"calibDate": "2024-02-28", "detector": 1, "filter": "g"}, "2024-02-01"
    )
    assert three_ways(toy, "flat", 2, 1) == [late.id] * 3
    assert three_ways(toy, "flat", 2, 1, late.recorded_from - TICK) == [early.id] * 3
    with_filter = toy.find_calibration("flat", visit=2, detector=1, filter="g")  # one statement
    assert with_filter.certification.id == late.id


def test_lookups_in_a_transaction_see_its_certifications(toy: Butler) -> None:
    with toy.transaction():
        made = toy.certify("bias", bias("2024-03-04"), "2024-03-04")
        assert three_ways(toy, "bias", 2, 1) == [made.id] * 3
    assert three_ways(toy, "bias", 2, 1) == [made.id] * 3
    with pytest.raises(RuntimeError), toy.transaction():
        toy.decertify("bias", bias("2024-03-04"))
        assert three_ways(toy, "bias", 2, 1) == [CalibrationNotFoundError] * 3
        raise RuntimeError("roll back")
    assert three_ways(toy, "bias", 2, 1) == [made.id] * 3


def test_a_certification_whose_dataset_is_gone_is_not_a_candidate(toy: Butler) -> None:
    toy.certify("bias", bias("2024-03-04"), "2024-03-04")
    toy.remove("bias", calibDate="2024-03-04", detector=1)
    assert three_ways(toy, "bias", 2, 1) == [CalibrationNotFoundError] * 3


def test_several_records_of_one_observation_are_settled_as_before(toy: Butler) -> None:
    made = toy.certify("bias", bias("2024-03-04"), "2024-03-04")
    record_raw(toy, 2, 1, VISITS[2], band="r")  # the same time: the records agree
    assert toy.find_calibration("bias", visit=2, detector=1).certification.id == made.id
    record_raw(toy, 2, 1, VISITS[3], band="i")  # another time: which one?
    with pytest.raises(AmbiguousDataIdError, match="several values of obsTime"):
        toy.find_calibration("bias", visit=2, detector=1)
    ref = toy.find_calibration("bias", visit=2, detector=1, filter="i")
    assert ref.time == VISITS[3] and ref.certification.id == made.id


def test_not_found_by_record_names_the_record(toy: Butler) -> None:
    toy.certify("bias", bias("2024-03-08"), "2024-03-08")
    with pytest.raises(CalibrationNotFoundError) as caught:
        toy.get("bias", visit=2, detector=1)
    assert (
        "(obsTime from the 'raw' record {visit: 2, detector: 1, filter: 'TC-G', "
        "obsTime: 2024-03-05T04:00:00, dayObs: 2024-03-05})" in str(caught.value)
    )


def test_a_registry_without_the_certification_table_finds_nothing_until_certified(
    toy: Butler,
) -> None:
    with toy.registry.engine.begin() as conn:  # as a registry made before issue 4
        conn.execute(sa.text("DROP TABLE calib_cert"))
    assert three_ways(toy, "bias", 2, 1) == [CalibrationNotFoundError] * 3
    made = toy.certify("bias", bias("2024-03-04"), "2024-03-04")  # creates the table
    assert three_ways(toy, "bias", 2, 1) == [made.id] * 3


# ---- times ---------------------------------------------------------------------------------


def test_valid_times_accept_dates_strings_aware_datetimes_and_astropy() -> None:
    from astropy.time import Time

    assert valid_time(datetime.date(2024, 3, 1), "utc") == T(2024, 3, 1)
    assert valid_time("2024-03-01", "utc") == T(2024, 3, 1)
    aware = datetime.datetime(2024, 3, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert valid_time(aware, "utc") == T(2024, 3, 1)
    assert valid_time(Time("2024-03-01T00:00:00", scale="utc"), "tai") == T(2024, 3, 1, 0, 0, 37)
    assert recorded_time("2024-03-01T12:00:00+00:00") == T(2024, 3, 1, 12)
    with pytest.raises(ButlerError):
        valid_time("yesterday", "utc")


def test_explain_shows_each_step(toy: Butler) -> None:
    toy.certify("bias", bias("2024-03-04"), "2024-03-04")
    text = toy.explain_calibration("bias", visit=2, detector=1)
    assert "rule: match detector; valid by obsTime (utc) from 'raw'" in text
    assert "observation time: obsTime = 2024-03-05T04:00:00 utc" in text
    assert "chosen: #1 (the only valid certification)" in text
    missing = toy.explain_calibration("bias", visit=4, detector=1)
    assert "CalibrationNotFoundError" in missing and "nearest after: #1" in missing
