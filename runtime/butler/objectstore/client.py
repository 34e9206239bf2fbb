"""One repository's objects in S3: conditional publish, replace, reads, listing.

Writes never race a check: :meth:`ObjectStore.put_new` sends ``If-None-Match: *`` so
the server refuses (412) to publish over an object that exists, and
:meth:`ObjectStore.replace` sends ``If-Match: <etag of the object replaced>``. Large
objects go in parts; the same condition is sent on ``CompleteMultipartUpload``, and
nothing is visible until that call succeeds, so a killed upload leaves no object (only
an unfinished upload, which :meth:`ObjectStore.uploads` lists and :meth:`abort` removes).

Every write stores two metadata entries with the object: ``butler-checksum`` (the
checksum the caller computed, ``crc32c:...``) and ``butler-put-id`` (random, one per
call). When a request is retried (botocore retries a time-out or a 5xx answer) after its
first attempt had in fact succeeded, the retry is refused with 412 (or, for a multipart
completion, ``NoSuchUpload``); the object's metadata then shows this call's put id and
checksum, so the put is reported as done, not as a conflict. A different writer's object
never carries this call's put id, so a real conflict is always reported.

Every failure is a :class:`butler.errors.ButlerError` (see :mod:`.failures`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from ..checksums import FileChecksum
from ..errors import ConflictError, DatasetCorruptError, DatasetExistsError, ObjectMissingError
from .failures import error_code, translate
from .location import S3Location
from .settings import S3Settings, make_client

__all__ = ["CHECKSUM_META", "PUT_ID_META", "ObjectInfo", "ObjectStore", "Source", "Upload"]

CHECKSUM_META = "butler-checksum"
PUT_ID_META = "butler-put-id"
_CHUNK = 1 << 20

#: What a put takes: the bytes, or a local file's path.
Source = bytes | Path


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object: its repository-relative path, size, ETag and Butler metadata
    (``checksum``/``put_id`` are ``None`` for objects listed, or not written by Butler)."""

    relative: str
    size: int
    etag: str
    checksum: str | None = None
    put_id: str | None = None
    #: Whether a retried request found this call's own earlier, successful attempt.
    recovered: bool = False
    #: When it was last written (objects listed; None otherwise).
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    """A multipart upload begun and never completed nor aborted."""

    relative: str
    upload_id: str
    initiated: datetime


def _etag(value: str) -> str:
    return value.strip('"')


