"""Skymaps: tracts and patches of the sky, as lsst.skymap defines them.

``skymap("hsc_rings_v1").find_tract(150.1, 2.2)`` is COSMOS's tract 9813;
``.find_patch``, ``.tracts_overlapping(Circle(ra, dec, radius))``,
``.patches_overlapping(region)``, ``.tract(n).wcs`` (astropy) and ``.region`` give
the rest. Positions and sizes are degrees. See docs/skymaps.md.
"""

from .base import SkyMap as SkyMap
from .bundled import BUNDLED as BUNDLED
from .bundled import skymap as skymap
from .cells import Cell as Cell
from .cells import CellGrid as CellGrid
from .discrete import DiscreteSkyMap as DiscreteSkyMap
from .errors import InvalidRegionError as InvalidRegionError
from .errors import SkyMapDefinitionError as SkyMapDefinitionError
from .errors import UnknownSkyMapError as UnknownSkyMapError
from .patches import PatchGrid as PatchGrid
from .pixels import PixelBox as PixelBox
from .regions import Circle as Circle
from .regions import LonLatBox as LonLatBox
from .regions import Polygon as Polygon
from .regions import Region as Region
from .regions import overlaps as overlaps
from .rings import RingsSkyMap as RingsSkyMap
from .tract import Patch as Patch
from .tract import Tract as Tract
from .wcs import TractWcs as TractWcs

__all__ = [
    "BUNDLED",
    "Cell",
    "CellGrid",
    "Circle",
    "DiscreteSkyMap",
    "InvalidRegionError",
    "LonLatBox",
    "Patch",
    "PatchGrid",
    "PixelBox",
    "Polygon",
    "Region",
    "RingsSkyMap",
    "SkyMap",
    "SkyMapDefinitionError",
    "Tract",
    "TractWcs",
    "UnknownSkyMapError",
    "overlaps",
    "skymap",
]
