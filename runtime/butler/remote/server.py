"""The Butler server: one or more repositories over HTTP, as an ASGI application (FastAPI).

    app = create_app({"hsc": Path("/data/hsc")})     # or: butler serve /data/hsc

Every route of a repository is under ``/repos/<name>/v1/`` and needs a Bearer token of
that repository (:mod:`butler.remote.tokens`): 401 without one, 403 for a read token
that writes. Requests name datasets by dataset type and data ID, or by ref; none
carries a path: the server normalizes every data ID with the repository's mapper,
places each file where its policy says and commits the registry rows itself. An
upload is read back with its format's formatter before anything is stored.

Errors are JSON, ``{"error": {"type": <butler.errors class>, "message": ...}}``
(:mod:`butler.remote.wire`); the OpenAPI schema is at ``/openapi.json`` and its pages
at ``/docs``. See docs/remote.md.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ..butler import Butler
from ..dataid import DataId
from ..errors import (
    ButlerError,
    DatasetCorruptError,
    DatasetNotFoundError,
    FormatError,
    InvalidDataIdError,
    RemoteError,
)
from ..image import BBox
from ..refs import DatasetRef
from . import models, wire
from .hot import HotRoutes, quick, validation_message
from .links import add_datalink_routes, dataset_id, dataset_path
from .redact import ANONYMOUS, Redaction
from .signed import add_signed_routes, redirect, stored_tokens
from .streams import QueryStream, Slots
from .tokens import TOKEN_FILE, TokenStore
from .transactions import Transactions

__all__ = ["Limits", "Repository", "answer", "create_app", "repository_names"]

PREFIX = f"/repos/{{repo}}/{wire.API_VERSION}"
#: Bytes of a file sent in one piece; larger ones are streamed in chunks this size.
CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    #: The largest body of a JSON request.
    request_bytes: int = 1 << 20
    #: The largest body of a put (all its files together).
    upload_bytes: int = 1 << 30
    #: Streaming queries running at once; past that, 503 with Retry-After.
    streams: int = 8
    #: How many recent idempotency keys each repository remembers.
    idempotency_keys: int = 10_000
    #: How long a signed URL of object storage lives (a download's redirect, an upload).
    signed_seconds: int = 300


class Refused(Exception):
    """A request refused before it reached the repository (token, size, load)."""

    def __init__(self, status: int, kind: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers


def repository_names(roots: list[Path | str]) -> dict[str, Path | str]:
    """Each root by its folder's name (an ``s3://`` URL's last part); ButlerError if two
    share one."""
    named: dict[str, Path | str] = {}
    for given in roots:
        root = given if isinstance(given, str) else given.absolute()
        name = root.rstrip("/").rsplit("/", 1)[-1] if isinstance(root, str) else root.name
        if name in named:
            raise ButlerError(
                f"two served repositories are named {name!r} ({named[name]}, {root}); serve "
                "them as NAME=ROOT to tell them apart"
            )
        named[name] = root
    return named


class Repository:
    """One served repository: its Butler, tokens, write lock and recent idempotency keys."""

    def __init__(self, name: str, root: Path | str, limits: Limits) -> None:
        self.name = name
        self.butler = Butler(root)
        self._stored_tokens = stored_tokens(self.butler)
        #: How its errors name it instead of the server's paths (butler.remote.redact).
        self.redaction = _redaction(name, self.butler)
        self.limits = limits
        self.slots = Slots(limits.streams)
        self._write_lock = threading.Lock()
        self.transactions = Transactions(self.butler, self._write_lock, self.redaction.text)
        self._recent: collections.OrderedDict[str, tuple[int, Any]] = collections.OrderedDict()
        self._tokens = TokenStore({})
        self._token_file = str(self.butler.root / TOKEN_FILE)
        self._tokens_seen: float | None = None
        #: The scope of each valid token seen since the token file last changed (no hash
        #: per request; unknown tokens are not kept, so guessing cannot grow it).
        self._granted: dict[str, str] = {}
        self._info: dict[str, Any] | None = None
        #: Whether its reads are answered on the event loop (see butler.remote.hot).
        self.quick = quick(self.butler)
        #: Where uploads are written to be read back (one folder, not one per put).
        self._scratch = tempfile.mkdtemp(prefix="butler-upload-")

    def close(self) -> None:
        """Close the Butler and remove the upload folder."""
        self.butler.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def tokens(self) -> TokenStore:
        """The token file, read again when it changed (`butler token create` while serving)."""
        if self._stored_tokens is not None:  # object storage: read again every few seconds
            self._tokens, changed = self._stored_tokens.read()
            if changed:
                self._granted = {}
            return self._tokens
        try:
            stamp = os.stat(self._token_file).st_mtime
        except OSError:
            stamp = None
        if stamp != self._tokens_seen:
            self._tokens, self._tokens_seen = TokenStore.read(self.butler.root), stamp
            self._granted = {}
        return self._tokens

    def scope_of(self, token: str | None) -> str | None:
        """The scope ``token`` grants here (None: none), cached per valid token."""
        store = self.tokens()
        if token is None:
            return None
        granted = self._granted.get(token)
        if granted is None:
            granted = store.scope(token)
            if granted is not None:
                self._granted[token] = granted
        return granted

    def authorize(self, request: Request, scope: str, *, query_token: bool = False) -> None:
        """Refused (401, 403) unless the request's Bearer token grants ``scope`` here; with
        ``query_token`` (the DataLink GET routes, which only read) a ``token`` query
        parameter is taken when there is no Authorization header."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        if token is None and query_token and scope == "read":
            token = request.query_params.get("token")
        self.authorize_token(token, scope)

    def authorize_token(self, token: str | None, scope: str) -> None:
        """Refused (401, 403) unless ``token`` grants ``scope`` here."""
        granted = self.scope_of(token)
        if granted is None:
            raise Refused(
                401,
                "RemoteError",
                f"repository {self.name!r} needs a valid token (Authorization: Bearer ...); "
                f"its owner makes one with `butler token create ROOT --scope read`",
                **{"WWW-Authenticate": "Bearer"},
            )
        if scope == "write" and granted != "write":
            raise Refused(
                403,
                "ReadOnlyError",
                f"the token given grants only read access to repository {self.name!r}; "
                "writing needs a token made with `butler token create ROOT --scope write`",
            )

    def write(
        self, transaction: str | None, key: str | None, write: Callable[[], Any]
    ) -> tuple[int, Any]:
        """Run ``write`` as part of remote ``transaction``, or else once per idempotency
        ``key``; the status and JSON body of its answer."""
        if transaction is not None:
            answer = self.transactions.send(transaction, write)
        else:
            answer = self.once(key, write)
        self.changed()
        return answer

    def once(self, key: str | None, write: Callable[[], Any]) -> tuple[int, Any]:
        """Run ``write`` (under the write lock), or, for an idempotency key seen recently,
        answer as that write was answered."""
        with self._write_lock:
            if key is not None and key in self._recent:
                return self._recent[key]
            try:
                answer: tuple[int, Any] = (200, write())
            except ButlerError as error:
                answer = (wire.status_of(error), wire.error_body(error, self.redaction.text))
            if key is not None:
                self._recent[key] = answer
                while len(self._recent) > self.limits.idempotency_keys:
                    self._recent.popitem(last=False)
            return answer

    def changed(self) -> None:
        """Forget the :meth:`info` answered (a dataset type was registered)."""
        self._info = None

    def info(self) -> dict[str, Any]:
        """The repository's id and its dataset types, as the client needs them to read and
        write their files."""
        if self._info is not None:
            return self._info
        butler = self.butler
        types = []
        for name in butler.dataset_types:
            plan = butler.plan(name)
            spec, fmt = plan.spec, plan.format
            types.append(
                {
                    "name": name,
                    "keys": list(spec.keys),
                    "key_types": butler.mapper.keys(name),
                    "format": fmt.name,
                    "formatter": fmt.formatter,
                    "python_type": fmt.python_type,
                    "compress": plan.compress,
                    "hdu": spec.hdu,
                    "calibration": spec.calibration is not None,
                }
            )
        self._info = {
            "name": self.name,
            "id": butler.repository_id,
            "instrument": butler.mapper.name,
            "writeable": butler.writeable,
            "api": wire.API_VERSION,
            "signed_urls": butler.datastore.signs_urls,
            "dataset_types": types,
        }
        return self._info

    # ---- reading -------------------------------------------------------------------------------

    def get(self, target: models.Target) -> Response:
        """The stored file of a dataset, with the format to read it by in a header."""
        return self.download(*target.args())

    def download(
        self,
        dataset_type: str | DatasetRef,
        data_id: DataId | None,
        media_type: str | None = None,
    ) -> Response:
        """The stored file of a dataset (as ``media_type``), with the format to read it by
        in a header."""
        plan, found = self.butler.locate(dataset_type, data_id)
        holder = found.repository.local()
        if holder is None:  # the chain's parent is served elsewhere: no file here to stream
            raise RemoteError(
                f"dataset {plan.spec.name!r} {wire.encode(found.data_id)} is stored in parent "
                f"repository {found.repository.address}, which is served; read it there"
            )
        if found.ref is not None:  # a local parent's: its own find, with its path
            plan, found = holder.locate(found.ref)
        hdu = holder.hdu(plan, found.data_id)
        header = {
            "formatter": plan.format.formatter,
            "python_type": plan.format.python_type,
            "hdu": hdu,
            "data_id": wire.encode(found.data_id),
        }
        headers = {"X-Butler-Format": json.dumps(header)}
        signed = redirect(self, holder, plan, found, headers)  # object storage: 307 to the store
        if signed is not None:
            return signed
        location = holder.datastore.location(found.path)
        if not isinstance(location, Path):
            raise RemoteError(
                f"dataset {plan.spec.name!r} {wire.encode(found.data_id)} is not on local "
                f"storage ({location}), which is all the repository served as {self.name!r} "
                "streams"
            )
        try:
            stream = location.open("rb")
        except FileNotFoundError:
            raise DatasetNotFoundError(
                f"dataset {plan.spec.name!r} {wire.encode(found.data_id)} is recorded, but its "
                f"file is missing from the repository served as {self.name!r}"
            ) from None
        size = os.fstat(stream.fileno()).st_size
        if found.size is not None and size != found.size:
            stream.close()
            raise DatasetCorruptError(
                f"dataset {plan.spec.name!r} {wire.encode(found.data_id)}: its file has {size} "
                f"bytes, but {found.size} were written; it was truncated or changed since "
                f"(the server's administrator runs `butler verify {self.name} --read`)"
            )
        media_type = media_type or "application/octet-stream"
        if size <= CHUNK:
            with stream:
                return Response(stream.read(), media_type=media_type, headers=headers)
        headers["Content-Length"] = str(size)
        return StreamingResponse(_chunks(stream), media_type=media_type, headers=headers)

    async def query(self, make: Callable[[], Any]) -> StreamingResponse:
        """``make()``'s values as JSON Lines, streamed (see butler.remote.streams)."""
        if not self.slots.take():
            raise Refused(
                503,
                "RemoteError",
                f"repository {self.name!r} is running {self.limits.streams} queries already; "
                "try again in a moment",
                **{"Retry-After": "1"},
            )
        stream = QueryStream(make, self.slots.give, asyncio.get_running_loop(), self.redaction.text)
        await stream.first()
        return StreamingResponse(aiter(stream), media_type="application/x-ndjson")

    # ---- writing -------------------------------------------------------------------------------

    def put(self, body: bytes) -> dict[str, Any]:
        """Store the objects a put uploaded; their refs."""
        meta, blobs = _split_upload(body)
        butler = self.butler
        dataset_type = meta["dataset_type"]
        if not isinstance(dataset_type, str):
            raise InvalidDataIdError("a put names its dataset type")
        plan = butler.plan(dataset_type)
        butler.check_writeable(f"put {dataset_type!r}")
        items = []
        for raw, blob in zip(meta["data_ids"], blobs, strict=True):
            data_id = models.data_id(raw)
            normalized = butler.normalize(data_id, {})
            hdu = butler.hdu(plan, normalized) if _has_hdu(plan.spec.hdu, normalized) else None
            try:
                obj = self._read_upload(plan, blob, hdu)
            except (ButlerError, OSError, ValueError, TypeError, KeyError) as error:
                raise FormatError(
                    f"the upload for {dataset_type!r} {raw!r} does not read as format "
                    f"{plan.format.name!r}: {error}; nothing was stored"
                ) from None
            items.append((obj, data_id))
        overwrite, run = meta["overwrite"] is True, meta.get("run")
        if not isinstance(run, str | None):
            raise InvalidDataIdError("a run is a name")
        if meta.get("many"):
            refs = butler.put_many(dataset_type, items, overwrite=overwrite, run=run)
        else:
            if len(items) != 1:
                raise InvalidDataIdError("a put stores one object")
            obj, data_id = items[0]
            refs = [butler.put(obj, dataset_type, data_id, overwrite=overwrite, run=run)]
        return {"refs": wire.encode(refs)}

    def _read_upload(self, plan: Any, blob: bytes, hdu: int | str | None) -> Any:
        """An uploaded file read back with its format's formatter (from a file of its own
        in the scratch folder, removed after)."""
        fd, name = tempfile.mkstemp(dir=self._scratch)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(blob)
            return plan.formatter.read(Path(name), python_type=plan.format.python_type, hdu=hdu)
        finally:
            os.unlink(name)


