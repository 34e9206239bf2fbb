"""Small PNG previews of images, for DataLink's ``#preview`` links.

    png = preview_png(butler.get(ref))      # bytes of an 8-bit greyscale PNG

The pixels are binned down so the longer side is at most ``size`` pixels (the mean
of each block, so a preview of a noisy image is not dominated by one pixel), then
stretched linearly between the 1st and 99th percentiles of the finite values and
flipped so that row 0 of the array is at the bottom, as astronomers draw images.
The PNG is written here with ``zlib`` (greyscale, one IDAT chunk): no imaging
library is needed on a server that only serves previews.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Any

from .errors import FormatError
from .image import Image

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["PNG_SIGNATURE", "preview_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The longest side of a preview, in pixels, unless asked otherwise.
DEFAULT_SIZE = 256


def preview_png(obj: Any, *, size: int = DEFAULT_SIZE) -> bytes:
    """A PNG preview of an image (:class:`~butler.Image` or a numpy array of 2+ dimensions).

    Raises :class:`~butler.errors.FormatError` for anything that is not an image.
    """
    import numpy as np

    array = obj.array if isinstance(obj, Image) else obj
    if not isinstance(array, np.ndarray) or array.ndim < 2 or array.size == 0:
        raise FormatError(
            f"no preview of a {type(obj).__name__}: previews are drawn for images "
            "(an Image or a numpy array of two or more dimensions)"
        )
    if size < 1:
        raise FormatError(f"a preview's size must be at least 1 pixel, not {size}")
    plane = array.reshape(-1, *array.shape[-2:])[0]  # the first plane of a cube
    if not np.issubdtype(plane.dtype, np.number) or np.issubdtype(plane.dtype, np.complexfloating):
        raise FormatError(f"no preview of an image of {plane.dtype} pixels")
    pixels = _stretch(_binned(plane.astype(np.float64), size))
    return _png(pixels[::-1])


def _binned(plane: npt.NDArray[np.float64], size: int) -> npt.NDArray[np.float64]:
    """``plane`` reduced by the mean of square blocks so its longer side is <= ``size``."""
    import numpy as np

    factor = -(-max(plane.shape) // size)  # ceiling division
    if factor == 1:
        return plane
    rows, cols = (-(-n // factor) * factor for n in plane.shape)
    padded = np.full((rows, cols), np.nan)
    padded[: plane.shape[0], : plane.shape[1]] = plane
    blocks = padded.reshape(rows // factor, factor, cols // factor, factor)
    finite = np.isfinite(blocks)
    counts = finite.sum(axis=(1, 3))
    sums = np.where(finite, blocks, 0.0).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _stretch(plane: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Linear 1st–99th percentile stretch to 0–255; NaN and infinities are black."""
    import numpy as np

    finite = np.isfinite(plane)
    if not finite.any():
        return np.zeros(plane.shape, dtype=np.uint8)
    low, high = np.percentile(plane[finite], [1.0, 99.0])
    span = high - low if high > low else 1.0
    scaled = np.clip((np.where(finite, plane, low) - low) / span, 0.0, 1.0)
    stretched: npt.NDArray[np.uint8] = np.round(scaled * 255.0).astype(np.uint8)
    return stretched


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """An 8-bit greyscale PNG of ``pixels`` (rows top to bottom)."""
    import numpy as np

    height, width = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each row: filter byte 0, then pixels
    rows[:, 1:] = pixels
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )
