"""Images that carry their metadata, and the boxes that cut sections out of them.

:class:`Image` is the one in-memory image type the formatters share, so an image
written as FITS and read back equals the same image written as HDF5 and read back:
pixels in :attr:`Image.array`, header cards (FITS) or attributes (HDF5) in
:attr:`Image.metadata`.

:class:`BBox` is a half-open pixel box in numpy order: rows ``y0:y1`` and columns
``x0:x1``, so ``image.array[bbox.slices]`` is the section it selects. For arrays of
more than two dimensions the box applies to the last two axes (``array[..., y, x]``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from .errors import ObjectTypeError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# numpy is imported by the methods that need it, not here: ``butler.formatters``
# re-exports these types, and opening a repository must not cost numpy's import.

__all__ = ["BBox", "Image", "MetadataValue"]

#: One metadata value: what both a FITS card and an HDF5 attribute can hold.
MetadataValue = bool | int | float | str


def _scalar(key: str, value: object) -> MetadataValue:
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    raise ObjectTypeError(
        f"Image metadata {key!r} is a {type(value).__name__}; "
        "metadata values must be bool, int, float or str"
    )


@dataclass(frozen=True, eq=False, slots=True, weakref_slot=True)  # the object cache
class Image:
    """Pixels and their metadata.

    ``array`` is any numeric numpy array (two-dimensional for sections);
    ``metadata`` maps names to scalars (bool, int, float, str; numpy scalars are
    converted). Two images are equal when their arrays have the same shape, the
    same dtype (byte order aside) and the same values (NaN equals NaN), and their
    metadata are equal. Images are not hashable.
    """

    array: npt.NDArray[Any]
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import numpy as np

        if not isinstance(self.array, np.ndarray):
            raise TypeError(f"Image.array must be a numpy.ndarray, not {type(self.array).__name__}")
        clean: dict[str, MetadataValue] = {}
        for key, value in self.metadata.items():
            if not isinstance(key, str):
                raise ObjectTypeError(f"Image metadata keys must be str, not {type(key).__name__}")
            clean[key] = _scalar(key, value)
        object.__setattr__(self, "metadata", clean)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        import numpy as np

        return (
            self.array.shape == other.array.shape
            and self.array.dtype.newbyteorder("=") == other.array.dtype.newbyteorder("=")
            and bool(
                np.array_equal(self.array, other.array, equal_nan=self.array.dtype.kind in "fc")
            )
            and dict(self.metadata) == dict(other.metadata)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Image(array=<{self.array.dtype} {self.array.shape}>, "
            f"metadata={dict(self.metadata)!r})"
        )


def _is_numpy_integer(value: object) -> TypeGuard[np.integer[Any]]:
    """Whether ``value`` is a numpy integer; never while numpy is not imported."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.integer)


@dataclass(frozen=True, slots=True)
class BBox:
    """A half-open pixel box: columns ``x0 <= x < x1``, rows ``y0 <= y < y1``.

    Arguments are in ``(x0, y0, x1, y1)`` order, as astronomers write a box;
    :attr:`slices` is in numpy ``[y, x]`` order, as arrays are indexed::

        BBox(x0=10, y0=20, x1=15, y1=22).slices == (slice(20, 22), slice(10, 15))
    """

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "x1", "y1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int) or _is_numpy_integer(value)):
                raise TypeError(f"BBox.{name} must be an int, not {type(value).__name__}")
            object.__setattr__(self, name, int(value))
        if not (0 <= self.x0 <= self.x1 and 0 <= self.y0 <= self.y1):
            raise ValueError(f"{self} is not a box: need 0 <= x0 <= x1 and 0 <= y0 <= y1")

    @classmethod
    def from_slices(cls, rows: slice, columns: slice) -> BBox:
        """The box ``array[rows, columns]`` selects (numpy order; steps must be 1)."""
        for s in (rows, columns):
            if s.step not in (None, 1) or s.start is None or s.stop is None:
                raise ValueError(f"{s} is not a bounded slice with step 1")
        return cls(x0=columns.start, y0=rows.start, x1=columns.stop, y1=rows.stop)

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)``: index an array with ``array[..., *bbox.slices]``."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``, numpy order."""
        return self.y1 - self.y0, self.x1 - self.x0

    def fits_in(self, shape: tuple[int, ...]) -> bool:
        """Whether the box lies inside an array of this shape (last two axes)."""
        return len(shape) >= 2 and self.y1 <= shape[-2] and self.x1 <= shape[-1]
