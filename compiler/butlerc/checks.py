"""Stage 4: everything the compiler proves about a resolved instrument.

Each check reads the resolved definitions and appends diagnostics; none of them
changes anything. :func:`check` runs them all and returns what it found, plus
the analysed templates that the IR stage reuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .codes import CODES
from .diagnostics import Diagnostic, Note, Span, did_you_mean
from .ingest_rules import IngestChecker
from .levels import Allowed
from .model import Allowance, DatasetDef, FormatDef, KeyDef, Literal, Name
from .resolve import ResolvedInstrument
from .skymaps import check_skymap, check_skymap_use
from .templates import (
    Field,
    KeyShape,
    Template,
    TemplateSyntaxError,
    ambiguity,
    find_collisions,
    parse_template,
    spec_problem,
    split_ambiguity,
)
from .values import KEY_TYPES, SCALES, Value, ValueProblem, coerce_literal, coerce_text

__all__ = ["BUILTIN_FORMATTERS", "Checked", "check", "key_shape"]

BUILTIN_FORMATTERS = ("fits", "hdf5", "yaml", "json", "ecsv", "text", "pickle", "parquet")
DERIVE_FUNCTIONS = ("date", "same")
RESOLVE_RULES = ("latest",)
ORDERED_TYPES = ("int", "float", "date", "datetime")


@dataclass
class Checked:
    """What checking found: diagnostics, and the analysed template of each dataset type."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    templates: dict[str, Template] = field(default_factory=dict)
    left_out: set[str] = field(default_factory=set)
    """Partial dataset types inherited without a template: not part of the instrument."""
    allowed: list[Allowed] = field(default_factory=list)
    """Warnings that an ``allow CODE "reason"`` clause of the policy silenced."""
    allowances: dict[Span, Allowance] = field(default_factory=dict)
    """Every valid ``allow CODE`` clause on a definition of the instrument."""
    used: set[Span] = field(default_factory=set)
    """The allowances (by span) that silenced a warning here."""
    skymaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each skymap definition's IR, by name (only those without errors)."""
    dataset_skymaps: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each dataset type's skymap and patch form (``{"name", "patch"}``), if it has one."""

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def key_shape(key: KeyDef, values: Mapping[str, tuple[Value, ...] | None]) -> KeyShape:
    """What template analysis needs to know about a key (already checked)."""
    minimum = maximum = None
    if key.range is not None and key.type.name.value in ("int", "float"):
        minimum, maximum = key.range[0].value, key.range[1].value
    return KeyShape(
        type=key.type.name.value,
        choices=values.get(key.name.value),
        pattern=str(key.pattern.value) if key.pattern is not None else None,
        minimum=minimum,
        maximum=maximum,
        allow_slash=any(a.value == "/" for a in key.allow),
    )


def _field_span(template: Literal, item: Field) -> Span:
    """The span of one ``{...}`` field inside a template literal (assumes no escapes before it)."""
    span = template.span
    if span.line != span.end_line:
        return span
    column = span.column + 1 + item.offset
    return Span(span.file, span.line, column, span.line, column + item.length)


def _offset_span(template: Literal, offset: int) -> Span:
    span = template.span
    if span.line != span.end_line:
        return span
    column = span.column + 1 + offset
    return Span(span.file, span.line, column, span.line, column + 1)


