"""How a tract is cut into patches: lsst.skymap's "legacy" and "cells" tract builders.

Both grow the tract's minimal pixel box to a whole number of patches, keeping it
centred, and number patches (x, y) from the box's minimum corner; the Gen3
integer index is ``y * nx + x``, the Gen2 name ``"x,y"``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidDataIdError
from .cells import CellGrid
from .errors import SkyMapDefinitionError
from .pixels import PixelBox


@dataclass(frozen=True)
class PatchGrid:
    """Patch inner dimensions (pixels), border (pixels) and whether outer boxes stop at
    the tract's edge (``legacy``) or not (``cells``)."""

    inner_width: int = 4000
    inner_height: int = 4000
    border: int = 100
    clip_to_tract: bool = True
    cell_grid: CellGrid | None = None

    @classmethod
    def cells(
        cls,
        cell_inner: int = 150,
        cell_border: int = 50,
        cells_per_patch_inner: int = 20,
        cells_in_patch_border: int = 1,
    ) -> PatchGrid:
        """The "cells" builder: patches of whole square cells and a border of
        ``cells_in_patch_border`` cells plus one cell border, not clipped."""
        cells = CellGrid(cell_inner, cell_border, cells_per_patch_inner, cells_in_patch_border)
        inner = cell_inner * cells_per_patch_inner
        return cls(inner, inner, cells_in_patch_border * cell_inner + cell_border, False, cells)

    def __post_init__(self) -> None:
        if self.inner_width <= 0 or self.inner_height <= 0 or self.border < 0:
            raise SkyMapDefinitionError(
                f"patch inner dimensions {self.inner_width}x{self.inner_height} must be positive "
                f"and the border ({self.border}) not negative"
            )

    def fit(self, minimal: PixelBox) -> tuple[PixelBox, int, int]:
        """The tract box grown to whole patches around ``minimal``, and (nx, ny)."""
        counts = []
        starts = []
        sizes = []
        for start, size, inner in (
            (minimal.x0, minimal.width, self.inner_width),
            (minimal.y0, minimal.height, self.inner_height),
        ):
            count = (size + inner - 1) // inner
            extra = inner * count - size
            if extra > 0:
                size = inner * count
                start -= extra // 2
            counts.append(count)
            starts.append(start)
            sizes.append(size)
        return PixelBox(starts[0], starts[1], sizes[0], sizes[1]), counts[0], counts[1]

    def inner_box(self, x: int, y: int) -> PixelBox:
        return PixelBox(
            x * self.inner_width, y * self.inner_height, self.inner_width, self.inner_height
        )

    def outer_box(self, x: int, y: int, tract_box: PixelBox) -> PixelBox:
        grown = self.inner_box(x, y).grown(self.border)
        return grown.clipped(tract_box) if self.clip_to_tract else grown


def parse_gen2_patch(text: str) -> tuple[int, int]:
    """``"5,4"`` → (5, 4)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise InvalidDataIdError(
            f"patch {text!r} is not a Gen2 patch name: write it as 'x,y', e.g. '5,4'"
        ) from None
