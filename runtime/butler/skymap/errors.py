"""The skymap's failures, defined in :mod:`butler.errors` with every other one.

A bad tract or patch number raises :class:`butler.errors.InvalidDataIdError`, as
any other bad data ID value does.
"""

from __future__ import annotations

from ..errors import InvalidRegionError, SkyMapDefinitionError, UnknownSkyMapError

__all__ = ["InvalidRegionError", "SkyMapDefinitionError", "UnknownSkyMapError"]
