"""Gen2 repository import: the real Gen2 registries become records (and certifications) of ours."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest
from butler.butler import Butler
from butler.cli import main
from butler.gen2.repository import IN_PLACE_REGISTRY, find_registries, gen2_instrument, import_gen2
from butlerc import compile_policy

DATA = Path(__file__).parent / "data" / "gen2"
CI_HSC_CALIB = DATA / "ci_hsc-CALIB-calibRegistry.sqlite3"
CI_HSC_COUNTS = {"bias": 16, "dark": 16, "defects": 840, "flat": 32, "sky": 32}


def gen2_root(folder: Path, mapper: str | None, raw: Path | None, calib: Path | None) -> Path:
    """A Gen2 root laid out as Gen2 kept it: _mapper, registry.sqlite3, CALIB/calibRegistry."""
    folder.mkdir(parents=True)
    if mapper is not None:
        (folder / "_mapper").write_text(f"{mapper}\n", encoding="utf-8")
    if raw is not None:
        shutil.copyfile(raw, folder / "registry.sqlite3")
    if calib is not None:
        (folder / "CALIB").mkdir()
        shutil.copyfile(calib, folder / "CALIB" / "calibRegistry.sqlite3")
    return folder


@pytest.fixture
def ci_hsc(tmp_path: Path) -> Path:
    return gen2_root(tmp_path / "ci_hsc", "lsst.obs.hsc.HscMapper", None, CI_HSC_CALIB)


def test_finds_the_registries_and_the_instrument(ci_hsc: Path) -> None:
    assert gen2_instrument(ci_hsc) == "hsc"
    assert find_registries(ci_hsc) == (None, ci_hsc / "CALIB" / "calibRegistry.sqlite3")


def test_in_place_import_of_the_ci_hsc_calibration_registry(ci_hsc: Path) -> None:
    report = import_gen2(ci_hsc, ci_hsc)
    assert report.imported == CI_HSC_COUNTS, str(report)
    assert report.ok and report.missing_files == sum(CI_HSC_COUNTS.values())
    assert (ci_hsc / "butler-registry.sqlite3").is_file()  # Gen2's registry name stays Gen2's
    with Butler(ci_hsc) as butler:
        assert butler.config.registry == IN_PLACE_REGISTRY
        assert butler.query_values("bias", "calibDate") == ["2013-11-03"]
        assert butler.uri("bias", ccd=5).endswith(
            "CALIB/BIAS/2013-11-03/NONE/BIAS-2013-11-03-005.fits"
        )
        # validity certified through gen2.calib_registry: a lookup by observation time works
        found = butler.find_calibration("bias", ccd=5, taiObs=datetime.date(2013, 11, 2))
        assert found.data_id["calibDate"] == "2013-11-03"
    again = import_gen2(ci_hsc, ci_hsc)
    assert sum(again.imported.values()) == 0 and again.known == CI_HSC_COUNTS


def test_files_outside_the_new_root_stay_where_they_are(ci_hsc: Path, tmp_path: Path) -> None:
    present = ci_hsc / "CALIB" / "BIAS" / "2013-11-03" / "NONE" / "BIAS-2013-11-03-005.fits"
    present.parent.mkdir(parents=True)
    present.write_bytes(b"bias")
    before = sorted(p.relative_to(ci_hsc) for p in ci_hsc.rglob("*"))
    report = import_gen2(ci_hsc, tmp_path / "new")
    assert report.imported == CI_HSC_COUNTS, str(report)
    assert sorted(p.relative_to(ci_hsc) for p in ci_hsc.rglob("*")) == before  # Gen2 untouched
    with Butler(tmp_path / "new") as butler:
        assert butler.uri("bias", ccd=5) == present.resolve().as_uri()
        assert not (tmp_path / "new" / "CALIB").exists()


def test_symlink_and_copy_place_the_files_present(ci_hsc: Path, tmp_path: Path) -> None:
    present = ci_hsc / "CALIB" / "BIAS" / "2013-11-03" / "NONE" / "BIAS-2013-11-03-005.fits"
    present.parent.mkdir(parents=True)
    present.write_bytes(b"bias")
    for transfer in ("symlink", "copy"):
        report = import_gen2(ci_hsc, tmp_path / transfer, transfer=transfer)  # type: ignore[arg-type]
        assert report.imported == {"bias": 1}
        assert not report.ok and "Gen2 file missing" in "\n".join(report.problems)
        placed = tmp_path / transfer / "BIAS" / "2013-11-03" / "NONE" / "BIAS-2013-11-03-005.fits"
        assert placed.read_bytes() == b"bias"
        assert placed.is_symlink() == (transfer == "symlink")


def test_raw_and_raw_visit_of_testdata_cfht(tmp_path: Path) -> None:
    """The real testdata_cfht raw registry, through a test policy that has its keys."""
    (module,) = compile_policy(DATA / "testdata_cfht.butler").modules.items()
    mapper = tmp_path / f"{module[0]}.py"
    mapper.write_text(module[1], encoding="utf-8")
    root = gen2_root(tmp_path / "cfht", None, DATA / "testdata_cfht-registry.sqlite3", None)
    report = import_gen2(root, root, mapper=str(mapper))
    assert report.ok, str(report)
    # 1,260 rows, one per amplifier: two per CCD, and the policy's raw has one file per CCD
    assert (report.imported["raw"], report.merged["raw"]) == (630, 630)
    with Butler(root) as butler:
        visits = butler.query_values("raw", "visit")
        assert 793310 in visits and len(visits) == 18
        (one,) = butler.query("raw", visit=793310, ccd=0)
        # Gen2's nanoseconds are cut to microseconds; dateObs is derived from taiObs
        assert one["taiObs"] == datetime.datetime(2005, 5, 13, 7, 1, 4, 630080)
        assert one["dateObs"] == datetime.date(2005, 5, 13)
        assert butler.uri("raw", visit=793310, ccd=0).endswith(
            "raw/D2/2005-05-13/r/0793310-00.fits"
        )


@pytest.mark.parametrize(
    ("instrument", "raw", "calib"),
    [
        ("imsim", "obs_lsst-imsim-registry.sqlite3", "obs_lsst-imsim-calibRegistry.sqlite3"),
        ("latiss", "obs_lsst-latiss-registry.sqlite3", "obs_lsst-latiss-calibRegistry.sqlite3"),
    ],
)
def test_lsst_registries(tmp_path: Path, instrument: str, raw: str, calib: str) -> None:
    root = gen2_root(tmp_path / instrument, None, DATA / raw, DATA / calib)
    report = import_gen2(root, root, mapper=instrument)
    assert report.imported.get("raw") == 1 and report.imported.get("bias") == 1, str(report)
    with Butler(root) as butler:
        (observation,) = butler.query("raw")
        # the bias is found through the raw record's observation time, as Gen2 did
        found = butler.find_calibration(
            "bias", detector=observation["detector"], expId=observation["expId"]
        )
        assert found.data_id["detector"] == observation["detector"]


def test_cli_import_gen2(ci_hsc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import-gen2", str(ci_hsc), str(ci_hsc)]) == 0
    out = capsys.readouterr().out
    assert "imported 936 dataset(s)" in out and "imported 936 certification(s)" in out
    assert main(["query", str(ci_hsc), "flat", "--count"]) == 0
    assert capsys.readouterr().out.strip() == "32"
    assert main(["import-gen2", str(ci_hsc / "missing"), str(ci_hsc.parent / "elsewhere")]) == 2
    assert "no Gen2 repository" in capsys.readouterr().err
    assert not (ci_hsc.parent / "elsewhere").exists()
