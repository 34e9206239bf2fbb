"""Real calibration collections: curated obs_*_data trees, Gen2 calibRegistry files, the CLI.

The Gen2 registries are copies in ``tests/data/calibrations`` (see its LICENSE.md).
"""

from __future__ import annotations

import datetime
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from butler.butler import Butler
from butler.calibrations import timeline, timeline_figure
from butler.cli import main
from butler.gen2.calib_registry import (
    analyze,
    convert_end,
    convert_start,
    import_registry,
    read_registry,
)
from butler.gen2.curated import ingest_curated, parse_start, scan

DATA = Path(__file__).parent / "data" / "calibrations"
CI_HSC = DATA / "ci_hsc-CALIB-calibRegistry.sqlite3"
MEGACAM = DATA / "obs_cfht-megacam-calibRegistry-ext1-2.sqlite3"
T = datetime.datetime


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def toy(tmp_path: Path, backend: str | None) -> Iterator[Butler]:
    with Butler.create(tmp_path / "toy", mapper="toycam", registry=backend) as butler:
        yield butler


def write_fits(path: Path, value: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.full((2, 2), value, "f4")).writeto(path)


@pytest.fixture
def curated(tmp_path: Path) -> Path:
    """A curated tree in the obs_*_data layout, with each start spelling and some misfits."""
    root = tmp_path / "curated"
    write_fits(root / "bias" / "1" / "20240101T000000.fits", 1)
    write_fits(root / "bias" / "1" / "2024-02-01T00:00:00.fits", 2)
    write_fits(root / "bias" / "1" / "20240301t0130.fits", 3)
    write_fits(root / "bias" / "A2" / "20240101T000000.fits", 4)  # a detector name
    write_fits(root / "flat" / "1" / "TC-G" / "20240115T000000.fits", 5)
    (root / "defects" / "1").mkdir(parents=True)
    (root / "defects" / "1" / "20240101T000000.ecsv").write_text("# not ours\n")
    (root / "bias" / "1" / "README.txt").write_text("not a calibration\n")
    return root


# ---- curated -------------------------------------------------------------------------------


def test_curated_start_spellings() -> None:
    assert parse_start("20130131T000000") == T(2013, 1, 31)
    assert parse_start("2012-09-12T00:00:00") == T(2012, 9, 12)
    assert parse_start("20130115t0130") == T(2013, 1, 15, 1, 30)
    assert parse_start("20130115") == T(2013, 1, 15)
    with pytest.raises(ValueError, match="not a validity start"):
        parse_start("2013-1-5")


def test_scan_understands_the_layout(curated: Path) -> None:
    files, skipped = scan(curated)
    assert len(files) == 6
    flat = next(f for f in files if f.calib_type == "flat")
    assert (flat.detector, flat.filter, flat.extension) == ("1", "TC-G", ".fits")
    assert [path for path, _ in skipped] == ["bias/1/README.txt"]


def test_ingest_curated_certifies_each_file_until_the_next(toy: Butler, curated: Path) -> None:
    report = ingest_curated(toy, curated)
    assert (report.stored, report.certified, report.unchanged) == (5, 5, 0)
    assert any("not a calibration of instrument ToyCam" in why for _, why in report.skipped)
    history = toy.calibration_history("bias", {"detector": 1})
    assert [(r.valid_from, r.valid_to) for r in history] == [
        (T(2024, 1, 1), T(2024, 2, 1)),
        (T(2024, 2, 1), T(2024, 3, 1, 1, 30)),
        (T(2024, 3, 1, 1, 30), None),
    ]
    assert history[0].source == "curated:bias/1/20240101T000000.fits"
    image = toy.get("bias", obsTime="2024-03-01T01:00:00", detector=1)
    assert float(np.asarray(image.array)[0, 0]) == 2
    assert toy.find_calibration("bias", obsTime="2024-06-01", detector=2).data_id[
        "calibDate"
    ] == datetime.date(2024, 1, 1)
    assert toy.find_calibration("flat", obsTime="2024-06-01", detector=1, filter="g")

    again = ingest_curated(toy, curated)
    assert (again.stored, again.certified, again.unchanged) == (0, 0, 5)

    # a new file closes the open end of the last one; the past stays answerable
    before = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    write_fits(curated / "bias" / "1" / "20240401T000000.fits", 6)
    later = ingest_curated(toy, curated)
    assert later.stored == 1
    assert toy.find_calibration("bias", obsTime="2024-05-01", detector=1).data_id[
        "calibDate"
    ] == datetime.date(2024, 4, 1)
    old = toy.find_calibration("bias", obsTime="2024-05-01", detector=1, as_of=before)
    assert old.data_id["calibDate"] == datetime.date(2024, 3, 1)


