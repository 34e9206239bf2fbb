"""IVOA DataLink 1.1 link tables for stored datasets.

    urls = LinkURLs(access=lambda ref: f"{base}/datasets/{ref.id}", preview=...)
    body = datalink_votable(butler, ["butler:<repo>/<dataset>"], urls, as_of=None)

For each ID (a dataset ref's text, see :mod:`butler.refs`) the table has:

- ``#this``: the dataset itself: its access URL, content type and size in bytes;
- ``#preview``: a small PNG of an image dataset (see :mod:`butler.preview`);
- ``#calibration``: each calibration a processing of that observation would use, as
  the bitemporal lookup answers it (``as_of``: as the registry stood then), one row
  per calibration dataset type that has a certification valid for it;
- ``#progenitor``: the observation those lookups started from (the ``raw`` whose
  time and keys chose the calibrations), when the dataset is not that observation;
- an error row (``error_message`` with one of the standard fault prefixes
  ``NotFoundFault``, ``UsageFault``, ``DefaultFault``) for an ID that is not a ref, or
  that names no stored dataset, or a link that could not be worked out.

Every row has exactly one of ``access_url``, ``service_def`` and ``error_message``,
as the standard requires. This module builds the table; the server
(:mod:`butler.remote`) answers ``GET /repos/<name>/datalink?ID=...`` with it and
decides what the URLs are, through :class:`LinkURLs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from .errors import AmbiguousCalibrationError, ButlerError, DatasetNotFoundError, InvalidDataIdError
from .refs import DatasetRef

if TYPE_CHECKING:
    from .butler import Butler

__all__ = [
    "CONTENT_TYPE",
    "STANDARD_ID",
    "Link",
    "LinkURLs",
    "datalink_votable",
    "links_for",
    "votable",
]

#: The media type of a DataLink response.
CONTENT_TYPE = "application/x-votable+xml;content=datalink"
STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"

#: Media types of the files each formatter writes.
MEDIA_TYPES = {
    "fits": "application/fits",
    "hdf5": "application/x-hdf5",
    "yaml": "application/yaml",
    "json": "application/json",
    "ecsv": "text/plain",  # no registered type; ECSV is plain text
    "text": "text/plain",
    "pickle": "application/octet-stream",
}
#: Formatters whose datasets are images, and so get a ``#preview`` link.
IMAGE_FORMATTERS = frozenset({"fits", "hdf5"})
IMAGE_TYPES = frozenset({"butler.image.Image", "butler.Image", "numpy.ndarray"})


@dataclass(frozen=True)
class LinkURLs:
    """How the server names a dataset's bytes and its preview, given its ref."""

    access: Callable[[DatasetRef], str]
    preview: Callable[[DatasetRef], str] | None = None


@dataclass(frozen=True)
class Link:
    """One row of a DataLink table (the DataLink 1.1 columns this server fills)."""

    id: str
    semantics: str
    access_url: str | None = None
    error_message: str | None = None
    description: str = ""
    content_type: str | None = None
    content_length: int | None = None
    local_semantics: str | None = None


def links_for(
    butler: Butler, ids: Sequence[str], urls: LinkURLs, *, as_of: object = None
) -> list[Link]:
    """The link rows of each ID in ``ids``, in order; never raises for a bad ID."""
    rows: list[Link] = []
    for text in ids:
        rows.extend(_links_of(butler, text, urls, as_of))
    return rows


def datalink_votable(
    butler: Butler, ids: Sequence[str], urls: LinkURLs, *, as_of: object = None
) -> bytes:
    """The DataLink VOTable (UTF-8 bytes) of ``ids``: :func:`votable` of :func:`links_for`."""
    return votable(links_for(butler, ids, urls, as_of=as_of))


def _fault(text: str, semantics: str, fault: str, message: str) -> Link:
    return Link(text, semantics, error_message=f"{fault}: {message}")


def _links_of(butler: Butler, text: str, urls: LinkURLs, as_of: object) -> Iterator[Link]:
    try:
        ref = butler.get_ref(text)
    except InvalidDataIdError as error:
        yield _fault(text, "#this", "UsageFault", str(error))
        return
    except DatasetNotFoundError as error:
        yield _fault(text, "#this", "NotFoundFault", str(error))
        return
    yield _this(butler, text, ref, urls)
    if urls.preview is not None and _is_image(butler, ref.dataset_type):
        yield Link(
            text,
            "#preview",
            access_url=urls.preview(ref),
            description=f"a PNG preview of {ref.dataset_type} {ref.data_id}",
            content_type="image/png",
        )
    yield from _lineage(butler, text, ref, urls, as_of)


def _this(butler: Butler, text: str, ref: DatasetRef, urls: LinkURLs) -> Link:
    spec = butler.mapper.dataset_type(ref.dataset_type)
    about = f"{ref.dataset_type} {ref.data_id}" + (f": {spec.doc}" if spec.doc else "")
    return _dataset_link(butler, text, "#this", ref, urls, about)


def _dataset_link(
    butler: Butler,
    text: str,
    semantics: str,
    ref: DatasetRef,
    urls: LinkURLs,
    description: str,
    local_semantics: str | None = None,
) -> Link:
    """A row pointing at the bytes of the stored dataset ``ref``."""
    formatter = butler.plan(ref.dataset_type).format.formatter
    return Link(
        text,
        semantics,
        access_url=urls.access(ref),
        description=description,
        content_type=MEDIA_TYPES.get(formatter, "application/octet-stream"),
        content_length=_size(butler, ref),
        local_semantics=local_semantics,
    )


