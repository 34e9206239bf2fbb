"""FITS specifics: headers, multi-extension files, .gz and .fz, corrupt files."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from butler.errors import FormatError
from butler.formatters import BBox, Image
from butler.formatters.fits import FitsFormatter

FMT = FitsFormatter()


def image(value: int, **metadata: bool | int | float | str) -> Image:
    return Image(np.full((6, 8), value, dtype=np.int32), metadata)


def test_metadata_becomes_header_cards(tmp_path: Path) -> None:
    path = tmp_path / "x.fits"
    meta = {"EXPTIME": 30.0, "exptime_requested": 31, "obs id": "a b", "LONGSTR": "x" * 300}
    FMT.write(Image(np.zeros((2, 2), np.float32), meta), path)
    with fits.open(path) as hdul:
        header = hdul[0].header
        assert header["EXPTIME"] == 30.0
        assert header["exptime_requested"] == 31  # a HIERARCH card, case kept
        assert header["LONGSTR"] == "x" * 300  # CONTINUE cards
    assert FMT.read_metadata(path) == meta


def test_values_fits_cannot_hold_are_dropped(tmp_path: Path) -> None:
    meta = {"OK": 1, "NAXIS": 7, "BZERO": 3, "TFORM1": "J", "NAN": float("nan"), "UNI": "é"}
    FMT.write(Image(np.zeros((2, 2)), meta), tmp_path / "x.fits")
    assert FMT.read_metadata(tmp_path / "x.fits") == {"OK": 1}


def test_mef_hdu_selection(tmp_path: Path) -> None:
    path = tmp_path / "mef.fits"
    table = Table({"a": [1, 2, 3]})
    FMT.write([image(0, EXTNAME="PRIMARY"), image(1, EXTNAME="SCI"), image(2), table], path)
    assert FMT.read(path, hdu=1) == image(1, EXTNAME="SCI")
    assert FMT.read(path, hdu="sci") == image(1, EXTNAME="SCI")
    np.testing.assert_array_equal(FMT.read(path, hdu=2), image(2).array)
    assert list(FMT.read(path, hdu=3)["a"]) == [1, 2, 3]
    assert FMT.read_metadata(path, hdu="SCI") == {"EXTNAME": "SCI"}
    np.testing.assert_array_equal(FMT.read_section(path, BBox(0, 0, 2, 2), hdu=2), 2)
    with pytest.raises(FormatError, match="has no HDU 4; it has HDUs 0 to 3"):
        FMT.read(path, hdu=4)
    with pytest.raises(FormatError, match="no HDU named 'VAR'"):
        FMT.read(path, hdu="VAR")
    with pytest.raises(FormatError, match=r"is a table, not a numpy\.ndarray"):
        FMT.read(path, hdu=3, python_type="numpy.ndarray")


def test_write_into_a_given_hdu(tmp_path: Path) -> None:
    FMT.write(image(5, K=1), tmp_path / "x.fits", hdu=2)
    with fits.open(tmp_path / "x.fits") as hdul:
        assert len(hdul) == 3 and hdul[0].data is None and hdul[1].data is None
    assert FMT.read(tmp_path / "x.fits") == image(5, K=1)  # hdu=None: the first with data
    assert FMT.read(tmp_path / "x.fits", hdu=2) == image(5, K=1)
    with pytest.raises(FormatError, match="has no data"):
        FMT.read(tmp_path / "x.fits", hdu=1)


def test_tile_compressed_numbering_matches_the_uncompressed_file(tmp_path: Path) -> None:
    items = [image(0, A=1), image(1, EXTNAME="SCI"), image(2)]
    FMT.write(items, tmp_path / "plain.fits")
    FMT.write(items, tmp_path / "packed.fits.fz", compress=".fz")
    with fits.open(tmp_path / "packed.fits.fz") as hdul:
        assert hdul[0].data is None
        assert all(isinstance(h, fits.CompImageHDU) for h in hdul[1:])
    for hdu in (None, 0, 1, 2, "SCI"):
        plain = FMT.read(tmp_path / "plain.fits", hdu=hdu)
        packed = FMT.read(tmp_path / "packed.fits.fz", hdu=hdu)
        assert isinstance(plain, Image | np.ndarray)
        assert type(packed) is type(plain)
        if isinstance(plain, Image):
            assert packed == plain
        else:
            np.testing.assert_array_equal(packed, plain)


def test_fpacked_file_from_elsewhere_reads_transparently(tmp_path: Path) -> None:
    data = np.arange(64, dtype=np.int16).reshape(8, 8)
    header = fits.Header([("FILTER", "r")])
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)])
    hdul.writeto(tmp_path / "ext.fits.fz")
    result = FMT.read(tmp_path / "ext.fits.fz")
    assert result == Image(data, {"FILTER": "r"})
    assert FMT.read(tmp_path / "ext.fits.fz", hdu=1) == result  # no ZSIMPLE: physical numbering


def test_gz_is_gzip_and_deterministic(tmp_path: Path) -> None:
    FMT.write(image(3, K=1), tmp_path / "a.tmp", compress=".gz")
    FMT.write(image(3, K=1), tmp_path / "b.tmp", compress=".gz")
    raw = (tmp_path / "a.tmp").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw == (tmp_path / "b.tmp").read_bytes()
    assert gzip.decompress(raw)[:6] == b"SIMPLE"
    assert FMT.read(tmp_path / "a.tmp") == image(3, K=1)


def test_a_name_ending_in_gz_does_not_compress(tmp_path: Path) -> None:
    FMT.write(image(1), tmp_path / "x.fits.gz")  # compression is the caller's decision
    assert (tmp_path / "x.fits.gz").read_bytes()[:6] == b"SIMPLE"


def test_table_info_without_rows(tmp_path: Path) -> None:
    table = Table({"id": np.arange(5), "name": ["a", "bb", "c", "d", "e"], "v": np.ones((5, 3))})
    FMT.write(table, tmp_path / "t.fits")
    info = FMT.read_table_info(tmp_path / "t.fits")
    assert info.length == 5
    assert info.columns == {"id": "int64", "name": "str", "v": "float64[3]"}
    with pytest.raises(FormatError, match="is not a table"):
        FMT.read_table_info(tmp_path / "t.fits", hdu=0)
    with pytest.raises(FormatError, match=r"tables are extensions \(hdu >= 1\)"):
        FMT.write(table, tmp_path / "u.fits", hdu=0)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"a": 1}, "cannot write a dict; it accepts butler.image.Image, numpy.ndarray"),
        (np.zeros((2, 2), dtype=bool), "integer or floating-point pixels"),
        ([], "list of HDUs is empty"),
    ],
)
def test_objects_fits_cannot_hold(obj: object, message: str, tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=re.escape(message)):
        FMT.write(obj, tmp_path / "x.fits")


def test_bad_arguments(tmp_path: Path) -> None:
    FMT.write(image(1), tmp_path / "x.fits")
    with pytest.raises(FormatError, match=r"cannot write compression '\.bz2'"):
        FMT.write(image(1), tmp_path / "y.fits", compress=".bz2")
    with pytest.raises(FormatError, match="cannot read a 'dict'"):
        FMT.read(tmp_path / "x.fits", python_type="dict")
    with pytest.raises(FormatError, match="is an image, not a table"):
        FMT.read(tmp_path / "x.fits", python_type="astropy.table.Table")


def _corrupt(kind: str, path: Path) -> None:
    FMT.write(
        Image(np.ones((300, 300), np.float64), {"K": 1}),
        path,
        compress=(".gz" if kind == "gz" else ".fz" if kind == "fz" else None),
    )
    raw = path.read_bytes()
    if kind == "garbage":
        raw = b"this is not a FITS file" * 200
    elif kind == "header":
        raw = raw[:1000]
    else:
        raw = raw[: len(raw) // 2]
    path.write_bytes(raw)


@pytest.mark.parametrize("kind", ["garbage", "header", "data", "gz", "fz"])
@pytest.mark.parametrize("method", ["read", "read_metadata", "read_section"])
def test_corrupt_files_name_the_file(kind: str, method: str, tmp_path: Path) -> None:
    path = tmp_path / "bad file.fits"
    _corrupt(kind, path)
    with pytest.raises(FormatError, match=re.escape(f"'{path}'")):
        if method == "read":
            FMT.read(path)
        elif method == "read_metadata":
            FMT.read_metadata(path)
        else:
            FMT.read_section(path, BBox(0, 200, 10, 290))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="No such file"):
        FMT.read(tmp_path / "nope.fits")
