"""An instrument's spec written back as policy text, and dataset types built from IR.

The runtime checks definitions added at run time (new dataset types, overrides)
with the compiler's own rules (:func:`butlerc.extend.extend`), which reads
policy text. A loaded mapper module holds an :class:`~butler.spec.InstrumentSpec`,
not its policy, so :func:`members` writes the spec's keys, tables, formats and
dataset types back in the policy language. :func:`dataset_type` and :func:`key`
go the other way, from the IR the compiler returns to the runtime's specs.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .spec import (
    CalibrationSpec,
    DatasetTypeSpec,
    FieldSpec,
    FormatSpec,
    InstrumentSpec,
    KeySpec,
    SkyMapSpec,
    Value,
)

__all__ = [
    "dataset_type",
    "dataset_type_text",
    "format_spec",
    "format_text",
    "key",
    "key_text",
    "members",
    "string",
]


def string(text: str) -> str:
    """A policy string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t") + '"'


def _pattern(text: str) -> str:
    return f'r"{text}"' if '"' not in text and "\n" not in text else string(text)


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, datetime.datetime | datetime.date):
        return string(value.isoformat())
    return string(str(value))


def _names(names: Iterable[str]) -> str:
    return ", ".join(names)


def _doc(doc: str, indent: str) -> list[str]:
    return [f"{indent}doc {string(doc)}"] if doc else []


def _key(spec: KeySpec) -> list[str]:
    line = f"key {spec.name}: {spec.type}{' ' + spec.scale if spec.scale else ''}"
    if spec.minimum is not None and spec.maximum is not None:
        line += f" in {_literal(spec.minimum)}..{_literal(spec.maximum)}"
    if spec.choices is not None:
        line += " one of " + " ".join(_literal(c) for c in spec.choices)
    if spec.pattern is not None:
        line += f" matches {_pattern(spec.pattern)}"
    for allowed in spec.allow:
        line += f" allow {string(allowed)}"
    if spec.aliases:
        line += f" alias {_names(spec.aliases)}"
    if spec.derive is not None:
        function = "date" if spec.derive.function == "date" else spec.derive.table
        line += f" = {function}({spec.derive.source})"
    lines = [line, *_doc(spec.doc, "    ")]
    if spec.normalize:
        lines.append(f"normalize {spec.name} {{")
        lines += [f"    {_literal(a)} -> {_literal(b)}" for a, b in spec.normalize]
        lines.append("}")
    return lines


def key_text(spec: KeySpec) -> str:
    """One ``key`` definition (and its ``normalize`` block) in the policy language."""
    return "\n".join(_key(spec))


def _tables(spec: InstrumentSpec) -> list[str]:
    types = {k.name: k.type for k in spec.keys}
    columns: dict[str, tuple[str, str]] = {}
    for k in spec.keys:
        if k.derive is not None and k.derive.table is not None:
            columns.setdefault(k.derive.table, (types[k.derive.source], k.type))
    lines = []
    for table in spec.tables:
        left, right = columns.get(table.name, ("str", "str"))
        lines.append(
            f"table {table.name}({table.key_column}: {left}, {table.value_column}: {right}) {{"
        )
        lines += [f"    {_literal(a)} -> {_literal(b)}" for a, b in table.rows]
        lines.append("}" + (f" doc {string(table.doc)}" if table.doc else ""))
    return lines


def format_text(spec: FormatSpec) -> str:
    """One ``format`` definition in the policy language."""
    return "\n".join(_format(spec))


def format_spec(entry: Mapping[str, Any]) -> FormatSpec:
    """The runtime spec of one IR ``formats`` entry."""
    return FormatSpec(
        name=entry["name"],
        formatter=entry["formatter"],
        extensions=tuple(entry.get("extensions") or ()),
        compressed=tuple(entry.get("compressed") or ()),
        python_type=entry.get("python_type"),
        hdus=bool(entry.get("hdus")),
        unsafe=bool(entry.get("unsafe")),
        doc=entry.get("doc") or "",
    )


