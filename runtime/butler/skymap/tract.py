"""Tracts and patches: pixel boxes on a tract's WCS and the sky regions they cover.

A tract is built as lsst.skymap's ``ExplicitTractInfo`` builds one: the WCS has
CRVAL at the centre; the four points ``radius + overlap`` away from the centre
(east, north, west, south) fix a minimal pixel box; the patch grid grows it to
whole patches; the WCS is shifted so that the box starts at pixel (0, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidDataIdError
from .errors import SkyMapDefinitionError
from .patches import PatchGrid, parse_gen2_patch
from .pixels import PixelBox, nearest_pixel
from .regions import LonLatBox, Polygon, Region, overlaps
from .sphere import lon_lat, offset
from .wcs import TractWcs


@dataclass(frozen=True)
class Patch:
    """One patch of a tract: index (x, y), Gen3 integer ``index``, inner and outer boxes."""

    tract: int
    x: int
    y: int
    index: int
    inner_bbox: PixelBox
    outer_bbox: PixelBox
    tract_wcs: TractWcs

    @property
    def gen2(self) -> str:
        """The Gen2 name of the patch, ``"x,y"``."""
        return f"{self.x},{self.y}"

    @property
    def wcs(self) -> Any:
        """The tract's WCS as an ``astropy.wcs.WCS`` (patches share their tract's pixels)."""
        return self.tract_wcs.to_astropy()

    @property
    def region(self) -> Polygon:
        """The sky covered by the outer box (what the registry records for a patch)."""
        return _sky_polygon(self.tract_wcs, self.outer_bbox)

    @property
    def inner_region(self) -> Polygon:
        return _sky_polygon(self.tract_wcs, self.inner_bbox)


@dataclass(frozen=True)
class Tract:
    """One tract: its number, centre, WCS, pixel box, patch grid and inner region."""

    id: int
    ra: float  # centre, degrees
    dec: float
    tract_wcs: TractWcs
    bbox: PixelBox
    nx: int
    ny: int
    grid: PatchGrid
    inner_region: Region
    vertices: tuple[tuple[float, float], ...]

    @property
    def wcs(self) -> Any:
        """The tract's WCS as an ``astropy.wcs.WCS``."""
        return self.tract_wcs.to_astropy()

    @property
    def region(self) -> Polygon:
        """The sky covered by the whole tract box (its outer region)."""
        return _sky_polygon(self.tract_wcs, self.bbox)

    @property
    def num_patches(self) -> tuple[int, int]:
        return self.nx, self.ny

    def __len__(self) -> int:
        return self.nx * self.ny

    def patch(self, key: int | str | tuple[int, int]) -> Patch:
        """The patch named by its Gen3 index (``41``), Gen2 name (``"5,4"``) or (x, y)."""
        if isinstance(key, str):
            x, y = parse_gen2_patch(key)
        elif isinstance(key, tuple):
            x, y = key
        else:
            if not 0 <= key < self.nx * self.ny:
                raise InvalidDataIdError(
                    f"patch {key} is not in tract {self.id}: its patches are numbered "
                    f"0..{self.nx * self.ny - 1} ({self.nx} x {self.ny})"
                )
            x, y = key % self.nx, key // self.nx
        if not (0 <= x < self.nx and 0 <= y < self.ny):
            raise InvalidDataIdError(
                f"patch ({x}, {y}) is not in tract {self.id}: x runs 0..{self.nx - 1} and "
                f"y 0..{self.ny - 1}"
            )
        return Patch(
            self.id,
            x,
            y,
            y * self.nx + x,
            self.grid.inner_box(x, y),
            self.grid.outer_box(x, y, self.bbox),
            self.tract_wcs,
        )

    def patches(self) -> list[Patch]:
        """Every patch, in Gen3 index order."""
        return [self.patch(i) for i in range(self.nx * self.ny)]

    def _pixel(self, ra: float, dec: float) -> tuple[int, int] | None:
        position = self.tract_wcs.sky_to_pixel([(ra, dec)])[0]
        if position is None:
            return None
        x, y = nearest_pixel(position[0]), nearest_pixel(position[1])
        return (x, y) if self.bbox.contains_pixel(x, y) else None

    def contains(self, ra: float, dec: float) -> bool:
        """Whether the point falls on one of the tract's pixels."""
        return self._pixel(ra, dec) is not None

    def find_patch(self, ra: float, dec: float) -> Patch:
        """The patch whose inner box holds the pixel the point falls on."""
        pixel = self._pixel(ra, dec)
        if pixel is None:
            raise InvalidDataIdError(
                f"(ra={ra}, dec={dec}) is not in tract {self.id}: ask the skymap's "
                "find_tract for the tract that holds it"
            )
        return self.patch((pixel[0] // self.grid.inner_width, pixel[1] // self.grid.inner_height))

    def patches_overlapping(self, region: Region) -> list[Patch]:
        """The patches whose outer region overlaps ``region``, in index order."""
        if not overlaps(self.region, region):
            return []
        return [patch for patch in self.patches() if overlaps(patch.region, region)]


def _sky_polygon(wcs: TractWcs, box: PixelBox, shrink: float = 0.0) -> Polygon:
    return Polygon(tuple(wcs.pixel_to_sky(box.corners(shrink))))


def build_tract(
    tract_id: int,
    centre: tuple[float, float],
    radius: float,
    overlap: float,
    projection: str,
    pixel_scale: float,
    grid: PatchGrid,
    inner_box: LonLatBox | None,
) -> Tract:
    """A tract centred at ``centre`` (lon, lat radians) of half-size ``radius`` plus
    ``overlap`` (radians), on ``pixel_scale`` arcsec pixels.

    ``inner_box`` is the rings skymap's inner region; without it the inner region is
    the tract box shrunk by 0.001 pixel, as for lsst.skymap's discrete skymap.
    """
    lon, lat = centre
    crval = (math.degrees(lon), math.degrees(lat))
    wcs = TractWcs(projection, crval, (0.0, 0.0), pixel_scale / 3600.0)
    reach = radius + overlap
    sky = [lon_lat(offset(lon, lat, i * math.pi / 2, reach)) for i in range(4)]
    pixels = wcs.sky_to_pixel([(math.degrees(a), math.degrees(b)) for a, b in sky])
    placed = [p for p in pixels if p is not None]
    if len(placed) != 4:
        raise SkyMapDefinitionError(
            f"tract {tract_id}: radius + overlap of {math.degrees(reach)} degrees does not fit "
            f"on a {projection} projection; use a smaller radius"
        )
    minimal = PixelBox.covering(
        min(p[0] for p in placed),
        min(p[1] for p in placed),
        max(p[0] for p in placed),
        max(p[1] for p in placed),
    )
    box, nx, ny = grid.fit(minimal)
    final_wcs = wcs.shifted(-box.x0, -box.y0)
    final_box = PixelBox(0, 0, box.width, box.height)
    vertices = tuple(final_wcs.pixel_to_sky(final_box.corners(0.001)))
    return Tract(
        tract_id,
        crval[0] % 360.0,
        crval[1],
        final_wcs,
        final_box,
        nx,
        ny,
        grid,
        inner_box if inner_box is not None else Polygon(vertices),
        vertices,
    )
