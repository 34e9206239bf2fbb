"""Signed URLs on the server: a repository on object storage hands its clients the bytes
through the store, not through the server (issue 16; docs/remote.md, "Object storage").

- **download**: :func:`redirect` answers a get (and the DataLink download route) with
  ``307 Temporary Redirect`` to a GET URL of exactly that object, signed for
  ``Limits.signed_seconds``, and the recorded size and checksum in headers
  (``X-Butler-Size``, ``X-Butler-Checksum``) for the client to check the bytes against.
- **upload**, in two steps. ``POST .../put-begin`` (a write token): the server checks
  the dataset type and normalizes each data ID, chooses a staging name per file and
  answers a signed PUT URL for each, with the headers the PUT must carry
  (``If-None-Match: *``, ``Content-MD5``). The client PUTs the bytes there, then
  ``POST .../put-commit`` (with an ``Idempotency-Key``, or inside a transaction): the
  server checks each staged object by a HEAD (size, and MD5 by its ETag) and stores the
  datasets through ``Butler.put`` / ``put_many``, which copy them to their keys inside
  the store and record them. A file whose bytes differ is refused
  (``DatasetCorruptError``) and nothing is recorded; an upload never committed is
  deleted when it expires (and by ``butler verify --repair``).

A dataset type with sky regions (which the server computes from the object) and a
repository whose datastore signs nothing keep the upload through the server
(``put-begin`` answers ``{"stream": true}``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..errors import DatasetNotFoundError, InvalidDataIdError, RepositoryError
from . import models, wire
from .tokens import TOKEN_NAME, TokenStore

if TYPE_CHECKING:
    from ..butler import Butler
    from ..datastore.base import Datastore
    from ..resolved import Found, Plan
    from .server import Repository

__all__ = [
    "CHECKSUM_HEADER",
    "SIZE_HEADER",
    "StoredTokens",
    "Uploads",
    "add_signed_routes",
    "redirect",
    "stored_tokens",
]

SIZE_HEADER = "X-Butler-Size"
CHECKSUM_HEADER = "X-Butler-Checksum"
#: The most files one signed put may hold.
MAX_FILES = 10_000


#: How often the token file of a repository on object storage is read again, in seconds.
TOKENS_SECONDS = 2.0


class StoredTokens:
    """The token file of a repository without a folder (S3): the object
    ``.butler/tokens.json``, read again at most every :data:`TOKENS_SECONDS`."""

    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore
        self._store = TokenStore({})
        self._read_at: float | None = None
        self._data: bytes | None = None

    def read(self) -> tuple[TokenStore, bool]:
        """The tokens, and whether they changed since the last call."""
        now = time.monotonic()
        if self._read_at is not None and now - self._read_at < TOKENS_SECONDS:
            return self._store, False
        self._read_at = now
        data = self.datastore.read_private(TOKEN_NAME)
        if data == self._data:
            return self._store, False
        self._data = data
        self._store = TokenStore.parse(data, f"{self.datastore.root}/.butler/{TOKEN_NAME}")
        return self._store, True


def stored_tokens(butler: Butler) -> StoredTokens | None:
    """The token file of ``butler`` when it is not a local file, else None."""
    try:
        butler.datastore.local_root("read its token file")
    except RepositoryError:
        return StoredTokens(butler.datastore)
    return None


def redirect(
    repository: Repository, holder: Butler, plan: Plan, found: Found, headers: dict[str, str]
) -> Response | None:
    """The 307 to a signed GET of ``found``'s object in ``holder`` (the served repository
    or the local parent of its chain that stores it), if its datastore signs URLs."""
    datastore = holder.datastore
    if not datastore.signs_urls:
        return None
    location = datastore.location(found.path)
    url = datastore.signed_download(location, expires=repository.limits.signed_seconds)
    if url is None:
        return None
    keys = holder.mapper.keys(plan.spec.name)
    stored = holder.registry.stored(
        plan.spec.name, {k: v for k, v in found.data_id.items() if k in keys}
    )
    if stored is not None and stored.size is not None:
        headers[SIZE_HEADER] = str(stored.size)
    if stored is not None and stored.checksum is not None:
        headers[CHECKSUM_HEADER] = stored.checksum
    headers["Cache-Control"] = "no-store"
    return RedirectResponse(url, status_code=307, headers=headers)


class Begin(BaseModel):
    """A put to be uploaded through signed URLs: what the client will upload."""

    model_config = ConfigDict(extra="forbid")

    dataset_type: str = Field(max_length=256)
    data_ids: list[dict[str, Any]] = Field(max_length=MAX_FILES)
    sizes: list[int] = Field(max_length=MAX_FILES)
    md5s: list[str] = Field(max_length=MAX_FILES)
    checksums: list[str] = Field(max_length=MAX_FILES)
    overwrite: bool = False
    run: str | None = Field(None, max_length=256)
    many: bool = False


class Commit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload: str = Field(max_length=64)


@dataclass(frozen=True)
class Pending:
    """A begun signed put, waiting for its commit."""

    begin: Begin
    names: tuple[str, ...]
    expires: float


class Uploads:
    """The begun signed puts of one repository (in this server process)."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def add(self, upload: str, pending: Pending) -> None:
        with self._lock:
            self._pending[upload] = pending

    def take(self, upload: str) -> Pending | None:
        with self._lock:
            return self._pending.pop(upload, None)

    def expired(self) -> list[Pending]:
        """The puts never committed in time, forgotten (their uploads to be deleted)."""
        now = time.monotonic()
        with self._lock:
            gone = [u for u, p in self._pending.items() if p.expires < now]
            return [self._pending.pop(u) for u in gone]


