"""The client's HTTP: one httpx connection pool per remote Butler, timeouts, and retries
where they are safe.

A read is retried (with backoff: 0.1 s, 0.4 s, 1.6 s) when the server cannot be reached
or answers 502, 503 (after its ``Retry-After``, at most 5 s) or 504. A write carries an
idempotency key, the same on each try, so it is retried too, but only when the request
may not have arrived (no connection, a timeout): the server answers a key it has seen as
it answered the first time, so a retried put is not a second put. Any other failure of
the server, and a server that stays away, is a RemoteError naming it; an error the
server describes is raised as its own :mod:`butler.errors` class.

A request that is not streamed goes straight to the client's transport (its pool of
keep-alive connections), with the route's URL parsed once and the token's header built
once: ``httpx.Client.request`` would merge the base URL, headers, cookies, auth and
redirect handling into every request, which costs more than the server's answer to a
small get. Streamed answers go through the ``httpx.Client``, on the same pool.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import ButlerError, RemoteError
from . import wire

__all__ = ["Session"]

#: Pauses before the second, third and fourth tries.
BACKOFF = (0.1, 0.4, 1.6)
RETRIED_STATUS = (502, 503, 504)


class Session:
    """HTTP to one repository at ``url`` (``.../repos/<name>``) with ``token``."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        timeouts = httpx.Timeout(timeout, connect=10.0)
        # a request's headers and body go out in two writes: without TCP_NODELAY the
        # second waits for the server's delayed ACK of the first (40 ms on Linux)
        self._transport = httpx.HTTPTransport(
            retries=0,
            limits=httpx.Limits(max_keepalive_connections=8),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        self._client = httpx.Client(
            base_url=f"{self.url}/{wire.API_VERSION}/",
            headers=headers,
            timeout=timeouts,
            transport=self._transport,
        )
        self._headers = headers
        self._extensions = {"timeout": timeouts.as_dict()}
        self._urls: dict[str, httpx.URL] = {}
        #: The open remote transaction the writes are part of (see butler.remote.transactions).
        self.transaction: str | None = None
        #: The client of the object store's signed URLs: another pool, without the token.
        self._store: httpx.Client | None = None
        self._timeout = timeout

    def close(self) -> None:
        self._client.close()
        if self._store is not None:
            self._store.close()

    def fetch_or_redirect(self, route: str, body: Any) -> httpx.Response:
        """:meth:`fetch`, but a ``307`` (to a signed URL of the object store) is answered,
        not followed."""
        return self._send(route, body, write=False, redirect=True)

    def store(self) -> httpx.Client:
        """The HTTP client for signed URLs of the object store: no Authorization header
        (the token is for the Butler server alone), no redirects followed."""
        if self._store is None:
            self._store = httpx.Client(
                timeout=httpx.Timeout(self._timeout, connect=10.0), follow_redirects=False
            )
        return self._store

    def call(self, route: str, body: Any = None, *, write: bool = False) -> Any:
        """POST ``body`` (JSON) to ``route`` (GET with no body); the JSON answer."""
        response = self._send(route, body, write=write)
        return response.json()

    def fetch(self, route: str, body: Any) -> httpx.Response:
        """POST ``body``; the answer, whose bytes are read."""
        return self._send(route, body, write=False)

    def upload(self, route: str, content: bytes) -> Any:
        """POST ``content`` (a put's body) as a write; the JSON answer."""
        return self._send(route, None, write=True, content=content).json()

    @contextlib.contextmanager
    def stream(self, route: str, body: Any) -> Iterator[Iterator[Any]]:
        """The JSON documents of a streamed answer, read as they are used."""
        for attempt in range(len(BACKOFF) + 1):
            request = self._client.build_request("POST", route, json=body)
            try:
                response = self._client.send(request, stream=True)
            except httpx.TransportError as error:
                self._pause(attempt, None, error)
                continue
            try:
                if response.status_code in RETRIED_STATUS and attempt < len(BACKOFF):
                    response.read()
                    self._pause(attempt, response, None)
                    continue
                if response.status_code != 200:
                    response.read()
                    raise self._error(response)
                yield self._documents(response)
                return
            finally:
                response.close()

    def _documents(self, response: httpx.Response) -> Iterator[Any]:
        try:
            yield from wire.read_json_lines(response.iter_raw())
        except httpx.TransportError as error:
            raise RemoteError(
                f"the Butler server at {self.url} broke off a streamed answer: {error}"
            ) from None

    def _send(
        self,
        route: str,
        body: Any,
        *,
        write: bool,
        content: bytes | None = None,
        redirect: bool = False,
    ) -> httpx.Response:
        headers = {wire.IDEMPOTENCY_HEADER: uuid.uuid4().hex} if write else {}
        tries = len(BACKOFF) + 1
        if write and self.transaction is not None:  # done once: no retry inside a transaction
            headers[wire.TRANSACTION_HEADER] = self.transaction
            tries = 1
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        method = "GET" if content is None else "POST"
        headers.update(self._headers)
        url = self._url(route)
        for attempt in range(tries):
            request = httpx.Request(
                method, url, headers=headers, content=content, extensions=self._extensions
            )
            try:
                response = self._transport.handle_request(request)
                response.request = request
                response.read()
            except httpx.TransportError as error:
                self._pause(attempt if attempt + 1 < tries else len(BACKOFF), None, error)
                continue
            if response.status_code in RETRIED_STATUS and not write and attempt < len(BACKOFF):
                self._pause(attempt, response, None)
                continue
            if response.status_code >= 300 and not (redirect and response.status_code == 307):
                raise self._error(response)
            return response
        raise AssertionError("unreachable: the last try raises")

    def _url(self, route: str) -> httpx.URL:
        """The URL of ``route`` (those without an id in them parsed once)."""
        url = self._urls.get(route)
        if url is None:
            url = httpx.URL(f"{self.url}/{wire.API_VERSION}/{route}")
            if "/" not in route:
                self._urls[route] = url
        return url

    def _pause(
        self, attempt: int, response: httpx.Response | None, error: Exception | None
    ) -> None:
        """Wait before the next try; the RemoteError after the last one."""
        if attempt >= len(BACKOFF):
            if response is not None:
                raise self._error(response)
            raise RemoteError(
                f"cannot reach the Butler server at {self.url} ({type(error).__name__}: "
                f"{error}; tried {attempt + 1} times); is `butler serve` running there?"
            )
        delay = BACKOFF[attempt]
        if response is not None:
            with contextlib.suppress(ValueError):
                delay = min(5.0, max(delay, float(response.headers.get("Retry-After", 0))))
        time.sleep(delay)

    def _error(self, response: httpx.Response) -> ButlerError:
        try:
            document = response.json()
        except (ValueError, json.JSONDecodeError):
            document = None
        error = wire.error_from_body(document, f"the Butler server at {self.url}")
        if response.status_code >= 500 and type(error) is ButlerError:
            return RemoteError(
                f"the Butler server at {self.url} failed ({response.status_code}): {error}"
            )
        if document is None:
            return RemoteError(
                f"the Butler server at {self.url} answered {response.status_code} "
                f"{response.reason_phrase} without saying why"
            )
        return error
