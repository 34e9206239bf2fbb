"""Property tests of every bundled policy, and round trips of real Gen2 paths.

Every dataset type of every instrument in ``policies/`` must render a path for any valid
data ID and parse it back to the same data ID (``butler.testing.check_round_trip``). The
real paths come from the Gen2 registries (``tests/data/gen2_paths.json``): each must parse
into its data ID and render back unchanged, so an existing Gen2 repository reads as it is.
"""

from __future__ import annotations

import datetime
import functools
import json
from pathlib import Path

import pytest
from butler import load_mapper
from butler.mapper import Mapper
from butler.testing import check_round_trip
from butlerc import CompileResult, check_policy, compile_policy

POLICIES = Path(__file__).resolve().parent.parent / "policies"
DATA = Path(__file__).resolve().parent / "data"
BUNDLED = ("hsc.butler", "decam.butler", "megacam.butler", "obs_lsst.butler")
MODULES = {
    "hsc.butler": ("hsc",),
    "decam.butler": ("decam",),
    "megacam.butler": ("megacam",),
    "obs_lsst.butler": ("lsstcam", "lsstcomcam", "imsim", "phosim", "latiss", "ts8"),
}

#: Known defects outside the policies, shown by these tests (strict: a fix makes them pass).
DASHES = (
    "Gen2 layout: '{description}-{style}' with free str keys splits more than one way; the "
    "policy says so (allow BC105), and the round trip cannot hold for such values"
)


@functools.cache
def _compiled(policy: str) -> CompileResult:
    return compile_policy(POLICIES / policy)


def _known_failure(dataset: str, mapper: Mapper) -> str | None:
    fields = {field.key for field in mapper.dataset_type(dataset).fields}
    if {"description", "style"} <= fields:
        return DASHES
    return None


@pytest.fixture(scope="session")
def mappers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Mapper]:
    out = tmp_path_factory.mktemp("mappers")
    found: dict[str, Mapper] = {}
    for policy in BUNDLED:
        result = _compiled(policy)
        assert result.ok, result.report()
        for name, source in result.modules.items():
            (out / f"{name}.py").write_text(source, encoding="utf-8")
            found[name] = load_mapper(out / f"{name}.py")
    return found


def _cases() -> list[tuple[str, str]]:
    cases = []
    for policy in BUNDLED:
        result = _compiled(policy)
        for module, ir in result.irs.items():
            cases.extend((module, dataset["name"]) for dataset in ir["dataset_types"])
    return cases


CASES = _cases()


def test_every_bundled_policy_compiles_to_its_instruments() -> None:
    for policy, modules in MODULES.items():
        result = _compiled(policy)
        assert result.ok, result.report()
        assert tuple(result.modules) == modules


@pytest.mark.parametrize(("module", "dataset"), CASES, ids=[f"{m}-{d}" for m, d in CASES])
def test_round_trip(mappers: dict[str, Mapper], module: str, dataset: str) -> None:
    mapper = mappers[module]
    reason = _known_failure(dataset, mapper)
    if reason is not None:
        pytest.xfail(reason)
    check_round_trip(mapper, dataset, max_examples=5)


# ---- real Gen2 paths -------------------------------------------------------------------------

GEN2 = json.loads((DATA / "gen2_paths.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "case", GEN2, ids=[f"{c['module']}-{c['dataset']}-{i}" for i, c in enumerate(GEN2)]
)
def test_real_gen2_path_round_trips(mappers: dict[str, Mapper], case: dict[str, object]) -> None:
    mapper = mappers[str(case["module"])]
    dataset, path = str(case["dataset"]), str(case["path"])
    data_id = mapper.normalize(dict(case["data_id"]))  # type: ignore[call-overload]
    assert mapper.path(dataset, data_id) == path
    parsed = mapper.parse(dataset, path)
    assert mapper.path(dataset, parsed) == path
    assert {k: data_id[k] for k in parsed} == dict(parsed)


# ---- data IDs as Gen2 users wrote them ---------------------------------------------------------


def test_gen2_values_are_accepted(mappers: dict[str, Mapper]) -> None:
    hsc = mappers["hsc"]
    data_id = hsc.normalize(dateObs="2013-11-02", filter="HSC-R", patch="3,4")
    assert data_id["dateObs"] == datetime.date(2013, 11, 2)
    assert data_id["filter"] == "HSC-R" and data_id["patch"] == "3,4"
    assert hsc.normalize(filter="r")["filter"] == "HSC-R"
    decam = mappers["decam"]
    assert decam.path("calexp", visit=289697, ccdnum=1) == "0289697/calexp/calexp-0289697_01.fits"
    assert decam.normalize(date="2013-09-01")["date"] == datetime.date(2013, 9, 1)


def test_decam_detector_names_follow_the_focal_plane(mappers: dict[str, Mapper]) -> None:
    decam = mappers["decam"]
    assert decam.normalize(ccdnum=1)["detectorName"] == "S29"
    assert decam.normalize(ccdnum=62)["detectorName"] == "N31"
    assert decam.normalize(detectorName="N4")["ccdnum"] == 35
    rows = (POLICIES / "decam-detectors.csv").read_text(encoding="utf-8").split()[1:]
    names = sorted(row.split(",")[1] for row in rows)
    assert len(rows) == 62
    assert names == sorted([f"S{i}" for i in range(1, 32)] + [f"N{i}" for i in range(1, 32)])


# ---- Gen2 defects stay visible ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "first", "second"),
    [
        ("decam.butler", "processCcd_metadata", "calibrate_metadata"),
        ("decam.butler", "deep_assembleCoadd_config", "deep_safeClipAssembleCoadd_config"),
        ("megacam.butler", "bias", "flat"),
        ("obs_lsst.butler", "icExp", "icExpBackground"),
        ("obs_lsst.butler", "forcedPhotCcdDiaDriver_config", "forcedPhotCcdDia_config"),
    ],
)
def test_shared_gen2_paths_are_listed_on_request(policy: str, first: str, second: str) -> None:
    result = _compiled(policy)
    messages = [a.diagnostic.message for a in result.allowed if a.diagnostic.code == "BC103"]
    assert any(f"'{first}'" in m and f"'{second}'" in m for m in messages), messages


def test_decam_missing_slash_is_kept(mappers: dict[str, Mapper]) -> None:
    path = mappers["decam"].path("deepCoadd_directWarp", filter="g", tract=0, patch="1,2", visit=5)
    assert path == "deepCoadd/g/0/1,2tempExp/v5-fg.fits"


def test_megacam_pointing_is_kept(mappers: dict[str, Mapper]) -> None:
    path = mappers["megacam"].path("singleFrameDriver_metadata", pointing=1, filter="r", visit=2)
    assert path == "00001/r/singleFrameDriver_metadata/0000002.yaml"


def test_split_warnings_name_exactly_the_ambiguous_gen2_plots() -> None:
    for policy in BUNDLED:
        result = _compiled(policy)
        flagged = {
            a.diagnostic.message.split("'")[1]
            for a in result.allowed
            if a.diagnostic.code == "BC105"
        }
        assert all(name.startswith("plot") for name in flagged), flagged


@pytest.mark.parametrize("policy", sorted(p.name for p in POLICIES.glob("*.butler")))
def test_bundled_policy_checks_clean(policy: str) -> None:
    """No warning at all: each Gen2 layout kept on purpose says so with `allow CODE "why"`."""
    result = check_policy(POLICIES / policy)
    assert result.diagnostics == (), result.report()
    for allowed in result.allowed:
        if allowed.by is not None:
            assert "Gen2" in allowed.reason, allowed
