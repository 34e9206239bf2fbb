"""Path templates: parsing, format-spec checks, path regexes and path collisions.

A dataset type's template is Python format syntax over data ID keys,
``"raw/{visit:07d}/{ccd:03d}.fits"``. This module is the compiler's analysis of
one: :func:`parse_template` splits it into literal :class:`Text` and
:class:`Field` segments; :func:`spec_problem` says whether a field's format spec
suits its key's type; :func:`ambiguity` finds touching fields that cannot be
split apart again; :func:`path_regex` builds the regular expression that parses
a path back into a data ID; :func:`find_collision` finds a path two templates
can both render. What it needs to know about each key is a :class:`KeyShape`.

The regex and the collision search are both derived from one small internal
expression tree (``_Node``), so the automaton the search walks accepts the same
language the regex matches. Regexes are meant for ``pattern.fullmatch(path)``
and carry no anchors.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import itertools
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

__all__ = [
    "Field",
    "KeyShape",
    "PathShape",
    "PrefilterKey",
    "Template",
    "TemplateSyntaxError",
    "Text",
    "ambiguity",
    "collision",
    "find_collision",
    "find_collisions",
    "may_collide",
    "parse_template",
    "path_regex",
    "path_shape",
    "prefilter_key",
    "render_example",
    "spec_problem",
]

KEY_TYPES = ("int", "str", "float", "bool", "date", "datetime")


# ---- the template itself ------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyShape:
    """What template analysis needs to know about a key: its type and constraints."""

    type: str
    choices: tuple[object, ...] | None = None
    pattern: str | None = None
    minimum: object | None = None
    maximum: object | None = None
    allow_slash: bool = False


@dataclass(frozen=True)
class Field:
    """A replacement field ``{key:spec}``; ``offset``/``length`` span the braces in the template."""

    key: str
    spec: str
    offset: int
    length: int


@dataclass(frozen=True)
class Text:
    """Literal template text (``{{``/``}}`` unescaped), starting at ``offset`` in the template."""

    text: str
    offset: int


@dataclass(frozen=True)
class Template:
    """A parsed template: its text and its segments in order."""

    text: str
    segments: tuple[Text | Field, ...]

    def __hash__(self) -> int:
        return hash(self.text)  # the segments are a function of the text

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(s for s in self.segments if isinstance(s, Field))

    @property
    def keys(self) -> tuple[str, ...]:
        """The distinct keys of the fields, in order of first use."""
        return tuple(dict.fromkeys(f.key for f in self.fields))

    @cached_property
    def _layout(self) -> _Layout:
        return _layout(self)


class TemplateSyntaxError(Exception):
    """A template that is not valid template syntax; ``offset`` is where, in the template text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_template(text: str) -> Template:
    """Split ``text`` into literal text and fields; :class:`TemplateSyntaxError` if malformed."""
    segments: list[Text | Field] = []
    literal: list[str] = []
    literal_start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            if not literal:
                literal_start = i
            literal.append(char)
            i += 2
        elif char == "}":
            raise TemplateSyntaxError("single '}' in template; write '}}' for a literal brace", i)
        elif char == "{":
            end = _field_end(text, i)
            if literal:
                segments.append(Text("".join(literal), literal_start))
                literal = []
            segments.append(_parse_field(text, i, end))
            i = end + 1
        else:
            if not literal:
                literal_start = i
            literal.append(char)
            i += 1
    if literal:
        segments.append(Text("".join(literal), literal_start))
    return Template(text, tuple(segments))


def _field_end(text: str, start: int) -> int:
    for j in range(start + 1, len(text)):
        if text[j] == "{":
            raise TemplateSyntaxError(
                "a field cannot contain '{' (nested fields are not supported)", j
            )
        if text[j] == "}":
            return j
    raise TemplateSyntaxError("unclosed '{'; write '{{' for a literal brace", start)


def _parse_field(text: str, start: int, end: int) -> Field:
    body = text[start + 1 : end]
    cut = min((i for i in (body.find(":"), body.find("!")) if i >= 0), default=len(body))
    name, rest = body[:cut], body[cut:]
    if not name:
        raise TemplateSyntaxError("empty field: a field names a key, as in '{visit}'", start)
    if name[0].isdigit():
        raise TemplateSyntaxError(
            f"positional field '{{{name}}}': a field names a key, as in '{{visit}}'", start + 1
        )
    for char, what in ((".", "attribute access"), ("[", "index access")):
        if char in name:
            raise TemplateSyntaxError(
                f"{what} is not supported in templates: '{{{name}}}'", start + 1 + name.index(char)
            )
    if not _NAME.fullmatch(name):
        raise TemplateSyntaxError(f"{name!r} is not a key name", start + 1)
    if rest.startswith("!"):
        raise TemplateSyntaxError(
            f"conversions like '{rest.partition(':')[0]}' are not supported in templates",
            start + 1 + cut,
        )
    return Field(name, rest[1:], start, end + 1 - start)


def render_example(template: Template, values: Mapping[str, object]) -> str:
    """Format ``template`` with ``values`` as the runtime does.

    Python format semantics, except that a date or datetime without a spec renders
    ISO 8601 (``2014-03-01``, ``2014-03-01T12:00:00``).
    """
    return "".join(
        s.text if isinstance(s, Text) else _render_value(values[s.key], s.spec)
        for s in template.segments
    )


def _render_value(value: object, spec: str) -> str:
    if spec == "" and isinstance(value, _dt.date):
        return value.isoformat()
    return format(value, spec)


