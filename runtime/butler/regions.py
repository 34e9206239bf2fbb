"""Which datasets have a piece of sky, and which: their regions, computed when recorded.

A dataset type *has sky* (:func:`has_sky`, asked once per dataset type) when its
tract/patch keys belong to a skymap, or when it is a FITS image (a raw, a calexp, a
coadd). For such a dataset the region is, in order:

1. a tract's or patch's region from the skymap its dataset type declares
   (:func:`declared_skymap`, the seam with the policy's ``skymap`` clause);
2. the header's celestial WCS (CRVAL/CRPIX with CD, or PC and CDELT; TPV, SIP and
   other distortions are dropped: arcseconds at a CCD's edge) over the image's pixels
   (ZNAXIS for a tile-compressed image, else NAXIS, else the array's shape, else the
   detector size of the instrument); the corners' pixel edges joined by great circles
   (exact for TAN);
3. without a WCS: the translated pointing (``ObservationInfo.tracking_radec``) with the
   instrument's field-of-view radius, a circle holding every detector of the exposure
   (one detector's place in the focal plane is not in its header);
4. else no region (never an error: a header without sky is not a broken dataset).

Regions are lsst-sphgeom regions, stored encoded with their HTM (level
:data:`HTM_LEVEL`) pixel ranges by :meth:`Registry.record_regions`. lsst-sphgeom,
astropy and the translators are imported only when a region is computed.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .spec import DatasetTypeSpec, FormatSpec, Value

if TYPE_CHECKING:
    import lsst.sphgeom

    from .butler import Butler
    from .registry import Registry
    from .resolved import Plan

__all__ = [
    "HTM_LEVEL",
    "INSTRUMENTS",
    "QUERY_MAX_RANGES",
    "Detector",
    "declared_skymap",
    "encode",
    "file_region",
    "has_sky",
    "header_region",
    "indexed",
    "object_region",
    "observation_region",
    "pixel_ranges",
    "pointing_region",
    "record",
    "record_files",
    "record_put",
    "rows",
    "skymap_region",
]

#: HTM level of the index: trixels of about 0.18 degrees, so a CCD covers a handful.
HTM_LEVEL = 9
#: Most pixel ranges of a query region (more are merged: more index entries to read).
QUERY_MAX_RANGES = 64


@dataclass(frozen=True)
class Detector:
    """One instrument's detector size (pixels), pixel scale (arcsec) and field radius (deg)."""

    width: int
    height: int
    pixel_scale: float
    field_radius: float


#: Detector geometry by instrument, keyed by ``ObservationInfo.instrument`` and by the
#: header's INSTRUME card: the size of a raw CCD (overscan included) and the radius of
#: a circle holding the whole focal plane.
INSTRUMENTS: Mapping[str, Detector] = {
    "HSC": Detector(2144, 4241, 0.168, 0.95),
    "Hyper Suprime-Cam": Detector(2144, 4241, 0.168, 0.95),
    "DECam": Detector(2160, 4146, 0.263, 1.15),
    "MegaPrime": Detector(2112, 4644, 0.187, 0.75),
    "SuprimeCam": Detector(2048, 4096, 0.200, 0.40),
    "Suprime-Cam": Detector(2048, 4096, 0.200, 0.40),
}


def declared_skymap(spec: DatasetTypeSpec) -> str | None:
    """The skymap a dataset type's tract/patch keys belong to, if the policy says.

    The seam with the policy language's ``skymap`` clause (issue 17): the compiled
    dataset type carries it as ``spec.skymap``; a policy compiled before the clause
    existed has none, and its tracts and patches get no region.
    """
    name = getattr(spec, "skymap", None)
    return name if isinstance(name, str) and "tract" in spec.keys else None


def has_sky(spec: DatasetTypeSpec, format: FormatSpec) -> bool:
    """Whether datasets of this type may have a region (asked once per dataset type)."""
    if declared_skymap(spec) is not None:
        return True
    return format.formatter == "fits" and format.python_type != "astropy.table.Table"


# ---- regions --------------------------------------------------------------------------------


