"""``Butler``: what a user of a repository relies on, on SQLite and PostgreSQL.

Repositories here use the bundled tutorial camera (``toycam``) or MiniCam, a tiny
policy in ``tests/fixtures/butler/`` that exists in two variants differing only in
the format of dataset type ``image`` (FITS or HDF5). Every test that touches a
registry runs once per database (the ``backend`` fixture).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import butlerc
import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from astropy.io import fits
from astropy.table import Table
from butler import storage as storage_module
from butler.butler import Butler
from butler.errors import (
    AmbiguousDataIdError,
    ButlerError,
    ConfigError,
    DatasetExistsError,
    DatasetNotFoundError,
    FormatError,
    InvalidDataIdError,
    ReadOnlyError,
    RepositoryError,
)
from butler.formatters import BBox, Image
from butler.storage import SYNCFS_FILES, TEMP_SUFFIX, LocalStorage

FIXTURES = Path(__file__).parent / "fixtures" / "butler"
OBS_TIME = datetime.datetime(2024, 3, 1, 4, 5, 6)


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The ``registry`` argument of ``Butler.create``: the default SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def minicam(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The generated mapper module of each MiniCam variant: ``{"fits": path, "hdf5": path}``."""
    modules = {}
    for variant in ("fits", "hdf5"):
        result = butlerc.compile_policy(FIXTURES / f"minicam_{variant}.butler")
        assert not result.diagnostics, [str(d) for d in result.diagnostics]
        folder = tmp_path_factory.mktemp(f"minicam_{variant}")
        modules[variant] = folder / "minicam.py"
        modules[variant].write_text(result.modules["minicam"], encoding="utf-8")
    return modules


@pytest.fixture
def repo(tmp_path: Path, backend: str | None, minicam: dict[str, Path]) -> Iterator[Butler]:
    with Butler.create(tmp_path / "repo", mapper=minicam["fits"], registry=backend) as butler:
        yield butler


@pytest.fixture
def toy(tmp_path: Path, backend: str | None) -> Iterator[Butler]:
    with Butler.create(tmp_path / "toy", mapper="toycam", registry=backend) as butler:
        yield butler


def files(butler: Butler) -> list[str]:
    """Every file below the root except the repository's own (config, SQLite registry)."""
    return list(butler.storage.walk(butler.own_files()))


def image(seed: int = 0, shape: tuple[int, int] = (12, 16)) -> Image:
    rng = np.random.default_rng(seed)
    pixels = rng.normal(100.0, 5.0, size=shape).astype(np.float32)
    return Image(pixels, {"EXPTIME": 30.0, "OBJECT": f"field {seed}", "VISIT": seed, "FLAT": True})


def table(rows: int = 5) -> Table:
    return Table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "flux": np.linspace(1.0, 2.0, rows),
            "name": [f"src{i}" for i in range(rows)],
        }
    )


def pixels(obj: object) -> np.ndarray:
    """The pixels of what ``get`` returned for an image: an ``Image`` or a bare array."""
    return obj.array if isinstance(obj, Image) else np.asarray(obj)


def assert_tables_equal(got: Table, expected: Table) -> None:
    assert got.colnames == expected.colnames
    assert len(got) == len(expected)
    for name in expected.colnames:
        assert list(got[name]) == list(expected[name]), name


# ---- repositories ------------------------------------------------------------------------------


def test_create_then_reopen_reads_what_was_written(
    tmp_path: Path, backend: str | None, minicam: dict[str, Path]
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper=minicam["fits"], registry=backend) as butler:
        butler.put({"a": 1}, "note", visit=1, label="x")
    with Butler(root) as reopened:
        assert reopened.get("note", visit=1, label="x") == {"a": 1}
        assert reopened.writeable
        assert repr(reopened) == f"Butler({str(root)!r})"


def test_create_twice_refuses_and_keeps_the_first(
    tmp_path: Path, backend: str | None, minicam: dict[str, Path]
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper=minicam["fits"], registry=backend) as butler:
        butler.put({"a": 1}, "note", visit=1, label="x")
    config = (root / "butler.yaml").read_bytes()
    with pytest.raises(RepositoryError, match="already a Butler repository"):
        Butler.create(root, mapper="toycam", registry=backend)
    assert (root / "butler.yaml").read_bytes() == config
    with Butler(root) as butler:
        assert butler.get("note", visit=1, label="x") == {"a": 1}


