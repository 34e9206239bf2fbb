"""A parsed expression checked against one dataset type's keys → a :class:`Predicate`.

Before any SQL runs: every key must be a key (or an alias of one) of the dataset
type, every value must be of the key's type, and ``=``, ``!=`` and ``IN`` values
are normalized by the instrument's rules (``filter IN ('r')`` means ``HSC-R``).
Ordering comparisons (``<``, ``BETWEEN``...) take values of the key's type as they
are, since a bound need not be a valid value itself (``visit < 10000000``). Every
problem is collected and reported at once, each with a caret under its span.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import InvalidDataIdError, InvalidQueryError
from ..spec import Value, coerce_value, is_unicode_text
from . import predicate as p
from . import syntax as s
from .caret import excerpt

__all__ = ["KeyInfo", "check", "check_value", "fits"]

_TYPE_WORDS = {
    "int": "an int",
    "float": "a float",
    "str": "a str",
    "bool": "a bool",
    "date": "a date",
    "datetime": "a datetime",
}
_HOW_TO_WRITE = {
    "int": "write an integer without quotes, e.g. 42",
    "float": "write a number without quotes, e.g. 1.5",
    "str": "write a string in quotes, e.g. 'HSC-R'",
    "bool": "write TRUE or FALSE",
    "date": "write a date without quotes, e.g. 2024-01-31",
    "datetime": "write a datetime without quotes, e.g. 2024-01-31T12:00:00",
}
_EQUALITY = frozenset({"=", "!="})
#: How deeply AND/OR/NOT may nest (deeper would exhaust the SQL compiler's recursion).
MAX_DEPTH = 64


@dataclass(frozen=True)
class KeyInfo:
    """What checking needs to know about one dataset type.

    ``types``: each key → its type name, in the dataset type's order; ``aliases``:
    each other accepted name → its key; ``normalize(key, value)``: the instrument's
    normalization of one value (InvalidDataIdError if it is not allowed);
    ``other_keys``: keys of the instrument that this dataset type lacks.
    """

    dataset_type: str
    types: Mapping[str, str]
    aliases: Mapping[str, str]
    normalize: Callable[[str, object], Value]
    other_keys: frozenset[str] = frozenset()

    def canonical(self, name: str) -> str | None:
        if name in self.types:
            return name
        return self.aliases.get(name)

    def describe_keys(self) -> str:
        return ", ".join(self.types) or "none"


@dataclass(frozen=True, slots=True)
class _Problem:
    message: str
    span: s.Span | None
    hint: str | None = None


class _Failed(Exception):
    """One problem found; caught per comparison so that checking goes on."""

    def __init__(self, problem: _Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def fits(type_name: str, value: object) -> Value | None:
    """``value`` as a value of ``type_name`` (int → float allowed; no NaN or infinity),
    or None if it is not one."""
    typed = coerce_value(type_name, value)
    if isinstance(typed, float) and (typed != typed or abs(typed) == float("inf")):
        return None
    return typed


def _is_text(value: object) -> bool:
    return not isinstance(value, str) or is_unicode_text(value)


def check_value(info: KeyInfo, key: str, value: object, *, ordered: bool) -> Value:
    """One value for ``key``: normalized (``ordered=False``) or of the key's type as it is.

    InvalidQueryError (without a caret) if it does not fit; used for keyword
    arguments (``visit=[42, 43]``) as well as for expressions.
    """
    try:
        return _value(info, key, value, ordered=ordered, literal=None)
    except _Failed as failed:
        hint = f"\n  help: {failed.problem.hint}" if failed.problem.hint else ""
        raise InvalidQueryError(failed.problem.message + hint) from None


def _value(
    info: KeyInfo, key: str, value: object, *, ordered: bool, literal: s.Literal | None
) -> Value:
    type_name = info.types[key]
    span = literal.span if literal is not None else None
    if not _is_text(value):
        raise _Failed(_Problem(f"{value!r} holds a lone surrogate; values must be text", span))
    if literal is not None or ordered:
        typed = fits(type_name, value)
        if typed is None:
            shown = literal.kind if literal is not None else type(value).__name__
            raise _Failed(
                _Problem(
                    f"type mismatch: {key!r} of {info.dataset_type!r} is {_TYPE_WORDS[type_name]} "
                    f"key, but {value!r} is {_TYPE_WORDS.get(shown, 'a ' + shown)}",
                    span,
                    _HOW_TO_WRITE[type_name],
                )
            )
        if ordered:
            return typed
        value = typed
    try:
        return info.normalize(key, value)
    except InvalidDataIdError as error:
        raise _Failed(_Problem(f"{error}", span)) from None


class _Checker:
    def __init__(self, text: str, info: KeyInfo, bind: Mapping[str, object]) -> None:
        self.text = text
        self.info = info
        self.bind = bind
        self.problems: list[_Problem] = []

    def expression(self, node: s.Expression) -> p.Predicate:
        if isinstance(node, s.And):
            return p.AllOf(tuple(self.expression(term) for term in node.terms))
        if isinstance(node, s.Or):
            return p.AnyOf(tuple(self.expression(term) for term in node.terms))
        if isinstance(node, s.Not):
            return p.Negate(self.expression(node.term))
        try:
            return self.comparison(node)
        except _Failed as failed:
            self.problems.append(failed.problem)
            return p.TRUE

    def comparison(self, node: s.Compare | s.In | s.Between) -> p.Predicate:
        key = self.key(node.key)
        if isinstance(node, s.Compare):
            ordered = node.op not in _EQUALITY
            return p.Compare(key, node.op, self.one(key, node.value, ordered=ordered))
        if isinstance(node, s.In):
            values: list[Value] = []
            for operand in node.values:
                for value in self.many(key, operand):
                    if value not in values:
                        values.append(value)
            found = p.In(key, tuple(values))
            return p.Negate(found) if node.negated else found
        low = self.one(key, node.low, ordered=True)
        high = self.one(key, node.high, ordered=True)
        inside = p.AllOf((p.Compare(key, ">=", low), p.Compare(key, "<=", high)))
        return p.Negate(inside) if node.negated else inside

    def key(self, name: s.Name) -> str:
        info = self.info
        key = info.canonical(name.name)
        if key is not None:
            return key
        names = [*info.types, *info.aliases]
        close = difflib.get_close_matches(name.name, names, n=1)
        if name.name in info.other_keys:
            message = f"{name.name!r} is not a key of dataset type {info.dataset_type!r}"
        else:
            message = f"unknown key {name.name!r} for dataset type {info.dataset_type!r}"
        keys = f"keys of {info.dataset_type!r}: {info.describe_keys()}"
        hint = f"did you mean {close[0]!r}? ({keys})" if close else keys
        raise _Failed(_Problem(message, name.span, hint))

    def bound(self, operand: s.Bind) -> object:
        if operand.name in self.bind:
            return self.bind[operand.name]
        close = difflib.get_close_matches(operand.name, [str(n) for n in self.bind], n=1)
        hint = (
            f"did you mean :{close[0]}?"
            if close
            else f"pass bind={{{operand.name!r}: ...}} (or --bind {operand.name}=VALUE)"
        )
        raise _Failed(_Problem(f"no value is bound to :{operand.name}", operand.span, hint))

    def one(self, key: str, operand: s.Operand, *, ordered: bool) -> Value:
        if isinstance(operand, s.Literal):
            return _value(self.info, key, operand.value, ordered=ordered, literal=operand)
        value = self.bound(operand)
        if _is_collection(value):
            raise _Failed(
                _Problem(
                    f":{operand.name} is bound to a collection, which only IN takes",
                    operand.span,
                    f"write {key} IN (:{operand.name})",
                )
            )
        return self.bind_value(key, operand, value, ordered=ordered)

    def many(self, key: str, operand: s.Operand) -> list[Value]:
        if isinstance(operand, s.Literal):
            return [_value(self.info, key, operand.value, ordered=False, literal=operand)]
        value = self.bound(operand)
        items = list(value) if _is_collection(value) else [value]  # type: ignore[call-overload]
        return [self.bind_value(key, operand, item, ordered=False) for item in items]

    def bind_value(self, key: str, operand: s.Bind, value: object, *, ordered: bool) -> Value:
        try:
            return _value(self.info, key, value, ordered=ordered, literal=None)
        except _Failed as failed:
            problem = failed.problem
            raise _Failed(
                _Problem(f":{operand.name}: {problem.message}", operand.span, problem.hint)
            ) from None


def _depth(expression: s.Expression) -> int:
    """How deeply AND, OR and NOT nest in ``expression`` (counted without recursion)."""
    deepest = 0
    stack: list[tuple[s.Expression, int]] = [(expression, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, s.And | s.Or):
            stack.extend((term, depth + 1) for term in node.terms)
        elif isinstance(node, s.Not):
            stack.append((node.term, depth + 1))
    return deepest


def _is_collection(value: object) -> bool:
    return isinstance(value, list | tuple | set | frozenset | range)


def check(
    expression: s.Expression,
    text: str,
    info: KeyInfo,
    bind: Mapping[str, object] | None = None,
) -> p.Predicate:
    """The checked predicate of a parsed ``expression`` (parsed from ``text``).

    InvalidQueryError listing every problem, each under its place in the text.
    """
    if _depth(expression) > MAX_DEPTH:
        raise InvalidQueryError(
            f"the expression nests AND/OR/NOT more than {MAX_DEPTH} deep; simplify it", text
        )
    checker = _Checker(text, info, bind or {})
    try:
        result = checker.expression(expression)
    except RecursionError:
        raise InvalidQueryError("the expression nests too deeply; simplify it", text) from None
    problems = checker.problems
    if not problems:
        return result
    lines: list[str] = []
    for problem in problems:
        lines.append(problem.message)
        if problem.span is not None:
            lines += excerpt(text, problem.span.start, problem.span.end)
        if problem.hint:
            lines.append(f"  help: {problem.hint}")
    first = problems[0].span
    raise InvalidQueryError(
        "\n".join(lines),
        text,
        None if first is None else first.start,
        None if first is None else first.end,
    )
