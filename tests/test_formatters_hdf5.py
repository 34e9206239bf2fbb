"""HDF5 specifics: layout, dicts of arrays, attributes, corrupt files."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.table import Table
from butler.errors import FormatError
from butler.formatters import BBox, Image
from butler.formatters.hdf5 import Hdf5Formatter

FMT = Hdf5Formatter()


def test_image_layout(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    FMT.write(Image(np.arange(6.0).reshape(2, 3), {"EXPTIME": 30.0, "obs": "é"}), path)
    with h5py.File(path, "r") as f:
        assert f.attrs["butler_type"] == "butler.image.Image"
        assert f["image"].attrs["EXPTIME"] == 30.0
    assert FMT.read_metadata(path) == {"EXPTIME": 30.0, "obs": "é"}
    assert FMT.read_metadata(path, hdu="/") == {}


def test_nested_dict_round_trip(tmp_path: Path) -> None:
    table = Table({"a": [1, 2]})
    obj = {
        "flat": Image(np.ones((3, 3), np.float32), {"K": 1}),
        "mask": np.zeros((3, 3), np.uint8),
        "version": 3,
        "name": "calib",
        "amps": {"a": np.arange(4), "b": {"gain": 1.5}},
        "tbl": table,
    }
    path = tmp_path / "d.h5"
    FMT.write(obj, path)
    result = FMT.read(path)
    assert isinstance(result, dict)
    assert list(result) == ["version", "name", "flat", "mask", "amps", "tbl"]  # attrs first
    assert result["flat"] == obj["flat"]
    np.testing.assert_array_equal(result["mask"], obj["mask"])
    assert result["version"] == 3 and result["name"] == "calib"
    amps = result["amps"]
    assert isinstance(amps, dict)
    np.testing.assert_array_equal(amps["a"], np.arange(4))
    assert amps["b"] == {"gain": 1.5}
    assert list(result["tbl"]["a"]) == [1, 2]
    np.testing.assert_array_equal(FMT.read(path, hdu="amps/a"), np.arange(4))
    np.testing.assert_array_equal(FMT.read_section(path, BBox(1, 0, 3, 2), hdu="mask"), 0)
    assert FMT.read_metadata(path, hdu="flat") == {"K": 1}


def test_files_written_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["only"] = np.arange(10).reshape(2, 5)
    np.testing.assert_array_equal(FMT.read(path), np.arange(10).reshape(2, 5))
    # a dataset type that declares an array finds it too, though not where Butler writes one
    as_declared = FMT.read(path, python_type="numpy.ndarray")
    np.testing.assert_array_equal(as_declared, np.arange(10).reshape(2, 5))
    with h5py.File(path, "a") as f:
        f["other"] = np.arange(3)
    result = FMT.read(path)
    assert isinstance(result, dict) and sorted(result) == ["only", "other"]


def test_table_info_from_the_dataset_type(tmp_path: Path) -> None:
    table = Table({"id": np.arange(4), "name": ["α", "b", "c", "d"], "ok": [True] * 4})
    FMT.write(table, tmp_path / "t.h5")
    info = FMT.read_table_info(tmp_path / "t.h5")
    assert info.length == 4 and info.columns == {"id": "int64", "name": "str", "ok": "bool"}
    assert list(FMT.read(tmp_path / "t.h5")["name"]) == ["α", "b", "c", "d"]


@pytest.mark.parametrize(
    ("obj", "kwargs", "message"),
    [
        ("text", {}, "cannot write a str; it accepts"),
        ({"a/b": np.zeros(2)}, {}, "names must be non-empty str without '/'"),
        ({"a": np.array(["x"])}, {}, "hold numbers, bools or bytes"),
        (np.zeros(2), {"hdu": 1}, "HDF5 files have no HDUs"),
        (np.zeros(2), {"compress": ".gz"}, "cannot write compression '.gz'"),
    ],
)
def test_objects_hdf5_refuses(
    obj: object, kwargs: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(FormatError, match=re.escape(message)):
        FMT.write(obj, tmp_path / "x.h5", **kwargs)


def test_selection_errors(tmp_path: Path) -> None:
    FMT.write({"a": np.zeros((2, 2)), "g": {"b": np.zeros(2)}}, tmp_path / "x.h5")
    with pytest.raises(
        FormatError, match=r"has no dataset or group 'c'; at its root: \['a', 'g'\]"
    ):
        FMT.read(tmp_path / "x.h5", hdu="c")
    with pytest.raises(FormatError, match="named by path"):
        FMT.read(tmp_path / "x.h5", hdu=0)
    with pytest.raises(FormatError, match=r"is a group, not a numpy\.ndarray"):
        FMT.read(tmp_path / "x.h5", hdu="g", python_type="numpy.ndarray")
    with pytest.raises(FormatError, match="is not a table"):
        FMT.read_table_info(tmp_path / "x.h5", hdu="a")


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
@pytest.mark.parametrize("method", ["read", "read_metadata", "read_section"])
def test_corrupt_files_name_the_file(kind: str, method: str, tmp_path: Path) -> None:
    path = tmp_path / "bad file.h5"
    FMT.write(Image(np.ones((300, 300)), {"K": 1}), path)
    raw = path.read_bytes()
    path.write_bytes(b"not HDF5 at all" * 100 if kind == "garbage" else raw[: len(raw) // 2])
    with pytest.raises(FormatError, match=re.escape(f"'{path}'")):
        if method == "read":
            FMT.read(path)
        elif method == "read_metadata":
            FMT.read_metadata(path)
        else:
            FMT.read_section(path, BBox(0, 200, 10, 290))