def test_opening_a_plain_folder_says_how_to_create_a_repository(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Butler(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert "not a Butler repository" in message
    assert "butler create" in message


def test_read_only_butler_refuses_every_write_and_writes_nothing(repo: Butler) -> None:
    repo.put({"a": 1}, "note", visit=1, label="x")
    before = files(repo)
    (repo.root / "notes" / "y").mkdir()
    (repo.root / "notes" / "y" / "note-000002.yaml").write_text("b: 2\n")
    before = files(repo)
    with Butler(repo.root, writeable=False) as reader:
        assert not reader.writeable
        with pytest.raises(ReadOnlyError, match="writeable=False"):
            reader.put({"a": 2}, "note", visit=2, label="x")
        with pytest.raises(ReadOnlyError):
            reader.put({"a": 3}, "note", visit=1, label="x", overwrite=True)
        with pytest.raises(ReadOnlyError):
            reader.put_many("note", [({"a": 4}, {"visit": 4, "label": "x"})])
        with pytest.raises(ReadOnlyError):
            reader.remove("note", visit=1, label="x")
        with pytest.raises(ReadOnlyError):
            reader.index()
        assert reader.get("note", visit=1, label="x") == {"a": 1}
    assert files(repo) == before
    assert repo.count("note") == 1
    assert repo.get("note", visit=1, label="x") == {"a": 1}


def test_repository_configured_read_only_refuses_writes(repo: Butler) -> None:
    config = repo.root / "butler.yaml"
    config.write_text(config.read_text() + "read_only: true\n")
    with Butler(repo.root) as reader, pytest.raises(ReadOnlyError, match="configured read_only"):
        reader.put({"a": 1}, "note", visit=1, label="x")
    assert files(repo) == []


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ("read_only: @yes\n", "not valid YAML"),
        ("read_only: yes please\n", "'yes please' is not of type 'boolean'"),
        ("colour: blue\n", "'colour' was unexpected"),
    ],
    ids=["bad-yaml", "wrong-type", "unknown-field"],
)
def test_malformed_config_names_the_file_and_line(
    tmp_path: Path, minicam: dict[str, Path], extra: str, complaint: str
) -> None:
    root = tmp_path / "repo"
    Butler.create(root, mapper=minicam["fits"]).close()
    config = root / "butler.yaml"
    text = config.read_text()
    config.write_text(text + extra)
    line = len(text.splitlines()) + 1
    with pytest.raises(ConfigError) as caught:
        Butler(root)
    assert f"{config}:{line}:" in str(caught.value)
    assert complaint in str(caught.value)


def test_bad_durability_is_refused_in_the_call_and_in_the_file(
    tmp_path: Path, minicam: dict[str, Path]
) -> None:
    with pytest.raises(RepositoryError, match="durability must be one of 'put', 'close'"):
        Butler.create(tmp_path / "never", mapper=minicam["fits"], durability="later")
    assert not (tmp_path / "never").exists()
    root = tmp_path / "repo"
    Butler.create(root, mapper=minicam["fits"]).close()
    config = root / "butler.yaml"
    text = config.read_text()
    config.write_text(text + "durability: sometimes\n")
    with pytest.raises(ConfigError, match=rf"{config}:{len(text.splitlines()) + 1}: durability"):
        Butler(root)


# ---- durability: close ---------------------------------------------------------------------------


def test_deferred_durability_is_recorded_and_keeps_every_put(
    tmp_path: Path, backend: str | None, minicam: dict[str, Path]
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper=minicam["fits"], registry=backend, durability="close") as b:
        b.put({"one": 1}, "note", visit=1, label="single")
        # more than SYNCFS_FILES, so the sync flushes the file system in one call
        b.put_many("note", [({"i": i}, {"visit": i, "label": "bulk"}) for i in range(100)])
        b.put({"one": 2}, "note", visit=1, label="single", overwrite=True)
        b.put({"gone": True}, "note", visit=2, label="removed")
        b.remove("note", visit=2, label="removed")  # its file is gone before the sync
        with pytest.raises(DatasetExistsError):
            b.put({"one": 3}, "note", visit=1, label="single")
        b.sync()
    assert "durability: close" in (root / "butler.yaml").read_text()
    with Butler(root) as reopened:
        assert reopened.config.durability == "close"
        assert reopened.get("note", visit=1, label="single") == {"one": 2}
        assert reopened.get_many("note", [{"visit": i, "label": "bulk"} for i in range(100)]) == [
            {"i": i} for i in range(100)
        ]
        assert reopened.verify(read=True).clean
        assert not reopened.exists("note", visit=2, label="removed")