# ---- format specs -------------------------------------------------------------------------------
_INT_SPEC = re.compile(r"(?P<sign>[-+ ]?)(?P<zero>0?)(?P<width>[1-9][0-9]*)?d?")
_STR_SPEC = re.compile(r"(?P<width>[1-9][0-9]*)?s?")
_FLOAT_SPEC = re.compile(
    r"(?P<zero>0?)(?P<width>[1-9][0-9]*)?(?:\.(?P<prec>[0-9]+))?(?P<type>[feg])"
)
_DIRECTIVE = re.compile(r"%(.?)")
_DATE_DIRECTIVES = "Ymdj%"
_TIME_DIRECTIVES = "HMSf"
_HINTS = {
    "int": "an int field takes an optional sign, zero padding and width, as in '05d', 'd' or '+d'",
    "str": "a str field takes 's' or a width, as in '10s'",
    "float": "a float field takes a width, a precision and f, e or g, as in '.3f'",
    "bool": "a bool field takes no format spec",
}


def _spec_detail(spec: str, key_type: str) -> str | None:
    """None if ``spec`` suits ``key_type``, else why not."""
    if spec == "":
        return None
    if key_type == "int":
        return None if _INT_SPEC.fullmatch(spec) else _HINTS["int"]
    if key_type == "str":
        return None if _STR_SPEC.fullmatch(spec) else _HINTS["str"]
    if key_type == "float":
        return None if _FLOAT_SPEC.fullmatch(spec) else _HINTS["float"]
    if key_type in ("date", "datetime"):
        if "%" not in spec:
            return f"a {key_type} field takes strftime directives, as in '%Y%m%d'"
        for match in _DIRECTIVE.finditer(spec):
            directive = match.group(1)
            if key_type == "date" and directive and directive in _TIME_DIRECTIVES:
                return f"'%{directive}' is a time of day, which a date does not have"
            if not directive or directive not in _DATE_DIRECTIVES + _TIME_DIRECTIVES:
                return (
                    f"'%{directive}' cannot be parsed back from a path; "
                    "use %Y %m %d %H %M %S %j %f and literal text"
                )
        return None
    return _HINTS["bool"] if key_type == "bool" else f"unknown key type {key_type!r}"


def spec_problem(field: Field, key_type: str) -> str | None:
    """None if ``field``'s format spec suits a key of ``key_type``, else a message for the user."""
    detail = _spec_detail(field.spec, key_type)
    if detail is None:
        return None
    suits = [t for t in KEY_TYPES if t != key_type and _spec_detail(field.spec, t) is None]
    if suits:
        article = "an" if suits[0] == "int" else "a"
        return (
            f"format spec '{field.spec}' needs {article} {' or '.join(suits)} key, "
            f"but '{field.key}' is {key_type}"
        )
    return f"format spec '{field.spec}' does not fit {key_type} key '{field.key}': {detail}"


# ---- character sets and the expression tree ---------------------------------------------------
Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive code-point ranges
_TOP = 0x10FFFF


def _chars_of(chars: str) -> Ranges:
    merged: list[tuple[int, int]] = []
    for code in sorted({ord(c) for c in chars}):
        if merged and merged[-1][1] == code - 1:
            merged[-1] = (merged[-1][0], code)
        else:
            merged.append((code, code))
    return tuple(merged)


def _union(*sets: Ranges) -> Ranges:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(r for s in sets for r in s):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return tuple(merged)


def _complement(ranges: Ranges) -> Ranges:
    result: list[tuple[int, int]] = []
    start = 0
    for low, high in ranges:
        if low > start:
            result.append((start, low - 1))
        start = high + 1
    if start <= _TOP:
        result.append((start, _TOP))
    return tuple(result)


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    result: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            result.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(result)


ANY: Ranges = ((0, _TOP),)
DIGIT = _chars_of("0123456789")
NONZERO = _chars_of("123456789")
NOT_SLASH = _complement(_chars_of("/"))
_WORD = _chars_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
_SPACE = _chars_of(" \t\n\r\f\v")


@dataclass(frozen=True)
class _Chars:
    """One character from a set."""

    ranges: Ranges


