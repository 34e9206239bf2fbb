"""Dataset types defined at run time, recorded in the repository they write to.

    butler.register_dataset_type(
        "deepCoadd_myCat", template="myCat/{tract}/{patch}.fits", format="fits",
        keys=["tract", "patch"], doc="my catalog",
    )
    butler.register_dataset_type(text='dataset myLog { template "log/{visit}.txt" ... }')

A definition is checked by the compiler's own rules (:func:`butlerc.extend.extend`)
against the repository's instrument and every dataset type already defined, so
mistakes get the policy's diagnostics (BC002 unknown key, BC004 bad format spec,
BC006 a path another dataset type can render, BC009 a name already defined...).
It is then stored in the registry's metadata, one entry per dataset type
(``dataset_type_def:<name>``: the definition text, its IR entry, the hash of
the instrument it was checked against and the software versions that wrote
it), and its table is created. Every process that opens the repository loads
the definitions into its mapper; after that a runtime dataset type behaves like
one from the policy.

Registration takes the registry's write lock first (a row of ``meta`` on
PostgreSQL, the database on SQLite), re-reads the definitions, checks and
writes in that one transaction: two processes registering at once are
serialized. The same definition twice is a no-op; a different one for a name
already registered is a :class:`~butler.errors.ConflictError`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import _policy_text as policy_text
from .config import software_versions
from .errors import ConflictError, DatasetTypeDefinitionError, RepositoryError
from .mapper import Mapper
from .registry import Registry
from .spec import DatasetTypeSpec, FormatSpec, InstrumentSpec, KeySpec

if TYPE_CHECKING:
    from butlerc.extend import Extension

__all__ = [
    "PREFIX",
    "RuntimeDefinitions",
    "check",
    "definitions",
    "extend_spec",
    "register",
    "runtime_definition",
]

#: Metadata key prefix of a dataset type defined at run time.
PREFIX = "dataset_type_def:"
_LOCK = "dataset_type_def.lock"


@dataclasses.dataclass(frozen=True)
class RuntimeDefinitions:
    """The runtime dataset types (and keys declared with them) of one repository."""

    dataset_types: tuple[DatasetTypeSpec, ...] = ()
    keys: tuple[KeySpec, ...] = ()
    formats: tuple[FormatSpec, ...] = ()
    entries: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dataset_types)


def extend_spec(
    spec: InstrumentSpec,
    types: Iterable[DatasetTypeSpec],
    keys: Iterable[KeySpec] = (),
    formats: Iterable[FormatSpec] = (),
) -> InstrumentSpec:
    """``spec`` with ``types`` added (or replacing those of the same name), and with
    ``keys`` and ``formats`` it does not have yet."""
    replaced = {t.name: t for t in types}
    known = {k.name for k in spec.keys}
    known_formats = {f.name for f in spec.formats}
    dataset_types = tuple(replaced.pop(d.name, d) for d in spec.dataset_types)
    return dataclasses.replace(
        spec,
        keys=spec.keys + tuple(k for k in keys if k.name not in known),
        formats=spec.formats + tuple(f for f in formats if f.name not in known_formats),
        dataset_types=dataset_types + tuple(replaced.values()),
    )


def _stored(registry: Registry) -> dict[str, dict[str, Any]]:
    entries = {}
    for key, value in registry.metadata.items():
        if not key.startswith(PREFIX):
            continue
        try:
            entries[key[len(PREFIX) :]] = json.loads(value)
        except ValueError:
            raise RepositoryError(
                f"registry {registry.url}: the definition of dataset type "
                f"{key[len(PREFIX) :]!r} is corrupt: {value[:80]!r}"
            ) from None
    return entries


def _types(spec: InstrumentSpec, keys: Iterable[KeySpec]) -> dict[str, str]:
    return {k.name: k.type for k in (*spec.keys, *keys)}


def _build(spec: InstrumentSpec, entries: Mapping[str, dict[str, Any]]) -> RuntimeDefinitions:
    keys: dict[str, KeySpec] = {}
    formats: dict[str, FormatSpec] = {}
    for entry in entries.values():
        for key_entry in entry.get("keys", {}).values():
            keys.setdefault(key_entry["name"], policy_text.key(key_entry))
        for format_entry in entry.get("formats", {}).values():
            formats.setdefault(format_entry["name"], policy_text.format_spec(format_entry))
    types = _types(spec, keys.values())
    built = tuple(policy_text.dataset_type(e["ir"], types) for e in entries.values())
    return RuntimeDefinitions(built, tuple(keys.values()), tuple(formats.values()), dict(entries))


def _text(entries: Mapping[str, dict[str, Any]]) -> str:
    """Stored definitions as policy text: their keys, then their dataset types (from the IR)."""
    keys = {k["name"]: policy_text.key(k) for k in _stored_keys(entries)}
    formats = {
        f["name"]: policy_text.format_spec(f)
        for e in entries.values()
        for f in e.get("formats", {}).values()
    }
    lines = [policy_text.key_text(k) for k in keys.values()]
    lines += [policy_text.format_text(f) for f in formats.values()]
    for entry in entries.values():
        ir = entry["ir"]
        calibration = policy_text.dataset_type(ir, {}).calibration
        lines.append(
            policy_text.dataset_type_text(
                ir["name"],
                template=ir["template"],
                format=ir["format"],
                keys=ir["keys"],
                doc=ir.get("doc") or "",
                lookup=ir.get("lookup") or (),
                lookup_from=ir.get("lookup_from"),
                hdu=ir.get("hdu"),
                shares_path_with=ir.get("shares_path_with") or (),
                allow_unsafe=bool(ir.get("allow_unsafe")),
                calibration=calibration,
            )
        )
    return "\n".join(lines)


def _stored_keys(entries: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [k for e in entries.values() for k in e.get("keys", {}).values()]


def check(spec: InstrumentSpec, text: str, *, file: str, existing: str = "") -> Extension:
    """Check definition ``text`` against ``spec`` plus ``existing`` definitions.

    The compiler's findings, with the IR of each dataset type, key and format
    ``text`` defines; DatasetTypeDefinitionError with its diagnostics if it does
    not check.
    """
    from butlerc.extend import extend

    base = policy_text.members(spec) + ("\n" + existing if existing else "")
    result = extend(
        base,
        text,
        instrument=spec.name,
        title=spec.title,
        file=file,
        base_file=f"<instrument {spec.name}>",
    )
    if not result.ok:
        raise DatasetTypeDefinitionError(
            f"dataset type definition rejected:\n{result.report()}", result.diagnostics
        )
    return result


def definitions(registry: Registry, spec: InstrumentSpec) -> RuntimeDefinitions:
    """The runtime definitions stored in ``registry``, for the instrument of ``spec``.

    Definitions checked against a different build of the instrument's policy are
    checked again; if they no longer pass, the repository cannot be opened with it.
    """
    entries = _stored(registry)
    if not entries:
        return RuntimeDefinitions()
    if all(e.get("instrument_sha256") == spec.source_sha256 for e in entries.values()):
        return _build(spec, entries)
    try:
        result = check(spec, _text(entries), file=f"<definitions in {registry.url}>")
    except DatasetTypeDefinitionError as error:
        raise RepositoryError(
            f"the dataset types defined at run time in {registry.url} do not check against "
            f"the mapper of instrument {spec.name} ({spec.source or 'its policy'} has "
            f"changed since they were registered):\n{error}"
        ) from None
    refreshed = {
        name: {**entry, "ir": result.dataset_types[name]}
        for name, entry in entries.items()
        if name in result.dataset_types
    }
    return _build(spec, refreshed)


def _same(entry: Mapping[str, Any], ir: Mapping[str, Any]) -> bool:
    def shown(d: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "doc"}

    return shown(entry["ir"]) == shown(ir)


def register(registry: Registry, spec: InstrumentSpec, text: str, *, file: str) -> Mapper:
    """Check and record the definitions in ``text``; the mapper of ``spec`` with every
    runtime dataset type of the repository, the new ones included.

    ``spec`` is the instrument as its policy defines it (no runtime types).
    """
    from butlerc.extend import defined_names

    named = defined_names(text)
    if named["override"] or named["table"]:
        raise DatasetTypeDefinitionError(
            "register_dataset_type defines dataset types (and the keys they need); to change "
            "a setting of a dataset type the policy defines, use an override "
            "(`--config datasets.NAME.format=...`, or 'overrides' in butler.yaml)"
        )
    with registry.transaction():
        # Taking the lock first serializes registrants (PostgreSQL holds the row lock
        # to the end of the transaction; SQLite writers hold the database's).
        registry.set_metadata(_LOCK, datetime.datetime.now(datetime.UTC).isoformat())
        stored = _stored(registry)
        again = set(named["dataset"]) & set(stored)
        declared = set(named["key"])
        others = {
            n: e for n, e in stored.items() if n not in again and not declared & set(e["keys"])
        }
        result = check(spec, text, file=file, existing=_text(others))
        types, keys = result.dataset_types, result.keys
        for name in again:
            if not _same(stored[name], types[name]):
                raise ConflictError(
                    f"dataset type {name!r} is already registered in {registry.url} with a "
                    f"different definition:\n{stored[name]['text']}\n"
                    f"cannot register it again as:\n{text.strip()}"
                )
        fresh = [name for name in types if name not in stored]
        if fresh:
            now = datetime.datetime.now(datetime.UTC).isoformat()
            versions = software_versions()
            all_types = _types(spec, [policy_text.key(k) for k in keys.values()])
            for key_entry in _stored_keys(others):
                all_types.setdefault(key_entry["name"], key_entry["type"])
            for name in fresh:
                ir = types[name]
                registry.register_dataset_type(name, {k: all_types[k] for k in ir["keys"]})
                entry = {
                    "name": name,
                    "text": text.strip(),
                    "ir": ir,
                    "keys": {k: v for k, v in keys.items() if k in ir["keys"]},
                    "formats": {f: v for f, v in result.formats.items() if f == ir["format"]},
                    "instrument": spec.name,
                    "instrument_sha256": spec.source_sha256,
                    "registered": now,
                    "versions": versions,
                }
                registry.set_metadata(PREFIX + name, json.dumps(entry, sort_keys=True))
        runtime = _build(spec, _stored(registry))
    return Mapper(extend_spec(spec, runtime.dataset_types, runtime.keys, runtime.formats))


def runtime_definition(
    name: str | None,
    template: str | None,
    format: str | None,
    keys: Iterable[str],
    doc: str,
    text: str | None,
) -> tuple[str, str]:
    """The definition text of ``register_dataset_type``'s arguments, and its name in messages."""
    if text is not None:
        if name is not None or template is not None or format is not None:
            raise DatasetTypeDefinitionError(
                "give either text (definitions in the policy language) or name, template, "
                "format and keys, not both"
            )
        return text, "<register_dataset_type text>"
    if not isinstance(name, str) or not name.isidentifier():
        raise DatasetTypeDefinitionError(
            f"dataset type name {name!r} is not a name (letters, digits, _; not starting "
            "with a digit)"
        )
    if template is None or format is None:
        raise DatasetTypeDefinitionError(
            f"dataset type {name!r} needs a template and a format (and its keys)"
        )
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    text = policy_text.dataset_type_text(
        name, template=template, format=format, keys=list(keys), doc=doc
    )
    return text, f"<dataset type {name}>"