def lifetime(seconds: int) -> int:
    """How long a begun put waits for its commit when its URLs live ``seconds``: the last
    PUT may begin just before its URL expires, and take as long again."""
    return 2 * seconds + min(60, seconds)


def begin(repository: Repository, uploads: Uploads, body: Begin) -> dict[str, Any]:
    """Check a signed put and sign its uploads (see the module docs)."""
    butler = repository.butler
    for stale in uploads.expired():
        for name in stale.names:
            butler.datastore.unstage(name)
    count = len(body.data_ids)
    if not (len(body.sizes) == len(body.md5s) == len(body.checksums) == count) or not count:
        raise InvalidDataIdError(
            "a signed put lists one size, MD5 and checksum for each of its data IDs"
        )
    if not body.many and count != 1:
        raise InvalidDataIdError("a put stores one object")
    if sum(body.sizes) > repository.limits.upload_bytes:
        raise InvalidDataIdError(
            f"a put is at most {repository.limits.upload_bytes} bytes; this one has "
            f"{sum(body.sizes)}"
        )
    plan = butler.plan(body.dataset_type)
    butler.check_writeable(f"put {body.dataset_type!r}")
    if plan.sky or not butler.datastore.signs_urls:
        return {"stream": True}
    for raw in body.data_ids:
        butler.normalize(models.data_id(raw), {})  # refused now, before any upload
    upload = secrets.token_hex(16)
    seconds = repository.limits.signed_seconds
    names, files = [], []
    for number, (size, md5, checksum) in enumerate(
        zip(body.sizes, body.md5s, body.checksums, strict=True)
    ):
        name = f"{upload}/{number}"
        signed = butler.datastore.signed_upload(
            name, size=size, md5=md5, checksum=checksum, expires=seconds
        )
        if signed is None:
            return {"stream": True}
        url, headers = signed
        names.append(name)
        files.append({"url": url, "headers": headers})
    uploads.add(upload, Pending(body, tuple(names), time.monotonic() + lifetime(seconds)))
    return {"upload": upload, "files": files, "expires": seconds}


def commit(repository: Repository, pending: Pending) -> dict[str, Any]:
    """Store a signed put's staged files once each is checked (see the module docs)."""
    butler, body = repository.butler, pending.begin
    staged = []
    try:
        for name, size, md5, checksum in zip(
            pending.names, body.sizes, body.md5s, body.checksums, strict=True
        ):
            staged.append(butler.datastore.staged(name, size=size, md5=md5, checksum=checksum))
        items = [(obj, models.data_id(raw)) for obj, raw in zip(staged, body.data_ids, strict=True)]
        if body.many:
            refs = butler.put_many(body.dataset_type, items, overwrite=body.overwrite, run=body.run)
        else:
            obj, data_id = items[0]
            refs = [
                butler.put(obj, body.dataset_type, data_id, overwrite=body.overwrite, run=body.run)
            ]
    except BaseException:
        for name in pending.names:  # what was not published (a published one is moved)
            butler.datastore.unstage(name)
        raise
    return {"refs": wire.encode(refs)}


def add_signed_routes(
    app: FastAPI,
    lookup: Callable[..., Repository],
    answer: Callable[[Repository, Request, Callable[[], Any]], JSONResponse],
) -> None:
    """``put-begin`` and ``put-commit`` (see the module docs); ``answer(repository,
    request, write)`` runs a write as the server's write routes do."""
    pending_uploads: dict[str, Uploads] = {}

    def uploads_of(repository: Repository) -> Uploads:
        return pending_uploads.setdefault(repository.name, Uploads())

    @app.post(f"/repos/{{repo}}/{wire.API_VERSION}/put-begin")
    def put_begin(body: Begin, request: Request, repo: str) -> Any:
        served = lookup(repo, request, "write")
        return begin(served, uploads_of(served), body)

    @app.post(f"/repos/{{repo}}/{wire.API_VERSION}/put-commit")
    def put_commit(body: Commit, request: Request, repo: str) -> JSONResponse:
        served = lookup(repo, request, "write")
        uploads = uploads_of(served)

        def write() -> Any:
            pending = uploads.take(body.upload)
            expired = pending is not None and pending.expires < time.monotonic()
            if pending is not None and expired:
                for name in pending.names:
                    served.butler.datastore.unstage(name)
            if pending is None or expired:
                raise DatasetNotFoundError(
                    f"no signed put {body.upload!r} is waiting for its commit in repository "
                    f"{served.name!r}: it was committed already, or it expired (after "
                    f"{lifetime(served.limits.signed_seconds)} s); nothing was recorded, "
                    "put again"
                )
            return commit(served, pending)

        return answer(served, request, write)