@dataclass(frozen=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[_Node, ...]


@dataclass(frozen=True)
class _Repeat:
    node: _Node
    low: int
    high: int | None


@dataclass(frozen=True)
class _Group:
    """A key's first use: a named group."""

    name: str
    node: _Node


@dataclass(frozen=True)
class _Backref:
    """A key's later use; the automaton treats it as another copy of ``node``."""

    name: str
    node: _Node


@dataclass(frozen=True)
class _Verbatim:
    """A user's regex, emitted as written; ``node`` is its language as the automaton sees it."""

    regex: str
    node: _Node


_Node = _Chars | _Seq | _Alt | _Repeat | _Group | _Backref | _Verbatim


def _lit(text: str) -> _Node:
    return _Seq(tuple(_Chars(((ord(c), ord(c)),)) for c in text))


def _opt(node: _Node) -> _Node:
    return _Repeat(node, 0, 1)


_NOTHING = _Alt(())  # the empty language


def _cat(*items: _Node) -> _Node:
    return _NOTHING if _NOTHING in items else _Seq(items)


def _alt(*options: _Node) -> _Node:
    kept = tuple(o for o in options if o != _NOTHING)
    return kept[0] if len(kept) == 1 else _Alt(kept)


def _set(chars: str) -> _Node:
    return _Chars(_chars_of(chars))


def _emit(node: _Node) -> str:
    if isinstance(node, _Chars):
        return _class_regex(node.ranges)
    if isinstance(node, _Seq):
        return "".join(_emit(item) for item in node.items)
    if isinstance(node, _Alt):
        if len(node.options) == 1:
            return _emit(node.options[0])
        return "(?:" + "|".join(_emit(o) for o in node.options) + ")" if node.options else "(?!)"
    if isinstance(node, _Repeat):
        if node.high == 0:
            return ""
        inner = _emit(node.node)
        if not _is_atom(node.node):
            inner = f"(?:{inner})"
        low, high = node.low, node.high
        quantifier = {(0, None): "*", (1, None): "+", (0, 1): "?", (1, 1): ""}.get((low, high))
        if quantifier is None:
            bounds = f"{low}," if high is None else f"{low}" if low == high else f"{low},{high}"
            quantifier = f"{{{bounds}}}"
        return inner + quantifier
    if isinstance(node, _Group):
        body = node.node
        if isinstance(body, _Alt) and len(body.options) > 1:
            return f"(?P<{node.name}>" + "|".join(_emit(o) for o in body.options) + ")"
        return f"(?P<{node.name}>{_emit(body)})"
    if isinstance(node, _Backref):
        return f"(?P={node.name})"
    return f"(?:{node.regex})"


def _is_atom(node: _Node) -> bool:
    if isinstance(node, _Seq) and len(node.items) == 1:
        return _is_atom(node.items[0])
    return isinstance(node, _Chars | _Group | _Backref | _Verbatim) or (
        isinstance(node, _Alt) and len(node.options) != 1
    )


def _class_regex(ranges: Ranges) -> str:
    if ranges == ANY:
        return "(?s:.)"
    if not ranges:
        return "(?!)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _literal_char(ranges[0][0])
    if ranges == DIGIT:
        return "[0-9]"
    negated = bool(ranges) and ranges[0][0] == 0 and ranges[-1][1] == _TOP
    body = _complement(ranges) if negated else ranges
    parts = [
        _class_char(low)
        + ("" if low == high else "-" if high > low + 1 else "")
        + ("" if low == high else _class_char(high))
        for low, high in body
    ]
    return ("[^" if negated else "[") + "".join(parts) + "]"


def _literal_char(code: int) -> str:
    char = chr(code)
    if not char.isprintable():
        return _hex_escape(code)
    return "\\" + char if char in ".^$*+?{}[]\\|()" else char


def _class_char(code: int) -> str:
    char = chr(code)
    if not char.isprintable():
        return _hex_escape(code)
    return "\\" + char if char in "\\]-[^" else char


def _hex_escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# ---- one field's language -----------------------------------------------------------------------
def _field_node(field: Field, shape: KeyShape) -> _Node:
    """The language of the rendered values of ``field``; ValueError if its spec is unsupported."""
    detail = _spec_detail(field.spec, shape.type)
    if detail is not None:
        raise ValueError(f"field '{{{field.key}:{field.spec}}}': {detail}")
    if shape.choices is not None:
        values = {_render_value(v, field.spec) for v in shape.choices}
        if shape.type == "str" and not shape.allow_slash:
            values = {v for v in values if "/" not in v}  # the runtime refuses these values
        rendered = sorted(values, key=lambda s: (-len(s), s))
        return _Alt(tuple(_lit(r) for r in rendered))
    if shape.type == "int":
        return _int_node(field.spec, shape)
    if shape.type == "str":
        return _str_node(field.spec, shape)
    if shape.type == "float":
        return _float_node(field.spec)
    if shape.type == "bool":
        return _Alt((_lit("False"), _lit("True")))
    return _time_node(field.spec, shape.type)


def _canon(low: int, high: int | None) -> _Node:
    """Decimal digits without leading zeros, ``low`` to ``high`` of them."""
    if high is not None and high < low:
        return _NOTHING
    if low <= 1 and high == 1:
        return _Chars(DIGIT)
    rest = _Repeat(_Chars(DIGIT), max(low - 1, 0), None if high is None else high - 1)
    nonzero = _cat(_Chars(NONZERO), rest)
    return _alt(_lit("0"), nonzero) if low <= 1 else nonzero


def _int_node(spec: str, shape: KeyShape) -> _Node:
    match = _INT_SPEC.fullmatch(spec)
    assert match is not None
    width = int(match["width"] or 0)
    low, high = shape.minimum, shape.maximum
    branches: list[_Node] = []
    if not (isinstance(high, int) and high < 0):
        sign = match["sign"] if match["sign"] in ("+", " ") else ""
        digits = len(str(high)) if isinstance(high, int) else None
        branches.append(_int_branch(sign, bool(match["zero"]), width, digits))
    if not (isinstance(low, int) and low >= 0):
        digits = len(str(-low)) if isinstance(low, int) else None
        branches.append(_int_branch("-", bool(match["zero"]), width, digits))
    return _alt(*branches)


def _int_branch(sign: str, zero: bool, width: int, digits: int | None) -> _Node:
    """Renderings of ints with one sign, padded to ``width``, with at most ``digits`` digits."""
    pad = width - len(sign)
    if pad <= 1:
        return _cat(_lit(sign), _canon(1, digits))
    if zero:
        if digits is not None and digits < pad:
            return _cat(_lit(sign + "0" * (pad - digits)), _Repeat(_Chars(DIGIT), digits, digits))
        return _cat(_lit(sign), _alt(_Repeat(_Chars(DIGIT), pad, pad), _canon(pad + 1, digits)))
    options = [
        _cat(_lit(" " * (pad - n) + sign), _canon(n, n))
        for n in range(1, pad)
        if digits is None or n <= digits
    ]
    options.append(_cat(_lit(sign), _canon(pad, digits)))
    return _alt(*options)


def _str_node(spec: str, shape: KeyShape) -> _Node:
    match = _STR_SPEC.fullmatch(spec)
    assert match is not None
    width = int(match["width"] or 0)
    if shape.pattern is not None:
        node: _Node = _pattern_node(shape.pattern, shape.allow_slash)
        return _cat(node, _Repeat(_lit(" "), 0, None)) if width else node
    return _Repeat(_Chars(ANY if shape.allow_slash else NOT_SLASH), max(width, 1), None)


def _float_node(spec: str) -> _Node:
    digits = _Repeat(_Chars(DIGIT), 1, None)
    exponent = _cat(_lit("e"), _set("+-"), _Repeat(_Chars(DIGIT), 2, None))
    match = _FLOAT_SPEC.fullmatch(spec)
    if match is None or match["type"] == "g":  # repr() or general format
        body = _cat(digits, _opt(_cat(_lit("."), digits)), _opt(exponent))
    else:
        precision = int(match["prec"] or 6)
        fraction = _cat(_lit("."), _Repeat(_Chars(DIGIT), precision, precision))
        body = _cat(digits, fraction) if precision else digits
        if match["type"] == "e":
            body = _cat(body, exponent)
    node = _cat(_opt(_lit("-")), body)
    if match is not None and match["width"] and not match["zero"]:
        node = _cat(_Repeat(_lit(" "), 0, None), node)
    return node


def _two(first: str, second: str) -> _Node:
    return _cat(_set(first), _set(second))


_DIGITS_09 = "0123456789"
_DIRECTIVE_NODES: dict[str, _Node] = {
    "Y": _Repeat(_Chars(DIGIT), 4, 4),
    "m": _Alt((_two("0", "123456789"), _two("1", "012"))),
    "d": _Alt((_two("0", "123456789"), _two("12", _DIGITS_09), _two("3", "01"))),
    "j": _Repeat(_Chars(DIGIT), 3, 3),
    "H": _Alt((_two("01", _DIGITS_09), _two("2", "0123"))),
    "M": _two("012345", _DIGITS_09),
    "S": _two("012345", _DIGITS_09),
    "f": _Repeat(_Chars(DIGIT), 6, 6),
    "%": _lit("%"),
}


def _time_node(spec: str, key_type: str) -> _Node:
    if spec == "":
        spec = "%Y-%m-%d" if key_type == "date" else "%Y-%m-%dT%H:%M:%S"
        node = _strftime_node(spec)
        if key_type == "date":
            return node
        return _cat(node, _opt(_cat(_lit("."), _DIRECTIVE_NODES["f"])))
    return _strftime_node(spec)


def _strftime_node(spec: str) -> _Node:
    items: list[_Node] = []
    last = 0
    for match in _DIRECTIVE.finditer(spec):
        items.append(_lit(spec[last : match.start()]))
        items.append(_DIRECTIVE_NODES[match.group(1)])
        last = match.end()
    items.append(_lit(spec[last:]))
    return _Seq(tuple(items))


# ---- user patterns (``matches "REGEX"``) ------------------------------------------------------
_LEADING_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


def _embeddable(pattern: str) -> str:
    """``pattern`` rewritten to sit inside a larger regex (no global flags, no outer anchors)."""
    flags = _LEADING_FLAGS.match(pattern)
    body = pattern[flags.end() :] if flags else pattern
    if body.startswith(("\\A", "^")):
        body = body[2:] if body.startswith("\\A") else body[1:]
    for anchor in ("\\Z", "$"):
        escapes = len(body[: -len(anchor)]) - len(body[: -len(anchor)].rstrip("\\"))
        if body.endswith(anchor) and escapes % 2 == 0:
            body = body[: -len(anchor)]
            break
    return f"(?{flags.group(1)}:{body})" if flags else body


def _pattern_node(pattern: str, allow_slash: bool) -> _Verbatim:
    regex = _embeddable(pattern)
    try:
        re.compile(regex)
    except re.error as error:
        raise ValueError(f"invalid pattern {pattern!r}: {error}") from None
    alphabet = ANY if allow_slash else NOT_SLASH
    try:
        parser: Any = importlib.import_module("re._parser")
        node = _sre_node(list(parser.parse(pattern)), alphabet)
    except (ImportError, _Unsupported):
        # An over-approximation; find_collision verifies every witness against the real regex.
        node = _Repeat(_Chars(alphabet), 1, None)
    return _Verbatim(regex, node)


class _Unsupported(Exception):
    """A regex construct the automaton does not model."""


_ANCHORS = ("AT_BEGINNING", "AT_BEGINNING_STRING", "AT_END", "AT_END_STRING")
_CATEGORIES = {
    "CATEGORY_DIGIT": DIGIT,
    "CATEGORY_NOT_DIGIT": _complement(DIGIT),
    "CATEGORY_WORD": _WORD,
    "CATEGORY_NOT_WORD": _complement(_WORD),
    "CATEGORY_SPACE": _SPACE,
    "CATEGORY_NOT_SPACE": _complement(_SPACE),
}


def _sre_node(items: Sequence[tuple[Any, Any]], alphabet: Ranges) -> _Node:
    """Translate ``re._parser`` output into a node (ASCII approximations of \\d \\w \\s)."""
    nodes: list[_Node] = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            nodes.append(_Chars(_intersect(((arg, arg),), alphabet)))
        elif name == "NOT_LITERAL":
            nodes.append(_Chars(_intersect(_complement(((arg, arg),)), alphabet)))
        elif name == "ANY":
            nodes.append(_Chars(_intersect(_complement(_chars_of("\n")), alphabet)))
        elif name == "IN":
            nodes.append(_Chars(_intersect(_sre_set(arg), alphabet)))
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, sub = arg
            inner = _sre_node(list(sub), alphabet)
            nodes.append(_Repeat(inner, low, None if str(high) == "MAXREPEAT" else high))
        elif name == "SUBPATTERN" and not arg[1] and not arg[2]:
            nodes.append(_sre_node(list(arg[3]), alphabet))
        elif name == "BRANCH":
            nodes.append(_Alt(tuple(_sre_node(list(b), alphabet) for b in arg[1])))
        elif name == "AT" and str(arg) in _ANCHORS:
            continue
        else:
            raise _Unsupported(name)
    return _Seq(tuple(nodes))


def _sre_set(items: Sequence[tuple[Any, Any]]) -> Ranges:
    sets: list[Ranges] = []
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            sets.append(((arg, arg),))
        elif name == "RANGE":
            sets.append(((arg[0], arg[1]),))
        elif name == "CATEGORY" and str(arg) in _CATEGORIES:
            sets.append(_CATEGORIES[str(arg)])
        else:
            raise _Unsupported(name)
    union = _union(*sets)
    return _complement(union) if negate else union


# ---- regex and ambiguity ------------------------------------------------------------------------
def _shape(shapes: Mapping[str, KeyShape], key: str) -> KeyShape:
    try:
        return shapes[key]
    except KeyError:
        raise KeyError(f"no key shape for template field {key!r}") from None


def _template_node(
    template: Template,
    shapes: Mapping[str, KeyShape],
    fixed: Mapping[str, str] | None = None,
    numbered: bool = False,
) -> _Node:
    """The template's language; ``fixed`` pins keys to one rendered text; ``numbered``
    names one group per field (``_0``, ``_1``, ...) instead of one per key."""
    items: list[_Node] = []
    seen: set[str] = set()
    for index, segment in enumerate(template.segments):
        if isinstance(segment, Text):
            items.append(_lit(segment.text))
            continue
        if fixed is not None and segment.key in fixed:
            node = _lit(fixed[segment.key])
        else:
            node = _field_node(segment, _shape(shapes, segment.key))
        if numbered:
            items.append(_Group(f"_{index}", node))
        else:
            items.append((_Backref if segment.key in seen else _Group)(segment.key, node))
        seen.add(segment.key)
    return _Seq(tuple(items))


def path_regex(template: Template, shapes: Mapping[str, KeyShape]) -> str:
    """A regex for ``fullmatch`` (no anchors) matching the paths ``template`` can render.

    One named group per distinct key, at its first use; later uses are ``(?P=key)``.
    Raises ValueError for a spec :func:`spec_problem` rejects.
    """
    return _emit(_template_node(template, shapes))


def _extension_chars(nfa: _Nfa) -> Ranges:
    """Characters ``c`` such that some word ``x`` and some longer ``x·c·…`` are both accepted.

    Runs the automaton twice side by side over the same input: wherever one copy accepts,
    the moves the other copy can still make are extensions.
    """
    seen, queue = {(0, 0)}, deque([(0, 0)])
    found: list[Ranges] = []
    while queue:
        p, q = queue.popleft()
        if p in nfa.accepting:
            found.extend(ranges for ranges, _ in nfa.moves[q])
        for ranges_p, target_p in nfa.moves[p]:
            for ranges_q, target_q in nfa.moves[q]:
                if (target_p, target_q) not in seen and _intersect(ranges_p, ranges_q):
                    seen.add((target_p, target_q))
                    queue.append((target_p, target_q))
    return _union(*found)


def _has_one_length(nfa: _Nfa) -> bool:
    """Whether every word the automaton accepts has the same length (no loop may be taken)."""
    layer = {0}
    lengths = 0
    for _ in range(len(nfa.moves) + 1):
        if layer & nfa.accepting:
            lengths += 1
        layer = {target for state in layer for _, target in nfa.moves[state]}
        if not layer:
            return lengths == 1
    return False  # still moving after more steps than states: a loop, so many lengths


def _touching_split_is_determined(
    first: Field, first_shape: KeyShape, second: Field, second_shape: KeyShape
) -> bool:
    """Whether ``{first}{second}`` splits one way only.

    If two splits ``x·y = x'·y'`` existed with ``x`` shorter, ``x'`` would continue ``x``
    with a character that also starts ``y``; so it is enough that no character can both
    extend a value of the first field and start a value of the second. A fixed-width or
    prefix-free first field (zero-padded int kept in its width by its range, choices of
    one length, bool, date) extends by nothing, whatever follows. Symmetrically, when
    every value of the second field has one length, ``y`` and ``y'`` have the same
    length, so ``x = x'`` (``{filter}{subfilter}`` with ``subfilter`` in 0..9).
    """
    extend = _extension_chars(_nfa(_field_node(first, first_shape)))
    if not extend:
        return True
    if _has_one_length(_nfa(_field_node(second, second_shape))):
        return True
    start = _union(*(ranges for ranges, _ in _nfa(_field_node(second, second_shape)).moves[0]))
    return not _intersect(extend, start)


def split_ambiguity(template: Template, shapes: Mapping[str, KeyShape]) -> str | None:
    """Text the template renders that splits into its fields in more than one way, or None.

    The text is the whole path, or only the path component ("/" to "/") that is
    ambiguous when no field can hold a "/".

    Runs two copies of the template's automaton, each state tagged with the segment
    (field or literal text) it is in, side by side over the same characters. Two
    splits differ exactly when some character is taken by different segments in the
    two runs, so the search looks for an accepted string on which that happens. This
    catches what :func:`ambiguity` cannot: ``plot-{description}-{style}`` where the
    values may themselves hold "-".

    Two splits are two data IDs only if some key's *first* field takes different text
    in them (later fields of a key repeat its first), so a divergence counts only on a
    character that one of the runs gives to a first field. That keeps templates such as
    ``{filter}/{tract}/calexp-{filter}-{tract}.fits`` quiet, whose repeats the first
    fields pin. (The runs do not check that repeats equal their first field, so a
    report is a strong sign, not a proof, for templates that repeat keys.)
    """
    if len(template.fields) < 2:
        return None
    components: list[list[_Piece]] = [[]]
    seen_keys: set[str] = set()
    for segment in template.segments:
        if isinstance(segment, Field):
            automaton = _field_automaton(segment.key, segment.spec, _shape(shapes, segment.key))
            components[-1].append(_Piece(automaton, segment.key not in seen_keys, None))
            seen_keys.add(segment.key)
            continue
        for n, part in enumerate(segment.text.split("/")):
            if n:
                components.append([])  # a "/" ends a path component
            if part:
                chars = tuple(_Chars(((ord(c), ord(c)),)) for c in part)
                components[-1].append(_Piece(_nfa(_Seq(chars)), False, part))
    slash = _chars_of("/")
    if any(
        p.text is None and _intersect(_alphabet(p.automaton), slash) for c in components for p in c
    ):
        # a field may hold "/": the components are not fixed, so search the whole path
        joined: list[_Piece] = []
        for n, component in enumerate(components):
            if n:
                joined.append(_Piece(_nfa(_Chars(slash)), False, "/"))
            joined.extend(component)
        return _split_search(joined)
    # No field holds "/", so the components are fixed and each is searched alone; one
    # whose fields are each followed by text they cannot hold splits one way.
    for component in components:
        if sum(p.text is None for p in component) >= 2 and not _delimited(component):
            witness = _split_search(component)
            if witness is not None:
                return witness
    return None


@dataclass(frozen=True)
class _Piece:
    """A field (``text`` None) or a run of literal text, as an automaton."""

    automaton: _Nfa
    first: bool  # a key's first field: the split of these decides the data ID
    text: str | None


@functools.lru_cache(maxsize=4096)
def _field_automaton(key: str, spec: str, shape: KeyShape) -> _Nfa:
    """A field's automaton, built once per (key, spec, shape): templates share fields."""
    return _nfa(_field_node(Field(key, spec, 0, 0), shape))


def _alphabet(nfa: _Nfa) -> Ranges:
    return _union(*(ranges for moves in nfa.moves for ranges, _ in moves))


def _delimited(component: Sequence[_Piece]) -> bool:
    """Whether every field is last, or followed by text whose first character it never holds.

    The component starts at a fixed place, and such a field ends at the first
    occurrence of that character, so each boundary is fixed in turn: one split only.
    """
    pieces: list[_Piece | None] = [*component, None]
    for piece, following in itertools.pairwise(pieces):
        if piece is None or piece.text is not None or following is None:
            continue
        if following.text is None:
            return False  # two fields touch
        if _intersect(_alphabet(piece.automaton), _chars_of(following.text[0])):
            return False
    return True


def _split_search(pieces: Sequence[_Piece]) -> str | None:
    """A string the pieces accept in sequence in two ways, diverging on a first field."""
    automata = [piece.automaton for piece in pieces]
    first = {k for k, piece in enumerate(pieces) if piece.first}
    end = len(automata)

    def closure(k: int, state: int) -> list[tuple[int, int]]:
        """The (segment, state) places one is also at: past any segment that may end here."""
        places = [(k, state)]
        while k < end and state in automata[k].accepting:
            k, state = k + 1, 0
            places.append((k, state))
        return places

    Pair = tuple[tuple[int, int], tuple[int, int], bool]  # both runs' places; diverged yet?
    start: list[Pair] = [(a, b, False) for a in closure(0, 0) for b in closure(0, 0)]
    parents: dict[Pair, tuple[Pair, Ranges]] = {}  # how each pair was reached, and on what
    queue = deque(start)
    seen = set(start)
    while queue:
        node = queue.popleft()
        (k1, s1), (k2, s2), diverged = node
        if diverged and k1 == end and k2 == end:
            path: list[str] = []
            step = node
            while step in parents:
                step, common = parents[step]
                path.append(_pick(common))
            return "".join(reversed(path))
        if k1 == end or k2 == end:
            continue
        for ranges1, target1 in automata[k1].moves[s1]:
            for ranges2, target2 in automata[k2].moves[s2]:
                common = _intersect(ranges1, ranges2)
                if not common:
                    continue
                split = diverged or (k1 != k2 and (k1 in first or k2 in first))
                for a in closure(k1, target1):
                    for b in closure(k2, target2):
                        following: Pair = (a, b, split)
                        if following not in seen:
                            seen.add(following)
                            parents[following] = (node, common)
                            queue.append(following)
    return None


def ambiguity(template: Template, shapes: Mapping[str, KeyShape]) -> tuple[Field, Field] | None:
    """The first two touching fields (no text between them) that can split more than one way.

    ``{a}{b}`` with two free str keys is ambiguous; ``{v:07d}{c:03d}`` with ranges that keep
    both in their widths is not, and neither is ``{tract}{subdir}`` when ``subdir`` always
    starts with "/", which an int never contains.
    """
    segments = template.segments
    for first, second in itertools.pairwise(segments):
        if (
            isinstance(first, Field)
            and isinstance(second, Field)
            and not _touching_split_is_determined(
                first, _shape(shapes, first.key), second, _shape(shapes, second.key)
            )
        ):
            return first, second
    return None


# ---- collisions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """Shape-independent facts about a template used by the cheap collision pre-filter."""

    prefix: str
    suffix: str
    components: tuple[tuple[str, str, bool], ...]  # (prefix, suffix, all literal) per "/"-part
    slash_keys: tuple[str, ...]  # keys whose field could render "/" (str-like specs)


def _layout(template: Template) -> _Layout:
    segments = template.segments
    prefix = segments[0].text if segments and isinstance(segments[0], Text) else ""
    suffix = segments[-1].text if segments and isinstance(segments[-1], Text) else ""
    components: list[tuple[str, str, bool]] = []
    head: list[str] = []  # literal text of the current component before its first field
    tail: list[str] = []  # literal text of the current component after its last field
    has_field = False
    slash_keys: list[str] = []
    for segment in segments:
        if isinstance(segment, Field):
            has_field, tail = True, []
            if _STR_SPEC.fullmatch(segment.spec):  # could be a str key
                slash_keys.append(segment.key)
            continue
        parts = segment.text.split("/")
        for index, part in enumerate(parts):
            if index:
                components.append(_component(head, tail, has_field))
                head, tail, has_field = [], [], False
            (tail if has_field else head).append(part)
    components.append(_component(head, tail, has_field))
    if any("%" in f.spec and "/" in f.spec for f in template.fields):
        components = []  # a date spec with "/" shifts the components
    return _Layout(prefix, suffix, tuple(components), tuple(slash_keys))


def _component(head: list[str], tail: list[str], has_field: bool) -> tuple[str, str, bool]:
    return "".join(head), "".join(tail if has_field else head), not has_field


@dataclass(frozen=True)
class PrefilterKey:
    """What two templates must agree on to collide; compare keys with :func:`may_collide`.

    ``components`` is None when a field can render "/" (then only prefix and suffix are compared).
    """

    prefix: str
    suffix: str
    components: tuple[tuple[str, str, bool], ...] | None


def _aligned(layout: _Layout, shapes: Mapping[str, KeyShape]) -> bool:
    """Whether the template's "/"-parts are the path's: no field can render a "/"."""
    return bool(layout.components) and not any(
        _shape(shapes, key).allow_slash for key in layout.slash_keys
    )


def prefilter_key(template: Template, shapes: Mapping[str, KeyShape]) -> PrefilterKey:
    """The pre-filter key of ``template``; compare two with :func:`may_collide`."""
    layout = template._layout
    components = layout.components if _aligned(layout, shapes) else None
    return PrefilterKey(layout.prefix, layout.suffix, components)


def _compatible(a: tuple[str, str, bool], b: tuple[str, str, bool]) -> bool:
    (prefix_a, suffix_a, literal_a), (prefix_b, suffix_b, literal_b) = a, b
    if literal_a and literal_b:
        return prefix_a == prefix_b
    return (prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)) and (
        suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
    )


