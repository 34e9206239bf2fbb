"""``butlerc fmt``: the canonical text of a policy file.

:func:`format_policy` parses a policy (keeping its comments) and prints it back
in one canonical layout, so that ``fmt(fmt(x)) == fmt(x)`` and the result parses
to the same tree, clause order aside. The layout:

- 4 spaces of indentation per block level; one statement, clause or table row
  per line; ``{`` ends the line that opens a block, ``}`` stands on its own line
  (an empty block without comments is written ``{}``).
- Lines are at most 100 characters where the language allows a break. A one-line
  statement is printed with single spaces between its parts:
  ``key visit: int in 0..9_999_999 alias visitId``; a key's ``doc`` goes on the
  next line, indented one level further. A key that does not fit breaks between
  its clauses (and between the values of ``one of``), continuation lines indented
  one level further; so does a table whose ``doc`` does not fit. A ``doc`` that
  does not fit is split at spaces into adjacent strings, one per line
  (``doc "a long "`` / ``"text"``: the strings join), re-wrapped from scratch
  each time. A single token longer than the line (a long template) stays whole;
  ``keys a, b, c`` (``keys ()``), ``"g" -> "HSC-G"``, ``table t(a: int, b: str) from "t.csv"``.
  A table with rows is a block; its ``doc`` follows the ``}``.
- Clause order is canonical (the sort is stable, so repeated clauses keep their
  relative order):

  * key: range (``in``), choices (``one of``), pattern (``matches``),
    ``allow``, ``alias``, derive (``=``), ``doc``;
  * format: ``doc``, ``formatter``, ``extensions``, ``compressed``, ``python``,
    ``hdus``, ``unsafe``;
  * dataset and calibration: ``doc``, ``template``, ``format``, ``keys``,
    ``skymap``, ``lookup``, ``hdu``, ``match``, ``valid``, ``resolve``, ``shares``,
    ``allow unsafe``.

  The members of ``shared`` and ``instrument`` blocks, and the lines of a
  ``skymap`` definition, keep their order.
- Exactly one blank line between top-level items (a run of ``include`` lines
  may stay together), and around every member that takes more than one line;
  elsewhere a run of blank lines becomes one, and blank lines right after ``{``
  or at the start of the file are dropped.
- Every token is re-emitted as written: strings keep their quotes, escapes and
  ``r`` prefix, numbers keep their spelling (``9_999_999``, ``+3``, ``1.50``).
- Comments (trailing whitespace removed) stay with the statement they precede,
  at its indentation, or stay trailing (two spaces, then ``#``) after the line
  they ended. A comment inside a one-line statement (say between the clauses of
  a key) becomes that line's trailing comment if it has none; any further ones
  become own-line comments before the next statement.
- The file ends with exactly one newline (an empty policy formats to ``""``).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from .diagnostics import Diagnostic
from .parse import parse

__all__ = ["format_policy"]

_INDENT = "    "
LINE_LENGTH = 100

_KEY_ORDER = ("range", "choices", "pattern", "allow", "alias", "derive", "allowance", "doc")
_FORMAT_ORDER = (
    *("doc", "formatter", "extensions", "compressed", "python_type", "hdus", "unsafe"),
    "allowance",
)
_DATASET_ORDER = (
    *("doc", "template", "uses_format", "keys", "uses_skymap", "lookup", "hdu"),
    *("match", "valid", "resolve", "shares", "allow_unsafe", "allowance", "ingest"),
)
_CLAUSE_ORDER = {"format": _FORMAT_ORDER, "dataset": _DATASET_ORDER, "calibration": _DATASET_ORDER}
_BLOCKS = frozenset(
    {"shared", "instrument", "format", "dataset", "calibration", "normalize", "ingest", "skymap"}
)

Node = Tree[Token] | Token


@dataclass(frozen=True)
class _Comment:
    pos: int
    line: int
    text: str


class _CommentParser:
    """The policy grammar's LALR parser, also returning the comments it skipped."""

    def __init__(self) -> None:
        self._comments: list[Token] = []
        self._lock = threading.Lock()
        self._lark = Lark.open_from_package(
            "butlerc.dsl",
            "butler.lark",
            parser="lalr",
            propagate_positions=True,
            maybe_placeholders=False,
            lexer_callbacks={"COMMENT": self._comments.append},
        )

    def parse(self, text: str) -> tuple[Tree[Token], list[_Comment]]:
        with self._lock:
            self._comments.clear()
            try:
                tree = self._lark.parse(text)
                tokens = list(self._comments)
            finally:
                self._comments.clear()
        comments = [_Comment(t.start_pos or 0, t.line or 1, str(t).rstrip()) for t in tokens]
        return tree, comments