# ---- Gen2 ----------------------------------------------------------------------------------


def test_gen2_inclusive_ends_become_half_open_ranges() -> None:
    assert convert_start("2013-05-07") == T(2013, 5, 7)
    assert convert_end("2014-05-02") == T(2014, 5, 3)  # the whole end day
    assert convert_start("2003-05-22T19:00:00") == T(2003, 5, 22, 19)
    assert convert_end("2003-05-29T19:00:00") == T(2003, 5, 29, 19, 0, 0, 1)  # the end instant


def test_megacam_registry_overlaps_and_gaps_are_reported() -> None:
    report = analyze(read_registry(MEGACAM), source=MEGACAM.name)
    assert len(report.overlap_pairs("flat")) == 39
    assert len(report.overlap_pairs("fringe")) == 25
    assert len(report.overlap_pairs("bias")) == 3
    assert report.match_columns["flat"] == ("extension", "filter")
    pair = ("flat/g/09Am01.flat.g.36.01.fits", "flat/g/09Am02.flat.g.36.01.fits")
    assert pair in report.overlap_pairs("flat")
    assert report.gaps  # CFHT runs leave time no flat covers
    text = str(report)
    assert "flat: 1140 row(s)" in text and "39 overlapping pair(s)" in text
    assert "overlaps flat flat/g/09Am02.flat.g.36.01.fits" in text


def test_ci_hsc_registry_imports_and_answers_lookups(tmp_path: Path, backend: str | None) -> None:
    with Butler.create(tmp_path / "hsc", mapper="hsc", registry=backend) as butler:
        report = import_registry(butler, CI_HSC)
        assert report.imported == 16 + 16 + 840 + 32 + 32 and not report.refused
        assert not report.overlaps
        ref = butler.find_calibration("bias", taiObs="2014-05-02", ccd=5)  # the inclusive end day
        assert ref.data_id["calibDate"] == "2013-11-03"
        assert ref.certification.source == f"gen2:{CI_HSC.name}:bias#1"
        # Gen2 compared a date-time start with date ends as text; the day after validEnd
        # starts the next defects
        defects = butler.find_calibration("defects", taiObs="2014-04-03", ccd=96)
        assert defects.data_id["calibDate"] == "2014-04-03T00:00:00"
        assert import_registry(butler, CI_HSC).imported == 936  # again: nothing new
        # the timeline lists detectors in their own order: ccd 2 before 10 before 100
        table = timeline(butler.calibration_history("bias")).splitlines()
        numbers = [int(line.removeprefix("{ccd: ").split("}")[0]) for line in table[1:]]
        assert numbers == sorted(numbers) and 100 in numbers


def test_gen2_import_reports_refused_overlaps(tmp_path: Path) -> None:
    copy = tmp_path / "calibRegistry.sqlite3"
    shutil.copyfile(CI_HSC, copy)
    copy.chmod(0o644)
    with sqlite3.connect(copy) as connection:
        connection.execute(
            "INSERT INTO bias (filter, ccd, validStart, calibDate, validEnd) "
            "VALUES ('NONE', 5, '2014-01-01', '2014-01-01', '2014-12-31')"
        )
    connection.close()
    with Butler.create(tmp_path / "hsc", mapper="hsc") as butler:
        report = import_registry(butler, copy, tables=["bias"])
    assert len(report.overlaps) == 1
    ((row, why),) = report.refused
    assert row.values["calibDate"] == "2014-01-01"
    assert "calibDate: '2013-11-03'" in why and "overlaps" in why
    assert "refused bias" in str(report)


# ---- command line --------------------------------------------------------------------------


