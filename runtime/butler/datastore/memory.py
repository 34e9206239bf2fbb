"""The in-memory back-end: datasets held by the process (see docs/runtime.md).

``Butler.in_memory(mapper=...)`` or ``Butler.create("memory://name", mapper=...)`` makes a
repository whose datasets are Python objects in a dictionary and whose registry is an
in-memory SQLite database; both end when the last Butler on it closes. Objects are
stored by reference by default (a get returns the very object put); a ``copy`` setting
per dataset type isolates a pipeline's steps:

- ``assign``: store and return the object itself (the default);
- ``copy``: ``copy.copy`` on put and on get;
- ``deepcopy``: ``copy.deepcopy`` on put and on get.

Locations are keys: the dataset's policy path. Metadata, section and table-schema reads
are answered from the object: a section of an :class:`~butler.image.Image` (or array) is
sliced; the rest is written by the format's formatter to a temporary file and read back,
so the answer is the one the same dataset on disk gives.
"""

from __future__ import annotations

import contextlib
import copy as copying
import io
import itertools
import secrets
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..checksums import FileChecksum, checksum_of
from ..config import RepositoryConfig
from ..errors import (
    ConfigError,
    DatasetExistsError,
    FormatError,
    InvalidDataIdError,
    RepositoryError,
)
from ..image import BBox, Image
from .base import Datastore, ReadRequest, WriteRequest

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["COPY_MODES", "CopyPolicy", "MemoryDatastore", "MemoryRoot"]

#: The ``copy`` settings of an in-memory repository, per dataset type.
COPY_MODES = ("assign", "copy", "deepcopy")
_COPIERS: dict[str, Callable[[Any], Any]] = {
    "assign": lambda obj: obj,
    "copy": copying.copy,
    "deepcopy": copying.deepcopy,
}


class MemoryRoot(type(Path())):  # type: ignore[misc]  # the platform's concrete Path class
    """The location of an in-memory repository: shown as ``memory://name``.

    A Path only so that code typed for a repository root takes it; the datastore
    refuses every file operation on it (``local_root``).
    """

    def __str__(self) -> str:
        return "memory://" + "/".join(self.parts[1:])


@dataclass(frozen=True)
class CopyPolicy:
    """How objects go in and out: one mode for every dataset type, or per dataset type."""

    default: str = "assign"
    per_type: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, setting: str | Mapping[str, str] | None) -> CopyPolicy:
        """``"deepcopy"`` (every dataset type), ``{"calexp": "deepcopy"}`` or None (assign);
        ConfigError for a mode that is not one of COPY_MODES."""
        if setting is None:
            return cls()
        given = {"": setting} if isinstance(setting, str) else dict(setting)
        for name, mode in given.items():
            if mode not in COPY_MODES:
                where = f" for {name!r}" if name else ""
                raise ConfigError(
                    f"copy mode {mode!r}{where} is not one of {', '.join(COPY_MODES)}; e.g. "
                    "Butler.in_memory(mapper=..., copy={'calexp': 'deepcopy'})"
                )
        default = given.pop("", "assign")
        return cls(default, tuple(sorted(given.items())))

    def mode(self, dataset_type: str) -> str:
        return dict(self.per_type).get(dataset_type, self.default)

    def apply(self, dataset_type: str, obj: object) -> Any:
        return _COPIERS[self.mode(dataset_type)](obj)


@dataclass(frozen=True)
class _Held:
    """What one key holds: an object (a put) or bytes (a copied file, ``write_stream``)."""

    obj: object = None
    data: bytes | None = None


class _Names:
    """The memory back-end's journal: names only (a crash ends the repository with it)."""

    def __init__(self) -> None:
        self._sequence = itertools.count()
        self._lock = threading.Lock()

    def token(self) -> str:
        return secrets.token_hex(8)

    def entry(self, token: str, kind: str, target: str) -> str:
        with self._lock:
            return f".butler/{next(self._sequence):012d}.{token}.{kind}/{target}"

    def close(self) -> None:
        return None


