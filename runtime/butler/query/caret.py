"""Query errors shown like the compiler's diagnostics: the expression, a caret, a hint.

unknown key 'vist' of dataset type 'calexp'
  visit > 5 AND vist = 3
                ^^^^
  help: did you mean 'visit'?
"""

from __future__ import annotations

from ..errors import InvalidQueryError

__all__ = ["excerpt", "query_error"]


def _shown(line: str) -> str:
    """``line`` with every unprintable character as ``?`` (one column each, so carets align)."""
    return "".join(c if c.isprintable() else "?" for c in line)


def excerpt(text: str, start: int, end: int) -> list[str]:
    """The line of ``text`` holding offset ``start``, and a caret line under ``[start, end)``."""
    start = max(0, min(start, len(text)))
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end < 0:
        line_end = len(text)
    line = _shown(text[line_start:line_end])
    width = max(1, min(end, line_end) - start)
    return [f"  {line}", "  " + " " * (start - line_start) + "^" * width]


def query_error(
    message: str,
    text: str,
    start: int | None = None,
    end: int | None = None,
    hint: str | None = None,
) -> InvalidQueryError:
    """An InvalidQueryError whose message shows ``text`` with a caret under ``[start, end)``."""
    lines = [message]
    if start is not None:
        lines += excerpt(text, start, start + 1 if end is None else end)
    if hint:
        lines.append(f"  help: {hint}")
    return InvalidQueryError("\n".join(lines), text, start, end)
