"""Tract and patch keys of the dataset types that declare a skymap.

A policy's ``skymap NAME { ... }`` definitions reach the runtime as
:class:`~butler.spec.SkyMapSpec` data; :class:`SkyIds` builds each skymap on first
use, writes a patch the way its dataset type says (``gen2``: ``"5,4"``; ``index``:
Gen3's ``y * nx + x``) and refuses a tract or patch that is not in the skymap.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .errors import InvalidDataIdError
from .spec import DatasetTypeSpec, SkyMapSpec

if TYPE_CHECKING:
    from .skymap import SkyMap, Tract

__all__ = ["SkyIds"]


def _pair(value: object) -> tuple[int, int] | None:
    """(x, y) from ``(5, 4)``, ``[5, 4]`` or ``"5,4"``; None for anything else."""
    if isinstance(value, tuple | list) and len(value) == 2:
        x, y = value
    elif isinstance(value, str) and value.count(",") == 1:
        x, y = (part.strip() for part in value.split(","))
    else:
        return None
    try:
        return int(x), int(y)
    except (TypeError, ValueError):
        return None


class SkyIds:
    """The skymaps of one instrument, by name, and what they say about data IDs."""

    def __init__(self, specs: tuple[SkyMapSpec, ...], instrument: str) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.instrument = instrument
        self._built: dict[str, SkyMap] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def skymap(self, name: str) -> SkyMap:
        """The skymap the policy defines as ``name`` (built once, then kept)."""
        spec = self.specs.get(name)
        if spec is None:
            from .skymap.errors import UnknownSkyMapError

            close = difflib.get_close_matches(str(name), self.specs, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            defined = ", ".join(sorted(self.specs)) or "none"
            raise UnknownSkyMapError(
                f"instrument {self.instrument}'s policy defines no skymap named {name!r}{hint} "
                f"(it defines: {defined}; add `skymap {name} {{ ... }}` to the policy)"
            )
        with self._lock:
            if name not in self._built:
                from .skymap.defined import from_spec

                self._built[name] = from_spec(spec)
            return self._built[name]

    def _tract(self, dataset: DatasetTypeSpec, tract: object) -> Tract:
        assert dataset.skymap is not None
        skymap = self.skymap(dataset.skymap)
        if isinstance(tract, bool) or not isinstance(tract, int) or not 0 <= tract < len(skymap):
            raise InvalidDataIdError(
                f"tract={tract!r} is not a tract of skymap {dataset.skymap!r} (dataset type "
                f"{dataset.name!r}): its tracts are numbered 0..{len(skymap) - 1}"
            )
        return skymap.tract(tract)

    def convert(self, dataset: DatasetTypeSpec, values: Mapping[str, object]) -> dict[str, object]:
        """``values`` with ``patch`` written as ``dataset``'s skymap writes it.

        ``gen2``: ``(5, 4)`` becomes ``"5,4"``. ``index``: ``"5,4"`` or ``(5, 4)`` becomes
        ``4 * nx + 5``, ``nx`` being the number of patches across the data ID's tract.
        Anything else is left to normalization to judge.
        """
        result = dict(values)
        if dataset.skymap is None or "patch" not in result:
            return result
        given = result["patch"]
        if _pair(given) is None and isinstance(given, list | tuple | set | frozenset):
            # a query's "any of these patches": each converted ([(5, 4), "5,5"])
            if given and all(_pair(item) is not None for item in given):
                result["patch"] = [self._patch(dataset, result, item) for item in given]
            return result
        result["patch"] = self._patch(dataset, result, given)
        return result

    def _patch(
        self, dataset: DatasetTypeSpec, values: Mapping[str, object], given: object
    ) -> object:
        """One patch value written as ``dataset``'s skymap writes it (else as given)."""
        pair = _pair(given)
        if pair is None or (dataset.patch_form == "gen2" and isinstance(given, str)):
            return given
        if dataset.patch_form == "gen2":
            return f"{pair[0]},{pair[1]}"
        if "tract" in values and not isinstance(values["tract"], list | tuple | set | range):
            return self._tract(dataset, values["tract"]).patch(pair).index
        return given

    def check(self, dataset: DatasetTypeSpec, data_id: Mapping[str, object]) -> None:
        """Refuse a data ID whose tract is not in the skymap or whose patch is not in its tract."""
        if dataset.skymap is None or "tract" not in data_id:
            return
        tract = self._tract(dataset, data_id["tract"])
        if "patch" not in data_id:
            return
        patch = data_id["patch"]
        try:
            tract.patch(patch)  # type: ignore[arg-type]
        except InvalidDataIdError as error:
            raise InvalidDataIdError(
                f"patch={patch!r} is not a patch of tract {tract.id} of skymap "
                f"{dataset.skymap!r} (dataset type {dataset.name!r}): {error}"
            ) from None