def may_collide(a: PrefilterKey, b: PrefilterKey) -> bool:
    """False only if no path can be rendered by both templates (True means: search)."""
    if not (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)):
        return False
    if not (a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)):
        return False
    if a.components is None or b.components is None:
        return True
    if len(a.components) != len(b.components):
        return False
    return all(_compatible(x, y) for x, y in zip(a.components, b.components, strict=True))


@dataclass(frozen=True)
class _Nfa:
    """An automaton: per state, the character moves out of its epsilon-closure."""

    moves: tuple[tuple[tuple[Ranges, int], ...], ...]
    accepting: frozenset[int]


def _nfa(node: _Node) -> _Nfa:
    epsilon: list[list[int]] = []
    moves: list[list[tuple[Ranges, int]]] = []

    def new() -> int:
        epsilon.append([])
        moves.append([])
        return len(moves) - 1

    def build(node: _Node, state: int) -> int:
        if isinstance(node, _Chars):
            end = new()
            if node.ranges:
                moves[state].append((node.ranges, end))
            return end
        if isinstance(node, _Seq):
            for item in node.items:
                state = build(item, state)
            return state
        if isinstance(node, _Alt):
            end = new()
            for option in node.options:
                start = new()
                epsilon[state].append(start)
                epsilon[build(option, start)].append(end)
            return end
        if isinstance(node, _Repeat):
            for _ in range(node.low):
                state = build(node.node, state)
            if node.high is None:
                loop = new()
                epsilon[state].append(loop)
                epsilon[build(node.node, loop)].append(loop)
                return loop
            end = new()
            epsilon[state].append(end)
            for _ in range(node.high - node.low):
                start = new()
                epsilon[state].append(start)
                state = build(node.node, start)
                epsilon[state].append(end)
            return end
        return build(node.node, state)

    final = build(node, new())
    closed_moves: list[tuple[tuple[Ranges, int], ...]] = []
    accepting: set[int] = set()
    for state in range(len(moves)):
        closure, stack = {state}, [state]
        while stack:
            for target in epsilon[stack.pop()]:
                if target not in closure:
                    closure.add(target)
                    stack.append(target)
        closed_moves.append(tuple(m for s in sorted(closure) for m in moves[s]))
        if final in closure:
            accepting.add(state)
    return _Nfa(tuple(closed_moves), frozenset(accepting))


