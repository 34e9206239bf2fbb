"""The Datastore interface: where and how a repository's dataset bytes live.

The Butler (``butler.py``) drives a :class:`Datastore` and the registry in the order that
keeps them consistent (see docs/runtime.md, "Crashes and recovery"); a back-end only
stores, publishes and reads. One module per back-end in this folder: ``local.py`` (files
under a folder), ``memory.py`` (objects held by the process). A back-end is chosen by the
repository's URL scheme in ``datastore/__init__.py`` (:data:`~butler.datastore.BACKENDS`);
docs/architecture.md, "Where a new back-end goes", says what a new one must do.

A **location** is the back-end's own name for one stored thing: a ``Path`` for local files
(the fast path: formatters read and write it directly), a key for the memory or an object
store. The Butler never looks inside one; it gets them from :meth:`Datastore.target` (a new
dataset's place), :meth:`Datastore.location` (a recorded dataset's place) and
:meth:`Datastore.write` (a temporary), and hands them back. Locations are hashable.

The write protocol, for every back-end:

1. :meth:`~Datastore.write` the object (or :meth:`~Datastore.write_stream` bytes) to a
   *temporary* location no reader sees; it returns the temporary and the size and checksum
   of what was written (recorded in the registry; ``get`` compares the size).
2. The registry row is written (not yet committed).
3. :meth:`~Datastore.link` the temporary (a put's journal entry) at the target, never
   replacing anything there (DatasetExistsError), or, for an overwrite,
   :meth:`~Datastore.replace` it, keeping the old content aside under a journal location;
   a remove :meth:`~Datastore.set_aside` s the content. (:meth:`~Datastore.publish` is
   the same step for a temporary outside the journal: calibrations copied in.)
4. The registry commits. Afterwards the Butler :meth:`~Datastore.discard` s the put's
   entry and what was kept aside; if the commit failed, it :meth:`~Datastore.restore` s
   that and discards the published content.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ..errors import DatasetCorruptError, RepositoryError

if TYPE_CHECKING:
    from ..checksums import FileChecksum
    from ..config import RepositoryConfig
    from ..formatters import Formatter
    from ..registry import Registry

__all__ = [
    "Datastore",
    "Journal",
    "Location",
    "ReadRequest",
    "Staged",
    "WriteRequest",
    "WrongSizeError",
]

#: A back-end's name for one stored thing (a Path for local files, a key elsewhere); hashable.
#: ``Any`` so that each back-end's methods take its own kind (``Path``, ``str``).
Location = Any


@dataclass(frozen=True)
class WriteRequest:
    """How to turn one object into bytes: what :meth:`Datastore.write` needs."""

    dataset_type: str
    #: Loads the format's formatter (FormatError naming a missing plug-in); a back-end
    #: that keeps objects as they are (memory) never calls it.
    formatter: Callable[[], Formatter]
    hdu: int | None
    compress: str | None


@dataclass(frozen=True)
class ReadRequest:
    """How to read one stored dataset: what :meth:`Datastore.read` needs."""

    dataset_type: str
    formatter: Callable[[], Formatter]
    python_type: str | None
    hdu: int | str | None
    #: The compression the dataset's path names (``.gz``), for a back-end that makes the
    #: stored bytes from an object (memory's :meth:`Datastore.open_bytes`).
    compress: str | None = None
    #: What the registry recorded of the dataset, when the reader knows it: its id (which
    #: names immutable content: an overwrite records a new id), and the size and checksum
    #: of its bytes. A back-end with :attr:`Datastore.checks_size` compares the size itself;
    #: a remote one keys its read cache by the id.
    dataset_id: str | None = None
    size: int | None = None
    checksum: str | None = None


class WrongSizeError(DatasetCorruptError):
    """Raised by :meth:`Datastore.read` of a back-end that :attr:`~Datastore.checks_size`:
    the stored bytes are ``size`` long, not the ``ReadRequest.size`` recorded (the Butler
    says which dataset, and what to do)."""

    def __init__(self, location: object, size: int, recorded: int) -> None:
        super().__init__(f"{location} has {size} bytes, but {recorded} were written")
        self.size = size


@dataclass(frozen=True)
class Staged:
    """A new dataset's bytes already in the store, uploaded by a client through a signed
    URL and checked by :meth:`Datastore.staged` (size and digest): ``Butler.put`` takes
    it in place of an object, and the back-end's ``write`` hands it back as the
    temporary, which ``publish`` copies to the dataset's key inside the store."""

    location: Location
    checksum: FileChecksum


