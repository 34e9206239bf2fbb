"""The request bodies of the remote API, as pydantic models (they make its OpenAPI schema).

Values inside (data IDs, times, bind values) are in the tagged JSON of
:mod:`butler.remote.wire`; the server decodes them with :func:`data_id`, which accepts
only what a data ID may hold. Server side only: the client builds the same JSON by hand
and needs no pydantic.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..dataid import DataId
from ..errors import InvalidDataIdError, InvalidQueryError
from ..refs import DatasetRef, parse_ref
from . import wire

__all__ = [
    "CalibrationQuery",
    "Certify",
    "Decertify",
    "FindCalibration",
    "Query",
    "RefText",
    "RegisterDatasetType",
    "Section",
    "Target",
    "ValuesQuery",
    "data_id",
    "value",
]

#: The most items a data ID (or bind) may have, and a list value within it.
MAX_ITEMS = 1000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefModel(_Model):
    """A :class:`~butler.refs.DatasetRef` as the client holds it."""

    dataset_type: str = Field(max_length=256)
    data_id: dict[str, Any] = {}
    id: str
    run: str | None = None
    repository: str

    def ref(self) -> DatasetRef:
        repository, dataset = parse_ref(f"butler:{self.repository}/{self.id}")
        return DatasetRef(self.dataset_type, data_id(self.data_id), dataset, self.run, repository)


class Target(_Model):
    """One dataset: a dataset type and a (possibly partial) data ID, or a ref alone."""

    dataset_type: str | None = Field(None, max_length=256)
    data_id: dict[str, Any] = {}
    ref: RefModel | None = None

    def args(self) -> tuple[str | DatasetRef, DataId | None]:
        if self.ref is not None:
            if self.dataset_type is not None or self.data_id:
                raise InvalidDataIdError("a DatasetRef names its dataset alone; give no data ID")
            return self.ref.ref(), None
        if self.dataset_type is None:
            raise InvalidDataIdError("name a dataset: a dataset_type and data_id, or a ref")
        return self.dataset_type, data_id(self.data_id)


class Section(Target):
    bbox: tuple[int, int, int, int]


class RefText(_Model):
    text: str = Field(max_length=200)


class Query(_Model):
    dataset_type: str = Field(max_length=256)
    data_id: dict[str, Any] = {}
    where: str | None = Field(None, max_length=100_000)
    bind: dict[str, Any] | None = None
    with_datasets: list[str] = []
    without_datasets: list[str] = []
    order_by: list[str] = []
    limit: int | None = None
    # sky (issue 17): an lsst.sphgeom Region.encode() in hex, (ra, dec), (type, data ID)
    region: str | None = Field(None, max_length=1_000_000)
    contains: tuple[float, float] | None = None
    overlapping: tuple[str, dict[str, Any]] | None = None

    def selection(self) -> dict[str, Any]:
        """The keyword arguments of Butler.query, decoded."""
        return {
            "where": self.where,
            "bind": None if self.bind is None else data_id(self.bind, collections=True),
            "with_datasets": self.with_datasets,
            "without_datasets": self.without_datasets,
            "region": None if self.region is None else _region(self.region),
            "contains": self.contains,
            "overlapping": None
            if self.overlapping is None
            else (self.overlapping[0], data_id(self.overlapping[1])),
        }

    def arguments(self) -> tuple[tuple[str, DataId], dict[str, Any]]:
        """The arguments of Butler.query (and query_datasets), decoded: the dataset type
        and data ID, and the keywords (``order_by``, ``limit`` and the selection's)."""
        found = data_id(self.data_id, collections=True)
        keywords = {"order_by": self.order_by, "limit": self.limit, **self.selection()}
        return (self.dataset_type, found), keywords


def _region(text: str) -> Any:
    """A request's region (hex of lsst.sphgeom's encoding), decoded."""
    import lsst.sphgeom as sg

    try:
        return sg.Region.decode(bytes.fromhex(text))
    except (ValueError, TypeError, RuntimeError) as error:
        raise InvalidQueryError(
            f"region: not the hex of an encoded lsst.sphgeom region ({error})"
        ) from None


class ValuesQuery(Query):
    key: str = Field(max_length=256)


class FindCalibration(_Model):
    dataset_type: str = Field(max_length=256)
    data_id: dict[str, Any] = {}
    as_of: Any = None


class CalibrationQuery(FindCalibration):
    include_closed: bool = True


class Certify(_Model):
    dataset_type: str = Field(max_length=256)
    data_id: dict[str, Any] = {}
    valid_from: Any
    valid_to: Any = None
    supersede: bool = False
    source: str | None = None


class Decertify(_Model):
    dataset_type: str = Field(max_length=256)
    data_id: dict[str, Any] = {}
    valid_from: Any = None
    valid_to: Any = None


class RegisterDatasetType(_Model):
    name: str | None = Field(None, max_length=256)
    template: str | None = Field(None, max_length=4096)
    format: str | None = Field(None, max_length=256)
    keys: list[str] = []
    doc: str = Field("", max_length=10_000)
    text: str | None = Field(None, max_length=100_000)


def value(raw: Any) -> Any:
    """One scalar of a request (a time, a bound): decoded; InvalidDataIdError otherwise."""
    decoded = wire.decode(raw)
    if isinstance(decoded, list | dict | range):
        raise InvalidDataIdError(f"expected a single value, not {raw!r}")
    return decoded


def data_id(raw: Any, *, collections: bool = False) -> DataId:
    """A data ID of a request, decoded: scalar values only (``collections``: a query's lists
    and ranges of scalars too); InvalidDataIdError for anything else."""
    if not isinstance(raw, dict) or len(raw) > MAX_ITEMS:
        raise InvalidDataIdError(f"a data ID is a mapping of at most {MAX_ITEMS} keys")
    items: dict[str, Any] = {}
    for key, item in raw.items():
        decoded = wire.decode(item)
        if isinstance(decoded, dict):
            raise InvalidDataIdError(f"data ID value of {key!r} is a mapping: {item!r}")
        if isinstance(decoded, list | range):
            if not collections:
                raise InvalidDataIdError(f"data ID value of {key!r} is not a single value")
            if isinstance(decoded, list) and (
                len(decoded) > MAX_ITEMS or any(isinstance(v, list | dict) for v in decoded)
            ):
                raise InvalidDataIdError(f"data ID value of {key!r}: a list of single values")
        items[key] = decoded
    return DataId(items)
