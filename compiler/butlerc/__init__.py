"""butlerc: the compiler of Butler policies.

A policy (``policies/hsc.butler``) describes an instrument's data layout; the
compiler checks it and turns each instrument into a plain Python mapper module
that the runtime package ``butler`` imports. Stages, each callable alone:
:mod:`~butlerc.parse` → :mod:`~butlerc.model` → :mod:`~butlerc.resolve` →
:mod:`~butlerc.checks` → :mod:`~butlerc.ir` → :mod:`~butlerc.codegen`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .diagnostics import Diagnostic as Diagnostic
from .diagnostics import Span as Span
from .driver import CompileResult as CompileResult
from .driver import check_policy as check_policy
from .driver import compile_policy as compile_policy
from .levels import Allowed as Allowed
from .levels import Selection as Selection

__all__ = [
    "Allowed",
    "CompileResult",
    "Diagnostic",
    "Selection",
    "Span",
    "__version__",
    "check_policy",
    "compile_policy",
]
