"""Ingest of LSST raws from their header cards alone (obs_lsst's translators are not on PyPI).

The headers are synthetic (see tests/data/headers/README.md): the cards LSST raw primary
headers carry, with values in LSST's documented forms, written by astropy into small FITS
files. The policy's rules (policies/obs_lsst.butler) turn them into data IDs.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from butler.butler import Butler
from butler.cli import main

#: An LSSTCam raw's primary header: R22 S11, day 2024-01-31, sequence number 123.
LSSTCAM: dict[str, Any] = {
    "INSTRUME": "LSSTCam",
    "TELESCOP": "Simonyi Survey Telescope",
    "TIMESYS": "TAI",
    "DATE-OBS": "2024-02-01T03:15:00.123",
    "MJD-OBS": 60341.135418,
    "DAYOBS": "20240131",
    "SEQNUM": 123,
    "CONTRLLR": "O",
    "OBSID": "MC_O_20240131_000123",
    "RAFTBAY": "R22",
    "CCDSLOT": "S11",
    "FILTER": "r_57",
    "IMGTYPE": "OBJECT",
    "EXPTIME": 30.0,
}

COMCAM = {**LSSTCAM, "INSTRUME": "ComCam", "OBSID": "CC_O_20240131_000123", "FILTER": "i_06"}

#: LATISS: one CCD (no RAFTBAY/CCDSLOT in use), physical filter FILTER~GRATING.
LATISS = {
    **{k: v for k, v in LSSTCAM.items() if k not in ("RAFTBAY", "CCDSLOT")},
    "INSTRUME": "LATISS",
    "OBSID": "AT_O_20240131_000123",
    "DAYOBS": 20240131,  # an integer card reads the same as text
    "FILTER": "SDSSr_65mm",
    "GRATING": "empty_1",
}


def lsst_raw(path: Path, header: dict[str, Any], **cards: Any) -> Path:
    """A raw file: the primary header's cards (``cards`` over ``header``), one image HDU."""
    import numpy as np
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    for key, value in {**header, **cards}.items():
        if value is not None:
            primary.header[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    image = fits.ImageHDU(np.zeros((2, 2), dtype=np.int32), name="Segment10")
    fits.HDUList([primary, image]).writeto(path)
    return path


def ingested(root: Path, mapper: str, *sources: Path) -> tuple[Butler, list[dict[str, Any]]]:
    butler = Butler.create(root, mapper=mapper)
    report = butler.ingest(list(sources))
    assert report.ok, str(report)
    return butler, sorted((dict(found) for found in butler.query("raw")), key=str)


def test_lsstcam_raws_become_data_ids_from_their_cards(tmp_path: Path) -> None:
    incoming = tmp_path / "in"
    central = lsst_raw(incoming / "a.fits", LSSTCAM)
    first = lsst_raw(incoming / "b.fits", LSSTCAM, RAFTBAY="R01", CCDSLOT="S00", SEQNUM=7)
    corner = lsst_raw(incoming / "c.fits", LSSTCAM, RAFTBAY="R44", CCDSLOT="SW1")
    butler, found = ingested(tmp_path / "repo", "lsstcam", central, first, corner)
    with butler:
        by_detector = {d["detector"]: d for d in found}
        assert sorted(by_detector) == [0, 94, 204]
        assert by_detector[94] == {
            "dayObs": datetime.date(2024, 1, 31),
            "expId": 2024013100123,
            "visit": 2024013100123,
            "raftName": "R22",
            "detectorName": "S11",
            "detector": 94,
            "filter": "r_57",
            # DATE-OBS is TAI and stays as written (no UTC-TAI offset added)
            "dateObs": datetime.datetime(2024, 2, 1, 3, 15, 0, 123000),
        }
        assert by_detector[0]["expId"] == 2024013100007
        assert (by_detector[204]["raftName"], by_detector[204]["detectorName"]) == ("R44", "SW1")
        path = "raw/2024-01-31/2024013100123/2024013100123-R22-S11-det094.fits"
        assert (tmp_path / "repo" / path).is_file()


def test_comcam_numbers_its_nine_ccds_from_zero(tmp_path: Path) -> None:
    sources = [
        lsst_raw(tmp_path / "in" / f"{slot}.fits", COMCAM, CCDSLOT=slot)
        for slot in ("S00", "S11", "S22")
    ]
    butler, found = ingested(tmp_path / "repo", "lsstcomcam", *sources)
    with butler:
        assert [(d["detectorName"], d["detector"]) for d in found] == [
            ("S00", 0),
            ("S11", 4),
            ("S22", 8),
        ]
        assert {d["filter"] for d in found} == {"i_06"}


def test_latiss_has_one_detector_and_a_filter_grating_filter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "repo")
    source = lsst_raw(tmp_path / "in" / "latiss.fits", LATISS)
    assert main(["create", root, "--mapper", "latiss"]) == 0
    assert main(["ingest", root, str(source)]) == 0
    assert "ingested 1 file(s) as 1 'raw' dataset(s)" in capsys.readouterr().out
    with Butler(root) as butler:
        (found,) = butler.query("raw")
        assert dict(found) == {
            "dayObs": datetime.date(2024, 1, 31),
            "expId": 2024013100123,
            "visit": 2024013100123,
            "detector": 0,
            "filter": "SDSSr_65mm~empty_1",
            "dateObs": datetime.datetime(2024, 2, 1, 3, 15, 0, 123000),
        }
    assert (tmp_path / "repo" / "raw/2024-01-31/2024013100123-det000.fits").is_file()


@pytest.mark.parametrize(
    ("cards", "message"),
    [
        ({"CCDSLOT": None}, "its header has no CCDSLOT card, which gives 'detectorName'"),
        (
            {"RAFTBAY": "R99"},
            "cannot turn its cards '{RAFTBAY}_{CCDSLOT}' 'R99_S11' into 'detector' (table): "
            "table lsstcam_detectors has no row for it",
        ),
        (
            {"SEQNUM": "12x"},
            "cannot put its cards DAYOBS='20240131', SEQNUM='12x' together as "
            "'{DAYOBS}{SEQNUM:05d}' for 'expId'",
        ),
        (
            {"DAYOBS": "2024-01-31"},
            "cannot turn its DAYOBS card '2024-01-31' into 'dayObs' (date): it is not a date "
            "written as '%Y%m%d'",
        ),
    ],
)
def test_a_wrong_card_names_the_card_and_the_key(
    tmp_path: Path, cards: dict[str, Any], message: str
) -> None:
    good = lsst_raw(tmp_path / "in" / "good.fits", LSSTCAM)
    bad = lsst_raw(tmp_path / "in" / "bad.fits", LSSTCAM, **cards)
    with Butler.create(tmp_path / "repo", mapper="lsstcam") as butler:
        report = butler.ingest([good, bad])
        assert [source for source, _ in report.failed] == [str(bad)]
        assert message in str(report), str(report)
        assert len(list(butler.query("raw"))) == 1  # the good file is in; the bad one left nothing
