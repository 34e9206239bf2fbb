"""``butlerc import-gen2``: the real Gen2 policies convert into policies our compiler reads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from butlerc import check_policy
from butlerc.cli import main
from butlerc.gen2 import convert, convert_template

GEN2 = Path(__file__).resolve().parent / "data" / "gen2_policy"
OBS_BASE = [
    GEN2 / "obs_base-exposures.yaml",
    GEN2 / "obs_base-datasets.yaml",
    GEN2 / "obs_base-ExposureMappingDefaults.yaml",
    GEN2 / "obs_base-ImageMappingDefaults.yaml",
    GEN2 / "obs_base-CalibrationMappingDefaults.yaml",
]
LSST = GEN2 / "obs_lsst-lsstCamMapper.yaml"
MAPPERS = {
    "DecamMapper.yaml": OBS_BASE,
    "MegacamMapper.yaml": OBS_BASE,
    "HscMapper.yaml": OBS_BASE,
    "obs_lsst-lsstCamMapper.yaml": OBS_BASE,
    "obs_lsst-imsimMapper.yaml": [LSST, *OBS_BASE],
    "obs_lsst-latissMapper.yaml": [LSST, *OBS_BASE],
    "obs_lsst-ts8Mapper.yaml": [LSST, *OBS_BASE],
}


def test_templates_convert_with_widths_and_hdus() -> None:
    t = convert_template("%(date)s/%(filter)s/decam%(visit)07d.fits.fz[%(hdu)d]")
    assert t.text == "{date}/{filter}/decam{visit:07d}.fits.fz"
    assert t.hdu == "hdu"
    assert dict(t.fields) == {"hdu": "d", "date": "s", "filter": "s", "visit": "d"}
    assert convert_template("raw/%(x)d.fits[0]").hdu == 0
    assert convert_template("a{b}%%/%(state)1s").text == "a{{b}}%/{state:1s}"


@pytest.mark.parametrize("mapper", sorted(MAPPERS))
def test_real_gen2_policies_convert_and_parse(mapper: str, tmp_path: Path) -> None:
    conversion = convert(GEN2 / mapper, MAPPERS[mapper])
    out = tmp_path / "converted.butler"
    out.write_text(conversion.text, encoding="utf-8")
    result = check_policy(out)
    assert not [d for d in result.diagnostics if d.code == "BC001"], result.report()
    # whatever still fails to check is reported by the converter itself
    reported = {re.findall(r"error\[(BC\d+)\]", e.message)[0] for e in conversion.errors}
    assert {d.code for d in result.errors} == reported
    assert conversion.ok == result.ok


def test_gen2_merge_rules_are_applied() -> None:
    text = convert(GEN2 / "DecamMapper.yaml", OBS_BASE).text
    # camera template over obs_base's entry; obs_base's storage and description kept
    assert 'template "{visit:07d}/calexp/calexp-{visit:07d}_{ccdnum:02d}.fits"' in text
    assert "calibration bias" in text and "valid by date from raw" in text
    assert "lookup hdu, visit from raw" in text  # tables: raw on instcal
    assert "key date: date" in text and "key ccdnum: int" in text


def test_obs_lsst_cameras_stack_over_lsstcam_first_occurrence_winning() -> None:
    text = convert(GEN2 / "obs_lsst-imsimMapper.yaml", [LSST, *OBS_BASE]).text
    assert 'template "raw/{run}/{raftName}/{expId:08d}-' in text
    assert "calexp_{visit:08d}" in text
    assert "_raw" in text and "dataset raw " in text  # composite raw from its components


def test_defects_are_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "decam.butler"
    args = ["import-gen2", str(GEN2 / "DecamMapper.yaml"), "-o", str(out)]
    for base in OBS_BASE:
        args += ["--base", str(base)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "ref_cat: unknown field 'table'" in err and "misspelt 'tables'" in err
    assert "processCcd_metadata: renders the same paths as 'runIsr_metadata'" in err
    assert "shares path with" in out.read_text(encoding="utf-8")
    megacam = convert(GEN2 / "MegacamMapper.yaml", OBS_BASE)
    assert any(n.entry == "logDir" and "not a file" in n.message for n in megacam.notes)
    assert any(n.entry == "bias" and "same paths as 'dark'" in n.message for n in megacam.notes)


def test_unreadable_input_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n", encoding="utf-8")
    assert main(["import-gen2", str(bad)]) == 1
    assert "not a Gen2 policy" in capsys.readouterr().err


def _readme_import_command() -> list[str]:
    """The `butlerc import-gen2` example of README.md, as a user would paste it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    joined = readme.replace("\\\n", " ")
    (line,) = [ln for ln in joined.splitlines() if ln.startswith("butlerc import-gen2")]
    return re.sub(r"\s+#.*", "", line).split()


def test_readme_example_works_as_written(tmp_path: Path) -> None:
    work = tmp_path / "gen2_policy"
    shutil.copytree(GEN2, work)
    command = _readme_import_command()
    butlerc = str(Path(sys.executable).with_name("butlerc"))
    done = subprocess.run(
        [butlerc, *command[1:]], cwd=work, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    output = work / command[command.index("-o") + 1]
    text = output.read_text(encoding="utf-8")
    assert "dataset raw {" in text and "dataset calexp {" in text
    left_out = [line for line in done.stderr.splitlines() if line.endswith("left out")]
    assert not [line for line in left_out if ": raw:" in line or ": calexp:" in line], left_out
    assert check_policy(output).ok


def test_missing_bases_are_named_in_the_note() -> None:
    conversion = convert(GEN2 / "HscMapper.yaml", [GEN2 / "obs_base-datasets.yaml"])
    (raw,) = [n for n in conversion.notes if n.entry == "raw"]
    assert raw.file == "HscMapper.yaml"
    assert "obs_base-exposures.yaml" in raw.message and "--base" in raw.message


@pytest.mark.parametrize("mapper", sorted(MAPPERS))
def test_every_note_names_its_file(mapper: str) -> None:
    conversion = convert(GEN2 / mapper, MAPPERS[mapper])
    assert all(note.file for note in (*conversion.notes, *conversion.errors)), conversion.notes


def test_output_that_does_not_check_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapper = tmp_path / "CamMapper.yaml"
    mapper.write_text(
        "datasets:\n  thing:\n    template: x/%(a)s%(b)s.fits\n    storage: FitsStorage\n",
        encoding="utf-8",
    )
    out = tmp_path / "cam.butler"
    assert main(["import-gen2", str(mapper), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out}:" in err and "error[BC005]" in err
    assert "does not check (1 error above)" in err
    assert out.is_file()  # written anyway, for a hand edit
