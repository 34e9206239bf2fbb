"""What every skymap answers, given its tracts: patches of a point, overlaps of a region.

A subclass says how many tracts it has, builds tract ``n``, finds the tract of a
point, and names the tracts that might overlap a cap (a cheap superset); the
exact tests here are done on the tracts' outer regions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..errors import InvalidDataIdError
from .regions import Region, overlaps
from .sphere import Vector
from .tract import Patch, Tract


class SkyMap(ABC):
    """Tracts covering (part of) the sky, each cut into patches."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of tracts."""

    @abstractmethod
    def build_tract(self, tract_id: int) -> Tract:
        """Tract ``tract_id`` computed afresh (``tract`` caches it)."""

    @abstractmethod
    def find_tract_id(self, ra: float, dec: float) -> int:
        """The number of the tract whose inner region holds (ra, dec) degrees."""

    @abstractmethod
    def candidate_tracts(self, centre: Vector, radius: float) -> list[int]:
        """Tracts that may overlap the cap of ``radius`` radians around ``centre``: a
        superset of those that do."""

    @abstractmethod
    def tract_cache(self) -> dict[int, Tract]:
        """The skymap's memo of built tracts (tracts never change once built)."""

    def tract(self, tract_id: int) -> Tract:
        """Tract ``tract_id``."""
        if not 0 <= tract_id < len(self):
            raise InvalidDataIdError(
                f"tract {tract_id} is not in this skymap: its tracts are numbered "
                f"0..{len(self) - 1}"
            )
        cache = self.tract_cache()
        if tract_id not in cache:
            cache[tract_id] = self.build_tract(tract_id)
        return cache[tract_id]

    def find_tract(self, ra: float, dec: float) -> Tract:
        """The tract whose inner region holds (ra, dec) degrees."""
        return self.tract(self.find_tract_id(ra, dec))

    def find_patch(self, ra: float, dec: float) -> Patch:
        """The patch (of ``find_tract``'s tract) whose inner box holds the point."""
        return self.find_tract(ra, dec).find_patch(ra, dec)

    def tracts_overlapping(self, region: Region) -> list[Tract]:
        """Tracts whose outer region overlaps ``region``, by number."""
        centre, radius = region.bounding_circle()
        found = []
        for tract_id in sorted(self.candidate_tracts(centre, radius)):
            tract = self.tract(tract_id)
            if overlaps(tract.region, region):
                found.append(tract)
        return found

    def patches_overlapping(self, region: Region, tract: int | None = None) -> list[Patch]:
        """Patches whose outer region overlaps ``region``: of one tract, or of all."""
        if tract is not None:
            return self.tract(tract).patches_overlapping(region)
        return [
            patch
            for t in self.tracts_overlapping(region)
            for patch in t.patches_overlapping(region)
        ]


def tract_shape_problems(pixel_scale: float, projection: str, tract_overlap: float) -> list[str]:
    """What is wrong with the parameters every kind of skymap shares (none: empty)."""
    problems = []
    if pixel_scale <= 0.0:
        problems.append(f"pixel_scale must be positive, not {pixel_scale}")
    if tract_overlap < 0.0:
        problems.append(f"tract_overlap must not be negative, not {tract_overlap}")
    if len(projection) != 3 or not projection.isalpha():
        problems.append(f"projection must be a FITS code such as TAN, not {projection!r}")
    return problems
