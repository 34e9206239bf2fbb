"""Golden diagnostics: each `tests/fixtures/diagnostics/<case>.butler` beside `<case>.expected`.

The expected file is exactly what `butlerc check` prints for the case (with
`--warn CODE` for a code that is allowed by default). Set BUTLER_UPDATE_GOLDEN=1 to
rewrite the expected files after reading the diff.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from butlerc import CompileResult, check_policy
from butlerc.codes import CODES
from butlerc.levels import Selection

FIXTURES = Path(__file__).parent / "fixtures" / "diagnostics"
CASES = sorted(p.stem for p in FIXTURES.glob("*.butler"))


def _check(case: str) -> CompileResult:
    """What `butlerc check` reports for a case; `--warn CODE` for its allowed-by-default code."""
    entry = CODES.get(case[:5])
    if entry is not None and entry.allowed_by_default:
        return check_policy(f"{case}.butler", selection=Selection.parse(warn=[entry.code]))
    return check_policy(f"{case}.butler")


@pytest.mark.parametrize("case", CASES)
def test_diagnostics_match_golden(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = _check(case)
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
    codes = {d.code for d in _check(case).diagnostics}
    assert case[:5] in codes


@pytest.mark.parametrize("code", [c for c, e in CODES.items() if e.allowed_by_default])
def test_allowed_by_default_is_reported_only_when_asked(
    code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES)
    (case,) = [c for c in CASES if c.startswith(code)]
    quiet = check_policy(f"{case}.butler")
    assert code not in {d.code for d in quiet.diagnostics}
    assert code in {a.diagnostic.code for a in quiet.allowed}


def test_an_allowance_silences_its_own_definition_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = check_policy("allowances_silence_one_definition.butler")
    assert [(d.code, d.message.split("'")[1]) for d in result.diagnostics] == [
        ("BC105", "otherPlot"),
        ("BC101", "visit"),
    ]
    allowed = {(a.diagnostic.code, a.reason) for a in result.allowed if a.by is not None}
    assert allowed == {
        ("BC102", "a plug-in provides it"),
        ("BC105", "Gen2 layout, kept on purpose"),
    }


def test_command_line_allow_silences_a_code_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    selection = Selection.parse(allow=["bc101,BC105"])
    result = check_policy("allowances_silence_one_definition.butler", selection=selection)
    assert result.diagnostics == ()
    assert {a.reason for a in result.allowed} >= {"--allow BC101", "--allow BC105"}


def test_one_shared_problem_is_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = check_policy("shared_problem_reported_once.butler")
    assert [d.code for d in result.diagnostics] == ["BC102"]


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
