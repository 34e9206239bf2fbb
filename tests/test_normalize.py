"""Normalizer: aliases, value maps, type coercion, constraints, derived keys."""

from __future__ import annotations

import datetime
import subprocess
import sys

import numpy as np
import pytest
from butler.errors import InvalidDataIdError
from butler.normalize import Normalizer
from butler.spec import Derivation, KeySpec, TableSpec
from hypothesis import given, settings
from hypothesis import strategies as st

KEYS = (
    KeySpec("visit", "int", minimum=0, maximum=9_999_999),
    KeySpec("ccd", "int", minimum=0, maximum=111, aliases=("ccdnum",)),
    KeySpec(
        "filter",
        "str",
        choices=("HSC-G", "HSC-R"),
        normalize=(("g", "HSC-G"), ("r", "HSC-R")),
    ),
    KeySpec("field", "str"),
    KeySpec("subdir", "str", allow=("/",)),
    KeySpec("patch", "str", pattern=r"\d+,\d+"),
    KeySpec("expTime", "float", minimum=0.0),
    KeySpec("flagged", "bool"),
    KeySpec("taiObs", "datetime", scale="tai"),
    KeySpec("utcObs", "datetime", scale="utc"),
    KeySpec("dateObs", "date", derive=Derivation("date", "taiObs")),
    KeySpec("calibDate", "date"),
    KeySpec("detector", "str", derive=Derivation("table", "ccd", "detectors")),
    KeySpec("amp", "int", derive=Derivation("table", "detector", "amps")),
)
TABLES = (
    TableSpec("detectors", "ccd", "detector", ((0, "1_53"), (1, "1_54"), (2, "0_20"))),
    TableSpec("amps", "detector", "amp", (("1_53", 4), ("1_54", 4), ("0_20", 8))),
)


@pytest.fixture
def normalizer() -> Normalizer:
    return Normalizer(KEYS, TABLES)


def test_alias_becomes_the_key(normalizer: Normalizer) -> None:
    assert normalizer.normalize({"ccdnum": 16}) == {"ccd": 16}


def test_unknown_key_suggests_the_closest(normalizer: Normalizer) -> None:
    with pytest.raises(InvalidDataIdError, match=r"unknown key 'vist'.*did you mean 'visit'"):
        normalizer.normalize({"vist": 1})


def test_key_and_alias_that_disagree(normalizer: Normalizer) -> None:
    assert normalizer.normalize({"ccd": 3, "ccdnum": "3"}) == {"ccd": 3}
    with pytest.raises(InvalidDataIdError, match="ccd is given twice"):
        normalizer.normalize({"ccd": 3, "ccdnum": 4})


def test_normalize_rule_maps_values(normalizer: Normalizer) -> None:
    assert normalizer.normalize({"filter": "g"}) == {"filter": "HSC-G"}
    assert normalizer.normalize({"filter": "HSC-R"}) == {"filter": "HSC-R"}


def test_result_is_in_declaration_order(normalizer: Normalizer) -> None:
    assert list(normalizer.normalize({"filter": "g", "ccd": 1, "visit": 2})) == [
        "visit",
        "ccd",
        "filter",
        "detector",
        "amp",
    ]


@pytest.mark.parametrize(
    ("raw", "value"),
    [(42, 42), ("42", 42), ("0042", 42), ("+7", 7), (np.int64(42), 42), (42.0, 42)],
)
def test_int_accepts(normalizer: Normalizer, raw: object, value: int) -> None:
    result = normalizer.normalize({"visit": raw})["visit"]
    assert result == value
    assert type(result) is int


@pytest.mark.parametrize("raw", [True, 1.5, "12a", "", " 1", "١٢", None, [1]])
def test_int_rejects(normalizer: Normalizer, raw: object) -> None:
    with pytest.raises(InvalidDataIdError, match="visit="):
        normalizer.normalize({"visit": raw})


def test_float_bool_and_str(normalizer: Normalizer) -> None:
    result = normalizer.normalize({"expTime": 30, "flagged": "true", "field": np.str_("COSMOS")})
    assert result == {"field": "COSMOS", "expTime": 30.0, "flagged": True}
    assert type(result["expTime"]) is float
    assert type(result["field"]) is str
    for bad in ({"expTime": True}, {"expTime": float("nan")}, {"flagged": 1}, {"field": 5}):
        with pytest.raises(InvalidDataIdError):
            normalizer.normalize(bad)


def test_range_choices_and_pattern_say_what_is_allowed(normalizer: Normalizer) -> None:
    with pytest.raises(InvalidDataIdError, match=r"ccd=200: out of range; ccd must be in 0\.\.111"):
        normalizer.normalize({"ccd": 200})
    with pytest.raises(InvalidDataIdError, match=r"filter='HSC-Q'.*'HSC-G', 'HSC-R'"):
        normalizer.normalize({"filter": "HSC-Q"})
    with pytest.raises(InvalidDataIdError, match=r"patch='1-2'.*pattern"):
        normalizer.normalize({"patch": "1-2"})