class _Checker:
    def __init__(self, instrument: ResolvedInstrument) -> None:
        self.instrument = instrument
        self.result = Checked()
        self.key_types: dict[str, str] = {}
        self.choices: dict[str, tuple[Value, ...] | None] = {}

    # ---- reporting
    def error(
        self, code: str, message: str, span: Span | None, hint: str | None = None, *notes: Note
    ) -> None:
        self.result.diagnostics.append(Diagnostic(code, "error", message, span, hint, notes))

    def warning(
        self,
        code: str,
        message: str,
        span: Span | None,
        hint: str | None = None,
        *notes: Note,
        about: Sequence[KeyDef | FormatDef | DatasetDef] = (),
    ) -> None:
        """Report a warning, unless an ``allow`` clause of a definition it is about expects it."""
        diagnostic = Diagnostic(code, "warning", message, span, hint, notes)
        for definition in about:
            for allowance in definition.allowances:
                if allowance.code.value == code:
                    self.result.used.add(allowance.span)
                    reason = str(allowance.reason.value)
                    self.result.allowed.append(Allowed(diagnostic, reason, allowance.span))
                    return
        self.result.diagnostics.append(diagnostic)

    # ---- allowances
    def check_allowances(self) -> None:
        definitions: list[KeyDef | FormatDef | DatasetDef] = [
            *self.instrument.keys.values(),
            *self.instrument.formats.values(),
            *self.instrument.datasets.values(),
        ]
        for definition in definitions:
            for allowance in definition.allowances:
                code = allowance.code.value
                entry = CODES.get(code)
                if entry is None:
                    warnings = [c for c, e in CODES.items() if e.severity != "error"]
                    hint = did_you_mean(code, warnings)
                    self.error(
                        "BC021",
                        f"'allow {code}': no such diagnostic code",
                        allowance.code.span,
                        hint or "'butlerc explain CODE' describes a code",
                    )
                elif entry.severity == "error":
                    self.error(
                        "BC021",
                        f"'allow {code}': {code} ({entry.title}) is an error; only warnings "
                        "can be allowed",
                        allowance.code.span,
                        "fix what the error says instead",
                    )
                else:
                    self.result.allowances[allowance.span] = allowance

    def unknown_key(self, name: Name, where: str) -> bool:
        """Report ``name`` if it is not a declared key; True if it is declared."""
        if name.value in self.instrument.keys:
            return True
        aliased = [
            k for k, d in self.instrument.keys.items() if name.value in {a.value for a in d.aliases}
        ]
        hint = (
            f"'{name.value}' is an alias of '{aliased[0]}'; policies use the key's own name"
            if aliased
            else did_you_mean(name.value, self.instrument.keys)
            or "declare it with 'key NAME: TYPE'"
        )
        self.error("BC002", f"unknown key '{name.value}' in {where}", name.span, hint)
        return False

    # ---- keys
    def check_keys(self) -> None:
        names: dict[str, Span] = {}
        for key in self.instrument.keys.values():
            names[key.name.value] = key.name.span
        for key in self.instrument.keys.values():
            key_type = self.check_type(key)
            self.key_types[key.name.value] = key_type
            for alias in key.aliases:
                if alias.value in names:
                    self.error(
                        "BC009",
                        f"alias '{alias.value}' of key '{key.name.value}' is already a name",
                        alias.span,
                        "an alias must not be another key's name or alias",
                        Note("also defined here", names[alias.value]),
                    )
                else:
                    names[alias.value] = alias.span
        for key in self.instrument.keys.values():
            self.check_constraints(key, self.key_types[key.name.value])
        for key in self.instrument.keys.values():
            if key.derive is not None:
                self.check_derive(key)
        self.check_derive_cycles()

    def check_type(self, key: KeyDef) -> str:
        type_name = key.type.name.value
        if type_name not in KEY_TYPES:
            self.error(
                "BC013",
                f"unknown type '{type_name}' for key '{key.name.value}'",
                key.type.name.span,
                did_you_mean(type_name, KEY_TYPES) or f"types are {', '.join(KEY_TYPES)}",
            )
            return "str"
        scale = key.type.scale
        if type_name == "datetime" and scale is None:
            self.error(
                "BC013",
                f"datetime key '{key.name.value}' needs a time scale",
                key.type.span,
                "write 'datetime tai' or 'datetime utc'",
            )
        elif type_name == "datetime" and scale is not None and scale.value not in SCALES:
            self.error(
                "BC013",
                f"unknown time scale '{scale.value}'",
                scale.span,
                did_you_mean(scale.value, SCALES) or "time scales are tai and utc",
            )
        elif type_name != "datetime" and scale is not None:
            self.error(
                "BC013",
                f"type {type_name} takes no time scale",
                scale.span,
                f"remove '{scale.value}'",
            )
        return type_name

    def coerce(self, literal: Literal, key_type: str, what: str) -> Value | None:
        try:
            return coerce_literal(literal, key_type)
        except ValueProblem as problem:
            self.error("BC014", f"{what}: {problem}", literal.span)
            return None

    def check_constraints(self, key: KeyDef, key_type: str) -> None:
        name = key.name.value
        if key.range is not None:
            low_literal, high_literal = key.range
            if key_type not in ORDERED_TYPES:
                self.error(
                    "BC014",
                    f"key '{name}' is {key_type}; a range needs int, float, date or datetime",
                    low_literal.span,
                    "use 'one of' or 'matches' for str keys",
                )
            else:
                low = self.coerce(low_literal, key_type, f"range of key '{name}'")
                high = self.coerce(high_literal, key_type, f"range of key '{name}'")
                if low is not None and high is not None and low > high:  # type: ignore[operator]
                    self.error(
                        "BC014",
                        f"range of key '{name}' is empty: {low} > {high}",
                        Span(
                            low_literal.span.file,
                            low_literal.span.line,
                            low_literal.span.column,
                            high_literal.span.end_line,
                            high_literal.span.end_column,
                        ),
                        "write the range as LOW..HIGH",
                    )
        choices: list[Value] = []
        if key.choices is not None:
            for literal in key.choices:
                value = self.coerce(literal, key_type, f"'one of' of key '{name}'")
                if value is None:
                    continue
                if value in choices:
                    self.error("BC009", f"value {literal.value!r} is listed twice", literal.span)
                choices.append(value)
            self.choices[name] = tuple(choices)
        else:
            self.choices[name] = None
        if key.pattern is not None:
            if key_type != "str":
                self.error(
                    "BC014",
                    f"key '{name}' is {key_type}; 'matches' applies to str keys",
                    key.pattern.span,
                )
            else:
                try:
                    re.compile(str(key.pattern.value))
                except re.error as error:
                    self.error(
                        "BC014",
                        f"pattern of key '{name}' is not a valid regular expression: {error}",
                        key.pattern.span,
                        'write patterns as raw strings, r"..."',
                    )
        for allowed in key.allow:
            if allowed.value != "/":
                self.error(
                    "BC014",
                    f"'allow {allowed.value!r}': only \"/\" can be allowed",
                    allowed.span,
                    'write allow "/" to let values hold a path separator',
                )
            elif key_type != "str":
                self.error(
                    "BC014", f"'allow' applies to str keys; '{name}' is {key_type}", allowed.span
                )

    def check_derive(self, key: KeyDef) -> None:
        derive = key.derive
        assert derive is not None
        function = derive.function.value
        source_ok = self.unknown_key(derive.source, f"the derivation of key '{key.name.value}'")
        source_type = self.key_types.get(derive.source.value)
        target_type = self.key_types[key.name.value]
        if function == "date":
            if source_ok and source_type not in ("date", "datetime"):
                self.error(
                    "BC014",
                    f"date() needs a date or datetime key; "
                    f"'{derive.source.value}' is {source_type}",
                    derive.source.span,
                )
            if target_type != "date":
                self.error(
                    "BC014",
                    f"key '{key.name.value}' = date(...) must be of type date, not {target_type}",
                    key.type.span,
                )
            return
        if function == "same":
            if source_ok and source_type != target_type:
                self.error(
                    "BC014",
                    f"key '{key.name.value}' = same({derive.source.value}) must have the type of "
                    f"'{derive.source.value}' ({source_type}), not {target_type}",
                    key.type.span,
                )
            return
        table = self.instrument.tables.get(function)
        if table is None:
            self.error(
                "BC011",
                f"no table or function named '{function}'",
                derive.function.span,
                did_you_mean(function, [*DERIVE_FUNCTIONS, *self.instrument.tables])
                or "functions are date() and same(); tables are declared with "
                "'table NAME(a: T, b: T)'",
            )
            return
        definition = table.definition
        key_column_type = definition.key_column.type.name.value
        value_column_type = definition.value_column.type.name.value
        if source_ok and source_type != key_column_type:
            self.error(
                "BC014",
                f"table '{function}' maps {key_column_type} values, but key "
                f"'{derive.source.value}' is {source_type}",
                derive.source.span,
            )
        if value_column_type != target_type:
            self.error(
                "BC014",
                f"table '{function}' gives {value_column_type} values, but key "
                f"'{key.name.value}' is {target_type}",
                key.type.span,
            )

    def check_derive_cycles(self) -> None:
        sources = {
            name: key.derive.source.value
            for name, key in self.instrument.keys.items()
            if key.derive is not None
        }
        reported: set[str] = set()
        for start in sources:
            chain = [start]
            current = start
            while current in sources:
                current = sources[current]
                if current == start:
                    if not reported.intersection(chain):
                        key = self.instrument.keys[start]
                        assert key.derive is not None
                        self.error(
                            "BC007",
                            "derived keys form a cycle: " + " -> ".join([*chain, start]),
                            key.derive.span,
                            "at least one key of the chain must be given, not derived",
                        )
                    reported.update(chain)
                    break
                if current in chain:
                    break
                chain.append(current)

    # ---- normalization and tables
    def check_normalizations(self) -> None:
        for key_name, blocks in self.instrument.normalizations.items():
            for block in blocks:
                if not self.unknown_key(block.key, "a normalize block"):
                    continue
                key_type = self.key_types[key_name]
                seen: dict[object, Span] = {}
                for mapping in block.mappings:
                    self.coerce(mapping.target, key_type, f"normalize {key_name}")
                    source = (mapping.source.kind, mapping.source.value)
                    if source in seen:
                        self.error(
                            "BC009",
                            f"normalize {key_name}: {mapping.source.value!r} is mapped twice",
                            mapping.source.span,
                            None,
                            Note("first mapped here", seen[source]),
                        )
                    seen[source] = mapping.source.span

    def table_values(self, name: str) -> list[tuple[Value, Value]]:
        """A table's rows as values, reporting rows that do not fit the column types."""
        table = self.instrument.tables[name]
        definition = table.definition
        types = (definition.key_column.type.name.value, definition.value_column.type.name.value)
        rows: list[tuple[Value, Value]] = []
        seen: dict[Value, Span] = {}
        for row in table.rows:
            values: list[Value] = []
            for literal, column_type in zip((row.source, row.target), types, strict=True):
                try:
                    if definition.file is not None:
                        values.append(coerce_text(str(literal.value), column_type))
                    else:
                        values.append(coerce_literal(literal, column_type))
                except ValueProblem as problem:
                    self.error("BC018", f"table '{name}': {problem}", literal.span)
            if len(values) != 2:
                continue
            if values[0] in seen:
                self.error(
                    "BC018",
                    f"table '{name}': key {values[0]!r} appears twice",
                    row.span,
                    None,
                    Note("first row with it", seen[values[0]]),
                )
                continue
            seen[values[0]] = row.span
            rows.append((values[0], values[1]))
        return rows

    def check_tables(self) -> None:
        for name, table in self.instrument.tables.items():
            for column in (table.definition.key_column, table.definition.value_column):
                if column.type.name.value not in KEY_TYPES:
                    self.error(
                        "BC013",
                        f"unknown type '{column.type.name.value}' for column '{column.name.value}'",
                        column.type.name.span,
                        did_you_mean(column.type.name.value, KEY_TYPES),
                    )
                    return
            self.table_values(name)

    # ---- formats
    def check_formats(self) -> None:
        for fmt in self.instrument.formats.values():
            if fmt.formatter is None:
                self.error(
                    "BC010",
                    f"format '{fmt.name.value}' has no 'formatter' clause",
                    fmt.name.span,
                    f"add 'formatter NAME' ({', '.join(BUILTIN_FORMATTERS)})",
                )
            elif fmt.formatter.value not in BUILTIN_FORMATTERS:
                self.warning(
                    "BC102",
                    f"formatter '{fmt.formatter.value}' is not built in; "
                    "it must come from a plug-in",
                    fmt.formatter.span,
                    did_you_mean(fmt.formatter.value, BUILTIN_FORMATTERS),
                    about=(fmt,),
                )
            for literal in (*(fmt.extensions or ()), *(fmt.compressed or ())):
                if not str(literal.value).startswith("."):
                    self.error(
                        "BC014",
                        f"file suffix {literal.value!r} must start with '.'",
                        literal.span,
                    )

    # ---- dataset types
    def check_skymaps(self) -> None:
        for name, definition in self.instrument.skymaps.items():
            ir, diagnostics = check_skymap(definition)
            self.result.diagnostics.extend(diagnostics)
            if ir is not None:
                self.result.skymaps[name] = ir

    def check_skymap_use(self, dataset: DatasetDef) -> None:
        use = self.instrument.skymap_of(dataset)
        if use is None:
            return
        ir, diagnostics = check_skymap_use(
            dataset, use, self.instrument.keys, self.instrument.skymaps
        )
        self.result.diagnostics.extend(diagnostics)
        if ir is not None:
            self.result.dataset_skymaps[dataset.name.value] = ir

    def check_datasets(self) -> None:
        for name, dataset in self.instrument.datasets.items():
            if dataset.template is None and name in self.instrument.inherited:
                self.warning(
                    "BC104",
                    f"{dataset.kind} '{name}' is inherited without a template; "
                    f"instrument '{self.instrument.name}' leaves it out",
                    dataset.name.span,
                    f"write 'override {dataset.kind} {name} {{ template \"...\" keys ... }}' "
                    f"in '{self.instrument.name}' to give it a path",
                    about=(dataset,),
                )
                self.result.left_out.add(name)
                continue
            self.check_dataset(dataset)
            self.check_skymap_use(dataset)

    def require(self, dataset: DatasetDef, clause: str, present: object) -> bool:
        if present is None:
            self.error(
                "BC010",
                f"{dataset.kind} '{dataset.name.value}' has no '{clause}' clause",
                dataset.name.span,
                f"add '{clause} ...'",
            )
            return False
        return True

    def in_keys(self, dataset: DatasetDef, name: Name, keys: set[str], role: str) -> None:
        if name.value in self.instrument.keys and name.value not in keys:
            self.error(
                "BC020",
                f"{role} '{name.value}' is not among the keys of {dataset.kind} "
                f"'{dataset.name.value}'",
                name.span,
                f"add '{name.value}' to its 'keys' clause",
            )

    def dataset_ref(self, name: Name, what: str) -> bool:
        if name.value in self.instrument.datasets and name.value not in self.result.left_out:
            return True
        self.error(
            "BC012",
            f"unknown dataset type '{name.value}' in {what}",
            name.span,
            did_you_mean(name.value, self.instrument.datasets),
        )
        return False

    def check_dataset(self, dataset: DatasetDef) -> None:
        label = f"{dataset.kind} '{dataset.name.value}'"
        self.require(dataset, "template", dataset.template)
        has_format = self.require(dataset, "format", dataset.format)
        self.require(dataset, "keys", dataset.keys)
        if dataset.kind == "calibration":
            self.require(dataset, "match", dataset.match)
            self.require(dataset, "valid by", dataset.valid)
        keys: set[str] = set()
        for name in dataset.keys or ():
            if name.value in keys:
                self.error("BC009", f"key '{name.value}' is listed twice in {label}", name.span)
            if self.unknown_key(name, f"the keys of {label}"):
                keys.add(name.value)
        fmt = None
        if has_format and dataset.format is not None:
            fmt = self.instrument.formats.get(dataset.format.value)
            if fmt is None:
                self.error(
                    "BC003",
                    f"unknown format '{dataset.format.value}' in {label}",
                    dataset.format.span,
                    did_you_mean(dataset.format.value, self.instrument.formats)
                    or f"formats here: {', '.join(self.instrument.formats) or 'none'}",
                )
            elif fmt.unsafe and not dataset.allow_unsafe:
                self.error(
                    "BC016",
                    f"format '{fmt.name.value}' is unsafe, and {label} does not say 'allow unsafe'",
                    dataset.format.span,
                    "add 'allow unsafe' if every writer of the repository is trusted",
                )
        if dataset.template is not None:
            self.check_template(dataset, dataset.template, keys)
        if dataset.lookup is not None:
            for name in dataset.lookup.keys:
                if self.unknown_key(name, f"the lookup of {label}"):
                    self.in_keys(dataset, name, keys, "lookup key")
            self.dataset_ref(dataset.lookup.source, f"the lookup of {label}")
        if isinstance(dataset.hdu, Name) and self.unknown_key(dataset.hdu, f"the hdu of {label}"):
            self.in_keys(dataset, dataset.hdu, keys, "hdu key")
            if self.key_types.get(dataset.hdu.value) not in ("int", "str"):
                self.error("BC014", "an hdu key must be int or str", dataset.hdu.span)
        if dataset.hdu is not None and fmt is not None and not fmt.hdus:
            span = dataset.hdu.span
            self.error(
                "BC014",
                f"{label} selects an HDU, but format '{fmt.name.value}' has none",
                span,
                f"add 'hdus' to format '{fmt.name.value}' if its files have HDUs",
            )
        for name in dataset.shares or ():
            self.dataset_ref(name, f"'shares path with' of {label}")
        for name in dataset.match or ():
            if self.unknown_key(name, f"the match keys of {label}"):
                self.in_keys(dataset, name, keys, "match key")
        if dataset.valid is not None:
            self.check_valid(dataset)
        if dataset.ingest is not None:
            self.check_ingest(dataset, keys)
        if dataset.resolve is not None and dataset.resolve.value not in RESOLVE_RULES:
            self.error(
                "BC011",
                f"unknown resolution rule '{dataset.resolve.value}'",
                dataset.resolve.span,
                did_you_mean(dataset.resolve.value, RESOLVE_RULES)
                or f"rules are {', '.join(RESOLVE_RULES)}",
            )

    def check_ingest(self, dataset: DatasetDef, keys: set[str]) -> None:
        ingest = dataset.ingest
        assert ingest is not None
        label = f"the ingest rules of {dataset.kind} '{dataset.name.value}'"
        for rule in ingest.rules:
            if self.unknown_key(rule.key, label):
                self.in_keys(dataset, rule.key, keys, "ingest rule key")
        scales = {
            name: key.type.scale.value if key.type.scale else None
            for name, key in self.instrument.keys.items()
        }
        tables = {
            name: (
                table.definition.key_column.type.name.value,
                table.definition.value_column.type.name.value,
            )
            for name, table in self.instrument.tables.items()
        }
        table_keys = {
            name: tuple(str(row.source.value) for row in table.rows)
            for name, table in self.instrument.tables.items()
        }
        checker = IngestChecker(
            self.key_types,
            scales,
            tables,
            lambda code, message, span, hint: self.error(code, message, span, hint),
            table_keys,
        )
        checker.check(dataset, ingest, keys, self.obtainable)

    def check_template(self, dataset: DatasetDef, literal: Literal, keys: set[str]) -> None:
        text = str(literal.value)
        try:
            template = parse_template(text)
        except TemplateSyntaxError as error:
            self.error(
                "BC015",
                f"malformed template: {error.message}",
                _offset_span(literal, error.offset),
                "write a literal brace as '{{' or '}}'",
            )
            return
        good = True
        for item in template.fields:
            span = _field_span(literal, item)
            if item.key not in self.instrument.keys:
                good = False
                self.unknown_key(
                    Name(item.key, span), f"the template of {dataset.kind} '{dataset.name.value}'"
                )
                continue
            if dataset.keys is not None and item.key not in keys:
                good = False
                self.in_keys(dataset, Name(item.key, span), keys, "template field")
            problem = spec_problem(item, self.key_types[item.key])
            if problem is not None:
                good = False
                self.error("BC004", problem, span, f"write '{{{item.key}}}' or a spec for its type")
        if not good:
            return
        shapes = self.shapes(template.keys)
        pair = ambiguity(template, shapes)
        if pair is not None:
            first, second = pair
            self.error(
                "BC005",
                f"template cannot be parsed back: '{{{first.key}}}' and '{{{second.key}}}' touch, "
                f"and a value of '{first.key}' can run into one of '{second.key}'",
                _field_span(literal, first),
                f"put a separator between them, e.g. '{{{first.key}}}-{{{second.key}}}'",
            )
            return
        witness = split_ambiguity(template, shapes)
        if witness is not None:
            self.warning(
                "BC105",
                f"template of {dataset.kind} '{dataset.name.value}' can split a path into its "
                f"keys in more than one way: '{witness}' reads two ways",
                literal.span,
                "constrain the keys whose values may hold the separator ('matches', 'one of', "
                "a range), so every path reads back as one data ID",
                about=(dataset,),
            )
        self.result.templates[dataset.name.value] = template

    def shapes(self, names: Iterable[str]) -> dict[str, KeyShape]:
        return {n: key_shape(self.instrument.keys[n], self.choices) for n in names}

    def obtainable(self, key: str, available: set[str]) -> bool:
        """Whether ``key`` is among ``available`` or derived (transitively) from one of them."""
        seen: set[str] = set()
        while key not in available:
            if key in seen:
                return False
            seen.add(key)
            definition = self.instrument.keys.get(key)
            if definition is None or definition.derive is None:
                return False
            key = definition.derive.source.value
        return True

    def check_valid(self, dataset: DatasetDef) -> None:
        valid = dataset.valid
        assert valid is not None
        label = f"calibration '{dataset.name.value}'"
        if not self.unknown_key(valid.key, f"'valid by' of {label}"):
            return
        key_type = self.key_types[valid.key.value]
        if key_type not in ("date", "datetime"):
            self.error(
                "BC008",
                f"{label} is valid by '{valid.key.value}', which is {key_type}; "
                "validity needs a date or datetime key",
                valid.key.span,
            )
            return
        observation = valid.observation.value if valid.observation else "raw"
        observed = self.instrument.datasets.get(observation)
        if observed is None:
            if valid.observation is not None:
                self.dataset_ref(valid.observation, f"'valid by' of {label}")
            else:
                self.error(
                    "BC008",
                    f"{label} is valid by '{valid.key.value}' of dataset type 'raw', which is "
                    "not defined",
                    valid.span,
                    "name the observation dataset type: 'valid by KEY from DATASET'",
                )
            return
        available = {n.value for n in observed.keys or ()}
        if not self.obtainable(valid.key.value, available):
            self.error(
                "BC008",
                f"validity key '{valid.key.value}' of {label} cannot be obtained for an "
                f"observation: dataset type '{observation}' has keys "
                f"{', '.join(sorted(available)) or '(none)'}",
                valid.key.span,
                f"add '{valid.key.value}' to the keys of '{observation}', or validate by a "
                "date/datetime key it has",
            )

    # ---- across dataset types
    def check_collisions(self) -> None:
        templates = self.result.templates
        declared: set[frozenset[str]] = set()
        for name in templates:
            for other in self.instrument.datasets[name].shares or ():
                declared.add(frozenset((name, other.value)))
        items = [(name, t, self.shapes(t.keys)) for name, t in templates.items()]
        for first, second, witness in find_collisions(items):
            later = self.instrument.datasets[second]
            earlier = self.instrument.datasets[first]
            assert later.template is not None and earlier.template is not None
            if frozenset((first, second)) in declared:
                self.warning(
                    "BC103",
                    f"dataset types '{first}' and '{second}' share paths (declared), "
                    f"e.g. '{witness}'",
                    later.template.span,
                    about=(later, earlier),
                )
                continue
            self.error(
                "BC006",
                f"dataset types '{first}' and '{second}' can render the same path, "
                f"e.g. '{witness}'",
                later.template.span,
                f"make the templates differ, or declare 'shares path with {first}' "
                "if the sharing is intended",
                Note(f"template of '{first}'", earlier.template.span),
            )

    def check_widths(self) -> None:
        uses: dict[str, dict[str, tuple[str, Span]]] = {}
        for name, template in self.result.templates.items():
            literal = self.instrument.datasets[name].template
            assert literal is not None
            for item in template.fields:
                if self.key_types.get(item.key) != "int":
                    continue
                match = re.fullmatch(r"[+\- ]?0?(\d*)d?", item.spec)
                width = match.group(1) if match else item.spec
                uses.setdefault(item.key, {}).setdefault(
                    width or "none", (name, _field_span(literal, item))
                )
        for key, widths in uses.items():
            if len(widths) < 2:
                continue
            (first_width, (first_name, first_span)), *others = widths.items()
            for width, (name, span) in others:
                shown = "no width" if width == "none" else f"width {width}"
                first_shown = "no width" if first_width == "none" else f"width {first_width}"
                self.warning(
                    "BC101",
                    f"key '{key}' has {shown} in '{name}' but {first_shown} in '{first_name}'",
                    span,
                    "use one width for the key everywhere unless the real layout differs",
                    Note(f"template of '{first_name}'", first_span),
                    about=(self.instrument.keys[key], self.instrument.datasets[name]),
                )


def check(instrument: ResolvedInstrument) -> Checked:
    """Run every check on a resolved instrument."""
    checker = _Checker(instrument)
    checker.check_keys()
    checker.check_allowances()
    checker.check_normalizations()
    checker.check_tables()
    checker.check_formats()
    checker.check_skymaps()
    checker.check_datasets()
    checker.check_collisions()
    checker.check_widths()
    return checker.result