class MemoryDatastore(Datastore):
    """Objects of one in-memory repository, by key; thread-safe."""

    scheme = "memory"

    def __init__(self, name: str, copy: CopyPolicy | None = None) -> None:
        self.name = name or f"repo-{secrets.token_hex(4)}"
        self.root = MemoryRoot("memory:", self.name)
        self.copy = copy or CopyPolicy()
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._temporaries = itertools.count()
        self._config: RepositoryConfig | None = None
        self._users = 0
        database = f"file:butler-memory-{secrets.token_hex(8)}?mode=memory&cache=shared"
        #: The registry: an in-memory SQLite database shared by this process's connections
        #: (the registry's per-thread ones); this connection keeps it alive until close.
        self.default_registry = f"sqlite:///{database}&uri=true"
        self._keep_alive: sqlite3.Connection | None = sqlite3.connect(
            database, uri=True, check_same_thread=False
        )

    def __repr__(self) -> str:
        return f"MemoryDatastore({self.name!r})"

    # ---- the repository ------------------------------------------------------------------

    def read_config(self) -> RepositoryConfig:
        if self._config is None:
            raise ConfigError(f"{self.root} is not a Butler repository yet (it is being created)")
        return self._config

    def write_config(self, config: RepositoryConfig) -> None:
        self._config = config

    def registry_url(self, url: str) -> str:
        return url

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        if self._config is not None:
            raise RepositoryError(f"{self.root} is already a Butler repository")
        yield

    def journal(self) -> _Names:
        return _Names()

    def recover(self, registry: Registry, *, sweep: bool = False) -> int:
        return 0  # nothing outlives the process that could need finishing

    def attach(self) -> None:
        with self._lock:
            self._users += 1

    def close(self) -> None:
        """The last Butler on it closed: the repository ends, its objects are dropped and
        its registry database closed."""
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            self._held.clear()
            keep_alive, self._keep_alive = self._keep_alive, None
        if keep_alive is not None:
            keep_alive.close()

    # ---- writing -------------------------------------------------------------------------

    def target(self, relative: str) -> str:
        parts = [part for part in relative.split("/") if part and part != "."]
        if not parts or relative.startswith("/") or ".." in parts or "\0" in relative:
            raise InvalidDataIdError(
                f"path {relative!r} would leave the repository {self.root}; "
                "check the data ID values that fill its template"
            )
        return "/".join(parts)

    def _temporary(self, target: str) -> str:
        return f".tmp/{next(self._temporaries)}/{target}"

    def write(
        self,
        target: str,
        obj: object,
        request: WriteRequest,
        *,
        sync: bool = True,
        at: str | None = None,
    ) -> tuple[str, None]:
        temporary = self._temporary(target) if at is None else at
        held = _Held(obj=self.copy.apply(request.dataset_type, obj))
        with self._lock:
            self._held[temporary] = held
        return temporary, None

    def write_stream(
        self, target: str, writer: Callable[[BinaryIO], None], *, sync: bool = True
    ) -> tuple[str, FileChecksum]:
        buffer = io.BytesIO()
        writer(buffer)
        data = buffer.getvalue()
        temporary = self._temporary(target)
        with self._lock:
            self._held[temporary] = _Held(data=data)
        return temporary, FileChecksum(len(data), checksum_of(data))

    def sync(self, locations: Sequence[str], *, missing_ok: bool = False) -> None:
        return None

    def publish(self, temporary: str, target: str) -> None:
        with self._lock:
            if target in self._held:
                raise DatasetExistsError(
                    f"{target!r} in {self.root} already holds a dataset; nothing was replaced"
                )
            self._held[target] = self._held.pop(temporary)

    def publish_entry(self, temporary: str, target: str) -> None:
        self.publish(temporary, target)  # nothing outlives the process: no second name

    def replace(self, temporary: str, target: str, keep_as: str) -> bool:
        with self._lock:
            old = self._held.get(target)
            if old is not None:
                self._held[keep_as] = old
            self._held[target] = self._held.pop(temporary)
        return old is not None

    def set_aside(self, target: str, aside: str) -> bool:
        with self._lock:
            held = self._held.pop(target, None)
            if held is None:
                return False
            self._held[aside] = held
        return True

    def restore(self, kept: str, target: str) -> None:
        with self._lock:
            held = self._held.pop(kept, None)
            if held is not None:
                self._held[target] = held

    def discard(self, location: str) -> None:
        with self._lock:
            self._held.pop(location, None)

    # ---- reading -------------------------------------------------------------------------

    def location(self, path: str) -> str:
        return path

    def check_inside(self, path: str) -> None:
        return None  # keys cannot lead outside

    def _get(self, location: str) -> _Held:
        with self._lock:
            held = self._held.get(location)
        if held is None:
            raise FileNotFoundError(f"{self.root}/{location}")
        return held

    def read(self, location: str, request: ReadRequest, method: str, *args: Any) -> Any:
        import numpy as np

        held = self._get(location)
        if held.data is not None:  # bytes: read as a file is
            with self._as_file(held, request) as path:
                return _call(request, method, path, args)
        if method == "read":
            return self.copy.apply(request.dataset_type, held.obj)
        if method == "read_section" and isinstance(held.obj, Image | np.ndarray):
            array = held.obj.array if isinstance(held.obj, Image) else held.obj
            return _section(array, args[0], location)
        with self._as_file(held, request) as path:
            return _call(request, method, path, args)

    @contextlib.contextmanager
    def _as_file(self, held: _Held, request: ReadRequest) -> Iterator[Path]:
        """The dataset as the formatter would have written it, in a temporary folder."""
        with tempfile.TemporaryDirectory(prefix="butler-memory-") as folder:
            path = Path(folder) / "dataset"
            if held.data is not None:
                path.write_bytes(held.data)
            else:
                hdu = request.hdu if isinstance(request.hdu, int) else None
                request.formatter().write(held.obj, path, hdu=hdu)
            yield path

    def open_bytes(self, location: str, request: ReadRequest) -> BinaryIO:
        """Bytes held (a copied file) as they are; an object written by its formatter, as
        a put into a local repository would have written it."""
        held = self._get(location)
        if held.data is not None:
            return io.BytesIO(held.data)
        formatter = request.formatter()
        hdu = request.hdu if isinstance(request.hdu, int) else None
        buffer = io.BytesIO()
        if formatter.writes_streams:
            formatter.write_stream(held.obj, buffer, hdu=hdu, compress=request.compress)
        else:
            with tempfile.TemporaryDirectory(prefix="butler-memory-") as folder:
                path = Path(folder) / ("dataset" + (request.compress or ""))
                formatter.write(held.obj, path, hdu=hdu, compress=request.compress)
                buffer.write(path.read_bytes())
        buffer.seek(0)
        return buffer

    def exists(self, location: str) -> bool:
        with self._lock:
            return location in self._held

    def size(self, location: str) -> int | None:
        held = self._get(location)
        return None if held.data is None else len(held.data)

    def uri(self, path: str) -> str:
        return f"memory://{self.name}/{path}"

    def walk(self, skip: frozenset[str] = frozenset()) -> Iterator[str]:
        with self._lock:
            keys = sorted(k for k in self._held if not k.startswith(".") and k not in skip)
        return iter(keys)


