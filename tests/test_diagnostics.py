"""Golden diagnostics: each `tests/fixtures/diagnostics/<case>.butler` beside `<case>.expected`.

The expected file is exactly what `butlerc check` prints for the case. Set
BUTLER_UPDATE_GOLDEN=1 to rewrite the expected files after reading the diff.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from butlerc import check_policy
from butlerc.codes import CODES

FIXTURES = Path(__file__).parent / "fixtures" / "diagnostics"
CASES = sorted(p.stem for p in FIXTURES.glob("*.butler"))


@pytest.mark.parametrize("case", CASES)
def test_diagnostics_match_golden(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = check_policy(f"{case}.butler")
    actual = result.report() + "\n"
    expected_path = FIXTURES / f"{case}.expected"
    if os.environ.get("BUTLER_UPDATE_GOLDEN") == "1":
        expected_path.write_text(actual, encoding="utf-8")
    expected = expected_path.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(True), actual.splitlines(True), "expected", "actual"
        )
    )
    assert actual == expected, diff


@pytest.mark.parametrize("case", [c for c in CASES if c[:5] in CODES])
def test_case_reports_its_code(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    codes = {d.code for d in check_policy(f"{case}.butler").diagnostics}
    assert case[:5] in codes


def test_every_code_has_a_fixture() -> None:
    covered = {c[:5] for c in CASES}
    assert set(CODES) <= covered, sorted(set(CODES) - covered)


def test_all_errors_of_a_file_come_in_source_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = check_policy("many_errors_in_order.butler")
    lines = [d.span.line for d in result.diagnostics if d.span is not None]
    assert lines == sorted(lines)
    assert {"BC002", "BC003", "BC010", "BC014"} <= {d.code for d in result.diagnostics}


def test_every_diagnostic_points_into_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    for case in CASES:
        result = check_policy(f"{case}.butler")
        for diagnostic in result.diagnostics:
            assert diagnostic.span is not None, (case, diagnostic)
            assert diagnostic.span.line >= 1 and diagnostic.span.column >= 1
