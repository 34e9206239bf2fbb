"""Gen2 layouts that real paths showed wrong (issue 19): one test per class of path.

Each data ID is as Gen2 code held it; each path is what the Gen2 template printed.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from butler import load_mapper
from butler.errors import InvalidDataIdError
from butlerc.driver import check_policy


@pytest.mark.parametrize("module", ["hsc", "decam", "megacam", "imsim", "lsstcam"])
def test_ref_cat_pixel_id_is_an_integer(module: str) -> None:
    """Gen2 printed the HTM pixel id with %s; it is an int everywhere it is used."""
    mapper = load_mapper(module)
    path = "ref_cats/gaia_dr2_20200414/189584.fits"
    assert mapper.path("ref_cat", name="gaia_dr2_20200414", pixel_id=189584) == path
    assert mapper.path("ref_cat", name="gaia_dr2_20200414", pixel_id="189584") == path
    assert mapper.parse("ref_cat", path)["pixel_id"] == 189584


CURATED = [
    ("decam", "defects", {"ccdnum": 1}, "defects/{d}/defects-{d}-001.fits"),
    ("decam", "crosstalk", {"ccdnum": 25}, "crosstalk/{d}/crosstalk-{d}-025.fits"),
    (
        "imsim",
        "defects",
        {"raftName": "R11", "detectorName": "S20", "detector": 42},
        "defects/{d}/defects-{d}-R11-S20-042.fits",
    ),
    (
        "lsstcam",
        "linearizer",
        {"detector": 42},
        "linearizer/{d}/linearizer-det042_{d}.fits",
    ),
    (
        "latiss",
        "defects",
        {"raftName": "R00", "detectorName": "S00", "detector": 0},
        "defects/{d}/defects-{d}-R00-S00-000.fits",
    ),
]


@pytest.mark.parametrize(("module", "dataset", "data_id", "template"), CURATED)
def test_curated_calib_date_may_carry_a_time(
    module: str, dataset: str, data_id: dict[str, object], template: str
) -> None:
    """obs_*_data curated calibrations were written with calibDate 1970-01-01T00:00:00."""
    mapper = load_mapper(module)
    for day in ("1970-01-01T00:00:00", "2019-09-05"):
        path = template.format(d=day)
        assert mapper.path(dataset, calibDate=day, **data_id) == path
        assert mapper.parse(dataset, path)["calibDate"] == day
    with pytest.raises(InvalidDataIdError, match="calibDate"):
        mapper.path(dataset, calibDate="1970-01-01 midnight", **data_id)


def test_phosim_metadata_by_visit() -> None:
    """PhoSim used lsstCamMapper's expId templates; its expId is the visit (raw registry)."""
    mapper = load_mapper("phosim")
    data_id = {"visit": 204595, "filter": "i", "raftName": "R11", "detectorName": "S20"}
    path = (
        "processCcd_metadata/0000000204595-i/R11/"
        "processCcdMetadata_0000000204595-i-R11-S20-det042.yaml"
    )
    assert mapper.path("processCcd_metadata", detector=42, **data_id) == path
    assert mapper.parse("processCcd_metadata", path)["visit"] == 204595
    with pytest.raises(InvalidDataIdError, match="expId=7 does not match visit=204595"):
        mapper.path("processCcd_metadata", detector=42, expId=7, **data_id)


def test_same_needs_keys_of_one_type(tmp_path: Path) -> None:
    policy = tmp_path / "cam.butler"
    policy.write_text(
        "instrument Cam {\n    key visit: int\n    key expId: str = same(visit)\n}\n",
        encoding="utf-8",
    )
    (diagnostic,) = check_policy(policy).diagnostics
    assert diagnostic.code == "BC014"
    assert "same(visit) must have the type of 'visit' (int), not str" in diagnostic.message


def test_calib_date_keys_stay_dates_where_they_were_dates() -> None:
    """ToyCam's calibDate is a real date (not a Gen2 layout): unchanged."""
    mapper = load_mapper("toycam")
    found = mapper.normalize({"calibDate": "2024-03-04", "detector": 1})
    assert found["calibDate"] == datetime.date(2024, 3, 4)