def _call(request: ReadRequest, method: str, path: Path, args: tuple[Any, ...]) -> Any:
    formatter = request.formatter()
    if method == "read":
        return formatter.read(path, python_type=request.python_type, hdu=request.hdu)
    return getattr(formatter, method)(path, *args, hdu=request.hdu)


def _section(array: Any, bbox: BBox, location: str) -> Any:
    """The pixels inside ``bbox`` of an image's array, copied (as a read from a file is)."""
    import numpy as np

    shape = tuple(array.shape)
    if len(shape) < 2 or not bbox.fits_in(shape):
        raise FormatError(f"{bbox} is not inside the image {location!r} (shape {shape})")
    lead = (slice(None),) * (len(shape) - 2)
    return np.array(array[lead + bbox.slices])


def open_memory(url: str) -> MemoryDatastore:
    """An in-memory repository is reached only through the Butler that made it."""
    raise RepositoryError(
        f"cannot open {url!r}: an in-memory repository lives only in the process and Butler "
        "that created it; use that Butler (or Butler(that_butler.datastore) for a second "
        "one), or make a new one with Butler.in_memory(mapper=...)"
    )


def create_memory(url: str, copy: str | Mapping[str, str] | None = None) -> MemoryDatastore:
    """A new, empty in-memory repository named by ``memory://NAME`` (NAME may be empty)."""
    name = url[len("memory://") :].strip("/")
    return MemoryDatastore(name, CopyPolicy.of(copy))
