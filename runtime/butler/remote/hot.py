"""The server's hot routes, answered in front of FastAPI: ``POST .../v1/get``, ``exists`` and
``put`` of a served repository.

A small get costs the Butler some 60 µs; FastAPI's routing, dependency injection and the
thread pool hop of a ``def`` route cost several times that. These three routes are
answered here instead, as plain ASGI: the path split once, the token checked as every
route checks it (:meth:`Repository.authorize_token`), the body validated by the same
pydantic model the OpenAPI schema names (:class:`butler.remote.models.Target`), the
repository's own methods called, and errors answered as the application's handlers
answer them.

A get or exists of a repository whose reads are all quick local work (:func:`quick`: an
SQLite registry in WAL mode, whose readers never wait for a writer, and files on local
storage, in it and every parent of its chain) runs on the event loop itself: on a loaded
machine the hop to a worker thread and back costs more CPU than the read (0.2–0.5 ms
against 0.1 ms). Any other repository's reads (PostgreSQL, object storage, a remote
parent, which could be this very server) run in the thread pool, as a FastAPI ``def``
route does, and so does every put. A file over 1 MiB is streamed from the thread pool
either way. The routes stay declared on the FastAPI application too, so
the schema describes them and anything this does not take (another method, an unknown
repository) gets FastAPI's answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import models, wire

if TYPE_CHECKING:
    from ..butler import Butler
    from .server import Repository

__all__ = ["HotRoutes", "quick", "validation_message"]

ROUTES = ("get", "exists", "put")
JSON = "application/json"


def validation_message(path: str, errors: list[Any]) -> str:
    """The message of a 422 for a body that does not validate (the first few problems)."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]
    )
    return f"invalid request to {path}: {problems}"


class HotRoutes:
    """ASGI middleware answering the hot routes of ``served`` (see the module docs);
    ``lookup(name, token, scope)`` is the repository a token may use (or raises),
    ``failure(error, name)`` the response for an error the application answers, for the
    repository served as ``name`` (None: not one)."""

    def __init__(
        self,
        app: ASGIApp,
        lookup: Callable[[str, str | None, str], Repository | None],
        failure: Callable[[Exception, str], Response | None],
    ) -> None:
        self.app, self.lookup, self.failure = app, lookup, failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = scope["path"].split("/")  # "", "repos", name, "v1", route
            if (
                len(parts) == 5
                and parts[1] == "repos"
                and parts[3] == wire.API_VERSION
                and parts[4] in ROUTES
            ):
                try:
                    response = await self._answer(scope, receive, parts[2], parts[4])
                except ValidationError as error:
                    message = validation_message(scope["path"], error.errors())
                    body = {"error": {"type": "ButlerError", "message": message}}
                    response = Response(_json(body), 422, media_type=JSON)
                except Exception as error:
                    failed = self.failure(error, parts[2])
                    if failed is None:
                        raise
                    response = failed
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, scope: Scope, receive: Receive, name: str, route: str
    ) -> Response | None:
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
        served = self.lookup(name, token, "write" if route == "put" else "read")
        if served is None:
            return None  # not served here: FastAPI answers (404)
        body = await _body(receive)
        if route == "put":
            key = headers.get(wire.IDEMPOTENCY_HEADER.lower().encode())
            transaction = headers.get(wire.TRANSACTION_HEADER.lower().encode())
            status, answer = await run_in_threadpool(
                served.write,
                None if transaction is None else transaction.decode("latin-1"),
                None if key is None else key.decode("latin-1"),
                lambda: served.put(body),
            )
            return Response(_json(answer), status, media_type=JSON)
        target = models.Target.model_validate_json(body)
        if route == "exists":
            if served.quick:
                exists = served.butler.exists(*target.args())
            else:
                exists = await run_in_threadpool(served.butler.exists, *target.args())
            return Response(b'{"exists":true}' if exists else b'{"exists":false}', media_type=JSON)
        if served.quick:
            return served.get(target)
        response: Response = await run_in_threadpool(served.get, target)
        return response


def quick(butler: Butler) -> bool:
    """Whether ``butler``'s reads are quick local work, fit to run on the event loop: an
    SQLite registry and local files, in it and in every parent of its chain."""
    for member in (butler, *butler.chain.parents):
        registry = getattr(member, "registry", None)  # a remote parent has none
        datastore = getattr(member, "datastore", None)
        if registry is None or datastore is None:
            return False
        if not registry.url.startswith("sqlite") or datastore.scheme not in ("", "file"):
            return False
    return True


async def _body(receive: Receive) -> bytes:
    """The request's body (its size was checked against the limits before)."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


def _json(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
