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
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["datasum", "encode_checksum", "header_sum", "supports"]

_MASK = 0xFFFFFFFF
_WORDS = 1 << 30  # uint32 words summed at once: their uint64 sum cannot overflow
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


def datasum(array: np.ndarray[Any, Any]) -> int:
    """The ``DATASUM`` of ``array`` written as a FITS image (C order, big-endian)."""
    native = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    flat = native.reshape(-1).view(np.uint8)
    tail = b""
    if native.dtype.itemsize == 2 and native.size % 2:  # a last pixel alone in its word
        flat, tail = flat[:-2], native.reshape(-1)[-1:].astype(">u2").tobytes()
    words = flat.view(np.uint32)
    total = 0
    for start in range(0, len(words), _WORDS):
        total += int(words[start : start + _WORDS].sum(dtype=np.uint64))
    total = _fold(total)
    if native.dtype.itemsize == 2:
        total = ((total << 16) | (total >> 16)) & _MASK
        total = _fold(total + (int.from_bytes(tail, "big") << 16 if tail else 0))
    return total


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