def _format(spec: FormatSpec) -> list[str]:
    lines = [f"format {spec.name} {{", f"    formatter {spec.formatter}"]
    if spec.extensions:
        lines.append("    extensions " + " ".join(string(e) for e in spec.extensions))
    if spec.compressed:
        lines.append("    compressed " + " ".join(string(c) for c in spec.compressed))
    if spec.python_type:
        lines.append(f"    python {string(spec.python_type)}")
    if spec.hdus:
        lines.append("    hdus")
    if spec.unsafe:
        lines.append("    unsafe")
    return [*lines, *_doc(spec.doc, "    "), "}"]


def dataset_type_text(
    name: str,
    *,
    template: str,
    format: str,
    keys: Iterable[str],
    doc: str = "",
    lookup: Iterable[str] = (),
    lookup_from: str | None = None,
    hdu: int | str | None = None,
    shares_path_with: Iterable[str] = (),
    allow_unsafe: bool = False,
    calibration: CalibrationSpec | None = None,
    override: bool = False,
    skymap: str | None = None,
    patch_form: str = "gen2",
) -> str:
    """One ``dataset`` (or ``calibration``) definition in the policy language."""
    kind = "calibration" if calibration is not None else "dataset"
    key_list = list(keys)
    lines = [f"{'override ' if override else ''}{kind} {name} {{", *_doc(doc, "    ")]
    lines.append(f"    template {string(template)}")
    lines.append(f"    format {format}")
    lines.append(f"    keys {_names(key_list)}" if key_list else "    keys ()")
    lookup_keys = list(lookup)
    if lookup_keys and lookup_from:
        lines.append(f"    lookup {_names(lookup_keys)} from {lookup_from}")
    if hdu is not None:
        lines.append(f"    hdu {hdu}")
    shares = list(shares_path_with)
    if shares:
        lines.append(f"    shares path with {_names(shares)}")
    if allow_unsafe:
        lines.append("    allow unsafe")
    if skymap is not None:
        lines.append(f"    skymap {skymap} patch {patch_form}")
    if calibration is not None:
        lines.append(f"    match {_names(calibration.match)}")
        lines.append(f"    valid by {calibration.valid_by} from {calibration.observation}")
        if calibration.resolve:
            lines.append(f"    resolve {calibration.resolve}")
    return "\n".join([*lines, "}"])


def _dataset(spec: DatasetTypeSpec) -> str:
    return dataset_type_text(
        spec.name,
        template=spec.template,
        format=spec.format,
        keys=spec.keys,
        doc=spec.doc,
        lookup=spec.lookup,
        lookup_from=spec.lookup_from,
        hdu=spec.hdu,
        shares_path_with=spec.shares_path_with,
        allow_unsafe=spec.allow_unsafe,
        calibration=spec.calibration,
        skymap=spec.skymap,
        patch_form=spec.patch_form,
    )


def _float(value: float) -> str:
    """A float as a policy literal (which always has a ``.``: ``1.0e-05``, not ``1e-05``)."""
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + (f"e{exponent}" if exponent else "")


def skymap_text(spec: SkyMapSpec) -> str:
    """One ``skymap`` definition in the policy language."""
    lines = [f"skymap {spec.name} {{", *_doc(spec.doc, "    ")]
    if spec.kind == "rings":
        lines += [
            f"    rings {spec.num_rings}",
            f"    version {spec.version}",
            f"    ra_start {_float(spec.ra_start)}",
        ]
    lines += [
        f"    tract {_float(ra)}, {_float(dec)} radius {_float(radius)}"
        for ra, dec, radius in spec.tracts
    ]
    lines += [
        f"    projection {string(spec.projection)}",
        f"    pixel_scale {_float(spec.pixel_scale)} arcsec",
        f"    tract_overlap {_float(spec.tract_overlap)} deg",
    ]
    if spec.cells is not None:
        lines.append(f"    cells {', '.join(map(str, spec.cells))}")
    else:
        lines.append(f"    patch_inner {spec.patch_inner[0]}, {spec.patch_inner[1]}")
        lines.append(f"    patch_border {spec.patch_border}")
    return "\n".join([*lines, "}"])


