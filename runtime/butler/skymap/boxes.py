"""What patches and cells share: an (x, y) index, inner and outer pixel boxes on their
tract's WCS, and the sky under those boxes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .pixels import PixelBox
from .regions import Polygon
from .wcs import TractWcs


@dataclass(frozen=True)
class GridBoxes:
    """Position (x, y) and index ``y * nx + x`` in a grid, and the boxes there."""

    x: int
    y: int
    index: int
    inner_bbox: PixelBox
    outer_bbox: PixelBox
    tract_wcs: TractWcs

    @property
    def wcs(self) -> Any:
        """The tract's WCS as an ``astropy.wcs.WCS`` (patches and cells share its pixels)."""
        return self.tract_wcs.to_astropy()

    @property
    def region(self) -> Polygon:
        """The sky under the outer box (what the registry records for a patch)."""
        return self.tract_wcs.box_polygon(self.outer_bbox)

    @property
    def inner_region(self) -> Polygon:
        return self.tract_wcs.box_polygon(self.inner_bbox)
