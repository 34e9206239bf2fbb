"""Points on the unit sphere: conversions, separations and great-circle offsets.

Angles at this level are radians; the public API above it speaks degrees.
"""

from __future__ import annotations

import math

Vector = tuple[float, float, float]


def unit_vector(lon: float, lat: float) -> Vector:
    """The unit vector of the point at longitude ``lon`` and latitude ``lat`` (radians)."""
    cos_lat = math.cos(lat)
    return (cos_lat * math.cos(lon), cos_lat * math.sin(lon), math.sin(lat))


def lon_lat(vector: Vector) -> tuple[float, float]:
    """Longitude in [0, 2π) and latitude of a (not necessarily unit) vector, in radians."""
    x, y, z = vector
    lon = math.atan2(y, x)
    if lon < 0.0:
        lon += 2.0 * math.pi
    if lon >= 2.0 * math.pi:
        lon = 0.0
    return lon, math.atan2(z, math.hypot(x, y))


def cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def normalized(a: Vector) -> Vector:
    norm = math.sqrt(dot(a, a))
    return (a[0] / norm, a[1] / norm, a[2] / norm)


def separation(a: Vector, b: Vector) -> float:
    """The angle between two unit vectors (radians), accurate at all angles."""
    return math.atan2(math.sqrt(dot(cross(a, b), cross(a, b))), dot(a, b))


def wrap(angle: float) -> float:
    """``angle`` wrapped into [0, 2π), as lsst.geom's ``Angle.wrap`` does."""
    wrapped = math.fmod(angle, 2.0 * math.pi)
    if wrapped < 0.0:
        wrapped += 2.0 * math.pi
    if wrapped >= 2.0 * math.pi:
        wrapped = 0.0
    return wrapped


def offset(lon: float, lat: float, bearing: float, amount: float) -> Vector:
    """The point ``amount`` along the great circle leaving (lon, lat) at ``bearing``.

    The bearing is measured from east (increasing longitude) towards north, the
    convention of lsst.geom's ``SpherePoint.offset``.
    """
    r = unit_vector(lon, lat)
    east = (-math.sin(lon), math.cos(lon), 0.0)
    north = cross(r, east)
    c, s = math.cos(bearing), math.sin(bearing)
    direction = (
        c * east[0] + s * north[0],
        c * east[1] + s * north[1],
        c * east[2] + s * north[2],
    )
    ca, sa = math.cos(amount), math.sin(amount)
    return normalized(
        (
            ca * r[0] + sa * direction[0],
            ca * r[1] + sa * direction[1],
            ca * r[2] + sa * direction[2],
        )
    )
