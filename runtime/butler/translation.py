"""A header's translated observation properties, computing only the ones asked for.

    translator = Translation()                     # one per ingest (or per worker batch)
    cls, values = translator.translate(header, {"exposure_id", "datetime_begin"}, "f.fits")

astro-metadata-translator's ``ObservationInfo`` does, for each header: find the
translator class, look for a header correction file (``fix_header``: a search of the
correction folders and package resources for ``<instrument>-<obsid>.yaml``), make a
translator, and compute each property asked for. Here the same steps run with what
does not change between files of one ingest done once: each translator class's
correction file names are listed once (a file named like this header's is then
applied by astro-metadata-translator's own ``fix_header``, so corrections are exactly
theirs), the class that translated the last header is asked first, and the
translator's own header fix-ups (``fix_header`` of the class) run as in
``ObservationInfo``. Values are returned as the translator computes them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from importlib import resources
from typing import Any

__all__ = ["REMEMBERED", "Translation", "TranslationError"]

#: The properties whose values are remembered by the cards they come from: astropy Times,
#: the costly ones, equal for all the files of one exposure.
REMEMBERED = frozenset({"datetime_begin", "datetime_end"})
_ABSENT = object()


class TranslationError(ValueError):
    """A header no translator understands, or a property its translator cannot give."""


class Translation:
    """Translates headers, remembering per translator class where its corrections are."""

    def __init__(self) -> None:
        self._corrections: dict[type, frozenset[str]] = {}
        self._last: type | None = None
        # (class, property) -> (the cards it read, {their values: the value})
        self._remembered: dict[
            tuple[type, str], tuple[tuple[str, ...], dict[tuple[Any, ...], Any]]
        ] = {}

    def translator_class(self, header: MutableMapping[str, Any], filename: str | None) -> Any:
        from astro_metadata_translator import MetadataTranslator

        last = self._last
        if last is not None and last.can_translate(header, filename=filename):  # type: ignore[attr-defined]
            return last
        try:
            found = MetadataTranslator.determine_translator(header, filename=filename)
        except ValueError:
            known = ", ".join(MetadataTranslator.translators)
            raise TranslationError(
                f"no metadata translator understands its header (tried {known})"
            ) from None
        self._last = found
        return found

    def translate(
        self, header: MutableMapping[str, Any], properties: Iterable[str], filename: str | None
    ) -> tuple[Any, dict[str, Any]]:
        """The translator class and the values of ``properties`` (fixing ``header`` up)."""
        cls = self.translator_class(header, filename)
        # no file name: translators use it only in log messages, and making it a
        # ResourcePath cost a tenth of the translation
        translator = cls(header, filename=None)
        if self._fix(cls, translator, header, filename):
            translator = cls(header, filename=None)
        values = {}
        for name in properties:
            try:
                if name in REMEMBERED:
                    values[name] = self._remembered_value(cls, name, header)
                else:
                    values[name] = getattr(translator, f"to_{name}")()
            except Exception as error:  # what ObservationInfo turns into a KeyError
                raise TranslationError(
                    f"the {cls.name} translator cannot give {name}: {type(error).__name__}: {error}"
                ) from None
        return cls, values

    def _remembered_value(self, cls: Any, name: str, header: MutableMapping[str, Any]) -> Any:
        """A time property, computed once per distinct set of the cards it is computed from.

        The first time, it is computed by a fresh translator over a header that notes
        which cards are read (a fresh one, so no value cached by an earlier call hides
        a read); later headers with the same values of those cards get the same value.
        """
        entry = self._remembered.get((cls, name))
        if entry is not None:
            cards, known = entry
            signature = tuple(header.get(card, _ABSENT) for card in cards)
            with contextlib.suppress(TypeError):  # a value that cannot be hashed
                if signature in known:
                    return known[signature]
        reading = _Reading(header)
        value = getattr(cls(reading, filename=None), f"to_{name}")()
        cards = tuple(reading.read)
        if reading.whole:
            return value
        signature = tuple(header.get(card, _ABSENT) for card in cards)
        if entry is None or entry[0] != cards:
            entry = self._remembered[(cls, name)] = (cards, {})
        with contextlib.suppress(TypeError):
            entry[1][signature] = value
        return value

    def _fix(
        self, cls: Any, translator: Any, header: MutableMapping[str, Any], filename: str | None
    ) -> bool:
        """``fix_header``, with the search for a correction file answered from a listing."""
        from astro_metadata_translator import fix_header

        try:
            obsid, instrument = translator.to_observation_id(), translator.to_instrument()
        except Exception:  # as fix_header: no correction without them
            return False
        if f"{instrument}-{obsid}.yaml" in self._correction_files(cls, translator):
            return bool(fix_header(header, translator_class=cls, filename=filename))
        try:
            return bool(cls.fix_header(header, instrument, obsid, filename=filename))
        except Exception:  # fix_header logs and ignores these
            return False

    def _correction_files(self, cls: Any, translator: Any) -> frozenset[str]:
        names = self._corrections.get(cls)
        if names is None:
            found: set[str] = set()
            folders = [*os.environ.get("METADATA_CORRECTIONS_PATH", "").split(os.pathsep)]
            for folder in [*folders, *translator.search_paths()]:
                if folder:
                    with contextlib.suppress(OSError):
                        found.update(os.listdir(folder))
            package, root = translator.resource_root()
            if package is not None and root is not None:
                with contextlib.suppress(OSError, ModuleNotFoundError, TypeError):
                    found.update(p.name for p in resources.files(package).joinpath(root).iterdir())
            names = self._corrections[cls] = frozenset(found)
        return names


class _Reading(Mapping[str, Any]):
    """A header that notes the name of every card looked up (present or not)."""

    def __init__(self, header: Mapping[str, Any]) -> None:
        self.header = header
        self.read: dict[str, None] = {}
        self.whole = False

    def __getitem__(self, key: str) -> Any:
        self.read[key] = None
        return self.header[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read[key] = None
        return key in self.header

    def __iter__(self) -> Iterator[str]:  # it may read any card: not to be remembered
        self.whole = True
        return iter(self.header)

    def __len__(self) -> int:
        return len(self.header)