class ObjectStore:
    """The objects below one :class:`S3Location`, through one boto3 client (thread-safe)."""

    def __init__(
        self, location: S3Location, settings: S3Settings | None = None, client: Any = None
    ) -> None:
        self.location = location
        self.settings = settings or S3Settings()
        self.client = client if client is not None else make_client(self.settings)
        self.endpoint = self.settings.endpoint()

    # -- helpers ---------------------------------------------------------------------

    def uri(self, relative: str) -> str:
        return self.location.object_uri(relative)

    @contextlib.contextmanager
    def _failures(self, action: str, uri: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as error:
            raise translate(error, action, uri, self.endpoint) from error

    def _call(self, action: str, relative: str, method: Callable[..., Any], **kw: Any) -> Any:
        """``method`` on the object; a refused condition (412) raises :class:`_Refused`."""
        from botocore.exceptions import ClientError

        key = self.location.key(relative)
        with self._failures(action, self.uri(relative)):
            try:
                return method(Bucket=self.location.bucket, Key=key, **kw)
            except ClientError as error:
                if error_code(error) in _REFUSED:
                    raise _Refused() from error
                raise

    # -- buckets ---------------------------------------------------------------------

    def bucket_exists(self) -> bool:
        """Whether the bucket exists (an access failure raises)."""
        uri = self.location.uri
        try:
            with self._failures("checking the bucket of", uri):
                self.client.head_bucket(Bucket=self.location.bucket)
        except ObjectMissingError:
            return False
        return True

    def create_bucket(self) -> None:
        """Create the bucket if it does not exist."""
        if self.bucket_exists():
            return
        with self._failures("creating the bucket of", self.location.uri):
            self.client.create_bucket(Bucket=self.location.bucket)

    # -- writes ----------------------------------------------------------------------

    def put_new(self, relative: str, source: Source, checksum: str) -> ObjectInfo:
        """Publish ``source`` at ``relative`` only if no object is there.

        :class:`DatasetExistsError` if one is (another writer's, or an earlier one).
        """
        return self._write(relative, source, checksum, {"IfNoneMatch": "*"})

    def replace(
        self, relative: str, source: Source, checksum: str, expected_etag: str
    ) -> ObjectInfo:
        """Replace the object at ``relative`` only if its ETag is still ``expected_etag``.

        :class:`ConflictError` if another writer changed it; :class:`ObjectMissingError`
        if it was removed.
        """
        return self._write(relative, source, checksum, {"IfMatch": f'"{_etag(expected_etag)}"'})

    def _write(
        self, relative: str, source: Source, checksum: str, condition: dict[str, str]
    ) -> ObjectInfo:
        put_id = secrets.token_hex(16)
        metadata = {CHECKSUM_META: checksum, PUT_ID_META: put_id}
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        try:
            if size >= self.settings.multipart_threshold:
                etag = self._multipart(relative, source, size, metadata, condition)
            else:
                with _opened(source, size) as body:
                    answer = self._call(
                        "writing",
                        relative,
                        self.client.put_object,
                        Body=body,
                        Metadata=metadata,
                        ContentLength=size,
                        **condition,
                    )
                etag = _etag(answer["ETag"])
        except _Refused as refused:
            info = self.head(relative)
            if info is not None and info.put_id == put_id and info.checksum == checksum:
                return _recovered(info)
            raise self._conflict(relative, condition, info) from refused.__cause__
        return ObjectInfo(relative, size, etag, checksum, put_id)

    def _conflict(
        self, relative: str, condition: dict[str, str], info: ObjectInfo | None
    ) -> Exception:
        uri = self.uri(relative)
        if "IfNoneMatch" in condition:
            return DatasetExistsError(
                f"{uri} already exists (written by another put); nothing was changed. Remove"
                " the dataset first, or put with overwrite=True"
            )
        if info is None:
            return ObjectMissingError(
                f"{uri} was removed by another writer before it could be replaced; nothing"
                " was written",
                uri,
            )
        return ConflictError(
            f"{uri} was changed by another writer (ETag {info.etag}, expected"
            f" {condition['IfMatch'].strip(chr(34))}); nothing was written. Read it again and retry"
        )

    def _multipart(
        self,
        relative: str,
        source: Source,
        size: int,
        metadata: dict[str, str],
        condition: dict[str, str],
    ) -> str:
        started = self._call(
            "starting an upload of",
            relative,
            self.client.create_multipart_upload,
            Metadata=metadata,
        )
        upload_id = started["UploadId"]
        try:
            parts = self._upload_parts(relative, source, size, upload_id)
            if "IfMatch" in condition:
                # Servers that do not enforce If-Match on completion (moto) still get
                # this check; S3 itself enforces the header sent below.
                info = self.head(relative)
                if info is None or info.etag != _etag(condition["IfMatch"]):
                    raise _Refused()
            try:
                answer = self._call(
                    "completing the upload of",
                    relative,
                    self.client.complete_multipart_upload,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **condition,
                )
            except ObjectMissingError as missing:  # NoSuchUpload: a retry after success?
                raise _Refused() from missing
        except BaseException:
            self._abort_quietly(relative, upload_id)
            raise
        return _etag(answer["ETag"])

    def _upload_parts(
        self, relative: str, source: Source, size: int, upload_id: str
    ) -> list[dict[str, Any]]:
        part_size = self.settings.part_size
        offsets = list(range(0, size, part_size))

        def one(number: int) -> dict[str, Any]:
            start = offsets[number - 1]
            data = _read_range(source, start, min(part_size, size - start))
            answer = self._call(
                "uploading a part of",
                relative,
                self.client.upload_part,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}

        with ThreadPoolExecutor(self.settings.max_concurrency) as pool:
            return list(pool.map(one, range(1, len(offsets) + 1)))

    def _abort_quietly(self, relative: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(
                Bucket=self.location.bucket, Key=self.location.key(relative), UploadId=upload_id
            )

    def copy(self, source: str, target: str, expected_etag: str | None = None) -> ObjectInfo:
        """Server-side copy of the object at ``source`` to ``target`` (replacing what is
        there), with its metadata; with ``expected_etag``, only if ``source`` still has it
        (:class:`ConflictError` otherwise). :class:`ObjectMissingError` if there is none."""
        extra = {"CopySourceIfMatch": f'"{_etag(expected_etag)}"'} if expected_etag else {}
        source_ref = {"Bucket": self.location.bucket, "Key": self.location.key(source)}
        try:
            answer = self._call(
                "copying", target, self.client.copy_object, CopySource=source_ref, **extra
            )
        except _Refused as refused:
            raise ConflictError(
                f"{self.uri(source)} was replaced by another writer while being copied"
            ) from refused.__cause__
        etag = _etag(answer["CopyObjectResult"]["ETag"])
        info = self.head(target)
        return info if info is not None else ObjectInfo(target, 0, etag)

    def delete(self, relative: str, expected_etag: str | None = None) -> None:
        """Remove the object (no error if absent; with ``expected_etag``, only that version)."""
        extra = {"IfMatch": f'"{_etag(expected_etag)}"'} if expected_etag else {}
        try:
            self._call("removing", relative, self.client.delete_object, **extra)
        except ObjectMissingError:
            return
        except _Refused as refused:
            raise ConflictError(
                f"{self.uri(relative)} was replaced by another writer; it was not removed"
            ) from refused.__cause__

    # -- reads -----------------------------------------------------------------------

    def head(self, relative: str) -> ObjectInfo | None:
        """Size, ETag and Butler metadata of the object, or ``None`` if there is none."""
        try:
            answer = self._call("looking up", relative, self.client.head_object)
        except ObjectMissingError:
            return None
        return _described(relative, answer)

    def get_bytes(self, relative: str) -> bytes:
        """The whole object."""
        answer = self._call("reading", relative, self.client.get_object)
        with self._failures("reading", self.uri(relative)):
            return bytes(answer["Body"].read())

    def get_range(self, relative: str, start: int, stop: int) -> bytes:
        """Bytes ``start`` to ``stop - 1`` of the object (fewer at its end)."""
        if stop <= start:
            return b""
        answer = self._call(
            "reading a range of",
            relative,
            self.client.get_object,
            Range=f"bytes={start}-{stop - 1}",
        )
        with self._failures("reading a range of", self.uri(relative)):
            return bytes(answer["Body"].read())

    def get_file(
        self,
        relative: str,
        target: Path,
        expected_etag: str | None = None,
        expected_checksum: str | None = None,
        check: Callable[[ObjectInfo], None] | None = None,
    ) -> ObjectInfo:
        """Download the object to ``target``, atomically (a temporary beside it, renamed),
        with one GET.

        With ``expected_etag``, :class:`ConflictError` if the object was replaced since.
        With ``expected_checksum`` (``crc32c:...``, as the registry records it), the bytes
        are hashed on their way to the disk and :class:`DatasetCorruptError` raised, with
        nothing left at ``target``, if they differ. ``check`` is given the answer's size,
        ETag and metadata before the body is read, and may raise to refuse it.
        """
        from crc32c import crc32c

        extra = {"IfMatch": f'"{_etag(expected_etag)}"'} if expected_etag else {}
        uri = self.uri(relative)
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        try:
            try:
                answer = self._call("reading", relative, self.client.get_object, **extra)
            except _Refused as refused:
                raise ConflictError(
                    f"{uri} was replaced since it was looked up; read it again"
                ) from refused.__cause__
            body = answer["Body"]
            if check is not None:
                try:
                    check(_described(relative, answer))
                except BaseException:
                    body.close()
                    raise
            crc = size = 0
            with self._failures("reading", uri), open(temporary, "wb") as out:
                for chunk in iter(lambda: body.read(_CHUNK), b""):
                    out.write(chunk)
                    if expected_checksum:
                        crc, size = crc32c(chunk, crc), size + len(chunk)
            if expected_checksum:
                found = FileChecksum.of_crc(size, crc).value
                if found != expected_checksum:
                    raise DatasetCorruptError(
                        f"{uri} does not hold what was written: checksum {found}, recorded"
                        f" {expected_checksum}; run butler verify --read, and restore the"
                        " object or remove the dataset"
                    )
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        return _described(relative, answer)

    def head_many(self, relatives: Iterable[str]) -> dict[str, ObjectInfo | None]:
        """:meth:`head` of each path, ``max_concurrency * 4`` requests at a time."""
        wanted = list(dict.fromkeys(relatives))
        with ThreadPoolExecutor(max(1, self.settings.max_concurrency * 4)) as pool:
            return dict(zip(wanted, pool.map(self.head, wanted), strict=True))

    # -- listing (verify) ------------------------------------------------------------

    def objects(self, under: str = "") -> Iterator[ObjectInfo]:
        """Every object below the prefix (and below ``under``), in key order."""
        prefix = self.location.list_prefix + (under.rstrip("/") + "/" if under else "")
        paginator = self.client.get_paginator("list_objects_v2")
        with self._failures("listing", f"s3://{self.location.bucket}/{prefix}"):
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    relative = self.location.relative(item["Key"])
                    if relative is not None:
                        yield ObjectInfo(
                            relative,
                            int(item["Size"]),
                            _etag(item["ETag"]),
                            modified=item.get("LastModified"),
                        )

    def uploads(self) -> list[Upload]:
        """Multipart uploads begun below the prefix and never completed nor aborted."""
        found: list[Upload] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._failures("listing the unfinished uploads of", self.location.uri):
            for page in paginator.paginate(
                Bucket=self.location.bucket, Prefix=self.location.list_prefix
            ):
                for item in page.get("Uploads", []):
                    relative = self.location.relative(item["Key"])
                    if relative is not None:
                        found.append(Upload(relative, item["UploadId"], item["Initiated"]))
        return found

    def abort(self, upload: Upload) -> None:
        """Drop an unfinished upload and its parts (no error if already gone)."""
        try:
            self._call(
                "aborting an upload of",
                upload.relative,
                self.client.abort_multipart_upload,
                UploadId=upload.upload_id,
            )
        except ObjectMissingError:
            return


#: Error codes of a refused condition: 412, and S3's 409 for a concurrent conditional write.
_REFUSED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


class _Refused(Exception):
    """A conditional write was refused (412), or its upload vanished."""


def _described(relative: str, answer: dict[str, Any]) -> ObjectInfo:
    """The :class:`ObjectInfo` of a HeadObject or GetObject answer."""
    meta = answer.get("Metadata", {})
    return ObjectInfo(
        relative,
        int(answer["ContentLength"]),
        _etag(answer["ETag"]),
        meta.get(CHECKSUM_META),
        meta.get(PUT_ID_META),
    )


def _recovered(info: ObjectInfo) -> ObjectInfo:
    return ObjectInfo(
        info.relative, info.size, info.etag, info.checksum, info.put_id, recovered=True
    )


#: A file up to this size is sent from memory: botocore sends a file object's PUT with
#: ``Expect: 100-continue``, which costs a round trip before the body goes.
_IN_MEMORY = 8 << 20


@contextlib.contextmanager
def _opened(source: Source, size: int) -> Iterator[BinaryIO | bytes]:
    if isinstance(source, bytes):
        yield source
    elif size <= _IN_MEMORY:
        yield source.read_bytes()
    else:
        with open(source, "rb") as stream:
            yield stream


def _read_range(source: Source, start: int, length: int) -> bytes:
    if isinstance(source, bytes):
        return source[start : start + length]
    with open(source, "rb") as stream:
        stream.seek(start)
        return stream.read(length)