_PREFERRED = tuple(ord(c) for c in "0a_-.xA1")


def _pick(common: Ranges) -> str:
    """A readable character from a non-empty set."""
    for code in _PREFERRED:
        if any(low <= code <= high for low, high in common):
            return chr(code)
    for low, high in common:
        if high >= 0x21:
            return chr(max(low, 0x21))
    return chr(common[0][0])


def _product_search(a: _Nfa, b: _Nfa) -> str | None:
    """The shortest string both automata accept (breadth-first over the product), or None."""
    parents: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {(0, 0): None}
    queue = deque([(0, 0)])
    common: dict[tuple[Ranges, Ranges], str | None] = {}
    while queue:
        pair = queue.popleft()
        if pair[0] in a.accepting and pair[1] in b.accepting:
            chars: list[str] = []
            step = parents[pair]
            while step is not None:
                chars.append(step[1])
                step = parents[step[0]]
            return "".join(reversed(chars))
        for ranges_a, target_a in a.moves[pair[0]]:
            for ranges_b, target_b in b.moves[pair[1]]:
                nxt = (target_a, target_b)
                if nxt in parents:
                    continue
                key = (ranges_a, ranges_b)
                if key not in common:
                    both = _intersect(ranges_a, ranges_b)
                    common[key] = _pick(both) if both else None
                char = common[key]
                if char is not None:
                    parents[nxt] = (pair, char)
                    queue.append(nxt)
    return None


