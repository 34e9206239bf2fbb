"""What a chain asks of the repositories it reads: the :class:`ChainMember` interface.

A chain (:mod:`butler.chain`) searches its output repository and then its parents,
find-first. A parent is anything with these methods: a local :class:`~butler.Butler`
(a folder, S3) and the client of a served repository
(:class:`~butler.remote.client.RemoteButler`) both are, so a remote repository can be
the parent of a local output. The chain never reaches into a parent's registry or
datastore: it asks by dataset type and data ID, and reads by :class:`DatasetRef`.

Every method is a public method of the Butler, with its meaning and errors
(docs/runtime.md); :meth:`ChainMember.find_ref` is the one a chain needs that a user
rarely does: the ref of what ``get`` would read, or None.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .dataid import DataId
from .refs import DatasetRef
from .spec import DatasetTypeSpec, FormatSpec, KeySpec, Value

if TYPE_CHECKING:
    from .butler import Butler
    from .calibrations import CalibrationRef
    from .formatters import BBox, TableInfo

__all__ = ["ChainMember", "RuntimeTypes"]


@dataclass(frozen=True)
class RuntimeTypes:
    """The dataset types a repository defined at run time (``register_dataset_type``),
    with the keys and formats they use: what a chain over it inherits."""

    dataset_types: tuple[DatasetTypeSpec, ...] = ()
    keys: tuple[KeySpec, ...] = ()
    formats: tuple[FormatSpec, ...] = ()


class ChainMember(Protocol):
    """A repository a chain reads (the read side of the Butler's API)."""

    #: The repository's UUID, which its refs carry (None: a repository made before ids).
    repository_id: str | None

    @property
    def address(self) -> str:
        """Where it is, as a message names it: its root folder or URL."""
        ...

    @property
    def description(self) -> str:
        """What a failed lookup says it searched: ``ROOT (registry URL)`` or the URL."""
        ...

    @property
    def instrument(self) -> str | None:
        """The instrument of its mapper (None: a server that does not say)."""
        ...

    @property
    def dataset_types(self) -> tuple[str, ...]: ...

    def dataset_keys(self, dataset_type: str) -> Mapping[str, str]:
        """Each key of a dataset type's data IDs -> its type name (``"int"``, ``"date"``);
        UnknownDatasetTypeError for a dataset type it does not know."""
        ...

    def runtime_types(self) -> RuntimeTypes:
        """Its runtime dataset types (a served repository's are not inherited: empty)."""
        ...

    def local(self) -> Butler | None:
        """The Butler itself when its registry is reachable from this process (the query
        engine's ``where``/``order_by``/sky queries run SQL on it); None for a served one."""
        ...

    # ---- finding ---------------------------------------------------------------------------

    def find_ref(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, **keys: object
    ) -> DatasetRef | None:
        """The ref of the dataset :meth:`get` would read for a (partial) data ID, or None if
        none is stored; a calibration named by an observation (or with ``as_of``) is the
        one certified for it. AmbiguousDataIdError as for get."""
        ...

    def get_ref(self, text: str) -> DatasetRef: ...

    # ---- reading by ref ----------------------------------------------------------------------

    def get(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> Any: ...

    def get_metadata(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> dict[str, object]: ...

    def get_section(
        self,
        dataset_type: str | DatasetRef,
        bbox: BBox,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> Any: ...

    def get_table_info(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> TableInfo: ...

    def exists(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> bool: ...

    def uri(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> str: ...

    # ---- queries -------------------------------------------------------------------------------

    # A chain passes a plain (partial) data ID; ``keys: Any`` lets a member take options too.

    def query_rows(
        self, dataset_type: str, partial: Mapping[str, Value]
    ) -> Iterator[Mapping[str, Value]]:
        """The stored data IDs matching a normalized partial data ID, as mappings of the
        dataset type's keys, not yet normalized: a chain normalizes each once, with its own
        mapper (:meth:`query`'s data IDs would be normalized twice)."""
        ...

    def query(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, **keys: Any
    ) -> Iterator[DataId]: ...

    def count(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, **keys: Any
    ) -> int: ...

    def query_values(
        self,
        dataset_type: str,
        key: str,
        data_id: Mapping[str, object] | None = None,
        **keys: Any,
    ) -> list[Value]: ...

    # ---- calibrations ----------------------------------------------------------------------

    def find_calibration(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        **keys: object,
    ) -> CalibrationRef: ...

    def close(self) -> None: ...
