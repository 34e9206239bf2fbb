"""``butlerc fmt``: golden layouts, and the laws every formatting obeys.

Golden cases are ``tests/fixtures/fmt/<case>.butler`` (messy input) beside
``<case>.expected.butler``. The laws, checked on every fixture and policy in the
tree and on policies generated from the grammar itself:

- idempotent: ``fmt(fmt(x)) == fmt(x)``;
- faithful: ``fmt(x)`` parses to the tree of ``x``, positions and clause order aside;
- every comment of ``x`` is in ``fmt(x)`` exactly once, in the same order
  unless clause reordering moved it;
- layout-blind: re-spacing the tokens of ``x`` changes ``fmt(x)`` by blank lines at most.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from butlerc import fmt as fmt_module
from butlerc.fmt import format_policy
from butlerc.parse import parse, parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark, Token, Tree

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "fmt"
CASES = sorted(
    p.name.removesuffix(".butler") for p in FIXTURES.glob("*.butler") if ".expected." not in p.name
)
POLICIES = sorted(
    [*ROOT.glob("policies/*.butler"), *(Path(__file__).parent / "fixtures").glob("*.butler")]
)

# Nodes whose children the formatter puts in canonical order.
_REORDERED = {"key", "format", "dataset", "calibration"}

Shape = tuple[object, ...] | tuple[str, str]


def fmt(text: str) -> str:
    out, diagnostics = format_policy(text, "test.butler")
    assert out is not None, diagnostics
    return out


def shape(node: Tree[Token] | Token) -> Shape:
    """A tree without positions, with reorderable clauses sorted, a doc's strings joined."""
    if isinstance(node, Token):
        return (node.type, str(node))
    if node.data == "doc" and all(_tree(c).data == "string" for c in node.children):
        return ("doc", "".join(str(_tree(c).children[0])[1:-1] for c in node.children))
    children = [shape(c) for c in node.children]
    if node.data in _REORDERED:
        children.sort(key=repr)
    return (str(node.data), *children)


def _tree(node: Tree[Token] | Token) -> Tree[Token]:
    assert isinstance(node, Tree)
    return node


def tree_shape(text: str) -> Shape:
    tree, diagnostics = parse(text, "test.butler")
    assert tree is not None, diagnostics
    return shape(tree)


_FOUND: list[Token] = []
_LEXER = Lark.open_from_package(
    "butlerc.dsl",
    "butler.lark",
    parser="lalr",
    keep_all_tokens=True,
    lexer_callbacks={"COMMENT": _FOUND.append},
)


def lex(text: str) -> tuple[list[str], list[str]]:
    """A policy's tokens and its comments (trailing blanks removed), as the parser lexes them."""
    _FOUND.clear()
    tokens = [str(t) for t in _LEXER.parse(text).scan_values(lambda v: isinstance(v, Token))]
    return tokens, [str(t).rstrip() for t in _FOUND]


def comments(text: str) -> list[str]:
    return lex(text)[1]


def check_laws(text: str) -> str:
    out = fmt(text)
    assert fmt(out) == out, "not idempotent"
    assert tree_shape(out) == tree_shape(text)
    assert Counter(comments(out)) == Counter(comments(text))
    assert out == "" or (out.endswith("\n") and not out.endswith("\n\n"))
    assert all(line == line.rstrip() for line in out.splitlines())
    assert "\n\n\n" not in out
    return out


# ---- golden cases ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    source = (FIXTURES / f"{case}.butler").read_text()
    expected = (FIXTURES / f"{case}.expected.butler").read_text()
    assert fmt(source) == expected


@pytest.mark.parametrize("case", CASES)
def test_canonical_file_is_unchanged(case: str) -> None:
    expected = (FIXTURES / f"{case}.expected.butler").read_text()
    assert fmt(expected) == expected


