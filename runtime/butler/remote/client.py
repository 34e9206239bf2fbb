"""``RemoteButler``: a served repository, with the methods and errors of a local Butler.

    butler = Butler("http://127.0.0.1:8642/repos/hsc", token=...)   # returns a RemoteButler
    image = butler.get("calexp", visit=903334, ccd=16)
    butler.put(image, "calexp", visit=903334, ccd=16, overwrite=True)

The client reads and writes files with the same formatters as a local Butler: a get
downloads the stored file and reads it here; a put writes the object into bytes here and
uploads them; the server reads them back before it stores anything, and chooses the
path. Queries stream: the data IDs are read from the network as the caller iterates.
The token comes from ``token=``, ``$BUTLER_TOKEN`` or the token file (see
:mod:`butler.remote.tokens`). See docs/remote.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..butler import Butler
from ..dataid import DataId
from ..errors import ButlerError, UnknownDatasetTypeError
from ..formatters import BBox, FormatterRegistry, TableInfo
from ..member import RuntimeTypes
from ..objects import check_object
from ..refs import DatasetRef, parse_ref
from ..spec import Value
from . import wire
from .client_signed import content_of, signed_put
from .session import Session
from .tokens import client_token

if TYPE_CHECKING:
    from ..calibrations import CalibrationRef, Certification

__all__ = ["RemoteButler"]


def _records() -> dict[str, wire.Record]:
    """The records a server's answers hold (imported on first use: calibrations is large)."""
    from ..calibrations import CalibrationRef, Certification

    return {
        "DatasetRef": (DatasetRef, {"data_id": wire.data_id}),
        "CalibrationRef": (
            CalibrationRef,
            {"data_id": wire.data_id, "observation": wire.data_id},
        ),
        "Certification": (Certification, {}),
    }


