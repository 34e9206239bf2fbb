"""``make demo`` reads well: each policy once, one data ID style, failures labelled expected.

The demo runs once, as ``make demo`` runs it, in a subprocess from the checkout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
POLICIES = sorted(p.name for p in (ROOT / "policies").glob("*.butler"))


@pytest.fixture(scope="module")
def demo() -> str:
    run = subprocess.run(
        [sys.executable, "-W", "error", "-m", "butler.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.rstrip().endswith("done.")
    return run.stdout


def steps(output: str) -> list[list[str]]:
    """Each step's lines, its ``== title`` first."""
    return [("== " + block).splitlines() for block in output.split("\n== ")[1:]]


def test_each_policy_is_reported_once(demo: str) -> None:
    compile_step = steps(demo)[0]
    assert compile_step[0] == "== compile the bundled policies"
    for name in POLICIES:
        assert sum(line.startswith(f"  {name} ") for line in compile_step) == 1, name
    # obs_lsst.butler defines six instruments: one line names all six modules
    (lsst,) = [line for line in compile_step if line.startswith("  obs_lsst.butler ")]
    assert "lsstcam.py, lsstcomcam.py, imsim.py" in lsst


def test_warning_counts_say_how_to_see_them(demo: str) -> None:
    for line in demo.splitlines():
        if re.search(r"\d+ warnings?\b", line):
            assert re.search(r"to see them: butlerc check policies/\w+\.butler$", line), line
    assert "1 warnings" not in demo


def test_data_ids_are_shown_one_way(demo: str) -> None:
    assert "{visit: 42, detector: 1, detectorName: 'A1', filter: 'TC-R', band: 'r'}" in demo
    assert "DataId(" not in demo  # the old repr
    assert "{'" not in demo  # a dict's repr
    assert re.findall(r"\b[A-Za-z]\w*=\S", demo) == []  # KEY=VALUE
    assert "datetime." not in demo  # dates in ISO form
    assert "obsTime: 2026-03-01T04:02:00, dayObs: 2026-03-01}" in demo


def test_every_step_says_what_it_shows(demo: str) -> None:
    for lines in steps(demo):
        assert lines[1].startswith("   shows: "), lines[0]


def test_failures_are_labelled_expected(demo: str) -> None:
    failing = [
        lines
        for lines in steps(demo)
        if any(re.search(r"Error\b|\bfailed\b", line) for line in lines[2:])
    ]
    assert len(failing) == 2  # the missing calexp; the ingest of files that are not HSC raws
    for lines in failing:
        assert "expected to fail" in " ".join(lines[:2]), lines[0]
    assert "  failed as expected: DatasetNotFoundError: no dataset 'calexp'" in demo
