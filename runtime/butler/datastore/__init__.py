"""Datastores: where and how a repository's datasets live (see :mod:`butler.datastore.base`).

:data:`BACKENDS` is the one table from a repository URL's scheme to the back-end that
serves it: a local path (or ``file://``), ``memory://`` and ``s3://``. A URL whose scheme
has no entry (``https://`` until its back-end exists) is refused here, for
``Butler.create`` and ``Butler`` alike. A new back-end adds its line (docs/architecture.md,
"Where a new back-end goes").
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import RepositoryError
from .base import Datastore, Journal, Location, ReadRequest, WriteRequest, WrongSizeError
from .local import LocalDatastore, create_local, open_local
from .memory import COPY_MODES, CopyPolicy, MemoryDatastore, create_memory, open_memory
from .s3 import S3Datastore, create_s3, open_s3

__all__ = [
    "BACKENDS",
    "COPY_MODES",
    "Backend",
    "CopyPolicy",
    "Datastore",
    "Journal",
    "LocalDatastore",
    "Location",
    "MemoryDatastore",
    "ReadRequest",
    "S3Datastore",
    "WriteRequest",
    "WrongSizeError",
    "create_datastore",
    "open_datastore",
    "scheme_of",
]


@dataclass(frozen=True)
class Backend:
    """How one URL scheme's repositories are opened and created."""

    open: Callable[[str], Datastore]
    create: Callable[[str], Datastore]


#: URL scheme -> back-end; "" is a plain local path.
BACKENDS: Mapping[str, Backend] = {
    "": Backend(open_local, create_local),
    "file": Backend(open_local, create_local),
    "memory": Backend(open_memory, create_memory),
    "s3": Backend(open_s3, create_s3),
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