def _size(butler: Butler, ref: DatasetRef) -> int | None:
    for member in (butler, *butler.chain.parents):
        local = member.local()
        if member.repository_id == ref.repository and local is not None:
            row = local.registry.find_id(ref.dataset_type, ref.id)
            return None if row is None else row[3]
    return None  # a served parent's: unknown here


def _is_image(butler: Butler, dataset_type: str) -> bool:
    fmt = butler.plan(dataset_type).format
    return fmt.formatter in IMAGE_FORMATTERS and (
        fmt.python_type is None or fmt.python_type in IMAGE_TYPES
    )


def _lineage(
    butler: Butler, text: str, ref: DatasetRef, urls: LinkURLs, as_of: object
) -> Iterator[Link]:
    """``#calibration`` rows for each calibration type valid for ``ref``'s observation,
    then one ``#progenitor`` row per observation those lookups started from."""
    if butler.mapper.dataset_type(ref.dataset_type).calibration is not None:
        return  # a calibration is not processed with calibrations
    observations: dict[str, DatasetRef] = {}
    for spec in butler.mapper.spec.dataset_types:
        calibration = spec.calibration
        if calibration is None or not butler.is_registered(spec.name):
            continue
        try:
            found = butler.find_calibration(spec.name, dict(ref.data_id), as_of=as_of)
        except AmbiguousCalibrationError as error:
            yield _fault(text, "#calibration", "DefaultFault", str(error))
            continue
        except ButlerError:
            continue  # not a calibration of this kind of observation, or none certified
        calibration_ref = _stored(butler, found.dataset_type, dict(found.data_id))
        if calibration_ref is None:
            continue
        about = f"{found.dataset_type} {found.data_id}: {found.certification.describe()}"
        yield _dataset_link(
            butler, text, "#calibration", calibration_ref, urls, about, found.dataset_type
        )
        if calibration.observation != ref.dataset_type:
            observed = _observation(butler, calibration.observation, ref)
            if observed is not None:
                observations.setdefault(observed.id, observed)
    for observed in observations.values():
        about = f"the {observed.dataset_type} {observed.data_id} this was looked up from"
        yield _dataset_link(butler, text, "#progenitor", observed, urls, about)


def _stored(butler: Butler, dataset_type: str, data_id: dict[str, object]) -> DatasetRef | None:
    keys = butler.mapper.keys(dataset_type)
    try:
        return next(butler.query_datasets(dataset_type, {k: data_id[k] for k in keys}), None)
    except ButlerError:
        return None


def _observation(butler: Butler, dataset_type: str, ref: DatasetRef) -> DatasetRef | None:
    """The one stored ``dataset_type`` dataset whose keys agree with ``ref``'s, if any."""
    if not butler.is_registered(dataset_type):
        return None
    keys = butler.mapper.keys(dataset_type)
    shared = {k: v for k, v in ref.data_id.items() if k in keys}
    if not shared:
        return None
    try:
        matches = butler.query_datasets(dataset_type, shared)
        first = next(matches, None)
        return first if next(matches, None) is None else None
    except ButlerError:
        return None


# ---- the VOTable ---------------------------------------------------------------------------

#: (name, datatype, ucd, extra attributes) of each column, in the standard's order.
_FIELDS = (
    ("ID", "char", "meta.id;meta.main", ' arraysize="*"'),
    ("access_url", "char", "meta.ref.url", ' arraysize="*"'),
    ("service_def", "char", "meta.ref", ' arraysize="*"'),
    ("error_message", "char", "meta.code.error", ' arraysize="*"'),
    ("semantics", "char", "meta.code", ' arraysize="*"'),
    ("description", "char", "meta.note", ' arraysize="*"'),
    ("content_type", "char", "meta.code.mime", ' arraysize="*"'),
    ("content_length", "long", "phys.size;meta.file", ' unit="byte"'),
    ("local_semantics", "char", "meta.code", ' arraysize="*"'),
)


def _cell(value: object) -> str:
    return "<TD/>" if value is None else f"<TD>{escape(str(value))}</TD>"


def votable(links: Sequence[Link]) -> bytes:
    """A DataLink 1.1 response (VOTable 1.4, TABLEDATA) holding ``links``."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">',
        '<RESOURCE type="results">',
        f'<INFO name="standardID" value={quoteattr(STANDARD_ID)}/>',
        "<TABLE>",
    ]
    for name, datatype, ucd, extra in _FIELDS:
        lines.append(f'<FIELD name="{name}" datatype="{datatype}" ucd="{ucd}"{extra}/>')
    lines.append("<DATA><TABLEDATA>")
    for link in links:
        values = (
            link.id,
            link.access_url,
            None,  # service_def: no service descriptors yet
            link.error_message,
            link.semantics,
            link.description,
            link.content_type,
            link.content_length,
            link.local_semantics,
        )
        lines.append("<TR>" + "".join(_cell(v) for v in values) + "</TR>")
    lines.extend(["</TABLEDATA></DATA>", "</TABLE>", "</RESOURCE>", "</VOTABLE>", ""])
    return "\n".join(lines).encode("utf-8")
