"""No input, however broken, makes the compiler raise: it reports diagnostics.

Inputs: random text, random bytes decoded leniently, and mutations (deleted,
duplicated and swapped slices) of policies generated from our own grammar with
`hypothesis.extra.lark.from_lark`.
"""

from __future__ import annotations

from pathlib import Path

from butlerc import compile_policy
from butlerc.parse import parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

FIXTURES = Path(__file__).parent / "fixtures" / "diagnostics"
SEEDS = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.glob("*.butler"))]

PROFILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def compiles_without_raising(text: str, tmp: Path) -> None:
    """Compile `text` as a policy in `tmp`; any exception is a bug."""
    result = compile_policy(tmp / "fuzz.butler", text=text)
    for diagnostic in result.diagnostics:
        assert diagnostic.code.startswith("BC")
        assert diagnostic.message
    if result.ok:
        for source in result.modules.values():
            compile(source, "generated.py", "exec")
    assert result.report() is not None


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    text = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        if not text:
            break
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        action = draw(st.sampled_from(["delete", "duplicate", "insert"]))
        if action == "delete":
            text = text[:start] + text[end:]
        elif action == "duplicate":
            text = text[:end] + text[start:end] + text[end:]
        else:
            text = text[:start] + draw(st.sampled_from(list('{}"\\:,.=->#\n r0'))) + text[start:]
    return text


@PROFILE
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    compiles_without_raising(text, Path("/nonexistent-fuzz"))


@PROFILE
@given(mutated(st.sampled_from(SEEDS)))
def test_mutated_fixtures(text: str) -> None:
    compiles_without_raising(text, Path("/nonexistent-fuzz"))


@PROFILE
@given(mutated(from_lark(parser(), explicit={"WS": st.just(" "), "COMMENT": st.just("#c\n")})))
def test_mutated_grammar_generated_policies(text: str) -> None:
    compiles_without_raising(text, Path("/nonexistent-fuzz"))


def test_a_nul_in_an_included_path_is_a_diagnostic() -> None:
    # found by the fuzzer: the operating system refuses such a path with ValueError
    result = compile_policy(
        Path("/nonexistent-fuzz/p.butler"), text='include r"a\x00b"\ninstrument X {}\n'
    )
    assert [d.code for d in result.errors] == ["BC017"]
    assert "NUL" in result.errors[0].message


def test_a_nul_in_a_table_file_path_is_a_diagnostic() -> None:
    text = 'instrument X {\n    table t(a: int, b: str) from r"t\x00.csv"\n}\n'
    result = compile_policy(Path("/nonexistent-fuzz/p.butler"), text=text)
    assert [d.code for d in result.errors] == ["BC017"]
