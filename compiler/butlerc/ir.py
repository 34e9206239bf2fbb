"""Stage 5: a checked instrument as the IR, a JSON document.

Its schema is ``butlerc/dsl/ir.schema.json``.

The IR is the only thing code generation reads. It is plain data, sorted and
complete, so the same policy always gives the same IR, byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
import posixpath
from importlib import resources
from typing import Any

import jsonschema

from . import __version__
from .checks import Checked, key_shape
from .model import IngestDef, KeyDef, Literal
from .resolve import ResolvedInstrument
from .templates import Field, path_regex
from .values import Value, coerce_literal, coerce_text, to_ir

__all__ = ["IR_VERSION", "build_ir", "dumps", "schema", "validate"]

IR_VERSION = 1


@functools.cache
def schema() -> dict[str, Any]:
    """The IR's JSON Schema, from the installed package."""
    text = resources.files("butlerc.dsl").joinpath("ir.schema.json").read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def validate(ir: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``ir`` follows the schema."""
    _validator().validate(ir)


def dumps(ir: dict[str, Any]) -> str:
    """The IR as canonical JSON text (sorted keys, two-space indent, final newline)."""
    return json.dumps(ir, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _value(literal: Literal, key_type: str) -> str | int | float | bool:
    return to_ir(coerce_literal(literal, key_type))


def _key(key: KeyDef, instrument: ResolvedInstrument) -> dict[str, Any]:
    key_type = key.type.name.value
    minimum = maximum = None
    if key.range is not None:
        minimum = _value(key.range[0], key_type)
        maximum = _value(key.range[1], key_type)
    normalize = [
        [m.source.value, _value(m.target, key_type)]
        for block in instrument.normalizations.get(key.name.value, ())
        for m in block.mappings
    ]
    derive = None
    if key.derive is not None:
        function = key.derive.function.value
        derive = {
            "function": function if function in ("date", "same") else "table",
            "source": key.derive.source.value,
            "table": None if function in ("date", "same") else function,
        }
    return {
        "name": key.name.value,
        "type": key_type,
        "scale": key.type.scale.value if key.type.scale else None,
        "doc": key.doc or "",
        "aliases": [a.value for a in key.aliases],
        "minimum": minimum,
        "maximum": maximum,
        "choices": None if key.choices is None else [_value(c, key_type) for c in key.choices],
        "pattern": str(key.pattern.value) if key.pattern is not None else None,
        "allow": [str(a.value) for a in key.allow],
        "normalize": normalize,
        "derive": derive,
    }


def _ingest(ingest: IngestDef | None, instrument: str) -> dict[str, Any] | None:
    if ingest is None:
        return None
    rules = [
        {
            "key": rule.key.value,
            "source": rule.source.value,
            "argument": None if rule.argument is None else str(rule.argument.value),
            "steps": [
                {
                    "step": step.function.value,
                    "argument": None if step.argument is None else str(step.argument.value),
                }
                for step in rule.steps
            ],
        }
        for rule in ingest.rules
    ]
    translated = [str(t.value) for t in ingest.translated] or [instrument]
    return {"translated": translated, "rules": rules, "doc": ingest.doc or ""}


def _table(instrument: ResolvedInstrument, name: str) -> dict[str, Any]:
    table = instrument.tables[name]
    definition = table.definition
    types = (definition.key_column.type.name.value, definition.value_column.type.name.value)
    rows = []
    for row in table.rows:
        cells: list[Value] = []
        for literal, column_type in zip((row.source, row.target), types, strict=True):
            if definition.file is not None:
                cells.append(coerce_text(str(literal.value), column_type))
            else:
                cells.append(coerce_literal(literal, column_type))
        rows.append([to_ir(c) for c in cells])
    return {
        "name": name,
        "key_column": definition.key_column.name.value,
        "value_column": definition.value_column.name.value,
        "rows": rows,
        "doc": definition.doc or "",
    }


def build_ir(instrument: ResolvedInstrument, checked: Checked, main_file: str) -> dict[str, Any]:
    """The IR of an instrument that checked without errors."""
    choices = {
        name: (
            None
            if key.choices is None
            else tuple(coerce_literal(c, key.type.name.value) for c in key.choices)
        )
        for name, key in instrument.keys.items()
    }
    formats = []
    for fmt in instrument.formats.values():
        assert fmt.formatter is not None
        formats.append(
            {
                "name": fmt.name.value,
                "formatter": fmt.formatter.value,
                "extensions": [str(e.value) for e in fmt.extensions or ()],
                "compressed": [str(c.value) for c in fmt.compressed or ()],
                "python_type": str(fmt.python_type.value) if fmt.python_type else None,
                "hdus": bool(fmt.hdus),
                "unsafe": bool(fmt.unsafe),
                "doc": fmt.doc or "",
            }
        )
    dataset_types = []
    for name, dataset in instrument.datasets.items():
        if name in checked.left_out:
            continue
        template = checked.templates[name]
        assert dataset.template is not None and dataset.format is not None
        shapes = {k: key_shape(instrument.keys[k], choices) for k in template.keys}
        segments: list[dict[str, str]] = [
            {"key": s.key, "spec": s.spec} if isinstance(s, Field) else {"text": s.text}
            for s in template.segments
            if isinstance(s, Field) or s.text
        ]
        calibration = None
        if dataset.kind == "calibration":
            assert dataset.valid is not None and dataset.match is not None
            calibration = {
                "match": [m.value for m in dataset.match],
                "valid_by": dataset.valid.key.value,
                "observation": dataset.valid.observation.value
                if dataset.valid.observation
                else "raw",
                "resolve": dataset.resolve.value if dataset.resolve else None,
            }
        hdu = dataset.hdu
        dataset_types.append(
            {
                "name": name,
                "kind": dataset.kind,
                "doc": dataset.doc or "",
                "template": str(dataset.template.value),
                "format": dataset.format.value,
                "keys": [k.value for k in dataset.keys or ()],
                "segments": segments,
                "pattern": path_regex(template, shapes),
                "lookup": [k.value for k in dataset.lookup.keys] if dataset.lookup else [],
                "lookup_from": dataset.lookup.source.value if dataset.lookup else None,
                "hdu": None if hdu is None else hdu.value,
                "shares_path_with": [s.value for s in dataset.shares or ()],
                "allow_unsafe": bool(dataset.allow_unsafe),
                "calibration": calibration,
                "ingest": _ingest(dataset.ingest, instrument.name),
            }
        )
        if name in checked.dataset_skymaps:
            dataset_types[-1]["skymap"] = checked.dataset_skymaps[name]
    # Files are named relative to the main policy's folder, so the IR (and the module
    # generated from it) does not depend on where the compiler was run.
    base = posixpath.dirname(main_file)
    inputs = [
        {"file": posixpath.relpath(i.file, base or "."), "sha256": i.sha256}
        for i in instrument.inputs
    ]
    digest = hashlib.sha256()
    for item in instrument.inputs:
        digest.update(item.sha256.encode("ascii"))
    ir: dict[str, Any] = {
        "ir_version": IR_VERSION,
        "compiler_version": __version__,
        "source": {
            "file": posixpath.basename(main_file),
            "sha256": digest.hexdigest(),
            "inputs": inputs,
        },
        "instrument": {
            "name": instrument.name,
            "title": instrument.block.title,
            "doc": instrument.block.doc or "",
        },
        "keys": [_key(k, instrument) for k in instrument.keys.values()],
        "tables": [_table(instrument, n) for n in instrument.tables],
        "formats": formats,
        "dataset_types": dataset_types,
    }
    if checked.skymaps:  # absent, not empty, so that IR without skymaps reads as before
        ir["skymaps"] = [checked.skymaps[name] for name in sorted(checked.skymaps)]
    return ir
