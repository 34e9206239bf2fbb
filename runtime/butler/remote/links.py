"""The server's DataLink routes: link tables, downloads and previews by dataset id.

    GET /repos/<name>/datalink?ID=<ref text>[&ID=...][&as_of=...]   a DataLink 1.1 VOTable
    GET /repos/<name>/v1/datasets/<dataset-uuid>                    the dataset's file
    GET /repos/<name>/v1/datasets/<dataset-uuid>/preview[?size=N]   a PNG of an image

A VO client (pyvo, TOPCAT) sends no ``Authorization`` header, so these three GET routes,
and only these, also take the read token as a ``token`` query parameter; a link table
asked for with ``?token=`` carries the same parameter in its access URLs, so the client
can follow them. Every route here reads: a token in a URL never grants a write (and a
URL lands in logs, so an operator gives VO users a read token of their own). The tables
are built by :mod:`butler.datalink`; failures here answer ``text/plain`` with the
DataLink fault prefixes (``NotFoundFault``, ``UsageFault``), which a VO client shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from ..butler import Butler
from ..datalink import CONTENT_TYPE, MEDIA_TYPES, LinkURLs, datalink_votable
from ..errors import ButlerError, DatasetNotFoundError, FormatError, InvalidDataIdError
from ..preview import DEFAULT_SIZE, preview_png
from ..refs import DatasetRef
from . import wire

if TYPE_CHECKING:
    from .server import Repository

__all__ = ["add_datalink_routes", "dataset_id", "dataset_path", "find_by_id"]

#: The largest preview a client may ask for, in pixels on its longer side.
MAX_PREVIEW = 2048


def dataset_path(repository: str, dataset: str) -> str:
    """The path (under the server's base URL) of a dataset's download route."""
    return f"repos/{repository}/{wire.API_VERSION}/datasets/{dataset}"


def find_by_id(butler: Butler, text: str) -> DatasetRef:
    """The ref of the stored dataset with id ``text``, in ``butler``'s chain;
    InvalidDataIdError if it is not a UUID, DatasetNotFoundError if none is stored."""
    try:
        dataset = str(uuid.UUID(text))
    except ValueError:
        raise InvalidDataIdError(f"{text!r} is not a dataset id (a UUID)") from None
    for member in (butler, *butler.chain.parents):
        try:
            return butler.get_ref(f"butler:{member.repository_id}/{dataset}")
        except DatasetNotFoundError:
            continue
    raise DatasetNotFoundError(
        f"no dataset with id {dataset} is stored here: it was removed, or overwritten, which "
        "records a new id"
    )


def dataset_id(butler: Butler, dataset_type: str | DatasetRef, data_id: Any) -> str:
    """The id of the stored dataset a get of these arguments would read;
    DatasetNotFoundError if none is stored."""
    if isinstance(dataset_type, DatasetRef):
        butler.locate(dataset_type)  # stale or foreign refs fail here
        return dataset_type.id
    plan, found = butler.locate(dataset_type, data_id)
    if found.dataset_id is not None:
        return found.dataset_id
    name = plan.spec.name  # found by data ID in the repository itself (a parent's has an id)
    keys = butler.mapper.keys(name)
    complete = {k: v for k, v in found.data_id.items() if k in keys}
    ref = next(butler.query_datasets(name, complete), None)
    if ref is None:
        raise DatasetNotFoundError(f"dataset {name!r} {complete} is not recorded with an id")
    return ref.id


def _fault(error: ButlerError, repository: Repository) -> PlainTextResponse:
    message = repository.redaction.text(str(error))  # no server path (butler.remote.redact)
    if isinstance(error, DatasetNotFoundError):
        return PlainTextResponse(f"NotFoundFault: {message}", 404)
    if isinstance(error, InvalidDataIdError | FormatError):
        return PlainTextResponse(f"UsageFault: {message}", 400)
    return PlainTextResponse(f"DefaultFault: {message}", wire.status_of(error))


def add_datalink_routes(app: FastAPI, lookup: Callable[..., Repository]) -> None:
    """The DataLink, download and preview routes; ``lookup(name, request, "read",
    query_token=True)`` finds and authorizes a repository."""

    def served(repo: str, request: Request) -> Repository:
        return lookup(repo, request, "read", query_token=True)

    @app.get("/repos/{repo}/datalink", response_class=Response)
    def datalink(repo: str, request: Request) -> Response:
        repository = served(repo, request)
        ids = request.query_params.getlist("ID")
        if not ids:
            return PlainTextResponse("UsageFault: name at least one dataset: ?ID=<ref text>", 400)
        token = request.query_params.get("token")
        tail = f"?token={quote(token, safe='')}" if token else ""
        base = str(request.base_url)

        def access(ref: DatasetRef) -> str:
            return f"{base}{dataset_path(repo, ref.id)}{tail}"

        def preview(ref: DatasetRef) -> str:
            return f"{base}{dataset_path(repo, ref.id)}/preview{tail}"

        as_of = request.query_params.get("as_of") or None
        body = datalink_votable(repository.butler, ids, LinkURLs(access, preview), as_of=as_of)
        if b"/" in body:  # its error rows' messages, like every error, name no server path
            body = repository.redaction.text(body.decode()).encode()
        return Response(body, media_type=CONTENT_TYPE)

    @app.get(f"/repos/{{repo}}/{wire.API_VERSION}/datasets/{{dataset}}", response_class=Response)
    def download(repo: str, dataset: str, request: Request) -> Response:
        repository = served(repo, request)
        try:
            ref = find_by_id(repository.butler, dataset)
            formatter = repository.butler.plan(ref.dataset_type).format.formatter
            return repository.download(ref, None, MEDIA_TYPES.get(formatter))
        except ButlerError as error:
            return _fault(error, repository)

    @app.get(
        f"/repos/{{repo}}/{wire.API_VERSION}/datasets/{{dataset}}/preview",
        response_class=Response,
    )
    def preview(repo: str, dataset: str, request: Request) -> Response:
        repository = served(repo, request)
        size = request.query_params.get("size", str(DEFAULT_SIZE))
        if not size.isdigit() or not 1 <= int(size) <= MAX_PREVIEW:
            return PlainTextResponse(
                f"UsageFault: a preview's size is a whole number from 1 to {MAX_PREVIEW}", 400
            )
        try:
            ref = find_by_id(repository.butler, dataset)
            png = preview_png(repository.butler.get(ref), size=int(size))
        except ButlerError as error:
            return _fault(error, repository)
        return Response(png, media_type="image/png")
