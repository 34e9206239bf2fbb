"""Stage 3: from files to instruments.

Loads a policy file and everything it includes, then builds each instrument's
complete set of definitions: members of the shared blocks it uses come first,
``override`` merges clause by clause over what was inherited, and lookup tables
are loaded from their CSV files. Nothing here judges whether the definitions
make sense; that is ``checks``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .diagnostics import Diagnostic, Note, Span, did_you_mean
from .model import (
    Block,
    DatasetDef,
    FormatDef,
    KeyDef,
    Literal,
    Member,
    NormalizeDef,
    PolicyFile,
    SkyMapDef,
    SkyMapUse,
    TableDef,
    ValueMap,
    build,
)
from .parse import parse

__all__ = [
    "Input",
    "Loaded",
    "ResolvedInstrument",
    "ResolvedTable",
    "load",
    "resolve",
    "sha256_text",
]


@dataclass(frozen=True)
class Input:
    """A file that went into a compilation, with its text and hash."""

    file: str
    text: str
    sha256: str


@dataclass(frozen=True)
class ResolvedTable:
    """A lookup table with its rows, from the policy or its CSV file."""

    definition: TableDef
    rows: tuple[ValueMap, ...]

    @property
    def name(self) -> str:
        return self.definition.name.value


@dataclass(frozen=True)
class ResolvedInstrument:
    """One instrument with everything it inherits merged in, in definition order."""

    block: Block
    keys: dict[str, KeyDef]
    normalizations: dict[str, tuple[NormalizeDef, ...]]
    tables: dict[str, ResolvedTable]
    formats: dict[str, FormatDef]
    datasets: dict[str, DatasetDef]
    inputs: tuple[Input, ...]
    inherited: frozenset[str] = frozenset()
    """Dataset types taken from shared blocks as they were, neither defined nor overridden here."""
    skymaps: dict[str, SkyMapDef] = field(default_factory=dict)
    default_skymap: SkyMapUse | None = None
    """``use skymap``: the block's own, else the one of the first shared block that has one."""

    def skymap_of(self, dataset: DatasetDef) -> SkyMapUse | None:
        """The skymap a dataset type's tract/patch keys belong to: its own clause, else the
        block's ``use skymap`` when the dataset type has a ``tract`` or ``patch`` key."""
        if dataset.skymap is not None:
            return dataset.skymap
        keys = {k.value for k in dataset.keys or ()}
        return self.default_skymap if keys & {"tract", "patch"} else None

    @property
    def name(self) -> str:
        return self.block.name.value


@dataclass
class Loaded:
    """Every file of one compilation: the main file first, then its includes."""

    files: list[PolicyFile] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def sources(self) -> dict[str, str]:
        return {i.file: i.text for i in self.inputs}


def _display(path: Path) -> str:
    """A path as diagnostics show it: relative to the working folder when it can be."""
    try:
        return PurePosixPath(path.resolve().relative_to(Path.cwd().resolve())).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _read(path: Path) -> str:
    data = path.read_bytes()
    return data.decode("utf-8")


def _unreadable(error: Exception) -> str:
    """Why a file could not be read, in words."""
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return "the path holds a NUL character"  # ValueError from the operating system call


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load(path: Path, text: str | None = None) -> Loaded:
    """Parse ``path`` (or the given text, named ``path``) and every file it includes."""
    loaded = Loaded()
    _load_into(loaded, path, text, stack=(), include_span=None)
    return loaded


def _load_into(
    loaded: Loaded,
    path: Path,
    text: str | None,
    stack: tuple[Path, ...],
    include_span: Span | None,
) -> None:
    if "\x00" in str(path):  # the operating system refuses such a path outright
        loaded.diagnostics.append(
            Diagnostic(
                "BC017",
                "error",
                f"cannot read {str(path)!r}: the path holds a NUL character",
                include_span,
            )
        )
        return
    display = _display(path)
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(_display(p) for p in (*stack, resolved))
        loaded.diagnostics.append(
            Diagnostic(
                "BC017", "error", f"files include each other in a circle: {chain}", include_span
            )
        )
        return
    if any(i.file == display for i in loaded.inputs):
        return  # already loaded through another include
    if text is None:
        try:
            text = _read(path)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            reason = _unreadable(error)
            loaded.diagnostics.append(
                Diagnostic("BC017", "error", f"cannot read '{display}': {reason}", include_span)
            )
            return
    loaded.inputs.append(Input(display, text, sha256_text(text)))
    tree, diagnostics = parse(text, display)
    loaded.diagnostics.extend(diagnostics)
    if tree is None:
        return
    policy, diagnostics = build(tree, display)
    loaded.diagnostics.extend(diagnostics)
    loaded.files.append(policy)
    for include in policy.includes:
        target = path.parent / str(include.path.value)
        _load_into(loaded, target, None, (*stack, resolved), include.path.span)


