"""A progress line for long operations, drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

__all__ = ["progress"]

_T = TypeVar("_T")


def progress(
    items: Iterable[_T],
    label: str,
    total: int | None = None,
    stream: TextIO | None = None,
    every: float = 0.1,
) -> Iterator[_T]:
    """Yield ``items``, redrawing ``label: N/total`` at most every ``every`` seconds."""
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        yield from items
        return
    count = 0
    last = 0.0
    for item in items:
        count += 1
        now = time.monotonic()
        if now - last >= every:
            last = now
            shown = f"{count}/{total}" if total else str(count)
            if total:
                done = int(30 * count / max(total, 1))
                shown = f"[{'#' * done}{'.' * (30 - done)}] {shown}"
            out.write(f"\r{label}: {shown}")
            out.flush()
        yield item
    out.write(f"\r{label}: {count}{f'/{total}' if total else ''} done\n")
    out.flush()