@dataclass(frozen=True, eq=False)
class PathShape:
    """A template with its key shapes, compiled once for collision checks against others."""

    template: Template
    shapes: Mapping[str, KeyShape]
    key: PrefilterKey
    regex: re.Pattern[str]

    @cached_property
    def _nfa(self) -> _Nfa:
        return _nfa(_template_node(self.template, self.shapes))

    @cached_property
    def _uses(self) -> re.Pattern[str]:
        """Matches the same paths, but with repeated keys free and one group per field."""
        return re.compile(_emit(_template_node(self.template, self.shapes, numbered=True)))

    def repeats(self, path: str, fixed: Mapping[str, str]) -> dict[str, set[str]]:
        """The texts of each repeated, unfixed key in ``path``, read as if the repeats were free."""
        match = self._uses.fullmatch(path)
        if match is None:
            return {}
        texts: dict[str, set[str]] = {}
        for index, segment in enumerate(self.template.segments):
            if isinstance(segment, Field) and segment.key not in fixed:
                texts.setdefault(segment.key, set()).add(match[f"_{index}"])
        return {key: found for key, found in texts.items() if len(found) > 1}

    def pinned(self, fixed: Mapping[str, str]) -> _Nfa:
        if not fixed:
            return self._nfa
        return _nfa(_template_node(self.template, self.shapes, fixed))


