"""The FITS ``CHECKSUM`` and ``DATASUM`` cards, computed from an image in memory.

The FITS checksum convention (FITS standard 4.0, appendix J) sums an HDU as 32-bit
big-endian words in ones' complement arithmetic: ``DATASUM`` is the sum of the data unit,
and ``CHECKSUM`` (16 characters) makes the sum of the whole HDU, header included, -0.
astropy computes the data sum from big-endian words after byte-swapping the array, which
costs about as much as writing the file; here it comes from the native array in one pass:

- pixels of 4 or 8 bytes: each big-endian word of the file is one native 32-bit word of
  the array, so the sum is the sum of the array viewed as native ``uint32``;
- pixels of 2 bytes: a file word holds pixels ``a, b`` as ``a * 2**16 + b``, a native word
  as ``a + b * 2**16``; in ones' complement arithmetic (modulo 2**32 - 1) multiplying by
  2**16 is a 16-bit rotation, so the file's sum is the native sum rotated.

The result is the same number astropy computes (``tests/test_checksums.py`` checks it).

Summing the native words is the costly part (64 MB for a 4k x 4k float32 image), and numpy
has no ones' complement sum. :func:`word_sum` gets the exact sum of a piece's 32-bit words
from two plain (wrapping) ``uint64`` sums, numpy's fastest reduction: one of the piece's
8-byte groups, one of the groups that start 4 bytes in (notes at :func:`word_sum`).
Widening every word to ``uint64`` instead (a buffered cast) is about 1.25 times slower on
4 MB pieces. A writer can sum piece by piece (:func:`word_sum` of each, then
:func:`datasum_of`), each piece just after it has been read for writing.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["datasum", "datasum_of", "encode_checksum", "header_sum", "supports", "word_sum"]

_MASK = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1
_WORDS = 1 << 30  # most uint32 words summed at once: their uint64 sum cannot overflow
# Characters the encoding steps around: the punctuation between digits and letters.
_EXCLUDED = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))


def supports(array: np.ndarray[Any, Any]) -> bool:
    """Whether :func:`datasum` applies: signed integer or floating pixels of 2, 4, 8 bytes
    (unsigned and 1-byte pixels are stored offset by ``BZERO``, so their bytes differ)."""
    return array.dtype.kind in "if" and array.dtype.itemsize in (2, 4, 8) and array.size > 0


def _fold(total: int) -> int:
    while total > _MASK:
        total = (total & _MASK) + (total >> 32)
    return total


def word_sum(pixels: np.ndarray[Any, Any]) -> int:
    """The exact sum of the 32-bit words of ``pixels`` (1-d, C-contiguous) in native byte
    order, as an unbounded int; a lone 2-byte pixel at the end (odd count) is left out.
    Pixels not in native byte order are summed as their native values.

    On a little-endian machine, with ``F`` and ``S`` the sums of the first and second
    words of the 8-byte groups, the ``uint64`` sum of the groups is ``F + 2**32 S`` and
    that of the groups starting 4 bytes in ``(S - last) + 2**32 (F - first)``, both
    modulo 2**64. ``F`` and ``S`` are below 2**64 (a piece is under 2**32 groups), so the
    low halves give ``S`` and ``F`` modulo 2**32, and each high half then the other
    exactly.
    """
    if not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    data = pixels.view(np.uint8)
    data = data[: len(data) - len(data) % 4]
    if sys.byteorder != "little" or len(data) < 16 or len(data) >= _WORDS * 4:
        return widened_sum(data)
    total = 0
    if len(data) % 8:  # one word past the last whole group
        total, data = int(data[-4:].view(np.uint32)[0]), data[:-4]
    groups = int(data.view(np.uint64).sum())
    inner = int(data[4:-4].view(np.uint64).sum())
    first, last = (int(data[i : i + 4].view(np.uint32)[0]) for i in (0, len(data) - 4))
    second_words = ((inner + last) & _MASK) << 32  # 2**32 S, modulo 2**64
    first_sum = (groups - second_words) & _MASK64
    second_sum = ((inner - (((first_sum - first) & _MASK) << 32)) & _MASK64) + last
    return total + first_sum + second_sum


def widened_sum(data: np.ndarray[Any, Any]) -> int:
    """:func:`word_sum` the plain way, for any byte order: each word widened to ``uint64``
    (``data``: native bytes, a multiple of 4)."""
    words = data.view(np.uint32)
    return sum(
        int(words[start : start + _WORDS].sum(dtype=np.uint64))
        for start in range(0, len(words), _WORDS)
    )


def datasum_of(total: int, pixels: np.ndarray[Any, Any]) -> int:
    """The ``DATASUM`` of ``pixels`` (1-d, C order) from ``total``, the sum of
    :func:`word_sum` over pieces of it that each hold an even number of pixels (but the
    last)."""
    total = _fold(total)
    if pixels.dtype.itemsize == 2:
        total = ((total << 16) | (total >> 16)) & _MASK
        if pixels.size % 2:  # the lone last pixel: the high half of the file's last word
            tail = int.from_bytes(pixels[-1:].astype(">u2").tobytes(), "big")
            total = _fold(total + (tail << 16))
    return total


def datasum(array: np.ndarray[Any, Any]) -> int:
    """The ``DATASUM`` of ``array`` written as a FITS image (C order, big-endian)."""
    pixels = np.ascontiguousarray(array).reshape(-1)
    return datasum_of(word_sum(pixels), pixels)


def header_sum(header: bytes, data_sum: int) -> int:
    """The ones' complement sum of a header's bytes (a multiple of 2880) and ``data_sum``."""
    words = np.frombuffer(header, dtype=">u4")
    return _fold(int(words.sum(dtype=np.uint64)) + data_sum)


def encode_checksum(total: int) -> str:
    """The 16 characters of ``CHECKSUM`` for an HDU whose sum, with ``CHECKSUM`` set to
    ``"0000000000000000"``, is ``total``: the complement, spread over printable characters."""
    value = ~total & _MASK
    chars = [0] * 16
    for byte_index in range(4):
        byte = (value >> (24 - 8 * byte_index)) & 0xFF
        quotient, remainder = byte // 4 + ord("0"), byte % 4
        four = [quotient + remainder, quotient, quotient, quotient]
        moved = True
        while moved:  # shift a unit between pairs until no character is punctuation
            moved = False
            for j in (0, 2):
                if four[j] in _EXCLUDED or four[j + 1] in _EXCLUDED:
                    four[j] += 1
                    four[j + 1] -= 1
                    moved = True
        for j in range(4):
            chars[4 * j + byte_index] = four[j]
    return bytes(chars[-1:] + chars[:-1]).decode("ascii")  # rotated right by one character
