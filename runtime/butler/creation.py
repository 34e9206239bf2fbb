"""Creating a repository leaves either a whole repository or nothing; opening one names damage.

:meth:`Butler.create` runs inside :func:`undone_on_failure`, which makes the root folder
and, if anything fails, removes what the create made: the folders it made, or, in a
folder that was already there, the entries that were not. :func:`refuse_existing_registry`
says in words a user can act on that the database already holds a registry;
:func:`open_registry` tells a damaged repository (its registry gone or emptied) from a
new one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import RegistryNotFoundError, RepositoryError
from .registry import Registry

__all__ = [
    "check_registry_url",
    "local_root",
    "open_registry",
    "refuse_existing_registry",
    "undone_on_failure",
]


@contextlib.contextmanager
def undone_on_failure(root: Path) -> Iterator[None]:
    """Make ``root``; if the block fails, remove everything the block and this made."""
    made = root
    while not made.parent.exists() and made.parent != made:
        made = made.parent
    existed = root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        before = {entry.name for entry in root.iterdir()}
    except OSError as error:
        if not existed and made.is_dir():
            shutil.rmtree(made, ignore_errors=True)
        raise RepositoryError(f"cannot create the folder {root}: {error.strerror}") from None
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(made, ignore_errors=True)
        else:
            for entry in root.iterdir():
                if entry.name not in before:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
        raise


def refuse_existing_registry(root: Path, url: str) -> None:
    """RepositoryError if ``url`` already holds a Butler registry (another repository's)."""
    try:
        Registry.open(url, upgrade=False).close()  # looking must not migrate another's
    except RegistryNotFoundError:
        return
    raise RepositoryError(
        f"cannot create a repository at {root}: {url} already holds a Butler registry, of "
        "another repository or left by an interrupted create; give the new repository a "
        "database of its own (`butler create --registry URL`, Butler.create(registry=URL)), "
        "or drop that one if nothing needs it"
    )


def open_registry(root: Path, url: str, *, read_only: bool = False) -> Registry:
    """The registry of the repository at ``root``; RepositoryError if it is gone or empty."""
    try:
        return Registry.open(url, read_only=read_only)
    except RegistryNotFoundError:
        raise RepositoryError(
            f"the repository at {root} is damaged: its registry {url} holds no Butler tables "
            "(the database was emptied, replaced or deleted). Restore the registry from a "
            f"backup; then `butler verify {root}` checks every record against its file"
        ) from None


#: A URL's scheme (``s3://``, ``https://``, ``memory://``), as opposed to a local path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def local_root(root: str | os.PathLike[str]) -> Path:
    """``root`` as an absolute local folder; RepositoryError for a URL no back-end serves.

    Only local folders have a storage back-end today: ``s3://bucket/repo`` must not
    become a folder named ``s3:``. An ``http(s)://`` URL is a served repository, which
    :class:`~butler.butler.Butler` opens as a client and cannot create.
    """
    text = os.fspath(root)
    match = _SCHEME.match(text) if isinstance(text, str) else None
    if match is not None and match.group(1) in ("http", "https"):
        raise RepositoryError(
            f"cannot create a repository at {text!r}: create it where its files are kept and "
            "serve it with `butler serve ROOT`; Butler(URL) opens a served one (docs/remote.md)"
        )
    if match is not None:
        raise RepositoryError(
            f"cannot use {text!r}: no storage back-end serves {match.group(1)}:// URLs (a "
            "repository is a local folder; give its path, e.g. /data/repo)"
        )
    return Path(root).absolute()


def check_registry_url(url: str) -> None:
    """RepositoryError for a registry that would not outlive the process (in-memory SQLite),
    which a repository on disk cannot use: its records would vanish at close."""
    if url in ("sqlite://", "sqlite:///:memory:") or url.startswith("sqlite:///:memory:?"):
        raise RepositoryError(
            f"registry {url!r} is an in-memory SQLite database, which would lose every record "
            "when the process ends; a repository on disk needs a file (the default, "
            "sqlite:///registry.sqlite3) or a PostgreSQL URL"
        )
