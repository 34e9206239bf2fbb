"""The celestial WCS of a tract: a FITS projection with a scale and no rotation.

lsst.skymap builds ``CD = [[-scale, 0], [0, scale]]`` (RA grows to the left),
CRVAL at the tract centre and, before the tract's bounding box is shifted to
start at pixel 0, the reference pixel at pixel (0, 0) in LSST's 0-based
convention. Here ``crpix`` is kept 0-based as well; FITS (and ``to_astropy``)
add one. astropy is imported only when a position is converted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .pixels import PixelBox
from .regions import Polygon
from .sphere import separation, unit_vector

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class TractWcs:
    """A tangent-plane-family WCS: ``projection`` (FITS code), CRVAL and 0-based CRPIX."""

    projection: str
    crval: tuple[float, float]  # degrees
    crpix: tuple[float, float]  # 0-based pixel of CRVAL
    scale: float  # degrees per pixel

    def shifted(self, dx: float, dy: float) -> TractWcs:
        """The same sky mapping with pixel positions moved by (dx, dy)."""
        return TractWcs(
            self.projection, self.crval, (self.crpix[0] + dx, self.crpix[1] + dy), self.scale
        )

    def to_astropy(self) -> Any:
        """A new ``astropy.wcs.WCS`` (FITS 1-based CRPIX) describing the same mapping."""
        from astropy.wcs import WCS

        wcs = WCS(naxis=2)
        wcs.wcs.ctype = [f"RA---{self.projection}", f"DEC--{self.projection}"]
        wcs.wcs.crval = list(self.crval)
        wcs.wcs.crpix = [self.crpix[0] + 1.0, self.crpix[1] + 1.0]
        wcs.wcs.cd = [[-self.scale, 0.0], [0.0, self.scale]]
        wcs.wcs.radesys = "ICRS"
        wcs.wcs.set()
        return wcs

    @cached_property
    def _transform(self) -> Any:
        # Built once per WCS for the conversions below; never handed out (it is mutable).
        return self.to_astropy()

    def header(self) -> dict[str, object]:
        """The FITS keywords of this WCS."""
        return {
            "CTYPE1": f"RA---{self.projection}",
            "CTYPE2": f"DEC--{self.projection}",
            "CRVAL1": self.crval[0],
            "CRVAL2": self.crval[1],
            "CRPIX1": self.crpix[0] + 1.0,
            "CRPIX2": self.crpix[1] + 1.0,
            "CD1_1": -self.scale,
            "CD1_2": 0.0,
            "CD2_1": 0.0,
            "CD2_2": self.scale,
            "RADESYS": "ICRS",
        }

    def sky_to_pixel(
        self, points: Sequence[tuple[float, float]]
    ) -> list[tuple[float, float] | None]:
        """0-based pixel positions of (ra, dec) points in degrees; ``None`` where the
        projection cannot place a point (the far side of a tangent plane)."""
        import numpy as np

        centre = unit_vector(math.radians(self.crval[0]), math.radians(self.crval[1]))
        near = [
            separation(centre, unit_vector(math.radians(ra), math.radians(dec))) < math.pi / 2
            for ra, dec in points
        ]
        ra = np.array([p[0] for p in points], dtype=float)
        dec = np.array([p[1] for p in points], dtype=float)
        x, y = self._transform.wcs_world2pix(ra, dec, 0)
        return [
            (float(xi), float(yi)) if ok and math.isfinite(xi) and math.isfinite(yi) else None
            for xi, yi, ok in zip(x, y, near, strict=True)
        ]

    def pixel_to_sky(self, points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        """(ra, dec) in degrees of 0-based pixel positions."""
        import numpy as np

        x = np.array([p[0] for p in points], dtype=float)
        y = np.array([p[1] for p in points], dtype=float)
        ra, dec = self._transform.wcs_pix2world(x, y, 0)
        return [(float(r) % 360.0, float(d)) for r, d in zip(ra, dec, strict=True)]

    def box_polygon(self, box: PixelBox, shrink: float = 0.0) -> Polygon:
        """The sky under a pixel box's outer edges (moved ``shrink`` pixels inwards)."""
        return Polygon(tuple(self.pixel_to_sky(box.corners(shrink))))