@pytest.mark.parametrize("case", CASES)
def test_laws_on_fixtures(case: str) -> None:
    check_laws((FIXTURES / f"{case}.butler").read_text())


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_laws_on_policies(path: Path) -> None:
    text = path.read_text()
    if parse(text, str(path))[0] is None:
        pytest.skip(f"{path.name} does not parse (yet)")
    check_laws(text)


@pytest.mark.parametrize("path", sorted(ROOT.glob("policies/*.butler")), ids=lambda p: p.name)
def test_bundled_policy_is_formatted(path: Path) -> None:
    """`butlerc fmt --check policies/*.butler` passes: the shipped policies are canonical."""
    text = path.read_text(encoding="utf-8")
    assert fmt(text) == text, f"run `butlerc fmt {path.relative_to(ROOT)}`"


def test_long_docs_keys_and_lists_wrap_at_the_line_length() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    values = " ".join(f'"V{i:03d}"' for i in range(30))
    out = fmt(f'instrument X {{ doc "{words}" key k: str one of {values} doc "{words}" }}\n')
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= fmt_module.LINE_LENGTH
    assert len(lines) > 8
    tree, _ = parse(out, "x.butler")
    assert tree is not None
    model_docs = [d for d in tree.find_data("doc")]
    joined = {"".join(str(_tree(c).children[0])[1:-1] for c in d.children) for d in model_docs}
    assert joined == {words}


def test_an_empty_ingest_block_is_formatted() -> None:
    """Found by the laws below: an `ingest { }` with no rule crashed the formatter."""
    text = "shared visit { dataset visit { ingest { } } }"
    assert fmt(text) == "shared visit {\n    dataset visit {\n        ingest {}\n    }\n}\n"
    check_laws(text)


def test_long_template_stays_whole() -> None:
    template = "/".join(["{visit:07d}"] * 12)
    out = fmt(f'instrument X {{ dataset d {{ template "{template}" }} }}')
    assert f'        template "{template}"' in out.splitlines()


def test_every_rule_of_the_grammar_has_a_layout() -> None:
    rules = {
        str(r.alias or r.origin.name)
        for r in parser().rules
        if not str(r.origin.name).startswith("_") and not (r.options.expand1 and not r.alias)
    }
    known = {*fmt_module._INLINE, *fmt_module._BLOCKS, "start", "table_rows"}
    assert rules <= known, f"butlerc.fmt does not lay out {sorted(rules - known)}"


# ---- behaviour in examples ------------------------------------------------------


def test_syntax_error_gives_diagnostics_and_no_text() -> None:
    out, diagnostics = format_policy("instrument X {\n    key visit int\n", "bad.butler")
    assert out is None
    assert [d.code for d in diagnostics] == ["BC001"]
    assert diagnostics[0].span is not None and diagnostics[0].span.file == "bad.butler"


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\t\n"])
def test_empty_policy_formats_to_nothing(text: str) -> None:
    assert fmt(text) == ""


def test_only_comments() -> None:
    assert fmt("\n\n   # a   \n\n\n# b\n") == "# a\n\n# b\n"


def test_crlf_line_ends() -> None:
    source = "instrument X {  # c\r\n\r\n    key a: int\r\n}\r\n"
    assert fmt(source) == "instrument X {  # c\n    key a: int\n}\n"


def test_tokens_are_kept_as_written() -> None:
    source = 'shared s { key v: float in -1_0.5_0..+2.0e3 matches r"\\d\\" doc "a\\"b\\\\" }'
    assert fmt(source) == (
        'shared s {\n    key v: float in -1_0.5_0..+2.0e3 matches r"\\d\\"\n'
        '        doc "a\\"b\\\\"\n}\n'
    )


def test_comments_of_a_documented_key_stay_on_its_lines() -> None:
    source = 'shared s {\n    key a: int  # one\n        doc "a"  # two\n    key b: int\n}\n'
    assert fmt(source) == source


def test_comment_inside_a_key_moves_after_it() -> None:
    source = "shared s {\n    key a: int  # one\n    in 0..1  # two\n  # three\n    key b: int\n}\n"
    assert fmt(source) == (
        "shared s {\n    key a: int in 0..1  # one\n    # two\n    # three\n    key b: int\n}\n"
    )


