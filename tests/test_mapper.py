"""Mapper: data IDs to paths and back, through a module generated from a hand-written IR."""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from butler import DataId, Mapper, load_mapper
from butler.errors import (
    InvalidDataIdError,
    MapperError,
    MapperVersionError,
    UnknownDatasetTypeError,
)
from butler.testing import check_round_trip, data_ids
from butlerc.codegen import generate
from hypothesis import given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures" / "codegen"
RAW = {
    "field": "COSMOS",
    "taiObs": "2020-03-04T05:06:07",
    "pointing": 12,
    "filter": "g",
    "visit": "903334",
    "ccdnum": 3,
}
RAW_PATH = "COSMOS/2020-03-04/00012/HSC-G/HSC-0903334-003.fits"


@pytest.fixture(scope="module")
def module_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ir = json.loads((FIXTURES / "hsc.ir.json").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("mappers") / "hsc.py"
    path.write_text(generate(ir), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mapper(module_path: Path) -> Mapper:
    return load_mapper(module_path)


def test_describes_its_dataset_types(mapper: Mapper) -> None:
    assert mapper.name == "HSC"
    assert mapper.dataset_types[:3] == ("raw", "calexp", "bias")
    assert mapper.dataset_type("bias").calibration is not None
    assert mapper.keys("bias") == {"calibDate": "date", "ccd": "int"}


def test_path_from_keywords_and_from_a_dict(mapper: Mapper) -> None:
    assert mapper.path("raw", **RAW) == RAW_PATH
    assert mapper.path("raw", RAW) == RAW_PATH
    assert mapper.path("raw", {**RAW, "visit": 1}, visit=903334) == RAW_PATH


def test_normalize_returns_a_data_id_that_renders_directly(mapper: Mapper) -> None:
    data_id = mapper.normalize(RAW)
    assert type(data_id) is DataId
    assert mapper.normalize(data_id) is data_id
    assert data_id["ccd"] == 3
    assert data_id["detector"] == "1_20"
    assert mapper.path("raw", data_id) == RAW_PATH


def test_a_data_id_not_normalized_by_this_mapper_is_checked(mapper: Mapper) -> None:
    forged = DataId(field="../../etc", dateObs=datetime.date(2020, 1, 1), pointing=1)
    with pytest.raises(InvalidDataIdError, match=r"field='../../etc'"):
        mapper.path("raw", forged, filter="g", visit=1, ccd=1)


def test_missing_keys_are_named(mapper: Mapper) -> None:
    with pytest.raises(InvalidDataIdError, match=r"missing field, dateObs, pointing.*'raw'"):
        mapper.path("raw", visit=1, ccd=2)


def test_parse_gives_the_normalized_data_id(mapper: Mapper) -> None:
    parsed = mapper.parse("raw", RAW_PATH)
    assert parsed == {
        "visit": 903334,
        "ccd": 3,
        "filter": "HSC-G",
        "field": "COSMOS",
        "pointing": 12,
        "dateObs": datetime.date(2020, 3, 4),
        "detector": "1_20",
    }
    assert mapper.path("raw", parsed) == RAW_PATH


def test_parse_handles_every_kind_of_field(mapper: Mapper) -> None:
    assert mapper.parse("dark", "DARK/20200102/DARK-1_20.fits") == {
        "ccd": 3,
        "calibDate": datetime.date(2020, 1, 2),
        "detector": "1_20",
    }
    moment = datetime.datetime(2020, 1, 1, 1, 2, 3, 4)
    log = mapper.path("expLog", taiObs=moment, expTime=2.5)
    assert log == "logs/2020-01-01/2020-01-01T01:02:03.000004-2.50.json"
    assert mapper.parse("expLog", log)["taiObs"] == moment
    assert mapper.parse("qa", "a/b/qa-0000001-True.yaml") == {
        "visit": 1,
        "subdir": "a/b",
        "flagged": True,
    }


def test_literal_text_is_rendered_exactly(mapper: Mapper) -> None:
    path = mapper.path("odd", visit=5)
    assert path == "odd/{braces}/\"dq\"/'sq'/back\\slash/tab\there/\u00e9/5.txt"
    assert mapper.parse("odd", path) == {"visit": 5}


@pytest.mark.parametrize(
    ("dataset_type", "path", "reason"),
    [
        ("raw", "COSMOS/2020-03-04/00012/HSC-G/HSC-0903334.fits", "does not match"),
        ("deepCoadd", "deepCoadd/HSC-G/007/1,2.fits", "renders as 'deepCoadd/HSC-G/7/1,2.fits'"),
        ("raw", "COSMOS/2020-03-04/00012/HSC-Q/HSC-0903334-003.fits", "filter='HSC-Q'"),
        ("raw", "COSMOS/2020-02-30/00012/HSC-G/HSC-0903334-003.fits", "day is out of range"),
        ("bias", "BIAS/2020-01-01/NONE/BIAS-2020-01-02-001.fits", "does not match"),
    ],
)
def test_parse_refuses_paths_of_other_shapes(
    mapper: Mapper, dataset_type: str, path: str, reason: str
) -> None:
    with pytest.raises(InvalidDataIdError, match="is not a path of dataset type") as error:
        mapper.parse(dataset_type, path)
    assert reason in str(error.value)
    assert mapper.dataset_type(dataset_type).template in str(error.value)


def test_unknown_dataset_type_suggests_the_closest(mapper: Mapper) -> None:
    for call in (
        lambda: mapper.path("rwa", RAW),
        lambda: mapper.parse("rwa", RAW_PATH),
        lambda: mapper.keys("rwa"),
    ):
        with pytest.raises(UnknownDatasetTypeError, match=r"'rwa'.*did you mean 'raw'"):
            call()


def test_explain_shows_each_step(mapper: Mapper) -> None:
    text = mapper.explain("raw", RAW)
    for expected in (
        "ccdnum -> ccd: alias renamed",
        "filter: 'g' -> 'HSC-G' (normalize rule)",
        "visit: '903334' -> 903334 (coerced to int)",
        "dateObs = date(taiObs) = datetime.date(2020, 3, 4) (derived)",
        "detector = detectors(ccd) = '1_20' (derived)",
        "template: {field}/{dateObs}/{pointing:05d}/{filter}/HSC-{visit:07d}-{ccd:03d}.fits",
        f"path: {RAW_PATH}",
    ):
        assert expected in text


def test_refuses_a_spec_from_another_abi(mapper: Mapper) -> None:
    spec = dataclasses.replace(mapper.spec, abi_version=99, compiler_version="9.9")
    with pytest.raises(MapperVersionError) as error:
        Mapper(spec)
    message = str(error.value)
    assert "butlerc 9.9" in message
    assert "butlerc compile policies/hsc.butler -o DIR" in message


def test_load_mapper_by_module_name(
    module_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # under a name of its own, and forgotten after: a module imported as "hsc" would stay
    # in sys.modules and stand for the bundled HSC mapper in every later test
    name = "butler_test_mapper_by_name"
    (tmp_path / f"{name}.py").write_bytes(module_path.read_bytes())
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_mapper(name).dataset_types[0] == "raw"
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("spec", ["no/such/file.py", "no_such_instrument_or_module"])
def test_load_mapper_says_what_it_tried(spec: str, tmp_path: Path) -> None:
    with pytest.raises(MapperError, match=f"cannot load mapper '{spec}': tried"):
        load_mapper(spec)


def test_load_mapper_refuses_a_module_that_is_not_a_mapper(tmp_path: Path) -> None:
    path = tmp_path / "other.py"
    path.write_text("X = 1\n", encoding="utf-8")
    with pytest.raises(MapperError, match="has no INSTRUMENT"):
        load_mapper(path)
    path.write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    with pytest.raises(MapperError, match="RuntimeError: boom"):
        load_mapper(path)


@pytest.mark.parametrize(
    "dataset_type",
    ["raw", "calexp", "bias", "dark", "deepCoadd", "expLog", "stamp", "qa", "odd", "wide"],
)
def test_every_path_parses_back_to_its_data_id(mapper: Mapper, dataset_type: str) -> None:
    check_round_trip(mapper, dataset_type, max_examples=50)


@settings(deadline=None, max_examples=20)
@given(st.data())
def test_data_ids_hold_only_the_keys_a_path_needs(mapper: Mapper, data: st.DataObject) -> None:
    assert set(data.draw(data_ids(mapper, "expLog"))) == {"taiObs", "expTime"}
    assert set(data.draw(data_ids(mapper, "dark"))) == {"calibDate", "detector"}


def test_bundled_instrument_is_compiled_once_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import butlerc

    ir = json.loads((FIXTURES / "hsc.ir.json").read_text(encoding="utf-8"))
    compiled: list[str] = []

    def compile_policy(path: Path) -> SimpleNamespace:  # stands in for the real compiler
        compiled.append(Path(path).name)
        modules = {"hsc": generate(ir)} if Path(path).name == "hsc.butler" else {}
        return SimpleNamespace(modules=modules, diagnostics=())

    monkeypatch.setattr(butlerc, "compile_policy", compile_policy)
    monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path))
    assert load_mapper("HSC").name == "HSC"
    assert compiled == ["hsc.butler"]
    cached = list(tmp_path.glob("*/hsc.py"))
    assert len(cached) == 1
    assert load_mapper("hsc").name == "HSC"
    assert compiled == ["hsc.butler"]
    assert not list(tmp_path.glob("*/*.tmp"))


def test_a_fragment_that_would_make_the_path_absolute_is_refused(mapper: Mapper) -> None:
    # subdir may hold "/", but at the start of the qa template "" would render "/qa-..."
    with pytest.raises(InvalidDataIdError, match="would leave the repository"):
        mapper.path("qa", visit=0, subdir="", flagged=False)
    with pytest.raises(InvalidDataIdError, match="subdir='/'"):  # and "/" would render "//qa-..."
        mapper.path("qa", visit=0, subdir="/", flagged=False)
    assert mapper.path("qa", visit=0, subdir="a/b", flagged=False) == "a/b/qa-0000000-False.yaml"
