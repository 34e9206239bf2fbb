"""The lean primary-header reader gives what astropy gives, card by card; and the
translation of only the asked properties equals astro-metadata-translator's own."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
from astro_metadata_translator import ObservationInfo
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from butler.fits_cards import read_primary_cards
from butler.ingest import read_header_file, write_header_only_fits
from butler.translation import Translation
from hypothesis import given, settings
from hypothesis import strategies as st

HEADERS = Path(__file__).parent / "data" / "headers"
KEYWORDS = st.from_regex(r"[A-Z][A-Z0-9_-]{0,7}", fullmatch=True).filter(
    lambda k: k not in {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "END", "COMMENT", "HISTORY"}
)
VALUES = st.one_of(
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYWORDS, VALUES, max_size=40))
def test_every_card_reads_as_astropy_reads_it(
    tmp_path_factory: pytest.TempPathFactory, cards: dict[str, object]
) -> None:
    path = tmp_path_factory.mktemp("cards") / "h.fits"
    header = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        for key, value in cards.items():
            header[key] = value
        fits.PrimaryHDU(header=header).writeto(path)
    expected = fits.getheader(path)
    read = read_primary_cards(path)
    for key in cards:
        assert key in read and key.lower() in read
        assert read[key] == expected[key] and type(read[key]) is type(expected[key]), key
    assert "NOT-HERE" not in read
    fixed = copy.copy(read)  # a translator's fix-up changes its copy only
    fixed["NEW"] = 1
    assert "NEW" in fixed and "NEW" not in read


def test_long_strings_and_commentary_cards_are_left_to_astropy(tmp_path: Path) -> None:
    path = tmp_path / "long.fits"
    header = fits.Header()
    header["LONGSTR"] = "x" * 100 + " end"
    header["COMMENT"] = "first"
    header["COMMENT"] = "second"
    header["HIERARCH ESO DET CHIP"] = "A1"
    fits.PrimaryHDU(header=header).writeto(path)
    read = read_primary_cards(path)
    assert read["LONGSTR"] == "x" * 100 + " end"
    assert list(read["COMMENT"]) == ["first", "second"]
    assert read["HIERARCH ESO DET CHIP"] == read["ESO DET CHIP"] == "A1"


def test_not_a_fits_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.fits").write_bytes(b"hello" * 1000)
    with pytest.raises(ValueError, match="not a FITS file"):
        read_primary_cards(tmp_path / "x.fits")


PROPERTIES = [
    "instrument",
    "exposure_id",
    "detector_num",
    "physical_filter",
    "datetime_begin",
    "object",
]


@pytest.mark.parametrize(
    "name",
    [
        "fitsheader-hsc.yaml",
        "fitsheader-hsc-HSCA04090107.yaml",
        "fitsheader-decam.yaml",
        "fitsheader-megaprime.yaml",
    ],
)
def test_translation_equals_observation_info(tmp_path: Path, name: str) -> None:
    header = read_header_file(HEADERS / name)
    path = write_header_only_fits(header, tmp_path / "raw.fits")
    expected = ObservationInfo(
        dict(fits.getheader(path)), filename=str(path), subset=set(PROPERTIES)
    )
    translation = Translation()
    for _ in range(2):  # the second time, the time property is the one remembered
        _, values = translation.translate(read_primary_cards(path), PROPERTIES, str(path))
        for prop in PROPERTIES:
            assert values[prop] == getattr(expected, prop), prop


def test_a_remembered_time_follows_its_cards(tmp_path: Path) -> None:
    header = read_header_file(HEADERS / "fitsheader-hsc.yaml")
    translation = Translation()
    begins = []
    for date in ("2013-11-02", "2014-01-05", "2013-11-02"):
        header["DATE-OBS"] = date
        path = write_header_only_fits(header, tmp_path / f"{date}.fits")
        _, values = translation.translate(read_primary_cards(path), ["datetime_begin"], None)
        expected = ObservationInfo(dict(fits.getheader(path)), subset={"datetime_begin"})
        assert values["datetime_begin"] == expected.datetime_begin
        begins.append(values["datetime_begin"].utc.isot[:10])
    assert begins == ["2013-11-02", "2014-01-05", "2013-11-02"]
