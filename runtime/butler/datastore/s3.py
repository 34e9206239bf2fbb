"""The S3 back-end: a repository's datasets as objects below ``s3://bucket/prefix``.

Locations of published datasets are repository-relative keys (``calexp/903334/16.fits``);
a *temporary* is a local spill file (:class:`Spill`): the formatter writes it on this
host, hashed as it is written, and :meth:`S3Datastore.publish` makes it the dataset with
**one conditional PUT** (``If-None-Match: *``; multipart for large files, with the same
condition on completion) straight to the final key. No temporary object is uploaded and
copied, so a killed put leaves no object at all (at most an unfinished multipart upload,
which ``butler verify`` lists and ``--repair`` aborts once it is stale). An overwrite
copies the old object to its journal key, then replaces the target with ``If-Match`` on
the old ETag. Endpoint, profile and credentials come from the environment and
``~/.aws`` (see :mod:`butler.objectstore.settings`), never from the repository.

The recovery journal is the local one's protocol over keys:
``.butler/pending/<owner>/<seq>.<token>.<kind>/<target>``, where ``<owner>`` is
``<host>-<pid>-<random>``. An owner is *gone* when it ran on this host and its process
is dead, or (any host) when its newest entry is older than :data:`STALE_SECONDS`; only a
gone owner's entries are finished (by the registry's committed tokens), so recovery never
touches a live writer's operation. See docs/s3.md.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import secrets
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from ..checksums import FileChecksum, checksum_of, file_checksum, write_hashed
from ..config import CONFIG_NAME, RepositoryConfig, parse_config
from ..errors import (
    ButlerError,
    ConfigError,
    ConflictError,
    DatasetCorruptError,
    InvalidDataIdError,
    ObjectMissingError,
    RepositoryError,
)
from ..objectstore import ObjectInfo, ObjectStore, S3Location, S3Settings, check_relative
from ..objectstore.cache import Fetch, NoCache, SharedCache, cache_from_environment
from ..objectstore.ranged import RangedFile
from ..objectstore.settings import ENDPOINT_VARIABLES
from ..storage import BUTLER_FOLDER
from .base import Datastore, ReadRequest, Staged, WriteRequest, WrongSizeError
from .s3_signed import SignedURLs, publish_staged, replace_staged
from .s3_spill import EarlyPut, Spill

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = [
    "SQLITE_VARIABLE",
    "STALE_SECONDS",
    "STALE_VARIABLE",
    "S3Datastore",
    "Spill",
    "create_s3",
    "open_s3",
]

#: Journal entries of an owner on another host count as abandoned after this long.
STALE_SECONDS = 3600.0
#: Overrides :data:`STALE_SECONDS` (seconds).
STALE_VARIABLE = "BUTLER_S3_STALE_SECONDS"
#: Puts' early PUTs under way at once, per datastore (more wait for a thread).
EARLY_PUTS = 8
#: Set to ``1`` to accept a local SQLite registry file for an S3 repository (one host only).
SQLITE_VARIABLE = "BUTLER_S3_ALLOW_SQLITE"
PENDING = f"{BUTLER_FOLDER}/pending"
_KINDS = ("kept", "aside", "new")


class S3Root(type(Path())):  # type: ignore[misc]  # the platform's concrete Path class
    """The location of an S3 repository, shown as its URL (``s3://bucket/prefix``)."""

    def __str__(self) -> str:
        return "s3://" + "/".join(self.parts[1:])


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())[:60]


class _KeyJournal:
    """One Butler's journal entries, as keys (see the module docs)."""

    def __init__(self) -> None:
        self.owner = f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._sequence = itertools.count()
        self._lock = threading.Lock()

    def token(self) -> str:
        return secrets.token_hex(8)

    def entry(self, token: str, kind: str, target: str) -> str:
        with self._lock:
            sequence = next(self._sequence)
        return f"{PENDING}/{self.owner}/{sequence:012d}.{token}.{kind}/{target}"

    def close(self) -> None:
        return None  # settled entries are deleted by the Butler; nothing else is held


@dataclass(frozen=True)
class _Entry:
    key: str
    owner: str
    sequence: int
    token: str
    kind: str
    target: str

    @classmethod
    def parse(cls, key: str) -> _Entry | None:
        parts = key.split("/", 4)
        if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != PENDING:
            return None
        name = parts[3].split(".")
        if len(name) != 3 or not name[0].isdigit() or name[2] not in _KINDS:
            return None
        return cls(key, parts[2], int(name[0]), name[1], name[2], parts[4])


