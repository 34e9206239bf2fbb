"""Cells of a patch, as lsst.skymap's "cells" tract builder cuts them.

A patch of ``per_patch_inner`` x ``per_patch_inner`` cells has ``in_patch_border``
more cells on every side (they reach into the patch border), so cell (0, 0)
starts ``in_patch_border`` cells before the patch's inner box. A cell's outer box
is its inner box grown by ``border`` pixels; cells are numbered ``y * n + x``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidDataIdError
from .boxes import GridBoxes
from .pixels import PixelBox
from .wcs import TractWcs


@dataclass(frozen=True)
class CellGrid:
    """Square cells: ``inner`` pixels, ``border`` pixels, and how many per patch."""

    inner: int = 150
    border: int = 50
    per_patch_inner: int = 20
    in_patch_border: int = 1

    @property
    def count(self) -> int:
        """Cells along each side of a patch, border cells included."""
        return self.per_patch_inner + 2 * self.in_patch_border


@dataclass(frozen=True)
class Cell(GridBoxes):
    """One cell: its (x, y), index ``y * n + x`` within the patch, and its boxes."""


def cell_of(
    grid: CellGrid, patch_inner: PixelBox, wcs: TractWcs, key: int | tuple[int, int]
) -> Cell:
    """Cell ``key`` (index or (x, y)) of the patch whose inner box is ``patch_inner``."""
    n = grid.count
    x, y = key if isinstance(key, tuple) else (key % n, key // n)
    if not (0 <= x < n and 0 <= y < n):
        raise InvalidDataIdError(
            f"cell {key} is not in the patch: cells are (0..{n - 1}, 0..{n - 1}), "
            f"numbered 0..{n * n - 1}"
        )
    inner = PixelBox(
        (x - grid.in_patch_border) * grid.inner + patch_inner.x0,
        (y - grid.in_patch_border) * grid.inner + patch_inner.y0,
        grid.inner,
        grid.inner,
    )
    return Cell(x, y, y * n + x, inner, inner.grown(grid.border), wcs)