@pytest.mark.parametrize("fallback", ["renameat2", "link", "check"])
def test_publishing_a_new_file_never_replaces_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: str
) -> None:
    """Each way a platform may rename without replacing keeps the file already there."""
    if fallback != "renameat2":  # a C library without renameat2
        monkeypatch.setattr(storage_module, "_renameat2", lambda: None)
    if fallback == "check":  # and a file system that refuses hard links

        def no_links(source: object, target: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(storage_module.os, "link", no_links)
    storage = LocalStorage(tmp_path)
    taken, temporary, target = tmp_path / "taken", tmp_path / ".new.tmp", tmp_path / "new"
    taken.write_text("kept")
    temporary.write_text("fresh")
    with pytest.raises(DatasetExistsError, match=r"already at .*taken"):
        storage.publish(temporary, taken)
    assert taken.read_text() == "kept" and temporary.read_text() == "fresh"
    storage.publish(temporary, target)
    assert target.read_text() == "fresh" and not temporary.exists()


def test_replacing_a_file_keeps_it_until_the_caller_settles(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    temporary, target, kept = tmp_path / ".new.tmp", tmp_path / "new", tmp_path / "kept"
    temporary.write_text("first")
    assert not storage.replace(temporary, target, kept)  # nothing was there to keep
    temporary.write_text("second")
    assert storage.replace(temporary, target, kept)
    assert kept.read_text() == "first" and target.read_text() == "second"
    storage.restore(kept, target)  # the commit failed: the first file is back
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


@pytest.mark.parametrize("count", [3, SYNCFS_FILES])
def test_syncing_a_missing_file_fails_unless_missing_is_allowed(tmp_path: Path, count: int) -> None:
    storage = LocalStorage(tmp_path)
    written = [tmp_path / "d" / f"{i}.txt" for i in range(count)]
    written[0].parent.mkdir()
    for path in written:
        path.write_text("x")
    written[-1].unlink()
    with pytest.raises(FileNotFoundError):
        storage.sync(written)
    storage.sync(written, missing_ok=True)


def test_cli_creates_a_repository_with_deferred_durability(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from butler.cli import main

    root = tmp_path / "repo"
    assert main(["create", str(root), "--mapper", "toycam", "--durability", "close"]) == 0
    assert "created" in capsys.readouterr().out
    with Butler(root) as butler:
        assert butler.config.durability == "close"


# ---- put and get -------------------------------------------------------------------------------


def test_image_round_trips_through_fits_with_metadata(repo: Butler) -> None:
    original = image(1)
    data_id = repo.put(original, "image", visit=1, detector=2).data_id
    assert dict(data_id) == {"visit": 1, "detector": 2}
    got = repo.get("image", visit=1, detector=2)
    assert isinstance(got, Image)
    assert got == original
    path = repo.root / "image/000001/image-000001-02.fits"
    with fits.open(path) as hdus:
        assert np.array_equal(hdus[0].data, original.array)
        assert hdus[0].header["OBJECT"] == "field 1"


@pytest.mark.parametrize(("variant", "suffix"), [("fits", ".fits"), ("hdf5", ".h5")])
def test_same_dataset_as_fits_or_hdf5_reads_back_the_same_object(
    tmp_path: Path, backend: str | None, minicam: dict[str, Path], variant: str, suffix: str
) -> None:
    """The two MiniCam variants differ only in the format of ``image``; the object is the same."""
    original = image(2)
    with Butler.create(tmp_path / "repo", mapper=minicam[variant], registry=backend) as butler:
        butler.put(original, "image", visit=3, detector=4)
        assert files(butler) == [f"image/000003/image-000003-04{suffix}"]
        got = butler.get("image", visit=3, detector=4)
    assert isinstance(got, Image)
    assert got == original


@pytest.mark.parametrize("dataset_type", ["tableFits", "tableH5"])
def test_table_round_trips(repo: Butler, dataset_type: str) -> None:
    original = table(7)
    repo.put(original, dataset_type, visit=5)
    got = repo.get(dataset_type, visit=5)
    assert isinstance(got, Table)
    assert_tables_equal(got, original)


def test_yaml_dict_round_trips(repo: Butler) -> None:
    original = {"seeing": 0.71, "stars": [1, 2, 3], "nested": {"ok": True, "note": "é ✓"}}
    repo.put(original, "note", visit=9, label="summary")
    assert repo.get("note", visit=9, label="summary") == original


def test_put_refuses_to_overwrite_unless_asked(repo: Butler) -> None:
    repo.put({"v": 1}, "note", visit=1, label="x")
    with pytest.raises(DatasetExistsError) as caught:
        repo.put({"v": 2}, "note", visit=1, label="x")
    assert "'note'" in str(caught.value)
    assert "overwrite=True" in str(caught.value)
    assert repo.get("note", visit=1, label="x") == {"v": 1}
    repo.put({"v": 3}, "note", visit=1, label="x", overwrite=True)
    assert repo.get("note", visit=1, label="x") == {"v": 3}
    assert repo.count("note") == 1
    assert files(repo) == ["notes/x/note-000001.yaml"]


def test_put_into_a_shared_file_holding_another_dataset_is_refused(repo: Butler) -> None:
    first = image(1)
    repo.put(first, "shared", visit=1, detector=1)
    before = (repo.root / "shared/shared-000001.fits").read_bytes()
    with pytest.raises(DatasetExistsError, match="nothing was written"):
        repo.put(image(2), "shared", visit=1, detector=2)
    assert (repo.root / "shared/shared-000001.fits").read_bytes() == before
    assert repo.get("shared", visit=1, detector=1) == first
    assert not repo.exists("shared", visit=1, detector=2)
    assert files(repo) == ["shared/shared-000001.fits"]


@pytest.mark.parametrize("bulk", [False, True])
def test_a_rolled_back_overwrite_keeps_the_old_content(repo: Butler, bulk: bool) -> None:
    repo.put_many("note", [({"v": i}, {"visit": i, "label": "x"}) for i in (1, 2)])
    with pytest.raises(RuntimeError, match="abandoned"), repo.transaction():
        if bulk:
            items = [({"v": -i}, {"visit": i, "label": "x"}) for i in (1, 2, 3)]
            repo.put_many("note", items, overwrite=True)
        else:  # twice: the rollback must reach back past the first overwrite
            repo.put({"v": -9}, "note", visit=1, label="x", overwrite=True)
            repo.put({"v": -1}, "note", visit=1, label="x", overwrite=True)
        assert repo.get("note", visit=1, label="x") == {"v": -1}
        raise RuntimeError("abandoned")
    assert repo.get_many("note", [{"visit": i, "label": "x"} for i in (1, 2)]) == [
        {"v": 1},
        {"v": 2},
    ]
    assert not repo.exists("note", visit=3, label="x")
    assert files(repo) == ["notes/x/note-000001.yaml", "notes/x/note-000002.yaml"]
    assert repo.verify(read=True).clean
    repo.put({"v": 9}, "note", visit=1, label="x", overwrite=True)  # and committed: replaced
    assert repo.get("note", visit=1, label="x") == {"v": 9}
    assert files(repo) == ["notes/x/note-000001.yaml", "notes/x/note-000002.yaml"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_put_never_replaces_a_file_no_record_knows(repo: Butler, overwrite: bool) -> None:
    stray = repo.root / "notes/x/note-000001.yaml"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"written by hand\n")
    with pytest.raises(DatasetExistsError, match=r"notes/x/note-000001\.yaml.*butler verify"):
        repo.put({"v": 1}, "note", visit=1, label="x", overwrite=overwrite)
    assert stray.read_bytes() == b"written by hand\n"
    assert not repo.exists("note", visit=1, label="x")
    assert files(repo) == ["notes/x/note-000001.yaml"]  # and no temporary left behind


def test_repository_root_with_spaces_and_non_ascii(
    tmp_path: Path, backend: str | None, minicam: dict[str, Path]
) -> None:
    root = tmp_path / "my data" / "données ✨ 観測"
    with Butler.create(root, mapper=minicam["fits"], registry=backend) as butler:
        butler.put(image(3), "image", visit=1, detector=1)
        butler.put({"k": "v"}, "note", visit=1, label="x")
        uri = butler.uri("image", visit=1, detector=1)
        assert Path(unquote(urlparse(uri).path)) == root / "image/000001/image-000001-01.fits"
    with Butler(root) as butler:
        assert butler.get("image", visit=1, detector=1) == image(3)
        assert butler.get("note", visit=1, label="x") == {"k": "v"}
        assert butler.verify(read=True).clean


def test_get_of_a_missing_dataset_names_type_normalized_data_id_and_registry(toy: Butler) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        toy.get("calexp", {"visit": 42, "ccd": 5}, filter="r")
    message = str(caught.value)
    assert "'calexp'" in message
    # normalized: the alias ccd became detector, r became TC-R, derived keys filled in
    assert "visit: 42" in message
    assert "detector: 5" in message
    assert "detectorName: 'B2'" in message
    assert "filter: 'TC-R'" in message
    assert "ccd" not in message.split("(")[0]
    assert toy.registry.url in message
    assert "calexp/000042/TC-R/calexp-000042-B2.fits" in message


def test_missing_keys_are_completed_when_the_match_is_unique(repo: Butler) -> None:
    repo.put({"n": 1}, "note", visit=1, label="a")
    assert repo.get("note", visit=1) == {"n": 1}
    repo.put({"n": 2}, "note", visit=1, label="b")
    with pytest.raises(AmbiguousDataIdError) as caught:
        repo.get("note", visit=1)
    message = str(caught.value)
    assert "label: 'a'" in message
    assert "label: 'b'" in message
    assert repo.get("note", visit=1, label="b") == {"n": 2}


def test_lookup_from_raw_fills_the_filter_of_a_calexp(toy: Butler) -> None:
    raw_id = toy.put(
        np.zeros((4, 4), np.float32), "raw", visit=7, ccd=1, filter="g", obsTime=OBS_TIME
    ).data_id
    assert raw_id["filter"] == "TC-G"
    completed = toy.put(np.ones((4, 4)), "calexp", visit=7, detector=1).data_id
    assert completed["filter"] == "TC-G"
    assert (toy.root / "calexp/000007/TC-G/calexp-000007-A1.fits").is_file()
    assert np.array_equal(pixels(toy.get("calexp", visit=7, detector=1)), np.ones((4, 4)))
    with pytest.raises(InvalidDataIdError, match="no 'raw' dataset matches"):
        toy.put(np.ones((4, 4)), "calexp", visit=8, detector=1)


def test_lookup_from_raw_refuses_an_ambiguous_fill(toy: Butler) -> None:
    for band in ("g", "r"):
        toy.put(np.zeros((2, 2)), "raw", visit=7, ccd=1, filter=band, obsTime=OBS_TIME)
    before = files(toy)
    with pytest.raises(AmbiguousDataIdError) as caught:
        toy.put(np.ones((2, 2)), "calexp", visit=7, detector=1)
    assert "'TC-G'" in str(caught.value) and "'TC-R'" in str(caught.value)
    assert files(toy) == before


@pytest.mark.parametrize(
    "label", ["..", "a/b", "../../escape", "a\0b", "/etc/passwd", "back\\slash", ""]
)
def test_hostile_data_id_values_are_refused_and_write_nothing(repo: Butler, label: str) -> None:
    with pytest.raises(InvalidDataIdError):
        repo.put({"evil": True}, "note", visit=1, label=label)
    with pytest.raises(InvalidDataIdError):
        repo.put_many(
            "note",
            [
                ({"ok": True}, {"visit": 2, "label": "fine"}),
                ({"evil": True}, {"visit": 3, "label": label}),
            ],
        )
    assert files(repo) == []
    assert not any(p.name != "repo" for p in repo.root.parent.iterdir())
    assert repo.count("note") == 0


@pytest.mark.parametrize(
    ("dataset_type", "data_id", "obj", "relative"),
    [
        ("image", {"visit": 1, "detector": 1}, image(1), "image/000001/image-000001-01.fits"),
        ("tableH5", {"visit": 1}, table(), "tables/h5-000001.h5"),
        ("note", {"visit": 1, "label": "x"}, {"a": 1}, "notes/x/note-000001.yaml"),
    ],
)
def test_corrupt_file_raises_format_error_naming_the_file(
    repo: Butler, dataset_type: str, data_id: dict[str, object], obj: object, relative: str
) -> None:
    repo.put(obj, dataset_type, data_id)
    path = repo.root / relative
    path.write_bytes(b"\x00\xffnot a real file: [unclosed {\n\x89")
    with pytest.raises(FormatError) as caught:
        repo.get(dataset_type, data_id)
    assert str(path) in str(caught.value)
    report = repo.verify(read=True)
    assert not report.clean
    assert [(dt, p) for dt, p, _ in report.unreadable] == [(dataset_type, relative)]


def test_truncated_fits_raises_format_error(repo: Butler) -> None:
    repo.put(image(1), "image", visit=1, detector=1)
    path = repo.root / "image/000001/image-000001-01.fits"
    path.write_bytes(path.read_bytes()[: 2880 + 100])
    with pytest.raises(FormatError, match=str(path)):
        repo.get("image", visit=1, detector=1)


# ---- partial reads -----------------------------------------------------------------------------


def test_get_metadata_reads_the_header_without_the_pixels(repo: Butler) -> None:
    original = image(4, shape=(64, 64))
    repo.put(original, "image", visit=1, detector=1)
    metadata = repo.get_metadata("image", visit=1, detector=1)
    for key, value in original.metadata.items():
        assert metadata[key] == value
    assert not any(isinstance(v, np.ndarray) for v in metadata.values())


@pytest.mark.parametrize("variant", ["fits", "hdf5"])
def test_get_section_equals_slicing_and_does_not_poison_a_later_get(
    tmp_path: Path, backend: str | None, minicam: dict[str, Path], variant: str
) -> None:
    with Butler.create(tmp_path / "repo", mapper=minicam[variant], registry=backend) as butler:
        original = image(5, shape=(20, 30))
        butler.put(original, "image", visit=1, detector=1)
        box = BBox(x0=3, y0=5, x1=17, y1=9)
        section = butler.get_section("image", box, visit=1, detector=1)
        pixels = section.array if isinstance(section, Image) else section
        assert np.array_equal(pixels, original.array[box.slices])
        assert butler.get("image", visit=1, detector=1) == original
        again = butler.get_section("image", BBox(0, 0, 30, 20), visit=1, detector=1)
        again_pixels = again.array if isinstance(again, Image) else again
        assert np.array_equal(again_pixels, original.array)


@pytest.mark.parametrize("dataset_type", ["tableFits", "tableH5"])
def test_get_table_info(repo: Butler, dataset_type: str) -> None:
    repo.put(table(11), dataset_type, visit=2)
    info = repo.get_table_info(dataset_type, visit=2)
    assert info.length == 11
    assert list(info.columns) == ["id", "flux", "name"]
    assert info.columns["id"] == "int64"
    assert info.columns["flux"] == "float64"
    assert info.columns["name"] in ("str", "bytes")


# ---- queries and maintenance ------------------------------------------------------------------


@pytest.fixture
def notes(repo: Butler) -> Butler:
    for visit in (1, 2, 3):
        for label in ("a", "b"):
            if (visit, label) != (3, "b"):
                repo.put({"visit": visit, "label": label}, "note", visit=visit, label=label)
    return repo


def test_query_query_values_and_count(notes: Butler) -> None:
    everything = {(d["visit"], d["label"]) for d in notes.query("note")}
    assert everything == {(1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "a")}
    assert {d["visit"] for d in notes.query("note", label="b")} == {1, 2}
    assert notes.query_values("note", "label") == ["a", "b"]
    assert notes.query_values("note", "label", visit=3) == ["a"]
    assert notes.query_values("note", "visit", label="b") == [1, 2]
    assert notes.count("note") == 5
    assert notes.count("note", visit=2) == 2
    assert notes.count("note", visit=99) == 0
    assert list(notes.query("image")) == []
    assert notes.count("image") == 0
    with pytest.raises(InvalidDataIdError, match="not a key of 'note'"):
        notes.count("note", detector=1)
    with pytest.raises(InvalidDataIdError):
        notes.query_values("note", "detector")
    for data_id in notes.query("note", visit=1):
        assert notes.get("note", data_id) == {"visit": 1, "label": data_id["label"]}


def test_exists_and_exists_many(notes: Butler) -> None:
    assert notes.exists("note", visit=1, label="a")
    assert not notes.exists("note", visit=3, label="b")
    assert notes.exists("note", visit=3)  # unique partial match
    assert not notes.exists("note", visit=99)
    with pytest.raises(AmbiguousDataIdError):
        notes.exists("note", visit=1)
    ids = [{"visit": 1, "label": "a"}, {"visit": 3, "label": "b"}, {"visit": 2, "label": "b"}]
    assert notes.exists_many("note", ids) == [True, False, True]


def test_uri_of_stored_and_not_yet_written_datasets(repo: Butler) -> None:
    repo.put({"a": 1}, "note", visit=1, label="x")
    stored = repo.uri("note", visit=1, label="x")
    assert stored == (repo.root / "notes/x/note-000001.yaml").as_uri()
    assert Path(unquote(urlparse(stored).path)).is_file()
    future = repo.uri("image", visit=12, detector=3)
    assert future == (repo.root / "image/000012/image-000012-03.fits").as_uri()
    assert not (repo.root / "image").exists()
    with pytest.raises(InvalidDataIdError):
        repo.uri("image", visit=12)


def test_remove_forgets_the_dataset_and_deletes_its_file(notes: Butler) -> None:
    path = notes.root / "notes/a/note-000002.yaml"
    assert path.is_file()
    notes.remove("note", visit=2, label="a")
    assert not path.exists()
    assert not notes.exists("note", visit=2, label="a")
    assert notes.count("note") == 4
    with pytest.raises(DatasetNotFoundError):
        notes.get("note", visit=2, label="a")
    with pytest.raises(DatasetNotFoundError):
        notes.remove("note", visit=2, label="a")
    notes.put({"back": True}, "note", visit=2, label="a")
    assert notes.get("note", visit=2, label="a") == {"back": True}
    assert notes.verify().clean


def test_index_registers_files_written_by_hand(repo: Butler) -> None:
    (repo.root / "notes/x").mkdir(parents=True)
    for visit in (1, 2):
        text = yaml.safe_dump({"visit": visit})
        (repo.root / f"notes/x/note-{visit:06d}.yaml").write_text(text)
    (repo.root / "tables").mkdir()
    table(3).write(repo.root / "tables/h5-000004.h5", path="data", serialize_meta=False)
    hdu = fits.PrimaryHDU(image(6).array)
    hdu.header["OBJECT"] = "by hand"
    (repo.root / "image/000005").mkdir(parents=True)
    hdu.writeto(repo.root / "image/000005/image-000005-01.fits")
    (repo.root / "README.txt").write_text("not a dataset\n")
    report = repo.index()
    assert report.registered == {"note": 2, "tableH5": 1, "image": 1}
    assert report.unmatched == ("README.txt",)
    assert repo.get("note", visit=2, label="x") == {"visit": 2}
    assert repo.get("note", visit=1) == {"visit": 1}
    assert np.array_equal(repo.get("image", visit=5, detector=1).array, image(6).array)
    assert repo.get_metadata("image", visit=5, detector=1)["OBJECT"] == "by hand"
    assert len(repo.get("tableH5", visit=4)) == 3
    again = repo.index()
    assert again.registered == {}
    assert again.known == 4


def test_verify_reports_missing_and_untracked_files(notes: Butler) -> None:
    report = notes.verify(read=True)
    assert report.clean
    assert report.datasets == 5
    assert report.missing == report.unreadable == report.untracked == report.temporaries == ()
    (notes.root / "notes/b/note-000001.yaml").unlink()
    (notes.root / "notes/stray.yaml").write_text("x: 1\n")
    report = notes.verify()
    assert not report.clean
    assert report.missing == (("note", "notes/b/note-000001.yaml"),)
    assert report.untracked == ("notes/stray.yaml",)
    assert "notes/b/note-000001.yaml" in str(report)
    with pytest.raises(DatasetNotFoundError, match="file is missing"):
        notes.get("note", visit=1, label="b")


def test_verify_counts_an_untracked_file_as_clean_but_lists_it(notes: Butler) -> None:
    (notes.root / "notes/stray.yaml").write_text("x: 1\n")
    (notes.root / f"notes/.half.yaml.1-ab{TEMP_SUFFIX}").write_text("x: ")
    report = notes.verify()
    assert report.clean
    assert report.untracked == ("notes/stray.yaml",)
    assert report.temporaries == (f"notes/.half.yaml.1-ab{TEMP_SUFFIX}",)


# ---- bulk --------------------------------------------------------------------------------------


def test_put_many_stores_a_thousand_datasets_in_one_commit(repo: Butler) -> None:
    repo.put({"first": True}, "note", visit=0, label="first")  # registers the dataset type
    items = [({"i": i, "sq": i * i}, {"visit": i, "label": "bulk"}) for i in range(1000)]
    commits: list[object] = []

    def on_commit(connection: object) -> None:
        commits.append(connection)

    sa.event.listen(repo.registry.engine, "commit", on_commit)
    try:
        ids = repo.put_many("note", items)
    finally:
        sa.event.remove(repo.registry.engine, "commit", on_commit)
    assert len(commits) == 1
    assert [ref.data_id["visit"] for ref in ids] == list(range(1000))
    assert repo.count("note", label="bulk") == 1000
    got = repo.get_many("note", [{"visit": i, "label": "bulk"} for i in range(1000)])
    assert got == [obj for obj, _ in items]
    assert len(files(repo)) == 1001


@pytest.mark.parametrize("duplicate", ["already-stored", "within-batch"])
def test_a_failed_put_many_leaves_nothing_behind(repo: Butler, duplicate: str) -> None:
    repo.put({"kept": True}, "note", visit=5000, label="keep")
    items: list[tuple[object, dict[str, object]]] = [
        ({"i": i}, {"visit": i, "label": "bulk"}) for i in range(300)
    ]
    if duplicate == "already-stored":
        items.insert(150, ({"i": "dup"}, {"visit": 5000, "label": "keep"}))
    else:
        items.append(({"i": "dup"}, {"visit": 17, "label": "bulk"}))
    said = {
        "already-stored": r"'note' with data ID \{visit: 5000, label: 'keep'\} already exists at "
        r"'notes/keep/note-005000.yaml'; pass overwrite=True",
        "within-batch": r"\{visit: 17, label: 'bulk'\} appears twice in one put_many call",
    }[duplicate]
    with pytest.raises(DatasetExistsError, match=said):
        repo.put_many("note", items)
    assert repo.count("note") == 1
    assert files(repo) == ["notes/keep/note-005000.yaml"]
    assert repo.get("note", visit=5000, label="keep") == {"kept": True}
    assert repo.verify().clean


def test_every_error_is_a_butler_error(repo: Butler) -> None:
    with pytest.raises(ButlerError):
        repo.get("nope", visit=1)
    with pytest.raises(ButlerError):
        repo.put({"a": 1}, "note", visit=-1, label="x")
    with pytest.raises(ButlerError):
        repo.get("note", visit="not a number", label="x")


def test_removed_files_and_folders_do_not_leak_outside_the_root(repo: Butler) -> None:
    outside = repo.root.parent / "outside.yaml"
    outside.write_text("secret: 1\n")
    with pytest.raises(InvalidDataIdError):
        repo.remove("note", visit=1, label="../../outside")
    assert outside.read_text() == "secret: 1\n"
    assert set(os.listdir(repo.root.parent)) == {"outside.yaml", "repo"}


# ---- transactions ------------------------------------------------------------------------------


def test_a_rolled_back_transaction_keeps_removed_files_and_drops_new_ones(repo: Butler) -> None:
    repo.put({"kept": 1}, "note", visit=1, label="x")
    repo.put({"kept": 2}, "note", visit=2, label="x")
    with pytest.raises(RuntimeError, match="abort"), repo.transaction():
        repo.remove("note", visit=1, label="x")
        repo.put({"new": 3}, "note", visit=3, label="x")
        repo.remove("note", visit=2, label="x")
        repo.put({"again": 2}, "note", visit=2, label="x")  # same data ID, after its remove
        raise RuntimeError("abort")
    assert repo.get("note", visit=1, label="x") == {"kept": 1}
    assert repo.get("note", visit=2, label="x") == {"kept": 2}
    assert not repo.exists("note", visit=3, label="x")
    report = repo.verify(read=True)
    assert report.clean, str(report)
    assert report.untracked == report.temporaries == ()
    repo.put({"new": 3}, "note", visit=3, label="x")  # not blocked by a leftover file
    assert repo.get("note", visit=3, label="x") == {"new": 3}


def test_a_rolled_back_put_then_remove_of_a_new_dataset_leaves_nothing(repo: Butler) -> None:
    # found by the state machine: undoing "put X, remove X" must restore, then delete
    with pytest.raises(RuntimeError, match="abort"), repo.transaction():
        repo.put({"brief": 1}, "note", visit=1, label="x")
        repo.remove("note", visit=1, label="x")
        raise RuntimeError("abort")
    assert not repo.exists("note", visit=1, label="x")
    report = repo.verify()
    assert report.clean and report.untracked == report.temporaries == (), str(report)
    assert files(repo) == []


def test_a_committed_transaction_applies_every_put_and_remove(repo: Butler) -> None:
    repo.put({"old": 1}, "note", visit=1, label="x")
    repo.put({"old": 2}, "note", visit=2, label="x")
    with repo.transaction():
        repo.remove("note", visit=1, label="x")
        repo.remove("note", visit=2, label="x")
        repo.put({"new": 2}, "note", visit=2, label="x")
        repo.put({"new": 3}, "note", visit=3, label="x")
    assert not repo.exists("note", visit=1, label="x")
    assert repo.get("note", visit=2, label="x") == {"new": 2}
    assert repo.get("note", visit=3, label="x") == {"new": 3}
    report = repo.verify(read=True)
    assert report.clean, str(report)
    assert report.untracked == report.temporaries == ()
    assert files(repo) == ["notes/x/note-000002.yaml", "notes/x/note-000003.yaml"]
