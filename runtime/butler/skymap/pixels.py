"""Integer pixel boxes with lsst.geom's ``Box2I`` conventions.

Pixel ``i`` is centred on the integer ``i`` and covers [i - 0.5, i + 0.5); a box
holds whole pixels from ``min`` to ``min + size - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PixelBox:
    """Whole pixels ``x0 .. x0 + width - 1`` by ``y0 .. y0 + height - 1``."""

    x0: int
    y0: int
    width: int
    height: int

    @classmethod
    def covering(cls, xmin: float, ymin: float, xmax: float, ymax: float) -> PixelBox:
        """The smallest box whose pixels cover the floating-point box (``EXPAND``)."""
        x0 = math.ceil(xmin - 0.5)
        y0 = math.ceil(ymin - 0.5)
        x1 = math.floor(xmax + 0.5)
        y1 = math.floor(ymax + 0.5)
        return cls(x0, y0, x1 - x0 + 1, y1 - y0 + 1)

    @property
    def x1(self) -> int:
        """The last column."""
        return self.x0 + self.width - 1

    @property
    def y1(self) -> int:
        """The last row."""
        return self.y0 + self.height - 1

    def grown(self, border: int) -> PixelBox:
        return PixelBox(
            self.x0 - border, self.y0 - border, self.width + 2 * border, self.height + 2 * border
        )

    def clipped(self, other: PixelBox) -> PixelBox:
        """The pixels of this box that are also in ``other`` (both must overlap)."""
        x0, y0 = max(self.x0, other.x0), max(self.y0, other.y0)
        x1, y1 = min(self.x1, other.x1), min(self.y1, other.y1)
        return PixelBox(x0, y0, x1 - x0 + 1, y1 - y0 + 1)

    def contains_pixel(self, x: int, y: int) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def contains_box(self, other: PixelBox) -> bool:
        return (
            self.x0 <= other.x0
            and self.y0 <= other.y0
            and other.x1 <= self.x1
            and other.y1 <= self.y1
        )

    def corners(self, shrink: float = 0.0) -> tuple[tuple[float, float], ...]:
        """The four corners of the pixels' outer edges, counter-clockwise from (min, min).

        ``shrink`` moves every edge inwards by that many pixels.
        """
        xa, ya = self.x0 - 0.5 + shrink, self.y0 - 0.5 + shrink
        xb, yb = self.x1 + 0.5 - shrink, self.y1 + 0.5 - shrink
        return ((xa, ya), (xb, ya), (xb, yb), (xa, yb))


def nearest_pixel(position: float) -> int:
    """The pixel a floating-point position lies on (lsst.geom's ``Point2I`` rounding)."""
    return math.floor(position + 0.5)
