"""Skymap definitions and the dataset types that use them: checks, and their IR.

``skymap NAME { ... }`` is a rings skymap (``rings N`` plus parameters) or a
discrete one (``tract RA, DEC radius R`` lines plus parameters). Each parameter is
checked by name, count, type, unit and range here; the runtime
(``butler.skymap``) builds the same geometry from the IR's numbers. A dataset
type's ``skymap NAME patch FORM`` (or its block's ``use skymap``) is checked
against its keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .diagnostics import Diagnostic, Note, Span, did_you_mean
from .model import DatasetDef, KeyDef, Literal, SkyMapDef, SkyMapUse, SkyParameter

__all__ = ["PARAMETERS", "PATCH_FORMS", "check_skymap", "check_skymap_use", "default_patch_form"]

PATCH_FORMS = ("gen2", "index")

# Degrees per unit, and arcseconds per unit.
_DEGREES = {"deg": 1.0, "arcmin": 60.0, "arcsec": 3600.0}


@dataclass(frozen=True)
class Parameter:
    """One skymap parameter: how many values, of which type, in which unit, and its range."""

    count: tuple[int, ...]
    kind: str  # "int", "number" or "str"
    check: Callable[[Any], str | None]
    unit: str | None = None  # the unit a bare number is in ("deg", "arcsec"); None: no unit
    rings_only: bool = False
    doc: str = ""


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be positive"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _version(value: int) -> str | None:
    return None if value in (0, 1) else "must be 0 or 1"


def _projection(value: str) -> str | None:
    ok = len(value) == 3 and value.isalpha() and value.isupper()
    return None if ok else "must be a three-letter FITS projection code such as TAN or STG"


def _ra_start(value: float) -> str | None:
    return None if 0.0 <= value < 360.0 else "must be in [0, 360) degrees"


#: Every skymap parameter, with the defaults lsst.skymap uses when one is not given.
PARAMETERS: Mapping[str, Parameter] = {
    "rings": Parameter((1,), "int", _positive, rings_only=True, doc="declination rings"),
    "version": Parameter((1,), "int", _version, rings_only=True, doc="tract numbering, 1"),
    "ra_start": Parameter((1,), "number", _ra_start, "deg", True, "first tract's RA, 0 deg"),
    "projection": Parameter((1,), "str", _projection, doc='FITS code, "STG"'),
    "pixel_scale": Parameter((1,), "number", _positive, "arcsec", doc="0.333 arcsec"),
    "tract_overlap": Parameter((1,), "number", _not_negative, "deg", doc="1 deg"),
    "patch_inner": Parameter((1, 2), "int", _positive, doc="width[, height] pixels, 4000"),
    "patch_border": Parameter((1,), "int", _not_negative, doc="pixels, 100"),
    "cells": Parameter((4,), "int", _not_negative, doc="inner, border, per patch, in border"),
}

_DEFAULTS: dict[str, Any] = {
    "num_rings": 0,
    "version": 1,
    "ra_start": 0.0,
    "projection": "STG",
    "pixel_scale": 0.333,
    "tract_overlap": 1.0,
    "patch_inner": [4000, 4000],
    "patch_border": 100,
    "cells": None,
    "tracts": [],
}


_TRACT_CHECKS: Mapping[str, Callable[[float], bool]] = {
    "ra": lambda v: 0.0 <= v <= 360.0,
    "dec": lambda v: -90.0 <= v <= 90.0,
    "radius": lambda v: v > 0.0,
}


def _number(literal: Literal, kind: str) -> float | int | str | None:
    if kind == "str":
        return literal.value if literal.kind == "str" else None
    if literal.kind == "int":
        return int(literal.value)
    if literal.kind == "float" and kind == "number":
        return float(literal.value)
    return None


def _converted(value: float, written: str, wanted: str) -> float:
    """``value`` in unit ``written`` as unit ``wanted`` (both angles)."""
    if written == wanted:
        return float(value)
    if wanted == "arcsec":
        return value * (3600.0 / _DEGREES[written])
    return value / _DEGREES[written]


class _SkyMapChecker:
    def __init__(self, definition: SkyMapDef) -> None:
        self.definition = definition
        self.diagnostics: list[Diagnostic] = []
        self.label = f"skymap '{definition.name.value}'"

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, "error", message, span, hint))

    def parameter(self, parameter: SkyParameter, spec: Parameter) -> list[Any] | None:
        name = parameter.name.value
        if len(parameter.values) not in spec.count:
            counts = " or ".join(str(c) for c in spec.count)
            self.error(
                "BC026",
                f"{self.label}: '{name}' takes {counts} value(s), not {len(parameter.values)}",
                parameter.span,
                f"{name}: {spec.doc}",
            )
            return None
        if parameter.unit is not None and spec.unit is None:
            self.error(
                "BC026",
                f"{self.label}: '{name}' takes no unit",
                parameter.unit.span,
                f"remove '{parameter.unit.value}'",
            )
            return None
        values = []
        for literal in parameter.values:
            value = _number(literal, spec.kind)
            if value is None:
                wanted = {"int": "an integer", "number": "a number", "str": "a string"}
                self.error(
                    "BC026",
                    f"{self.label}: '{name}' must be {wanted[spec.kind]}, not {literal.value!r}",
                    literal.span,
                )
                return None
            if spec.unit is not None:
                written = parameter.unit.value if parameter.unit is not None else spec.unit
                assert isinstance(value, int | float)
                value = _converted(value, written, spec.unit)
            problem = spec.check(value)
            if problem is not None:
                shown = f"{literal.value}" + (f" {parameter.unit.value}" if parameter.unit else "")
                self.error("BC026", f"{self.label}: '{name}' {problem}, not {shown}", literal.span)
                return None
            values.append(value)
        return values

    def tracts(self) -> list[list[float]]:
        found = []
        for tract in self.definition.tracts:
            numbers = []
            for literal, what in ((tract.ra, "ra"), (tract.dec, "dec"), (tract.radius, "radius")):
                value = _number(literal, "number")
                wanted = {"ra": "in [0, 360]", "dec": "in [-90, 90]", "radius": "positive"}[what]
                if value is None or not _TRACT_CHECKS[what](float(value)):
                    self.error(
                        "BC026",
                        f"{self.label}: a tract's {what} must be {wanted} degrees, "
                        f"not {literal.value!r}",
                        literal.span,
                    )
                    break
                numbers.append(float(value))
            else:
                found.append(numbers)
        return found

    def run(self) -> dict[str, Any] | None:
        definition = self.definition
        given: dict[str, list[Any]] = {}
        seen: dict[str, Span] = {}
        ok = True
        rings = any(p.name.value == "rings" for p in definition.parameters)
        for parameter in definition.parameters:
            name = parameter.name.value
            spec = PARAMETERS.get(name)
            if spec is None:
                self.error(
                    "BC026",
                    f"{self.label}: unknown parameter '{name}'",
                    parameter.name.span,
                    did_you_mean(name, PARAMETERS)
                    or f"skymap parameters are {', '.join(PARAMETERS)}",
                )
                ok = False
                continue
            if name in seen:
                self.diagnostics.append(
                    Diagnostic(
                        "BC009",
                        "error",
                        f"'{name}' is given twice in {self.label}",
                        parameter.span,
                        "keep one of them",
                        (Note("first given here", seen[name]),),
                    )
                )
                ok = False
                continue
            seen[name] = parameter.span
            if spec.rings_only and not rings:
                self.error(
                    "BC026",
                    f"{self.label}: '{name}' applies to rings skymaps only",
                    parameter.name.span,
                    "a discrete skymap lists its tracts with 'tract RA, DEC radius R'",
                )
                ok = False
                continue
            values = self.parameter(parameter, spec)
            if values is None:
                ok = False
            else:
                given[name] = values
        if rings and definition.tracts:
            self.error(
                "BC026",
                f"{self.label} has both 'rings' and 'tract' lines",
                definition.tracts[0].span,
                "a rings skymap computes its tracts; remove the 'tract' lines, or 'rings'",
            )
            ok = False
        if not rings and not definition.tracts:
            self.error(
                "BC026",
                f"{self.label} has neither 'rings N' nor 'tract RA, DEC radius R' lines",
                definition.name.span,
                "add 'rings 120' for a rings skymap, or one 'tract' line per tract",
            )
            ok = False
        if "cells" in given and ("patch_inner" in given or "patch_border" in given):
            self.error(
                "BC026",
                f"{self.label}: 'cells' fixes the patch size and border; "
                "'patch_inner' and 'patch_border' cannot be given with it",
                seen["cells"],
            )
            ok = False
        if "cells" in given and (given["cells"][0] <= 0 or given["cells"][2] <= 0):
            self.error(
                "BC026",
                f"{self.label}: 'cells' needs a positive cell size and cells per patch",
                seen["cells"],
            )
            ok = False
        tracts = self.tracts()
        if not ok or len(tracts) != len(definition.tracts):
            return None
        return _ir(definition, given, tracts, rings)


def _ir(
    definition: SkyMapDef, given: Mapping[str, list[Any]], tracts: list[list[float]], rings: bool
) -> dict[str, Any]:
    ir: dict[str, Any] = {
        "name": definition.name.value,
        "kind": "rings" if rings else "discrete",
        "doc": definition.doc or "",
        **_DEFAULTS,
        "tracts": tracts,
    }
    for name, values in given.items():
        if name == "rings":
            ir["num_rings"] = values[0]
        elif name == "patch_inner":
            ir["patch_inner"] = [values[0], values[-1]]
        elif name == "cells":
            ir["cells"] = list(values)
            inner = values[0] * values[2]
            ir["patch_inner"] = [inner, inner]
            ir["patch_border"] = values[3] * values[0] + values[1]
        else:
            ir[name] = values[0]
    return ir


def check_skymap(definition: SkyMapDef) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """A skymap definition's IR (None when it has errors) and its diagnostics."""
    checker = _SkyMapChecker(definition)
    ir = checker.run()
    return ir, checker.diagnostics