class RemoteButler(Butler):
    """The client of a repository served by ``butler serve`` (see the module docs)."""

    def __init__(  # the signature of Butler's, with a token
        self,
        root: str | os.PathLike[str],
        *,
        token: str | None = None,
        timeout: float = 60.0,
        **ignored: Any,
    ) -> None:
        self.url = os.fspath(root).rstrip("/")
        self._session = Session(self.url, client_token(self.url, token), timeout=timeout)
        self.formatters = FormatterRegistry.default()
        self._records = _records()
        self._scratch_folder: str | None = None
        self._remove_scratch: Callable[[], object] | None = None
        try:
            self._refresh()
        except BaseException:
            self._session.close()
            raise

    def _refresh(self) -> None:
        info = self._session.call("repository")
        self._info: dict[str, Any] = info
        self.repository_id: str | None = info["id"]
        self.writeable = bool(info["writeable"])
        #: Whether the files move through signed URLs of an object store (butler.remote.signed).
        self._signed_urls = bool(info.get("signed_urls"))
        self._types: dict[str, dict[str, Any]] = {t["name"]: t for t in info["dataset_types"]}

    def close(self) -> None:
        self._session.close()
        if self._remove_scratch is not None:
            self._remove_scratch()

    def __enter__(self) -> RemoteButler:
        return self

    def __repr__(self) -> str:
        return f"Butler({self.url!r})"

    def _decode(self, data: Any) -> Any:
        if type(data) is dict and not any(type(v) in (dict, list) for v in data.values()):
            return data  # a data ID of plain values: the fast path of a streamed query
        return wire.decode(data, self._records)

    # ---- dataset types ----------------------------------------------------------------------

    @property
    def dataset_types(self) -> tuple[str, ...]:
        return tuple(self._types)

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
        body = {
            "name": name,
            "template": template,
            "format": format,
            "keys": list(keys),
            "doc": doc,
            "text": text,
        }
        self._session.call("register-dataset-type", body, write=True)
        self._refresh()

    def _type(self, name: str) -> dict[str, Any]:
        if name not in self._types:
            self._refresh()  # registered by another client since
        if name not in self._types:
            raise UnknownDatasetTypeError(
                f"unknown dataset type {name!r} in the repository at {self.url}; its dataset "
                f"types are {', '.join(sorted(self._types)) or 'none'}"
            )
        return self._types[name]

    # ---- reading ------------------------------------------------------------------------------

    @staticmethod
    def _target(
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None,
        keys: Mapping[str, object],
    ) -> dict[str, Any]:
        if isinstance(dataset_type, DatasetRef):
            ref = wire.encode(dataset_type)["$DatasetRef"]  # its fields
            if data_id is not None or keys:  # the server says why not
                return {"ref": ref, "data_id": wire.encode({**(data_id or {}), **keys})}
            return {"ref": ref}
        return {"dataset_type": dataset_type, "data_id": wire.encode({**(data_id or {}), **keys})}

    def get(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> Any:
        target = self._target(dataset_type, data_id, keys)
        response = self._session.fetch_or_redirect("get", target)
        how = json.loads(response.headers["X-Butler-Format"])
        formatter = self.formatters.get(how["formatter"])
        content = content_of(self._session, response, f"dataset {target}")
        # formatters read files: the download is one, in this client's scratch folder
        fd, name = tempfile.mkstemp(dir=self._scratch())
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(content)
            return formatter.read(Path(name), python_type=how["python_type"], hdu=how["hdu"])
        finally:
            os.unlink(name)

    def _scratch(self) -> str:
        """The folder downloads are read from (made on first use, removed on close)."""
        if self._scratch_folder is None:
            folder = tempfile.mkdtemp(prefix="butler-get-")
            self._remove_scratch = weakref.finalize(self, shutil.rmtree, folder, True)
            self._scratch_folder = folder
        return self._scratch_folder

    def get_many(self, dataset_type: str, data_ids: Iterable[Mapping[str, object]]) -> list[Any]:
        """The stored objects for many data IDs, in order (one request each, on the one
        connection pool)."""
        return [self.get(dataset_type, data_id) for data_id in data_ids]

    def get_metadata(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> dict[str, object]:
        answer = self._session.call("get-metadata", self._target(dataset_type, data_id, keys))
        metadata: dict[str, object] = self._decode(answer["metadata"])
        return metadata

    def get_section(
        self,
        dataset_type: str | DatasetRef,
        bbox: BBox,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> Any:
        import numpy as np

        body = {
            **self._target(dataset_type, data_id, keys),
            "bbox": [bbox.x0, bbox.y0, bbox.x1, bbox.y1],
        }
        response = self._session.fetch("get-section", body)
        return np.load(io.BytesIO(response.content), allow_pickle=False)

    def get_table_info(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> TableInfo:
        answer = self._session.call("get-table-info", self._target(dataset_type, data_id, keys))
        return TableInfo(answer["length"], answer["columns"])

    def exists(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> bool:
        answer = self._session.call("exists", self._target(dataset_type, data_id, keys))
        return bool(answer["exists"])

    def uri(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> str:
        """The dataset's download URL on the server (``.../v1/datasets/<id>``, GET with the
        token), never the server's own path; DatasetNotFoundError if none is stored."""
        answer = self._session.call("uri", self._target(dataset_type, data_id, keys))
        return str(answer["uri"])

    def datalink_url(self, ref: DatasetRef | str) -> str:
        """The URL of ``ref``'s DataLink table (IVOA DataLink 1.1) on the server; a VO
        client sends the token as ``Authorization: Bearer`` or appends ``&token=...``."""
        text = str(ref)
        parse_ref(text)  # InvalidDataIdError for anything but a ref
        return f"{self.url}/datalink?ID={quote(text, safe='')}"

    def explain(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        strict: bool = False,
        **keys: object,
    ) -> str:
        body = {"dataset_type": dataset_type, "data_id": wire.encode({**(data_id or {}), **keys})}
        return str(self._session.call("explain", body)["text"])

    def get_ref(self, text: str) -> DatasetRef:
        ref: DatasetRef = self._decode(self._session.call("get-ref", {"text": text})["ref"])
        return ref

    # ---- as a parent of a chain (butler.member.ChainMember) -----------------------------------

    @property
    def address(self) -> str:
        """The repository's URL."""
        return self.url

    @property
    def description(self) -> str:
        return f"{self.url} (served)"

    @property
    def instrument(self) -> str | None:
        """The instrument the server names (None: a server that does not say)."""
        named = self._info.get("instrument")
        return named if isinstance(named, str) else None

    def dataset_keys(self, dataset_type: str) -> Mapping[str, str]:
        how = self._type(dataset_type)
        typed = how.get("key_types")
        return dict(typed) if isinstance(typed, dict) else {k: "?" for k in how["keys"]}

    def runtime_types(self) -> RuntimeTypes:
        """None inherited: a chain over a served repository knows its policy's dataset types."""
        return RuntimeTypes()

    def query_rows(
        self, dataset_type: str, partial: Mapping[str, Value]
    ) -> Iterator[Mapping[str, Value]]:
        """:meth:`query` (streamed from the server)."""
        return self.query(dataset_type, partial)

    def local(self) -> Butler | None:
        """None: the registry is the server's."""
        return None

    def find_ref(
        self, dataset_type: str, data_id: Mapping[str, object] | None = None, **keys: object
    ) -> DatasetRef | None:
        answer = self._session.call("find-ref", self._target(dataset_type, data_id, keys))
        ref: DatasetRef | None = self._decode(answer["ref"])
        return ref

    # ---- queries ------------------------------------------------------------------------------

    @staticmethod
    def _query_body(
        dataset_type: str,
        data_id: Mapping[str, object] | None,
        keys: Mapping[str, object],
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        with_datasets: Iterable[str] = (),
        without_datasets: Iterable[str] = (),
    ) -> dict[str, Any]:
        return {
            "dataset_type": dataset_type,
            "data_id": wire.encode({**(data_id or {}), **keys}),
            "where": where,
            "bind": None if bind is None else wire.encode(bind),
            "with_datasets": [with_datasets]
            if isinstance(with_datasets, str)
            else list(with_datasets),
            "without_datasets": (
                [without_datasets] if isinstance(without_datasets, str) else list(without_datasets)
            ),
        }

    def _streamed(self, route: str, body: dict[str, Any]) -> Iterator[Any]:
        with self._session.stream(route, body) as documents:
            for document in documents:
                yield self._decode(document)

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
        **keys: object,
    ) -> Iterator[DataId]:
        body = self._query_body(
            dataset_type, data_id, keys, where, bind, with_datasets, without_datasets
        )
        body["order_by"] = [order_by] if isinstance(order_by, str) else list(order_by)
        body["limit"] = limit
        return (DataId(values) for values in self._streamed("query", body))

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
        body = self._query_body(
            dataset_type, data_id, keys, where, bind, with_datasets, without_datasets
        )
        body["order_by"] = [order_by] if isinstance(order_by, str) else list(order_by)
        body["limit"] = limit
        body.update(_sky_body(region, contains, overlapping))
        return self._streamed("query-datasets", body)

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
        **keys: object,
    ) -> list[Value]:
        body = self._query_body(
            dataset_type, data_id, keys, where, bind, with_datasets, without_datasets
        )
        body["key"] = key
        return list(self._streamed("query-values", body))

    def count(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        where: str | None = None,
        bind: Mapping[str, object] | None = None,
        with_datasets: Iterable[str] = (),
        without_datasets: Iterable[str] = (),
        **keys: object,
    ) -> int:
        body = self._query_body(
            dataset_type, data_id, keys, where, bind, with_datasets, without_datasets
        )
        return int(self._session.call("count", body)["count"])

    # ---- calibrations -------------------------------------------------------------------------

    def find_calibration(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        **keys: object,
    ) -> CalibrationRef:
        body = {
            "dataset_type": dataset_type,
            "data_id": wire.encode({**(data_id or {}), **keys}),
            "as_of": wire.encode(as_of),
        }
        found: CalibrationRef = self._decode(
            self._session.call("find-calibration", body)["calibration"]
        )
        return found

    def calibration_history(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None = None,
        *,
        as_of: object = None,
        include_closed: bool = True,
    ) -> list[Certification]:
        body = {
            "dataset_type": dataset_type,
            "data_id": wire.encode(data_id or {}),
            "as_of": wire.encode(as_of),
            "include_closed": include_closed,
        }
        history: list[Certification] = self._decode(
            self._session.call("calibration-history", body)["certifications"]
        )
        return history

    # ---- writing ------------------------------------------------------------------------------

    def _serialize(self, dataset_type: str, obj: object, data_id: Mapping[str, object]) -> bytes:
        """``obj`` as its dataset type's format writes it (the server reads it back)."""
        how = self._type(dataset_type)
        check_object(dataset_type, how["python_type"], obj)
        formatter = self.formatters.get(how["formatter"])
        hdu = data_id.get(how["hdu"]) if isinstance(how["hdu"], str) else how["hdu"]
        write_hdu = hdu if isinstance(hdu, int) and not isinstance(hdu, bool) else None
        compress = how["compress"]
        if formatter.writes_streams:
            buffer = io.BytesIO()
            formatter.write_stream(obj, buffer, hdu=write_hdu, compress=compress)
            return buffer.getvalue()
        with tempfile.TemporaryDirectory(prefix="butler-put-") as folder:
            path = Path(folder) / "dataset"
            formatter.write(obj, path, hdu=write_hdu, compress=compress)
            return path.read_bytes()

    def _upload(
        self,
        dataset_type: str,
        items: Sequence[tuple[object, Mapping[str, object]]],
        *,
        overwrite: bool,
        run: str | None,
        many: bool,
    ) -> list[DatasetRef]:
        blobs = [self._serialize(dataset_type, obj, did) for obj, did in items]
        meta = {
            "dataset_type": dataset_type,
            "data_ids": [wire.encode(did) for _, did in items],
            "sizes": [len(b) for b in blobs],
            "overwrite": overwrite,
            "run": run,
            "many": many,
        }
        signed = signed_put(self._session, meta, blobs) if self._signed_urls else None
        if signed is not None:  # object storage: the bytes went to the store
            stored: list[DatasetRef] = self._decode(signed["refs"])
            return stored
        content = json.dumps(meta, separators=(",", ":")).encode() + b"\n" + b"".join(blobs)
        refs: list[DatasetRef] = self._decode(self._session.upload("put", content)["refs"])
        return refs

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
        given = {**(data_id or {}), **keys}
        return self._upload(dataset_type, [(obj, given)], overwrite=overwrite, run=run, many=False)[
            0
        ]

    def put_many(
        self,
        dataset_type: str,
        items: Iterable[tuple[object, Mapping[str, object]]],
        *,
        overwrite: bool = False,
        run: str | None = None,
    ) -> list[DatasetRef]:
        listed = [(obj, dict(did)) for obj, did in items]
        return self._upload(dataset_type, listed, overwrite=overwrite, run=run, many=True)

    def remove(
        self,
        dataset_type: str | DatasetRef,
        data_id: Mapping[str, object] | None = None,
        **keys: object,
    ) -> None:
        self._session.call("remove", self._target(dataset_type, data_id, keys), write=True)

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
        body = {
            "dataset_type": dataset_type,
            "data_id": wire.encode(data_id or {}),
            "valid_from": wire.encode(valid_from),
            "valid_to": wire.encode(valid_to),
            "supersede": supersede,
            "source": source,
        }
        made: Certification = self._decode(
            self._session.call("certify", body, write=True)["certification"]
        )
        return made

    def decertify(
        self,
        dataset_type: str,
        data_id: Mapping[str, object] | None,
        valid_from: object = None,
        valid_to: object = None,
    ) -> list[Certification]:
        body = {
            "dataset_type": dataset_type,
            "data_id": wire.encode(data_id or {}),
            "valid_from": wire.encode(valid_from),
            "valid_to": wire.encode(valid_to),
        }
        closed: list[Certification] = self._decode(
            self._session.call("decertify", body, write=True)["certifications"]
        )
        return closed

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Puts and removes in one commit on the server, all or none (as a local Butler's;
        reads inside it see what is committed; see butler.remote.transactions)."""
        session = self._session
        if session.transaction is not None:
            yield
            return
        opened = session.call("transactions", {}, write=True)["transaction"]
        session.transaction = opened
        try:
            yield
        except BaseException:
            session.transaction = None
            with contextlib.suppress(ButlerError):
                session.call(f"transactions/{opened}/rollback", {}, write=True)
            raise
        session.transaction = None
        session.call(f"transactions/{opened}/commit", {}, write=True)


def _sky_body(region: object, contains: object, overlapping: object) -> dict[str, Any]:
    """The sky part of a query's body (issue 17), checked here as Butler.query checks it."""
    from ..query import spatial

    body: dict[str, Any] = {}
    if region is not None:
        body["region"] = bytes(spatial.as_region(region).encode()).hex()
    if contains is not None:
        body["contains"] = list(spatial.point(contains))
    if overlapping is not None:
        other, data_id = spatial.overlapping_arg(overlapping)
        body["overlapping"] = [other, wire.encode(data_id)]
    return body
