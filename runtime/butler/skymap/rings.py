"""lsst.skymap's ``RingsSkyMap``: declination rings cut into equal tracts, plus two caps.

With N rings the ring size is ``π / (N + 1)`` (the caps count as one ring between
them). Ring ``i`` (0 = southernmost) spans declinations ``-π/2 + (i + 0.5) size`` to
``-π/2 + (i + 1.5) size`` and holds ``int(2π cos(d) / size) + 1`` tracts, ``d``
being the smaller |declination| of its edges. Tract 0 is the south cap; then each
ring from the south, starting at ``ra_start`` and going east; the north cap is
last. Version 0 keeps the numbering of data processed before DM-14809: the first
tract of ring 0 appears twice (as 1 and ``n0 + 1``), every later ring starts one
index late, and the first tract of the last ring has no number (points there fall
to the north cap).
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, field
from functools import cached_property

from ..errors import InvalidDataIdError
from .base import SkyMap, tract_shape_problems
from .errors import SkyMapDefinitionError
from .patches import PatchGrid
from .regions import LonLatBox
from .sphere import Vector, separation, unit_vector, wrap
from .tract import Tract, build_tract


@dataclass(frozen=True)
class RingsSkyMap(SkyMap):
    """Rings of tracts; defaults are lsst.skymap's (STG, 0.333", 1 degree overlap)."""

    num_rings: int
    pixel_scale: float = 0.333  # arcsec per pixel
    projection: str = "STG"
    tract_overlap: float = 1.0  # degrees
    ra_start: float = 0.0  # degrees
    patches: PatchGrid = field(default_factory=PatchGrid)
    version: int = 1
    _tracts: dict[int, Tract] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        problems = []
        if self.num_rings <= 0:
            problems.append(f"num_rings must be positive, not {self.num_rings}")
        if not 0.0 <= self.ra_start < 360.0:
            problems.append(f"ra_start must be in [0, 360), not {self.ra_start}")
        problems += tract_shape_problems(self.pixel_scale, self.projection, self.tract_overlap)
        if self.version not in (0, 1):
            problems.append(f"version must be 0 or 1, not {self.version}")
        if problems:
            raise SkyMapDefinitionError("rings skymap: " + "; ".join(problems))

    def tract_cache(self) -> dict[int, Tract]:
        return self._tracts

    @cached_property
    def ring_size(self) -> float:
        """Declination height of a ring, radians."""
        return math.pi / (self.num_rings + 1)

    @cached_property
    def ring_counts(self) -> tuple[int, ...]:
        """The number of tracts in each ring, south to north."""
        counts = []
        for i in range(self.num_rings):
            start = self.ring_size * (i + 0.5) - 0.5 * math.pi
            stop = start + self.ring_size
            dec = min(math.fabs(start), math.fabs(stop))
            counts.append(int(2 * math.pi * math.cos(dec) / self.ring_size) + 1)
        return tuple(counts)

    @cached_property
    def _ring_ends(self) -> tuple[int, ...]:
        return tuple(itertools.accumulate(self.ring_counts))

    def __len__(self) -> int:
        return sum(self.ring_counts) + 2

    @property
    def _ra_start(self) -> float:
        return self.ra_start * (math.pi / 180.0)

    def ring_indices(self, tract_id: int) -> tuple[int, int]:
        """(ring, tract within ring): ring -1 is the south cap, ``num_rings`` the north."""
        if tract_id == 0:
            return -1, 0
        if tract_id == len(self) - 1:
            return self.num_rings, 0
        if not 0 <= tract_id < len(self):
            raise InvalidDataIdError(
                f"tract {tract_id} is not in this skymap: its tracts are numbered "
                f"0..{len(self) - 1}"
            )
        within = tract_id - 1
        ends = self._ring_ends
        # Version 1 moves to the next ring once ``within`` reaches a ring's count;
        # version 0 only once it passes it (DM-14809).
        if self.version == 0:
            ring = bisect.bisect_left(ends, within)
        else:
            ring = bisect.bisect_right(ends, within)
        if ring > 0:
            within -= ends[ring - 1]
        return ring, within

    def _centre(self, ring: int, within: int) -> tuple[float, float]:
        if ring == -1:
            return 0.0, -0.5 * math.pi
        if ring == self.num_rings:
            return 0.0, 0.5 * math.pi
        dec = self.ring_size * (ring + 1) - 0.5 * math.pi
        ra = wrap(2 * math.pi * within / self.ring_counts[ring] + self._ra_start)
        return ra, dec

    def centre(self, tract_id: int) -> tuple[float, float]:
        """(ra, dec) of a tract's centre, degrees."""
        lon, lat = self._centre(*self.ring_indices(tract_id))
        return math.degrees(lon), math.degrees(lat)

    def _inner_box(self, ring: int, within: int) -> LonLatBox:
        size = self.ring_size
        if ring == -1:
            return LonLatBox(0.0, 2.0 * math.pi, -math.pi / 2.0, -math.pi / 2.0 + 0.5 * size)
        if ring == self.num_rings:
            return LonLatBox(
                0.0, 2.0 * math.pi, -math.pi / 2.0 + (ring + 0.5) * size, math.pi / 2.0
            )
        count = self.ring_counts[ring]
        start = (within - 0.5) * 2.0 * math.pi / count
        stop = (within + 0.5) * 2.0 * math.pi / count
        return LonLatBox(
            wrap(self._ra_start + start),
            wrap(self._ra_start + stop),
            -math.pi / 2.0 + (ring + 0.5) * size,
            -math.pi / 2.0 + (ring + 1.5) * size,
        )

    def inner_region(self, tract_id: int) -> LonLatBox:
        """A tract's inner region, without building its WCS."""
        return self._inner_box(*self.ring_indices(tract_id))

    def _build(self, tract_id: int, ring: int, within: int) -> Tract:
        return build_tract(
            tract_id,
            self._centre(ring, within),
            0.5 * self.ring_size,
            self.tract_overlap * (math.pi / 180.0),
            self.projection,
            self.pixel_scale,
            self.patches,
            self._inner_box(ring, within),
        )

    def build_tract(self, tract_id: int) -> Tract:
        return self._build(tract_id, *self.ring_indices(tract_id))

    def find_tract_id(self, ra: float, dec: float) -> int:
        lon, lat = wrap(math.radians(ra)), math.radians(dec)
        first = self.ring_size * 0.5 - 0.5 * math.pi
        if lat < first:
            return 0
        if lat > -first:
            return len(self) - 1
        ring = min(int((lat - first) / self.ring_size), self.num_rings - 1)
        count = self.ring_counts[ring]
        within = int(wrap(lon - self._ra_start) / (2 * math.pi / count) + 0.5)
        if within == count:
            within = 0
        if self.version == 0 and within == 0 and ring != 0:
            ring += 1  # the numbering of version 0 (see the module's docstring)
        return sum(self.ring_counts[:ring], within + 1)

    @cached_property
    def _reaches(self) -> tuple[float, ...]:
        """Per ring (caps first and last), the largest distance from a tract's centre to
        its outer region's corners, radians: every tract of a ring has the same shape."""
        reaches = []
        for ring in range(-1, self.num_rings + 1):
            tract = self._build(-1, ring, 0)
            centre = unit_vector(math.radians(tract.ra), math.radians(tract.dec))
            reaches.append(
                max(
                    separation(centre, unit_vector(math.radians(a), math.radians(d)))
                    for a, d in tract.region.vertices
                )
            )
        return tuple(reaches)

    @cached_property
    def _centres(self) -> tuple[object, object]:
        """Unit vectors of every tract's centre and each tract's reach (see ``_reaches``)."""
        import numpy as np

        lon, lat, reach = [], [], []
        reaches = self._reaches
        for tract_id in range(len(self)):
            ring, within = self.ring_indices(tract_id)
            a, d = self._centre(ring, within)
            lon.append(a)
            lat.append(d)
            reach.append(reaches[ring + 1])
        lon_a, lat_a = np.array(lon), np.array(lat)
        vectors = np.stack(
            [np.cos(lat_a) * np.cos(lon_a), np.cos(lat_a) * np.sin(lon_a), np.sin(lat_a)], axis=1
        )
        return vectors, np.array(reach)

    def candidate_tracts(self, centre: Vector, radius: float) -> list[int]:
        import numpy as np

        vectors, reach = self._centres
        angle = np.arccos(np.clip(np.asarray(vectors) @ np.array(centre), -1.0, 1.0))
        return [int(i) for i in np.nonzero(angle <= np.asarray(reach) + radius + 1e-9)[0]]