def test_cli_certify_calibs_decertify(
    toy: Butler, curated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(toy.root)
    assert main(["ingest-curated", root, str(curated), "--dataset-type", "bias"]) == 0
    assert "4 file(s) stored" in capsys.readouterr().out
    assert main(["certify", root, "flat", "calibDate=2024-01-15", "detector=1", "filter=g",
                 "--from", "2024-01-15"]) == 1  # fmt: skip
    assert "no stored 'flat'" in capsys.readouterr().err
    assert main(["calibs", root, "bias", "detector=1"]) == 0
    out = capsys.readouterr().out
    assert "2024-03-01T01:30:00" in out and out.count("current") == 3
    assert main(["decertify", root, "bias", "calibDate=2024-02-01", "detector=1"]) == 0
    assert "closed #" in capsys.readouterr().out
    assert main(["certify", root, "bias", "calibDate=2024-02-01", "detector=1",
                 "--from", "2024-02-01", "--to", "2024-02-15"]) == 0  # fmt: skip
    assert "certified #" in capsys.readouterr().out
    assert main(["certify", root, "bias", "calibDate=2024-02-01", "detector=1",
                 "--from", "2024-01-01"]) == 2  # fmt: skip
    assert "overlaps current certification" in capsys.readouterr().err
    assert main(["calibs", root, "bias", "--current"]) == 0
    assert "decertified" not in capsys.readouterr().out
    assert main(["calibs", root, "flat"]) == 1


@pytest.fixture
def certified(toy: Butler, curated: Path) -> Butler:
    """ToyCam biases: detector 1 with a closed certification and two current, detector 2 one."""
    pytest.importorskip(
        "matplotlib",
        reason="matplotlib is not installed (the 'plot' extra: pip install -e '.[plot]')",
    )
    ingest_curated(toy, curated)
    toy.decertify("bias", {"calibDate": "2024-02-01", "detector": 1})
    return toy


def test_timeline_figure_draws_each_certification(certified: Butler) -> None:
    import matplotlib.dates as mdates

    history = certified.calibration_history("bias")
    figure = timeline_figure(history, "bias certifications")
    (axes,) = figure.axes
    assert axes.get_title(loc="left") == "bias certifications"
    assert axes.get_xlabel() == "valid time"
    # one row per match value, labelled as data IDs are shown, the first at the top
    assert [t.get_text() for t in axes.get_yticklabels()] == ["{detector: 1}", "{detector: 2}"]
    assert axes.yaxis_inverted()
    legend = axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "current",
        "closed (superseded or decertified)",
        "open-ended",
    ]
    # a bar per certification, spanning its valid range: current ones on their row,
    # closed ones thinner below it; open-ended ones reach the right edge
    right = axes.get_xlim()[1]

    def bar(row: int, start: float, end: float, current: bool) -> tuple[float, ...]:
        return (round(row if current else row + 0.32, 3), round(start, 6), round(end, 6))

    expected = sorted(
        bar(
            r.match["detector"] - 1,
            mdates.date2num(r.valid_from),
            right if r.valid_to is None else mdates.date2num(r.valid_to),
            r.current,
        )
        for r in history
    )
    drawn = sorted(
        bar(int(p.get_y() + 0.5), p.get_x(), p.get_x() + p.get_width(), p.get_height() > 0.3)
        for p in axes.patches
    )
    assert drawn == expected
    assert sum(not r.current for r in history) == 1
    arrows = [line for line in axes.get_lines() if line.get_marker() == ">"]
    assert len(arrows) == sum(r.current and r.valid_to is None for r in history) == 2
    # current bars name their calibration (calibDate) where the text fits
    assert {t.get_text() for t in axes.texts} == {"2024-01-01", "2024-03-01"}


def test_cli_calibs_plot(certified: Butler, tmp_path: Path) -> None:
    png = tmp_path / "timeline.png"
    assert main(["calibs", str(certified.root), "bias", "--plot", str(png)]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # the size of the figure of this history: one row per detector
    figure = timeline_figure(certified.calibration_history("bias"), "bias certifications")
    size = [round(inches * 100) for inches in figure.get_size_inches()]
    assert [int.from_bytes(data[16:20]), int.from_bytes(data[20:24])] == size