# ---- resolving instruments ----------------------------------------------------------

_NAMESPACES = {
    KeyDef: "key",
    FormatDef: "format",
    DatasetDef: "dataset",
    TableDef: "table",
    SkyMapDef: "skymap",
}


def _namespace(member: Member) -> str:
    return _NAMESPACES[type(member)]


def _word(member: Member) -> str:
    if isinstance(member, DatasetDef):
        return member.kind
    return _namespace(member)


def _merge(base: Member, over: Member) -> Member:
    """``override``: a key or a skymap is replaced; formats and dataset types merge clause
    by clause."""
    if isinstance(over, KeyDef | SkyMapDef):
        return over
    updates = {
        f.name: getattr(over, f.name)
        for f in dataclasses.fields(over)
        if f.name not in ("name", "span", "override") and getattr(over, f.name) is not None
    }
    if isinstance(base, FormatDef | DatasetDef) and isinstance(over, FormatDef | DatasetDef):
        # Allowances add up: an override keeps what the shared definition expects, plus its own.
        updates["allowances"] = (*base.allowances, *over.allowances)
    return dataclasses.replace(base, name=over.name, span=over.span, **updates)  # type: ignore[arg-type]


@dataclass
class _Scope:
    """The definitions visible in one block, with the shared block each came from."""

    members: dict[str, dict[str, Member]] = field(
        default_factory=lambda: {ns: {} for ns in ("key", "format", "dataset", "table", "skymap")}
    )
    skymap: SkyMapUse | None = None
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    normalizations: dict[str, list[NormalizeDef]] = field(default_factory=dict)

    def items(self) -> Iterator[tuple[str, str, Member]]:
        for namespace, members in self.members.items():
            for name, member in members.items():
                yield namespace, name, member


