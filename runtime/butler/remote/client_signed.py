"""The client's side of signed URLs (see :mod:`butler.remote.signed`): a repository on
object storage sends its bytes through the store, not through the server.

- a get answered ``307`` is fetched from the signed URL with a client of its own that
  never sends the token (the token is for the Butler server; the URL is the permission),
  and its bytes checked against the size and checksum the server recorded before the
  formatter reads them (:class:`DatasetCorruptError` if they differ);
- a put to such a repository is ``put-begin`` (signed PUT URLs), one PUT per file with
  the headers the server gave, then ``put-commit``, which the server answers once it has
  checked the uploads.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx

from ..checksums import checksum_of
from ..errors import DatasetCorruptError, RemoteError
from .session import BACKOFF, Session

__all__ = ["content_of", "signed_put"]

CHECKSUM_HEADER = "X-Butler-Checksum"
SIZE_HEADER = "X-Butler-Size"


def _store_request(session: Session, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request to a signed URL, retried on a broken connection or 500/503."""
    for attempt in range(len(BACKOFF) + 1):
        try:
            response = session.store().request(method, url, **kw)
        except httpx.TransportError as error:
            if attempt == len(BACKOFF):
                raise RemoteError(
                    f"cannot reach the object store at {httpx.URL(url).host} for a signed "
                    f"{method} ({type(error).__name__}: {error})"
                ) from None
        else:
            if response.status_code not in (500, 503) or attempt == len(BACKOFF):
                return response
        time.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
    raise AssertionError("unreachable")


def _refused(method: str, response: httpx.Response, what: str) -> RemoteError:
    reason = response.text[:300].replace("\n", " ")
    return RemoteError(
        f"the object store refused the signed {method} of {what} ({response.status_code}: "
        f"{reason}); a signed URL lives a few minutes: ask again"
    )


def content_of(session: Session, response: httpx.Response, what: str) -> bytes:
    """The dataset's bytes of a get's answer: its body, or, for a ``307``, what the signed
    URL it names holds, checked against the recorded size and checksum."""
    if response.status_code != 307:
        return response.content
    url = response.headers["Location"]
    fetched = _store_request(session, "GET", url)
    if fetched.status_code != 200:
        raise _refused("GET", fetched, what)
    data = fetched.content
    size, checksum = response.headers.get(SIZE_HEADER), response.headers.get(CHECKSUM_HEADER)
    if size is not None and len(data) != int(size):
        raise DatasetCorruptError(
            f"{what}: the object store sent {len(data)} bytes, but {size} were recorded; "
            "the object was changed or truncated since it was written"
        )
    if checksum is not None and checksum_of(data) != checksum:
        raise DatasetCorruptError(
            f"{what}: the bytes the object store sent have checksum {checksum_of(data)}, "
            f"but {checksum} was recorded; the object was changed since it was written"
        )
    return data


def signed_put(session: Session, meta: dict[str, Any], blobs: list[bytes]) -> Any | None:
    """A put through signed URLs: the server's answer of ``put-commit``; None if the server
    takes this put through itself (a dataset type with sky regions)."""
    body = {
        **meta,
        "md5s": [hashlib.md5(b, usedforsecurity=False).hexdigest() for b in blobs],
        "checksums": [checksum_of(b) for b in blobs],
    }
    begun = session.call("put-begin", body, write=True)
    if begun.get("stream"):
        return None
    for number, (blob, signed) in enumerate(zip(blobs, begun["files"], strict=True)):
        answer = _store_request(
            session, "PUT", signed["url"], content=blob, headers=signed["headers"]
        )
        # 412: this PUT's first try arrived (its answer was lost); the commit checks it
        if answer.status_code not in (200, 412):
            raise _refused("PUT", answer, f"file {number} of a put of {meta['dataset_type']!r}")
    return session.call("put-commit", {"upload": begun["upload"]}, write=True)