class Journal(Protocol):
    """Where a write keeps what it replaces or removes until its commit settles.

    The local back-end's is the recovery journal (:mod:`butler.recovery`): files in
    ``.butler/pending`` that outlive a crash. A back-end without crashes to survive (memory)
    or with its own (an object store's versioning) gives names only.
    """

    def token(self) -> str:
        """A new operation's token (recorded by the registry commit that makes it real)."""

    def entry(self, token: str, kind: str, target: Location) -> Location:
        """A fresh journal location for ``target``: ``kind`` is kept, aside or new (with
        the operation's token), or put (with the dataset id as token)."""

    def close(self) -> None:
        """Release the journal (the owner's lock, for the local one)."""


class Datastore(ABC):
    """One repository's bytes: a storage back-end plus the formatters.

    Thread-safe: one datastore serves every thread of its Butler. Every failure a user
    can see is a :class:`~butler.errors.ButlerError`; ``OSError`` (and a formatter's
    errors) may pass through :meth:`read` and :meth:`write`, where the Butler names the
    dataset. The methods fall in four groups: the repository, writing, reading, and
    the walk used by ``verify`` and ``index``.
    """

    #: The URL scheme this back-end serves ("" for a local path).
    scheme: str = ""
    #: The repository's location, as messages show it: its folder, or for a back-end
    #: without one a Path whose text is its URL (``memory://name``; see ``local_root``).
    root: Path

    # ---- the repository ------------------------------------------------------------------

    @abstractmethod
    def read_config(self) -> RepositoryConfig:
        """The repository's configuration (``butler.yaml``); ConfigError if there is none."""

    @abstractmethod
    def write_config(self, config: RepositoryConfig) -> None:
        """Store the repository's configuration, replacing it atomically."""

    #: How many reads ``Butler.get_many`` runs at once (1: one after another; a remote
    #: back-end, whose reads wait on the network, more).
    read_concurrency: int = 1

    #: Whether :meth:`read` compares the stored size with ``ReadRequest.size`` itself
    #: (:class:`WrongSizeError`), from the read's own request: the Butler then asks no
    #: :meth:`size` first (for a remote store, a round trip saved on every get).
    checks_size: bool = False

    #: The registry a new repository gets unless ``Butler.create`` is given one.
    default_registry: str = "sqlite:///registry.sqlite3"

    @abstractmethod
    def creating(self) -> AbstractContextManager[None]:
        """Around a create: RepositoryError if a repository is already there; make its
        place, and if the block fails, leave nothing behind."""

    @abstractmethod
    def registry_url(self, url: str) -> str:
        """The configured registry URL resolved for opening (a relative SQLite file is
        relative to the root)."""

    def local_root(self, action: str) -> Path:
        """The local folder holding the datasets, for a feature that works on local files
        (ingest from files, verify's file walk, the recovery journal); RepositoryError
        naming ``action`` for a back-end without one."""
        raise RepositoryError(
            f"cannot {action} in repository {self.root}: it works on local files, and this "
            f"repository keeps its datasets in {self.scheme or 'local'}:// storage"
        )

    @abstractmethod
    def journal(self) -> Journal:
        """This Butler's journal (see :class:`Journal`), made when a Butler opens."""

    @abstractmethod
    def recover(self, registry: Registry, *, sweep: bool = False) -> int:
        """Finish the operations of Butlers that died mid-call (their journals); how many
        entries were finished. ``sweep`` also removes temporaries of writers that are gone."""

    def attach(self) -> None:
        """A Butler opened on this datastore (one :meth:`close` each)."""
        return None

    @abstractmethod
    def close(self) -> None:
        """A Butler using this datastore closed (an in-memory repository ends with its last)."""

    # ---- writing -------------------------------------------------------------------------

    @abstractmethod
    def target(self, relative: str) -> Location:
        """Where a new dataset at the policy path ``relative`` goes; InvalidDataIdError for
        a path that would leave the repository (``..``, absolute, too long)."""

    @abstractmethod
    def write(
        self,
        target: Location,
        obj: object,
        request: WriteRequest,
        *,
        sync: bool = True,
        at: Location | None = None,
    ) -> tuple[Location, FileChecksum | None]:
        """Write ``obj`` to a fresh temporary for ``target``; the temporary, and the size and
        checksum of the bytes written (None: the back-end keeps objects, not bytes).

        With ``sync=False`` the caller :meth:`sync` s the temporary before publishing it.
        ``at``: the temporary is the journal location ``at`` (a put's entry, from
        ``journal.entry(dataset_id, "put", target)``), published with :meth:`publish_entry`.
        """

    @abstractmethod
    def write_stream(
        self, target: Location, writer: Callable[[BinaryIO], None], *, sync: bool = True
    ) -> tuple[Location, FileChecksum]:
        """Write bytes (``writer`` fills an open binary file) to a fresh temporary for
        ``target`` (a copied calibration file); the temporary, its size and checksum."""

    def link(self, local: Path, target: Location) -> Location | None:
        """A temporary for ``target`` that is a hard link to the local file ``local`` (the
        fast path of ``--transfer link``/``move`` between local repositories), not synced;
        None if this back-end cannot link to it (not local files, another file system):
        the caller copies the bytes instead."""
        return None

    @abstractmethod
    def sync(self, locations: Sequence[Location], *, missing_ok: bool = False) -> None:
        """Make written temporaries (or published datasets) durable; ``missing_ok`` skips
        ones removed since."""

    @abstractmethod
    def publish(self, temporary: Location, target: Location) -> None:
        """Make the temporary the dataset at ``target`` in one step that never replaces
        anything: DatasetExistsError if ``target`` is taken (the temporary stays)."""

    @abstractmethod
    def publish_entry(self, temporary: Location, target: Location) -> None:
        """:meth:`publish` a temporary written ``at`` a journal entry, which keeps naming the
        content until the Butler :meth:`discard` s it after the commit: so recovery can tell
        a dead put's published file (the entry and the target are one file) and delete it
        unless the registry holds the put's dataset id. DatasetExistsError if ``target``
        is taken. A back-end that cannot keep both names moves the content (as
        :meth:`publish`)."""

    @abstractmethod
    def replace(self, temporary: Location, target: Location, keep_as: Location) -> bool:
        """Make the temporary the dataset at ``target``, keeping what was there at the
        journal location ``keep_as`` (``target`` is never missing meanwhile); whether
        there was something to keep."""

    @abstractmethod
    def set_aside(self, target: Location, aside: Location) -> bool:
        """Move a removed dataset's content to the journal location ``aside``; False if
        there was none."""

    @abstractmethod
    def restore(self, kept: Location, target: Location) -> None:
        """Put content kept by :meth:`replace` or :meth:`set_aside` back at ``target``."""

    @abstractmethod
    def discard(self, location: Location) -> None:
        """Delete a temporary, a journal entry or a published dataset; no error if absent."""

    # ---- reading -------------------------------------------------------------------------

    @abstractmethod
    def location(self, path: str) -> Location:
        """The location of a dataset recorded at ``path`` (relative to the root, or, for a
        file left where another tool put it, absolute)."""

    @abstractmethod
    def check_inside(self, path: str) -> None:
        """RepositoryError if removing the dataset at ``path`` would reach outside the
        repository (a folder that is a link elsewhere)."""

    @abstractmethod
    def read(self, location: Location, request: ReadRequest, method: str, *args: Any) -> Any:
        """Read the dataset at ``location``: ``method`` is ``read`` (the object),
        ``read_metadata``, ``read_section`` (``args``: the BBox) or ``read_table_info``,
        as the formatter defines them. FileNotFoundError (or a formatter's error) if it is
        missing; FormatError if the back-end cannot answer ``method`` for it."""

    def open_bytes(
        self, location: Location, request: ReadRequest
    ) -> AbstractContextManager[BinaryIO]:
        """The stored bytes of the dataset at ``location``, as a binary file open for
        reading (closed by the ``with`` block): what export, import and transfer copy out
        of a repository. A back-end that keeps objects, not bytes, writes the object with
        its formatter (``request``). FileNotFoundError if nothing is there.

        Every back-end must give them; this default refuses, naming the back-end."""
        raise RepositoryError(
            f"cannot read the stored bytes of {location!r} in {self.root}: the "
            f"{self.scheme or 'local'}:// back-end does not give them (Datastore.open_bytes)"
        )

    def local_file(self, location: Location) -> Path | None:
        """The local file holding the dataset at ``location``, if this back-end keeps plain
        local files (the fast path: a hard link, a read by path); None otherwise."""
        return None

    @abstractmethod
    def exists(self, location: Location) -> bool:
        """Whether something is stored at ``location``."""

    @abstractmethod
    def size(self, location: Location) -> int | None:
        """The stored size in bytes (checked against the registry's on get); None if the
        back-end keeps no bytes. FileNotFoundError if nothing is there."""

    @abstractmethod
    def uri(self, path: str) -> str:
        """The URI of the dataset recorded (or to be written) at ``path``."""

    # ---- signed URLs (a server hands bytes to its clients through the store) -------------

    #: Whether :meth:`signed_download` and :meth:`signed_upload` give URLs.
    signs_urls = False

    def signed_download(self, location: Location, *, expires: int) -> str | None:
        """A URL that reads the dataset at ``location`` directly from the store for
        ``expires`` seconds; None (the default) for a back-end whose bytes are read
        through the process holding them."""
        return None

    def signed_upload(
        self, name: str, *, size: int, md5: str, checksum: str, expires: int
    ) -> tuple[str, dict[str, str]] | None:
        """A URL (and the headers it must be sent with) to which a client PUTs the bytes
        of one new dataset, staged under ``name`` (unique per upload); None (the default)
        for a back-end that takes uploads through the process holding it."""
        return None

    def staged(self, name: str, *, size: int, md5: str, checksum: str) -> Staged:
        """The upload staged under ``name``, once the store shows it has ``size`` bytes of
        MD5 digest ``md5`` (hex); DatasetCorruptError (and the upload discarded) if not,
        DatasetNotFoundError if nothing was uploaded."""
        raise RepositoryError(f"{self.root} takes no signed uploads")

    def read_private(self, name: str) -> bytes | None:
        """The repository's own file ``.butler/<name>`` (a served repository's token
        hashes), None if there is none; a back-end without such files refuses."""
        raise RepositoryError(f"{self.root} keeps no files of its own ({name})")

    def write_private(self, name: str, data: bytes) -> None:
        """Replace the repository's own file ``.butler/<name>`` with ``data``."""
        raise RepositoryError(f"{self.root} keeps no files of its own ({name})")

    def unstage(self, name: str) -> None:
        """Delete what was uploaded under ``name``, if anything (an upload never committed)."""
        return None

    # ---- the walk (verify, index) --------------------------------------------------------

    @abstractmethod
    def walk(self, skip: frozenset[str] = frozenset()) -> Iterator[str]:
        """Every stored dataset's path relative to the root, sorted, except ``skip``
        (the repository's own files)."""
