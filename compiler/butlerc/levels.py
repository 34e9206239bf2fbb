"""Which warnings are reported: defaults, the command line, and allowances in policies.

Like rustc's lint levels and ruff's rule selection, each warning code has a default
level (most are reported; a few, such as BC103, only when asked for), the command
line changes it (``--warn CODE`` reports it, ``--allow CODE`` silences it), and a
policy's ``allow CODE "reason"`` clause silences it on one definition, whatever the
command line says. Errors are always reported. Nothing silenced is lost: each
becomes an :class:`Allowed` that ``butlerc check --show-allowed`` lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .codes import CODES
from .diagnostics import Diagnostic, Span, did_you_mean

__all__ = ["Allowed", "Selection", "SelectionError"]


@dataclass(frozen=True)
class Allowed:
    """A warning that was not reported, and what allowed it."""

    diagnostic: Diagnostic
    reason: str
    by: Span | None = None
    """The policy's ``allow`` clause; ``None`` when the default or the command line allowed it."""

    def __str__(self) -> str:
        where = f"allowed at {self.by}: " if self.by is not None else ""
        return f"{self.diagnostic} [{where}{self.reason}]"


class SelectionError(ValueError):
    """A ``--warn``/``--allow`` argument that names no warning code."""


def _codes(arguments: Iterable[str], option: str) -> frozenset[str]:
    codes: set[str] = set()
    for argument in arguments:
        for word in argument.split(","):
            code = word.strip().upper()
            if not code:
                continue
            entry = CODES.get(code)
            if entry is None:
                hint = did_you_mean(code, CODES) or "'butlerc explain CODE' describes a code"
                raise SelectionError(f"{option} {word.strip()}: no diagnostic code; {hint}")
            if entry.severity == "error":
                raise SelectionError(
                    f"{option} {code}: {code} is an error; only warnings can be selected"
                )
            codes.add(code)
    return frozenset(codes)


@dataclass(frozen=True)
class Selection:
    """The warning codes the command line turned on (``warn``) or off (``allow``)."""

    warn: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, warn: Iterable[str] = (), allow: Iterable[str] = ()) -> Selection:
        """From ``--warn``/``--allow`` arguments (``BC101`` or ``BC101,BC105``).

        Raises :class:`SelectionError` for an unknown code, an error code, or a code
        given to both.
        """
        warned, allowed = _codes(warn, "--warn"), _codes(allow, "--allow")
        both = warned & allowed
        if both:
            raise SelectionError(
                f"{', '.join(sorted(both))} given to both --warn and --allow; keep one"
            )
        return cls(warned, allowed)

    def why_not_shown(self, diagnostic: Diagnostic) -> str | None:
        """Why a diagnostic is not reported, or ``None`` if it is."""
        code = diagnostic.code
        if diagnostic.is_error or code in self.warn:
            return None
        if code in self.allow:
            return f"--allow {code}"
        entry = CODES.get(code)
        if entry is not None and entry.allowed_by_default:
            return f"allowed by default; --warn {code} reports it"
        return None

    def apply(
        self, diagnostics: Iterable[Diagnostic]
    ) -> tuple[tuple[Diagnostic, ...], tuple[Allowed, ...]]:
        """The diagnostics to report, and the warnings this selection silences."""
        shown: list[Diagnostic] = []
        allowed: list[Allowed] = []
        for diagnostic in diagnostics:
            reason = self.why_not_shown(diagnostic)
            if reason is None:
                shown.append(diagnostic)
            else:
                allowed.append(Allowed(diagnostic, reason))
        return tuple(shown), tuple(allowed)