@functools.cache
def _comment_parser() -> _CommentParser:
    return _CommentParser()


def format_policy(text: str, file: str) -> tuple[str | None, list[Diagnostic]]:
    """The canonical text of a policy, or ``None`` and the syntax diagnostics."""
    try:
        tree, comments = _comment_parser().parse(text)
    except LarkError:
        _, diagnostics = parse(text, file)
        return None, diagnostics
    lines, _ = _Printer(text).body(tree.children, comments, 0, brace=None, start=[])
    return ("\n".join(lines) + "\n" if lines else ""), []


# ---- one-line statements ----------------------------------------------------------


def _tree(node: Node) -> Tree[Token]:
    assert isinstance(node, Tree), node
    return node


def _text(node: Node) -> str:
    """A one-line statement, clause or value, as canonical text."""
    if isinstance(node, Token):
        return str(node)
    return _INLINE[node.data](node.children)


def _words(nodes: Sequence[Node]) -> str:
    return " ".join(_text(n) for n in nodes)


def _names(nodes: Sequence[Node]) -> str:
    return ", ".join(_text(n) for n in nodes)


def _ordered(clauses: Sequence[Node], order: Sequence[str]) -> list[Node]:
    return sorted(clauses, key=lambda c: order.index(_tree(c).data))


def _key(kids: Sequence[Node]) -> str:
    name, type_, *clauses = kids
    return f"key {name}: {_text(type_)}" + "".join(
        " " + _text(c) for c in _ordered(clauses, _KEY_ORDER)
    )


def _spans_lines(node: Tree[Token], lines: Sequence[str]) -> bool:
    """Whether a member is a block written on several lines (blank lines go around it)."""
    return _is_block(node) and len(lines) > 1


def _fill(first: str, atoms: Sequence[str], indent: str) -> list[str]:
    """``first`` then ``atoms`` separated by spaces, broken before an atom that would not fit."""
    lines = [first]
    for atom in atoms:
        if len(lines[-1]) + 1 + len(atom) <= LINE_LENGTH:
            lines[-1] += " " + atom
        else:
            lines.append(indent + atom)
    return lines


def _doc_lines(node: Node, indent: str) -> list[str]:
    """``doc "..."`` at ``indent``; a long one split at spaces into strings on their own lines."""
    strings = [_text(c) for c in _tree(node).children]
    line = f"{indent}doc {' '.join(strings)}"
    if len(line) <= LINE_LENGTH and len(strings) == 1:
        return [line]
    if any(s.startswith("r") for s in strings):  # raw strings keep their own boundaries
        return _fill(f"{indent}doc {strings[0]}", strings[1:], indent + _INDENT)
    body = "".join(s[1:-1] for s in strings)
    words = re.findall(r"\S+\s*|\s+", body)
    pieces: list[str] = []
    width = LINE_LENGTH - len(indent) - len("doc ") - 2
    for word in words:
        if pieces and len(pieces[-1]) + len(word) <= width:
            pieces[-1] += word
        else:
            pieces.append(word)
            width = LINE_LENGTH - len(indent) - len(_INDENT) - 2
    pieces = pieces or [""]
    return [f'{indent}doc "{pieces[0]}"', *(f'{indent}{_INDENT}"{p}"' for p in pieces[1:])]


