"""YAML, JSON, ECSV, text and pickle; tables across formats; odd paths; the registry."""

from __future__ import annotations

import dataclasses
import datetime
import re
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from butler.errors import FormatError
from butler.formatters import BBox, Formatter, FormatterRegistry, Image
from butler.formatters.ecsv import EcsvFormatter
from butler.formatters.fits import FitsFormatter
from butler.formatters.hdf5 import Hdf5Formatter
from butler.formatters.json_format import JsonFormatter
from butler.formatters.pickle_format import PickleFormatter
from butler.formatters.text import TextFormatter
from butler.formatters.yaml_format import YamlFormatter

DOC = {"name": "HSC", "ccds": [0, 1, 2], "gain": 3.25, "ok": True, "none": None, "ünï": "çødé"}


def sample_table() -> Table:
    table = Table(
        {
            "id": np.arange(4, dtype=np.int64),
            "flux": np.array([1.5, 2.5, np.nan, 4.0]),
            "name": ["a", "bb", "ccc", "d"],
            "flag": [True, False, True, True],
            "vec": np.arange(8, dtype=np.float64).reshape(4, 2),
        },
        meta={"OBSERVER": "someone", "EXPTIME": 30},
    )
    table["flux"].unit = u.nJy
    return table


def assert_tables_equal(a: Table, b: Table) -> None:
    assert a.colnames == b.colnames
    for name in a.colnames:
        assert a[name].unit == b[name].unit, name
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)
    assert {k: v for k, v in b.meta.items() if k in a.meta} == dict(a.meta)


TABLE_FORMATS = [
    pytest.param(FitsFormatter(), None, id="fits"),
    pytest.param(FitsFormatter(), ".gz", id="fits.gz"),
    pytest.param(Hdf5Formatter(), None, id="hdf5"),
    pytest.param(EcsvFormatter(), None, id="ecsv"),
    pytest.param(EcsvFormatter(), ".gz", id="ecsv.gz"),
]


@pytest.mark.parametrize(("fmt", "compress"), TABLE_FORMATS)
def test_tables_round_trip(fmt: Formatter, compress: str | None, tmp_path: Path) -> None:
    fmt.write(sample_table(), tmp_path / "t", compress=compress)
    result = fmt.read(tmp_path / "t", python_type="astropy.table.Table")
    assert isinstance(result, Table)
    assert_tables_equal(sample_table(), result)
    assert fmt.read_table_info(tmp_path / "t").length == 4
    assert fmt.read_table_info(tmp_path / "t").columns == {
        "id": "int64",
        "flux": "float64",
        "name": "str",
        "flag": "bool",
        "vec": "float64[2]",
    }


def test_ecsv_metadata_from_the_header(tmp_path: Path) -> None:
    EcsvFormatter().write(sample_table(), tmp_path / "t.ecsv")
    assert EcsvFormatter().read_metadata(tmp_path / "t.ecsv") == dict(sample_table().meta)


def test_ecsv_counts_quoted_newlines_as_one_row(tmp_path: Path) -> None:
    EcsvFormatter().write(Table({"s": ["two\nlines", "x y", ""]}), tmp_path / "t.ecsv")
    assert EcsvFormatter().read_table_info(tmp_path / "t.ecsv").length == 3


@pytest.mark.parametrize("fmt", [YamlFormatter(), JsonFormatter()], ids=["yaml", "json"])
@pytest.mark.parametrize("compress", [None, ".gz"])
def test_documents_round_trip(fmt: Formatter, compress: str | None, tmp_path: Path) -> None:
    fmt.write(DOC, tmp_path / "d", compress=compress)
    assert fmt.read(tmp_path / "d") == DOC
    assert fmt.read(tmp_path / "d", python_type="dict") == DOC
    with pytest.raises(FormatError, match="holds a dict, not a list"):
        fmt.read(tmp_path / "d", python_type="list")


def test_yaml_never_builds_python_objects(tmp_path: Path) -> None:
    (tmp_path / "evil.yaml").write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(FormatError, match=r"evil\.yaml"):
        YamlFormatter().read(tmp_path / "evil.yaml")
    with pytest.raises(FormatError, match="cannot write a object; it accepts dict"):
        YamlFormatter().write(object(), tmp_path / "x.yaml")


