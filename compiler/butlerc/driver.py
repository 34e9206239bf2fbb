"""The orchestrator: parse → model → resolve → checks → IR → code generation.

Each stage is its own module and can be called alone; this module only calls
them in order and stops where the user asked (``emit``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .checks import Checked, check
from .diagnostics import Diagnostic, render_all, sort_key
from .ir import build_ir, validate
from .levels import Allowed, Selection
from .resolve import Input, load, resolve

__all__ = ["CompileResult", "check_policy", "compile_policy", "module_name"]

Emit = Literal["ir", "module"]


@dataclass(frozen=True)
class CompileResult:
    """What compiling one policy file produced.

    ``modules`` maps a module name (the instrument's name, lower-cased) to its
    Python source; ``irs`` maps the same names to the IR documents. Both are
    empty when there are errors.
    """

    file: str
    diagnostics: tuple[Diagnostic, ...]
    sources: Mapping[str, str]
    inputs: tuple[Input, ...] = ()
    irs: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    modules: Mapping[str, str] = field(default_factory=dict)
    allowed: tuple[Allowed, ...] = ()
    """Warnings not reported: allowed by the policy, by default or by the command line."""

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if not d.is_error)

    def report(self) -> str:
        """Every diagnostic rendered with its source excerpt, in source order."""
        return render_all(self.diagnostics, self.sources)


def module_name(instrument: str) -> str:
    """The module a compiled instrument becomes: its name, lower-cased."""
    return instrument.lower()


def _unused_allowances(results: list[Checked]) -> list[Diagnostic]:
    """BC106 for each ``allow`` clause that silenced nothing in any instrument checked."""
    used = set().union(*(r.used for r in results))
    allowances = {span: a for r in results for span, a in r.allowances.items()}
    return [
        Diagnostic(
            "BC106",
            "warning",
            f"'allow {allowance.code.value}' suppresses nothing: no instrument checked here "
            f"reports {allowance.code.value} on this definition",
            span,
            "remove the allowance, or move it to the definition the warning is about "
            "('butlerc check --show-allowed' lists what allowances suppress)",
        )
        for span, allowance in allowances.items()
        if span not in used
    ]


def _run(
    path: Path, text: str | None, emit: Emit | None, selection: Selection | None
) -> CompileResult:
    loaded = load(path, text)
    instruments, diagnostics = resolve(loaded)
    found = [*loaded.diagnostics, *diagnostics]
    checked = []
    allowed: list[Allowed] = []
    for instrument in instruments:
        result = check(instrument)
        found.extend(result.diagnostics)
        allowed.extend(result.allowed)
        checked.append((instrument, result))
    found.extend(_unused_allowances([result for _, result in checked]))
    # Instruments that use one shared block find its problems once each: report them once.
    unique = sorted(dict.fromkeys(found), key=sort_key)
    ordered, silenced = (selection or Selection()).apply(unique)
    allowed = sorted(dict.fromkeys([*allowed, *silenced]), key=lambda a: sort_key(a.diagnostic))
    main = loaded.inputs[0].file if loaded.inputs else str(path)
    base = CompileResult(
        main, ordered, loaded.sources, tuple(loaded.inputs), allowed=tuple(allowed)
    )
    if emit is None or not base.ok:
        return base
    irs = {}
    for instrument, result in checked:
        ir = build_ir(instrument, result, main)
        validate(ir)
        irs[module_name(instrument.name)] = ir
    modules: dict[str, str] = {}
    if emit == "module":
        from .codegen import generate

        modules = {name: generate(ir) for name, ir in irs.items()}
    return dataclasses.replace(base, irs=irs, modules=modules)


def check_policy(
    path: str | Path, text: str | None = None, *, selection: Selection | None = None
) -> CompileResult:
    """Parse and check a policy file (or ``text`` under that name); generate nothing.

    ``selection`` turns warnings on or off by code (``--warn``/``--allow``); by default
    every warning is reported except the few that are allowed by default (BC103, BC104).
    """
    return _run(Path(path), text, None, selection)


def compile_policy(
    path: str | Path,
    text: str | None = None,
    *,
    emit: Emit = "module",
    selection: Selection | None = None,
) -> CompileResult:
    """Check a policy file and, when it has no errors, build its IR and mapper modules."""
    return _run(Path(path), text, emit, selection)