def _vector(ra: float, dec: float) -> lsst.sphgeom.UnitVector3d:
    import lsst.sphgeom as sg

    return sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec))


def encode(region: lsst.sphgeom.Region) -> bytes:
    return bytes(region.encode())


def pixel_ranges(region: lsst.sphgeom.Region, max_ranges: int = 0) -> list[tuple[int, int]]:
    """The HTM ranges ``[begin, end)`` covering ``region`` (at most ``max_ranges``; 0: exact)."""
    ranges: list[tuple[int, int]] = _htm().envelope(region, max_ranges).ranges()
    return ranges


@functools.cache
def _htm() -> lsst.sphgeom.HtmPixelization:
    import lsst.sphgeom as sg

    return sg.HtmPixelization(HTM_LEVEL)


@functools.cache
def _bundled(name: str) -> Any:
    from .skymap import skymap

    return skymap(name)


def _skymap(butler: Butler, name: str) -> Any:
    """The skymap ``name``: the policy's (``Mapper.skymap``, where the mapper has skymap
    definitions), else the bundled one of that name."""
    defined = getattr(butler.mapper, "skymap", None)
    return defined(name) if callable(defined) else _bundled(name)


def skymap_region(
    butler: Butler, spec: DatasetTypeSpec, data_id: Mapping[str, Value]
) -> lsst.sphgeom.Region | None:
    """The tract's (with a patch key: the patch's) region, if the dataset type declares a
    skymap and the data ID names a tract (and patch) in it; else None."""
    from .errors import ButlerError

    name = declared_skymap(spec)
    tract_id = data_id.get("tract")
    if name is None or not isinstance(tract_id, int):
        return None
    try:
        tract = _skymap(butler, name).tract(tract_id)
        patch = data_id.get("patch")
        shape = tract.region if patch is None else tract.patch(patch).region
    except (ButlerError, TypeError, ValueError):
        return None
    region: lsst.sphgeom.Region = shape.to_sphgeom()
    return region


_CELESTIAL = ("RA", "DEC", "GLON", "GLAT", "ELON", "ELAT")


