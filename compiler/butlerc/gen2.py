"""Convert an LSST Gen2 mapper policy (``*Mapper.yaml``) into the policy language.

    butlerc import-gen2 DecamMapper.yaml --base obs_base-exposures.yaml \\
        --base obs_base-datasets.yaml \\
        --base obs_base-CalibrationMappingDefaults.yaml -o decam.butler

Gen2's merge rules are applied before anything is written: the files are stacked in the
order given (the mapper first, then each ``--base``), and for every dataset type the first
file that gives a field wins (a camera entry over obs_base's entry of the same name, an
obs_lsst camera over ``lsstCamMapper.yaml``); the per-category defaults
(``*MappingDefaults.yaml``) fill what is still missing. The result is one flat
``instrument`` block: keys typed from the templates' conversions (``d`` -> int,
``s`` -> str), storages as formats, ``[%(hdu)d]`` as ``hdu``, ``tables:`` as
``lookup ... from raw``, calibrations with a validity range as ``calibration``.

Whatever the language cannot say is reported as a :class:`Note` (the YAML file, the entry
and what was done about it); the CLI prints them on stderr. The output is then checked with
the compiler: dataset types that really render the same paths get ``shares path with`` (a
note says so; ``butlerc check --warn BC103`` lists them), and every error left is in
:attr:`Conversion.errors`, with its place in the output: the CLI still writes the output
(for a hand edit), prints them and exits 1.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Conversion", "Note", "convert", "convert_template"]

#: Category sections of a Gen2 mapper file, in the order CameraMapper read them.
CATEGORIES = ("images", "exposures", "calibrations", "datasets")

#: Fields of a Gen2 entry that this converter understands (others are reported).
KNOWN_FIELDS = frozenset(
    {
        "template", "storage", "python", "persistable", "description", "tables", "level",
        "columns", "filter", "obsTimeName", "validRange", "validStartName", "validEndName",
        "reference", "refCols", "composite", "assembler", "disassembler", "inputOnly",
        "recipe",
    }
)  # fmt: skip

#: Gen2 storage -> (format name, format definition), as obs_base.butler defines them.
FORMATS: dict[str, tuple[str, str]] = {
    "FitsStorage": (
        "fits",
        'format fits {\n        formatter fits\n        extensions ".fits"\n'
        '        compressed ".gz" ".fz"\n        python "numpy.ndarray"\n        hdus\n    }',
    ),
    "FitsCatalogStorage": (
        "fits_table",
        'format fits_table {\n        formatter fits\n        extensions ".fits"\n'
        '        compressed ".gz"\n        python "astropy.table.Table"\n        hdus\n    }',
    ),
    "ConfigStorage": (
        "config",
        'format config {\n        formatter text\n        extensions ".py"\n'
        '        python "str"\n    }',
    ),
    "YamlStorage": (
        "yaml",
        'format yaml {\n        formatter yaml\n        extensions ".yaml"\n'
        '        python "dict"\n    }',
    ),
    "TextStorage": (
        "text",
        'format text {\n        formatter text\n        extensions ".log" ".txt"\n'
        '        python "str"\n    }',
    ),
    "ParquetStorage": (
        "parquet",
        'format parquet {\n        formatter parquet\n        extensions ".parq"\n'
        '        python "pandas.DataFrame"\n    }',
    ),
    "PickleStorage": (
        "pickle",
        'format pickle {\n        formatter pickle\n        extensions ".pickle" ".pkl"\n'
        '        python "object"\n        unsafe\n    }',
    ),
    "MatplotlibStorage": (
        "png",
        'format png {\n        formatter matplotlib\n        extensions ".png"\n'
        '        python "matplotlib.figure.Figure"\n    }',
    ),
}

_FIELD = re.compile(
    r"%\((?P<key>\w+)\)(?P<flags>[-#0 +]*)(?P<width>\d*)(?:\.(?P<prec>\d+))?(?P<conv>[a-zA-Z])"
)
_HDU = re.compile(r"\[(?:%\((?P<key>\w+)\)d|(?P<number>\d+))\]$")
_TYPES = {"d": "int", "i": "int", "s": "str", "f": "float", "g": "float", "e": "float"}
#: Keys whose values obs_base's conventions constrain (skymap patches, pipe_analysis folders,
#: DCR sub-bands: one digit, so that ``{filter}{subfilter}`` splits back), by their type.
KNOWN_KEYS = {
    "patch": ("str", 'str matches r"\\d+,\\d+"  # skymap patch "x,y"'),
    "subdir": ("str", 'str matches r"(/[^/]+)*" allow "/"  # empty or "/name..."'),
    "subfilter": ("int", "int in 0..9  # one digit: {filter}{subfilter} splits back"),
}
_OBSERVATION_TABLES = ("raw", "raw_visit", "raw_skyTile", "raw_skytile")


@dataclass(frozen=True)
class Note:
    """Something of the Gen2 policy that the conversion could not say as it was."""

    file: str
    entry: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry}" if self.entry else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Template:
    """A converted template: the new text, its fields (key, Gen2 conversion) and the HDU."""

    text: str
    fields: tuple[tuple[str, str], ...]
    hdu: str | int | None


def convert_template(gen2: str) -> Template:
    """``'%(visit)07d/x-%(ccd)02d.fits[%(hdu)d]'`` -> ``'{visit:07d}/x-{ccd:02d}.fits'``, hdu.

    The HDU is ``'hdu'`` (a key) there, ``0`` for a trailing ``[0]``, None without one.
    """
    hdu: str | int | None = None
    match = _HDU.search(gen2)
    fields: list[tuple[str, str]] = []
    if match:
        gen2 = gen2[: match.start()]
        if match["key"]:
            hdu = match["key"]
            fields.append((match["key"], "d"))
        else:
            hdu = int(match["number"])
    out: list[str] = []
    position = 0
    for found in _FIELD.finditer(gen2):
        out.append(_literal(gen2[position : found.start()]))
        position = found.end()
        key, flags, width, conv = found["key"], found["flags"], found["width"], found["conv"]
        fields.append((key, conv))
        spec = ""
        if conv in ("d", "i"):
            spec = f"{'0' if '0' in flags else ''}{width}d" if width else ""
        elif conv == "s":
            spec = f"{width}s" if width else ""
        elif conv in ("f", "g", "e"):
            spec = f".{found['prec']}{conv}" if found["prec"] else conv
        out.append(f"{{{key}:{spec}}}" if spec else f"{{{key}}}")
    out.append(_literal(gen2[position:]))
    return Template("".join(out), tuple(fields), hdu)


def _literal(text: str) -> str:
    return text.replace("%%", "%").replace("{", "{{").replace("}", "}}")


# ---- reading and merging ---------------------------------------------------------------------


@dataclass
class Entry:
    """One dataset type after Gen2's merge: its fields and where each came from."""

    name: str
    category: str
    fields: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def file(self, name: str = "template") -> str:
        return self.origin.get(name) or next(iter(self.origin.values()), "")