@pytest.mark.parametrize("value", ["a/b", "..", "../etc", "/abs", "a\\b", "nul\x00", ""])
def test_str_values_cannot_escape_the_repository(normalizer: Normalizer, value: str) -> None:
    with pytest.raises(InvalidDataIdError, match="field="):
        normalizer.normalize({"field": value})


def test_separator_allowed_only_where_declared(normalizer: Normalizer) -> None:
    # a key declared allow "/" holds a path fragment spliced into a template
    for fragment in ("a/b/c", "/a", "/fakesPlots", ""):
        assert normalizer.normalize({"subdir": fragment}) == {"subdir": fragment}
    for value in ("a/../b", "..", "a\\b", "a\x00b"):
        with pytest.raises(InvalidDataIdError, match="subdir="):
            normalizer.normalize({"subdir": value})


def test_dates(normalizer: Normalizer) -> None:
    day = datetime.date(2020, 3, 4)
    assert normalizer.normalize({"calibDate": "2020-03-04"}) == {"calibDate": day}
    assert normalizer.normalize({"calibDate": day}) == {"calibDate": day}
    with pytest.raises(InvalidDataIdError, match="got a datetime"):
        normalizer.normalize({"calibDate": datetime.datetime(2020, 3, 4, 12)})
    for bad in ("20200304", "2020-02-30", 20200304):
        with pytest.raises(InvalidDataIdError, match="calibDate="):
            normalizer.normalize({"calibDate": bad})


def test_datetimes(normalizer: Normalizer) -> None:
    moment = datetime.datetime(2020, 3, 4, 5, 6, 7)
    assert normalizer.normalize({"utcObs": "2020-03-04T05:06:07"})["utcObs"] == moment
    aware = datetime.datetime(
        2020, 3, 4, 6, 6, 7, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert normalizer.normalize({"utcObs": aware})["utcObs"] == moment
    with pytest.raises(InvalidDataIdError, match="got a date"):
        normalizer.normalize({"utcObs": datetime.date(2020, 3, 4)})


def test_astropy_time_is_converted_to_the_key_scale(normalizer: Normalizer) -> None:
    from astropy.time import Time

    utc = Time("2020-01-01T00:00:00", scale="utc")
    result = normalizer.normalize({"taiObs": utc, "utcObs": utc})
    assert result["taiObs"] == datetime.datetime(2020, 1, 1, 0, 0, 37)  # TAI - UTC = 37 s
    assert result["utcObs"] == datetime.datetime(2020, 1, 1)


def test_astropy_is_imported_only_when_given_a_time() -> None:
    code = (
        "import sys, datetime\n"
        "from butler.normalize import Normalizer\n"
        "from butler.spec import KeySpec\n"
        "n = Normalizer((KeySpec('t', 'datetime', scale='tai'),))\n"
        "n.normalize({'t': '2020-01-01T00:00:00'})\n"
        "n.normalize({'t': datetime.datetime(2020, 1, 1)})\n"
        "assert 'astropy' not in sys.modules, 'astropy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_date_key_derived_from_datetime(normalizer: Normalizer) -> None:
    result = normalizer.normalize({"taiObs": "2020-03-04T23:59:59"})
    assert result["dateObs"] == datetime.date(2020, 3, 4)
    with pytest.raises(InvalidDataIdError, match=r"dateObs=.*does not match taiObs"):
        normalizer.normalize({"taiObs": "2020-03-04T23:59:59", "dateObs": "2020-03-05"})


def test_table_lookup_chain_and_inverse(normalizer: Normalizer) -> None:
    assert normalizer.normalize({"ccd": 2}) == {"ccd": 2, "detector": "0_20", "amp": 8}
    assert normalizer.normalize({"detector": "1_54"}) == {"ccd": 1, "detector": "1_54", "amp": 4}
    with pytest.raises(InvalidDataIdError, match="detector='1_53' does not match ccd=1"):
        normalizer.normalize({"ccd": 1, "detector": "1_53"})
    with pytest.raises(InvalidDataIdError, match=r"detector='9_99'.*allowed"):
        normalizer.normalize({"detector": "9_99"})


def test_source_missing_from_table_leaves_derived_key_out(normalizer: Normalizer) -> None:
    assert normalizer.normalize({"ccd": 50}) == {"ccd": 50}
    with pytest.raises(InvalidDataIdError, match="ccd=50 has no row in detectors"):
        normalizer.normalize({"ccd": 50, "detector": "1_53"})


_raw_values = st.fixed_dictionaries(
    {},
    optional={
        "visit": st.one_of(st.integers(0, 9_999_999), st.integers(0, 9_999_999).map(str)),
        "ccdnum": st.integers(0, 111),
        "filter": st.sampled_from(["g", "r", "HSC-G", "HSC-R"]),
        "taiObs": st.datetimes().map(datetime.datetime.isoformat),
        "expTime": st.integers(0, 10**6),
        "flagged": st.sampled_from([True, False, "true", "FALSE"]),
    },
)


@settings(deadline=None)
@given(_raw_values)
def test_normalizing_twice_changes_nothing(values: dict[str, object]) -> None:
    normalizer = Normalizer(KEYS, TABLES)
    once = normalizer.normalize(values)
    assert normalizer.normalize(once) == once
