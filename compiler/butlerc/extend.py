"""Checking definitions added to a compiled instrument at run time.

A pipeline that defines an output dataset type, or overrides a setting of a
policy's dataset type, writes it in the policy language::

    dataset deepCoadd_myCat {
        template "myCat/{tract}/{patch}.fits"
        format fits
        keys tract, patch
    }
    override dataset calexp { format hdf5 }

:func:`extend` checks such ``additions`` against the instrument they extend,
given as policy text (``base``, the instrument's members), with the compiler's
own stages and rules: the base becomes a shared block that an instrument block
holding the additions uses, so an unknown key is BC002, a bad format spec
BC004, a template that can render another dataset type's path BC006, a name the
instrument already defines BC009, exactly as in a policy file. Diagnostics point
into ``additions`` (under the name ``file``); the IR of every dataset type the
additions define or override is returned for the runtime to build on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import check
from .diagnostics import Diagnostic, Note, Span, render_all, sort_key
from .ir import build_ir
from .resolve import load, resolve

__all__ = ["Extension", "defined_names", "extend"]

_HEADER_LINES = 1  # the instrument line that comes before the additions


@dataclass(frozen=True)
class Extension:
    """What checking additions found: diagnostics, and the IR of what they define.

    ``dataset_types`` maps each dataset type the additions define or override
    to its IR entry (``butlerc/dsl/ir.schema.json``, ``dataset_types[]``);
    ``keys`` and ``formats`` map each key and format they declare to its IR
    entry. All are empty when there is an error.
    """

    diagnostics: tuple[Diagnostic, ...]
    sources: Mapping[str, str]
    dataset_types: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    keys: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    formats: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    def report(self) -> str:
        """Every diagnostic with its source excerpt, as ``butlerc check`` prints them."""
        return render_all(self.diagnostics, self.sources)


def extend(
    base: str,
    additions: str,
    *,
    instrument: str,
    title: str = "",
    file: str = "<runtime>",
    base_file: str = "<policy>",
) -> Extension:
    """Check ``additions`` (policy members) against ``base`` (the instrument's members).

    ``instrument`` names the instrument; ``base`` becomes its shared block
    ``<instrument>_policy``, which messages mention. ``file`` and ``base_file``
    name the two texts in diagnostics. Diagnostics about ``base`` alone (warnings the policy already
    had) are left out; an error in ``base`` is reported, as it means the base
    text does not describe a valid instrument.
    """
    shared = f"{instrument}_policy"
    quoted_title = title.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    head = f'instrument {instrument} "{quoted_title}" {{ use {shared}\n'
    assert head.count("\n") == _HEADER_LINES
    body = additions if additions.endswith("\n") else additions + "\n"
    split = _HEADER_LINES + body.count("\n") + 1  # first line after the closing brace
    text = f"{head}{body}}}\nshared {shared} {{\n{base}\n}}\n"
    base_offset = split + 1  # line `split` closes the instrument, the next opens `shared`
    main = Path(file if file.endswith(".butler") else "runtime-extension.butler")
    loaded = load(main, text)
    found = list(loaded.diagnostics)
    instruments, problems = resolve(loaded)
    found.extend(problems)
    name = str(main.as_posix()) if not loaded.inputs else loaded.inputs[0].file

    def place(span: Span | None) -> Span | None:
        if span is None or span.file != name:
            return span
        if span.line <= _HEADER_LINES:
            return dataclasses.replace(span, file=file, line=1, end_line=1, column=1, end_column=2)
        if span.line < split:
            shift = _HEADER_LINES
            return dataclasses.replace(
                span, file=file, line=span.line - shift, end_line=span.end_line - shift
            )
        shift = base_offset
        return dataclasses.replace(
            span, file=base_file, line=span.line - shift, end_line=span.end_line - shift
        )

    def in_additions(span: Span | None) -> bool:
        return span is None or (span.file == name and span.line < split)

    checked = []
    for resolved in instruments:
        result = check(resolved)
        found.extend(result.diagnostics)
        checked.append((resolved, result))
    kept = [
        dataclasses.replace(
            d,
            span=place(d.span),
            notes=tuple(Note(n.message, place(n.span)) for n in d.notes),
        )
        for d in found
        if d.is_error or in_additions(d.span)
    ]
    diagnostics = tuple(sorted(kept, key=sort_key))
    sources = {file: body, base_file: base}
    if any(d.is_error for d in diagnostics) or not checked:
        return Extension(diagnostics, sources)
    resolved, result = checked[0]
    ir = build_ir(resolved, result, name)
    own_types = {n for n in resolved.datasets if n not in resolved.inherited}
    own_keys = {n for n, k in resolved.keys.items() if k.span.file == name and k.span.line < split}
    own_formats = {
        n for n, f in resolved.formats.items() if f.span.file == name and f.span.line < split
    }
    return Extension(
        diagnostics,
        sources,
        {entry["name"]: entry for entry in ir["dataset_types"] if entry["name"] in own_types},
        {entry["name"]: entry for entry in ir["keys"] if entry["name"] in own_keys},
        {entry["name"]: entry for entry in ir["formats"] if entry["name"] in own_formats},
    )


def defined_names(additions: str) -> dict[str, list[str]]:
    """The names ``additions`` define, by kind: ``dataset`` (dataset types and
    calibrations), ``key``, ``format``, ``table`` and ``override`` (what it overrides).

    Text that does not parse defines nothing; :func:`extend` reports why.
    """
    from .model import Block, DatasetDef, FormatDef, KeyDef, TableDef, build
    from .parse import parse

    found: dict[str, list[str]] = {k: [] for k in ("dataset", "key", "format", "table", "override")}
    tree, _ = parse(f"instrument _ {{\n{additions}\n}}\n", "<additions>")
    if tree is None:
        return found
    policy, _ = build(tree, "<additions>")
    for block in policy.blocks:
        if not isinstance(block, Block):
            continue
        for member in block.members:
            if getattr(member, "override", False):
                found["override"].append(member.name.value)
            elif isinstance(member, DatasetDef):
                found["dataset"].append(member.name.value)
            elif isinstance(member, KeyDef):
                found["key"].append(member.name.value)
            elif isinstance(member, FormatDef):
                found["format"].append(member.name.value)
            elif isinstance(member, TableDef):
                found["table"].append(member.name.value)
    return found
