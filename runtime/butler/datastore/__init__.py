"""Datastores: where and how a repository's datasets live (see :mod:`butler.datastore.base`).

:data:`BACKENDS` is the one table from a repository URL's scheme to the back-end that
serves it: a local path (or ``file://``), ``memory://`` and ``s3://``. A URL whose scheme
has no entry (``https://`` until its back-end exists) is refused here, for
``Butler.create`` and ``Butler`` alike. A new back-end adds its line (docs/architecture.md,
"Where a new back-end goes").

Only the local back-end is imported with this package: the others' modules (and what they
import: the object-store client, botocore's settings, the image classes) load when a
repository of their scheme is first opened or created, so a local repository never pays
for them (``tests/test_imports.py``). Import their classes from their own modules
(``butler.datastore.s3.S3Datastore``, ``butler.datastore.memory.MemoryDatastore``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import RepositoryError
from .base import Datastore, Journal, Location, ReadRequest, WriteRequest, WrongSizeError
from .local import LocalDatastore, create_local, open_local

__all__ = [
    "BACKENDS",
    "Backend",
    "Datastore",
    "Journal",
    "LocalDatastore",
    "Location",
    "ReadRequest",
    "WriteRequest",
    "WrongSizeError",
    "create_datastore",
    "open_datastore",
    "scheme_of",
]


#: A back-end's ``open(url)`` and ``create(url)``.
Functions = tuple[Callable[[str], Datastore], Callable[[str], Datastore]]


@dataclass(frozen=True)
class Backend:
    """How one URL scheme's repositories are opened and created.

    ``load`` imports the back-end's module, when a repository of the scheme is first
    opened or created, and returns its two functions: ``open(url)`` and ``create(url)``.
    """

    load: Callable[[], Functions]

    def open(self, url: str) -> Datastore:
        return self.load()[0](url)

    def create(self, url: str) -> Datastore:
        return self.load()[1](url)


def _local() -> Functions:
    return open_local, create_local


def _memory() -> Functions:
    from .memory import create_memory, open_memory

    return open_memory, create_memory


def _s3() -> Functions:
    from .s3 import create_s3, open_s3

    return open_s3, create_s3


#: URL scheme -> back-end; "" is a plain local path.
BACKENDS: Mapping[str, Backend] = {
    "": Backend(_local),
    "file": Backend(_local),
    "memory": Backend(_memory),
    "s3": Backend(_s3),
}

#: A URL's scheme (``s3://``, ``https://``, ``memory://``), as opposed to a local path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(root: str | os.PathLike[str]) -> str:
    """The URL scheme of a repository location ("" for a local path)."""
    text = os.fspath(root)
    match = _SCHEME.match(text) if isinstance(text, str) else None
    return "" if match is None else match.group(1).lower()


def _backend(root: str | os.PathLike[str]) -> Backend:
    scheme = scheme_of(root)
    backend = BACKENDS.get(scheme)
    if backend is None and scheme in ("http", "https"):
        raise RepositoryError(
            f"cannot create a repository at {os.fspath(root)!r}: create it where its files "
            "are kept and serve it with `butler serve ROOT`; Butler(URL) opens a served one "
            "(docs/remote.md)"
        )
    if backend is None:
        served = ", ".join(f"{s}://" for s in sorted(BACKENDS) if s)
        raise RepositoryError(
            f"cannot use {os.fspath(root)!r}: no storage back-end serves {scheme}:// URLs "
            f"(a repository is a local folder, given by its path, e.g. /data/repo, or one of "
            f"{served})"
        )
    return backend


def open_datastore(root: str | os.PathLike[str]) -> Datastore:
    """The datastore of the existing repository at ``root``; RepositoryError for a URL
    scheme no back-end serves."""
    return _backend(root).open(os.fspath(root))


def create_datastore(root: str | os.PathLike[str]) -> Datastore:
    """The datastore of a repository about to be created at ``root``."""
    return _backend(root).create(os.fspath(root))
