"""Regions of the sky: circles, convex polygons and longitude/latitude boxes.

``contains`` is plain arithmetic on unit vectors (fast enough to test every tract
of a skymap); ``overlaps`` asks lsst-sphgeom, the field's library for spherical
regions, which is imported only then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InvalidRegionError
from .sphere import Vector, cross, dot, normalized, separation, unit_vector

if TYPE_CHECKING:
    import lsst.sphgeom


def _vector(ra: float, dec: float) -> Vector:
    return unit_vector(math.radians(ra), math.radians(dec))


@dataclass(frozen=True)
class Circle:
    """All points within ``radius`` degrees of (``ra``, ``dec``) degrees."""

    ra: float
    dec: float
    radius: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.dec <= 90.0) or not (0.0 <= self.radius <= 180.0):
            raise InvalidRegionError(
                f"Circle(ra={self.ra}, dec={self.dec}, radius={self.radius}): dec must be in "
                "[-90, 90] and radius in [0, 180] degrees"
            )

    def contains(self, ra: float, dec: float) -> bool:
        centre = _vector(self.ra, self.dec)
        return separation(centre, _vector(ra, dec)) <= math.radians(self.radius)

    def bounding_circle(self) -> tuple[Vector, float]:
        """A centre (unit vector) and radius (radians) of a cap holding the region."""
        return _vector(self.ra, self.dec), math.radians(self.radius)

    def to_sphgeom(self) -> lsst.sphgeom.Circle:
        import lsst.sphgeom as sg

        return sg.Circle(
            sg.UnitVector3d(sg.LonLat.fromDegrees(self.ra, self.dec)),
            sg.Angle.fromDegrees(self.radius),
        )


@dataclass(frozen=True)
class Polygon:
    """A convex polygon whose edges are great circles, from (ra, dec) vertices in degrees.

    The vertices may go round either way; the polygon is the smaller of the two
    regions they bound (it must fit in a hemisphere).
    """

    vertices: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.vertices) < 3:
            raise InvalidRegionError(
                f"Polygon needs at least 3 (ra, dec) vertices, got {len(self.vertices)}"
            )

    def _edges(self) -> list[Vector]:
        """The inward normals of the edges."""
        vectors = [_vector(ra, dec) for ra, dec in self.vertices]
        n = len(vectors)
        normals = [cross(vectors[i], vectors[(i + 1) % n]) for i in range(n)]
        if dot(normals[0], vectors[2 % n]) < 0.0:
            normals = [(-a, -b, -c) for a, b, c in normals]
        return normals

    def contains(self, ra: float, dec: float) -> bool:
        point = _vector(ra, dec)
        return all(dot(normal, point) >= 0.0 for normal in self._edges())

    def bounding_circle(self) -> tuple[Vector, float]:
        vectors = [_vector(ra, dec) for ra, dec in self.vertices]
        centre = normalized(
            (
                sum(v[0] for v in vectors),
                sum(v[1] for v in vectors),
                sum(v[2] for v in vectors),
            )
        )
        return centre, max(separation(centre, v) for v in vectors)

    def to_sphgeom(self) -> lsst.sphgeom.ConvexPolygon:
        import lsst.sphgeom as sg

        return sg.ConvexPolygon.convexHull(
            [sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec)) for ra, dec in self.vertices]
        )


@dataclass(frozen=True)
class LonLatBox:
    """Points with longitude in [lon_min, lon_max] and latitude in [lat_min, lat_max].

    Angles are radians, as lsst.skymap computes a rings tract's inner region; a
    longitude range with ``lon_min > lon_max`` wraps through 0, and [0, 2π] is the
    whole circle (a polar cap).
    """

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float

    @classmethod
    def from_degrees(
        cls, ra_min: float, ra_max: float, dec_min: float, dec_max: float
    ) -> LonLatBox:
        return cls(
            math.radians(ra_min), math.radians(ra_max), math.radians(dec_min), math.radians(dec_max)
        )

    def contains(self, ra: float, dec: float) -> bool:
        lon, lat = math.radians(ra) % (2.0 * math.pi), math.radians(dec)
        if not self.lat_min <= lat <= self.lat_max:
            return False
        if self.lon_min <= self.lon_max:
            return self.lon_min <= lon <= self.lon_max
        return lon >= self.lon_min or lon <= self.lon_max

    def _lon_width(self) -> float:
        width = self.lon_max - self.lon_min
        return width if width >= 0.0 else width + 2.0 * math.pi

    def bounding_circle(self) -> tuple[Vector, float]:
        if self._lon_width() >= math.pi:
            if self.lat_min >= 0.0:
                return (0.0, 0.0, 1.0), math.pi / 2 - self.lat_min
            if self.lat_max <= 0.0:
                return (0.0, 0.0, -1.0), math.pi / 2 + self.lat_max
            return (0.0, 0.0, 1.0), math.pi
        mid_lon = self.lon_min + 0.5 * self._lon_width()
        centre = unit_vector(mid_lon, 0.5 * (self.lat_min + self.lat_max))
        corners = [
            unit_vector(lon, lat)
            for lon in (self.lon_min, self.lon_max)
            for lat in (self.lat_min, self.lat_max)
        ]
        return centre, max(separation(centre, c) for c in corners) + 1e-12

    def to_sphgeom(self) -> lsst.sphgeom.Box:
        import lsst.sphgeom as sg

        return sg.Box(
            sg.LonLat(sg.NormalizedAngle(self.lon_min), sg.Angle(self.lat_min)),
            sg.LonLat(sg.NormalizedAngle(self.lon_max), sg.Angle(self.lat_max)),
        )


Region = Circle | Polygon | LonLatBox


def overlaps(a: Region, b: Region) -> bool:
    """Whether two regions share a point; in the rare cases lsst-sphgeom cannot
    decide, the answer is ``True`` (callers get a superset, never miss one)."""
    centre_a, radius_a = a.bounding_circle()
    centre_b, radius_b = b.bounding_circle()
    if separation(centre_a, centre_b) > radius_a + radius_b + 1e-12:
        return False
    answer = a.to_sphgeom().overlaps(b.to_sphgeom())
    return True if answer is None else answer
