"""Bearer tokens of a served repository: each grants ``read`` or ``write`` to that repository.

    butler token create ROOT --scope read     # prints the new token, once

A repository's tokens are in ``ROOT/.butler/tokens.json``, which holds only the
SHA-256 of each token (with its scope, a label and when it was made): a copy of the
file lets nobody in. A token is 32 random bytes, URL-safe base64, prefixed ``bt_`` so
that it is recognizable in a leaked log.

The client finds its token in ``Butler(url, token=...)``, else ``$BUTLER_TOKEN``, else
the token file ``$BUTLER_TOKEN_FILE`` (default ``~/.config/butler/tokens``): lines of
``URL TOKEN``, the longest URL that starts the repository's URL wins.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, RepositoryError
from ..storage import BUTLER_FOLDER

if TYPE_CHECKING:
    from ..datastore.base import Datastore

__all__ = [
    "SCOPES",
    "TOKEN_FILE",
    "TokenStore",
    "client_token",
    "create_stored_token",
    "create_token",
]

SCOPES = ("read", "write")
#: The token file of a repository, below its root (in its ``.butler`` folder).
TOKEN_NAME = "tokens.json"
TOKEN_FILE = f"{BUTLER_FOLDER}/{TOKEN_NAME}"
#: The client's token file, unless ``$BUTLER_TOKEN_FILE`` names another.
CLIENT_TOKEN_FILE = "~/.config/butler/tokens"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenStore:
    """The token hashes of one repository: which scope, if any, a token grants."""

    scopes: Mapping[str, str]  # sha256 hex -> scope

    @classmethod
    def read(cls, root: Path) -> TokenStore:
        """The tokens of the repository at ``root`` (none if it has no token file)."""
        path = root / TOKEN_FILE
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["tokens"]
            return cls({e["sha256"]: e["scope"] for e in entries if e["scope"] in SCOPES})
        except FileNotFoundError:
            return cls({})
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"cannot read the token file {path}: {error}") from None

    @classmethod
    def parse(cls, data: bytes | None, where: str) -> TokenStore:
        """The tokens of a token file's bytes (none for None)."""
        if data is None:
            return cls({})
        try:
            entries = json.loads(data)["tokens"]
            return cls({e["sha256"]: e["scope"] for e in entries if e["scope"] in SCOPES})
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"cannot read the token file {where}: {error}") from None

    def scope(self, token: str | None) -> str | None:
        """The scope ``token`` grants here; None for no token or an unknown one."""
        if not token:
            return None
        digest = _digest(token)
        for known, scope in self.scopes.items():
            if hmac.compare_digest(known, digest):
                return scope
        return None


def create_token(root: Path, scope: str, label: str = "") -> str:
    """A new token of ``scope`` for the repository at ``root``; only its hash is stored."""
    if scope not in SCOPES:
        raise RepositoryError(f"a token's scope is one of {', '.join(SCOPES)}, not {scope!r}")
    if not (root / "butler.yaml").is_file():
        raise RepositoryError(f"{root} is not a Butler repository (no butler.yaml)")
    path = root / TOKEN_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["tokens"]
    except FileNotFoundError:
        entries = []
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"cannot read the token file {path}: {error}") from None
    token = "bt_" + secrets.token_urlsafe(32)
    made = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    entries.append({"sha256": _digest(token), "scope": scope, "label": label, "created": made})
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        json.dump({"tokens": entries}, stream, indent=1)
    os.replace(temporary, path)
    return token


def create_stored_token(datastore: Datastore, scope: str, label: str = "") -> str:
    """:func:`create_token` for a repository without a folder (S3): its token file is the
    object ``.butler/tokens.json`` (kept by ``datastore.write_private``)."""
    if scope not in SCOPES:
        raise RepositoryError(f"a token's scope is one of {', '.join(SCOPES)}, not {scope!r}")
    data = datastore.read_private(TOKEN_NAME)
    try:
        entries = [] if data is None else json.loads(data)["tokens"]
    except (ValueError, KeyError) as error:
        raise ConfigError(f"cannot read the token file of {datastore.root}: {error}") from None
    token = "bt_" + secrets.token_urlsafe(32)
    made = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    entries.append({"sha256": _digest(token), "scope": scope, "label": label, "created": made})
    datastore.write_private(TOKEN_NAME, json.dumps({"tokens": entries}, indent=1).encode())
    return token


def client_token(url: str, given: str | None = None) -> str | None:
    """The token to send to the repository at ``url`` (see the module docs)."""
    if given:
        return given
    if os.environ.get("BUTLER_TOKEN"):
        return os.environ["BUTLER_TOKEN"]
    path = Path(os.environ.get("BUTLER_TOKEN_FILE") or CLIENT_TOKEN_FILE).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    best: tuple[int, str] | None = None
    for line in lines:
        parts = line.split()
        fits = len(parts) == 2 and url.rstrip("/").startswith(parts[0].rstrip("/"))
        if fits and (best is None or len(parts[0]) > best[0]):
            best = (len(parts[0]), parts[1])
    return None if best is None else best[1]
