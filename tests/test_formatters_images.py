"""Images through FITS and HDF5: the same Image round-trips through both, pixels and metadata."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from butler.errors import FormatError
from butler.formatters import BBox, Formatter, Image
from butler.formatters.fits import FitsFormatter
from butler.formatters.hdf5 import Hdf5Formatter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: (formatter, compress) pairs every image test runs on.
BACKENDS = [
    pytest.param(FitsFormatter(), None, id="fits"),
    pytest.param(FitsFormatter(), ".gz", id="fits.gz"),
    pytest.param(FitsFormatter(), ".fz", id="fits.fz"),
    pytest.param(Hdf5Formatter(), None, id="hdf5"),
]

DTYPES = ["uint8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64"]

# Keys valid in both formats and never reserved by FITS (no reserved keyword starts with "K").
keys = st.from_regex(r"K[A-Za-z0-9_]{0,15}", fullmatch=True)
values = st.one_of(
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.integers(-(10**9), 10**9).map(lambda i: i / 64),  # floats that fit a FITS card exactly
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120).map(str.rstrip),
)
metadata = st.dictionaries(keys, values, max_size=8).filter(
    lambda d: len({k.upper() for k in d}) == len(d)  # FITS keywords ignore case
)
arrays = hnp.arrays(
    st.sampled_from(DTYPES),
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
)


def sample_image() -> Image:
    array = np.arange(12 * 17, dtype=np.float32).reshape(12, 17) / 7
    return Image(array, {"EXPTIME": 30.5, "FILTER": "HSC-R", "ccd_number": 22, "FLAT": True})


@pytest.mark.parametrize(("fmt", "compress"), BACKENDS)
def test_image_round_trip(fmt: Formatter, compress: str | None, tmp_path: Path) -> None:
    image = sample_image()
    path = tmp_path / "calexp.tmp"
    fmt.write(image, path, compress=compress)
    assert fmt.read(path) == image
    assert fmt.read(path, python_type="butler.image.Image") == image
    np.testing.assert_array_equal(fmt.read(path, python_type="numpy.ndarray"), image.array)


@pytest.mark.parametrize(("fmt", "compress"), BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(array=arrays, meta=metadata)
def test_any_image_round_trips(
    fmt: Formatter,
    compress: str | None,
    array: np.ndarray,
    meta: dict[str, bool | int | float | str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = tmp_path_factory.mktemp("img") / "image"
    image = Image(array, meta)
    fmt.write(image, path, compress=compress)
    assert fmt.read(path, python_type="butler.image.Image") == image
    assert fmt.read_metadata(path) == meta


@pytest.mark.parametrize(("fmt", "compress"), BACKENDS)
def test_bare_array_reads_as_array(fmt: Formatter, compress: str | None, tmp_path: Path) -> None:
    array = np.arange(20, dtype=np.int16).reshape(4, 5)
    fmt.write(array, tmp_path / "a", compress=compress)
    result = fmt.read(tmp_path / "a")
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, array)
    # FITS keeps the file's (big-endian) byte order, as astropy does; HDF5 is native
    assert result.dtype.newbyteorder("=") == np.int16


def test_fits_and_hdf5_agree(tmp_path: Path) -> None:
    image = sample_image()
    FitsFormatter().write(image, tmp_path / "a.fits")
    Hdf5Formatter().write(image, tmp_path / "a.h5")
    from_fits = FitsFormatter().read(tmp_path / "a.fits")
    from_hdf5 = Hdf5Formatter().read(tmp_path / "a.h5")
    assert from_fits == from_hdf5 == image


@pytest.mark.parametrize(("fmt", "compress"), BACKENDS)
def test_metadata_only(fmt: Formatter, compress: str | None, tmp_path: Path) -> None:
    fmt.write(sample_image(), tmp_path / "m", compress=compress)
    assert fmt.read_metadata(tmp_path / "m") == sample_image().metadata


@pytest.fixture(scope="module", params=[pytest.param(tuple(p.values), id=p.id) for p in BACKENDS])
def written(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Formatter, Path, np.ndarray]:
    fmt, compress = request.param
    array = np.arange(23 * 31, dtype=np.int32).reshape(23, 31)
    path = tmp_path_factory.mktemp("section") / "image"
    fmt.write(Image(array, {"K": 1}), path, compress=compress)
    return fmt, path, array


@st.composite
def bboxes(draw: st.DrawFn, shape: tuple[int, int]) -> BBox:
    height, width = shape
    x0 = draw(st.integers(0, width))
    y0 = draw(st.integers(0, height))
    x1 = draw(st.integers(x0, width))
    y1 = draw(st.integers(y0, height))
    return BBox(x0, y0, x1, y1)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_section_matches_slicing(
    written: tuple[Formatter, Path, np.ndarray], data: st.DataObject
) -> None:
    fmt, path, array = written
    bbox = data.draw(bboxes((23, 31)))
    section = fmt.read_section(path, bbox)
    assert isinstance(section, np.ndarray)
    np.testing.assert_array_equal(section, array[bbox.slices])
    assert section.shape == bbox.shape


@pytest.mark.parametrize(("fmt", "compress"), BACKENDS)
def test_section_of_a_cube_cuts_the_last_two_axes(
    fmt: Formatter, compress: str | None, tmp_path: Path
) -> None:
    cube = np.arange(3 * 6 * 7, dtype=np.float64).reshape(3, 6, 7)
    fmt.write(cube, tmp_path / "cube", compress=compress)
    bbox = BBox(x0=2, y0=1, x1=5, y1=4)
    np.testing.assert_array_equal(fmt.read_section(tmp_path / "cube", bbox), cube[:, 1:4, 2:5])


@pytest.mark.parametrize(("fmt", "compress"), BACKENDS)
def test_section_outside_the_image_is_an_error(
    fmt: Formatter, compress: str | None, tmp_path: Path
) -> None:
    fmt.write(np.zeros((4, 5)), tmp_path / "small", compress=compress)
    with pytest.raises(FormatError, match=r"not inside .*shape \(4, 5\)"):
        fmt.read_section(tmp_path / "small", BBox(0, 0, 6, 2))


@pytest.mark.parametrize(
    "fmt", [pytest.param(FitsFormatter(), id="fits"), pytest.param(Hdf5Formatter(), id="hdf5")]
)
def test_metadata_and_section_reads_do_not_load_the_pixels(fmt: Formatter, tmp_path: Path) -> None:
    big = np.ones((1000, 1000), dtype=np.float64)  # 8 MB
    fmt.write(Image(big, {"K": 1}), tmp_path / "big")
    del big
    tracemalloc.start()
    try:
        fmt.read_metadata(tmp_path / "big")
        fmt.read_section(tmp_path / "big", BBox(10, 10, 20, 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_bbox_convention() -> None:
    bbox = BBox(x0=10, y0=20, x1=15, y1=22)
    assert bbox.slices == (slice(20, 22), slice(10, 15))
    assert bbox.shape == (2, 5)
    assert BBox.from_slices(slice(20, 22), slice(10, 15)) == bbox
    with pytest.raises(ValueError, match="not a box"):
        BBox(5, 0, 4, 1)


def test_image_equality_compares_arrays() -> None:
    a = Image(np.array([[1.0, np.nan]]), {"K": 1})
    assert a == Image(np.array([[1.0, np.nan]]), {"K": np.int64(1)})
    assert a == Image(np.array([[1.0, np.nan]], dtype=">f8"), {"K": 1})
    assert a != Image(np.array([[1.0, 2.0]]), {"K": 1})
    assert a != Image(np.array([[1.0, np.nan]], dtype=np.float32), {"K": 1})
    assert a != Image(np.array([[1.0, np.nan]]), {"K": 2})
    with pytest.raises(TypeError, match="metadata values"):
        Image(np.zeros(1), {"K": [1, 2]})
