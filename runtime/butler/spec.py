"""The vocabulary generated mapper modules are written in.

A generated module (``butlerc compile``) is plain data built from these frozen
dataclasses plus one small render function and one precompiled regular
expression per dataset type. It imports nothing but this module and ``re``.
The runtime :class:`butler.Mapper` is built from the module's ``INSTRUMENT``.

``ABI_VERSION`` is the generated-module format this runtime reads. A module
records the ABI it was written for; the runtime refuses any other with a
message that says how to rebuild it.
"""

from __future__ import annotations

import datetime
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "ABI_VERSION",
    "KEY_TYPES",
    "CalibrationSpec",
    "DatasetTypeSpec",
    "Derivation",
    "FieldSpec",
    "FormatSpec",
    "IngestRule",
    "IngestSpec",
    "IngestStep",
    "InstrumentSpec",
    "KeySpec",
    "SkyMapSpec",
    "TableSpec",
    "Value",
    "coerce_value",
    "is_unicode_text",
]

ABI_VERSION = 1

#: The value of one data ID key, after normalization.
Value = int | str | float | bool | datetime.date | datetime.datetime


def coerce_value(type_name: str, value: object) -> Value | None:
    """``value`` as the Python type of key type ``type_name`` (an int passes as a float),
    or None if it is not one. No conversion from text: that is normalization's job."""
    if type_name == "int":
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif type_name == "str":
        if isinstance(value, str):
            return value
    elif type_name == "float":
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    elif type_name == "bool":
        if isinstance(value, bool):
            return value
    elif type_name == "date":
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value
    elif type_name == "datetime" and isinstance(value, datetime.datetime):
        return value if value.tzinfo is None else None
    return None


def is_unicode_text(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (holds no lone surrogate)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: Key type names of the policy language, in the order the docs list them.
KEY_TYPES = ("int", "str", "float", "bool", "date", "datetime")


@dataclass(frozen=True, slots=True)
class Derivation:
    """How a derived key is computed from another key.

    ``function`` is ``"date"`` (the calendar date of a date or datetime key, in
    that key's time scale), ``"same"`` (another name for the same value, filled
    both ways: PhoSim's ``expId`` is its ``visit``) or ``"table"`` (``table``
    maps the source key's value to this key's value; the runtime inverts a
    one-to-one table).
    """

    function: str
    source: str
    table: str | None = None


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One data ID key: its type, its constraints and how its values are normalized."""

    name: str
    type: str
    scale: str | None = None
    doc: str = ""
    aliases: tuple[str, ...] = ()
    minimum: Value | None = None
    maximum: Value | None = None
    choices: tuple[Value, ...] | None = None
    pattern: str | None = None
    allow: tuple[str, ...] = ()
    normalize: tuple[tuple[Value, Value], ...] = ()
    derive: Derivation | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A two-column lookup table: ``key_column`` values map to ``value_column`` values."""

    name: str
    key_column: str
    value_column: str
    rows: tuple[tuple[Value, Value], ...]
    doc: str = ""


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """A file format: the formatter that reads and writes it, and its file names."""

    name: str
    formatter: str
    extensions: tuple[str, ...] = ()
    compressed: tuple[str, ...] = ()
    python_type: str | None = None
    hdus: bool = False
    unsafe: bool = False
    doc: str = ""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One replacement field of a template: the key and its format spec (``"07d"``)."""

    key: str
    spec: str = ""


@dataclass(frozen=True, slots=True)
class CalibrationSpec:
    """How a calibration is found for an observation.

    ``match`` keys must equal the observation's; ``valid_by`` is the date or
    datetime key whose value (taken from the ``observation`` dataset type's
    records) selects the validity range; ``resolve`` names the rule that picks
    one of several valid calibrations (``None``: ambiguity is an error).
    """

    match: tuple[str, ...]
    valid_by: str
    observation: str = "raw"
    resolve: str | None = None


@dataclass(frozen=True, slots=True)
class IngestStep:
    """One conversion of an ingest rule, by name (``"utc_date"``), with its argument."""

    step: str
    argument: str | None = None


@dataclass(frozen=True, slots=True)
class IngestRule:
    """``key <- source | steps``: where ingest reads one key, and how it converts it.

    ``source`` is an ``ObservationInfo`` property (``"exposure_id"``), ``"header"``
    (the card named by ``argument``, read as it is), ``"hdu"`` (the index of the
    HDU the data ID is for), ``"filename"`` (the file's name without folders),
    ``"format"`` (header cards put together by the format ``argument``) or
    ``"const"`` (``argument`` itself, parsed as the key's type).
    """

    key: str
    source: str
    argument: str | None = None
    steps: tuple[IngestStep, ...] = ()


@dataclass(frozen=True, slots=True)
class IngestSpec:
    """How ``butler ingest`` reads a file's data ID for one dataset type.

    ``translated`` are the ``ObservationInfo.instrument`` values its files
    translate to; headers are translated only when a rule reads a property.
    """

    translated: tuple[str, ...]
    rules: tuple[IngestRule, ...]
    doc: str = ""


@dataclass(frozen=True, slots=True)
class SkyMapSpec:
    """A skymap as the policy defines it: plain numbers, built into a
    :class:`butler.skymap.SkyMap` on first use (``Mapper.skymap``).

    ``kind`` is ``"rings"`` (``num_rings`` rings, ``version`` numbering, first tract at
    ``ra_start``) or ``"discrete"`` (``tracts``: (ra, dec, radius) each). Angles are
    degrees, ``pixel_scale`` arcseconds, patch sizes pixels; ``cells`` (cell inner size,
    cell border, cells per patch, cells in the patch border) selects lsst.skymap's
    "cells" patches, which fix ``patch_inner`` and ``patch_border``.
    """

    name: str
    kind: str
    num_rings: int = 0
    version: int = 1
    ra_start: float = 0.0
    projection: str = "STG"
    pixel_scale: float = 0.333
    tract_overlap: float = 1.0
    patch_inner: tuple[int, int] = (4000, 4000)
    patch_border: int = 100
    cells: tuple[int, int, int, int] | None = None
    tracts: tuple[tuple[float, float, float], ...] = ()
    doc: str = ""


@dataclass(frozen=True, slots=True)
class DatasetTypeSpec:
    """A dataset type: where its files live and which keys identify one."""

    name: str
    template: str
    format: str
    keys: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    render: Callable[[Mapping[str, Value]], str]
    pattern: re.Pattern[str]
    lookup: tuple[str, ...] = ()
    lookup_from: str | None = None
    hdu: int | str | None = None
    shares_path_with: tuple[str, ...] = ()
    allow_unsafe: bool = False
    calibration: CalibrationSpec | None = None
    doc: str = ""
    ingest: IngestSpec | None = None
    skymap: str | None = None
    """The skymap (of ``InstrumentSpec.skymaps``) its ``tract``/``patch`` keys belong to."""
    patch_form: str = "gen2"
    """How its ``patch`` is written: ``"gen2"`` ("x,y") or ``"index"`` (y * nx + x)."""


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """Everything a generated mapper module declares about one instrument."""

    name: str
    title: str
    keys: tuple[KeySpec, ...]
    tables: tuple[TableSpec, ...]
    formats: tuple[FormatSpec, ...]
    dataset_types: tuple[DatasetTypeSpec, ...]
    doc: str = ""
    abi_version: int = ABI_VERSION
    compiler_version: str = ""
    source: str = ""
    source_sha256: str = ""
    skymaps: tuple[SkyMapSpec, ...] = ()
