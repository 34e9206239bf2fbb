"""Diagnostics: what the compiler says about a policy, and how it is shown.

A :class:`Diagnostic` has a stable code (``BC004``), a severity, a message, the
source span it is about, an optional hint ("did you mean 'visit'?") and optional
notes pointing at related places ("first defined here"). :func:`render` prints
it the way rustc does::

    policies/hsc.butler:12:31: error[BC004]: format spec '05d' needs an int key, but 'filter' is str
       |
    12 |     template "{pointing:05d}/{filter:05d}/x.fits"
       |                               ^^^^^^^^^^^^^
       = help: write '{filter}'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Diagnostic",
    "Note",
    "Span",
    "did_you_mean",
    "render",
    "render_all",
    "sort_key",
    "to_json",
]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Span:
    """A range of source text: 1-based line and column, end column exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Note:
    """A related place in the source, with what it is ("first defined here")."""

    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the compiler about a policy."""

    code: str
    severity: Severity
    message: str
    span: Span | None
    hint: str | None = None
    notes: tuple[Note, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        """One line: ``file:line:col: error[BC002]: message (help: hint)``."""
        where = f"{self.span}: " if self.span else ""
        hint = f" (help: {self.hint})" if self.hint else ""
        return f"{where}{self.severity}[{self.code}]: {self.message}{hint}"


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate to ``name``, or ``None``."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    """Source order: file, line, column, then code for a stable tie-break."""
    span = diagnostic.span
    if span is None:
        return ("", 0, 0, diagnostic.code)
    return (span.file, span.line, span.column, diagnostic.code)


def _excerpt(span: Span, sources: Mapping[str, str]) -> list[str]:
    text = sources.get(span.file)
    if text is None:
        return []
    lines = text.splitlines()
    if not 1 <= span.line <= len(lines):
        return []
    source_line = lines[span.line - 1].expandtabs(1)
    gutter = " " * len(str(span.line))
    if span.end_line == span.line and span.end_column > span.column:
        width = span.end_column - span.column
    else:
        width = max(1, len(source_line) - span.column + 1)
    caret = " " * (span.column - 1) + "^" * max(1, width)
    return [f"{gutter} |", f"{span.line} | {source_line}", f"{gutter} | {caret}"]


def render(diagnostic: Diagnostic, sources: Mapping[str, str]) -> str:
    """The diagnostic as text: location, message, source line with caret, hint, notes."""
    where = f"{diagnostic.span}: " if diagnostic.span else ""
    out = [f"{where}{diagnostic.severity}[{diagnostic.code}]: {diagnostic.message}"]
    if diagnostic.span is not None:
        out.extend(_excerpt(diagnostic.span, sources))
    if diagnostic.hint:
        out.append(f"   = help: {diagnostic.hint}")
    for note in diagnostic.notes:
        where = f"{note.span}: " if note.span else ""
        out.append(f"   = note: {where}{note.message}")
        if note.span is not None:
            out.extend("     " + line for line in _excerpt(note.span, sources))
    return "\n".join(out)


def render_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    """Every diagnostic in source order, then a one-line summary."""
    ordered = sorted(diagnostics, key=sort_key)
    errors = sum(d.is_error for d in ordered)
    warnings = len(ordered) - errors
    parts = [render(d, sources) for d in ordered]
    summary = []
    if errors:
        summary.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        summary.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    if summary:
        parts.append(", ".join(summary))
    return "\n\n".join(parts[:-1]) + ("\n\n" if len(parts) > 1 else "") + parts[-1] if parts else ""


def to_json(diagnostic: Diagnostic) -> dict[str, object]:
    """A plain-data form for `--format json`."""

    def span_json(span: Span | None) -> dict[str, object] | None:
        if span is None:
            return None
        return {
            "file": span.file,
            "line": span.line,
            "column": span.column,
            "end_line": span.end_line,
            "end_column": span.end_column,
        }

    return {
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "span": span_json(diagnostic.span),
        "hint": diagnostic.hint,
        "notes": [{"message": n.message, "span": span_json(n.span)} for n in diagnostic.notes],
    }
