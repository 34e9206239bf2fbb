"""Silent corruption is caught: each file's size and checksum are recorded as it is written,
get checks the size, ``verify --read`` the bytes (and FITS files their own cards).

Every repository test runs on SQLite and PostgreSQL (the ``backend`` fixture) with the
MiniCam policies of ``tests/fixtures/butler`` (``image`` is FITS in one, HDF5 in the other).
"""

from __future__ import annotations

import io
import itertools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits
from butler.butler import Butler
from butler.checksums import (
    PARALLEL_BYTES,
    FileChecksum,
    HashingFile,
    checksum_of,
    crc_combine,
    file_checksum,
)
from butler.cli import main
from butler.errors import DatasetCorruptError, FormatError
from butler.formatters import _fits_checksum
from butler.formatters.fits import FitsFormatter
from butler.image import Image
from butler.registry import StoredFile
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_butler import backend, image, minicam, table  # noqa: F401  (fixtures)
from test_ingest import HSC_I, HSC_I_PATH, raw_file

VISIT = {"visit": 1, "detector": 1}
FITS_PATH = "image/000001/image-000001-01.fits"
NOTE = {"visit": 1, "label": "x"}
NOTE_PATH = "notes/x/note-000001.yaml"
SHARED_AND_TABLE = ("shared/shared-000002.fits", "tables/fits-000002.fits")


@pytest.fixture
def mappers(minicam: dict[str, Path]) -> dict[str, Path]:  # noqa: F811
    """MiniCam's generated mapper modules, ``{"fits": path, "hdf5": path}``."""
    return minicam


@pytest.fixture
def database(backend: str | None) -> str | None:  # noqa: F811
    """``Butler.create``'s ``registry``: the default SQLite file, or a PostgreSQL schema."""
    return backend


@pytest.fixture(params=["fits", "hdf5"])
def repo(
    request: pytest.FixtureRequest, tmp_path: Path, database: str | None, mappers: dict[str, Path]
) -> Iterator[Butler]:
    """A MiniCam repository whose ``image`` dataset type is FITS, or HDF5."""
    mapper = mappers[request.param]
    with Butler.create(tmp_path / "repo", mapper=mapper, registry=database) as butler:
        yield butler


