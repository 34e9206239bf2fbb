"""A FITS primary header read lean: its cards found by name, each parsed only when it is read.

    cards = read_primary_cards(path)      # one read of the header's 2880-byte blocks
    cards["EXP-ID"]                       # 'HSCE00904024' (parsed now, as astropy would)

Ingest reads a few dozen cards of a raw header's hundreds. ``astropy.io.fits.Header``
makes a ``Card`` object of every one (about 0.3 ms for an HSC header); here the
header's text is only split into 80-character cards and indexed by keyword, and a
card's value is parsed on first read. Plain values (strings, whole and real numbers,
``T``/``F``) are parsed here with astropy's rules (a string's trailing blanks dropped,
``''`` an escaped quote, a ``D`` exponent); everything else (commentary cards, long
strings continued on ``CONTINUE`` cards, complex numbers, undefined values, cards
astropy would fix up) is handed to astropy, which parses the whole header once, on
the first such read. Keywords are case-insensitive and the first card of a repeated
keyword wins, as in astropy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, MutableMapping
from typing import Any

__all__ = ["Cards", "read_primary_cards"]

BLOCK = 2880
_CARD = 80
_END = re.compile(rb"END {77}")
_STRING = re.compile(r" *'((?:[^']|'')*)' *(?:/.*)?$")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?")
_COMMENTARY = frozenset({"COMMENT", "HISTORY", "", "CONTINUE"})
_DELETED = object()


class Cards(MutableMapping[str, Any]):
    """A header's cards by keyword; values parsed on first read; writable (translators fix
    headers up) without touching the text it was read from."""

    __slots__ = ("_astropy", "_index", "_keys", "_text", "_values")

    def __init__(self, text: str) -> None:
        self._text = text
        self._index: dict[str, str | None] | None = None  # every keyword -> its value text
        self._keys: dict[str, None] | None = None  # the keywords in order, once listed
        self._values: dict[str, Any] = {}
        self._astropy: Any = None

    def _image(self, name: str) -> str | None:
        """The text after ``= `` of the first card named ``name``; KeyError if none is."""
        if len(name) <= 8 and self._index is None:  # a search is cheaper than an index
            text, wanted, at = self._text, name.ljust(8), 0
            while True:
                at = text.find(wanted, at)
                if at < 0:
                    raise KeyError(name)
                if at % _CARD == 0:
                    return text[at + 10 : at + _CARD] if text[at + 8 : at + 10] == "= " else None
                at += 1
        return self._listed()[name]

    def _listed(self) -> dict[str, str | None]:
        if self._index is None:
            index: dict[str, str | None] = {}
            text = self._text
            for start in range(0, len(text), _CARD):
                card = text[start : start + _CARD]
                keyword = card[:8].rstrip()
                if keyword == "END":
                    break
                if keyword == "HIERARCH":
                    keyword, equals, rest = card[9:].partition("=")
                    image = rest if equals else None
                    keyword = keyword.strip()
                else:
                    image = card[10:] if card[8:10] == "= " else None
                keyword = keyword.upper()
                if keyword not in index:
                    index[keyword] = None if keyword in _COMMENTARY else image
            self._index = index
        return self._index

    def __getitem__(self, key: str) -> Any:
        name = _name(key)
        try:
            value = self._values[name]
        except KeyError:
            value = self._values[name] = self._parse(name)
        if value is _DELETED:
            raise KeyError(key)
        return value

    def _parse(self, name: str) -> Any:
        image = self._image(name)  # KeyError if there is no such card
        if image is not None and name not in _COMMENTARY:
            value = _value(image)
            if value is not _DELETED and not (isinstance(value, str) and value.endswith("&")):
                return value
        return self._astropy_header()[name]

    def _order(self) -> dict[str, None]:
        if self._keys is None:
            self._keys = dict.fromkeys(self._listed())
            for name, value in self._values.items():
                if value is _DELETED:
                    self._keys.pop(name, None)
                else:
                    self._keys[name] = None
        return self._keys

    def _astropy_header(self) -> Any:
        if self._astropy is None:
            from astropy.io import fits

            self._astropy = fits.Header.fromstring(self._text)
        return self._astropy

    def __setitem__(self, key: str, value: Any) -> None:
        name = _name(key)
        if self._keys is not None:
            self._keys[name] = None
        self._values[name] = value

    def __delitem__(self, key: str) -> None:
        name = _name(key)
        if name not in self:
            raise KeyError(key)
        if self._keys is not None:
            del self._keys[name]
        self._values[name] = _DELETED

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = _name(key)
        if name in self._values:
            return self._values[name] is not _DELETED
        try:
            self._image(name)
        except KeyError:
            return False
        return True

    def __copy__(self) -> Cards:
        copied = Cards.__new__(Cards)
        copied._text, copied._index, copied._astropy = self._text, self._index, self._astropy
        copied._keys = None if self._keys is None else {**self._keys}
        copied._values = {**self._values}
        return copied

    def __iter__(self) -> Iterator[str]:
        return iter(self._order())

    def __len__(self) -> int:
        return len(self._order())


def _name(key: str) -> str:
    name = key.upper()
    return name[9:].strip() if name.startswith("HIERARCH ") else name


def _value(image: str) -> Any:
    """A card's value from its text after ``= ``; ``_DELETED`` where astropy must parse it."""
    if "'" in image:
        match = _STRING.match(image)
        if match is None:
            return _DELETED
        return match.group(1).replace("''", "'").rstrip()
    text = image.partition("/")[0].strip()
    if text == "T":
        return True
    if text == "F":
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text.replace("D", "E").replace("d", "e"))
    return _DELETED


def read_primary_cards(path: str | os.PathLike[str]) -> Cards:
    """The primary header of the FITS file at ``path``; ValueError if it has none."""
    with open(path, "rb") as file:
        data = file.read(BLOCK * 4)
        if not data.startswith(b"SIMPLE  ="):
            raise ValueError("it is not a FITS file (it does not start with SIMPLE)")
        scanned = 0
        while True:
            end = _find_end(data, scanned)
            if end is not None:
                return Cards(data[:end].decode("ascii", "replace"))
            scanned = len(data) - len(data) % _CARD
            more = file.read(BLOCK * 16)
            if not more:
                raise ValueError("its primary header has no END card")
            data += more


def _find_end(data: bytes, start: int) -> int | None:
    """The offset just past the END card (on a card boundary), or None."""
    for match in _END.finditer(data, start):
        if match.start() % _CARD == 0:
            return match.start() + _CARD
    return None