def _key_lines(node: Tree[Token], depth: int) -> list[str] | None:
    """A key (or ``override key``): its declaration, broken to fit, and its ``doc`` below."""
    prefix = ""
    if node.data == "override":
        node, prefix = _tree(node.children[0]), "override "
    if node.data != "key":
        return None
    name, type_, *clauses = node.children
    indent = _INDENT * depth
    atoms: list[str] = []
    docs: list[Node] = []
    for clause in _ordered(clauses, _KEY_ORDER):
        kind = _tree(clause).data
        if kind == "doc":
            docs.append(clause)
        elif kind == "choices":
            values = [_text(v) for v in _tree(clause).children]
            atoms.extend([f"one of {values[0]}", *values[1:]])
        else:
            atoms.append(_text(clause))
    lines = _fill(f"{indent}{prefix}key {name}: {_text(type_)}", atoms, indent + _INDENT)
    for doc in docs:
        lines.extend(_doc_lines(doc, indent + _INDENT))
    return lines


_LISTS = {"use": "use", "keys": "keys", "match": "match", "shares": "shares path with"}


def _statement_lines(node: Tree[Token], depth: int) -> list[str]:
    """A one-line statement, broken where it does not fit."""
    indent = _INDENT * depth
    key = _key_lines(node, depth)
    if key is not None:
        return key
    if node.data == "doc":
        return _doc_lines(node, indent)
    line = indent + _text(node)
    if node.data in _LISTS and len(line) > LINE_LENGTH and node.children:
        names = [_text(c) for c in node.children]
        atoms = [f"{n}," for n in names[:-1]] + names[-1:]
        return _fill(f"{indent}{_LISTS[node.data]} {atoms[0]}", atoms[1:], indent + _INDENT)
    if node.data == "table" and len(line) > LINE_LENGTH and len(node.children) > 4:
        name, first, second, source, doc = node.children
        head = f"{indent}table {name}({_text(first)}, {_text(second)}) {_text(source)}"
        return [head, *_doc_lines(doc, indent + _INDENT)]
    return [line]


def _table(kids: Sequence[Node]) -> str:
    name, first, second, source, *doc = kids
    return f"table {name}({_text(first)}, {_text(second)}) {_words([source, *doc])}"


def _valid(kids: Sequence[Node]) -> str:
    return f"valid by {kids[0]}" + (f" from {kids[1]}" if len(kids) > 1 else "")


def _sky_parameter(kids: Sequence[Node]) -> str:
    name, *values = kids
    unit = [v for v in values if _tree(v).data == "unit"]
    numbers = ", ".join(_text(v) for v in values if _tree(v).data != "unit")
    return f"{name} {numbers}" + "".join(" " + _text(u) for u in unit)


_INLINE: dict[str, Callable[[Sequence[Node]], str]] = {
    "string": _words,
    "raw_string": _words,
    "int_literal": _words,
    "float_literal": _words,
    "true_literal": lambda _: "true",
    "false_literal": lambda _: "false",
    "type": _words,
    "include": lambda k: f"include {_words(k)}",
    "doc": lambda k: f"doc {_words(k)}",
    "use": lambda k: f"use {_names(k)}",
    "override": lambda k: f"override {_words(k)}",
    "key": _key,
    "range": lambda k: f"in {_text(k[0])}..{_text(k[1])}",
    "choices": lambda k: f"one of {_words(k)}",
    "pattern": lambda k: f"matches {_words(k)}",
    "alias": lambda k: f"alias {_names(k)}",
    "derive": lambda k: f"= {k[0]}({k[1]})",
    "allow": lambda k: f"allow {_words(k)}",
    "allowance": lambda k: f"allow {_words(k)}",
    "mapping": lambda k: f"{_text(k[0])} -> {_text(k[1])}",
    "table": _table,
    "column": lambda k: f"{k[0]}: {_text(k[1])}",
    "table_file": lambda k: f"from {_words(k)}",
    "formatter": lambda k: f"formatter {_words(k)}",
    "extensions": lambda k: f"extensions {_words(k)}",
    "compressed": lambda k: f"compressed {_words(k)}",
    "python_type": lambda k: f"python {_words(k)}",
    "hdus": lambda _: "hdus",
    "unsafe": lambda _: "unsafe",
    "template": lambda k: f"template {_words(k)}",
    "uses_format": lambda k: f"format {_words(k)}",
    "keys": lambda k: f"keys {_names(k)}" if k else "keys ()",
    "lookup": lambda k: f"lookup {_names(k[:-1])} from {k[-1]}",
    "hdu": lambda k: f"hdu {_words(k)}",
    "shares": lambda k: f"shares path with {_names(k)}",
    "allow_unsafe": lambda _: "allow unsafe",
    "match": lambda k: f"match {_names(k)}",
    "valid": _valid,
    "resolve": lambda k: f"resolve {_words(k)}",
    "translated": lambda k: f"translated {_words(k)}",
    "rule": lambda k: f"{k[0]} <- {_words(k[1:])}",
    "source": lambda k: f"{k[0]}({_text(k[1])})" if len(k) > 1 else str(k[0]),
    "step": lambda k: f"| {k[0]}({_text(k[1])})" if len(k) > 1 else f"| {k[0]}",
    "argument": _words,
    "sky_parameter": _sky_parameter,
    "unit": _words,
    "sky_tract": lambda k: f"tract {_text(k[0])}, {_text(k[1])} radius {_text(k[2])}",
    "default_skymap": lambda k: f"use skymap {_words(k)}",
    "uses_skymap": lambda k: f"skymap {_words(k)}",
    "patch_form": lambda k: f"patch {_words(k)}",
}