class _Resolver:
    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.diagnostics: list[Diagnostic] = []
        self.shared: dict[str, Block] = {}
        self.expanded: dict[str, _Scope] = {}
        for policy in loaded.files:
            for block in policy.blocks:
                if block.kind != "shared":
                    continue
                first = self.shared.get(block.name.value)
                if first is not None:
                    self.error(
                        "BC009",
                        f"shared block '{block.name.value}' is defined twice",
                        block.name.span,
                        "rename one of them",
                        Note("first defined here", first.name.span),
                    )
                    continue
                self.shared[block.name.value] = block

    def error(
        self, code: str, message: str, span: Span | None, hint: str | None = None, *notes: Note
    ) -> None:
        self.diagnostics.append(Diagnostic(code, "error", message, span, hint, tuple(notes)))

    def expand(self, block: Block, stack: tuple[str, ...]) -> _Scope:
        if block.kind == "shared" and block.name.value in self.expanded:
            return self.expanded[block.name.value]
        scope = _Scope()
        for use in block.uses:
            shared = self.shared.get(use.value)
            if shared is None:
                self.error(
                    "BC011",
                    f"no shared block named '{use.value}'",
                    use.span,
                    did_you_mean(use.value, self.shared) or "include the file that defines it",
                )
                continue
            if use.value in stack:
                chain = " -> ".join((*stack, use.value))
                self.error("BC011", f"shared blocks use each other in a circle: {chain}", use.span)
                continue
            inner = self.expand(shared, (*stack, use.value))
            scope.skymap = scope.skymap or inner.skymap
            for namespace, name, member in inner.items():
                existing = scope.members[namespace].get(name)
                if existing is not None and existing is not member:
                    self.error(
                        "BC009",
                        f"{_word(member)} '{name}' is inherited twice, from "
                        f"'{scope.origins[(namespace, name)]}' and "
                        f"'{inner.origins[(namespace, name)]}'",
                        use.span,
                        f"write 'override {_word(member)} {name}' in '{block.name.value}' "
                        "to settle it",
                    )
                    continue
                scope.members[namespace][name] = member
                scope.origins[(namespace, name)] = inner.origins[(namespace, name)]
            for key, normalizations in inner.normalizations.items():
                known = scope.normalizations.setdefault(key, [])
                known.extend(n for n in normalizations if n not in known)
        scope.skymap = block.skymap or scope.skymap
        for member in block.members:
            if isinstance(member, NormalizeDef):
                scope.normalizations.setdefault(member.key.value, []).append(member)
                continue
            self.define(scope, block, member)
        if block.kind == "shared":
            self.expanded[block.name.value] = scope
        return scope

    def define(self, scope: _Scope, block: Block, member: Member) -> None:
        namespace = _namespace(member)
        name = member.name.value
        existing = scope.members[namespace].get(name)
        origin = scope.origins.get((namespace, name))
        override = getattr(member, "override", False)
        if override:
            if existing is None:
                self.error(
                    "BC019",
                    f"'override {_word(member)} {name}': no shared block used here defines it",
                    member.name.span,
                    "remove 'override' to define it here",
                )
                return
            else:
                scope.members[namespace][name] = _merge(existing, member)
            scope.origins[(namespace, name)] = block.name.value
            return
        if existing is not None:
            if origin == block.name.value:
                self.error(
                    "BC009",
                    f"{_word(member)} '{name}' is defined twice",
                    member.name.span,
                    "remove or rename one of them",
                    Note("first defined here", existing.name.span),
                )
            else:
                self.error(
                    "BC009",
                    f"{_word(member)} '{name}' is already defined by shared block '{origin}'",
                    member.name.span,
                    f"write 'override {_word(member)} {name}' to change the inherited definition",
                    Note("inherited definition", existing.name.span),
                )
            return
        scope.members[namespace][name] = member
        scope.origins[(namespace, name)] = block.name.value

    def table(self, table: TableDef) -> ResolvedTable:
        if table.file is None:
            return ResolvedTable(table, table.rows)
        base = Path(table.span.file).parent
        path = base / str(table.file.value)
        if "\x00" in str(path):
            self.error(
                "BC017",
                "cannot read a table file whose path holds a NUL character",
                table.file.span,
            )
            return ResolvedTable(table, ())
        display = _display(path)
        try:
            text = _read(path)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            reason = _unreadable(error)
            self.error("BC017", f"cannot read table file '{display}': {reason}", table.file.span)
            return ResolvedTable(table, ())
        if not any(i.file == display for i in self.loaded.inputs):
            self.loaded.inputs.append(Input(display, text, sha256_text(text)))
        return ResolvedTable(table, self._csv_rows(table, text, display))

    def _csv_rows(self, table: TableDef, text: str, display: str) -> tuple[ValueMap, ...]:
        wanted = (table.key_column.name.value, table.value_column.name.value)
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None or not all(column in header for column in wanted):
            self.error(
                "BC018",
                f"table '{table.name.value}': '{display}' must have a header row naming "
                f"the columns {wanted[0]} and {wanted[1]}",
                table.file.span if table.file else table.span,
                f"its header is {', '.join(header) if header else 'missing'}",
            )
            return ()
        positions = [header.index(column) for column in wanted]
        rows = []
        for number, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            span = Span(display, number, 1, number, len(",".join(row)) + 1)
            if len(row) <= max(positions):
                self.error("BC018", f"table '{table.name.value}': row {number} is short", span)
                continue
            cells = [Literal(row[p].strip(), "str", span) for p in positions]
            rows.append(ValueMap(cells[0], cells[1], span))
        return tuple(rows)

    def instrument(self, block: Block) -> ResolvedInstrument:
        scope = self.expand(block, (block.name.value,))
        members = scope.members
        return ResolvedInstrument(
            block=block,
            keys=dict(members["key"]),  # type: ignore[arg-type]
            normalizations={k: tuple(v) for k, v in scope.normalizations.items()},
            tables={name: self.table(t) for name, t in members["table"].items()},  # type: ignore[arg-type]
            formats=dict(members["format"]),  # type: ignore[arg-type]
            datasets=dict(members["dataset"]),  # type: ignore[arg-type]
            inputs=tuple(self.loaded.inputs),
            skymaps=dict(members["skymap"]),  # type: ignore[arg-type]
            default_skymap=scope.skymap,
            inherited=frozenset(
                name
                for name in members["dataset"]
                if scope.origins[("dataset", name)] != block.name.value
            ),
        )


def resolve(loaded: Loaded) -> tuple[list[ResolvedInstrument], list[Diagnostic]]:
    """Every instrument of the main file, resolved, with the diagnostics found on the way."""
    resolver = _Resolver(loaded)
    instruments: list[ResolvedInstrument] = []
    if loaded.files:
        main = loaded.files[0]
        seen: dict[str, Block] = {}
        for block in main.blocks:
            if block.kind != "instrument":
                continue
            first = seen.get(block.name.value.lower())
            if first is not None:
                resolver.error(
                    "BC009",
                    f"instrument '{block.name.value}' is defined twice",
                    block.name.span,
                    "each instrument compiles to its own module; rename one",
                    Note("first defined here", first.name.span),
                )
                continue
            seen[block.name.value.lower()] = block
            instruments.append(resolver.instrument(block))
    # Inputs may have grown with CSV tables; give every instrument the full list.
    inputs = tuple(loaded.inputs)
    instruments = [dataclasses.replace(i, inputs=inputs) for i in instruments]
    return instruments, resolver.diagnostics