def default_patch_form(patch: KeyDef | None) -> str:
    """How a patch is written when the policy does not say: as its key's type suggests."""
    if patch is not None and patch.type.name.value == "int":
        return "index"
    return "gen2"


def check_skymap_use(
    dataset: DatasetDef,
    use: SkyMapUse,
    keys: Mapping[str, KeyDef],
    skymaps: Mapping[str, SkyMapDef],
) -> tuple[dict[str, str] | None, list[Diagnostic]]:
    """The IR of a dataset type's skymap (``{"name", "patch"}``) and its diagnostics."""
    found: list[Diagnostic] = []
    label = f"{dataset.kind} '{dataset.name.value}'"
    listed = {k.value: k for k in dataset.keys or ()}

    def error(code: str, message: str, span: Span, hint: str | None = None) -> None:
        found.append(Diagnostic(code, "error", message, span, hint))

    name = use.skymap.value
    if name not in skymaps:
        error(
            "BC025",
            f"unknown skymap '{name}' in {label}",
            use.skymap.span,
            did_you_mean(name, skymaps) or "define it with 'skymap NAME { ... }'",
        )
    if "tract" not in listed:
        where = listed["patch"].span if "patch" in listed else use.span
        what = "has a 'patch' key but no 'tract' key" if "patch" in listed else "has no 'tract' key"
        error(
            "BC027",
            f"{label} {what}: a patch is only known within its tract of skymap '{name}'",
            where,
            "add 'tract' to its keys"
            + ("" if "patch" in listed else ", or remove the 'skymap' clause"),
        )
    tract_key = keys.get("tract")
    if "tract" in listed and tract_key is not None and tract_key.type.name.value != "int":
        error(
            "BC028",
            f"{label}: skymap tracts are numbered, but key 'tract' is {tract_key.type.name.value}",
            listed["tract"].span,
            "declare 'key tract: int'",
        )
    patch_key = keys.get("patch")
    form = default_patch_form(patch_key)
    if use.patch is not None:
        form = use.patch.value
        if form not in PATCH_FORMS:
            error(
                "BC028",
                f"unknown patch form '{form}' in {label}",
                use.patch.span,
                did_you_mean(form, PATCH_FORMS) or "write 'patch gen2' or 'patch index'",
            )
            return None, found
    if "patch" in listed and patch_key is not None:
        wanted = "str" if form == "gen2" else "int"
        actual = patch_key.type.name.value
        if actual != wanted:
            shown = '"x,y" text' if form == "gen2" else "an integer index"
            error(
                "BC028",
                f"{label}: 'patch {form}' writes the patch as {shown}, but key 'patch' is {actual}",
                use.patch.span if use.patch is not None else use.span,
                f"write 'patch {'index' if actual == 'int' else 'gen2'}', or declare "
                f"'key patch: {wanted}'",
            )
    if any(d.is_error for d in found):
        return None, found
    return {"name": name, "patch": form}, found
