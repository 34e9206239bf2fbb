"""Stage 1: policy text to a Lark parse tree, or a syntax diagnostic.

The grammar is ``butlerc/dsl/butler.lark``, loaded from the installed package
and parsed with LALR, with positions on every node. A parser fed anything at
all returns diagnostics; it never raises.
"""

from __future__ import annotations

import functools

from lark import Lark, Token, Tree
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from .diagnostics import Diagnostic, Span

__all__ = ["parse", "parser"]

# How the parser's terminal names read in a message.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "RAW_STRING": "a raw string",
    "INT": "an integer",
    "FLOAT": "a number",
    "$END": "the end of the file",
}


@functools.cache
def parser() -> Lark:
    """The LALR parser for the policy language (built once per process)."""
    return Lark.open_from_package(
        "butlerc.dsl",
        "butler.lark",
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = parser().get_terminal(name).pattern
    except KeyError:
        return name
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()


def _expected(names: set[str] | frozenset[str]) -> str:
    words = sorted({_describe_terminal(n) for n in names if not n.startswith("_")})
    if not words:
        return ""
    if len(words) > 12:
        words = [*words[:12], "..."]
    return "expected " + (words[0] if len(words) == 1 else "one of " + ", ".join(words))


def _found(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    return f"'{token.value}'"


def _syntax_diagnostic(error: UnexpectedInput, file: str, text: str) -> Diagnostic:
    line = max(1, error.line) if error.line and error.line > 0 else 1
    column = max(1, error.column) if error.column and error.column > 0 else 1
    width = 1
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
            message = "unexpected end of file"
        else:
            width = max(1, len(str(token.value).split("\n", 1)[0]))
            message = f"unexpected {_found(token)}"
        expected = _expected(error.expected)
    elif isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream
        char = text[position] if position is not None and 0 <= position < len(text) else "?"
        message = f"unexpected character {char!r}"
        expected = _expected(error.allowed) if error.allowed else ""
    else:  # UnexpectedEOF
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        message = "unexpected end of file"
        expected = _expected(set(getattr(error, "expected", ()) or ()))
    if expected:
        message = f"{message}; {expected}"
    span = Span(file, line, column, line, column + width)
    hint = None
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":
        hint = "a block may be missing its closing '}'"
    return Diagnostic("BC001", "error", message, span, hint)


def parse(text: str, file: str) -> tuple[Tree[Token] | None, list[Diagnostic]]:
    """Parse policy text. Returns the tree, or ``None`` and the syntax diagnostics."""
    try:
        return parser().parse(text), []
    except (UnexpectedCharacters, UnexpectedToken, UnexpectedEOF) as error:
        return None, [_syntax_diagnostic(error, file, text)]
    except LarkError as error:  # pragma: no cover - any other parser failure is still a diagnostic
        span = Span(file, 1, 1, 1, 2)
        return None, [Diagnostic("BC001", "error", f"cannot parse: {error}", span)]