def test_yaml_keeps_dates(tmp_path: Path) -> None:
    doc = {"date": datetime.date(2024, 5, 1)}
    YamlFormatter().write(doc, tmp_path / "d.yaml")
    assert YamlFormatter().read(tmp_path / "d.yaml") == doc


def test_json_is_strict(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="finite float"):
        JsonFormatter().write({"x": float("nan")}, tmp_path / "x.json")
    with pytest.raises(FormatError, match="cannot write a set"):
        JsonFormatter().write({1, 2}, tmp_path / "x.json")


@pytest.mark.parametrize("compress", [None, ".gz"])
def test_text_round_trip(compress: str | None, tmp_path: Path) -> None:
    text = "line one\r\nline two — ünïcode\n"
    TextFormatter().write(text, tmp_path / "t.txt", compress=compress)
    assert TextFormatter().read(tmp_path / "t.txt") == text
    with pytest.raises(FormatError, match="cannot write a bytes; it accepts str"):
        TextFormatter().write(b"x", tmp_path / "t.txt")


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


@pytest.mark.parametrize("compress", [None, ".gz"])
def test_pickle_round_trip(compress: str | None, tmp_path: Path) -> None:
    obj = {"p": Point(1.0, 2.0), "s": {1, 2}, "image": Image(np.eye(3), {"K": 1})}
    PickleFormatter().write(obj, tmp_path / "o.pickle", compress=compress)
    assert PickleFormatter().read(tmp_path / "o.pickle") == obj
    with pytest.raises(FormatError, match="cannot write a function"):
        PickleFormatter().write(lambda: 1, tmp_path / "f.pickle")


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        (YamlFormatter(), b"a: [1, 2\n"),
        (JsonFormatter(), b"{'single': quotes}"),
        (EcsvFormatter(), b"# %ECSV 1.0\n# ---\n# datatype: [oops\nx\n1\n"),
        (EcsvFormatter(), b"a,b\n1,2\n"),
        (TextFormatter(), b"\xff\xfe\xfa invalid utf-8"),
        (PickleFormatter(), b"\x80\x05 not a pickle"),
        (JsonFormatter(), b"\x1f\x8b truncated gzip"),
    ],
    ids=["yaml", "json", "ecsv-header", "ecsv-csv", "text", "pickle", "gzip"],
)
def test_corrupt_files_name_the_file(fmt: Formatter, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad file"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=re.escape(f"'{path}'")):
        fmt.read(path)
    if isinstance(fmt, EcsvFormatter):
        with pytest.raises(FormatError, match=re.escape(f"'{path}'")):
            fmt.read_table_info(path)


@pytest.mark.parametrize("fmt", [YamlFormatter(), JsonFormatter(), TextFormatter()])
def test_missing_capabilities_say_so(fmt: Formatter, tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=f"format '{fmt.name}' has no sub-image reads"):
        fmt.read_section(tmp_path / "x", BBox(0, 0, 1, 1))
    with pytest.raises(FormatError, match=f"format '{fmt.name}' has no metadata-only reads"):
        fmt.read_metadata(tmp_path / "x")
    with pytest.raises(FormatError, match=f"format '{fmt.name}' has no table schema reads"):
        fmt.read_table_info(tmp_path / "x")
    with pytest.raises(FormatError, match=r"cannot write compression '\.fz'"):
        fmt.write("x", tmp_path / "x", compress=".fz")


WEIRD = "dir with spaces — ünïcødé/数据 file ☃"


@pytest.mark.parametrize(
    ("fmt", "obj"),
    [
        (FitsFormatter(), Image(np.ones((3, 3)), {"K": 1})),
        (Hdf5Formatter(), Image(np.ones((3, 3)), {"K": 1})),
        (YamlFormatter(), DOC),
        (JsonFormatter(), DOC),
        (EcsvFormatter(), Table({"a": [1, 2]})),
        (TextFormatter(), "héllo"),
        (PickleFormatter(), DOC),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_paths_with_spaces_and_non_ascii(fmt: Formatter, obj: object, tmp_path: Path) -> None:
    path = tmp_path / WEIRD
    path.parent.mkdir()
    fmt.write(obj, path)
    result = fmt.read(path)
    if isinstance(obj, Table):
        assert isinstance(result, Table)
        assert_tables_equal(obj, result)
    else:
        assert result == obj
    if isinstance(obj, Image):
        assert fmt.read_metadata(path) == {"K": 1}
        np.testing.assert_array_equal(fmt.read_section(path, BBox(0, 0, 2, 2)), 1.0)


# -- registry ---------------------------------------------------------------------------


class PointFormatter(Formatter):
    """A formatter for a class of our own, added without touching the package."""

    name = "point"

    def write(
        self, obj: object, path: Path, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        if not isinstance(obj, Point):
            raise FormatError(
                f"format 'point' cannot write a {type(obj).__name__}; it accepts Point"
            )
        path.write_text(f"{obj.x} {obj.y}")

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        x, y = path.read_text().split()
        return Point(float(x), float(y))


def test_default_registry_has_the_builtins() -> None:
    registry = FormatterRegistry.default()
    for name in ("fits", "hdf5", "yaml", "json", "ecsv", "text", "pickle"):
        assert registry.get(name).name == name
        assert name in registry
    assert isinstance(registry.get("fits"), FitsFormatter)


def test_unknown_formatter_suggests_a_name() -> None:
    with pytest.raises(FormatError, match=r"unknown formatter 'fitz'; did you mean 'fits'\?"):
        FormatterRegistry.default().get("fitz")
    with pytest.raises(FormatError, match=r"unknown formatter 'zzz' \(known: ecsv, fits"):
        FormatterRegistry.default().get("zzz")


def test_register_a_formatter_for_any_class(tmp_path: Path) -> None:
    registry = FormatterRegistry.default()
    registry.register(PointFormatter())
    fmt = registry.get("point")
    fmt.write(Point(1.5, -2.0), tmp_path / "p")
    assert fmt.read(tmp_path / "p") == Point(1.5, -2.0)
    with pytest.raises(FormatError, match="'point' is already registered; pass replace=True"):
        registry.register(PointFormatter())
    replacement = PointFormatter()
    registry.register(replacement, replace=True)
    assert registry.get("point") is replacement
    assert "point" not in FormatterRegistry.default()  # registries do not share state


def _install_plugin(root: Path, module_source: str, entry: str) -> str:
    """A real installed distribution on sys.path advertising one entry point."""
    module = f"butler_test_plugin_{uuid.uuid4().hex}"
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))
    dist = root / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[butler.formatters]\n{entry.format(module=module)}\n")
    return module


PLUGIN = """
from pathlib import Path
from butler.formatters import Formatter

class Upper(Formatter):
    name = "upper"
    def write(self, obj, path, *, hdu=None, compress=None):
        Path(path).write_text(str(obj).upper())
    def read(self, path, *, python_type=None, hdu=None):
        return Path(path).read_text()
"""


def test_entry_point_plugins_load_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _install_plugin(tmp_path, PLUGIN, "upper = {module}:Upper")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = FormatterRegistry.default()
    assert "upper" in registry.names()
    assert module not in sys.modules  # not imported until asked for
    fmt = registry.get("upper")
    assert module in sys.modules
    fmt.write("abc", tmp_path / "u.txt")
    assert fmt.read(tmp_path / "u.txt") == "ABC"
    monkeypatch.delitem(sys.modules, module)


@pytest.mark.parametrize(
    ("source", "entry", "message"),
    [
        ("raise ImportError('no numpy here')", "broken = {module}:X", "failed to load"),
        ("X = 1", "broken = {module}:Missing", "failed to load"),
        ("X = 42", "broken = {module}:X", "is a int, not a butler.formatters.Formatter"),
        (PLUGIN, "broken = {module}:Upper", "calls itself 'upper'"),
    ],
    ids=["import-error", "missing-attribute", "not-a-formatter", "wrong-name"],
)
def test_broken_plugins_name_the_entry_point(
    source: str, entry: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _install_plugin(tmp_path, source, entry)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = FormatterRegistry.default()
    assert registry.get("fits").name == "fits"  # others are unaffected
    with pytest.raises(FormatError, match=re.escape(f"entry point 'broken = {module}:")) as info:
        registry.get("broken")
    assert message in str(info.value)
    monkeypatch.delitem(sys.modules, module, raising=False)