def _owner_gone(owner: str, newest: datetime, stale_seconds: float) -> bool:
    parts = owner.rsplit("-", 2)
    host, pid = (parts[0], parts[1]) if len(parts) == 3 else ("", "")
    if host == _host() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except OSError as error:
            return error.errno != errno.EPERM
        return False
    return (datetime.now(UTC) - newest).total_seconds() > stale_seconds


class S3Datastore(SignedURLs, Datastore):
    """Objects below one S3 location, through one :class:`ObjectStore`."""

    scheme = "s3"
    default_registry = ""  # an S3 repository needs a shared registry: PostgreSQL
    read_concurrency = 8
    checks_size = True  # on the GET's own answer: no HEAD before a get

    def __init__(
        self,
        location: S3Location,
        settings: S3Settings | None = None,
        cache: SharedCache | NoCache | None = None,
    ) -> None:
        self.location_ = location
        self.store = ObjectStore(location, settings or settings_from_environment())
        self.root = S3Root("s3:", location.bucket, *([location.prefix] if location.prefix else []))
        self.cache = cache if cache is not None else cache_from_environment()
        self._spill = Path(tempfile.mkdtemp(prefix="butler-s3-spill-"))
        #: Sends puts' early PUTs (butler.datastore.s3_spill), one thread per put under way.
        self._uploads = ThreadPoolExecutor(EARLY_PUTS, thread_name_prefix="butler-s3-put")
        self._temporaries = itertools.count()
        #: Journal owners on other hosts, objects without records and unfinished uploads
        #: count as abandoned (recovered, deleted by ``verify --repair``) after this long.
        self.stale_seconds = float(os.environ.get(STALE_VARIABLE) or STALE_SECONDS)

    def __repr__(self) -> str:
        return f"S3Datastore({self.location_.uri!r})"

    # ---- the repository ------------------------------------------------------------------

    def read_config(self) -> RepositoryConfig:
        uri = self.store.uri(CONFIG_NAME)
        if self.store.head(CONFIG_NAME) is None:
            raise ConfigError(
                f"{self.location_.uri} is not a Butler repository: it has no {CONFIG_NAME}"
                f" (looked for {uri} at {self.store.endpoint}); create one with"
                " Butler.create(URL, mapper=..., registry='postgresql+psycopg://...'), or check"
                " the URL and AWS_ENDPOINT_URL"
            )
        text = self.store.get_bytes(CONFIG_NAME).decode("utf-8")
        return parse_config(text, uri)

    def write_config(self, config: RepositoryConfig) -> None:
        data = config.to_yaml().encode("utf-8")
        checksum = checksum_of(data)
        info = self.store.head(CONFIG_NAME)
        if info is None:
            self.store.put_new(CONFIG_NAME, data, checksum)
        else:
            self.store.replace(CONFIG_NAME, data, checksum, info.etag)

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        if not self.store.bucket_exists():
            raise RepositoryError(
                f"cannot create a repository at {self.location_.uri}: the bucket"
                f" {self.location_.bucket!r} does not exist at {self.store.endpoint}; create it"
                f" first (aws s3 mb s3://{self.location_.bucket}) or check AWS_ENDPOINT_URL"
            )
        if self.store.head(CONFIG_NAME) is not None:
            raise RepositoryError(
                f"{self.location_.uri} is already a Butler repository: open it with"
                f" Butler({str(self.location_.uri)!r}), or create the new one under another prefix"
            )
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.store.delete(CONFIG_NAME)
            raise

    def registry_url(self, url: str) -> str:
        if url and not url.startswith("sqlite"):
            return url
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if os.environ.get(SQLITE_VARIABLE) == "1" and path.startswith("/"):
            warnings.warn(
                f"{self.location_.uri} uses the local SQLite registry {path}: only this host may"
                " write to the repository, and other hosts cannot read it",
                stacklevel=2,
            )
            return url
        raise RepositoryError(
            f"the S3 repository {self.location_.uri} needs a registry every host can reach:"
            f" give Butler.create(..., registry='postgresql+psycopg://HOST/DB'), not"
            f" {url or 'the default SQLite file'!r} (a local SQLite file, for one writing host"
            f" only, is accepted with {SQLITE_VARIABLE}=1 and an absolute path)"
        )

    def journal(self) -> _KeyJournal:
        return _KeyJournal()

    def pending(self) -> list[_Entry]:
        """Every journal entry of every owner, live or gone (what ``verify`` reports)."""
        entries = (_Entry.parse(info.relative) for info in self.store.objects(PENDING))
        return [e for e in entries if e is not None]

    def recover(self, registry: Registry, *, sweep: bool = False) -> int:
        """Finish the entries of gone owners (module docs); how many were finished."""
        newest: dict[str, datetime] = {}
        by_owner: dict[str, list[_Entry]] = {}
        for info, entry in self._listed_entries():
            by_owner.setdefault(entry.owner, []).append(entry)
            newest[entry.owner] = max(newest.get(entry.owner, info), info)
        finished = 0
        for owner, entries in sorted(by_owner.items()):
            if not _owner_gone(owner, newest[owner], self.stale_seconds):
                continue
            committed = registry.committed_operations({e.token for e in entries})
            for entry in sorted(entries, key=lambda e: e.sequence, reverse=True):
                self._finish(entry, entry.token in committed)
                finished += 1
            if committed:
                registry.forget_operations(committed)
        return finished

    def _listed_entries(self) -> Iterator[tuple[datetime, _Entry]]:
        paginator = self.store.client.get_paginator("list_objects_v2")
        prefix = self.location_.key(PENDING) + "/"
        for page in paginator.paginate(Bucket=self.location_.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = self.location_.relative(item["Key"])
                entry = _Entry.parse(relative) if relative is not None else None
                if entry is not None:
                    yield item["LastModified"], entry

    def _finish(self, entry: _Entry, committed: bool) -> None:
        """Settle one entry; an entry whose copy never completed (the owner died while
        making it) names nothing to restore."""
        try:
            if not committed and entry.kind in ("kept", "aside"):
                self.store.copy(entry.key, entry.target)
            elif not committed and entry.kind == "new":
                marker = self.store.get_bytes(entry.key).decode("ascii", "replace")
                info = self.store.head(entry.target)
                if info is not None and info.checksum == marker:
                    self.store.delete(entry.target, info.etag)
        except ObjectMissingError:
            pass
        self.store.delete(entry.key)

    def close(self) -> None:
        self._uploads.shutdown(wait=True)
        shutil.rmtree(self._spill, ignore_errors=True)

    # ---- writing -------------------------------------------------------------------------

    def target(self, relative: str) -> str:
        try:
            check_relative(relative)
        except InvalidDataIdError:
            raise InvalidDataIdError(
                f"path {relative!r} would leave the repository {self.location_.uri} (or is not"
                " a safe object key); check the data ID values that fill its template"
            ) from None
        if relative == CONFIG_NAME or relative.split("/", 1)[0] == BUTLER_FOLDER:
            raise InvalidDataIdError(
                f"path {relative!r} names the repository's own files in {self.location_.uri}"
            )
        self.location_.key(relative)  # too long a key
        return relative

    def _spill_path(self, target: str) -> Path:
        name = PurePosixPath(target).name
        return self._spill / f"{next(self._temporaries)}-{secrets.token_hex(4)}-{name}"

    def write(
        self,
        target: str,
        obj: object,
        request: WriteRequest,
        *,
        sync: bool = True,
        at: str | None = None,
    ) -> tuple[Spill, FileChecksum]:
        # ``at`` (a put's journal entry) names nothing here: the spill is local, and an
        # object published by a put that died before its commit is an object without a
        # record, which `verify` lists and `--repair` removes once stale (docs/s3.md).
        if isinstance(obj, Staged):  # a client's signed upload, checked by `staged`
            return obj, obj.checksum  # type: ignore[return-value]
        # A put's spill (``at`` given) is sent at once, while the registry records it.
        formatter, hdu, compress = request.formatter(), request.hdu, request.compress
        path = self._spill_path(target)
        try:
            if formatter.writes_streams:

                def stream_writer(stream: BinaryIO) -> None:
                    formatter.write_stream(obj, stream, hdu=hdu, compress=compress)

                checksum = write_hashed(path, stream_writer)
            else:
                formatter.write(obj, path, hdu=hdu, compress=compress)
                checksum = file_checksum(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if at is None:
            return Spill(path, checksum), checksum
        future = self._uploads.submit(self.store.put_new, target, path, checksum.value)
        return Spill(path, checksum, EarlyPut(target, future)), checksum

    def write_stream(
        self, target: str, writer: Callable[[BinaryIO], None], *, sync: bool = True
    ) -> tuple[Spill, FileChecksum]:
        path = self._spill_path(target)
        try:
            checksum = write_hashed(path, writer)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Spill(path, checksum), checksum

    def sync(self, locations: Sequence[Any], *, missing_ok: bool = False) -> None:
        return None  # a spill is durable once published; a completed PUT is durable

    def publish(self, temporary: Spill, target: str) -> None:
        if isinstance(temporary, Staged):
            publish_staged(self.store, temporary, target)
            return
        early = temporary.early_for(target)
        if early is not None:
            early.claim()
        else:
            self.store.put_new(target, temporary.path, temporary.checksum.value)
        temporary.path.unlink(missing_ok=True)

    def replace(self, temporary: Spill, target: str, keep_as: str) -> bool:
        early = None if isinstance(temporary, Staged) else temporary.early_for(target)
        if early is not None:
            try:
                early.claim()
            except ButlerError:  # something is there (or the early PUT failed): replace it
                pass
            else:  # nothing was there: published as a new object, nothing to keep
                temporary.path.unlink(missing_ok=True)
                return False
        info = self.store.head(target)
        if info is None:
            self.publish(temporary, target)
            return False
        self.store.copy(target, keep_as, info.etag)
        if isinstance(temporary, Staged):
            replace_staged(self.store, temporary, target, info.etag)
            return True
        self.store.replace(target, temporary.path, temporary.checksum.value, info.etag)
        temporary.path.unlink(missing_ok=True)
        return True

    def set_aside(self, target: str, aside: str) -> bool:
        info = self.store.head(target)
        if info is None:
            return False
        self.store.copy(target, aside, info.etag)
        self.store.delete(target)
        return True

    def publish_entry(self, temporary: Spill, target: str) -> None:
        self.publish(temporary, target)  # one conditional PUT; no second name to keep

    def restore(self, kept: str, target: str) -> None:
        if self.store.head(kept) is None:
            return
        self.store.copy(kept, target)
        self.store.delete(kept)

    def discard(self, location: Spill | Staged | str) -> None:
        if isinstance(location, Spill):
            if location.early is not None:
                location.early.settle(self.store)
            location.path.unlink(missing_ok=True)
        elif isinstance(location, Staged):
            self.store.delete(location.location)
        else:
            self.store.delete(location)

    # ---- reading -------------------------------------------------------------------------

    def location(self, path: str) -> str:
        return path

    def check_inside(self, path: str) -> None:
        return None  # keys cannot lead outside the prefix

    def _head(self, location: str, request: ReadRequest | None = None) -> ObjectInfo:
        """One HEAD; FileNotFoundError if there is no object, WrongSizeError if its size
        is not the one ``request`` says was recorded."""
        info = self.store.head(location)
        if info is None:
            raise FileNotFoundError(self.store.uri(location))
        if request is not None and request.size is not None and info.size != request.size:
            raise WrongSizeError(self.store.uri(location), info.size, request.size)
        return info

    def _cache_name(self, location: str, version: str) -> tuple[str, str]:
        """The cache entry of ``location``'s content ``version`` (a dataset id, or for a
        read that knows none, the object's ETag), and its file suffix."""
        uri = self.store.uri(location).encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(uri).hexdigest()[:32]
        suffix = "".join(PurePosixPath(location).suffixes[-2:])
        if not suffix.replace(".", "").isalnum():
            suffix = ""
        return f"{''.join(c for c in version if c.isalnum() or c == '-')}-{digest}", suffix

    def _checker(self, location: str, request: ReadRequest) -> Callable[[ObjectInfo], None]:
        """What a GET's answer must show before its body is read: the recorded size
        (WrongSizeError), and the recorded checksum in the object's metadata, where Butler
        wrote one (else the object was replaced since the registry was asked)."""

        def check(info: ObjectInfo) -> None:
            if request.size is not None and info.size != request.size:
                raise WrongSizeError(self.store.uri(location), info.size, request.size)
            if request.checksum and info.checksum and info.checksum != request.checksum:
                raise ConflictError(
                    f"{self.store.uri(location)} holds another dataset's bytes (checksum"
                    f" {info.checksum}, recorded {request.checksum}): it was replaced since the"
                    " registry was asked; get it again"
                )

        return check

    def _fetcher(self, location: str, request: ReadRequest) -> tuple[str, str, Fetch]:
        """The cache entry of a read and how to fill it.

        With the dataset's id (every get by ref or data ID), the entry is keyed by the id,
        which names immutable content, so a cached copy needs no request at all; a miss is
        one GET, whose size and checksum metadata are checked against the registry's record
        before its body is read, and whose bytes are hashed against the recorded checksum
        on their way to the cache. Without an id (export's reads, a calibration found by
        observation), one HEAD checks the size and gives the ETag that keys the entry, and
        the GET carries ``If-Match`` on it.
        """
        check = self._checker(location, request)
        if request.dataset_id is not None:
            name, suffix = self._cache_name(location, request.dataset_id)

            def fetch(path: Path) -> None:
                self.store.get_file(location, path, expected_checksum=request.checksum, check=check)

            return name, suffix, fetch
        etag = self._head(location, request).etag
        name, suffix = self._cache_name(location, etag)

        def fetch_version(path: Path) -> None:
            self.store.get_file(
                location,
                path,
                expected_etag=etag,
                expected_checksum=request.checksum,
                check=check,
            )

        return name, suffix, fetch_version

    def read(self, location: str, request: ReadRequest, method: str, *args: Any) -> Any:
        formatter = request.formatter()
        if method in ("read_section", "read_metadata") and formatter.name == "fits":
            name, suffix = self._cache_name(location, request.dataset_id or "")
            if request.dataset_id is None or not self._cached(name, suffix):
                # byte ranges: the header blocks, one range per row of the section
                size = self._head(location, request).size
                with RangedFile(self.store, location, size=size) as ranged:
                    return getattr(formatter, method)(ranged, *args, hdu=request.hdu)
        name, suffix, fetch = self._fetcher(location, request)
        with self.cache.open(name, fetch, suffix) as path:
            if method == "read":
                return formatter.read(path, python_type=request.python_type, hdu=request.hdu)
            return getattr(formatter, method)(path, *args, hdu=request.hdu)

    @contextlib.contextmanager
    def open_bytes(self, location: str, request: ReadRequest) -> Iterator[BinaryIO]:
        """The object's bytes, downloaded once into the read cache and read from there:
        what export and transfer copy out (see :meth:`_fetcher`)."""
        name, suffix, fetch = self._fetcher(location, request)
        with self.cache.open(name, fetch, suffix) as path, path.open("rb") as stream:
            yield stream

    def _cached(self, name: str, suffix: str) -> bool:
        return isinstance(self.cache, SharedCache) and self.cache.contains(name, suffix)

    def exists(self, location: str) -> bool:
        return self.store.head(location) is not None

    def exists_many(self, locations: Sequence[str]) -> dict[str, bool]:
        """Whether each location holds an object: concurrent HEADs."""
        return {k: v is not None for k, v in self.store.head_many(locations).items()}

    def size(self, location: str) -> int:
        return self._head(location).size

    def uri(self, path: str) -> str:
        return self.store.uri(path)

    # ---- the walk (verify, index) --------------------------------------------------------

    def walk(self, skip: frozenset[str] = frozenset()) -> Iterator[str]:
        return (info.relative for info in self.listed(skip))

    def listed(self, skip: frozenset[str] = frozenset()) -> Iterator[ObjectInfo]:
        """Every dataset object (one listing), with when it was written."""
        for info in self.store.objects():
            first = info.relative.split("/", 1)[0]
            if first == BUTLER_FOLDER or info.relative in skip or info.relative == CONFIG_NAME:
                continue
            yield info

    def is_stale(self, when: datetime | None) -> bool:
        """Whether something written at ``when`` is older than :attr:`stale_seconds`."""
        if when is None:
            return False
        return (datetime.now(UTC) - when).total_seconds() > self.stale_seconds

    def differs(self, path: str, size: int | None, checksum: str | None) -> str | None:
        """What differs between the object and its recorded size and checksum, if anything
        (the object is downloaded, hashed on the way, to a temporary file)."""
        with tempfile.TemporaryDirectory(prefix="butler-verify-") as folder:
            try:
                info = self.store.get_file(path, Path(folder) / "data", expected_checksum=checksum)
            except DatasetCorruptError as error:
                return str(error)
        if size is not None and info.size != size:
            return f"size mismatch: {size} bytes were written, the object has {info.size}"
        return None

    def uploads(self) -> list[Any]:
        """Multipart uploads begun and never completed nor aborted."""
        return self.store.uploads()


def settings_from_environment() -> S3Settings:
    """Connection settings: the endpoint from ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``
    (else boto3's own sources: the profile's ``endpoint_url`` in ``~/.aws/config``),
    the profile from ``AWS_PROFILE``; credentials as boto3 finds them."""
    endpoint = next((os.environ[n] for n in ENDPOINT_VARIABLES if os.environ.get(n)), None)
    return S3Settings(endpoint_url=endpoint, profile=os.environ.get("AWS_PROFILE") or None)


def open_s3(url: str) -> S3Datastore:
    """The datastore of the S3 repository at ``s3://bucket/prefix``."""
    return S3Datastore(S3Location.parse(url))


def create_s3(url: str) -> S3Datastore:
    """The datastore of an S3 repository about to be created."""
    return S3Datastore(S3Location.parse(url))
