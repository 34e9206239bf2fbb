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
from .boxes import GridBoxes
from .cells import Cell, CellGrid, cell_of
from .errors import SkyMapDefinitionError
from .patches import PatchGrid, parse_gen2_patch
from .pixels import PixelBox, nearest_pixel
from .regions import LonLatBox, Polygon, Region, overlaps
from .sphere import lon_lat, offset
from .wcs import TractWcs


@dataclass(frozen=True)
class Patch(GridBoxes):
    """One patch of a tract: index (x, y), Gen3 integer ``index``, inner and outer boxes."""

    tract: int
    cell_grid: CellGrid | None = None

    @property
    def gen2(self) -> str:
        """The Gen2 name of the patch, ``"x,y"``."""
        return f"{self.x},{self.y}"

    def cell(self, key: int | tuple[int, int]) -> Cell:
        """Cell ``key`` (index ``y * n + x`` or (x, y)) of a patch of a cells skymap."""
        if self.cell_grid is None:
            raise InvalidDataIdError(
                f"patch {self.gen2} of tract {self.tract} has no cells: only skymaps built "
                "with PatchGrid.cells() (e.g. lsst_cells_v1) have them"
            )
        return cell_of(self.cell_grid, self.inner_bbox, self.tract_wcs, key)

    def cells(self) -> list[Cell]:
        """Every cell, in index order (empty for a patch without cells)."""
        if self.cell_grid is None:
            return []
        return [self.cell(i) for i in range(self.cell_grid.count**2)]


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
        return self.tract_wcs.box_polygon(self.bbox)

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
            x=x,
            y=y,
            index=y * self.nx + x,
            inner_bbox=self.grid.inner_box(x, y),
            outer_bbox=self.grid.outer_box(x, y, self.bbox),
            tract_wcs=self.tract_wcs,
            tract=self.id,
            cell_grid=self.grid.cell_grid,
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
    vertices = final_wcs.box_polygon(final_box, 0.001).vertices
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
