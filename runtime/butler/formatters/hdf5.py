"""HDF5 through h5py: arrays with attributes, dicts of arrays, astropy Tables.

Layout of a file this module writes (the root attribute ``butler_type`` records
which object the file holds):

- :class:`~butler.image.Image` or ``numpy.ndarray``: the dataset ``/image``;
  ``Image.metadata`` are its attributes (bool, int, float, str).
- ``astropy.table.Table``: the compound dataset ``/table``, written by astropy's
  own HDF5 writer with ``serialize_meta=True`` (units, descriptions and ``meta``
  go to its ``/table.__table_column_meta__`` sidecar).
- ``dict``: the root group; nested dicts are groups, arrays and Images datasets,
  Tables as above, and bool/int/float/str values attributes of their group.
  Order is kept, except that on reading a group its attributes (the scalar
  values) come before its datasets and groups. Keys may not contain ``/`` or be ``.``.

``hdu`` names a dataset or group by its path in the file (``"image"``,
``"calib/flat"``); HDF5 has no numbered HDUs. ``hdu=None`` is the object the
file holds: for a read that asks for an array, Image or Table, the ``/image`` or
``/table`` dataset when the file has one; otherwise the one ``butler_type``
names, or for files written elsewhere the only dataset at the root, or else the
root group as a dict.

A dataset reads as an ``Image`` if it has attributes, a ``numpy.ndarray`` if not
(``python_type`` overrides), a ``Table`` if its type is compound; a group reads
as a ``dict``. Metadata reads return attributes only; section reads slice the
dataset, so HDF5 reads only the selected hyperslab. HDF5 compresses inside the
file (filters), so ``compress=".gz"``/``".fz"`` are refused. :meth:`Hdf5Formatter.write_stream`
writes through h5py's Python file-object driver, so Butler hashes the bytes as HDF5
writes them (its superblock last, at the start of the file: see ``butler.checksums``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np
from astropy.table import Table

from ..errors import FormatError
from ..image import BBox, Image, MetadataValue
from ._common import (
    captured_warnings,
    check_compress,
    check_python_type,
    dtype_label,
    failed,
    pass_on,
    unsupported,
)
from .base import Formatter, TableInfo

__all__ = ["Hdf5Formatter"]

_NDARRAY, _IMAGE, _TABLE, _DICT = (
    "numpy.ndarray",
    "butler.image.Image",
    "astropy.table.Table",
    "dict",
)
_READS = (_NDARRAY, _IMAGE, _TABLE, _DICT)
_ACCEPTS = "butler.image.Image, numpy.ndarray, astropy.table.Table, or a dict of them"
_TYPE_ATTR = "butler_type"
_SIDECAR = ".__table_column_meta__"
_DEFAULT_PATH = {_IMAGE: "image", _NDARRAY: "image", _TABLE: "table", _DICT: "/"}


class Hdf5Formatter(Formatter):
    """HDF5 files of arrays, images, tables and dicts of them (see the module docs)."""

    name = "hdf5"
    writes_streams = True

    def write(
        self, obj: object, path: Path, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        _write(obj, path, path, hdu, compress)

    def write_stream(
        self, obj: object, stream: BinaryIO, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        _write(obj, stream, Path(getattr(stream, "name", "<stream>")), hdu, compress)

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        check_python_type(self.name, python_type, _READS)
        with _opened(path) as f:
            node = _declared(f, python_type) if hdu is None else None
            if node is None:
                node = _select(f, hdu, path)
            if isinstance(node, h5py.Group):
                if python_type not in (None, _DICT):
                    raise FormatError(f"'{node.name}' in '{path}' is a group, not a {python_type}")
                return _read_group(node)
            if python_type == _DICT:
                raise FormatError(f"'{node.name}' in '{path}' is a dataset, not a group (dict)")
            return _read_dataset(node, python_type, path)

    def read_metadata(self, path: Path, *, hdu: int | str | None = None) -> dict[str, object]:
        with _opened(path) as f:
            node = _select(f, hdu, path)
            return {k: _attr(v) for k, v in node.attrs.items() if node != f or k != _TYPE_ATTR}

    def read_section(self, path: Path, bbox: BBox, *, hdu: int | str | None = None) -> object:
        with _opened(path) as f:
            node = _select(f, hdu, path)
            if not isinstance(node, h5py.Dataset) or node.dtype.names is not None:
                raise FormatError(f"'{node.name}' in '{path}' is not an image; no section to read")
            if not bbox.fits_in(node.shape):
                raise FormatError(
                    f"{bbox} is not inside '{node.name}' in '{path}' (shape {node.shape})"
                )
            index = (slice(None),) * (node.ndim - 2) + bbox.slices
            section: np.ndarray[Any, Any] = node[index]
            return section

    def read_table_info(self, path: Path, *, hdu: int | str | None = None) -> TableInfo:
        with _opened(path) as f:
            node = _select(f, hdu, path)
            if not isinstance(node, h5py.Dataset) or node.dtype.names is None:
                raise FormatError(f"'{node.name}' in '{path}' is not a table")
            columns = {n: dtype_label(node.dtype[n], bytes_as="str") for n in node.dtype.names}
            return TableInfo(length=int(node.shape[0]), columns=columns)


# -- writing ---------------------------------------------------------------------------


def _write(
    obj: object, target: Path | BinaryIO, path: Path, hdu: int | None, compress: str | None
) -> None:
    """Write ``obj`` to ``target`` (a path, or a file object h5py writes through)."""
    check_compress("hdf5", compress, ())
    if hdu is not None:
        raise FormatError("HDF5 files have no HDUs; name datasets with a dict instead of hdu=")
    kind = _kind(obj)
    try:
        with captured_warnings() as caught, h5py.File(target, "w", track_order=True) as f:
            f.attrs[_TYPE_ATTR] = kind
            if kind == _DICT:
                assert isinstance(obj, Mapping)
                _write_group(f, obj)
            else:
                _write_item(f, _DEFAULT_PATH[kind], obj)
    except FormatError:
        raise
    except Exception as exc:
        raise failed("HDF5", "write", path, exc) from exc
    pass_on(caught)


def _kind(obj: object) -> str:
    if isinstance(obj, Image):
        return _IMAGE
    if isinstance(obj, np.ndarray):
        return _NDARRAY
    if isinstance(obj, Table):
        return _TABLE
    if isinstance(obj, Mapping):
        return _DICT
    raise unsupported("hdf5", obj, _ACCEPTS)


def _write_group(group: h5py.Group, mapping: Mapping[Any, Any]) -> None:
    for key, value in mapping.items():
        if not isinstance(key, str) or not key or "/" in key or key == ".":
            raise FormatError(f"HDF5 names must be non-empty str without '/'; got {key!r}")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | float | str):
            group.attrs[key] = value
        elif isinstance(value, Mapping):
            _write_group(group.create_group(key, track_order=True), value)
        else:
            _write_item(group, key, value)


def _write_item(group: h5py.Group, name: str, obj: object) -> None:
    if isinstance(obj, Table):
        obj.write(group, path=name, serialize_meta=True)
        return
    image = obj if isinstance(obj, Image) else Image(obj) if isinstance(obj, np.ndarray) else None
    if image is None:
        raise unsupported("hdf5", obj, _ACCEPTS + " (dicts may also hold bool, int, float, str)")
    if image.array.dtype.kind in "UO":
        raise FormatError(f"HDF5 arrays hold numbers, bools or bytes, not {image.array.dtype}")
    dataset = group.create_dataset(name, data=image.array, track_order=True)
    for key, value in image.metadata.items():
        dataset.attrs[key] = value


# -- reading ---------------------------------------------------------------------------


@contextmanager
def _opened(path: Path) -> Iterator[h5py.File]:
    with captured_warnings() as caught:
        try:
            with h5py.File(path, "r") as f:
                yield f
        except FormatError:
            raise
        except Exception as exc:
            raise failed("HDF5", "read", path, exc) from exc
    pass_on(caught)


def _declared(f: h5py.File, python_type: str | None) -> h5py.Dataset | None:
    """The member Butler writes a ``python_type`` to (``image``, ``table``), if the file has it.

    Found by name, without reading the file's type attribute: on a freshly opened file that
    read costs about twice the lookup.
    """
    name = _DEFAULT_PATH.get(python_type) if python_type in (_NDARRAY, _IMAGE, _TABLE) else None
    node = f.get(name) if name is not None else None
    return node if isinstance(node, h5py.Dataset) else None


def _select(f: h5py.File, hdu: int | str | None, path: Path) -> h5py.Group | h5py.Dataset:
    if hdu is None:
        kind = _attr(f.attrs.get(_TYPE_ATTR, ""))
        if kind in _DEFAULT_PATH:
            hdu = _DEFAULT_PATH[str(kind)]
        else:
            datasets = [k for k in f if isinstance(f[k], h5py.Dataset) and not k.endswith(_SIDECAR)]
            groups = [k for k in f if isinstance(f[k], h5py.Group)]
            hdu = datasets[0] if len(datasets) == 1 and not groups else "/"
    if not isinstance(hdu, str):
        raise FormatError(f"HDF5 objects are named by path (like 'image'), not {hdu!r} ({path})")
    if hdu not in f:
        raise FormatError(f"'{path}' has no dataset or group {hdu!r}; at its root: {list(f)}")
    node = f[hdu]
    if not isinstance(node, h5py.Group | h5py.Dataset):
        raise FormatError(f"'{hdu}' in '{path}' is neither a dataset nor a group")
    return node


def _read_group(group: h5py.Group) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in group.attrs.items():
        if not (group.name == "/" and key == _TYPE_ATTR):
            out[key] = _attr(value)
    for key in group:
        node = group[key]
        if isinstance(node, h5py.Group):
            out[key] = _read_group(node)
        elif isinstance(node, h5py.Dataset) and not key.endswith(_SIDECAR):
            out[key] = _read_dataset(node, None, Path(group.file.filename))
    return out


def _read_dataset(node: h5py.Dataset, python_type: str | None, path: Path) -> object:
    if node.dtype.names is not None:
        if python_type not in (None, _TABLE):
            raise FormatError(f"'{node.name}' in '{path}' is a table, not a {python_type}")
        name = node.name.rpartition("/")[2]
        return Table.read(node.parent, path=name, character_as_bytes=False)
    if python_type == _TABLE:
        raise FormatError(f"'{node.name}' in '{path}' is an array, not a table")
    array: np.ndarray[Any, Any] = node[()]
    if python_type == _NDARRAY:
        return array
    metadata = _image_metadata(node)
    return Image(array, metadata) if python_type == _IMAGE or metadata else array


def _image_metadata(node: h5py.Dataset) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {}
    for key, value in node.attrs.items():
        value = _attr(value)
        if isinstance(value, bool | int | float | str):
            metadata[key] = value
    return metadata


def _attr(value: object) -> object:
    """An attribute as a Python value: numpy scalars unwrapped, bytes decoded."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