def flip(path: Path, offset: int) -> None:
    """Flip one bit of the byte at ``offset`` (from the end if negative), in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))


def image_path(butler: Butler) -> Path:
    return Path(butler.uri("image", VISIT).removeprefix("file://"))


# ---- a flipped byte, a truncated file ------------------------------------------------------


def test_a_flipped_pixel_byte_is_reported_by_verify_read(repo: Butler) -> None:
    repo.put(image(1, shape=(64, 64)), "image", VISIT)
    path = image_path(repo)
    assert repo.verify(read=True).clean
    flip(path, -1000)  # inside the pixels: the file still reads
    repo.get("image", VISIT)
    report = repo.verify(read=True)
    assert not report.clean
    assert not report.unreadable
    problems = [why for dt, data_id, p, why in report.corrupt if dt == "image"]
    assert report.corrupt[0][1:3] == (
        "{visit: 1, detector: 1}",
        path.relative_to(repo.root).as_posix(),
    )
    assert problems[0].startswith("checksum mismatch: crc32c:")
    if path.suffix == ".fits":  # and the file's own cards say so too
        assert "fails its own CHECKSUM/DATASUM cards" in problems[1]
    assert "corrupt image {visit: 1, detector: 1}" in str(report)


def test_a_flipped_yaml_byte_is_reported_by_verify_read(repo: Butler) -> None:
    repo.put({"exposure": 30, "comment": "nominal"}, "note", NOTE)
    flip(repo.root / NOTE_PATH, -3)  # a digit or letter: still valid YAML
    report = repo.verify(read=True)
    assert [(dt, p) for dt, _, p, _ in report.corrupt] == [("note", NOTE_PATH)]
    assert not report.clean


def test_a_truncated_file_fails_get_and_verify_with_its_size(repo: Butler) -> None:
    repo.put({"a": 1, "b": [1, 2, 3]}, "note", NOTE)
    path = repo.root / NOTE_PATH
    written = path.stat().st_size
    path.write_bytes(path.read_bytes()[: written // 2])
    with pytest.raises(DatasetCorruptError) as caught:
        repo.get("note", NOTE)
    message = str(caught.value)
    assert "'note'" in message and "{visit: 1, label: 'x'}" in message and str(path) in message
    assert f"has {written // 2} bytes, but {written} were written" in message
    assert isinstance(caught.value, FormatError)  # what get raised for damaged files before
    (entry,) = repo.verify(read=True).corrupt
    assert entry[3] == f"size mismatch: {written} bytes were written, the file has {written // 2}"


def test_overwrite_and_get_many_keep_recording_checksums(repo: Butler) -> None:
    repo.put({"v": 1}, "note", NOTE)
    repo.put({"v": 2, "longer": "value"}, "note", NOTE, overwrite=True)
    repo.put_many("note", [({"v": i}, {"visit": i, "label": "y"}) for i in range(3)])
    repo.put(image(2), "image", VISIT)
    report = repo.verify(read=True)
    assert report.clean and not report.corrupt and report.unchecked == 0
    for stored in repo.registry.stored_datasets():
        recorded = FileChecksum(stored.file.size, stored.file.checksum)  # type: ignore[arg-type]
        assert file_checksum(repo.root / stored.file.path) == recorded


def test_cli_verify_read_fails_on_a_corrupt_file(
    repo: Butler, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.put({"v": 1234}, "note", NOTE)
    flip(repo.root / NOTE_PATH, -3)
    assert main(["verify", str(repo.root), "--read"]) != 0
    assert f"corrupt note {{visit: 1, label: 'x'}} {NOTE_PATH}: checksum mismatch" in (
        capsys.readouterr().out
    )


# ---- repositories written before checksums -------------------------------------------------


def _forget_checksums(butler: Butler) -> None:
    """Make the registry look as one written before checksums were recorded."""
    with butler.registry.engine.begin() as connection:
        tables = connection.execute(sa.text("SELECT table_name FROM dataset_type")).scalars()
        for table in list(tables):
            for column in ("file_size", "file_checksum"):
                connection.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))


def test_a_repository_without_checksums_opens_reads_and_verifies_as_unknown(
    tmp_path: Path, database: str | None, mappers: dict[str, Path]
) -> None:
    root = tmp_path / "old"
    with Butler.create(root, mapper=mappers["fits"], registry=database) as butler:
        butler.put({"v": 1}, "note", NOTE)
        butler.put(image(3), "image", VISIT)
        _forget_checksums(butler)
    with Butler(root, writeable=False) as reader:  # read-only: nothing is altered
        assert reader.get("note", NOTE) == {"v": 1}
        report = reader.verify(read=True)
        assert report.clean and report.unchecked == 2
        assert "2 dataset(s) with no checksum recorded" in str(report)
        assert reader.registry.stored("note", NOTE) == StoredFile(NOTE_PATH, None, None)
    with Butler(root) as writer:  # the upgrade: additive, old rows unknown
        assert writer.get("note", NOTE) == {"v": 1}
        writer.put({"v": 2}, "note", visit=2, label="x")
        report = writer.verify(read=True)
        assert report.clean and report.unchecked == 2
        assert writer.registry.upgrade_checksums() == 0  # idempotent
    with Butler(root) as again:
        assert again.registry.stored("note", {"visit": 2, "label": "x"}).checksum is not None
        assert again.verify(read=True).unchecked == 2


# ---- FITS cards ----------------------------------------------------------------------------


def test_fits_files_carry_checksum_cards_that_astropy_verifies(
    repo: Butler, tmp_path: Path
) -> None:
    repo.put(image(4), "image", VISIT)
    repo.put(image(5), "shared", visit=2, detector=2)  # in HDU 2: written by astropy
    repo.put(table(), "tableFits", visit=2)
    for path in (image_path(repo), *(repo.root / name for name in SHARED_AND_TABLE)):
        if path.suffix != ".fits":
            continue
        with fits.open(path, checksum=True) as hdul:
            for hdu in hdul:
                assert {"CHECKSUM", "DATASUM"} <= set(hdu.header)
                assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1
        FitsFormatter().verify(path)


def test_a_fits_file_without_a_recorded_checksum_is_still_checked_by_its_cards(
    tmp_path: Path, mappers: dict[str, Path]
) -> None:
    with Butler.create(tmp_path / "r", mapper=mappers["fits"]) as butler:
        butler.put(image(7, shape=(40, 40)), "image", VISIT)
        _forget_checksums(butler)
    with Butler(tmp_path / "r") as butler:
        flip(image_path(butler), -500)
        report = butler.verify(read=True)
        ((_, _, _, why),) = report.corrupt
        assert "fails its own CHECKSUM/DATASUM cards" in why and report.unchecked == 1


_PIXEL_TYPES = ["<f4", ">f4", "<f8", ">f8", "<i2", ">i2", "<i4", ">i4", "<i8"]


def _astropys_datasum(array: np.ndarray) -> int:
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(array)]).writeto(buffer, checksum=True)
    buffer.seek(0)
    with fits.open(buffer) as hdul:
        return int(hdul[0].header["DATASUM"])


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(st.sampled_from(_PIXEL_TYPES), hnp.array_shapes(min_dims=1, max_dims=3, max_side=12))
)
def test_our_datasum_is_astropys(array: np.ndarray) -> None:
    assert _fits_checksum.datasum(array) == _astropys_datasum(array)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(_PIXEL_TYPES),
    st.integers(1, 3000),
    st.sampled_from(["random", "all ones", "all zeros"]),
    st.lists(st.integers(1, 800), max_size=5),
    st.integers(0, 2**32 - 1),
)
def test_datasum_summed_piece_by_piece_is_astropys(
    dtype: str, size: int, fill: str, cuts: list[int], seed: int
) -> None:
    """The writer's way: :func:`word_sum` of pieces of an even number of pixels, then
    :func:`datasum_of`; words of all ones make every 64-bit sum wrap."""
    raw = {"random": np.random.default_rng(seed).bytes, "all ones": lambda n: b"\xff" * n}
    data = raw.get(fill, bytes)(size * np.dtype(dtype).itemsize)
    pixels = np.frombuffer(data, dtype=dtype).copy()  # astropy swaps bytes in place
    bounds = sorted({0, size, *(min(size, 2 * cut) for cut in cuts)})
    total = sum(_fits_checksum.word_sum(pixels[a:b]) for a, b in itertools.pairwise(bounds))
    assert _fits_checksum.datasum_of(total, pixels) == _astropys_datasum(pixels)


@given(st.binary(max_size=4000).map(lambda b: b[: len(b) - len(b) % 4]))
def test_word_sum_is_the_exact_sum_of_the_native_words(data: bytes) -> None:
    words = np.frombuffer(data, dtype=np.uint32)
    exact = sum(int(word) for word in words)
    assert _fits_checksum.word_sum(words) == exact
    assert _fits_checksum.word_sum(words.astype(">u4")) == exact
    assert _fits_checksum.widened_sum(words.view(np.uint8)) == exact


@pytest.mark.parametrize(
    "pixels",
    [
        np.random.default_rng(1).random((1500, 1100), dtype=np.float32),  # 6.6 MB: two pieces
        np.random.default_rng(2).random((1200, 1001)).astype(">f8"),  # big-endian, as read
        np.full((2049, 2049), -1, dtype=np.int16),  # odd count: a lone last pixel
    ],
    ids=["f4", ">f8", "i2-odd"],
)
def test_a_fits_image_of_several_pieces_is_hashed_while_written(
    tmp_path: Path, pixels: np.ndarray
) -> None:
    """Pixels written in pieces, each hashed (CRC-32C) and summed (DATASUM) as it goes:
    the cards are astropy's, the recorded checksum the file's, nothing was read back."""
    path = tmp_path / "large.fits"
    with HashingFile(path) as file:
        FitsFormatter().write_stream(Image(pixels, {"EXPTIME": 1.0}), file)
    assert not file.reread
    assert file.checksum == file_checksum(path)
    with fits.open(path, checksum=True) as hdul:
        assert hdul[0].verify_checksum() == 1 and hdul[0].verify_datasum() == 1
        assert int(hdul[0].header["DATASUM"]) == _astropys_datasum(pixels)
        assert np.array_equal(hdul[0].data, pixels)


# ---- the recorded checksum is the checksum of the file's bytes -----------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=6),
    visit=st.integers(0, 999),
)
def test_recorded_checksum_is_the_files(
    tmp_path: Path, mappers: dict[str, Path], payload: dict[str, object], visit: int
) -> None:
    root = tmp_path / "law"
    if not root.exists():
        Butler.create(root, mapper=mappers["hdf5"]).close()
    with Butler(root) as butler:
        butler.put(payload, "note", visit=visit, label="p", overwrite=True)
        pixels = np.random.default_rng(visit).normal(size=(visit % 7 + 1, 5)).astype(np.float32)
        butler.put(Image(pixels, {"V": visit}), "image", visit=visit, detector=1, overwrite=True)
        butler.put(Image(pixels), "shared", visit=visit, detector=1, overwrite=True)
        for name, data_id in (
            ("note", {"visit": visit, "label": "p"}),
            ("image", {"visit": visit, "detector": 1}),
            ("shared", {"visit": visit, "detector": 1}),
        ):
            stored = butler.registry.stored(name, data_id)
            assert stored is not None
            recorded = FileChecksum(stored.size, stored.checksum)  # type: ignore[arg-type]
            assert file_checksum(butler.root / stored.path) == recorded


_writes = st.lists(
    st.tuples(
        st.integers(0, 300_000),
        st.binary(min_size=0, max_size=300)
        | st.integers(64 << 10, 200_000).map(lambda n: os.urandom(n)),
    ),
    max_size=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    appended=st.lists(st.binary(max_size=200), max_size=4),
    writes=_writes,
    cut=st.none() | st.integers(0, 400_000),
)
def test_hashing_file_knows_the_checksum_of_what_it_wrote(
    tmp_path: Path, appended: list[bytes], writes: list[tuple[int, bytes]], cut: int | None
) -> None:
    """Appends, then writes anywhere (h5py's pattern), then maybe a truncation: the
    checksum a HashingFile reports is that of the bytes in the file."""
    path = tmp_path / "f"
    with HashingFile(path) as file:
        for data in appended:
            file.write(data)
        for offset, data in writes:
            file.seek(offset)
            file.write(data)
        if cut is not None:
            file.truncate(cut)
    data = path.read_bytes()
    assert file.checksum == FileChecksum(len(data), checksum_of(data))


@pytest.mark.parametrize("overwrite_after", [False, True])
def test_hashing_file_large_writes_in_pieces(tmp_path: Path, overwrite_after: bool) -> None:
    """Writes longer than ``PARALLEL_BYTES`` (hashed in pieces in a second thread), out of
    order and continuing one another (one CRC, extended), a header written last; and a
    short write over what was hashed, which is only then read back."""
    rng = np.random.default_rng(5)
    big, more = rng.bytes(PARALLEL_BYTES * 2 + 12_345), rng.bytes(PARALLEL_BYTES + 7)
    path = tmp_path / "f"
    with HashingFile(path) as file:
        file.seek(4000)
        file.write(big)
        file.write(more)
        file.seek(0)
        file.write(b"header" * 100)
        if overwrite_after:
            file.seek(4000 + PARALLEL_BYTES)
            file.write(b"late")
    data = path.read_bytes()
    assert file.checksum == FileChecksum(len(data), checksum_of(data))
    assert file.reread == overwrite_after


@given(st.binary(max_size=300), st.binary(max_size=3000))
def test_crc_combine_joins_two_pieces(first: bytes, second: bytes) -> None:
    combined = crc_combine(crc32c(first), crc32c(second), len(second))
    assert combined == crc32c(first + second)


def test_built_in_formats_never_read_their_file_back(tmp_path: Path) -> None:
    from butler.formatters import FormatterRegistry

    formatters = FormatterRegistry.default()
    pixels = np.arange(300_000, dtype=np.float32).reshape(500, 600)  # large writes
    for name, obj in (
        ("fits", Image(pixels, {"A": 1})),
        ("hdf5", {"a": pixels, "b": {"c": 1}}),
        ("yaml", {"a": 1}),
        ("json", [1, 2]),
        ("text", "x" * 100_000),
    ):
        with HashingFile(tmp_path / name) as file:
            formatters.get(name).write_stream(obj, file)
        assert not file.reread, name
        assert file.checksum == file_checksum(tmp_path / name), name


# ---- ingest ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transfer", ["copy", "symlink"])  # hashed while copied; read once
def test_ingest_records_size_and_checksum(
    tmp_path: Path, transfer: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    root = tmp_path / "repo"
    with Butler.create(root, mapper="hsc") as butler:
        source = raw_file(tmp_path / "in", HSC_I)
        expected = file_checksum(source)
        assert butler.ingest([source], transfer=transfer, show_progress=False).ok  # type: ignore[arg-type]
        stored = butler.registry.stored(
            "raw", butler.registry.complete("raw", {"visit": 904024, "ccd": 50})[0]
        )
        assert stored is not None
        assert FileChecksum(stored.size, stored.checksum) == expected  # type: ignore[arg-type]
        placed = butler.root / stored.path
        assert not butler.verify(read=True).corrupt  # (header-only raws have no pixels to read)
        flip(placed, 100)  # in the header; through a link, the source changes too
        ((name, _, path, why),) = butler.verify(read=True).corrupt
        assert (name, path) == ("raw", stored.path) and why.startswith("checksum mismatch")
        assert stored.path == HSC_I_PATH
