"""Stage 2: the parse tree as frozen dataclasses, each with its source span.

One class per construct, named after its grammar rule. A clause that was not
written is ``None`` (so ``override`` can tell "not given" from "given empty").
Building the model reports clauses written twice in one block; every other
meaning is checked later (``resolve``, ``checks``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal as TypingLiteral

from lark import Token, Tree

from .diagnostics import Diagnostic, Note, Span

__all__ = [
    "Allowance",
    "Block",
    "Column",
    "DatasetDef",
    "Derive",
    "FormatDef",
    "Include",
    "IngestDef",
    "IngestRule",
    "IngestStep",
    "KeyDef",
    "Literal",
    "Lookup",
    "Member",
    "Name",
    "NormalizeDef",
    "PolicyFile",
    "SkyMapDef",
    "SkyMapUse",
    "SkyParameter",
    "SkyTract",
    "TableDef",
    "TypeRef",
    "Valid",
    "ValueMap",
    "build",
]

LiteralValue = str | int | float | bool


@dataclass(frozen=True)
class Name:
    """An identifier as written, with where it was written."""

    value: str
    span: Span


@dataclass(frozen=True)
class Literal:
    """A string, number or boolean as written. ``kind`` is str, int, float or bool."""

    value: LiteralValue
    kind: TypingLiteral["str", "int", "float", "bool"]
    span: Span


@dataclass(frozen=True)
class Allowance:
    """``allow CODE "reason"``: a warning expected on this definition, and why."""

    code: Name
    reason: Literal
    span: Span


@dataclass(frozen=True)
class TypeRef:
    """A key type: ``int``, ``datetime tai``."""

    name: Name
    scale: Name | None
    span: Span


@dataclass(frozen=True)
class Derive:
    """``= function(source)``: how a derived key is computed."""

    function: Name
    source: Name
    span: Span


@dataclass(frozen=True)
class KeyDef:
    """``key NAME: TYPE clauses...``."""

    name: Name
    type: TypeRef
    span: Span
    range: tuple[Literal, Literal] | None = None
    choices: tuple[Literal, ...] | None = None
    pattern: Literal | None = None
    aliases: tuple[Name, ...] = ()
    derive: Derive | None = None
    allow: tuple[Literal, ...] = ()
    doc: str | None = None
    override: bool = False
    allowances: tuple[Allowance, ...] = ()


@dataclass(frozen=True)
class ValueMap:
    """``source -> target`` in a normalize block or an inline table."""

    source: Literal
    target: Literal
    span: Span


@dataclass(frozen=True)
class NormalizeDef:
    """``normalize KEY { "g" -> "HSC-G" ... }``."""

    key: Name
    mappings: tuple[ValueMap, ...]
    span: Span

    @property
    def name(self) -> Name:
        return self.key


@dataclass(frozen=True)
class Column:
    """One column of a lookup table."""

    name: Name
    type: TypeRef


@dataclass(frozen=True)
class TableDef:
    """``table NAME(c1: T, c2: T) from "file.csv"`` or ``{ v -> v ... }``."""

    name: Name
    key_column: Column
    value_column: Column
    span: Span
    file: Literal | None = None
    rows: tuple[ValueMap, ...] = ()
    doc: str | None = None


@dataclass(frozen=True)
class FormatDef:
    """``format NAME { formatter F  extensions ...  compressed ...  python "T"  hdus  unsafe }``."""

    name: Name
    span: Span
    formatter: Name | None = None
    extensions: tuple[Literal, ...] | None = None
    compressed: tuple[Literal, ...] | None = None
    python_type: Literal | None = None
    hdus: bool | None = None
    unsafe: bool | None = None
    doc: str | None = None
    override: bool = False
    allowances: tuple[Allowance, ...] = ()


@dataclass(frozen=True)
class Lookup:
    """``lookup K, ... from D``."""

    keys: tuple[Name, ...]
    source: Name
    span: Span


@dataclass(frozen=True)
class Valid:
    """``valid by K [from D]``."""

    key: Name
    observation: Name | None
    span: Span


@dataclass(frozen=True)
class IngestStep:
    """``| function`` or ``| function(argument)``: one conversion of an ingest rule."""

    function: Name
    argument: Literal | Name | None
    span: Span


@dataclass(frozen=True)
class IngestRule:
    """``KEY <- SOURCE | STEP ...``: where ingest reads one key, and how it converts it.

    ``source`` is a translated property, ``hdu``, ``filename``, ``header`` (whose
    card is ``argument``), ``format`` (whose cards and specs are ``argument``) or
    ``const`` (whose value is ``argument``).
    """

    key: Name
    source: Name
    argument: Literal | None
    steps: tuple[IngestStep, ...]
    span: Span


@dataclass(frozen=True)
class IngestDef:
    """``ingest { translated "HSC"  visit <- exposure_id ... }``."""

    rules: tuple[IngestRule, ...]
    span: Span
    translated: tuple[Literal, ...] = ()
    doc: str | None = None


@dataclass(frozen=True)
class SkyParameter:
    """``NAME value[, value...] [unit]`` in a skymap: ``rings 120``, ``tract_overlap 1 arcmin``."""

    name: Name
    values: tuple[Literal, ...]
    span: Span
    unit: Name | None = None


@dataclass(frozen=True)
class SkyTract:
    """``tract RA, DEC radius R``: one tract of a discrete skymap (degrees)."""

    ra: Literal
    dec: Literal
    radius: Literal
    span: Span


@dataclass(frozen=True)
class SkyMapDef:
    """``skymap NAME { ... }``: a rings skymap (``rings N``) or a discrete one (``tract`` lines)."""

    name: Name
    span: Span
    parameters: tuple[SkyParameter, ...] = ()
    tracts: tuple[SkyTract, ...] = ()
    doc: str | None = None
    override: bool = False


@dataclass(frozen=True)
class SkyMapUse:
    """``skymap NAME [patch FORM]`` in a dataset type (or ``use skymap ...`` in a block):
    the skymap its ``tract``/``patch`` keys belong to, and how a patch is written."""

    skymap: Name
    patch: Name | None
    span: Span


@dataclass(frozen=True)
class DatasetDef:
    """``dataset NAME { ... }`` or ``calibration NAME { ... }``."""

    kind: TypingLiteral["dataset", "calibration"]
    name: Name
    span: Span
    doc: str | None = None
    template: Literal | None = None
    format: Name | None = None
    keys: tuple[Name, ...] | None = None
    lookup: Lookup | None = None
    hdu: Literal | Name | None = None
    shares: tuple[Name, ...] | None = None
    allow_unsafe: bool | None = None
    match: tuple[Name, ...] | None = None
    valid: Valid | None = None
    resolve: Name | None = None
    ingest: IngestDef | None = None
    skymap: SkyMapUse | None = None
    override: bool = False
    allowances: tuple[Allowance, ...] = ()


Member = KeyDef | NormalizeDef | TableDef | FormatDef | DatasetDef | SkyMapDef


@dataclass(frozen=True)
class Include:
    """``include "file.butler"``."""

    path: Literal
    span: Span


@dataclass(frozen=True)
class Block:
    """An ``instrument`` or a ``shared`` block."""

    kind: TypingLiteral["instrument", "shared"]
    name: Name
    span: Span
    title: str = ""
    doc: str | None = None
    uses: tuple[Name, ...] = ()
    members: tuple[Member, ...] = ()
    skymap: SkyMapUse | None = None
    """``use skymap NAME``: the skymap of every dataset type here with a ``tract`` key."""


@dataclass(frozen=True)
class PolicyFile:
    """One parsed policy file."""

    file: str
    includes: tuple[Include, ...] = ()
    blocks: tuple[Block, ...] = field(default=())


# ---- building the model from the tree ---------------------------------------------


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


class _Builder:
    """Walks one file's parse tree; collects diagnostics instead of raising."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    # -- spans and terminals
    def span(self, node: Tree[Token] | Token) -> Span:
        if isinstance(node, Token):
            line = node.line or 1
            column = node.column or 1
            end_line = node.end_line or line
            end_column = node.end_column or column + len(node.value)
            return Span(self.file, line, column, end_line, end_column)
        meta = node.meta
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1, 1, 2)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def name(self, token: Tree[Token] | Token) -> Name:
        assert isinstance(token, Token)
        return Name(str(token), self.span(token))

    def string(self, node: Tree[Token] | Token) -> Literal:
        assert isinstance(node, Tree)
        token = node.children[0]
        assert isinstance(token, Token)
        span = self.span(token)
        if node.data == "raw_string":
            return Literal(token.value[2:-1], "str", span)
        return Literal(self.unescape(token.value[1:-1], span), "str", span)

    def unescape(self, body: str, span: Span) -> str:
        out: list[str] = []
        chars = iter(body)
        for char in chars:
            if char != "\\":
                out.append(char)
                continue
            escaped = next(chars, "")
            if escaped in _ESCAPES:
                out.append(_ESCAPES[escaped])
            else:
                self.diagnostics.append(
                    Diagnostic(
                        "BC001",
                        "error",
                        f"unknown escape '\\{escaped}' in string",
                        span,
                        'strings know \\\\, \\", \\n and \\t; write regular expressions as r"..."',
                    )
                )
                out.append(escaped)
        return "".join(out)

    def literal(self, node: Tree[Token] | Token) -> Literal:
        assert isinstance(node, Tree)
        if node.data in ("string", "raw_string"):
            return self.string(node)
        span = self.span(node)
        if node.data == "true_literal":
            return Literal(True, "bool", span)
        if node.data == "false_literal":
            return Literal(False, "bool", span)
        token = node.children[0]
        assert isinstance(token, Token)
        text = token.value.replace("_", "")
        if node.data == "int_literal":
            return Literal(int(text), "int", self.span(token))
        return Literal(float(text), "float", self.span(token))

    def type_ref(self, node: Tree[Token] | Token) -> TypeRef:
        assert isinstance(node, Tree)
        names = [self.name(c) for c in node.children]
        return TypeRef(names[0], names[1] if len(names) > 1 else None, self.span(node))

    def doc(self, node: Tree[Token]) -> str:
        """A doc's text: its strings joined (``fmt`` splits long docs into several)."""
        return "".join(str(self.string(c).value) for c in node.children)

    def names(self, node: Tree[Token]) -> tuple[Name, ...]:
        return tuple(self.name(c) for c in node.children if isinstance(c, Token))

    def allowance(self, node: Tree[Token]) -> Allowance:
        return Allowance(
            self.name(node.children[0]), self.string(node.children[1]), self.span(node)
        )

    # -- clause bookkeeping
    def once(self, seen: dict[str, Span], clause: str, node: Tree[Token], owner: str) -> bool:
        """Record a clause; report it and return False if the block already has one."""
        span = self.span(node)
        if clause in seen:
            self.diagnostics.append(
                Diagnostic(
                    "BC009",
                    "error",
                    f"'{clause}' is given twice in {owner}",
                    span,
                    "keep one of them",
                    (Note("first given here", seen[clause]),),
                )
            )
            return False
        seen[clause] = span
        return True

    # -- constructs
    def key(self, node: Tree[Token], override: bool = False) -> KeyDef:
        name = self.name(node.children[0])
        type_ref = self.type_ref(node.children[1])
        fields: dict[str, object] = {}
        seen: dict[str, Span] = {}
        owner = f"key '{name.value}'"
        aliases: list[Name] = []
        allow: list[Literal] = []
        allowances: list[Allowance] = []
        for clause in node.children[2:]:
            assert isinstance(clause, Tree)
            kind = clause.data
            if kind == "allowance":
                allowances.append(self.allowance(clause))
            elif kind == "alias":
                aliases.extend(self.names(clause))
            elif kind == "allow":
                allow.append(self.string(clause.children[0]))
            elif not self.once(seen, str(kind), clause, owner):
                continue
            elif kind == "range":
                fields["range"] = (
                    self.literal(clause.children[0]),
                    self.literal(clause.children[1]),
                )
            elif kind == "choices":
                fields["choices"] = tuple(self.literal(c) for c in clause.children)
            elif kind == "pattern":
                fields["pattern"] = self.string(clause.children[0])
            elif kind == "derive":
                fields["derive"] = Derive(
                    self.name(clause.children[0]), self.name(clause.children[1]), self.span(clause)
                )
            elif kind == "doc":
                fields["doc"] = self.doc(clause)
        return KeyDef(
            name,
            type_ref,
            self.span(node),
            aliases=tuple(aliases),
            allow=tuple(allow),
            override=override,
            allowances=tuple(allowances),
            **fields,  # type: ignore[arg-type]
        )

    def value_map(self, node: Tree[Token]) -> ValueMap:
        return ValueMap(
            self.literal(node.children[0]), self.literal(node.children[1]), self.span(node)
        )

    def normalize(self, node: Tree[Token]) -> NormalizeDef:
        mappings = tuple(self.value_map(c) for c in node.children[1:] if isinstance(c, Tree))
        return NormalizeDef(self.name(node.children[0]), mappings, self.span(node))

    def table(self, node: Tree[Token]) -> TableDef:
        children = node.children
        columns = []
        for column in children[1:3]:
            assert isinstance(column, Tree)
            columns.append(Column(self.name(column.children[0]), self.type_ref(column.children[1])))
        source = children[3]
        assert isinstance(source, Tree)
        doc = None
        if len(children) > 4:
            doc_node = children[4]
            assert isinstance(doc_node, Tree)
            doc = self.doc(doc_node)
        common = {"span": self.span(node), "doc": doc}
        if source.data == "table_file":
            return TableDef(
                self.name(children[0]),
                columns[0],
                columns[1],
                file=self.string(source.children[0]),
                **common,  # type: ignore[arg-type]
            )
        rows = tuple(self.value_map(c) for c in source.children if isinstance(c, Tree))
        return TableDef(
            self.name(children[0]),
            columns[0],
            columns[1],
            rows=rows,
            **common,  # type: ignore[arg-type]
        )

    def format(self, node: Tree[Token], override: bool = False) -> FormatDef:
        name = self.name(node.children[0])
        fields: dict[str, object] = {}
        seen: dict[str, Span] = {}
        owner = f"format '{name.value}'"
        allowances: list[Allowance] = []
        for clause in node.children[1:]:
            assert isinstance(clause, Tree)
            kind = str(clause.data)
            if kind == "allowance":
                allowances.append(self.allowance(clause))
                continue
            if not self.once(seen, kind, clause, owner):
                continue
            if kind == "formatter":
                fields["formatter"] = self.name(clause.children[0])
            elif kind in ("extensions", "compressed"):
                fields[kind] = tuple(self.string(c) for c in clause.children)
            elif kind == "python_type":
                fields["python_type"] = self.string(clause.children[0])
            elif kind in ("hdus", "unsafe"):
                fields[kind] = True
            elif kind == "doc":
                fields["doc"] = self.doc(clause)
        return FormatDef(
            name,
            self.span(node),
            override=override,
            allowances=tuple(allowances),
            **fields,  # type: ignore[arg-type]
        )

    def dataset(self, node: Tree[Token], override: bool = False) -> DatasetDef:
        kind: TypingLiteral["dataset", "calibration"] = (
            "calibration" if node.data == "calibration" else "dataset"
        )
        name = self.name(node.children[0])
        fields: dict[str, object] = {}
        seen: dict[str, Span] = {}
        owner = f"{kind} '{name.value}'"
        handlers: dict[str, Callable[[Tree[Token]], tuple[str, object]]] = {
            "doc": lambda c: ("doc", self.doc(c)),
            "template": lambda c: ("template", self.string(c.children[0])),
            "uses_format": lambda c: ("format", self.name(c.children[0])),
            "keys": lambda c: ("keys", self.names(c)),
            "lookup": lambda c: (
                "lookup",
                Lookup(self.names(c)[:-1], self.names(c)[-1], self.span(c)),
            ),
            "hdu": lambda c: ("hdu", self.hdu(c)),
            "shares": lambda c: ("shares", self.names(c)),
            "allow_unsafe": lambda c: ("allow_unsafe", True),
            "match": lambda c: ("match", self.names(c)),
            "valid": lambda c: (
                "valid",
                Valid(
                    self.names(c)[0],
                    self.names(c)[1] if len(self.names(c)) > 1 else None,
                    self.span(c),
                ),
            ),
            "resolve": lambda c: ("resolve", self.name(c.children[0])),
            "ingest": lambda c: ("ingest", self.ingest(c)),
            "uses_skymap": lambda c: ("skymap", self.skymap_use(c)),
        }
        allowances: list[Allowance] = []
        for clause in node.children[1:]:
            assert isinstance(clause, Tree)
            clause_name = str(clause.data)
            if clause_name == "allowance":
                allowances.append(self.allowance(clause))
                continue
            word = {
                "uses_format": "format",
                "allow_unsafe": "allow unsafe",
                "uses_skymap": "skymap",
            }.get(clause_name, clause_name)
            if not self.once(seen, word, clause, owner):
                continue
            key, value = handlers[clause_name](clause)
            fields[key] = value
        return DatasetDef(
            kind,
            name,
            self.span(node),
            override=override,
            allowances=tuple(allowances),
            **fields,  # type: ignore[arg-type]
        )

    def ingest(self, node: Tree[Token]) -> IngestDef:
        rules: list[IngestRule] = []
        translated: list[Literal] = []
        doc = None
        for clause in node.children:
            assert isinstance(clause, Tree)
            if clause.data == "doc":
                doc = self.doc(clause)
            elif clause.data == "translated":
                translated.extend(self.string(c) for c in clause.children)
            else:
                rules.append(self.ingest_rule(clause))
        return IngestDef(tuple(rules), self.span(node), tuple(translated), doc)

    def ingest_rule(self, node: Tree[Token]) -> IngestRule:
        key, source, *steps = node.children
        assert isinstance(source, Tree)
        argument = self.literal(source.children[1]) if len(source.children) > 1 else None
        converted = []
        for step in steps:
            assert isinstance(step, Tree)
            value: Literal | Name | None = None
            if len(step.children) > 1:
                inner = step.children[1]
                assert isinstance(inner, Tree)
                token = inner.children[0]
                value = self.name(token) if isinstance(token, Token) else self.literal(token)
            converted.append(IngestStep(self.name(step.children[0]), value, self.span(step)))
        return IngestRule(
            self.name(key),
            self.name(source.children[0]),
            argument,
            tuple(converted),
            self.span(node),
        )

    def skymap_use(self, node: Tree[Token]) -> SkyMapUse:
        patch = None
        if len(node.children) > 1:
            form = node.children[1]
            assert isinstance(form, Tree)
            patch = self.name(form.children[0])
        return SkyMapUse(self.name(node.children[0]), patch, self.span(node))

    def skymap(self, node: Tree[Token], override: bool = False) -> SkyMapDef:
        name = self.name(node.children[0])
        parameters: list[SkyParameter] = []
        tracts: list[SkyTract] = []
        doc = None
        for clause in node.children[1:]:
            assert isinstance(clause, Tree)
            if clause.data == "doc":
                doc = self.doc(clause)
            elif clause.data == "sky_tract":
                ra, dec, radius = (self.literal(c) for c in clause.children)
                tracts.append(SkyTract(ra, dec, radius, self.span(clause)))
            else:
                values = [c for c in clause.children[1:] if isinstance(c, Tree)]
                unit = None
                if values and values[-1].data == "unit":
                    unit = self.name(values.pop().children[0])
                parameters.append(
                    SkyParameter(
                        self.name(clause.children[0]),
                        tuple(self.literal(v) for v in values),
                        self.span(clause),
                        unit,
                    )
                )
        return SkyMapDef(name, self.span(node), tuple(parameters), tuple(tracts), doc, override)

    def hdu(self, node: Tree[Token]) -> Literal | Name:
        token = node.children[0]
        assert isinstance(token, Token)
        if token.type == "INT":
            return Literal(int(token.value.replace("_", "")), "int", self.span(token))
        return self.name(token)

    def member(self, node: Tree[Token], override: bool = False) -> Member | None:
        kind = node.data
        if kind == "key":
            return self.key(node, override)
        if kind == "format":
            return self.format(node, override)
        if kind in ("dataset", "calibration"):
            return self.dataset(node, override)
        if kind == "normalize":
            return self.normalize(node)
        if kind == "table":
            return self.table(node)
        if kind == "skymap":
            return self.skymap(node, override)
        return None

    def block(self, node: Tree[Token]) -> Block:
        children = list(node.children)
        name = self.name(children.pop(0))
        title = ""
        if (
            children
            and isinstance(children[0], Tree)
            and children[0].data in ("string", "raw_string")
        ):
            title = str(self.string(children.pop(0)).value)
        doc: str | None = None
        doc_span: Span | None = None
        uses: list[Name] = []
        members: list[Member] = []
        skymap: SkyMapUse | None = None
        for child in children:
            assert isinstance(child, Tree)
            if child.data == "default_skymap":
                if skymap is not None:
                    self.once(
                        {"use skymap": skymap.span},
                        "use skymap",
                        child,
                        f"{node.data} '{name.value}'",
                    )
                    continue
                skymap = self.skymap_use(child)
            elif child.data == "doc":
                if doc_span is not None:
                    self.once({"doc": doc_span}, "doc", child, f"{node.data} '{name.value}'")
                    continue
                doc, doc_span = self.doc(child), self.span(child)
            elif child.data == "use":
                uses.extend(self.names(child))
            elif child.data == "override":
                inner = child.children[0]
                assert isinstance(inner, Tree)
                member = self.member(inner, override=True)
                if member is not None:
                    members.append(member)
            else:
                member = self.member(child)
                if member is not None:
                    members.append(member)
        kind: TypingLiteral["instrument", "shared"] = (
            "instrument" if node.data == "instrument" else "shared"
        )
        return Block(kind, name, self.span(node), title, doc, tuple(uses), tuple(members), skymap)

    def policy(self, tree: Tree[Token]) -> PolicyFile:
        includes: list[Include] = []
        blocks: list[Block] = []
        for child in tree.children:
            assert isinstance(child, Tree)
            if child.data == "include":
                includes.append(Include(self.string(child.children[0]), self.span(child)))
            else:
                blocks.append(self.block(child))
        return PolicyFile(self.file, tuple(includes), tuple(blocks))


def build(tree: Tree[Token], file: str) -> tuple[PolicyFile, list[Diagnostic]]:
    """The model of one file's parse tree, and any clause-level diagnostics."""
    builder = _Builder(file)
    policy = builder.policy(tree)
    return policy, builder.diagnostics