def test_comment_inside_the_last_key_stays_in_its_block() -> None:
    source = "shared s {\n    key a: int  # one\n        in 0..1  # two\n}\n"
    assert fmt(source) == "shared s {\n    key a: int in 0..1  # one\n    # two\n}\n"


def test_comments_move_with_reordered_clauses() -> None:
    source = (
        "shared s {\n    dataset d {\n        # the keys\n        keys a  # a only\n"
        '        template "{a}"  # the path\n        format f\n    }\n}\n'
    )
    assert fmt(source) == (
        'shared s {\n    dataset d {\n        template "{a}"  # the path\n        format f\n'
        "        # the keys\n        keys a  # a only\n    }\n}\n"
    )


def test_blank_lines() -> None:
    source = (
        '\n\ninclude "a.butler"\ninclude "b.butler"\nshared s {\n\n\n    key a: int\n\n\n\n'
        "    key b: int\n    key c: int\n    format f {}\n    format g { hdus }\n"
        "    key d: int\n\n}\n"
        "instrument X {}\n"
    )
    assert fmt(source) == (
        'include "a.butler"\ninclude "b.butler"\n\nshared s {\n    key a: int\n\n'
        "    key b: int\n    key c: int\n    format f {}\n\n    format g {\n        hdus\n    }\n\n"
        "    key d: int\n}\n\ninstrument X {}\n"
    )


# ---- properties -----------------------------------------------------------------

_NAMES = ["visit", "ccd", "raw", "fits", "HSC", "x_1", "_y", "tai", "latest"]
_REGEX_TERMINALS: dict[str, st.SearchStrategy[str]] = {
    "NAME": st.sampled_from(_NAMES),
    "INT": st.sampled_from(["0", "7", "9_999_999", "+3", "-12", "007"]),
    "FLOAT": st.sampled_from(["1.5", "-0.25", "1_0.0_1", "2.0e3", "+1.0E-7"]),
    "STRING": st.sampled_from(
        ['""', '"a"', '"{visit:07d}.fits"', '"q\\"#x"', '"\\\\"', f'" {"a long  doc " * 12}"']
    ),
    "RAW_STRING": st.sampled_from(['r""', 'r"\\d+"', 'r"#not a comment"']),
    "WS": st.sampled_from([" ", "\n", "\n\n\n", " \t ", "\n    "]),
    "COMMENT": st.sampled_from(["#", "# c", "#  two  # hashes ", "# {"]).map(lambda c: c + "\n"),
}


def _policies() -> st.SearchStrategy[str]:
    """Policy text from the grammar: every token padded by a space so tokens never merge."""
    explicit = dict(_REGEX_TERMINALS)
    for terminal in parser().terminals:
        if terminal.name not in explicit:
            assert terminal.pattern.type == "str", terminal
            explicit[terminal.name] = st.just(f" {terminal.pattern.value} ")
    for name in ("NAME", "INT", "FLOAT", "STRING", "RAW_STRING"):
        explicit[name] = explicit[name].map(lambda s: f" {s} ")
    return from_lark(parser(), explicit=explicit)


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_policies())
def test_laws_on_generated_policies(text: str) -> None:
    check_laws(text)


@_SETTINGS
@given(st.sampled_from(CASES), st.data())
def test_layout_of_the_input_does_not_matter(case: str, data: st.DataObject) -> None:
    tokens, _ = lex((FIXTURES / f"{case}.butler").read_text())
    gap = st.sampled_from([" ", "\n", "\n\n", "\t  "])
    gaps = data.draw(st.lists(gap, min_size=len(tokens), max_size=len(tokens)))
    respaced = "".join(g + t for g, t in zip(gaps, tokens, strict=True))
    plain = " ".join(tokens)

    def lines(text: str) -> list[str]:
        return [line for line in check_laws(text).splitlines() if line]

    assert lines(respaced) == lines(plain)