def path_shape(template: Template, shapes: Mapping[str, KeyShape]) -> PathShape:
    """Compile ``template`` for :func:`collision`."""
    return PathShape(
        template, shapes, prefilter_key(template, shapes), re.compile(path_regex(template, shapes))
    )


def _order(shape: PathShape) -> tuple[str, str]:
    return shape.template.text, repr([shape.shapes[k] for k in shape.template.keys])


_REPEAT_BUDGET = 16  # product searches spent on lining up repeated keys


def collision(a: PathShape, b: PathShape) -> str | None:
    """A path both compiled templates can render, or None (see :func:`find_collision`)."""
    if not may_collide(a.key, b.key):
        return None
    if _order(b) < _order(a):
        a, b = b, a  # the same search either way round, so the answer is symmetric
    pending: deque[tuple[dict[str, str], dict[str, str]]] = deque([({}, {})])
    tried: set[tuple[tuple[tuple[str, str], ...], ...]] = set()
    for _ in range(_REPEAT_BUDGET):
        if not pending:
            return None
        fixed_a, fixed_b = pending.popleft()
        witness = _product_search(a.pinned(fixed_a), b.pinned(fixed_b))
        if witness is None:
            continue
        if a.regex.fullmatch(witness) and b.regex.fullmatch(witness):
            return witness
        # A repeated key rendered differently at its uses: pin it to each text seen, retry.
        for side, fixed in ((a, fixed_a), (b, fixed_b)):
            for key, texts in sorted(side.repeats(witness, fixed).items()):
                for text in sorted(texts):
                    pins = (
                        ({**fixed_a, key: text}, fixed_b)
                        if side is a
                        else (fixed_a, {**fixed_b, key: text})
                    )
                    label = (tuple(sorted(pins[0].items())), tuple(sorted(pins[1].items())))
                    if label not in tried:
                        tried.add(label)
                        pending.append(pins)
    return None


