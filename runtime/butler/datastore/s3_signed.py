"""Signed URLs of an S3 repository: what lets a Butler server send its clients to the
store for a dataset's bytes instead of passing them itself (issue 16; docs/remote.md).

- a download is a signed GET of the dataset's key;
- an upload is a signed PUT (``If-None-Match: *``, ``Content-MD5``) to a *staging* key
  ``.butler/uploads/<name>``, unique per upload; :func:`staged` checks the object
  there by a HEAD (size, and the ETag, which is the MD5 of a single PUT's bytes) and
  makes it a :class:`~butler.datastore.base.Staged` temporary, which ``Butler.put``
  publishes like any other: :func:`publish` copies it to the dataset's key inside the
  store (conditionally), :func:`replace` over the old one with ``If-Match``.

A staging key that is never committed is deleted by the server when its upload
expires, and by ``butler verify --repair`` once it is stale (:func:`leftovers`).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from typing import Any

from ..checksums import FileChecksum, checksum_of
from ..errors import DatasetCorruptError, DatasetNotFoundError, InvalidDataIdError
from ..objectstore import ObjectInfo, ObjectStore
from ..objectstore.signing import (
    MAX_SIGNED_UPLOAD,
    copy_new,
    copy_over,
    presign_get,
    presign_put,
    signing_client,
)
from ..storage import BUTLER_FOLDER
from .base import Staged

__all__ = [
    "UPLOADS",
    "SignedURLs",
    "leftovers",
    "publish_staged",
    "replace_staged",
    "signed_upload",
    "staged",
]

#: Where uploads are staged, below the repository's prefix.
UPLOADS = f"{BUTLER_FOLDER}/uploads"


#: A staging name: the upload's id (hex) and the file's number in it.
_NAME = re.compile(r"^[0-9a-f]{16,64}/[0-9]{1,6}$")


def _key(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidDataIdError(f"{name!r} is not a staging name (<upload id>/<n>)")
    return f"{UPLOADS}/{name}"


def signed_upload(
    store: ObjectStore,
    name: str,
    *,
    size: int,
    md5: str,
    checksum: str,
    expires: int,
    signer: Any,
) -> tuple[str, dict[str, str]]:
    """The signed PUT of one upload (see the module docs) and the headers it needs."""
    if not 0 <= size <= MAX_SIGNED_UPLOAD:
        raise InvalidDataIdError(
            f"a signed upload holds at most {MAX_SIGNED_UPLOAD} bytes, not {size}"
        )
    try:
        digest = binascii.a2b_hex(md5)
    except (binascii.Error, ValueError):
        raise InvalidDataIdError(f"{md5!r} is not an MD5 digest (32 hex digits)") from None
    if len(digest) != 16:
        raise InvalidDataIdError(f"{md5!r} is not an MD5 digest (32 hex digits)")
    encoded = binascii.b2a_base64(digest, newline=False).decode("ascii")
    return presign_put(
        store, _key(name), expires=expires, md5=encoded, checksum=checksum, signer=signer
    )


def staged(store: ObjectStore, name: str, *, size: int, md5: str, checksum: str) -> Staged:
    """The upload staged under ``name`` if the store holds ``size`` bytes of MD5 ``md5``
    there; otherwise the staging object is deleted and DatasetCorruptError (different
    bytes) or DatasetNotFoundError (nothing uploaded) raised."""
    key = _key(name)
    info = store.head(key)
    if info is None:
        raise DatasetNotFoundError(
            f"nothing was uploaded for upload {name!r} (or it expired and was removed);"
            " nothing was recorded. Put again"
        )
    if info.size != size or info.etag.lower() != md5.lower():
        store.delete(key)
        raise DatasetCorruptError(
            f"the bytes uploaded for {name!r} are not those announced ({info.size} bytes of"
            f" ETag {info.etag}, announced {size} bytes of MD5 {md5}); they were discarded"
            " and nothing was recorded"
        )
    return Staged(key, FileChecksum(size, checksum))


def publish_staged(store: ObjectStore, temporary: Staged, target: str) -> None:
    """The staged upload made the dataset at ``target`` (never over another object)."""
    copy_new(store, temporary.location, target)
    store.delete(temporary.location)


def replace_staged(store: ObjectStore, temporary: Staged, target: str, expected_etag: str) -> None:
    """The staged upload copied over the object at ``target`` if its ETag is unchanged."""
    copy_over(store, temporary.location, target, expected_etag)
    store.delete(temporary.location)


def leftovers(store: ObjectStore) -> Iterator[ObjectInfo]:
    """Staged uploads still in the store (never committed, or being committed now)."""
    return store.objects(UPLOADS)


class SignedURLs:
    """The :class:`~butler.datastore.base.Datastore` methods of signed URLs, for the S3
    datastore (whose ``store`` they use)."""

    store: ObjectStore
    signs_urls = True

    def signer(self) -> Any:
        """The SigV4 client that signs URLs (made on first use)."""
        made = getattr(self, "_signer", None)
        if made is None:
            made = self._signer = signing_client(self.store)
        return made

    def signed_download(self, location: str, *, expires: int) -> str | None:
        return presign_get(self.store, location, expires=expires, signer=self.signer())

    def signed_upload(
        self, name: str, *, size: int, md5: str, checksum: str, expires: int
    ) -> tuple[str, dict[str, str]] | None:
        return signed_upload(
            self.store,
            name,
            size=size,
            md5=md5,
            checksum=checksum,
            expires=expires,
            signer=self.signer(),
        )

    def staged(self, name: str, *, size: int, md5: str, checksum: str) -> Staged:
        return staged(self.store, name, size=size, md5=md5, checksum=checksum)

    def staged_leftovers(self) -> list[ObjectInfo]:
        """Uploads staged by a server's clients and not (yet) committed (``verify``)."""
        return list(leftovers(self.store))

    def unstage(self, name: str) -> None:
        self.store.delete(_key(name))

    def read_private(self, name: str) -> bytes | None:
        relative = f"{BUTLER_FOLDER}/{name}"
        return None if self.store.head(relative) is None else self.store.get_bytes(relative)

    def write_private(self, name: str, data: bytes) -> None:
        relative = f"{BUTLER_FOLDER}/{name}"
        info = self.store.head(relative)
        checksum = checksum_of(data)
        if info is None:
            self.store.put_new(relative, data, checksum)
        else:
            self.store.replace(relative, data, checksum, info.etag)