def _number(header: Mapping[str, Any], key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _linear_wcs(header: Mapping[str, Any]) -> Any:
    """An astropy WCS of the header's celestial projection without distortion, or None."""
    crval = [_number(header, "CRVAL1"), _number(header, "CRVAL2")]
    crpix = [_number(header, "CRPIX1"), _number(header, "CRPIX2")]
    if None in crval or None in crpix:
        return None
    given = [_number(header, f"CD{i}_{j}") for i in (1, 2) for j in (1, 2)]
    if any(c is not None for c in given):
        cd = [0.0 if c is None else c for c in given]
    else:
        cdelt1, cdelt2 = _number(header, "CDELT1"), _number(header, "CDELT2")
        if cdelt1 is None or cdelt2 is None:
            return None
        pc = [_number(header, f"PC{i}_{j}") for i in (1, 2) for j in (1, 2)]
        p = [d if v is None else v for v, d in zip(pc, (1.0, 0.0, 0.0, 1.0), strict=True)]
        cd = [p[0] * cdelt1, p[1] * cdelt1, p[2] * cdelt2, p[3] * cdelt2]
    if cd[0] * cd[3] - cd[1] * cd[2] == 0.0:
        return None
    ctypes = []
    for axis in (1, 2):
        ctype = str(header.get(f"CTYPE{axis}", "RA---TAN" if axis == 1 else "DEC--TAN")).upper()
        kind = ctype[:4].rstrip("-")
        if kind not in _CELESTIAL:
            return None
        projection = ctype[5:8] if len(ctype) >= 8 else "TAN"
        if projection in ("TPV", "TPD", "ZPX", "TNX") or not projection.isalpha():
            projection = "TAN"  # the distortion is dropped: its linear part
        ctypes.append(f"{kind:-<4}-{projection}")
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.crval = crval
    wcs.wcs.crpix = crpix
    wcs.wcs.cd = [[cd[0], cd[1]], [cd[2], cd[3]]]
    wcs.wcs.ctype = ctypes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs.wcs.set()
    return wcs


def _instrument(header: Mapping[str, Any]) -> Detector | None:
    name = header.get("INSTRUME")
    return INSTRUMENTS.get(name.strip()) if isinstance(name, str) else None


def _size(
    header: Mapping[str, Any], shape: Sequence[int] | None, detector: Detector | None = None
) -> tuple[float, float] | None:
    for x_key, y_key in (("ZNAXIS1", "ZNAXIS2"), ("NAXIS1", "NAXIS2")):
        if x_key == "NAXIS1" and header.get("XTENSION") == "BINTABLE":
            continue
        width, height = _number(header, x_key), _number(header, y_key)
        if width and height and width > 0 and height > 0:
            return width, height
    if shape is not None and len(shape) >= 2:
        return float(shape[-1]), float(shape[-2])
    detector = detector or _instrument(header)
    return None if detector is None else (float(detector.width), float(detector.height))


def header_region(
    header: Mapping[str, Any],
    shape: Sequence[int] | None = None,
    detector: Detector | None = None,
) -> lsst.sphgeom.ConvexPolygon | None:
    """The region under an image's pixels from its header's WCS; None without one.

    ``shape`` (numpy order), else ``detector`` (else the INSTRUME card's), gives the size
    when the header has no NAXIS cards.
    """
    import lsst.sphgeom as sg

    wcs = _linear_wcs(header)
    size = None if wcs is None else _size(header, shape, detector)
    if wcs is None or size is None:
        return None
    width, height = size
    # FITS pixel centres are 1..n: the image's outer edges are at 0.5 and n + 0.5
    xs = (0.5, width + 0.5, width + 0.5, 0.5)
    ys = (0.5, 0.5, height + 0.5, height + 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ras, decs = wcs.wcs_pix2world(xs, ys, 1)
    points = [(float(r), float(d)) for r, d in zip(ras, decs, strict=True)]
    if not all(math.isfinite(r) and math.isfinite(d) for r, d in points):
        return None
    try:
        return sg.ConvexPolygon.convexHull([_vector(r, d) for r, d in points])
    except (ValueError, RuntimeError):
        return None


def pointing_region(header: Mapping[str, Any]) -> lsst.sphgeom.Circle | None:
    """The field of view around the translated pointing: a circle of the instrument's
    field radius about ``tracking_radec``; None if there is no pointing or instrument."""

    try:
        from astro_metadata_translator import ObservationInfo
        from astropy.utils import iers
        from astropy.utils.data import conf

        # offline: a translator may ask astropy for a site list or IERS tables
        with (
            warnings.catch_warnings(),
            conf.set_temp("allow_internet", False),
            iers.conf.set_temp("auto_download", False),
        ):
            warnings.simplefilter("ignore")
            info = ObservationInfo(
                dict(header), pedantic=False, subset={"instrument", "tracking_radec"}, quiet=True
            )
    except Exception:  # no translator knows it, or it lacks what the subset needs
        return None
    detector = INSTRUMENTS.get(str(info.instrument)) or _instrument(header)
    radec = info.tracking_radec
    if detector is None or radec is None:
        return None
    return _circle(radec, detector)


def _header_or_pointing(
    header: Mapping[str, Any], shape: Sequence[int] | None = None
) -> lsst.sphgeom.Region | None:
    return header_region(header, shape) or pointing_region(header)


def object_region(obj: object) -> lsst.sphgeom.Region | None:
    """The region of an object being put: an :class:`~butler.image.Image`'s metadata, or an
    astropy HDU's header, over its pixels; None for anything else (a bare array)."""
    from .image import Image

    if isinstance(obj, Image):
        return _header_or_pointing(obj.metadata, obj.array.shape)
    header, data = getattr(obj, "header", None), getattr(obj, "data", None)
    if isinstance(header, Mapping):
        return _header_or_pointing(header, getattr(data, "shape", None))
    return None


def file_region(path: Path, hdu: int | str | None = None) -> lsst.sphgeom.Region | None:
    """The region of a FITS file on disk: its HDU's header over the primary's (the first
    extension when neither has a WCS: a tile-compressed image); None if it has none."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, lazy_load_hdus=True, memmap=False) as hdus:
                primary = dict(hdus[0].header)
                chosen = hdu if hdu is not None else 1
                try:
                    extension = dict(hdus[chosen].header) if chosen != 0 else {}
                except (IndexError, KeyError):
                    extension = {}
    except (OSError, ValueError):
        return None
    if hdu is None and _linear_wcs(primary) is not None:
        return _header_or_pointing(primary)
    return _header_or_pointing({**primary, **extension})


# ---- recording ------------------------------------------------------------------------------

#: What the registry stores of one region: its encoding and its HTM pixel ranges.
Indexed = tuple[bytes, list[tuple[int, int]]]


def indexed(region: lsst.sphgeom.Region | None) -> Indexed | None:
    """A region as the registry stores it (None: no region)."""
    return None if region is None else (encode(region), pixel_ranges(region))


def observation_region(header: Mapping[str, Any], info: Any = None) -> Indexed | None:
    """The region of one ingested HDU: its header's WCS, else the pointing of its translated
    observation (``info``, an ObservationInfo, or translated here); indexed."""
    detector = None
    if info is not None:
        detector = INSTRUMENTS.get(str(getattr(info, "instrument", ""))) or _instrument(header)
    region: lsst.sphgeom.Region | None = header_region(header, None, detector)
    if region is None and info is not None:
        radec = getattr(info, "tracking_radec", None)
        if detector is not None and radec is not None:
            region = _circle(radec, detector)
    elif region is None:
        region = pointing_region(header)
    return indexed(region)


def _circle(radec: Any, detector: Detector) -> lsst.sphgeom.Circle:
    import lsst.sphgeom as sg

    icrs = radec.icrs
    centre = _vector(float(icrs.ra.degree), float(icrs.dec.degree))
    return sg.Circle(centre, sg.Angle.fromDegrees(detector.field_radius))


def rows(
    pairs: Iterable[tuple[str, Indexed | None]],
) -> list[tuple[str, bytes, list[tuple[int, int]]]]:
    """Registry rows (``Registry.record_regions``) of ``(dataset id, indexed region)`` pairs."""
    return [(dataset_id, *found) for dataset_id, found in pairs if found is not None]


def record(
    registry: Registry,
    dataset_type: str,
    regions: Iterable[tuple[str, lsst.sphgeom.Region | None]],
) -> int:
    """Record ``(dataset id, region)`` pairs (None: no region) in the registry; how many."""
    found = rows((dataset_id, indexed(region)) for dataset_id, region in regions)
    return registry.record_regions(dataset_type, found) if found else 0


def record_put(
    butler: Butler,
    plan: Plan,
    items: Sequence[tuple[object, Mapping[str, Value]]],
    ids: Sequence[str],
) -> None:
    """Record the regions of objects being put (before their datasets' rows: a region
    is found only once its dataset is recorded, so a failed put leaves nothing visible)."""
    pairs = [
        (dataset_id, skymap_region(butler, plan.spec, data_id) or object_region(obj))
        for (obj, data_id), dataset_id in zip(items, ids, strict=True)
    ]
    record(butler.registry, plan.spec.name, pairs)


def record_files(
    butler: Butler,
    plan: Plan,
    files: Iterable[tuple[str, Mapping[str, Value], Path]],
) -> int:
    """Record the regions of files being recorded (``index``, Gen2 import): ``(dataset id,
    data ID, file)`` each; how many had one. Joins an open registry transaction."""
    pairs = []
    for dataset_id, data_id, path in files:
        region = skymap_region(butler, plan.spec, data_id)
        if region is None:
            region = file_region(path, _hdu(butler, plan, data_id))
        pairs.append((dataset_id, region))
    return record(butler.registry, plan.spec.name, pairs)


def _hdu(butler: Butler, plan: Plan, data_id: Mapping[str, Value]) -> int | str | None:
    try:
        return butler.hdu(plan, data_id)
    except Exception:  # an HDU key with no value in this data ID: the file's own choice
        return None
