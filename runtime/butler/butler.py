"""``Butler``: read and write datasets by name and data ID.

    butler = Butler.create("repo", mapper="hsc")
    butler.put(image, "calexp", visit=903334, ccd=16)
    image = butler.get("calexp", visit=903334, ccd=16)

A repository is a folder with a ``butler.yaml`` (see :mod:`butler.config`), a
registry (SQLite inside the folder by default, or PostgreSQL by URL) and the
dataset files at the paths the instrument's policy gives them. The registry is
the record of what is stored: a dataset exists when its row does, and every
row's file is in place before the row is committed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import creation
from .chain import Chain, ParentLike, prepare_parents
from .checksums import FileChecksum
from .config import CONFIG_NAME, DURABILITY, RepositoryConfig, software_versions
from .dataid import DataId
from .dataset_types import runtime_definition
from .datastore import (
    Datastore,
    Location,
    WrongSizeError,
    create_datastore,
    open_datastore,
)
from .errors import (
    AmbiguousDataIdError,
    ButlerError,
    DatasetCorruptError,
    DatasetExistsError,
    DatasetNotFoundError,
    ForeignRefError,
    FormatError,
    InvalidDataIdError,
    ReadOnlyError,
    RegistryError,
    RemoteError,
    RepositoryError,
    StorageFullError,
)
from .formatters import BBox, FormatterRegistry, TableInfo
from .loading import load_mapper
from .mapper import Mapper
from .member import ChainMember, RuntimeTypes
from .object_cache import ObjectCache
from .overrides import SessionConfig
from .provenance import Provenance
from .query.keywords import has_collections, is_collection
from .recovery import PENDING
from .refs import DatasetRef, parse_ref
from .registry import Registry, new_dataset_id
from .resolved import Found, Plan
from .spec import DatasetTypeSpec, Value
from .storage import LocalStorage, out_of_space

if TYPE_CHECKING:  # calibrations (issue 4): the logic is in calibrations.py
    from .calibrations import CalibrationRef, Calibrations, Certification
    from .ingest import IngestReport, InstrumentRules, Transfer
    from .maintenance import IndexReport, VerifyReport
    from .moving import MoveReport
    from .skymap import SkyMap

__all__ = ["Butler"]

DEFAULT_REGISTRY = "sqlite:///registry.sqlite3"
#: How many candidates an ambiguity error lists.
CANDIDATE_LIMIT = 10
#: With ``durability: close``, how many put files may wait for :meth:`Butler.sync`.
SYNC_BATCH = 10_000


@dataclass(frozen=True)
class _Change:
    """One file change awaiting its commit (see :mod:`butler.recovery`).

    ``target`` is the dataset's file. ``new``: it holds a file this call published
    (undone by deleting it). ``journal``: the entry in the recovery journal, if any:
    the replaced file kept, the removed file set aside (put back by an undo), or a
    new file's temporary, its second name; deleted once the commit succeeded.
    """

    target: Location
    journal: Location | None
    new: bool


class _FileActions(threading.local):
    """Per thread: file changes of an open :meth:`Butler.transaction`, settled when it ends."""

    def __init__(self) -> None:
        self.open = False
        # In the order they happened. A rollback undoes them last first, so "put X,
        # remove X" leaves nothing behind and overwriting X twice leaves X's file from before.
        self.journal: list[_Change] = []
        self.token = ""  # the transaction's token in the recovery journal


def _no_step(step: str) -> None:
    """The default step hook: nothing (see ``steps`` in :class:`Butler`)."""


def _plain_query(
    data_id: Mapping[str, object] | None, keys: Mapping[str, object], *options: object
) -> bool:
    """Whether a query is a plain partial data ID (the fast path): no option, no list."""
    for option in options:
        if option is not None and option != ():
            return False
    return not has_collections(data_id, keys)


def _columns(sums: FileChecksum | None) -> dict[str, Any]:
    """The registry's ``size`` and ``checksum`` arguments (None: a back-end keeping objects)."""
    if sums is None:
        return {"size": None, "checksum": None}
    return dict(sums.columns())


def _format_data_id(data_id: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in data_id.items()) + "}"


