"""Every failure of an object-store request, as a :class:`butler.errors.ButlerError`.

:func:`translate` turns a botocore exception into the error a user reads: it names
what was being done, the object (``s3://bucket/key``), the endpoint, and what to check.
botocore has already retried what was safe to retry (see :mod:`.settings`) by the time
an exception reaches it.
"""

from __future__ import annotations

from ..errors import (
    ObjectMissingError,
    ObjectStoreAccessError,
    ObjectStoreError,
    ObjectStoreUnavailableError,
)

__all__ = ["error_code", "translate"]

_ACCESS = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "403",
        "AllAccessDisabled",
    }
)
_BUSY = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "500",
        "502",
        "503",
        "504",
        "Throttling",
        "ThrottlingException",
    }
)
_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchUpload"})


def error_code(error: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``"PreconditionFailed"``, ``"404"``),
    else ``""``."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def translate(error: BaseException, action: str, uri: str, endpoint: str) -> ObjectStoreError:
    """The Butler error for ``error``, raised while ``action`` (``"reading"``) ``uri``."""
    from botocore import exceptions as bx

    where = f"{action} {uri} (endpoint {endpoint})"
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        return ObjectStoreAccessError(
            f"no usable S3 credentials for {where}; set AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or write ~/.aws/credentials",
            uri,
        )
    if isinstance(error, bx.ProfileNotFound):
        return ObjectStoreAccessError(
            f"the AWS profile named for {where} does not exist: {error}; check AWS_PROFILE,"
            " the repository's s3.profile and ~/.aws/config",
            uri,
        )
    if isinstance(error, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return ObjectStoreUnavailableError(
            f"the object store answered too slowly while {where}, after retries ({error});"
            " check that the server is up and not overloaded, or raise s3.read_timeout",
            uri,
        )
    if isinstance(error, bx.EndpointConnectionError | bx.ConnectionClosedError):
        return ObjectStoreUnavailableError(
            f"cannot connect to the object store while {where}, after retries; check that the"
            " server is running and that endpoint_url (or AWS_ENDPOINT_URL) is right",
            uri,
        )
    if isinstance(error, bx.HTTPClientError | bx.ConnectionError):
        return ObjectStoreUnavailableError(
            f"the connection to the object store failed while {where}, after retries"
            f" ({error}); check the network and the server",
            uri,
        )
    code = error_code(error)
    if code == "NoSuchBucket":
        bucket = uri.removeprefix("s3://").split("/", 1)[0]
        return ObjectMissingError(
            f"bucket {bucket!r} does not exist while {where}; check the repository's"
            " s3:// URI and the endpoint, or create the bucket",
            uri,
        )
    if code in _MISSING:
        return ObjectMissingError(f"no object while {where}", uri)
    if code in _ACCESS:
        return ObjectStoreAccessError(
            f"the object store refused the credentials or permission ({code}) while {where};"
            " check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials,"
            " and the bucket's policy",
            uri,
        )
    if code in _BUSY:
        return ObjectStoreUnavailableError(
            f"the object store kept failing ({code}) while {where}, after retries; check the"
            " server's health and retry later",
            uri,
        )
    if isinstance(error, bx.BotoCoreError | bx.ClientError):
        return ObjectStoreError(f"the object store failed while {where}: {error}", uri)
    return ObjectStoreError(f"unexpected failure while {where}: {error!r}", uri)