def members(spec: InstrumentSpec) -> str:
    """The instrument's keys, tables, formats and dataset types as policy members."""
    lines: list[str] = []
    lines += _tables(spec)
    for k in spec.keys:
        lines += _key(k)
    for f in spec.formats:
        lines += _format(f)
    lines += [skymap_text(m) for m in spec.skymaps]
    lines += [_dataset(d) for d in spec.dataset_types]
    return "\n".join(lines)


# ---- from the IR back to specs ------------------------------------------------------------


def _renderer(
    segments: list[dict[str, str]], types: Mapping[str, str]
) -> Callable[[Mapping[str, Value]], str]:
    """The render function of a template: what generated modules spell as an f-string."""
    parts: list[tuple[str, str, bool]] = []  # (text or key, spec, is_field)
    for segment in segments:
        if "text" in segment:
            parts.append((segment["text"], "", False))
        else:
            parts.append((segment["key"], segment["spec"], True))

    def render(d: Mapping[str, Value]) -> str:
        out = []
        for text, spec, is_field in parts:
            if not is_field:
                out.append(text)
                continue
            value = d[text]
            if not spec and types.get(text) == "datetime":
                out.append(value.isoformat())  # type: ignore[union-attr]
            else:
                out.append(format(value, spec))
        return "".join(out)

    return render


def dataset_type(entry: Mapping[str, Any], types: Mapping[str, str]) -> DatasetTypeSpec:
    """The runtime spec of one IR ``dataset_types`` entry; ``types`` maps key → type name."""
    calibration = entry.get("calibration")
    hdu = entry.get("hdu")
    return DatasetTypeSpec(
        name=entry["name"],
        template=entry["template"],
        format=entry["format"],
        keys=tuple(entry["keys"]),
        fields=tuple(FieldSpec(s["key"], s["spec"]) for s in entry["segments"] if "key" in s),
        render=_renderer(entry["segments"], types),
        pattern=re.compile(entry["pattern"]),
        lookup=tuple(entry.get("lookup") or ()),
        lookup_from=entry.get("lookup_from"),
        hdu=hdu,
        shares_path_with=tuple(entry.get("shares_path_with") or ()),
        allow_unsafe=bool(entry.get("allow_unsafe")),
        calibration=None
        if not calibration
        else CalibrationSpec(
            match=tuple(calibration["match"]),
            valid_by=calibration["valid_by"],
            observation=calibration.get("observation") or "raw",
            resolve=calibration.get("resolve"),
        ),
        doc=entry.get("doc") or "",
        skymap=(entry.get("skymap") or {}).get("name"),
        patch_form=(entry.get("skymap") or {}).get("patch", "gen2"),
    )


def _value(value: Any, key_type: str) -> Value | None:
    if value is None:
        return None
    if key_type == "date" and isinstance(value, str):
        return datetime.date.fromisoformat(value)
    if key_type == "datetime" and isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    if key_type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value  # type: ignore[no-any-return]


def _present(value: Any, key_type: str) -> Value:
    result = _value(value, key_type)
    assert result is not None
    return result


def key(entry: Mapping[str, Any]) -> KeySpec:
    """The runtime spec of one IR ``keys`` entry (a key without a derivation)."""
    kind = entry["type"]
    choices = entry.get("choices")
    return KeySpec(
        name=entry["name"],
        type=kind,
        scale=entry.get("scale"),
        doc=entry.get("doc") or "",
        aliases=tuple(entry.get("aliases") or ()),
        minimum=_value(entry.get("minimum"), kind),
        maximum=_value(entry.get("maximum"), kind),
        choices=None if choices is None else tuple(_present(c, kind) for c in choices),
        pattern=entry.get("pattern"),
        allow=tuple(entry.get("allow") or ()),
        normalize=tuple((a, _present(b, kind)) for a, b in entry.get("normalize") or ()),
    )
