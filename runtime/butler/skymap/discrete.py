"""lsst.skymap's ``DiscreteSkyMap``: one square tract at each listed centre.

Tract ``n`` is centred on the ``n``-th (ra, dec) with half-size ``radii[n]`` plus the
tract overlap; a point belongs to the tract with the nearest centre (the lowest
number on a tie), which need not contain it if the tracts leave gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .base import SkyMap, tract_shape_problems
from .errors import SkyMapDefinitionError
from .patches import PatchGrid
from .sphere import Vector, separation, unit_vector
from .tract import Tract, build_tract


@dataclass(frozen=True)
class DiscreteSkyMap(SkyMap):
    """Tracts at listed centres (degrees) with listed radii (degrees)."""

    centres: tuple[tuple[float, float], ...]
    radii: tuple[float, ...]
    pixel_scale: float = 0.333  # arcsec per pixel
    projection: str = "STG"
    tract_overlap: float = 1.0  # degrees
    patches: PatchGrid = field(default_factory=PatchGrid)
    _tracts: dict[int, Tract] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        problems = []
        if len(self.centres) != len(self.radii):
            problems.append(f"{len(self.centres)} centres but {len(self.radii)} radii")
        if any(not -90.0 <= dec <= 90.0 for _, dec in self.centres):
            problems.append("every centre's dec must be in [-90, 90]")
        if any(r < 0.0 for r in self.radii):
            problems.append("radii must not be negative")
        problems += tract_shape_problems(self.pixel_scale, self.projection, self.tract_overlap)
        if problems:
            raise SkyMapDefinitionError("discrete skymap: " + "; ".join(problems))

    def tract_cache(self) -> dict[int, Tract]:
        return self._tracts

    def __len__(self) -> int:
        return len(self.centres)

    def build_tract(self, tract_id: int) -> Tract:
        ra, dec = self.centres[tract_id]
        return build_tract(
            tract_id,
            (math.radians(ra), math.radians(dec)),
            math.radians(self.radii[tract_id]),
            math.radians(self.tract_overlap),
            self.projection,
            self.pixel_scale,
            self.patches,
            None,
        )

    def _vector(self, tract_id: int) -> Vector:
        ra, dec = self.centres[tract_id]
        return unit_vector(math.radians(ra), math.radians(dec))

    def find_tract_id(self, ra: float, dec: float) -> int:
        if not self.centres:
            raise SkyMapDefinitionError("this discrete skymap has no tracts")
        point = unit_vector(math.radians(ra), math.radians(dec))
        return min(range(len(self)), key=lambda n: (separation(point, self._vector(n)), n))

    def candidate_tracts(self, centre: Vector, radius: float) -> list[int]:
        return list(range(len(self)))
