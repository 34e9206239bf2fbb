"""Query expressions as text → a tree of frozen nodes, each with its span in the text.

``parse("visit >= 903334 AND filter IN ('r', 'i')")`` gives an :class:`And` of a
:class:`Compare` and an :class:`In`. Nothing here knows about dataset types: the
tree is checked against a dataset type's keys by :mod:`butler.query.check`. Any
text that is not an expression is an :class:`~butler.errors.InvalidQueryError`
with a caret under the place where it went wrong; nothing else is ever raised.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from ..errors import InvalidQueryError
from .caret import query_error

__all__ = [
    "And",
    "Between",
    "Bind",
    "Compare",
    "Expression",
    "In",
    "Literal",
    "Name",
    "Not",
    "Or",
    "Span",
    "parse",
    "parse_values",
]


@dataclass(frozen=True, slots=True)
class Span:
    """Character offsets ``[start, end)`` of a node in the expression's text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Name:
    """A key as written (maybe an alias)."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Literal:
    """A value written in the text; ``kind`` is the key type it is written as."""

    value: int | float | str | bool | datetime.date | datetime.datetime
    kind: str
    span: Span


@dataclass(frozen=True, slots=True)
class Bind:
    """A ``:name`` whose value comes from the ``bind`` mapping."""

    name: str
    span: Span


Operand = Literal | Bind


@dataclass(frozen=True, slots=True)
class Compare:
    """``key OP value`` with OP one of ``= != < <= > >=``."""

    key: Name
    op: str
    value: Operand
    span: Span


@dataclass(frozen=True, slots=True)
class In:
    """``key [NOT] IN (value, ...)``."""

    key: Name
    values: tuple[Operand, ...]
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Between:
    """``key [NOT] BETWEEN low AND high`` (both ends included)."""

    key: Name
    low: Operand
    high: Operand
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Expression


Expression = Compare | In | Between | And | Or | Not

_TERMINALS = {
    "NAME": "a key",
    "STRING": "a string",
    "INT": "an integer",
    "FLOAT": "a number",
    "DATE": "a date",
    "DATETIME": "a datetime",
    "BIND": "a :bind parameter",
    "OPERATOR": "an operator (= != < <= > >=)",
    "TRUE": "TRUE",
    "FALSE": "FALSE",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "_AND": "AND",
    "_OR": "OR",
    "_NOT": "NOT",
    "_IN": "IN",
    "_BETWEEN": "BETWEEN",
    "$END": "the end of the expression",
}


@functools.cache
def _parser() -> Lark:
    return Lark.open_from_package(
        "butler.query", "grammar.lark", parser="lalr", propagate_positions=True
    )


def _span(token: Token) -> Span:
    return Span(token.start_pos or 0, token.end_pos or 0)


def _unquote(text: str) -> str:
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def _join(first: Span, last: Span) -> Span:
    return Span(first.start, last.end)


def _operand_span(value: Operand) -> Span:
    return value.span


class _Build(Transformer[Token, Expression]):
    """Lark tree → nodes; one method per rule of grammar.lark."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def key(self, items: list[Token]) -> Name:
        return Name(str(items[0]), _span(items[0]))

    def values(self, items: list[Operand]) -> tuple[Operand, ...]:
        return tuple(items)

    def string(self, items: list[Token]) -> Literal:
        return Literal(_unquote(str(items[0])), "str", _span(items[0]))

    def int(self, items: list[Token]) -> Literal:
        return Literal(int(str(items[0])), "int", _span(items[0]))

    def float(self, items: list[Token]) -> Literal:
        token = items[0]
        value = float(str(token))
        if value != value or value in (float("inf"), float("-inf")):
            raise _bad(self._text, _span(token), f"{token} is not a finite number")
        return Literal(value, "float", _span(token))

    def date(self, items: list[Token]) -> Literal:
        token = items[0]
        try:
            value = datetime.date.fromisoformat(str(token))
        except ValueError as error:
            raise _bad(self._text, _span(token), f"{token} is not a date ({error})") from None
        return Literal(value, "date", _span(token))

    def datetime(self, items: list[Token]) -> Literal:
        token = items[0]
        try:
            value = datetime.datetime.fromisoformat(str(token))
        except ValueError as error:
            raise _bad(self._text, _span(token), f"{token} is not a datetime ({error})") from None
        return Literal(value, "datetime", _span(token))

    def true(self, items: list[Token]) -> Literal:
        return Literal(True, "bool", _span(items[0]))

    def false(self, items: list[Token]) -> Literal:
        return Literal(False, "bool", _span(items[0]))

    def bind(self, items: list[Token]) -> Bind:
        return Bind(str(items[0])[1:], _span(items[0]))

    def compare(self, items: list[Any]) -> Compare:
        key, op, value = items
        op = "!=" if str(op) == "<>" else str(op)
        return Compare(key, op, value, _join(key.span, _operand_span(value)))

    @v_args(meta=True)
    def in_(self, meta: Any, items: list[Any]) -> In:
        return In(items[0], items[1], False, Span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def not_in(self, meta: Any, items: list[Any]) -> In:
        return In(items[0], items[1], True, Span(meta.start_pos, meta.end_pos))

    def between(self, items: list[Any]) -> Between:
        key, low, high = items
        return Between(key, low, high, False, _join(key.span, _operand_span(high)))

    def not_between(self, items: list[Any]) -> Between:
        key, low, high = items
        return Between(key, low, high, True, _join(key.span, _operand_span(high)))

    def and_(self, items: list[Expression]) -> And:
        return And(_flatten(items, And))

    def or_(self, items: list[Expression]) -> Or:
        return Or(_flatten(items, Or))

    def not_(self, items: list[Expression]) -> Not:
        return Not(items[0])


def _flatten(items: list[Expression], kind: type[And] | type[Or]) -> tuple[Expression, ...]:
    terms: list[Expression] = []
    for item in items:
        terms.extend(item.terms if isinstance(item, kind) else (item,))
    return tuple(terms)


def _bad(text: str, span: Span, message: str, hint: str | None = None) -> InvalidQueryError:
    return query_error(message, text, span.start, span.end, hint)


def parse(text: str) -> Expression:
    """The expression ``text`` as a tree; InvalidQueryError (with a caret) if it is not one."""
    if not isinstance(text, str):
        raise InvalidQueryError(f"a query expression must be a string, not {text!r}")
    if not text.strip():
        raise InvalidQueryError(
            "the query expression is empty; leave out `where` to match every dataset"
        )
    try:
        tree = _parser().parse(text)
        result: Expression = _Build(text).transform(tree)
    except InvalidQueryError:
        raise
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    except LarkError as error:  # a transformer method failed in a way not foreseen above
        cause = error.__context__
        if isinstance(cause, InvalidQueryError):
            raise cause from None
        raise query_error(f"cannot read the expression ({error})", text) from None
    except RecursionError:
        raise query_error("the expression nests too deeply; simplify it", text) from None
    return result


def _syntax_error(text: str, error: UnexpectedInput) -> InvalidQueryError:
    position = len(text) if isinstance(error, UnexpectedEOF) else (error.pos_in_stream or 0)
    found = "end of expression"
    end = position + 1
    if isinstance(error, UnexpectedCharacters):
        found = repr(text[position])
        expected_names: set[str] = set(error.allowed or ())
    else:
        token = getattr(error, "token", None)
        if token is None or token.type == "$END":
            position = len(text)
        else:
            found = repr(str(token))
            position = token.start_pos if token.start_pos is not None else position
            end = token.end_pos if token.end_pos is not None else position + 1
        expected_names = set(getattr(error, "expected", None) or ())
    words = sorted({_TERMINALS.get(name, name) for name in expected_names})
    expected = f"; expected {', '.join(words)}" if words else ""
    return query_error(f"unexpected {found}{expected}", text, position, max(end, position + 1))


def parse_values(text: str) -> list[int | float | str | bool | datetime.date | datetime.datetime]:
    """The literals of ``text``, comma-separated (``42``, ``'r', 'i'``, ``2024-01-31``): what
    a ``--bind`` value holds. InvalidQueryError unless it is only literals."""
    expression = parse(f"_ IN ({text})")
    if not isinstance(expression, In) or any(isinstance(v, Bind) for v in expression.values):
        raise InvalidQueryError(f"{text!r} is not a comma-separated list of literals")
    return [value.value for value in expression.values if isinstance(value, Literal)]