class Butler:
    """A repository opened for reading and (unless ``writeable=False``) writing."""

    def __new__(cls, root: object = None, *args: Any, **kwargs: Any) -> Butler:
        """A local repository; for an ``http(s)://`` URL, the client of a served one, with the
        same methods (:class:`butler.remote.client.RemoteButler`; docs/remote.md)."""
        if isinstance(root, str) and root.startswith(("http://", "https://")):
            from .remote.client import RemoteButler

            remote = cls if issubclass(cls, RemoteButler) else RemoteButler
            return super().__new__(remote)  # whose __init__ Python calls next
        if "token" in kwargs:
            raise RepositoryError(
                f"token= is for a remote repository (an http(s):// URL), not {root!r}"
            )
        return super().__new__(cls)

    def __init__(
        self,
        root: str | os.PathLike[str] | Datastore,
        *,
        writeable: bool = True,
        mapper: str | None = None,
        parents: bool = True,
        config: SessionConfig | None = None,
        steps: Callable[[str], object] | None = None,
        object_cache: bool | Iterable[str] = False,
    ) -> None:
        """Open a repository and its chain of parents (see :mod:`butler.chain`).

        ``mapper`` replaces the configured mapper; ``parents=False`` opens the
        repository alone; ``config`` holds session overrides (``KEY=VALUE`` items or a
        mapping; default ``$BUTLER_CONFIG``; see :mod:`butler.overrides`).

        A writeable repository first finishes the operations of Butlers that died
        mid-call (see :mod:`butler.recovery`). ``steps`` is for fault-injection tests:
        it is called with the name of each step boundary a write passes
        (``written``, ``published``, ``set aside``, ``committed``, ``settled``; see
        :class:`butler.testing.CrashAt`).

        ``object_cache`` (``True``, or the dataset types to cache) makes a get of a dataset
        this process already holds return that object (see :mod:`butler.object_cache`).

        ``root`` is a folder, or a URL a storage back-end serves (see
        :mod:`butler.datastore`), or the :attr:`datastore` of an open Butler (a second
        Butler on the same in-memory repository).
        """
        #: Where and how the datasets live (see butler.datastore.base and docs/architecture.md).
        self.datastore: Datastore = root if isinstance(root, Datastore) else open_datastore(root)
        self.root = self.datastore.root
        self.config: RepositoryConfig = self.datastore.read_config()
        self.writeable = writeable and not self.config.read_only
        #: What the mapper was loaded from (a generated file, a module or an instrument),
        #: for processes that load it again (``ingest(jobs=N)``).
        self.mapper_source: str = self._mapper_spec(mapper or self.config.mapper)
        self.mapper: Mapper = load_mapper(self.mapper_source)
        self.registry = creation.open_registry(
            self.root,
            self.datastore.registry_url(self.config.registry),
            read_only=not self.writeable,
        )
        if self.writeable:  # registries made before checksums: add their columns (issue 12)
            with contextlib.suppress(RegistryError):  # a database this user cannot alter
                self.registry.upgrade_checksums()
        self.formatters = FormatterRegistry.default()
        #: The repository's UUID (None: a repository made before ids, opened read-only).
        self.repository_id: str | None = self.registry.repository_id
        self.datastore.attach()
        self._journal = self.datastore.journal()
        self._step: Callable[[str], object] = steps or _no_step
        self._settled: list[str] = []  # committed tokens whose files are settled
        self._settled_lock = threading.Lock()
        try:
            if self.writeable:
                self._recover()
            self.chain = Chain.open(self, parents=parents, config=config)
        except BaseException:
            self.registry.close()
            self.datastore.close()
            raise
        self.use_mapper(self.chain.mapper)
        self.provenance = Provenance(self)
        self._plans: dict[str, Plan] = {}
        self._registered: set[str] = set()
        self._local = _FileActions()
        self._objects: ObjectCache | None = None
        if object_cache:
            self.cache_objects(None if object_cache is True else object_cache)
        # Files of puts not yet fsynced (durability "close"), synced by sync() and close().
        self._sync_each_put = self.config.durability == "put"
        self._unsynced: list[Location] = []
        self._unsynced_lock = threading.Lock()

    # ---- creating and opening -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str] | Datastore,
        mapper: str | os.PathLike[str],
        registry: str | None = None,
        *,
        parents: Iterable[ParentLike] = (),
        overrides: Mapping[str, object] | None = None,
        durability: str = "put",
    ) -> Butler:
        """Create a repository at ``root`` for ``mapper`` and open it.

        ``mapper`` is a bundled instrument name (``"hsc"``), an importable module
        name, or a path to a generated module. ``registry`` is an SQLAlchemy URL;
        the default is an SQLite file inside the repository. ``parents`` (roots, or
        ``(root, mapper)`` pairs) are read after it, in order (see :mod:`butler.chain`);
        ``overrides`` are repository-level overrides (see :mod:`butler.overrides`).
        ``durability`` says when a put's file is forced to disk: ``"put"`` (before
        each put returns) or ``"close"`` (see :meth:`sync`).

        ``root`` may be a URL a storage back-end serves: ``memory://name`` makes an
        in-memory repository (see :meth:`in_memory`); a scheme no back-end serves
        (``s3://`` until its back-end exists) raises RepositoryError.
        """
        if durability not in DURABILITY:
            raise RepositoryError(
                f"durability must be one of {', '.join(map(repr, DURABILITY))}, not {durability!r}"
            )
        datastore = root if isinstance(root, Datastore) else create_datastore(root)
        if registry is not None:
            creation.check_registry_url(registry)
        with datastore.creating():  # refuses a repository there; a failure leaves nothing
            loaded = load_mapper(mapper)
            chained = prepare_parents(datastore.root, loaded, parents, overrides or {}, cls)
            # A generated module given by path is recorded absolutely; names stay names.
            spec = str(Path(mapper).absolute()) if str(mapper).endswith(".py") else str(mapper)
            config = RepositoryConfig(
                mapper=spec,
                registry=registry or datastore.default_registry,
                parents=chained,
                created_by=software_versions(),
                overrides=dict(overrides or {}),
                durability=durability,
            )
            url = datastore.registry_url(config.registry)
            creation.refuse_existing_registry(datastore.root, url)
            created_by = {f"created_by.{k}": v for k, v in config.created_by.items()}
            with Registry.create(url, loaded.spec, metadata=created_by) as made:
                config = replace(config, repository_id=made.repository_id)
            datastore.write_config(config)
            return cls(datastore)

    @classmethod
    def in_memory(
        cls,
        mapper: str | os.PathLike[str],
        *,
        name: str = "",
        parents: Iterable[ParentLike] = (),
        copy: str | Mapping[str, str] | None = None,
        overrides: Mapping[str, object] | None = None,
    ) -> Butler:
        """A new repository held in this process: datasets are objects in memory, the
        registry an in-memory SQLite database; it ends when the Butler closes.

        ``copy`` says how objects go in and out: ``"assign"`` (the default: a get returns
        the object put), ``"copy"`` or ``"deepcopy"``, for every dataset type or per
        dataset type (``{"calexp": "deepcopy"}``). ``parents`` are on-disk repositories
        read after it (an in-memory output over its inputs). URIs are
        ``memory://NAME/PATH``. See docs/runtime.md, "The in-memory repository".
        """
        from .datastore.memory import create_memory  # loaded only for in-memory repositories

        datastore = create_memory(f"memory://{name}", copy)
        return cls.create(datastore, mapper, parents=parents, overrides=overrides)

    @property
    def storage(self) -> LocalStorage:
        """The dataset files of a repository on disk (RepositoryError for another back-end).
        The Butler itself reads and writes through :attr:`datastore`."""
        return LocalStorage(self.datastore.local_root("reach the dataset files"))

    def _recover(self) -> None:
        """Finish the operations of Butlers that died mid-call (see butler.recovery)."""
        try:
            self.datastore.recover(self.registry)
        except OSError as error:
            raise RepositoryError(
                f"cannot finish the interrupted operations in {self.root / PENDING}: {error}; "
                "fix that and open the repository again (writeable=False opens it for reading)"
            ) from error

    def _mapper_spec(self, spec: str) -> str:
        if spec.endswith(".py") and not Path(spec).is_absolute():
            return str(self.root / spec)
        return spec

    def close(self) -> None:
        """Sync the files of unsynced puts (see :meth:`sync`); release the connections."""
        try:
            self.sync()
            self._forget_settled()
        finally:
            self._journal.close()
            self.chain.close()
            self.registry.close()
            self.datastore.close()

    def sync(self) -> None:
        """Force the files of the puts made since the last sync to disk.

        Only a repository with ``durability: close`` has any: there a put returns
        once its file is linked into place and recorded, and the files are fsynced
        together here, by :meth:`close`, or every ``SYNC_BATCH`` puts. With
        ``durability: put`` (the default) each put has already synced its file.
        """
        with self._unsynced_lock:
            files, self._unsynced = self._unsynced, []
        try:
            self.datastore.sync(files, missing_ok=True)
        except OSError as error:
            raise RepositoryError(
                f"cannot force {len(files)} dataset files in {self.root} to disk: {error}"
            ) from error

    def _defer_sync(self, files: Iterable[Location]) -> None:
        with self._unsynced_lock:
            self._unsynced.extend(files)
            full = len(self._unsynced) >= SYNC_BATCH
        if full:
            self.sync()

    def __enter__(self) -> Butler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "" if self.writeable else ", writeable=False"
        return f"Butler({str(self.root)!r}{mode})"

    # ---- dataset types ----------------------------------------------------------------------

    @property
    def dataset_types(self) -> tuple[str, ...]:
        return self.mapper.dataset_types

    def register_dataset_type(
        self,
        name: str | None = None,
        *,
        template: str | None = None,
        format: str | None = None,
        keys: Iterable[str] = (),
        doc: str = "",
        text: str | None = None,
    ) -> None:
        """Define a dataset type in this repository (see :mod:`butler.dataset_types`).

        Give ``name``, ``template``, ``format`` and ``keys``, or ``text``: definitions in
        the policy language. Checked by the compiler's rules; DatasetTypeDefinitionError
        with its diagnostics, ConflictError if ``name`` is registered differently.
        """
        self.check_writeable(f"register dataset type {name or '(text)'}")
        text, file = runtime_definition(name, template, format, keys, doc, text)
        self.use_mapper(self.chain.register(self, text, file))

    # ---- the package interface ------------------------------------------------------------------
    #
    # ---- as a parent of a chain (butler.member.ChainMember: what a chain asks of it) ---------

    @property
    def address(self) -> str:
        """Where the repository is, as messages name it: its root (or URL)."""
        return str(self.root)

    @property
    def description(self) -> str:
        """``ROOT (registry URL)``: what a failed lookup says it searched."""
        return f"{self.root} (registry {self.registry.url})"

    @property
    def instrument(self) -> str | None:
        """The instrument of the repository's mapper."""
        return self.mapper.name

    def dataset_keys(self, dataset_type: str) -> Mapping[str, str]:
        """Each key of ``dataset_type``'s data IDs -> its type name."""
        return self.mapper.keys(dataset_type)

    def runtime_types(self) -> RuntimeTypes:
        """The dataset types registered at run time here, with the policy's keys and formats."""
        spec = self.mapper.spec
        defined = tuple(self.mapper.dataset_type(name) for name in self.chain.own_types)
        return RuntimeTypes(defined, tuple(spec.keys), tuple(spec.formats))

    def query_rows(
        self, dataset_type: str, partial: Mapping[str, Value]
    ) -> Iterator[Mapping[str, Value]]:
        """The registry's rows of the stored data IDs matching ``partial`` (normalized)."""
        if not self.is_registered(dataset_type):
            return iter(())
        return self.registry.query(dataset_type, partial)

    def local(self) -> Butler | None:
        """This Butler: its registry runs SQL in this process."""
        return self

    def find_ref(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, **keys: object
    ) -> DatasetRef | None:
        """The ref of the dataset :meth:`get` would read (a calibration named by an
        observation: the one certified for it), or None if none is stored; raises as get
        does for a data ID that is invalid or ambiguous."""
        try:
            plan, _, found = self._resolve(dataset_type, data_id, keys)
        except DatasetNotFoundError:  # no calibration valid for the observation
            return None
        if found is None:
            return None
        if found.ref is not None:
            return found.ref
        name = plan.spec.name
        record = self.registry.find_ref(name, self.restrict(plan, found.data_id))
        if record is None or record[1] is None or self.repository_id is None:
            return None  # removed meanwhile, or a version 1 repository read-only: no ids
        return DatasetRef(name, found.data_id, record[1], record[2], self.repository_id)

    # Public inside the package, for the features built on the Butler (calibrations, chain,
    # ingest, maintenance, provenance, curated calibrations; see docs/architecture.md):
    # they call these, never the Butler's underscore names. Users need none of them.

    def locate(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> tuple[Plan, Found]:
        """The plan and find of the dataset get would read (the remote server streams its
        file); DatasetNotFoundError naming where it looked."""
        return self._locate(dataset_type, data_id, keys)

    def use_mapper(self, mapper: Mapper) -> None:
        """Read and write with ``mapper`` from now on (runtime dataset types were added)."""
        self.mapper = mapper
        self._formats = {f.name: f for f in mapper.spec.formats}

    def plan(self, dataset_type: str) -> Plan:
        """The :class:`Plan` of a dataset type (cached); its formatter loads on first use."""
        plan = self._plans.get(dataset_type)
        if plan is not None:
            return plan
        spec = self.chain.dataset_type(self, dataset_type)
        fmt = self._formats[spec.format]
        compress = next((c for c in fmt.compressed if spec.template.endswith(c)), None)
        plan = Plan(spec, fmt, self.formatters, frozenset(spec.keys), compress)
        self._plans[dataset_type] = plan
        return plan

    def ensure_registered(self, plan: Plan) -> None:
        """Create the dataset type's registry table if this Butler has not yet."""
        name = plan.spec.name
        if name not in self._registered:
            self.registry.register_dataset_type(name, self.mapper.keys(name))
            self._registered.add(name)

    def is_registered(self, name: str) -> bool:
        """Whether the registry has a table for dataset type ``name``."""
        if name in self._registered:
            return True
        if self.registry.has_dataset_type(name):
            self._registered.add(name)
            return True
        return False

    # ---- data IDs ------------------------------------------------------------------------------

    def normalize(
        self,
        data_id: Mapping[str, object] | None,
        keys: Mapping[str, object],
        dataset_type: str | None = None,
    ) -> DataId:
        """A data ID and extra keys, normalized by this repository's mapper (with the patch
        written as ``dataset_type``'s skymap writes it, when one is given)."""
        if dataset_type is not None:
            return self._normalize_for(self.mapper.dataset_type(dataset_type), data_id, keys)
        return self.mapper.normalize(data_id, **keys)

    def _normalize_for(
        self,
        spec: DatasetTypeSpec,
        data_id: Mapping[str, object] | None,
        keys: Mapping[str, object],
    ) -> DataId:
        """:meth:`normalize` for a dataset type whose spec get and put already hold."""
        if spec.skymap:
            given = {**(data_id or {}), **keys}
            return self.mapper.normalize(self.mapper.sky_keys(spec.name, given))
        return self.mapper.normalize(data_id, **keys)

    def skymap(self, name: str) -> SkyMap:
        """The skymap ``name`` as this repository's policy defines it (``hsc_rings_v1``):
        ``find_tract(ra, dec)``, ``find_patch``, ``tracts_overlapping(region)``,
        ``patches_overlapping(region)``, ``tract(n).wcs`` and ``.region``. An unknown name
        raises UnknownSkyMapError naming the policy's skymaps."""
        return self.mapper.skymap(name)

    def restrict(self, plan: Plan, data_id: Mapping[str, Value]) -> dict[str, Value]:
        """Only the items of ``data_id`` that are keys of the plan's dataset type."""
        return {k: v for k, v in data_id.items() if k in plan.keys}

    def candidates(self, dataset_type: str, partial: Mapping[str, Value]) -> list[dict[str, Value]]:
        """Up to CANDIDATE_LIMIT + 1 stored data IDs here that complete ``partial``."""
        if not self.is_registered(dataset_type):
            return []
        return self.registry.complete(dataset_type, partial, CANDIDATE_LIMIT + 1)

    def _ambiguous(
        self,
        what: str,
        dataset_type: str,
        partial: Mapping[str, Value],
        rows: list[dict[str, Value]],
    ) -> AmbiguousDataIdError:
        shown = "\n".join(f"  {_format_data_id(r)}" for r in rows[:CANDIDATE_LIMIT])
        more = "\n  ... and more" if len(rows) > CANDIDATE_LIMIT else ""
        return AmbiguousDataIdError(
            f"{what}: data ID {_format_data_id(partial)} matches several {dataset_type!r} "
            f"datasets; add keys to choose one:\n{shown}{more}"
        )

    def _complete_for_write(self, plan: Plan, data_id: DataId) -> DataId:
        """The data ID with all the dataset type's keys; ``lookup`` keys come from the registry."""
        spec = plan.spec
        missing = [k for k in spec.keys if k not in data_id]
        fillable = [k for k in missing if k in spec.lookup]
        if fillable and spec.lookup_from is not None:
            source = spec.lookup_from
            source_keys = set(self.mapper.keys(source))
            partial = {k: v for k, v in data_id.items() if k in source_keys}
            rows = self.candidates(source, partial) or self.chain.candidates(self, source, partial)
            if len(rows) > 1:
                raise self._ambiguous(
                    f"cannot fill {', '.join(fillable)} for {spec.name!r}", source, partial, rows
                )
            if not rows:
                raise InvalidDataIdError(
                    f"data ID {_format_data_id(data_id)} for {spec.name!r} lacks "
                    f"{', '.join(fillable)}, and no {source!r} dataset matches "
                    f"{_format_data_id(partial)} to fill them from; give them explicitly"
                )
            data_id = self.mapper.normalize(data_id, **{k: rows[0][k] for k in fillable})
            missing = [k for k in spec.keys if k not in data_id]
        if missing:
            raise InvalidDataIdError(
                f"data ID {_format_data_id(data_id)} for {spec.name!r} lacks "
                f"{', '.join(missing)} (its keys are {', '.join(spec.keys) or 'none'})"
            )
        return data_id

    def find_dataset(self, plan: Plan, data_id: DataId) -> Found | None:
        """:meth:`_find_here`, then the parents in order (find-first; see butler.chain)."""
        found = self._find_here(plan, data_id)
        if found is None and self.chain.parents:
            return self.chain.find(self, plan, data_id)
        return found

    def _find_here(self, plan: Plan, data_id: DataId) -> Found | None:
        """The complete data ID and stored path of the one dataset matching ``data_id``."""
        name = plan.spec.name
        restricted = self.restrict(plan, data_id)
        if len(restricted) == len(plan.keys):
            if not self.is_registered(name):
                return None
            row = self.registry.stored_ref(name, restricted)
            if row is None:
                return None
            stored, dataset_id = row
            return Found(data_id, stored.path, self, dataset_id, stored.size, stored.checksum)
        rows = self.candidates(name, restricted)
        if len(rows) > 1:
            raise self._ambiguous(f"get {name!r}", name, restricted, rows)
        if not rows:
            return None
        row = self.registry.stored_ref(name, rows[0])
        if row is None:
            return None
        stored, dataset_id = row
        complete = self.mapper.normalize(data_id, **rows[0])
        return Found(complete, stored.path, self, dataset_id, stored.size, stored.checksum)

    def _resolve(
        self, dataset_type: str, data_id: Mapping[str, object] | None, keys: Mapping[str, object]
    ) -> tuple[Plan, DataId, Found | None]:
        """The one way a data ID is resolved, for get, exists, uri and explain alike.

        Normalize; for a calibration named by an observation (or with ``as_of``; see
        :meth:`_by_observation`), the certified calibration valid for it (see
        calibrations.py); otherwise the one
        stored dataset matching the (possibly partial) data ID, here and then in the
        parents. Returns the plan of the repository that holds it (its format wins),
        the normalized data ID as given, and the find (None: not stored).
        """
        plan = self.plan(dataset_type)
        if self._by_observation(plan, data_id, keys):  # by observation time: calibrations.py
            try:
                located = self._calibrations().locate(plan, data_id, keys)
            except DatasetNotFoundError:  # none certified here: the parents' (find-first)
                inherited = self._parent_calibration(plan, {**(data_id or {}), **keys})
                if inherited is None:
                    raise
                return plan, inherited.data_id, inherited
            if located is not None:
                calibration_plan, complete, path = located
                return calibration_plan, complete, Found(complete, path, self)
        normalized = self._normalize_for(plan.spec, data_id, keys)
        return plan, normalized, self.find_dataset(plan, normalized)

    def _parent_calibration(self, plan: Plan, given: Mapping[str, object]) -> Found | None:
        """The calibration the first parent certifies for an observation (None: none does)."""
        if not self.chain.parents:
            return None
        rest = dict(given)
        as_of = rest.pop("as_of", None)
        answer = self.chain.find_calibration(plan.spec.name, rest, as_of)
        if answer is None:
            return None
        member, calibration = answer
        ref = member.find_ref(plan.spec.name, dict(calibration.data_id))
        return None if ref is None else self.chain.found(self, member, ref)

    def _calibrations(self) -> Calibrations:
        """This Butler's calibration manager (calibrations.py, imported on first use: most
        sessions never certify or look a calibration up by an observation)."""
        from .calibrations import for_butler

        return for_butler(self)

    def _by_observation(
        self, plan: Plan, data_id: Mapping[str, object] | None, keys: Mapping[str, object]
    ) -> bool:
        """Whether a calibration is asked for by an observation (or ``as_of``).

        A data ID with a key of the observation that is not the calibration's own
        (``visit``, the time it is valid by) names an observation; one with only the
        calibration's own keys (``ccd=5``) is completed from the stored calibrations,
        like any dataset's.
        """
        calibration = plan.spec.calibration
        if calibration is None:
            return False
        given = {**(data_id or {}), **keys}
        if "as_of" in given:
            return True
        observed = {calibration.valid_by}
        if calibration.observation in self.mapper.dataset_types:
            observed.update(self.mapper.keys(calibration.observation))
        normalized = self.normalize(given, {})
        return any(key in observed and key not in plan.keys for key in normalized)

    def _locate(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None,
        keys: Mapping[str, object],
    ) -> tuple[Plan, Found]:
        """:meth:`_resolve` (or :meth:`_locate_ref`), or DatasetNotFoundError naming where
        it looked."""
        if isinstance(dataset_type, DatasetRef):
            return self._locate_ref(dataset_type, data_id, keys)
        plan, normalized, found = self._resolve(dataset_type, data_id, keys)
        if found is None:
            searched = self.chain.searched(self)
            detail = (  # the compiler guarantees a template's fields are among the keys
                f"would be at {self.mapper.path(dataset_type, normalized)!r}"
                if plan.keys.issubset(normalized)
                else f"no stored {dataset_type!r} matches these keys"
            )
            raise DatasetNotFoundError(
                f"no dataset {dataset_type!r} with data ID {_format_data_id(normalized)} in "
                f"repository {self.root} ({detail}; searched {searched})"
            )
        return plan, found

    # ---- dataset refs (see butler.refs) ------------------------------------------------------

    def _holder(self, ref: DatasetRef) -> ChainMember:
        """The repository of this chain that ``ref`` names; ForeignRefError if none."""
        if not isinstance(ref, DatasetRef):
            raise InvalidDataIdError(f"expected a DatasetRef, not {ref!r}")
        if self.repository_id == ref.repository:
            return self
        parent = self.chain.holder(ref)
        if parent is not None:
            return parent
        raise ForeignRefError(
            f"dataset ref {ref} ({ref.dataset_type!r} {_format_data_id(ref.data_id)}) is from "
            f"repository {ref.repository}, which is not {self.chain.searched(self)}; open that "
            "repository (or a chain that holds it) to use the ref, or ask by data ID"
        )

    def _locate_ref(
        self, ref: DatasetRef, data_id: Mapping[str, object] | None, keys: Mapping[str, object]
    ) -> tuple[Plan, Found]:
        """The dataset ``ref`` names, in the repository holding it; DatasetNotFoundError if it
        was removed or overwritten since (a stale ref), ForeignRefError if not in the chain."""
        if data_id is not None or keys:
            raise InvalidDataIdError(
                f"a DatasetRef names its dataset alone; give no data ID with it (got "
                f"{_format_data_id({**(data_id or {}), **keys})})"
            )
        holder = self._holder(ref)
        if holder is not self:  # a parent's: read by the ref, which the parent checks
            return self.plan(ref.dataset_type), self.chain.found(self, holder, ref)
        stored = self.registry.stored_id(ref.dataset_type, ref.id)
        if stored is None:
            raise DatasetNotFoundError(
                f"dataset ref {ref} ({ref.dataset_type!r} {_format_data_id(ref.data_id)}) is "
                f"stale: repository {self.root} holds no dataset with id {ref.id} (it was "
                "removed, or overwritten, which records a new id); ask by data ID for what is "
                "stored now"
            )
        found = Found(ref.data_id, stored.path, self, ref.id, stored.size, stored.checksum)
        return self.plan(ref.dataset_type), found

    def datalink_url(self, ref: DatasetRef | str) -> str:
        """The URL of ``ref``'s IVOA DataLink table; a repository opened from its folder has
        no URL, so this raises RemoteError saying how to get one (a remote Butler answers)."""
        raise RemoteError(
            f"the repository at {self.root} is opened from its folder and has no URL, so "
            f"dataset {ref} has no DataLink URL; serve it (`butler serve {self.root}`) and ask "
            "a Butler opened at its URL (Butler('http://HOST:PORT/repos/NAME', token=...))"
        )

    def get_ref(self, text: str) -> DatasetRef:
        """The ref of ``str(ref)`` (``butler:<repository-uuid>/<dataset-uuid>``), looked up in
        this chain; ForeignRefError, or DatasetNotFoundError if no such dataset is stored."""
        repository, dataset_id = parse_ref(text)
        probe = DatasetRef("", DataId(), dataset_id, None, repository)
        holder = self._holder(probe)
        if holder is not self:
            ref = holder.get_ref(text)
            return replace(ref, data_id=self.mapper.normalize(dict(ref.data_id)))
        name = self.registry.dataset_type_of(dataset_id)
        row = None if name is None else self.registry.find_id(name, dataset_id)
        if name is None or row is None:
            raise DatasetNotFoundError(
                f"no dataset with id {dataset_id} in repository {self.root} (ref {text}): it "
                "was removed, or overwritten, which records a new id"
            )
        data_id, _, run, _ = row
        return DatasetRef(name, self.mapper.normalize(data_id), dataset_id, run, repository)

    def query_datasets(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        with_datasets: Iterable[str] = (),
        without_datasets: Iterable[str] = (),
        order_by: str | Sequence[str] = (),
        limit: int | None = None,
        region: object = None,
        contains: object = None,
        overlapping: object = None,
        **keys: object,
    ) -> Iterator[DatasetRef]:
        """The refs of the stored ``dataset_type`` datasets that match, streamed; takes the
        same selection as :meth:`query`, sky included (``region``, ``contains``,
        ``overlapping``; this repository's first, then its parents')."""
        found_ids = self.query(
            dataset_type,
            data_id,
            where=where,
            bind=bind,
            with_datasets=with_datasets,
            without_datasets=without_datasets,
            order_by=order_by,
            limit=limit,
            region=region,
            contains=contains,
            overlapping=overlapping,
            **keys,
        )
        return self._refs(self.plan(dataset_type), found_ids)  # errors now, not at first next()

    def _refs(self, plan: Plan, found_ids: Iterable[DataId]) -> Iterator[DatasetRef]:
        dataset_type = plan.spec.name
        for found in found_ids:
            located = self.find_dataset(plan, found)
            if located is None:  # removed meanwhile
                continue
            if located.ref is not None:  # a parent's
                yield replace(located.ref, data_id=found)
                continue
            record = self.registry.find_ref(dataset_type, self.restrict(plan, found))
            if record is None:
                continue  # removed meanwhile
            _, dataset_id, run = record
            if dataset_id is None or self.repository_id is None:
                continue  # a version 1 repository opened read-only: no ids
            yield DatasetRef(dataset_type, found, dataset_id, run, self.repository_id)

    # ---- writing -------------------------------------------------------------------------------

    def check_writeable(self, action: str) -> None:
        """ReadOnlyError naming ``action`` unless this repository is writeable."""
        if not self.writeable:
            why = (
                "it is configured read_only"
                if self.config.read_only
                else "it was opened with writeable=False"
            )
            raise ReadOnlyError(f"cannot {action}: repository {self.root} is read-only ({why})")

    def hdu(self, plan: Plan, data_id: Mapping[str, Value]) -> int | str | None:
        """The HDU (or HDF5 path) a dataset's data ID selects in its file, if any."""
        hdu = plan.spec.hdu
        if isinstance(hdu, str):
            value = data_id[hdu]
            return value if isinstance(value, int | str) else str(value)
        return hdu

    def _write_file(
        self,
        plan: Plan,
        obj: object,
        data_id: DataId,
        target: Location,
        dataset_id: str,
        *,
        sync: bool = True,
    ) -> tuple[Location, FileChecksum | None]:
        """Write ``obj`` to a (fsynced) temporary for ``target``; the temporary, and the size
        and checksum of what was written (None: a back-end that keeps objects).

        The temporary is the put's entry in the recovery journal, named by its dataset id:
        after a crash, recovery deletes it, and the file it was published as unless the
        registry holds ``dataset_id`` (see butler.recovery)."""
        hdu = self.hdu(plan, data_id)
        write_hdu = hdu if isinstance(hdu, int) else None
        request = plan.write_request(write_hdu)
        try:
            entry = self._journal.entry(dataset_id, "put", target)
            return self.datastore.write(target, obj, request, sync=sync, at=entry)
        except (ButlerError, OSError) as error:
            if not out_of_space(error):
                raise
            where = getattr(target, "parent", self.root)
            raise StorageFullError(
                f"cannot put {plan.spec.name!r} {_format_data_id(data_id)} in repository "
                f"{self.root}: the disk holding {where} is full; nothing was stored or "
                "changed. Free space (removing datasets works on a full disk) and put again"
            ) from error

    def put(
        self,
        obj: object,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        overwrite: bool = False,
        run: str | None = None,
        **keys: object,
    ) -> DatasetRef:
        """Store ``obj`` as ``dataset_type`` for a data ID; its :class:`DatasetRef` (whose
        ``data_id`` is the complete, normalized data ID).

        The file is written atomically and recorded in the registry in the same
        unit of work, with a new dataset id. An existing dataset raises
        DatasetExistsError unless ``overwrite=True`` (the new dataset gets a new id).
        """
        self.check_writeable(f"put {dataset_type!r}")
        plan = self.plan(dataset_type)
        plan.check_put(obj)
        complete = self._complete_for_write(plan, self._normalize_for(plan.spec, data_id, keys))
        if plan.spec.skymap is not None:  # a tract and patch of its skymap
            self.mapper.check_sky(dataset_type, complete)
        self.ensure_registered(plan)
        run_name = self.provenance.run_for(run)
        dataset_id = new_dataset_id()
        self._store([(obj, complete)], [dataset_id], plan, overwrite, run_name)
        return DatasetRef(plan.spec.name, complete, dataset_id, run_name, self._own_id())

    def put_many(
        self,
        dataset_type: str,
        items: Iterable[tuple[object, Mapping[str, object]]],
        *,
        overwrite: bool = False,
        run: str | None = None,
    ) -> list[DatasetRef]:
        """Store many objects of one dataset type in one commit: all of them, or none; their
        refs, in order."""
        self.check_writeable(f"put {dataset_type!r}")
        plan = self.plan(dataset_type)
        prepared = []
        for obj, did in items:
            plan.check_put(obj)
            complete = self._complete_for_write(plan, self._normalize_for(plan.spec, did, {}))
            if plan.spec.skymap is not None:
                self.mapper.check_sky(dataset_type, complete)
            prepared.append((obj, complete))
        self.ensure_registered(plan)
        run_name = self.provenance.run_for(run)
        ids = [new_dataset_id() for _ in prepared]
        self._store(prepared, ids, plan, overwrite, run_name)
        repository = self._own_id()
        return [
            DatasetRef(plan.spec.name, did, dataset_id, run_name, repository)
            for (_, did), dataset_id in zip(prepared, ids, strict=True)
        ]

    def _own_id(self) -> str:
        """This repository's id (every writeable repository has one: see registry/_identity)."""
        assert self.repository_id is not None, "a writeable registry has been given its ids"
        return self.repository_id

    def _store(
        self,
        items: list[tuple[object, DataId]],
        ids: list[str],
        plan: Plan,
        overwrite: bool,
        run: str | None,
    ) -> None:
        if plan.sky:  # sky regions (issue 17): one cached check for types without sky
            from .regions import record_put

            record_put(self, plan, items, ids)
        if len(items) == 1:
            self._store_one(*items[0], ids[0], plan, overwrite, run)
            return
        name = plan.spec.name
        written: list[tuple[Location, Location, bool]] = []  # (temporary, target, replaces)
        changes: list[_Change] = []
        token = self._token()
        try:
            with self.registry.transaction():
                rows, fresh, fresh_ids = [], [], []
                for (obj, data_id), dataset_id in zip(items, ids, strict=True):
                    relative, target, record, existing = self._destination(plan, data_id, overwrite)
                    # fsync a bulk write's files all at once, before any is published
                    temporary, file = self._write_file(
                        plan, obj, data_id, target, dataset_id, sync=False
                    )
                    written.append((temporary, target, existing is not None))
                    if existing is not None:
                        self.registry.replace(
                            name, record, relative, run, dataset_id=dataset_id, **_columns(file)
                        )
                    else:
                        sums = _columns(file)
                        rows.append((record, relative, sums["size"], sums["checksum"]))
                        fresh.append(len(written) - 1)
                        fresh_ids.append(dataset_id)
                if self._sync_each_put:
                    self.datastore.sync([temporary for temporary, _, _ in written])
                self._step("written")
                if rows:
                    try:
                        self.registry.insert_many(name, rows, run, dataset_ids=fresh_ids)
                    except DatasetExistsError as error:
                        data_ids = [d for _, d in items]
                        if not overwrite or len(set(data_ids)) < len(data_ids):
                            raise self._exists_error(plan, data_ids, "put_many") from error
                        # a concurrent put stored some of them since: overwrite those too
                        for (record, relative, size, checksum), index, dataset_id in zip(
                            rows, fresh, fresh_ids, strict=True
                        ):
                            self.registry.replace(
                                name,
                                record,
                                relative,
                                run,
                                dataset_id=dataset_id,
                                size=size,
                                checksum=checksum,
                            )
                            written[index] = (*written[index][:2], True)
                for (temporary, target, replaces), (_, data_id) in zip(written, items, strict=True):
                    if replaces:
                        changes.append(self._publish_over(temporary, target, token))
                    else:
                        changes.append(self._publish_new(plan, data_id, temporary, target))
                self._step("published")
                self._commit_token(token, changes)
        except BaseException:
            for temporary, _, _ in written:
                self.datastore.discard(temporary)
            self._undo(reversed(changes))
            raise
        if not self._sync_each_put:
            self._defer_sync(target for _, target, _ in written)
        self._settle(changes, token)

    def _store_one(
        self,
        obj: object,
        data_id: DataId,
        dataset_id: str,
        plan: Plan,
        overwrite: bool,
        run: str | None,
    ) -> None:
        """One put: the file written, then recorded; published just before the commit."""
        relative, target, record, existing = self._destination(plan, data_id, overwrite)
        temporary, sums = self._write_file(
            plan, obj, data_id, target, dataset_id, sync=self._sync_each_put
        )
        self._step("written")
        changes: list[_Change] = []
        token = ""  # a new dataset's put records no token: recovery goes by its dataset id
        try:
            if existing is None:
                row = (record, relative, run, dataset_id)
                files = (temporary, target)
                inserted = self._insert_one(plan, data_id, row, files, overwrite, sums)
                if inserted is None:  # a concurrent put stored it since: overwrite it
                    existing = relative
                else:
                    changes.append(inserted)
            if existing is not None:
                token = self._token()
                row = (record, relative, run, dataset_id)
                self._replace_one(plan, row, (temporary, sums), token, changes)
        except BaseException:
            self.datastore.discard(temporary)
            self._undo(reversed(changes))
            raise
        if not self._sync_each_put:
            self._defer_sync([target])
        self._settle(changes, token)

    def _insert_one(
        self,
        plan: Plan,
        data_id: DataId,
        row: tuple[dict[str, Value], str, str | None, str],
        files: tuple[Location, Location],
        overwrite: bool,
        sums: FileChecksum | None,
    ) -> _Change | None:
        """Record a new dataset; its file is published just before the commit.

        None if the data ID was taken (by a concurrent put, when this put may
        ``overwrite``: the caller replaces it then); DatasetExistsError if it may not.
        """
        record, relative, run, dataset_id = row
        temporary, target = files
        published: list[_Change] = []
        publishing = False

        def publish() -> None:
            nonlocal publishing
            publishing = True
            published.append(self._publish_new(plan, data_id, temporary, target))
            self._step("published")

        try:
            self.registry.insert(
                plan.spec.name,
                record,
                relative,
                run,
                before_commit=publish,
                dataset_id=dataset_id,
                **_columns(sums),
            )
        except BaseException as error:
            self._undo(published)
            if isinstance(error, DatasetExistsError) and not publishing:
                if overwrite:
                    return None
                raise self._exists_error(plan, [data_id], "put") from error
            raise
        self._step_committed()
        return published[0]

    def _replace_one(
        self,
        plan: Plan,
        row: tuple[dict[str, Value], str, str | None, str],
        written: tuple[Location, FileChecksum | None],
        token: str,
        changes: list[_Change],
    ) -> None:
        """Record a dataset over its old record (a new dataset: its new id, size and
        checksum); the old file is kept until the commit.

        ``written`` is the new file's temporary, and its size and checksum."""
        record, relative, run, dataset_id = row
        temporary, sums = written
        target = self.datastore.target(relative)

        def publish() -> None:
            changes.append(self._publish_over(temporary, target, token))
            self._step("published")

        with self.registry.transaction():
            self.registry.replace(
                plan.spec.name,
                record,
                relative,
                run,
                before_commit=publish,
                dataset_id=dataset_id,
                **_columns(sums),
            )
            self._commit_token(token, changes)
        self._step_committed()

    def _token(self) -> str:
        """The recovery journal's token for a write: the open transaction's, or a new one."""
        return self._local.token if self._local.open else self._journal.token()

    def _commit_token(self, token: str, changes: list[_Change]) -> None:
        """Inside the registry transaction of a write outside :meth:`transaction`: record
        its token if it set a file aside, so recovery knows it committed (butler.recovery)."""
        if self._local.open or not any(not change.new and change.journal for change in changes):
            return
        self.registry.record_operation(token)
        with self._settled_lock:
            settled, self._settled = self._settled, []
        if settled:  # tokens whose files are gone: forgotten in the same commit
            self.registry.forget_operations(settled)

    def _forget_settled(self) -> None:
        """Delete the settled tokens' rows (at close; left rows are harmless, and swept
        by ``verify --repair``)."""
        with self._settled_lock:
            settled, self._settled = self._settled, []
        if settled and self.writeable:
            with contextlib.suppress(ButlerError):
                self.registry.forget_operations(settled)

    def _step_committed(self) -> None:
        if not self._local.open:
            self._step("committed")

    def _undo(self, changes: Iterable[_Change]) -> None:
        """After a failed commit: delete the files a put published, put back those set aside."""
        for change in changes:
            if change.new:
                self.datastore.discard(change.target)
                if change.journal is not None:
                    self.datastore.discard(change.journal)
            elif change.journal is not None:
                self.datastore.restore(change.journal, change.target)

    def _settle(self, changes: list[_Change], token: str) -> None:
        """After a commit: delete the set-aside files, or leave them to the open transaction()."""
        if self._local.open:  # it may still roll back
            self._local.journal.extend(changes)
        else:
            self._drop_kept(changes, token)

    def _drop_kept(self, changes: Iterable[_Change], token: str) -> None:
        journaled = False
        for change in changes:
            if change.journal is not None:
                self.datastore.discard(change.journal)
                journaled = journaled or not change.new
        if journaled:
            with self._settled_lock:
                self._settled.append(token)
        self._step("settled")

    def _destination(
        self, plan: Plan, data_id: DataId, overwrite: bool
    ) -> tuple[str, Location, dict[str, Value], str | None]:
        """Where a put of ``data_id`` goes: its path, file, registry record and, if
        ``overwrite``, the path of the dataset it replaces.

        Without ``overwrite`` nothing is looked up in advance: the registry's unique
        key refuses a data ID already taken and :meth:`_publish` a file already in the
        way, each in one step that no concurrent writer can slip between.
        """
        name = plan.spec.name
        relative = self.mapper.path(name, data_id)
        record = self.restrict(plan, data_id)
        existing = self.registry.find(name, record) if overwrite else None
        return relative, self.datastore.target(relative), record, existing

    def _publish_over(self, temporary: Location, target: Location, token: str) -> _Change:
        """Rename an overwrite's file into place, keeping the replaced one in the journal."""
        keep_as = self._journal.entry(token, "kept", target)
        kept = self.datastore.replace(temporary, target, keep_as)
        return _Change(target, keep_as if kept else None, new=not kept)

    def _publish_new(
        self, plan: Plan, data_id: DataId, temporary: Location, target: Location
    ) -> _Change:
        """Link a new dataset's file into place; it never goes over a file already there.

        The temporary is the put's journal entry and keeps naming the file until the
        commit settled, so a crash before the commit does not leave the file behind.
        """
        try:
            self.datastore.publish_entry(temporary, target)
        except DatasetExistsError as error:
            relative = self.mapper.path(plan.spec.name, data_id)
            raise DatasetExistsError(
                f"cannot put {plan.spec.name!r} with data ID {_format_data_id(data_id)}: "
                f"its file {relative!r} already exists and holds something else "
                "(another dataset of a shared or HDU-addressed file, or a file no record "
                f"knows of: see `butler verify {self.root}`); nothing was written"
            ) from error
        return _Change(target, temporary, new=True)

    def _exists_error(self, plan: Plan, data_ids: list[DataId], call: str) -> DatasetExistsError:
        """Why the registry refused a put: which data ID repeats or is already stored."""
        name = plan.spec.name
        seen: set[DataId] = set()
        for data_id in data_ids:
            if data_id in seen:
                return DatasetExistsError(
                    f"dataset {name!r} with data ID {_format_data_id(data_id)} appears twice in "
                    f"one {call} call; nothing was written"
                )
            seen.add(data_id)
        for data_id in data_ids:
            path = self.registry.find(name, self.restrict(plan, data_id))
            if path is not None:
                return DatasetExistsError(
                    f"dataset {name!r} with data ID {_format_data_id(data_id)} already exists at "
                    f"{path!r}; pass overwrite=True to replace it; nothing was written"
                )
        return DatasetExistsError(  # another writer stored it, and has removed it since
            f"dataset {name!r} with data ID {_format_data_id(data_ids[0])} was stored by "
            "another writer while this put ran; nothing was written; try again"
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group puts and removes into one registry commit: all of them, or none.

        Files of removed or overwritten datasets are deleted only once the commit
        succeeds, and put back if the block raises; new files of puts are deleted
        again.
        """
        actions = self._local
        if actions.open:
            yield
            return
        actions.open, actions.journal, actions.token = True, [], self._journal.token()
        try:
            with self.registry.transaction():
                yield
                actions.open = False  # the token is recorded as for a write of its own
                self._commit_token(actions.token, actions.journal)
        except BaseException:
            self._undo(reversed(actions.journal))
            raise
        else:
            self._step("committed")
            self._drop_kept(actions.journal, actions.token)
        finally:
            actions.open, actions.journal = False, []

    def remove(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> None:
        """Forget a dataset and delete its file.

        The file is moved into the recovery journal under the registry's lock, before
        the commit, and deleted after it (see :mod:`butler.recovery`): a crash at any
        point leaves the dataset stored or removed, never a record without its file
        or a file that ``index`` would bring back.
        """
        self.check_writeable(f"remove {dataset_type!r}")
        plan, found = self._locate(dataset_type, data_id, keys)
        dataset_id = dataset_type.id if isinstance(dataset_type, DatasetRef) else None
        if found.repository is not self:
            raise ReadOnlyError(
                f"cannot remove {plan.spec.name!r} {_format_data_id(found.data_id)}: the dataset "
                f"is in parent repository {found.repository.address}, which this repository only "
                "reads"
            )
        self.datastore.check_inside(found.path)  # never delete through a link out of the root
        record = self.restrict(plan, found.data_id)
        if found.path.startswith("/"):  # a file left where another tool put it stays
            self.registry.remove(plan.spec.name, record, dataset_id=dataset_id)
            return
        for attempt in (1, 2):
            try:
                self._remove_stored(plan, record, found, dataset_id)
                return
            except StorageFullError:
                # A full disk: the registry may spend its reserve and delete in that space.
                # Inside an open transaction() the whole transaction failed: no retry.
                if attempt == 2 or self._local.open or not self.registry.make_room():
                    raise

    def _remove_stored(
        self, plan: Plan, record: dict[str, Value], found: Found, dataset_id: str | None
    ) -> None:
        """remove's one attempt: the row deleted and its file set aside in one commit (with
        ``dataset_id``, only if the row still has it: a ref never removes its successor)."""
        token = self._token()
        changes: list[_Change] = []
        try:
            with self.registry.transaction():
                # the row is locked (or, on SQLite, the registry) until the commit, so the
                # file set aside is the one of the row removed, not a concurrent overwrite's
                if not self.registry.remove(plan.spec.name, record, dataset_id=dataset_id):
                    return  # another process removed it meanwhile: nothing is left to do
                location = self.datastore.location(found.path)
                aside = self._journal.entry(token, "aside", location)
                if self.datastore.set_aside(location, aside):
                    changes.append(_Change(location, aside, new=False))
                self._step("set aside")
                self._commit_token(token, changes)
        except BaseException:
            self._undo(changes)
            raise
        self._step_committed()
        self._settle(changes, token)

    # ---- reading -------------------------------------------------------------------------------

    def _read(self, plan: Plan, found: Found, method: str, *args: Any) -> Any:
        if found.repository is not self:  # a parent's: read by its ref (butler.chain)
            return self.chain.read(found, method, *args)
        datastore, data_id = self.datastore, found.data_id
        location = datastore.location(found.path)
        request = plan.read_request(self.hdu(plan, data_id))
        if datastore.checks_size:  # it checks what the registry recorded itself (S3)
            request = replace(
                request, dataset_id=found.dataset_id, size=found.size, checksum=found.checksum
            )
        try:
            if found.size is not None and not datastore.checks_size:
                size = datastore.size(location)
                if size is not None and size != found.size:
                    raise self._wrong_size(plan, found, location, size, self.root)
            return datastore.read(location, request, method, *args)
        except WrongSizeError as wrong:
            raise self._wrong_size(plan, found, location, wrong.size, self.root) from None
        except (ButlerError, OSError, ValueError) as error:
            # Formatters report a missing file as a FormatError; say what happened instead.
            if isinstance(error, FileNotFoundError) or not datastore.exists(location):
                raise DatasetNotFoundError(
                    f"dataset {plan.spec.name!r} with data ID {_format_data_id(data_id)} is "
                    f"recorded at {found.path!r}, but the file is missing; "
                    f"run `butler verify {self.root}`"
                ) from None
            if isinstance(error, DatasetCorruptError):  # already names dataset and file
                raise
            if isinstance(error, ButlerError) and not isinstance(error, FormatError):
                raise
            raise FormatError(
                f"dataset {plan.spec.name!r} with data ID {_format_data_id(data_id)} is "
                f"unreadable: {error}. `butler verify {self.root} --read` lists every "
                "file of the repository that does not read"
            ) from error

    @staticmethod
    def _wrong_size(
        plan: Plan, found: Found, location: Location, size: int, root: Path
    ) -> DatasetCorruptError:
        """A file whose size is not the one recorded when it was written (get checks it with
        one ``stat``; checksums are checked by ``verify --read``, which reads every byte)."""
        return DatasetCorruptError(
            f"dataset {plan.spec.name!r} with data ID {_format_data_id(found.data_id)}: its "
            f"file '{location}' has {size} bytes, but {found.size} were written; it "
            f"was truncated or changed since. Run `butler verify {root} "
            "--read`, then restore the file from a copy, or remove the dataset and put it again"
        )

    def get(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> Any:
        """The stored object of ``dataset_type`` for a (possibly partial) data ID, or of the
        dataset a :class:`DatasetRef` names (given alone, in place of the dataset type)."""
        plan, found = self._locate(dataset_type, data_id, keys)
        if self._objects is not None and self._objects.wants(plan.spec.name):
            return self._read_cached(self._objects, plan, found)
        return self._read(plan, found, "read")

    def cache_objects(self, dataset_types: Iterable[str] | None = None) -> None:
        """From now on, a get of a dataset this process holds returns the same object,
        for every dataset type (None) or those named (see :mod:`butler.object_cache`)."""
        self._objects = ObjectCache(dataset_types)

    def _read_cached(self, cache: ObjectCache, plan: Plan, found: Found) -> Any:
        """get through the object cache: the dataset's id looked up, then the object."""
        dataset_id = found.dataset_id
        if dataset_id is None:
            row = self.registry.find_ref(plan.spec.name, self.restrict(plan, found.data_id))
            dataset_id = None if row is None else row[1]
        if dataset_id is None:  # removed since, or no ids (a version 1 repository read-only)
            return self._read(plan, found, "read")
        obj = cache.get(dataset_id)
        if obj is None:
            obj = self._read(plan, found, "read")
            cache.add(dataset_id, obj)
        return obj

    def get_metadata(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> dict[str, object]:
        """The header or attributes of a stored dataset, without reading its data."""
        plan, found = self._locate(dataset_type, data_id, keys)
        result: dict[str, object] = self._read(plan, found, "read_metadata")
        return result

    def get_section(
        self,
        dataset_type: str | DatasetRef,
        bbox: BBox,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> Any:
        """A sub-image of a stored image, reading only that section where the format allows."""
        plan, found = self._locate(dataset_type, data_id, keys)
        return self._read(plan, found, "read_section", bbox)

    def get_table_info(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> TableInfo:
        """A stored table's length and column types, without reading its rows."""
        plan, found = self._locate(dataset_type, data_id, keys)
        result: TableInfo = self._read(plan, found, "read_table_info")
        return result

    def get_many(self, dataset_type: str, data_ids: Iterable[Mapping[str, object]]) -> list[Any]:
        """The stored objects for many data IDs, in order; read concurrently where the
        datastore gains from it (object storage: ``Datastore.read_concurrency``)."""
        wanted = list(data_ids)
        workers = min(self.datastore.read_concurrency, len(wanted))
        if workers <= 1:
            return [self.get(dataset_type, data_id) for data_id in wanted]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda data_id: self.get(dataset_type, data_id), wanted))

    def exists(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> bool:
        """Whether :meth:`get` would find a dataset; False when none matches.

        Resolved as :meth:`get` resolves (a calibration by the observation's time);
        an ambiguous data ID raises, as it does for get. A stale ref is False; a foreign
        one raises ForeignRefError.
        """
        if isinstance(dataset_type, DatasetRef):
            try:
                _, found = self._locate_ref(dataset_type, data_id, keys)
            except ForeignRefError:
                raise
            except DatasetNotFoundError:
                return False
            return found.ref is None or found.repository.exists(found.ref)
        try:
            return self._resolve(dataset_type, data_id, keys)[2] is not None
        except DatasetNotFoundError:  # no calibration valid for the observation, or no observation
            return False

    def exists_many(
        self, dataset_type: str, data_ids: Iterable[Mapping[str, object]]
    ) -> list[bool]:
        """:meth:`exists` for many data IDs, in order."""
        return [self.exists(dataset_type, data_id) for data_id in data_ids]

    def uri(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> str:
        """The URI of the file :meth:`get` would read, or, if none is stored, where a put
        would write it (``lookup ... from`` keys completed from the registry)."""
        if isinstance(dataset_type, DatasetRef):
            _, located = self._locate_ref(dataset_type, data_id, keys)
            return self._uri(located)
        plan, normalized, found = self._resolve(dataset_type, data_id, keys)
        if found is not None:
            return self._uri(found)
        complete = self._complete_for_write(plan, normalized)
        return self.datastore.uri(self.mapper.path(dataset_type, complete))

    def _uri(self, found: Found) -> str:
        if found.ref is not None:  # a parent's: its URI (a served one's download URL)
            return found.repository.uri(found.ref)
        return self.datastore.uri(found.path)

    def explain(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        strict: bool = False,
        **keys: object,
    ) -> str:
        """How a data ID is resolved (as :meth:`get` resolves it), rendered, and found.

        A data ID that cannot be resolved to a path (invalid, ambiguous, no
        calibration valid) is explained in the text; with ``strict=True`` it raises
        instead, with the error get would raise, as ``butler explain`` does to exit
        non-zero.
        """
        given = {**(data_id or {}), **keys}
        shown = {k: v for k, v in given.items() if k != "as_of"}
        notes = self.chain.explain_notes(dataset_type)
        try:
            plan, normalized, found = self._resolve(dataset_type, given, {})
            if found is None:
                complete = self._complete_for_write(plan, normalized)
                filled = {k: v for k, v in complete.items() if k not in normalized}
                text = self.mapper.explain(dataset_type, {**shown, **filled})
                note = f"completed from {plan.spec.lookup_from!r}: {_format_data_id(filled)}\n"
                where = f"not stored in {self.chain.searched(self)}"
                return f"{text}{notes}\n{note if filled else ''}{where}"
        except ButlerError as error:
            if strict:
                raise
            text = f"dataset type {dataset_type!r}: data ID {_format_data_id(given)}: {error}"
            return f"{text}{notes}"
        completed = {k: v for k, v in found.data_id.items() if k in plan.keys and k not in shown}
        text = self.mapper.explain(dataset_type, {**shown, **completed})
        observed = self._by_observation(plan, given, {})
        how = "calibration valid for the observation" if observed else "registry"
        note = f"completed from the {how}: {_format_data_id(completed)}\n" if completed else ""
        return f"{text}{notes}\n{note}{self.chain.answered(self, found)}"

    # ---- calibrations (thin hooks; the logic is in calibrations.py) ----------------------------

    def certify(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None,
        valid_from: object,
        valid_to: object = None,
        *,
        supersede: bool = False,
        source: str | None = None,
    ) -> Certification:
        """Certify a stored calibration as valid in ``[valid_from, valid_to)`` (None: open)."""
        return self._calibrations().certify(
            dataset_type, data_id, valid_from, valid_to, supersede=supersede, source=source
        )

    def decertify(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None,
        valid_from: object = None,
        valid_to: object = None,
    ) -> list[Certification]:
        """Close a calibration's certifications (all, or the part in a range); never deletes."""
        return self._calibrations().decertify(dataset_type, data_id, valid_from, valid_to)

    def calibration_history(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        include_closed: bool = True,
    ) -> list[Certification]:
        """Every certification of a calibration type (or of one match value), closed ones too."""
        return self._calibrations().history(
            dataset_type, data_id, as_of=as_of, include_closed=include_closed
        )

    def find_calibration(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        **keys: object,
    ) -> CalibrationRef:
        """The calibration valid for an observation, as the registry stood ``as_of``; in a
        chain, the first repository's that certifies one (this one's, then its parents')."""
        try:
            return self._calibrations().find(dataset_type, data_id, as_of=as_of, **keys)
        except DatasetNotFoundError:  # CalibrationNotFoundError: none certified here
            if not self.chain.parents:
                raise
            answer = self.chain.find_calibration(dataset_type, {**(data_id or {}), **keys}, as_of)
            if answer is None:
                raise
            return answer[1]

    def find_calibrations(
        self,
        dataset_type: str,
        data_ids: Iterable[Mapping[str, object]],
        *,
        as_of: object = None,
        strict: bool = True,
    ) -> list[CalibrationRef | None]:
        """:meth:`find_calibration` for many observations at once (one certification query)."""
        return self._calibrations().find_many(dataset_type, data_ids, as_of=as_of, strict=strict)

    def explain_calibration(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        **keys: object,
    ) -> str:
        """Each step of a calibration lookup: the rule, the observation time, the candidates."""
        return self._calibrations().explain(dataset_type, data_id, as_of=as_of, **keys)

    # ---- queries -------------------------------------------------------------------------------

    def _sky_given(
        self, plan: Plan, data_id: Mapping[str, object] | None, keys: dict[str, object]
    ) -> tuple[Mapping[str, object] | None, dict[str, object]]:
        """A query's data ID and keys with ``patch`` written as the dataset type's skymap
        writes it (``patch=(5, 4)``, ``"5,4"`` or the index; a list of those), as put does."""
        if plan.spec.skymap is None or ("patch" not in keys and "patch" not in (data_id or {})):
            return data_id, keys
        return None, self.mapper.sky_keys(plan.spec.name, {**(data_id or {}), **keys})

    def _partial(
        self, plan: Plan, data_id: Mapping[str, object] | None, keys: Mapping[str, object]
    ) -> dict[str, Value]:
        normalized = self.normalize(data_id, keys)
        unknown = [k for k in normalized if k not in plan.keys and k in {**(data_id or {}), **keys}]
        if unknown:
            raise InvalidDataIdError(
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a key of "
                f"{plan.spec.name!r}; its keys are {', '.join(plan.spec.keys) or 'none'}"
            )
        return self.restrict(plan, normalized)

    def query(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        with_datasets: Iterable[str] = (),
        without_datasets: Iterable[str] = (),
        order_by: str | Sequence[str] = (),
        limit: int | None = None,
        region: object = None,
        contains: object = None,
        overlapping: object = None,
        **keys: object,
    ) -> Iterator[DataId]:
        """The data IDs of stored ``dataset_type`` datasets that match, streamed.

        Keys match exactly, or any of a list (``visit=[42, 43]``) or a range
        (``visit=range(100, 200)``). ``where`` is an expression over the dataset
        type's keys (``"visit >= 903334 AND filter IN ('r', 'i')"``, ``:name`` for a
        value of ``bind``); ``with_datasets``/``without_datasets`` keep only data IDs
        whose shared keys have (have no) dataset of those types; ``order_by`` keys
        (``-key`` descending) then the rest ascending; at most ``limit``. Checked
        before any SQL runs: InvalidQueryError shows the expression with a caret.
        Sky (issue 17, docs/spatial.md): ``region=Circle(ra, dec, radius)`` or
        ``Polygon([(ra, dec), ...])``, ``contains=(ra, dec)`` (degrees), and
        ``overlapping=("calexp", {"visit": 903334})`` keep the datasets whose recorded
        regions meet it. See docs/runtime.md, "Queries".
        """
        plan = self.plan(dataset_type)
        data_id, keys = self._sky_given(plan, data_id, keys)
        if region is not None or contains is not None or overlapping is not None:
            from .query import spatial

            test = spatial.sky_test(self, region, contains, overlapping)
            request = self._query_request(
                plan, data_id, keys, where, bind, with_datasets, without_datasets, order_by, limit
            )
            return spatial.data_ids(self, request, test)
        if _plain_query(
            data_id, keys, where, bind, with_datasets, without_datasets, order_by, limit
        ):
            partial = self._partial(plan, data_id, keys)
            return self.chain.query(self, dataset_type, partial)
        from .query import run

        request = self._query_request(
            plan, data_id, keys, where, bind, with_datasets, without_datasets, order_by, limit
        )
        return run.data_ids(self, request)

    def _sky_query(
        self,
        plan: Plan,
        data_id: Mapping[str, object] | None,
        keys: Mapping[str, object],
        where: str | None,
        bind: Mapping[str, object] | None,
        with_datasets: Iterable[str],
        without_datasets: Iterable[str],
        sky: tuple[object, object, object],
    ) -> Iterator[DataId]:
        """The data IDs a spatial ``count``/``query_values`` selects (``sky``: region,
        contains, overlapping), unordered."""
        from .query import spatial

        test = spatial.sky_test(self, *sky)
        request = self._query_request(
            plan, data_id, keys, where, bind, with_datasets, without_datasets
        )
        return spatial.data_ids(self, request, test)

    def _query_request(
        self,
        plan: Plan,
        data_id: Mapping[str, object] | None,
        keys: Mapping[str, object],
        where: str | None,
        bind: Mapping[str, object] | None,
        with_datasets: Iterable[str],
        without_datasets: Iterable[str],
        order_by: str | Sequence[str] = (),
        limit: int | None = None,
    ) -> Any:
        from .query import run

        given = {**(data_id or {}), **keys}
        collections = {k: v for k, v in given.items() if is_collection(v)}
        scalars = {k: v for k, v in given.items() if k not in collections}
        return run.build(
            self,
            plan.spec.name,
            self._partial(plan, scalars, {}),
            collections,
            where=where,
            bind=bind,
            with_datasets=with_datasets,
            without_datasets=without_datasets,
            order_by=order_by,
            limit=limit,
        )

    def region(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, **keys: object
    ) -> Any:
        """The sky region (an lsst.sphgeom region) of the stored datasets that match: one
        dataset's, or the union of several (``butler.region("calexp", visit=903334)``: the
        visit's CCDs); a tract's or patch's from its skymap; None if none has one."""
        from .query import spatial

        return spatial.union_region(self, dataset_type, {**(data_id or {}), **keys})

    def query_values(
        self,
        dataset_type: str,
        key: str,
        data_id: Mapping[str, object] | None = None,
        *,
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        with_datasets: Iterable[str] = (),
        without_datasets: Iterable[str] = (),
        region: object = None,
        contains: object = None,
        overlapping: object = None,
        **keys: object,
    ) -> list[Value]:
        """The distinct values of ``key`` among the stored datasets that match, sorted.

        Takes the same selection as :meth:`query` (sky included).
        """
        plan = self.plan(dataset_type)
        if key not in plan.keys:
            raise InvalidDataIdError(
                f"{key!r} is not a key of {dataset_type!r}; "
                f"its keys are {', '.join(plan.spec.keys) or 'none'}"
            )
        data_id, keys = self._sky_given(plan, data_id, keys)
        if region is not None or contains is not None or overlapping is not None:
            found = self._sky_query(
                plan, data_id, keys, where, bind, with_datasets, without_datasets,
                (region, contains, overlapping),
            )  # fmt: skip
            return sorted({data_id[key] for data_id in found})
        if _plain_query(data_id, keys, where, bind, with_datasets, without_datasets):
            partial = self._partial(plan, data_id, keys)
            return self.chain.query_values(self, dataset_type, key, partial)
        from .query import run

        request = self._query_request(
            plan, data_id, keys, where, bind, with_datasets, without_datasets
        )
        return run.values(self, request, key)

    def count(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        with_datasets: Iterable[str] = (),
        without_datasets: Iterable[str] = (),
        region: object = None,
        contains: object = None,
        overlapping: object = None,
        **keys: object,
    ) -> int:
        """How many stored datasets match (as for :meth:`query`, sky included)."""
        plan = self.plan(dataset_type)
        data_id, keys = self._sky_given(plan, data_id, keys)
        if region is not None or contains is not None or overlapping is not None:
            found = self._sky_query(
                plan, data_id, keys, where, bind, with_datasets, without_datasets,
                (region, contains, overlapping),
            )  # fmt: skip
            return sum(1 for _ in found)
        if _plain_query(data_id, keys, where, bind, with_datasets, without_datasets):
            partial = self._partial(plan, data_id, keys)
            return self.chain.count(self, dataset_type, partial)
        from .query import run

        request = self._query_request(
            plan, data_id, keys, where, bind, with_datasets, without_datasets
        )
        return run.count(self, request)

    # ---- moving data (thin hooks; the logic is in bundle.py and transfer.py) ---------------------

    def export(
        self,
        out: str | os.PathLike[str],
        dataset_types: str | Iterable[str] | None = None,
        data_id: Mapping[str, object] | None = None,
        *,
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        show_progress: bool = False,
    ) -> MoveReport:
        """Write selected datasets as a bundle (a folder, or a .zip); see butler.bundle."""
        from .bundle import export_datasets

        return export_datasets(
            self, out, dataset_types, data_id, where=where, bind=bind, show_progress=show_progress
        )

    def import_bundle(
        self,
        bundle: str | os.PathLike[str],
        *,
        skip_existing: bool = False,
        overwrite: bool = False,
        show_progress: bool = False,
    ) -> MoveReport:
        """Import a bundle written by :meth:`export`, keeping ids, runs and certifications."""
        from .bundle import import_bundle

        return import_bundle(
            self,
            bundle,
            skip_existing=skip_existing,
            overwrite=overwrite,
            show_progress=show_progress,
        )

    def transfer_from(
        self,
        source: Butler,
        dataset_types: str | Iterable[str] | None = None,
        data_id: Mapping[str, object] | None = None,
        *,
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        mode: Literal["copy", "link", "move"] = "copy",
        skip_existing: bool = False,
        overwrite: bool = False,
        show_progress: bool = False,
    ) -> MoveReport:
        """Transfer selected datasets of ``source`` into this repository; see butler.transfer."""
        from .transfer import transfer

        return transfer(
            source,
            self,
            dataset_types,
            data_id,
            where=where,
            bind=bind,
            mode=mode,
            skip_existing=skip_existing,
            overwrite=overwrite,
            show_progress=show_progress,
        )

    # ---- maintenance ---------------------------------------------------------------------------

    def own_files(self) -> frozenset[str]:
        """The names of the repository's own files at its root (config, SQLite registry)."""
        url = self.config.registry
        names = {CONFIG_NAME}
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            base = url[len("sqlite:///") :]
            names |= {base, base + "-wal", base + "-shm", base + "-journal", base + "-reserve"}
        return frozenset(names)

    def index(
        self, dataset_types: Iterable[str] | None = None, *, show_progress: bool = False
    ) -> IndexReport:
        """Register files already below the root by parsing their paths back into data IDs."""
        self.check_writeable("index")
        from .maintenance import index  # loaded on first use (maintenance.py), as verify is

        return index(self, dataset_types, show_progress=show_progress)

    def ingest(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        transfer: Transfer = "copy",
        rules: InstrumentRules | None = None,
        show_progress: bool = True,
        jobs: int = 1,
    ) -> IngestReport:
        """Ingest raw files: translate each header, place the file at its path, record it.

        ``transfer`` is ``"copy"``, ``"move"``, ``"link"``, ``"symlink"`` or ``None``
        (the file stays where it is). A file that cannot be ingested is listed in
        the report with the reason while the rest go on; one already ingested is
        skipped. ``jobs`` processes read and copy the files; this one records them. See
        :mod:`butler.ingest`.
        """
        self.check_writeable("ingest")
        from .ingest import ingest  # loaded on first use, with its header readers and workers

        return ingest(
            self, paths, transfer=transfer, rules=rules, show_progress=show_progress, jobs=jobs
        )

    def verify(
        self, *, read: bool = False, show_progress: bool = False, repair: bool = False
    ) -> VerifyReport:
        """Check that every record has its file (and, with ``read``, that each file reads).

        ``repair`` first finishes interrupted operations (see :mod:`butler.recovery`)
        and deletes the temporaries of writers that are gone.
        """
        if repair:
            self.check_writeable("repair")
        from .maintenance import verify

        return verify(self, read=read, show_progress=show_progress, repair=repair)