def _redaction(name: str, butler: Butler) -> Redaction:
    """The redaction of the repository served as ``name``: its chain's roots and registries."""
    members = [(name, butler.root, butler.registry.url)]
    for parent in butler.chain.parents:
        local = parent.local()  # a served parent's URL is no path of this server
        if local is not None:
            members.append((Path(str(local.root)).name, local.root, local.registry.url))
    return Redaction.of(
        [(shown, root) for shown, root, _ in members],
        [(shown, url) for shown, _, url in members],
    )


def _has_hdu(hdu: object, data_id: Mapping[str, object]) -> bool:
    return not isinstance(hdu, str) or hdu in data_id


def _chunks(stream: Any) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _split_upload(body: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """A put's body: a line of JSON (dataset type, data IDs, sizes, options), then the files."""
    line, newline, rest = body.partition(b"\n")
    try:
        meta = json.loads(line) if newline else None
    except ValueError:
        meta = None
    sizes = meta.get("sizes") if isinstance(meta, dict) else None
    if (
        not isinstance(meta, dict)
        or not isinstance(sizes, list)
        or not all(type(s) is int and s >= 0 for s in sizes)
        or not isinstance(meta.get("data_ids"), list)
        or len(meta["data_ids"]) != len(sizes)
        or sum(sizes) != len(rest)
    ):
        raise InvalidDataIdError(
            "a put's body is a line of JSON (dataset_type, data_ids, sizes) then the files, "
            "whose sizes add up to the rest of the body"
        )
    blobs, start = [], 0
    for size in sizes:
        blobs.append(rest[start : start + size])
        start += size
    meta.setdefault("overwrite", False)
    return meta, blobs


class _SizeLimit:
    """ASGI middleware: 413 for a body over the limit (uploads have their own), 411 for a
    body without a Content-Length."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            upload = scope["path"].endswith("/put")
            limit = self.limits.upload_bytes if upload else self.limits.request_bytes
            problem = None
            if length is None or not length.isdigit():
                problem = (411, "a request body needs a Content-Length")
            elif int(length) > limit:
                problem = (413, f"a request body is at most {limit} bytes; this one has {length}")
            if problem is not None:
                response = JSONResponse(
                    {"error": {"type": "RemoteError", "message": problem[1]}}, problem[0]
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(roots: Mapping[str, Path | str], limits: Limits | None = None) -> FastAPI:
    """The application serving the repositories of ``roots`` (name -> root)."""
    limits = limits or Limits()
    served: dict[str, Repository] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for repository in served.values():
            repository.close()

    app = FastAPI(
        title="Butler",
        version=wire.API_VERSION,
        summary="Datasets by name and data ID, read and written over HTTP (docs/remote.md)",
        lifespan=lifespan,
    )
    try:
        for name, root in roots.items():
            served[name] = Repository(name, root, limits)
    except BaseException:
        for repository in served.values():
            repository.close()
        raise

    def hot_lookup(name: str, token: str | None, scope: str) -> Repository | None:
        repository = served.get(name)
        if repository is not None:
            repository.authorize_token(token, scope)
        return repository

    def hot_failure(error: Exception, name: str) -> JSONResponse | None:
        repository = served.get(name)
        return _error_response(error, (repository.redaction if repository else ANONYMOUS).text)

    # the hot routes before FastAPI's routing, the size limits before both
    app.add_middleware(HotRoutes, lookup=hot_lookup, failure=hot_failure)
    app.add_middleware(_SizeLimit, limits=limits)
    _add_error_handlers(app, served)

    def lookup(
        name: str, request: Request, scope: str = "read", *, query_token: bool = False
    ) -> Repository:
        repository = served.get(name)
        if repository is None:
            raise Refused(404, "RepositoryError", f"no repository named {name!r} is served here")
        repository.authorize(request, scope, query_token=query_token)
        return repository

    app.state.repository = lookup

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "api": wire.API_VERSION}

    @app.get(f"{PREFIX}/repository")
    def info(repo: str, request: Request) -> dict[str, Any]:
        return lookup(repo, request).info()

    _add_read_routes(app, lookup)
    _add_write_routes(app, lookup)
    add_signed_routes(app, lookup, answer)
    add_datalink_routes(app, lookup)
    return app


def _add_read_routes(app: FastAPI, lookup: Callable[..., Repository]) -> None:
    @app.post(f"{PREFIX}/get")
    def get(target: models.Target, request: Request, repo: str) -> Response:
        return lookup(repo, request).get(target)

    @app.post(f"{PREFIX}/get-metadata")
    def get_metadata(target: models.Target, request: Request, repo: str) -> Any:
        metadata = lookup(repo, request).butler.get_metadata(*target.args())
        return {"metadata": wire.encode(metadata)}

    @app.post(f"{PREFIX}/get-section")
    def get_section(body: models.Section, request: Request, repo: str) -> Response:
        import io

        import numpy as np

        butler = lookup(repo, request).butler
        x0, y0, x1, y1 = body.bbox
        ref, data_id = body.args()
        pixels = butler.get_section(ref, BBox(x0, y0, x1, y1), data_id)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(pixels), allow_pickle=False)
        return Response(buffer.getvalue(), media_type="application/x-npy")

    @app.post(f"{PREFIX}/get-table-info")
    def get_table_info(target: models.Target, request: Request, repo: str) -> Any:
        info = lookup(repo, request).butler.get_table_info(*target.args())
        return {"length": info.length, "columns": info.columns}

    @app.post(f"{PREFIX}/exists")
    def exists(target: models.Target, request: Request, repo: str) -> Any:
        return {"exists": lookup(repo, request).butler.exists(*target.args())}

    @app.post(f"{PREFIX}/uri")
    def uri(target: models.Target, request: Request, repo: str) -> Any:
        # the download URL, never the server's own path of the file
        found = dataset_id(lookup(repo, request).butler, *target.args())
        return {"uri": f"{request.base_url}{dataset_path(repo, found)}"}

    @app.post(f"{PREFIX}/explain")
    def explain(body: models.FindCalibration, request: Request, repo: str) -> Any:
        butler = lookup(repo, request).butler
        return {"text": butler.explain(body.dataset_type, models.data_id(body.data_id))}

    @app.post(f"{PREFIX}/find-ref")
    def find_ref(target: models.Target, request: Request, repo: str) -> Any:
        # what a chain whose parent this repository is asks (butler.member.ChainMember)
        dataset_type, data_id = target.args()
        if isinstance(dataset_type, DatasetRef):
            raise InvalidDataIdError("find-ref takes a dataset type and a data ID, not a ref")
        found = lookup(repo, request).butler.find_ref(dataset_type, data_id)
        return {"ref": wire.encode(found)}

    @app.post(f"{PREFIX}/get-ref")
    def get_ref(body: models.RefText, request: Request, repo: str) -> Any:
        return {"ref": wire.encode(lookup(repo, request).butler.get_ref(body.text))}

    @app.post(f"{PREFIX}/query")
    async def query(body: models.Query, request: Request, repo: str) -> Response:
        served = lookup(repo, request)

        def make() -> Any:
            return served.butler.query(
                body.dataset_type,
                models.data_id(body.data_id, collections=True),
                order_by=body.order_by,
                limit=body.limit,
                **body.selection(),
            )

        return await served.query(make)

    @app.post(f"{PREFIX}/query-datasets")
    async def query_datasets(body: models.Query, request: Request, repo: str) -> Response:
        served = lookup(repo, request)

        def make() -> Any:
            args, keywords = body.arguments()
            return served.butler.query_datasets(*args, **keywords)

        return await served.query(make)

    @app.post(f"{PREFIX}/query-values")
    async def query_values(body: models.ValuesQuery, request: Request, repo: str) -> Any:
        served = lookup(repo, request)

        def make() -> Any:
            return served.butler.query_values(
                body.dataset_type,
                body.key,
                models.data_id(body.data_id, collections=True),
                **body.selection(),
            )

        return await served.query(make)

    @app.post(f"{PREFIX}/count")
    def count(body: models.Query, request: Request, repo: str) -> Any:
        butler = lookup(repo, request).butler
        data_id = models.data_id(body.data_id, collections=True)
        return {"count": butler.count(body.dataset_type, data_id, **body.selection())}

    @app.post(f"{PREFIX}/find-calibration")
    def find_calibration(body: models.FindCalibration, request: Request, repo: str) -> Any:
        butler = lookup(repo, request).butler
        found = butler.find_calibration(
            body.dataset_type, models.data_id(body.data_id), as_of=models.value(body.as_of)
        )
        return {"calibration": wire.encode(found)}

    @app.post(f"{PREFIX}/calibration-history")
    def calibration_history(body: models.CalibrationQuery, request: Request, repo: str) -> Any:
        butler = lookup(repo, request).butler
        history = butler.calibration_history(
            body.dataset_type,
            models.data_id(body.data_id) if body.data_id else None,
            as_of=models.value(body.as_of),
            include_closed=body.include_closed,
        )
        return {"certifications": wire.encode(history)}


def answer(served: Repository, request: Request, write: Callable[[], Any]) -> JSONResponse:
    """The answer of a write: done in the request's transaction, or once per idempotency key."""
    headers = request.headers
    status, body = served.write(
        headers.get(wire.TRANSACTION_HEADER), headers.get(wire.IDEMPOTENCY_HEADER), write
    )
    return JSONResponse(body, status)


def _add_write_routes(app: FastAPI, lookup: Callable[..., Repository]) -> None:

    @app.post(f"{PREFIX}/transactions")
    def begin(request: Request, repo: str) -> Any:
        return {"transaction": lookup(repo, request, "write").transactions.begin()}

    @app.post(f"{PREFIX}/transactions/{{transaction}}/{{end}}")
    def end(transaction: str, end: str, request: Request, repo: str) -> JSONResponse:
        served = lookup(repo, request, "write")
        if end not in ("commit", "rollback"):
            raise Refused(404, "RemoteError", "a transaction ends with commit or rollback")
        status, body = served.transactions.send(transaction, end)
        return JSONResponse(body, status)

    @app.post(f"{PREFIX}/put")
    async def put(request: Request, repo: str) -> JSONResponse:
        served = lookup(repo, request, "write")  # before the upload is read
        body = await request.body()
        return await run_in_threadpool(answer, served, request, lambda: served.put(body))

    @app.post(f"{PREFIX}/remove")
    def remove(target: models.Target, request: Request, repo: str) -> JSONResponse:
        served = lookup(repo, request, "write")

        def write() -> Any:
            served.butler.remove(*target.args())
            return {}

        return answer(served, request, write)

    @app.post(f"{PREFIX}/certify")
    def certify(body: models.Certify, request: Request, repo: str) -> JSONResponse:
        served = lookup(repo, request, "write")

        def write() -> Any:
            made = served.butler.certify(
                body.dataset_type,
                models.data_id(body.data_id),
                models.value(body.valid_from),
                models.value(body.valid_to),
                supersede=body.supersede,
                source=body.source,
            )
            return {"certification": wire.encode(made)}

        return answer(served, request, write)

    @app.post(f"{PREFIX}/decertify")
    def decertify(body: models.Decertify, request: Request, repo: str) -> JSONResponse:
        served = lookup(repo, request, "write")

        def write() -> Any:
            closed = served.butler.decertify(
                body.dataset_type,
                models.data_id(body.data_id),
                models.value(body.valid_from),
                models.value(body.valid_to),
            )
            return {"certifications": wire.encode(closed)}

        return answer(served, request, write)

    @app.post(f"{PREFIX}/register-dataset-type")
    def register_dataset_type(
        body: models.RegisterDatasetType, request: Request, repo: str
    ) -> JSONResponse:
        served = lookup(repo, request, "write")

        def write() -> Any:
            served.butler.register_dataset_type(
                body.name,
                template=body.template,
                format=body.format,
                keys=body.keys,
                doc=body.doc,
                text=body.text,
            )
            return {}

        return answer(served, request, write)


def _error_response(
    error: Exception, clean: Callable[[str], str] | None = None
) -> JSONResponse | None:
    """The answer to a ButlerError or a refusal (None for any other exception); ``clean``
    rewrites a ButlerError's message (the repository's redaction of server paths)."""
    if isinstance(error, ButlerError):
        return JSONResponse(wire.error_body(error, clean), wire.status_of(error))
    if isinstance(error, Refused):
        return _refused(error)
    return None


def _refused(error: Refused) -> JSONResponse:
    body = {"error": {"type": error.kind, "message": str(error)}}
    return JSONResponse(body, error.status, headers=error.headers)


def _add_error_handlers(app: FastAPI, served: Mapping[str, Repository]) -> None:
    @app.exception_handler(ButlerError)
    async def butler_error(request: Request, error: ButlerError) -> JSONResponse:
        repository = served.get(str(request.path_params.get("repo", "")))
        redaction = ANONYMOUS if repository is None else repository.redaction
        return JSONResponse(wire.error_body(error, redaction.text), wire.status_of(error))

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        return _refused(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        message = validation_message(request.url.path, list(error.errors()))
        return JSONResponse({"error": {"type": "ButlerError", "message": message}}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        body = {"error": {"type": "RemoteError", "message": f"{request.url.path}: {error.detail}"}}
        return JSONResponse(body, error.status_code)
