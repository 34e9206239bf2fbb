"""FITS through astropy.io.fits: images with their headers, binary tables, MEF, .gz and .fz.

What is written
    - :class:`~butler.image.Image` or ``numpy.ndarray`` (integer or floating-point
      pixels): one image HDU; ``Image.metadata`` becomes header cards.
    - ``astropy.table.Table``: a binary-table extension after an empty primary HDU.
    - a list or tuple of those: a multi-extension file. If the first item is an
      image it is the primary HDU and item ``i`` is HDU ``i``; if it is a table an
      empty primary comes first and item ``i`` is HDU ``i + 1``.
    - ``hdu=k`` (single objects only) puts the object in HDU ``k``, after an empty
      primary and empty image extensions.
    - ``compress=".gz"`` gzips the whole file; ``compress=".fz"`` writes each image
      as a tile-compressed ``CompImageHDU``, losslessly (RICE_1 for integer pixels
      up to 32 bits, GZIP_2 without quantization otherwise). Tables stay binary tables.

Metadata ↔ header cards
    Keys that are standard keywords (``[A-Z0-9_-]``, at most 8 characters) are
    written as they are; any other key (long, lower case) as a ``HIERARCH`` card,
    which keeps its case, so ``{"exptime": 30}`` reads back as ``{"exptime": 30}``.
    Only values FITS can represent are kept: bool, int, finite float, and printable
    ASCII str (long strings use ``CONTINUE`` cards); anything else is dropped, as are
    keys FITS reserves for structure (``NAXIS``, ``BZERO``, ``TFORM1``, ...). Reading
    returns every card but structural and commentary (``COMMENT``, ``HISTORY``) ones.

HDU numbers
    ``hdu`` is an HDU number (0 = primary) or an ``EXTNAME``. ``hdu=None`` is the first
    HDU that has data. In a tile-compressed file, an image that was compressed from
    a primary HDU (``ZSIMPLE = T``, the fpack convention; what this module writes) is
    HDU 0, so a file and its ``.fz`` twin are numbered alike.

Reads
    ``.gz`` and ``.fz`` files are recognised by content, not by name. Metadata reads
    parse headers only. Section reads use memory mapping and ``HDU.section``, so only
    the rows of the box are read (only the tiles, for ``.fz``); a ``.gz`` file has to be
    decompressed from its start up to the end of the box. A truncated or corrupt
    file raises :class:`~butler.errors.FormatError` naming the file and what astropy said.

Checksums
    Every HDU written carries the standard ``CHECKSUM`` and ``DATASUM`` cards. For the
    common case, one uncompressed image of signed integer or floating-point pixels, this
    module writes the file itself (astropy's header, the pixels in big-endian order, the
    padding) and sums the array piece by piece as it is written (``_fits_checksum``);
    otherwise astropy's ``checksum=True`` does it. Reads do not check them (on a 4k x 4k
    image that would cost 3-4 times the read); :meth:`FitsFormatter.verify` does, for
    ``butler verify --read``.
"""

from __future__ import annotations

import gzip
import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import FormatError
from ..image import BBox, Image, MetadataValue
from . import _fits_checksum
from ._common import (
    captured_warnings,
    check_compress,
    check_python_type,
    dtype_label,
    failed,
    native,
    pass_on,
    unsupported,
    write_through,
)
from .base import Formatter, TableInfo

__all__ = ["FitsFormatter"]

_NDARRAY, _IMAGE, _TABLE = "numpy.ndarray", "butler.image.Image", "astropy.table.Table"
_READS = (_NDARRAY, _IMAGE, _TABLE)
_ACCEPTS = "butler.image.Image, numpy.ndarray, astropy.table.Table, or a list or tuple of them"

