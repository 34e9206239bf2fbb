"""What the server's error messages say instead of its own file system paths.

A local Butler's errors name its folders and files (``in repository /data/hsc``, ``its
file '/data/hsc/calexp/...fits'``, ``run `butler verify /data/hsc```); over the wire those
would tell a client how the server's disks are laid out, and name places the client
cannot reach. Every error the server sends passes through :meth:`Redaction.text` (see
:func:`butler.remote.wire.error_body`), which replaces, in this order:

- each registry URL of the served chain (``sqlite:////data/hsc/registry.sqlite3``,
  ``postgresql://user@host/db``) by the name of the repository it belongs to;
- each root of the served chain (the repository and its parents), alone, as a
  ``file://`` URI or at the head of a path, by that repository's name: the served one
  by the name it is served as (``/data/hsc/calexp/a.fits`` becomes ``hsc/calexp/a.fits``),
  a parent by its folder's name;
- any other absolute path whose first folder exists on the server (a temporary upload,
  a home folder) by ``<server path>``. A text that only looks like a path (an HDF5
  path ``/images/data``, a division in a query expression) is left alone.

The rest of a message, which says what was asked (dataset type, data ID, ref) and what
would fix it, is kept.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ANONYMOUS", "SERVER_PATH", "Redaction"]

#: What an absolute server path outside the served repositories becomes.
SERVER_PATH = "<server path>"

# An absolute path: "/" or "~/" not right after a word, path or URL character.
_ABSOLUTE = re.compile(r"(?<![\w.:/~\-])~?/[\w.+\-@%=]+(?:/[\w.+\-@%=]*)*")


def _top_level() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/"))
    except OSError:
        return frozenset()


@dataclass(frozen=True)
class Redaction:
    """The replacements of one served repository (see the module docs)."""

    #: ``(text, replacement)`` in the order they are applied, longest first.
    replacements: tuple[tuple[str, str], ...]
    #: The names of the server's top-level folders (``tmp``, ``home``, ``data``).
    top_level: frozenset[str]

    @classmethod
    def of(
        cls,
        roots: Iterable[tuple[str, str | os.PathLike[str]]],
        registries: Iterable[tuple[str, str]] = (),
    ) -> Redaction:
        """The redaction of a served repository: ``roots`` and ``registries`` are
        ``(name, root)`` and ``(name, registry URL)`` of each repository of its chain, the
        served one first, under the name it is served as."""
        pairs: list[tuple[str, str]] = [(url, shown) for shown, url in registries if url]
        for shown, root in roots:
            text = os.fspath(root)
            if "://" in text:  # a URL (memory://, s3://, https://) is no server path
                continue
            variants = {text, str(Path(text).absolute())}
            with contextlib.suppress(OSError):
                variants.add(str(Path(text).resolve()))
            for variant in variants:
                if variant and variant != "/":
                    pairs += [(f"file://{variant}", shown), (variant, shown)]
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
        return cls(tuple(pairs), _top_level())

    def text(self, message: str) -> str:
        """``message`` without server paths."""
        for path, shown in self.replacements:
            if path in message:
                message = message.replace(path, shown)
        if "/" in message:
            message = _ABSOLUTE.sub(self._other, message)
        return message

    def _other(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if found.startswith("~"):
            return SERVER_PATH
        first = found[1:].split("/", 1)[0]
        return SERVER_PATH if first in self.top_level else found


#: The redaction of a request no served repository answers: other server paths only.
ANONYMOUS = Redaction((), _top_level())
