"""A format whose formatter is not installed (issue 13).

obs_base's plot dataset types use the ``matplotlib`` plug-in formatter, which no
installed package provides here. Registry-only operations (query, count, exists,
index, ``dataset-types --counts``, calibration lookups) never load a formatter, so
such a dataset type is listed, queried and counted; only reading or writing one
raises a FormatError naming the missing plug-in and how to install it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import butlerc
import numpy as np
import pytest
from butler import Butler, Image
from butler.cli import main
from butler.errors import FormatError
from butler.formatters import FormatterRegistry

PLOT = "plotBrighterFatterPtc"  # format png, formatter matplotlib (obs_base)


@pytest.fixture(scope="module")
def hsc_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled HSC policy, compiled here (not by name: another test caches a fake 'hsc')."""
    policy = Path(__file__).parents[1] / "policies" / "hsc.butler"
    path = tmp_path_factory.mktemp("hsc_bundled") / "hsc.py"
    path.write_text(butlerc.compile_policy(policy).modules["hsc"], encoding="utf-8")
    return path


@pytest.fixture
def hsc(tmp_path: Path, hsc_module: Path) -> Iterator[Butler]:
    with Butler.create(tmp_path / "hsc", mapper=str(hsc_module)) as butler:
        file = butler.root / "plots" / "brighterFatterPtc-ccd-016-amp-2.png"
        file.parent.mkdir(parents=True)
        file.write_bytes(b"\x89PNG\r\n\x1a\n")  # made by another tool, as Gen2 tasks did
        yield butler


def test_a_dataset_type_without_its_formatter_is_indexed_queried_and_counted(
    hsc: Butler,
) -> None:
    assert hsc.index().registered == {PLOT: 1}
    assert hsc.count(PLOT) == 1
    assert [dict(d) for d in hsc.query(PLOT)] == [{"ccd": 16, "amp": "2"}]
    assert hsc.query_values(PLOT, "amp") == ["2"]
    assert hsc.exists(PLOT, ccd=16, amp="2")
    assert not hsc.exists(PLOT, ccd=16, amp="3")
    assert hsc.uri(PLOT, ccd=16, amp="2").endswith("brighterFatterPtc-ccd-016-amp-2.png")


def test_reading_or_writing_it_names_the_missing_plug_in_and_how_to_install_it(
    hsc: Butler,
) -> None:
    hsc.index()
    expected = r"'plotBrighterFatterPtc'.*'matplotlib'.*butler\.formatters.*pip install"
    with pytest.raises(FormatError, match=expected):
        hsc.get(PLOT, ccd=16, amp="2")
    with pytest.raises(FormatError, match=expected):
        hsc.put(object(), PLOT, ccd=16, amp="3")
    assert hsc.count(PLOT) == 1  # nothing was written


def test_dataset_types_counts_lists_it(hsc: Butler, capsys: pytest.CaptureFixture[str]) -> None:
    hsc.index()
    assert main(["dataset-types", str(hsc.root), "--counts"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(PLOT + " "))
    assert line.split()[1] == "png" and line.endswith("[1]")


def test_calibration_lookups_load_no_formatter(tmp_path: Path) -> None:
    with Butler.create(tmp_path / "toy", mapper="toycam") as butler:
        butler.put(Image(np.zeros((2, 2), "f4")), "bias", calibDate="2024-03-01", detector=1)
        butler.put(
            Image(np.zeros((2, 2), "f4")),
            "raw",
            visit=1,
            detector=1,
            filter="g",
            obsTime=datetime.datetime(2024, 3, 2),
        )
        butler.certify("bias", {"calibDate": "2024-03-01", "detector": 1}, "2024-03-01")
    # A session with no formatter at all: every lookup works, reading does not.
    with Butler(tmp_path / "toy") as butler:
        butler.formatters = FormatterRegistry()
        assert butler.find_calibration("bias", visit=1, detector=1).data_id["calibDate"]
        assert butler.exists("bias", visit=1, detector=1)
        assert butler.count("raw") == 1
        assert "bias" in butler.explain("bias", visit=1, detector=1)
        with pytest.raises(FormatError, match="unknown formatter 'fits'"):
            butler.get("bias", visit=1, detector=1)
