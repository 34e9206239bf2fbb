"""The skymap's failures, part of :mod:`butler.errors`' hierarchy.

A bad tract or patch number raises :class:`butler.errors.InvalidDataIdError`, as
any other bad data ID value does.
"""

from __future__ import annotations

from ..errors import ButlerError


class UnknownSkyMapError(ButlerError, KeyError):
    """A skymap name that is not bundled (nor defined by the policy)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SkyMapDefinitionError(ButlerError, ValueError):
    """Skymap parameters out of range (rings, scale, overlap, patch sizes, radii)."""


class InvalidRegionError(ButlerError, ValueError):
    """A sky region that cannot be built (a declination past a pole, too few vertices)."""
