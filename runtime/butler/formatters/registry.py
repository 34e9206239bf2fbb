"""Which formatter a format name means: the built-ins plus plug-ins.

A :class:`FormatterRegistry` is an ordinary object the caller builds and owns;
there is no module-level registry. ``FormatterRegistry.default()`` holds the
built-in formatters (``fits``, ``hdf5``, ``yaml``, ``json``, ``ecsv``, ``text``,
``pickle``) and every formatter advertised in the ``butler.formatters``
entry-point group. Plug-ins are imported lazily, the first time their name is
asked for, so a broken plug-in only fails the datasets that use it.

Writing a formatter plug-in
---------------------------
1. Subclass :class:`butler.formatters.Formatter`, set ``name`` and implement
   ``write`` and ``read`` (and, if the format can, ``read_metadata``,
   ``read_section``, ``read_table_info``). Raise
   :class:`butler.errors.FormatError` for objects you cannot write and files
   you cannot read, naming the file::

       # my_package/zarr_formatter.py
       from pathlib import Path
       from butler.errors import FormatError
       from butler.formatters import Formatter

       class ZarrFormatter(Formatter):
           name = "zarr"

           def write(self, obj, path: Path, *, hdu=None, compress=None) -> None: ...
           def read(self, path: Path, *, python_type=None, hdu=None) -> object: ...

   If the format's library can write to a Python file object, also implement
   ``write_stream(obj, stream, *, hdu=None, compress=None)`` and set
   ``writes_streams = True``: Butler then records the file's checksum from the bytes
   as they are written, instead of reading the file once more after ``write``.

2. Advertise it in your package's ``pyproject.toml``; the entry-point name must
   equal the formatter's ``name``, and it may point at the class (instantiated
   with no arguments) or at an instance::

       [project.entry-points."butler.formatters"]
       zarr = "my_package.zarr_formatter:ZarrFormatter"

3. Install the package; policies can now say ``formatter zarr``.

To add a formatter without a package (in a test, a notebook or a pipeline),
register an instance on the registry you use: ``registry.register(ZarrFormatter())``.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import FormatError
from .base import Formatter

if TYPE_CHECKING:  # importlib.metadata loads when entry points are made or scanned
    from importlib.metadata import EntryPoint

__all__ = ["ENTRY_POINT_GROUP", "FormatterRegistry"]

#: The entry-point group plug-in packages advertise their formatters in.
ENTRY_POINT_GROUP = "butler.formatters"


#: The built-in formatters, loaded like plug-ins: a module is imported (with
#: astropy or h5py behind it) only when a dataset of its format is first used.
BUILTINS = {
    "fits": "butler.formatters.fits:FitsFormatter",
    "hdf5": "butler.formatters.hdf5:Hdf5Formatter",
    "yaml": "butler.formatters.yaml_format:YamlFormatter",
    "json": "butler.formatters.json_format:JsonFormatter",
    "ecsv": "butler.formatters.ecsv:EcsvFormatter",
    "text": "butler.formatters.text:TextFormatter",
    "pickle": "butler.formatters.pickle_format:PickleFormatter",
}


def builtin_entry_points() -> tuple[EntryPoint, ...]:
    """The built-in formatters as entry points, so they load on first use."""
    from importlib.metadata import EntryPoint

    return tuple(
        EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
        for name, value in BUILTINS.items()
    )


def builtin_formatters() -> tuple[Formatter, ...]:
    """One instance of each built-in formatter (imports every format's library)."""
    return tuple(_load(ep) for ep in builtin_entry_points())


class FormatterRegistry:
    """Formatters by name: registered instances plus lazily loaded entry points."""

    __slots__ = ("_formatters", "_lock", "_pending")

    def __init__(
        self, formatters: Iterable[Formatter] = (), *, plugins: Iterable[EntryPoint] = ()
    ) -> None:
        self._formatters: dict[str, Formatter] = {}
        self._pending: dict[str, EntryPoint] = {}
        self._lock = threading.Lock()
        for formatter in formatters:
            self.register(formatter)
        for ep in plugins:  # a built-in or an explicit formatter wins over a plug-in
            if ep.name not in self._formatters:
                self._pending.setdefault(ep.name, ep)

    @classmethod
    def default(cls, *, group: str = ENTRY_POINT_GROUP) -> FormatterRegistry:
        """The built-ins plus the formatters installed packages advertise in ``group``."""
        from importlib.metadata import entry_points

        return cls(plugins=(*builtin_entry_points(), *entry_points(group=group)))

    def register(self, formatter: Formatter, *, replace: bool = False) -> None:
        """Add ``formatter`` under its ``name``; an existing name needs ``replace=True``."""
        if not isinstance(formatter, Formatter):
            raise FormatError(
                f"only Formatter instances can be registered, not {type(formatter).__qualname__}"
            )
        name = getattr(formatter, "name", None)
        if not isinstance(name, str) or not name:
            raise FormatError(f"{type(formatter).__qualname__} has no name (set `name = '...'`)")
        with self._lock:
            if not replace and (name in self._formatters or name in self._pending):
                raise FormatError(
                    f"a formatter named {name!r} is already registered; pass replace=True"
                )
            self._pending.pop(name, None)
            self._formatters[name] = formatter

    def get(self, name: str) -> Formatter:
        """The formatter called ``name``, loading its plug-in if need be."""
        with self._lock:
            formatter = self._formatters.get(name)
            if formatter is not None:
                return formatter
            ep = self._pending.get(name)
            if ep is None:
                raise FormatError(self._unknown(name))
            formatter = _load(ep)
            del self._pending[name]
            self._formatters[name] = formatter
            return formatter

    def names(self) -> tuple[str, ...]:
        """Every formatter name, loaded or not, sorted."""
        with self._lock:
            return tuple(sorted({*self._formatters, *self._pending}))

    def __contains__(self, name: object) -> bool:
        return name in self._formatters or name in self._pending

    def __repr__(self) -> str:
        return f"FormatterRegistry({', '.join(self.names())})"

    def _unknown(self, name: str) -> str:
        known = sorted({*self._formatters, *self._pending})
        message = f"unknown formatter {name!r}"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        return message + (
            f" (known: {', '.join(known)}). No installed package provides the {name!r} "
            f"formatter plug-in: install one that advertises {name!r} in the "
            f"{ENTRY_POINT_GROUP!r} entry-point group (pip install PACKAGE), or register a "
            "Formatter instance on the Butler's formatter registry "
            "(butler.formatters.register(...); see butler.formatters.registry)"
        )


def _load(ep: EntryPoint) -> Formatter:
    where = f"entry point '{ep.name} = {ep.value}' in group '{ep.group}'"
    try:
        obj = ep.load()
        formatter = obj() if isinstance(obj, type) and issubclass(obj, Formatter) else obj
    except Exception as exc:
        raise FormatError(
            f"formatter plug-in {ep.name!r} failed to load ({where}): {exc!r}"
        ) from exc
    if not isinstance(formatter, Formatter):
        raise FormatError(
            f"formatter plug-in {ep.name!r} ({where}) is a {type(formatter).__qualname__}, "
            "not a butler.formatters.Formatter subclass or instance"
        )
    if formatter.name != ep.name:
        raise FormatError(
            f"formatter plug-in {ep.name!r} ({where}) calls itself {formatter.name!r}; "
            "the entry-point name must equal the formatter's name"
        )
    return formatter