# ---- blocks and comments ----------------------------------------------------------


@dataclass
class _Group:
    """A statement with its own-line comments before it (each with "blank line before")."""

    node: Tree[Token]
    blank: bool
    leading: list[tuple[bool, _Comment]] = field(default_factory=list)
    inner: list[_Comment] = field(default_factory=list)
    trailing: list[_Comment] = field(default_factory=list)


def _is_block(node: Tree[Token]) -> bool:
    if node.data == "override":
        return _is_block(_tree(node.children[0]))
    if node.data == "table":
        return _tree(node.children[3]).data == "table_rows"
    return node.data in _BLOCKS


def _trailing(line: str, comments: Sequence[_Comment]) -> str:
    return f"{line}  {comments[0].text}" if comments else line


class _Printer:
    def __init__(self, text: str) -> None:
        self.text = text

    def line_of(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def own_line(self, comment: _Comment) -> bool:
        return not self.text[self.text.rfind("\n", 0, comment.pos) + 1 : comment.pos].strip()

    def brace_after(self, pos: int) -> int:
        """Where the ``{`` after a block header is (only blanks and comments between)."""
        while self.text[pos] != "{":
            pos = self.text.index("\n", pos) if self.text[pos] == "#" else pos + 1
        return pos

    def body(
        self,
        children: Sequence[Node],
        comments: Sequence[_Comment],
        depth: int,
        *,
        brace: int | None,
        start: Sequence[_Comment],
        order: Sequence[str] | None = None,
    ) -> tuple[list[str], list[_Comment]]:
        """The lines of a block's members (or the file's items), and the ``{`` line's comment.

        ``brace`` is the position of the block's ``{`` (``None`` for the file);
        ``start`` are comments met before it, which move to the top of the body.
        """
        top = brace is None
        brace_line = None if brace is None else self.line_of(brace)
        groups = [_Group(_tree(c), False) for c in children]
        free: list[_Comment] = []
        for comment in comments:
            inside = [
                g for g in groups if g.node.meta.start_pos <= comment.pos < g.node.meta.end_pos
            ]
            (inside[0].inner if inside else free).append(comment)

        header: list[_Comment] = []
        tail: list[tuple[bool, _Comment]] = []
        last = brace_line
        position = 0  # index of the first group starting after the comment
        for comment in free:
            while position < len(groups) and groups[position].node.meta.end_pos <= comment.pos:
                group = groups[position]
                group.blank = last is not None and group.node.meta.line - last >= 2
                last = group.node.meta.end_line
                position += 1
            blank = last is not None and comment.line - last >= 2
            previous = groups[position - 1] if position else None
            if previous is not None and previous.node.meta.end_line == comment.line:
                previous.trailing.append(comment)
                continue
            if previous is None and comment.line == brace_line:
                header.append(comment)
                continue
            if position < len(groups):
                groups[position].leading.append((blank, comment))
            else:
                tail.append((blank, comment))
            last = comment.line
        for group in groups[position:]:
            group.blank = last is not None and group.node.meta.line - last >= 2
            last = group.node.meta.end_line

        if order is not None:
            groups.sort(key=lambda g: order.index(g.node.data))

        rendered: list[list[str]] = []
        carry = list(start)
        for group in groups:
            group.leading[:0] = [(False, c) for c in carry]
            lines, carry = self.statement(group.node, group.inner, group.trailing, depth)
            rendered.append(lines)
        tail[:0] = [(False, c) for c in carry]

        indent = _INDENT * depth
        out: list[str] = []
        for i, (group, lines) in enumerate(zip(groups, rendered, strict=True)):
            forced = i > 0 and (
                _spans_lines(group.node, lines)
                or _spans_lines(groups[i - 1].node, rendered[i - 1])
                or (top and not group.node.data == groups[i - 1].node.data == "include")
            )
            items: list[tuple[bool, _Comment | None]] = [*group.leading, (group.blank, None)]
            for j, (blank, note) in enumerate(items):
                if j == 0:
                    blank = i > 0 and (blank or forced)
                if blank:
                    out.append("")
                if note is None:
                    out.extend(lines)
                else:
                    out.append(indent + note.text)
        for j, (blank, note) in enumerate(tail):
            if blank and (j > 0 or groups):
                out.append("")
            out.append(indent + note.text)
        return out, header

    def statement(
        self,
        node: Tree[Token],
        inner: Sequence[_Comment],
        trailing: Sequence[_Comment],
        depth: int,
    ) -> tuple[list[str], list[_Comment]]:
        """A member's lines, and the comments that must move to before the next one."""
        if _is_block(node):
            return self.block(node, inner, trailing, depth)
        extra = sorted([*inner, *trailing], key=lambda c: c.pos)
        lines = _statement_lines(node, depth)
        # The comments written inside or after the statement trail its lines, one each.
        return [_trailing(line, extra[i:]) for i, line in enumerate(lines)], extra[len(lines) :]

    def block(
        self,
        node: Tree[Token],
        inner: Sequence[_Comment],
        trailing: Sequence[_Comment],
        depth: int,
    ) -> tuple[list[str], list[_Comment]]:
        prefix = ""
        if node.data == "override":
            prefix, node = "override ", _tree(node.children[0])
        kids = node.children
        name = kids[0] if kids else None  # an empty `ingest { }` has no children
        assert isinstance(name, Token) or node.data == "ingest"
        header_end = getattr(name, "end_pos", 0) or 0
        footer = ""
        close = node.meta.end_pos - 1
        order = _CLAUSE_ORDER.get(node.data)
        if node.data == "table":
            first, second, rows, *doc = kids[1:]
            header = f"table {name}({_text(first)}, {_text(second)})"
            members = _tree(rows).children
            brace, close = _tree(rows).meta.start_pos, _tree(rows).meta.end_pos - 1
            footer = "".join(" " + _text(d) for d in doc)
        elif node.data == "ingest":
            header, members = "ingest", kids
            brace = self.brace_after(node.meta.start_pos + len("ingest"))
        else:
            header = f"{node.data} {name}"
            members = kids[1:]
            title = members[0] if members else None
            if isinstance(title, Tree) and title.data in ("string", "raw_string"):
                header += " " + _text(title)
                header_end = title.meta.end_pos
                members = members[1:]
            brace = self.brace_after(header_end)

        before = [c for c in inner if c.pos < brace]
        closing = [c for c in inner if c.pos > close]
        body = [c for c in inner if brace < c.pos < close]
        # The first comment that trails a header line trails the `{` line (as one after the
        # `{` does); the others open the body, own-line.
        ends = [c for c in before if not self.own_line(c)][:1]
        start = [c for c in before if c not in ends]
        lines, after_brace = self.body(
            members, body, depth + 1, brace=brace, start=start, order=order
        )
        opening = [*ends, *after_brace]
        lines[:0] = [_INDENT * (depth + 1) + c.text for c in opening[1:]]
        extra = sorted([*closing, *trailing], key=lambda c: c.pos)
        indent = _INDENT * depth
        if not lines and not opening:
            return [_trailing(f"{indent}{prefix}{header} {{}}{footer}", extra)], extra[1:]
        opening_line = _trailing(f"{indent}{prefix}{header} {{", opening)
        return [opening_line, *lines, _trailing(f"{indent}}}{footer}", extra)], extra[1:]