def _category_of_file(path: Path) -> str:
    lowered = path.name.lower()
    for category in CATEGORIES:
        if category in lowered or category[:-1] + "mapping" in lowered:
            return category
    return "datasets"


def _load(path: Path, notes: list[Note]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(category -> {name: entry}, category defaults) of one YAML file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a Gen2 policy (a YAML mapping was expected)")
    if path.name.endswith("MappingDefaults.yaml"):
        return {}, {_category_of_file(path): data}
    if any(category in data for category in CATEGORIES):
        sections = {c: dict(data.get(c) or {}) for c in CATEGORIES}
        return sections, {}
    return {_category_of_file(path): data}, {}


def merge(files: Sequence[Path], notes: list[Note]) -> dict[str, Entry]:
    """Stack the files as Gen2 did: per dataset type and field, the first file giving it wins."""
    entries: dict[str, Entry] = {}
    defaults: dict[str, dict[str, Any]] = {}
    for path in files:
        sections, found_defaults = _load(path, notes)
        for category, values in found_defaults.items():
            defaults.setdefault(category, {}).update(
                {k: v for k, v in values.items() if k not in defaults.get(category, {})}
            )
        for category, items in sections.items():
            for name, values in items.items():
                if not isinstance(values, dict):
                    continue
                entry = entries.setdefault(name, Entry(name, category))
                if entry.category != category:
                    notes.append(
                        Note(
                            path.name,
                            name,
                            f"also defined under '{category}' (kept as {entry.category})",
                        )
                    )
                for key, value in values.items():
                    if key not in entry.fields:
                        entry.fields[key] = value
                        entry.origin[key] = path.name
    for entry in entries.values():
        for key, value in defaults.get(entry.category, {}).items():
            entry.fields.setdefault(key, value)
    return entries


# ---- conversion ------------------------------------------------------------------------------


@dataclass
class Dataset:
    name: str
    gen2: Entry
    template: Template
    format: str
    keys: list[str]
    lookup: list[str] = field(default_factory=list)
    match: list[str] = field(default_factory=list)
    valid: str | None = None
    shares: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Conversion:
    """The policy text, what could not be said, and the errors the text still has.

    ``errors`` are the compiler's errors on ``text`` (file, line and message): when there
    are any, the policy needs a hand edit before Butler can use it.
    """

    text: str
    notes: tuple[Note, ...]
    errors: tuple[Note, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _instrument_name(mapper: Path) -> str:
    stem = mapper.stem.split("-")[-1]
    stem = stem[: -len("Mapper")] if stem.endswith("Mapper") else stem
    stem = re.sub(r"\W", "_", stem) or "Gen2"
    return stem[0].upper() + stem[1:]


def _dataset(entry: Entry, notes: list[Note], defaults: bool) -> Dataset | None:
    """The dataset type of a merged entry, or None (and a note) if it cannot be one.

    ``defaults``: whether the ``*MappingDefaults.yaml`` files were given, which is where
    Gen2 took most storages from.
    """
    fields, name = entry.fields, entry.name
    for unknown in sorted(set(fields) - KNOWN_FIELDS):
        close = difflib.get_close_matches(unknown, sorted(KNOWN_FIELDS), n=1)
        hint = (
            f" (misspelt '{close[0]}'? Gen2 ignored it, and so does this conversion)"
            if close
            else ""
        )
        notes.append(Note(entry.file(unknown), name, f"unknown field '{unknown}'{hint}"))
    storage = str(fields.get("storage") or "")
    template = str(fields.get("template") or "")
    if not template:
        if fields.get("composite"):
            return None  # handled by the caller, from its components
        notes.append(
            Note(
                entry.file(),
                name,
                "no template: the camera never gave this dataset type a path; left out",
            )
        )
        return None
    if template == "ignored" or storage.startswith("ignored") or storage == "None":
        notes.append(
            Note(
                entry.file(),
                name,
                f"storage '{storage}', template '{template}': not a file; left out",
            )
        )
        return None
    if template.endswith("/"):
        notes.append(
            Note(
                entry.file(),
                name,
                f"template '{template}' is a folder, which cannot be a dataset type; left out",
            )
        )
        return None
    if not storage and not defaults:
        notes.append(
            Note(
                entry.file(),
                name,
                "no storage: Gen2 took it from obs_base; pass obs_base-exposures.yaml, "
                "obs_base-datasets.yaml and the obs_base-*MappingDefaults.yaml files with "
                "--base; left out",
            )
        )
        return None
    if storage not in FORMATS:
        notes.append(
            Note(entry.file("storage"), name, f"storage '{storage}' has no format; left out")
        )
        return None
    converted = convert_template(template)
    keys = list(dict.fromkeys(key for key, _ in converted.fields))
    return Dataset(name, entry, converted, FORMATS[storage][0], keys)


def convert(
    mapper: str | Path,
    bases: Iterable[str | Path] = (),
    *,
    name: str | None = None,
    check: bool = True,
    output: str | Path | None = None,
) -> Conversion:
    """Convert ``mapper`` stacked over ``bases`` (Gen2 merge rules) into one instrument block.

    ``output`` is the file the text will be written to: the errors name it (default: the
    mapper's name with ``.butler``).
    """
    mapper = Path(mapper)
    files = [mapper, *map(Path, bases)]
    notes: list[Note] = []
    entries = merge(files, notes)
    datasets: dict[str, Dataset] = {}
    defaults = any(path.name.endswith("MappingDefaults.yaml") for path in files)
    for entry in entries.values():
        dataset = _dataset(entry, notes, defaults)
        if dataset is not None:
            datasets[entry.name] = dataset
    for entry in entries.values():  # composites (obs_lsst raw): the file of their components
        parts = entry.fields.get("composite")
        if entry.name in datasets or not isinstance(parts, dict):
            continue
        members = [datasets[p] for p in parts if p in datasets]
        if not members:
            continue
        first = members[0]
        notes.append(
            Note(
                entry.file("composite"),
                entry.name,
                f"composite of {', '.join(parts)} "
                f"(assembled by {entry.fields.get('assembler', 'a Python function')}): "
                f"written as the whole file of '{first.name}'",
            )
        )
        template = Template(
            first.template.text,
            tuple(f for f in first.template.fields if f[0] != first.template.hdu),
            None,
        )
        datasets[entry.name] = Dataset(
            entry.name,
            entry,
            template,
            first.format,
            [k for k in first.keys if k != first.template.hdu],
        )

    key_types = _key_types(datasets, notes)
    raw = datasets.get("raw")
    _calibrations(datasets, raw, key_types, notes)
    _lookups(datasets, raw, notes)
    instrument = name or _instrument_name(mapper)
    text = _render(instrument, files, datasets, key_types, entries)
    errors: list[Note] = []
    if check:
        virtual = str(output) if output is not None else files[0].with_suffix(".butler").name
        text = _declare_shared_paths(
            text, virtual, instrument, datasets, key_types, files, entries, notes, errors
        )
    return Conversion(text, tuple(notes), tuple(errors))


def _key_types(datasets: Mapping[str, Dataset], notes: list[Note]) -> dict[str, str]:
    seen: dict[str, dict[str, str]] = {}
    for dataset in datasets.values():
        for key, conv in dataset.template.fields:
            seen.setdefault(key, {}).setdefault(_TYPES.get(conv, "str"), dataset.name)
            if conv not in _TYPES:
                notes.append(
                    Note(
                        dataset.gen2.file(),
                        dataset.name,
                        f"conversion '%{conv}' of '{key}' read as str",
                    )
                )
    types: dict[str, str] = {}
    for key, found in seen.items():
        if len(found) > 1:
            where = ", ".join(f"{t} in {d}" for t, d in sorted(found.items()))
            first = datasets[next(iter(found.values()))].gen2.file()
            message = f"key '{key}' formatted as several types ({where}); declared str"
            notes.append(Note(first, key, message))
            types[key] = "str"
        else:
            types[key] = next(iter(found))
    return types


def _calibrations(
    datasets: dict[str, Dataset], raw: Dataset | None, key_types: dict[str, str], notes: list[Note]
) -> None:
    for dataset in datasets.values():
        fields = dataset.gen2.fields
        if dataset.gen2.category != "calibrations":
            continue
        if not fields.get("validRange"):
            notes.append(
                Note(
                    dataset.gen2.file(),
                    dataset.name,
                    "calibration without a validity range: written as a plain dataset type",
                )
            )
            continue
        if raw is None:
            notes.append(
                Note(
                    dataset.gen2.file(),
                    dataset.name,
                    "no raw dataset type to validate against: written as a plain dataset type",
                )
            )
            continue
        valid = str(fields.get("obsTimeName") or "taiObs")
        whole = dataset.template.text == f"{{{dataset.keys[0]}}}" if dataset.keys else False
        match = [k for k in dataset.keys[int(whole) :] if k not in ("calibDate", valid)]
        if fields.get("filter") and "filter" not in match:
            match.append("filter")
            if "filter" not in dataset.keys:
                dataset.keys.append("filter")
        if not match:
            notes.append(
                Note(
                    dataset.gen2.file(),
                    dataset.name,
                    "calibration with nothing to match: written as a plain dataset type",
                )
            )
            continue
        if key_types.get(valid) not in ("date", "datetime tai"):
            if valid in key_types:
                notes.append(
                    Note(
                        dataset.gen2.file(),
                        dataset.name,
                        f"'{valid}' selects calibrations; Gen2 kept it as text, "
                        "declared here as a date",
                    )
                )
            key_types[valid] = "date"
        dataset.match, dataset.valid = match, valid
        for key in [*match, valid]:
            key_types.setdefault(key, "str")
            if key not in raw.keys:
                raw.keys.append(key)


def _lookups(datasets: Mapping[str, Dataset], raw: Dataset | None, notes: list[Note]) -> None:
    for dataset in datasets.values():
        tables = _as_list(dataset.gen2.fields.get("tables"))
        if not tables or dataset.valid is not None:
            continue
        observation = [t for t in tables if t in _OBSERVATION_TABLES]
        if not observation:
            continue
        if raw is None:
            notes.append(
                Note(
                    dataset.gen2.file("tables"),
                    dataset.name,
                    "tables: raw, but there is no raw dataset type; no lookup",
                )
            )
            continue
        dataset.lookup = [k for k in dataset.keys if k in raw.keys]


# ---- writing ---------------------------------------------------------------------------------


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _render(
    instrument: str,
    files: Sequence[Path],
    datasets: Mapping[str, Dataset],
    key_types: Mapping[str, str],
    entries: Mapping[str, Entry],
) -> str:
    lines = [
        f"# Converted by `butlerc import-gen2` from {', '.join(p.name for p in files)}",
        "# (Gen2 merge rules applied: first file giving a field wins, then category defaults).",
        "",
        f'instrument {instrument} "Converted from the Gen2 policy {files[0].name}" {{',
    ]
    sole = {
        d.keys[0] for d in datasets.values() if d.keys and d.template.text == f"{{{d.keys[0]}}}"
    }
    for key in sorted(key_types, key=str.lower):
        line = f"    key {key}: {key_types[key]}"
        known = KNOWN_KEYS.get(key)
        if known is not None and key_types[key] == known[0]:
            line = f"    key {key}: {known[1]}"
        elif key in sole and key_types[key] == "str":
            line += ' allow "/"  # the whole path'
        lines.append(line)
    formats = {d.format for d in datasets.values()}
    for storage, (fmt, definition) in FORMATS.items():
        if fmt in formats:
            lines.append(f"    {definition}  # Gen2 {storage}")
    for dataset in datasets.values():
        kind = "calibration" if dataset.valid is not None else "dataset"
        python = dataset.gen2.fields.get("python")
        lines.append(f"    {kind} {dataset.name} {{" + (f"  # Gen2: {python}" if python else ""))
        if dataset.gen2.fields.get("description"):
            lines.append(f"        doc {_string(str(dataset.gen2.fields['description']).strip())}")
        lines.append(f"        template {_string(dataset.template.text)}")
        lines.append(f"        format {dataset.format}")
        if dataset.format == "pickle":
            lines.append("        allow unsafe")
        if dataset.template.hdu is not None:
            lines.append(f"        hdu {dataset.template.hdu}")
        lines.append(f"        keys {', '.join(dataset.keys) if dataset.keys else '()'}")
        if dataset.lookup:
            lines.append(f"        lookup {', '.join(dataset.lookup)} from raw")
        if dataset.valid is not None:
            if dataset.match:
                lines.append(f"        match {', '.join(dataset.match)}")
            lines.append(f"        valid by {dataset.valid} from raw")
        if dataset.shares:
            lines.append(f"        shares path with {', '.join(dataset.shares)}")
        lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _declare_shared_paths(
    text: str,
    virtual: str,
    instrument: str,
    datasets: Mapping[str, Dataset],
    key_types: Mapping[str, str],
    files: Sequence[Path],
    entries: Mapping[str, Entry],
    notes: list[Note],
    errors: list[Note],
) -> str:
    """Check the output; declare real path collisions; report every error that is left."""
    from .driver import check_policy

    result = check_policy(virtual, text)
    pattern = re.compile(r"'(\w+)'")
    changed = False
    for diagnostic in result.errors:
        if diagnostic.code != "BC006":
            continue
        names = [n for n in pattern.findall(diagnostic.message) if n in datasets]
        if len(names) >= 2:
            a, b = names[0], names[1]
            if b not in datasets[a].shares:
                datasets[a].shares.append(b)
                datasets[b].shares.append(a)
                changed = True
                notes.append(
                    Note(
                        datasets[a].gen2.file(),
                        a,
                        f"renders the same paths as '{b}' (Gen2 defect or intent): "
                        "declared `shares path with`",
                    )
                )
    if changed:
        text = _render(instrument, files, datasets, key_types, entries)
        result = check_policy(virtual, text)
    for diagnostic in result.errors:
        where = str(diagnostic.span) if diagnostic.span is not None else virtual
        message = f"error[{diagnostic.code}]: {diagnostic.message}"
        errors.append(
            Note(where, "", message + (f" ({diagnostic.hint})" if diagnostic.hint else ""))
        )
    return text
