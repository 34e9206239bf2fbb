"""Short-lived signed URLs for one object, and the conditional copy that publishes a
staged upload: what lets a Butler server hand bytes to the object store's clients
without passing them itself (issue 16).

    url = presign_get(store, "calexp/903334/16.fits", expires=300)
    url, headers = presign_put(store, ".butler/uploads/<id>/0", expires=300,
                               md5="<base64>", checksum="crc32c:...")
    copy_new(store, ".butler/uploads/<id>/0", "calexp/903334/16.fits")

A signed URL names exactly one key and one method, and is valid for ``expires`` seconds
(SigV4 query signing, at most 7 days). A signed PUT is signed *with* the headers in
``headers``, so the client must send them unchanged: ``If-None-Match: *`` (the store
refuses to write over an object), ``Content-MD5`` (S3 refuses bytes of another digest;
moto does not check it, which is why the server compares the ETag after the upload) and
the object's Butler metadata. Anyone holding the URL can use it until it expires: it is
a capability, handed only to a client whose token allowed the operation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..errors import ConflictError, DatasetExistsError, InvalidDataIdError
from .client import CHECKSUM_META, ObjectInfo, ObjectStore
from .failures import error_code, translate

__all__ = [
    "MAX_SIGNED_SECONDS",
    "MAX_SIGNED_UPLOAD",
    "copy_new",
    "copy_over",
    "presign_get",
    "presign_put",
    "signing_client",
]

#: The longest validity SigV4 allows a signed URL.
MAX_SIGNED_SECONDS = 7 * 24 * 3600
#: The largest object one (single-request) PUT may write.
MAX_SIGNED_UPLOAD = 5 << 30


def _checked(expires: int) -> int:
    if not 1 <= expires <= MAX_SIGNED_SECONDS:
        raise InvalidDataIdError(
            f"a signed URL lives from 1 to {MAX_SIGNED_SECONDS} seconds, not {expires}"
        )
    return int(expires)


@contextlib.contextmanager
def _failures(store: ObjectStore, action: str, relative: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise translate(error, action, store.uri(relative), store.endpoint) from error


def signing_client(store: ObjectStore) -> Any:
    """A client of ``store``'s settings that signs URLs with SigV4 (which signs the
    headers a PUT must carry; a plain client may presign with the older SigV2)."""
    import boto3
    from botocore.config import Config

    settings = store.settings
    session = boto3.session.Session(profile_name=settings.profile)
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region or session.region_name or "us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if settings.endpoint_url else {},
        ),
    )


def presign_get(store: ObjectStore, relative: str, *, expires: int, signer: Any) -> str:
    """A URL that GETs the object at ``relative`` (and nothing else) for ``expires`` s."""
    params = {"Bucket": store.location.bucket, "Key": store.location.key(relative)}
    with _failures(store, "signing a download of", relative):
        url: str = signer.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=_checked(expires)
        )
    return url


def presign_put(
    store: ObjectStore, relative: str, *, expires: int, md5: str, checksum: str, signer: Any
) -> tuple[str, dict[str, str]]:
    """A URL that PUTs a new object at ``relative`` for ``expires`` s, and the headers the
    request must carry (they are signed): ``If-None-Match: *``, ``Content-MD5: md5``
    (base64 of the MD5 digest) and the Butler ``checksum`` as the object's metadata."""
    params = {
        "Bucket": store.location.bucket,
        "Key": store.location.key(relative),
        "IfNoneMatch": "*",
        "ContentMD5": md5,
        "Metadata": {CHECKSUM_META: checksum},
    }
    with _failures(store, "signing an upload to", relative):
        url: str = signer.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=_checked(expires)
        )
    headers = {
        "If-None-Match": "*",
        "Content-MD5": md5,
        f"x-amz-meta-{CHECKSUM_META}": checksum,
    }
    return url, headers


def copy_new(store: ObjectStore, source: str, target: str) -> ObjectInfo:
    """Server-side copy of ``source`` to ``target`` only if no object is at ``target``
    (:class:`DatasetExistsError` if one is); see :func:`_copy`."""
    if store.head(target) is not None:
        raise _exists(store, target)
    return _copy(store, source, target, {"IfNoneMatch": "*"})


def copy_over(store: ObjectStore, source: str, target: str, expected_etag: str) -> ObjectInfo:
    """Server-side copy of ``source`` over the object at ``target`` only if its ETag is
    still ``expected_etag`` (:class:`ConflictError` if another writer changed it)."""
    info = store.head(target)
    if info is None or info.etag != expected_etag.strip('"'):
        raise _changed(store, target)
    return _copy(store, source, target, {"IfMatch": f'"{expected_etag.strip(chr(34))}"'})


def _copy(store: ObjectStore, source: str, target: str, condition: dict[str, str]) -> ObjectInfo:
    """The copy, sent with ``condition`` (``If-None-Match: *`` or ``If-Match``); it keeps
    the source's metadata (its ``butler-checksum``).

    S3 enforces the condition on CopyObject; moto 5.2 ignores it there, so the callers
    HEAD the target first (on moto a check-then-write, as ``ObjectStore``'s multipart
    completion with ``If-Match`` is; the header is still sent)."""
    from botocore.exceptions import ClientError

    source_ref = {"Bucket": store.location.bucket, "Key": store.location.key(source)}
    with _failures(store, "publishing", target):
        try:
            store.client.copy_object(
                Bucket=store.location.bucket,
                Key=store.location.key(target),
                CopySource=source_ref,
                **condition,
            )
        except ClientError as error:
            if error_code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                new = "IfNoneMatch" in condition
                raise (_exists(store, target) if new else _changed(store, target)) from error
            raise
    info = store.head(target)
    if info is None:  # removed again at once by another writer
        raise _changed(store, target)
    return info


def _exists(store: ObjectStore, target: str) -> DatasetExistsError:
    return DatasetExistsError(
        f"{store.uri(target)} already exists (written by another put); nothing was changed."
        " Remove the dataset first, or put with overwrite=True"
    )


def _changed(store: ObjectStore, target: str) -> ConflictError:
    return ConflictError(
        f"{store.uri(target)} was changed or removed by another writer; nothing was written."
        " Read it again and retry"
    )
