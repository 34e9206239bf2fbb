"""Where a repository lives in an object store: a bucket and a key prefix.

``S3Location.parse("s3://survey-data/hsc")`` splits a URI into its bucket and prefix;
:meth:`S3Location.key` turns a repository-relative path (``calexp/903334/16.fits``) into
the object key, refusing any path that could name an object outside the prefix or that
S3 would store under a surprising name: ``..`` or ``.`` components, empty components
(``a//b``), a leading ``/``, a NUL or other control character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidDataIdError, RepositoryError

__all__ = ["SCHEME", "S3Location", "check_relative", "is_s3_uri"]

SCHEME = "s3://"
#: Bucket names as S3 allows them (3-63 lower-case letters, digits, dots, hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: S3 keys are at most 1024 bytes of UTF-8.
KEY_BYTES = 1024


def is_s3_uri(text: str) -> bool:
    """Whether ``text`` names a location in S3 (``s3://bucket[/prefix]``)."""
    return text.startswith(SCHEME)


def check_relative(relative: str) -> str:
    """``relative`` if it is a safe key below a prefix; else :class:`InvalidDataIdError`."""
    problem = _problem(relative)
    if problem:
        raise InvalidDataIdError(
            f"object key {relative!r} is refused: {problem}; a dataset's key is built from its"
            " data ID by the template, so check the data ID values for '/', '..' or control"
            " characters"
        )
    return relative


def _problem(relative: str) -> str:
    if not relative:
        return "it is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in relative):
        return "it holds a NUL or control character"
    if relative.startswith("/"):
        return "it starts with '/'"
    parts = relative.split("/")
    if any(part == "" for part in parts):
        return "it has an empty component ('//' or a trailing '/')"
    if any(part in (".", "..") for part in parts):
        return "it has a '.' or '..' component"
    return ""


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key prefix (``""`` for the whole bucket, else without slashes at
    either end)."""

    bucket: str
    prefix: str = ""

    def __post_init__(self) -> None:
        if not _BUCKET.match(self.bucket) or ".." in self.bucket:
            raise RepositoryError(
                f"{self.bucket!r} is not a valid S3 bucket name (3-63 characters: lower-case"
                " letters, digits, '.' and '-')"
            )
        if self.prefix:
            problem = _problem(self.prefix)
            if problem:
                raise RepositoryError(f"S3 prefix {self.prefix!r} is refused: {problem}")

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """``s3://bucket`` or ``s3://bucket/some/prefix`` (a trailing ``/`` is dropped)."""
        if not is_s3_uri(uri):
            raise RepositoryError(f"{uri!r} is not an S3 location; write s3://bucket/prefix")
        rest = uri[len(SCHEME) :]
        bucket, _, prefix = rest.partition("/")
        if prefix.endswith("/"):
            prefix = prefix[:-1]
        return cls(bucket, prefix)

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    def key(self, relative: str) -> str:
        """The object key of ``relative`` below the prefix; hostile paths are refused."""
        key = f"{self.prefix}/{check_relative(relative)}" if self.prefix else relative
        if len(key.encode("utf-8", "surrogatepass")) > KEY_BYTES:
            raise InvalidDataIdError(
                f"object key {key!r} is longer than S3's {KEY_BYTES} bytes; shorten the"
                " template or the data ID values"
            )
        return key

    def relative(self, key: str) -> str | None:
        """The repository-relative path of ``key``, or ``None`` if it is not below the prefix."""
        if not self.prefix:
            return key
        head = self.prefix + "/"
        return key[len(head) :] if key.startswith(head) else None

    def object_uri(self, relative: str) -> str:
        """``s3://bucket/prefix/relative``: how messages name one object."""
        return f"{SCHEME}{self.bucket}/{self.key(relative)}"

    @property
    def list_prefix(self) -> str:
        """The prefix to list every object of the repository with (``"prefix/"``)."""
        return self.prefix + "/" if self.prefix else ""
