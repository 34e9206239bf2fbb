"""Skymaps bundled by name, with the parameters the projects registered them with.

``hsc_rings_v1`` (obs_subaru's ``config/hsc/makeSkyMap.py``): 120 rings, TAN,
0.168"/pixel, 1 arcminute tract overlap, lsst.skymap's "legacy" patches
(4000 x 4000 pixels, border 100). ``lsst_cells_v1`` (obs_lsst's
``config/makeSkyMap.py`` with the "cells" tract builder): 120 rings, TAN,
0.2"/pixel, 1 arcminute overlap, patches of 20 x 20 cells of 150 pixels (3000 x
3000) with a border of one cell plus a 50 pixel cell border (200), not clipped.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from types import MappingProxyType

from .base import SkyMap
from .errors import UnknownSkyMapError
from .patches import PatchGrid
from .rings import RingsSkyMap


def _hsc_rings_v1() -> SkyMap:
    return RingsSkyMap(120, pixel_scale=0.168, projection="TAN", tract_overlap=1.0 / 60)


def _lsst_cells_v1() -> SkyMap:
    return RingsSkyMap(
        120, pixel_scale=0.2, projection="TAN", tract_overlap=1.0 / 60, patches=PatchGrid.cells()
    )


BUNDLED: Mapping[str, Callable[[], SkyMap]] = MappingProxyType(
    {"hsc_rings_v1": _hsc_rings_v1, "lsst_cells_v1": _lsst_cells_v1}
)


def skymap(name: str) -> SkyMap:
    """A new instance of the bundled skymap ``name``."""
    try:
        return BUNDLED[name]()
    except KeyError:
        close = difflib.get_close_matches(name, BUNDLED, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownSkyMapError(
            f"no bundled skymap named {name!r}: the bundled ones are "
            f"{', '.join(sorted(BUNDLED))}{hint}"
        ) from None
