"""A skymap from a policy's definition (:class:`butler.spec.SkyMapSpec`)."""

from __future__ import annotations

from ..spec import SkyMapSpec
from .base import SkyMap
from .discrete import DiscreteSkyMap
from .patches import PatchGrid
from .rings import RingsSkyMap


def patch_grid(spec: SkyMapSpec) -> PatchGrid:
    """The patch grid a definition asks for: "cells" patches when it has ``cells``."""
    if spec.cells is not None:
        return PatchGrid.cells(*spec.cells)
    width, height = spec.patch_inner
    return PatchGrid(width, height, spec.patch_border)


def from_spec(spec: SkyMapSpec) -> SkyMap:
    """The skymap ``spec`` defines (raises SkyMapDefinitionError for bad parameters)."""
    if spec.kind == "rings":
        return RingsSkyMap(
            spec.num_rings,
            pixel_scale=spec.pixel_scale,
            projection=spec.projection,
            tract_overlap=spec.tract_overlap,
            ra_start=spec.ra_start,
            patches=patch_grid(spec),
            version=spec.version,
        )
    return DiscreteSkyMap(
        tuple((ra, dec) for ra, dec, _ in spec.tracts),
        tuple(radius for _, _, radius in spec.tracts),
        pixel_scale=spec.pixel_scale,
        projection=spec.projection,
        tract_overlap=spec.tract_overlap,
        patches=patch_grid(spec),
    )