def find_collision(
    a: Template, shapes_a: Mapping[str, KeyShape], b: Template, shapes_b: Mapping[str, KeyShape]
) -> str | None:
    """One example path that both templates can render, or None if there is none.

    Exact for literal text, ints, floats, bools, dates, choices and str keys, searched
    breadth-first over the product of the two templates' automata. Every witness is
    checked against both real regexes, so it is never false. A repeated key is first
    searched as free copies; if its uses came out different, it is pinned to each text
    seen and the search retried (a bounded number of times), so a collision that needs
    other values for a repeated key may be missed, as may one that needs non-ASCII
    characters of ``\\d``/``\\w``/``\\s`` in a ``matches`` pattern or a construct the
    automaton does not model (lookarounds, backreferences).
    """
    first, second = a._layout, b._layout  # the pre-filter, inlined: most pairs end here
    if not (first.prefix.startswith(second.prefix) or second.prefix.startswith(first.prefix)):
        return None
    if not (first.suffix.endswith(second.suffix) or second.suffix.endswith(first.suffix)):
        return None
    if _aligned(first, shapes_a) and _aligned(second, shapes_b):
        if len(first.components) != len(second.components):
            return None
        if not all(map(_compatible, first.components, second.components)):
            return None
    return collision(path_shape(a, shapes_a), path_shape(b, shapes_b))


def find_collisions(
    items: Iterable[tuple[str, Template, Mapping[str, KeyShape]]],
) -> list[tuple[str, str, str]]:
    """Every colliding pair ``(name_a, name_b, witness)`` among named templates, in input order."""
    compiled = [(name, path_shape(t, s)) for name, t, s in items]
    found: list[tuple[str, str, str]] = []
    for i, (name_a, a) in enumerate(compiled):
        for name_b, b in compiled[i + 1 :]:
            witness = collision(a, b)
            if witness is not None:
                found.append((name_a, name_b, witness))
    return found