_STANDARD_KEY = re.compile(r"[A-Z0-9_-]{1,8}\Z")
_HIERARCH_KEY = re.compile(r"[!-<>-~](?:[ !-<>-~]*[!-<>-~])?\Z")  # printable ASCII, no '='
_PRINTABLE = re.compile(r"[ -~]*\Z")
_COMMENTARY = frozenset({"", "COMMENT", "HISTORY"})
_STRUCTURAL = frozenset(
    {
        *("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "XTENSION", "GROUPS"),
        *("BSCALE", "BZERO", "BLANK", "END", "CHECKSUM", "DATASUM", "TFIELDS", "THEAP"),
        *("ZIMAGE", "ZSIMPLE", "ZTENSION", "ZBITPIX", "ZNAXIS", "ZPCOUNT", "ZGCOUNT"),
        *("ZCMPTYPE", "ZQUANTIZ", "ZDITHER0", "ZEXTEND", "ZBLOCKED", "ZHECKSUM", "ZDATASUM"),
        *("ZBLANK", "ZSCALE", "ZZERO"),
    }
)
_STRUCTURAL_INDEXED = re.compile(
    r"(NAXIS|ZNAXIS|ZTILE|ZNAME|ZVAL|TTYPE|TFORM|TUNIT|TDIM|TNULL|TSCAL|TZERO|TDISP|TBCOL"
    r"|TCOMM|TUCD|TDMIN|TDMAX|TLMIN|TLMAX)\d+\Z"
)
_FATAL = ("truncated", "corrupt", "multiple of 2880")
_CHECKSUM_FAILED = ("Checksum verification failed", "Datasum verification failed")
_BLOCK = 2880
#: Pixels are converted to big-endian order and written in pieces of this size: at least
#: ``butler.checksums.PARALLEL_BYTES``, so each is hashed in a second thread while written.
_PIECE_BYTES = 4 << 20

_HDU = Any  # astropy's HDU classes are not typed


class FitsFormatter(Formatter):
    """FITS images, tables and multi-extension files (see the module docs)."""

    name = "fits"
    writes_streams = True

    # -- writing -----------------------------------------------------------------

    def write(
        self, obj: object, path: Path, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        write_through(
            path, lambda stream: self.write_stream(obj, stream, hdu=hdu, compress=compress)
        )

    def write_stream(
        self, obj: object, stream: BinaryIO, *, hdu: int | None = None, compress: str | None = None
    ) -> None:
        path = Path(getattr(stream, "name", "<stream>"))
        check_compress(self.name, compress, (".gz", ".fz"))
        tile = compress == ".fz"
        if isinstance(obj, list | tuple):
            if hdu is not None:
                raise FormatError("a list of HDUs is written whole; hdu= applies to single objects")
            if not obj:
                raise FormatError(f"nothing to write to {path}: the list of HDUs is empty")
            items = [_item(x) for x in obj]
            pad = 0 if not isinstance(items[0], Table) else 1
        else:
            items = [_item(obj)]
            pad = hdu if hdu is not None else (1 if isinstance(items[0], Table) else 0)
            if pad < 0 or (pad == 0 and isinstance(items[0], Table)):
                raise FormatError(
                    f"a table cannot be HDU {hdu}: FITS tables are extensions (hdu >= 1)"
                )
        hdus: list[_HDU] = []
        if pad:
            hdus = [fits.PrimaryHDU()] + [fits.ImageHDU() for _ in range(pad - 1)]
        for item in items:
            hdus.extend(_to_hdus(item, primary=not hdus, tile=tile))
        try:
            with captured_warnings() as caught:
                if compress == ".gz":  # buffered: astropy refuses a file that is not empty
                    buffered = io.BufferedWriter(cast(io.RawIOBase, stream))
                    with gzip.GzipFile(fileobj=buffered, mode="wb", filename="", mtime=0) as gz:
                        fits.HDUList(hdus).writeto(gz, checksum=True)
                    buffered.flush()
                    buffered.detach()
                elif len(hdus) == 1 and _one_image(hdus[0]):
                    _write_image(hdus[0], stream)
                else:
                    fits.HDUList(hdus).writeto(stream, checksum=True)
        except FormatError:
            raise
        except Exception as exc:
            raise failed("FITS", "write", path, exc) from exc
        pass_on(caught)

    # -- reading -----------------------------------------------------------------

    def read(
        self, path: Path, *, python_type: str | None = None, hdu: int | str | None = None
    ) -> object:
        check_python_type(self.name, python_type, _READS)
        with _opened(path, memmap=False) as hdul:
            number, h = _select(hdul, hdu, path)
            if _is_table(h):
                if python_type not in (None, _TABLE):
                    raise FormatError(f"HDU {number} of '{path}' is a table, not a {python_type}")
                return Table.read(h, character_as_bytes=False)
            if python_type == _TABLE:
                raise FormatError(f"HDU {number} of '{path}' is an image, not a table")
            if not _has_data(h):
                raise FormatError(f"HDU {number} of '{path}' has no data (a header only)")
            # As astropy gives it: in the file's byte order (FITS is big-endian), with no
            # copy; converting a 4k x 4k image costs as much again as reading it.
            array = h.data
            if python_type == _NDARRAY:
                return array
            metadata = _metadata(h.header)
            return Image(array, metadata) if python_type == _IMAGE or metadata else array

    def verify(self, path: Path) -> None:
        """Check every HDU's ``CHECKSUM`` and ``DATASUM`` cards (where it has them) against
        the file; FormatError naming the HDU if one disagrees."""
        with captured_warnings() as caught, _opened(path, memmap=False, checksum=True) as hdul:
            hdul.readall()
        failures = [w for w in caught if str(w.message).startswith(_CHECKSUM_FAILED)]
        pass_on([w for w in caught if w not in failures])
        if failures:
            said = "; ".join(" ".join(str(w.message).split()) for w in failures)
            raise FormatError(
                f"FITS file '{path}' fails its own CHECKSUM/DATASUM cards ({said}): "
                "its bytes changed after it was written"
            )

    def read_metadata(self, path: Path, *, hdu: int | str | None = None) -> dict[str, object]:
        with _opened(path, memmap=True) as hdul:
            return dict(_metadata(_select(hdul, hdu, path)[1].header))

    def read_section(self, path: Path, bbox: BBox, *, hdu: int | str | None = None) -> object:
        with _opened(path, memmap=True) as hdul:
            number, h = _select(hdul, hdu, path)
            if _is_table(h) or not _has_data(h):
                raise FormatError(f"HDU {number} of '{path}' is not an image; no section to read")
            header = h.header
            shape = tuple(header[f"NAXIS{n}"] for n in range(header["NAXIS"], 0, -1))
            if not bbox.fits_in(shape):
                raise FormatError(f"{bbox} is not inside HDU {number} of '{path}' (shape {shape})")
            lead = (slice(None),) * (len(shape) - 2)
            if 0 in bbox.shape:  # astropy returns a 1-d float64 array for empty sections
                pixel = np.asarray(h.section[(0,) * len(lead) + (slice(0, 1), slice(0, 1))])
                return np.empty(shape[:-2] + bbox.shape, dtype=native(pixel).dtype)
            return native(np.asarray(h.section[lead + bbox.slices]))

    def read_table_info(self, path: Path, *, hdu: int | str | None = None) -> TableInfo:
        with _opened(path, memmap=True) as hdul:
            number, h = _select(hdul, hdu, path)
            if not _is_table(h):
                raise FormatError(f"HDU {number} of '{path}' is not a table")
            columns = {c.name: _column_label(c) for c in h.columns}
            return TableInfo(length=int(h.header["NAXIS2"]), columns=columns)


# -- one image, written with its checksums ------------------------------------------------


def _one_image(h: _HDU) -> bool:
    """Whether ``h`` is a plain primary image :func:`_write_image` writes."""
    return (
        type(h) is fits.PrimaryHDU
        and h.data is not None
        and _fits_checksum.supports(h.data)
        and "BZERO" not in h.header
        and "BSCALE" not in h.header
    )


def _write_image(h: _HDU, stream: BinaryIO) -> None:
    """Write a primary image HDU with its ``CHECKSUM`` and ``DATASUM`` (module docs).

    The pixels go out in pieces, each converted to big-endian order in one buffer that
    stays in the processor's cache while the stream hashes and writes it (a piece is
    large enough for :class:`~butler.checksums.HashingFile` to hash it in a second thread
    while the kernel copies it); the caller's array is only read. A third thread sums
    each piece's words for ``DATASUM`` once it has been converted, so it too reads from
    the cache. The header, whose length does not depend on the sums, is written last,
    into the place left for it.
    """
    array = h.data
    header = h.header.copy()
    header["DATASUM"] = ("0", "data unit checksum")
    header.set("CHECKSUM", "0" * 16, "HDU checksum", before="DATASUM")
    start = stream.tell()
    header_size = len(header.tostring().encode("ascii"))
    pixels = array.reshape(-1)  # a view when C-contiguous, else one copy in C order
    step = _PIECE_BYTES // array.dtype.itemsize  # even: 2-byte pixels pair up in words
    buffer = np.empty(min(step, pixels.size), dtype=array.dtype.newbyteorder(">"))
    stream.seek(start + header_size)
    with ThreadPoolExecutor(1) as pool:
        sums = []
        for first in range(0, pixels.size, step):
            native = pixels[first : first + step]
            piece = buffer[: native.size]
            piece[...] = native
            sums.append(pool.submit(_fits_checksum.word_sum, native))
            _write_all(stream, piece.view(np.uint8).data)
        _write_all(stream, bytes(-array.nbytes % _BLOCK))
        data_sum = _fits_checksum.datasum_of(sum(part.result() for part in sums), pixels)
    end = stream.tell()
    header["DATASUM"] = (str(data_sum), "data unit checksum")
    total = _fits_checksum.header_sum(header.tostring().encode("ascii"), data_sum)
    header["CHECKSUM"] = _fits_checksum.encode_checksum(total)
    text = header.tostring().encode("ascii")
    if len(text) != header_size:  # cannot happen: cards have fixed widths
        raise FormatError(f"FITS header changed length while its sums were filled in: {h}")
    stream.seek(start)
    _write_all(stream, text)
    stream.seek(end)


def _write_all(stream: BinaryIO, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[stream.write(view) :]


# -- objects to HDUs -----------------------------------------------------------------


def _item(obj: object) -> Image | Table:
    if isinstance(obj, Image | Table):
        return obj
    if isinstance(obj, np.ndarray):
        return Image(obj)
    raise unsupported("fits", obj, _ACCEPTS)


def _to_hdus(item: Image | Table, *, primary: bool, tile: bool) -> list[_HDU]:
    """One item as HDUs: a compressed primary image becomes an empty primary + ZSIMPLE image."""
    if isinstance(item, Table):
        plain = Table(item, copy=False, meta={})
        table_hdu = fits.table_to_hdu(plain, character_as_bytes=True)
        table_hdu.header.extend(_header(item.meta).cards)
        return [table_hdu]
    array = item.array
    if array.dtype.kind not in "iuf" or array.dtype.itemsize < 1 or array.dtype == np.float16:
        raise FormatError(
            f"FITS images hold integer or floating-point pixels (not float16); got {array.dtype}"
        )
    header = _header(item.metadata)
    if not tile:
        return [fits.PrimaryHDU(array, header) if primary else fits.ImageHDU(array, header)]
    if primary:  # carry SIMPLE so astropy writes ZSIMPLE = T: "this was the primary HDU"
        header = fits.PrimaryHDU(array, header).header
    lossless_rice = array.dtype.kind in "iu" and array.dtype.itemsize <= 4
    compressed = fits.CompImageHDU(
        array,
        header,
        compression_type="RICE_1" if lossless_rice else "GZIP_2",
        quantize_level=0.0 if array.dtype.kind == "f" else 16.0,
    )
    return [fits.PrimaryHDU(), compressed] if primary else [compressed]


def _header(metadata: Mapping[str, object]) -> fits.Header:
    """Header cards for the FITS-representable entries of ``metadata`` (module docs)."""
    header = fits.Header()
    for key, value in metadata.items():
        if isinstance(value, np.generic):
            value = value.item()
        if _reserved(key) or not _representable(value):
            continue
        if _STANDARD_KEY.match(key):
            card_key = key
        elif _HIERARCH_KEY.match(key):
            card_key = f"HIERARCH {key}"
        else:
            continue
        try:
            with captured_warnings() as caught:
                card = fits.Card(card_key, value)
                card.image  # noqa: B018 - formats the card now, raising if it cannot be written
        except (ValueError, fits.VerifyError):
            continue
        if not caught:
            header.append(card)
    return header


def _representable(value: object) -> bool:
    if isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and _PRINTABLE.match(value) is not None


def _reserved(key: str) -> bool:
    upper = key.upper()
    return upper in _STRUCTURAL or upper in _COMMENTARY or bool(_STRUCTURAL_INDEXED.match(upper))


def _metadata(header: fits.Header) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {}
    for card in header.cards:
        try:
            key, value = card.keyword, card.value
        except (ValueError, fits.VerifyError):
            continue
        if _reserved(key) or isinstance(value, complex):
            continue
        if isinstance(value, bool | int | float | str):
            metadata[key] = value
    return metadata


# -- opening and selecting HDUs --------------------------------------------------------


def _for_butler_users(exc: Exception) -> Exception:
    """astropy's error without its advice to pass ``ignore_missing_simple``, which a Butler
    user cannot: the file does not start as a FITS file must."""
    text = str(exc)
    if "ignore_missing_simple" not in text:
        return exc
    return OSError("not a FITS file: it does not begin with a SIMPLE card (damaged or replaced)")


@contextmanager
def _opened(path: Path, *, memmap: bool, checksum: bool = False) -> Iterator[fits.HDUList]:
    """``fits.open`` that closes the file always and turns corruption into FormatError."""
    with captured_warnings() as caught:
        try:
            with fits.open(path, memmap=memmap, lazy_load_hdus=True, checksum=checksum) as hdul:
                yield hdul
        except FormatError:
            raise
        except Exception as exc:
            fatal = _fatal(caught)
            raise failed("FITS", "read", path, fatal or _for_butler_users(exc)) from exc
    fatal = _fatal(caught)
    if fatal is not None:
        raise failed("FITS", "read", path, fatal)
    pass_on(caught)


def _fatal(caught: Sequence[Any]) -> Warning | None:
    for w in caught:
        if any(word in str(w.message) for word in _FATAL):
            message: Warning = w.message
            return message
    return None


def _logical(hdul: fits.HDUList) -> list[_HDU]:
    """The HDUs as numbered by this module: a ZSIMPLE compressed image is HDU 0."""
    hdus = list(hdul)
    if (
        len(hdus) >= 2
        and not _has_data(hdus[0])
        and isinstance(hdus[1], fits.CompImageHDU)
        and "SIMPLE" in hdus[1].header
    ):
        return hdus[1:]
    return hdus


def _select(hdul: fits.HDUList, hdu: int | str | None, path: Path) -> tuple[int | str, _HDU]:
    hdus = _logical(hdul)
    if hdu is None:
        for number, h in enumerate(hdus):
            if _has_data(h):
                return number, h
        return 0, hdus[0]
    if isinstance(hdu, int) and not isinstance(hdu, bool):
        if 0 <= hdu < len(hdus):
            return hdu, hdus[hdu]
        raise FormatError(f"'{path}' has no HDU {hdu}; it has HDUs 0 to {len(hdus) - 1}")
    for h in hdus:
        if str(h.header.get("EXTNAME", h.name)).upper() == str(hdu).upper():
            return hdu, h
    names = [str(h.header.get("EXTNAME", h.name)) for h in hdus]
    raise FormatError(f"'{path}' has no HDU named {hdu!r}; its HDUs are named {names}")


def _column_label(column: fits.Column) -> str:
    label = dtype_label(column.dtype, bytes_as="str")
    if str(column.format).rstrip().endswith("L"):  # logical columns are stored as int8
        label = "bool" + label[len(label.split("[")[0]) :]
    return label


def _is_table(h: _HDU) -> bool:
    return isinstance(h, fits.BinTableHDU | fits.TableHDU) and not isinstance(h, fits.CompImageHDU)


def _has_data(h: _HDU) -> bool:
    return _is_table(h) or int(h.header.get("NAXIS", 0)) > 0
