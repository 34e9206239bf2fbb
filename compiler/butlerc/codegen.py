"""Code generation: one IR document in, the Python source of one mapper module out.

The module skeleton lives in ``templates/mapper.py.jinja``; this module turns the
IR's values into Python expressions and lays them out the way ``ruff format``
would (line length 100, one argument per line with a trailing comma when a call
does not fit), so that a generated module passes ``ruff format --check`` as is.
The same IR always gives the same bytes.
"""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

__all__ = ["generate"]

LINE_LENGTH = 100
_INDENT = 4

# ---- Python expressions and their layout ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Atom:
    """An expression that is never split: a number, a name, ``datetime.date(...)``."""

    text: str


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece of a string literal that is never split: text, or a replacement field."""

    text: str
    field: bool = False


@dataclass(frozen=True, slots=True)
class _Str:
    """A string literal, split into implicitly concatenated parts when it is too long.

    ``mode`` is ``"plain"`` (ordinary string; quotes chosen as ruff would),
    ``"f"`` (an f-string whose fields read ``d['key']``; always double quotes) or
    ``"raw"`` (a raw string; ``quote`` is fixed for the whole literal).
    """

    units: tuple[_Unit, ...]
    mode: str = "plain"
    quote: str = '"'

    def render(self, units: Sequence[_Unit] | None = None) -> str:
        units = self.units if units is None else units
        if self.mode == "raw":
            return f"r{self.quote}{''.join(u.text for u in units)}{self.quote}"
        if self.mode == "f" and any(u.field for u in units):
            body = "".join(
                "{" + u.text + "}" if u.field else _braces(_escape(u.text, '"')) for u in units
            )
            return f'f"{body}"'
        return _quoted("".join(u.text for u in units))

    def lines(self, width: int) -> list[str]:
        """The literal as one line if it fits in ``width``, else as concatenated parts."""
        joined = self.render()
        if _width(joined) <= width:
            return [joined]
        chunks: list[Sequence[_Unit]] = []
        rest: Sequence[_Unit] = self.units
        while _width(self.render(rest)) > width and len(rest) > 1:
            # The longest prefix that still fits (at least one unit), found by bisection:
            # a longer prefix never renders shorter.
            low, high = 1, len(rest) - 1
            while low < high:
                middle = (low + high + 1) // 2
                if _width(self.render(rest[:middle])) <= width:
                    low = middle
                else:
                    high = middle - 1
            cut = _last_break(rest[:low])
            chunks.append(rest[:cut])
            rest = rest[cut:]
        chunks.append(rest)
        return [self.render(chunk) for chunk in chunks]


@dataclass(frozen=True, slots=True)
class _Call:
    """``func(arg, kw=arg, ...)``."""

    func: str
    args: tuple[tuple[str | None, _Node], ...]


@dataclass(frozen=True, slots=True)
class _Tuple:
    items: tuple[_Node, ...]


_Node = _Atom | _Str | _Call | _Tuple


def _flat(node: _Node) -> str:
    if isinstance(node, _Atom):
        return node.text
    if isinstance(node, _Str):
        return node.render()
    if isinstance(node, _Call):
        args = ", ".join(f"{kw}={_flat(a)}" if kw else _flat(a) for kw, a in node.args)
        return f"{node.func}({args})"
    items = [_flat(item) for item in node.items]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _layout(node: _Node, indent: int, head: str, tail: str = "") -> list[str]:
    """Lines for ``head + node + tail``, starting at column ``indent``."""
    flat = head + _flat(node) + tail
    if _width(flat) <= LINE_LENGTH or isinstance(node, _Atom):
        return [flat]
    inner = " " * (indent + _INDENT)
    close = " " * indent + ")" + tail
    if isinstance(node, _Str):
        parts = node.lines(LINE_LENGTH - indent - _INDENT)
        if len(parts) == 1 and _width(inner + parts[0]) > LINE_LENGTH:
            return [flat]  # cannot be helped: one unsplittable literal
        return [head + "(", *(inner + part for part in parts), close]
    if isinstance(node, _Call):
        sole = node.args[0][1] if len(node.args) == 1 and node.args[0][0] is None else None
        if isinstance(sole, _Str):
            parts = sole.lines(LINE_LENGTH - indent - _INDENT)
            return [head + node.func + "(", *(inner + part for part in parts), close]
        lines = [head + node.func + "("]
        for kw, arg in node.args:
            lines += _layout(arg, indent + _INDENT, inner + (f"{kw}=" if kw else ""), ",")
        return [*lines, close]
    lines = [head + "("]
    for item in node.items:
        lines += _layout(item, indent + _INDENT, inner, ",")
    return [*lines, close]


def _source(node: _Node, head: str = "") -> str:
    return "\n".join(_layout(node, 0, head))


# ---- string literals ---------------------------------------------------------------------

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(text: str, quote: str) -> str:
    """``text`` as the inside of a ``quote``-delimited Python string literal."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char == quote:
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    return "".join(out)


def _quoted(text: str) -> str:
    """A plain string literal, with the quotes ruff prefers (double, unless more escapes)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    return quote + _escape(text, quote) + quote


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _last_break(units: Sequence[_Unit]) -> int:
    """Where to end a part of a split literal: after its last ``/`` or space, else at its end."""
    for i in range(len(units) - 1, 0, -1):
        if not units[i - 1].field and units[i - 1].text[-1] in "/ ":
            return i
    return len(units)


def _plain(text: str) -> _Str:
    return _Str(tuple(_Unit(char) for char in text))


def _regex(pattern: str) -> _Str:
    """A regular expression, as a raw string whenever one can spell it."""
    units: list[_Unit] = []
    i = 0
    while i < len(pattern):
        step = 2 if pattern[i] == "\\" and i + 1 < len(pattern) else 1
        units.append(_Unit(pattern[i : i + step]))
        i += step
    unspellable = not pattern.isprintable() or (
        pattern.endswith("\\") and not pattern.endswith("\\\\")
    )
    if not unspellable:
        if '"' not in pattern:
            return _Str(tuple(units), "raw", '"')
        if "'" not in pattern:
            return _Str(tuple(units), "raw", "'")
    return _plain(pattern)


# ---- values ------------------------------------------------------------------------------


def _value(value: Any, key_type: str | None = None) -> _Node:
    """A data ID value from the IR, as the Python literal of its key's type."""
    if value is None:
        return _Atom("None")
    if isinstance(value, bool):
        return _Atom(repr(value))
    if key_type == "date" and isinstance(value, str):
        day = datetime.date.fromisoformat(value)
        return _Atom(f"datetime.date({day.year}, {day.month}, {day.day})")
    if key_type == "datetime" and isinstance(value, str):
        return _Atom(_datetime_literal(datetime.datetime.fromisoformat(value)))
    if key_type == "float" and isinstance(value, int):
        value = float(value)
    if isinstance(value, float):
        finite = value == value and abs(value) != float("inf")
        return _Atom(repr(value) if finite else f'float("{value}")')
    if isinstance(value, int):
        return _Atom(str(value))
    return _plain(str(value))


def _datetime_literal(moment: datetime.datetime) -> str:
    if moment.tzinfo is not None:  # keys hold naive datetimes in their own scale
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    parts = [moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second]
    parts.append(moment.microsecond)
    while len(parts) > 3 and parts[-1] == 0:
        parts.pop()
    return f"datetime.datetime({', '.join(map(str, parts))})"


def _strings(names: Iterable[str]) -> _Tuple:
    return _Tuple(tuple(_plain(name) for name in names))


def _kwargs(**fields: _Node | None) -> tuple[tuple[str | None, _Node], ...]:
    """Keyword arguments, leaving out those that are None (the dataclass default)."""
    return tuple((name, node) for name, node in fields.items() if node is not None)


def _unless(default: Any, value: Any, node: Callable[[Any], _Node]) -> _Node | None:
    return None if value == default else node(value)


# ---- the IR, piece by piece --------------------------------------------------------------


def _key(key: Mapping[str, Any]) -> _Call:
    kind = key["type"]
    derive = key["derive"]
    return _Call(
        "KeySpec",
        _kwargs(
            name=_plain(key["name"]),
            type=_plain(kind),
            scale=_unless(None, key["scale"], _plain),
            doc=_unless("", key["doc"], _plain),
            aliases=_unless([], key["aliases"], _strings),
            minimum=_unless(None, key["minimum"], lambda v: _value(v, kind)),
            maximum=_unless(None, key["maximum"], lambda v: _value(v, kind)),
            choices=_unless(None, key["choices"], lambda vs: _Tuple(_values(vs, kind))),
            pattern=_unless(None, key["pattern"], _regex),
            allow=_unless([], key["allow"], _strings),
            normalize=_unless([], key["normalize"], lambda pairs: _pairs(pairs, None, kind)),
            derive=None if derive is None else _derivation(derive),
        ),
    )


def _values(values: Iterable[Any], key_type: str | None) -> tuple[_Node, ...]:
    return tuple(_value(v, key_type) for v in values)


def _pairs(pairs: Iterable[Sequence[Any]], left: str | None, right: str | None) -> _Tuple:
    return _Tuple(tuple(_Tuple((_value(a, left), _value(b, right))) for a, b in pairs))


def _derivation(derive: Mapping[str, Any]) -> _Call:
    return _Call(
        "Derivation",
        _kwargs(
            function=_plain(derive["function"]),
            source=_plain(derive["source"]),
            table=_unless(None, derive["table"], _plain),
        ),
    )


def _table(table: Mapping[str, Any], column_types: Mapping[str, tuple[str, str]]) -> _Call:
    left, right = column_types.get(table["name"], ("str", "str"))
    return _Call(
        "TableSpec",
        _kwargs(
            name=_plain(table["name"]),
            key_column=_plain(table["key_column"]),
            value_column=_plain(table["value_column"]),
            rows=_pairs(table["rows"], left, right),
            doc=_unless("", table["doc"], _plain),
        ),
    )


def _table_column_types(keys: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each table's column types, from the keys derived through it (source -> derived)."""
    types = {key["name"]: key["type"] for key in keys}
    columns: dict[str, tuple[str, str]] = {}
    for key in keys:
        derive = key["derive"]
        if derive is not None and derive["table"] is not None:
            columns.setdefault(derive["table"], (types[derive["source"]], key["type"]))
    return columns


def _format(fmt: Mapping[str, Any]) -> _Call:
    return _Call(
        "FormatSpec",
        _kwargs(
            name=_plain(fmt["name"]),
            formatter=_plain(fmt["formatter"]),
            extensions=_unless([], fmt["extensions"], _strings),
            compressed=_unless([], fmt["compressed"], _strings),
            python_type=_unless(None, fmt["python_type"], _plain),
            hdus=_unless(False, fmt["hdus"], lambda v: _Atom(repr(v))),
            unsafe=_unless(False, fmt["unsafe"], lambda v: _Atom(repr(v))),
            doc=_unless("", fmt["doc"], _plain),
        ),
    )


def _calibration(calibration: Mapping[str, Any]) -> _Call:
    return _Call(
        "CalibrationSpec",
        _kwargs(
            match=_strings(calibration["match"]),
            valid_by=_plain(calibration["valid_by"]),
            observation=_unless("raw", calibration["observation"], _plain),
            resolve=_unless(None, calibration["resolve"], _plain),
        ),
    )


def _dataset_type(dataset: Mapping[str, Any], render: str, pattern: str) -> _Call:
    fields = [segment for segment in dataset["segments"] if "key" in segment]
    hdu = dataset["hdu"]
    return _Call(
        "DatasetTypeSpec",
        _kwargs(
            name=_plain(dataset["name"]),
            template=_plain(dataset["template"]),
            format=_plain(dataset["format"]),
            keys=_strings(dataset["keys"]),
            fields=_Tuple(tuple(_field_spec(f) for f in fields)),
            render=_Atom(render),
            pattern=_Atom(pattern),
            lookup=_unless([], dataset["lookup"], _strings),
            lookup_from=_unless(None, dataset["lookup_from"], _plain),
            hdu=None if hdu is None else _Atom(str(hdu)) if isinstance(hdu, int) else _plain(hdu),
            shares_path_with=_unless([], dataset["shares_path_with"], _strings),
            allow_unsafe=_unless(False, dataset["allow_unsafe"], lambda v: _Atom(repr(v))),
            calibration=_unless(None, dataset["calibration"], _calibration),
            doc=_unless("", dataset["doc"], _plain),
            ingest=_unless(None, dataset.get("ingest"), _ingest),
            skymap=_unless(None, (dataset.get("skymap") or {}).get("name"), _plain),
            patch_form=_unless("gen2", (dataset.get("skymap") or {}).get("patch", "gen2"), _plain),
        ),
    )


def _number(value: float) -> _Atom:
    """A float literal; an angle given in arcminutes or arcseconds reads as one (``1 / 60``)."""
    value = float(value)
    for per in (60, 3600):
        count = round(value * per)
        if len(repr(value)) > 8 and count and count / per == value:
            return _Atom(f"{count} / {per}")
    return _Atom(repr(value))


def _skymap(skymap: Mapping[str, Any]) -> _Call:
    cells = skymap["cells"]
    return _Call(
        "SkyMapSpec",
        _kwargs(
            name=_plain(skymap["name"]),
            kind=_plain(skymap["kind"]),
            num_rings=_unless(0, skymap["num_rings"], lambda v: _Atom(str(v))),
            version=_unless(1, skymap["version"], lambda v: _Atom(str(v))),
            ra_start=_unless(0.0, skymap["ra_start"], _number),
            projection=_unless("STG", skymap["projection"], _plain),
            pixel_scale=_unless(0.333, skymap["pixel_scale"], _number),
            tract_overlap=_unless(1.0, skymap["tract_overlap"], _number),
            # With cells, the patch size and border follow from them.
            patch_inner=None
            if cells
            else _unless([4000, 4000], skymap["patch_inner"], lambda v: _Tuple(_values(v, None))),
            patch_border=None
            if cells
            else _unless(100, skymap["patch_border"], lambda v: _Atom(str(v))),
            cells=_unless(None, cells, lambda v: _Tuple(_values(v, None))),
            tracts=_unless(
                [],
                skymap["tracts"],
                lambda ts: _Tuple(tuple(_Tuple(tuple(_number(x) for x in t)) for t in ts)),
            ),
            doc=_unless("", skymap["doc"], _plain),
        ),
    )


def _text_or_regex(text: str | None) -> _Node | None:
    return None if text is None else _regex(text) if "\\" in text else _plain(text)


def _ingest_step(step: Mapping[str, Any]) -> _Call:
    args: list[tuple[str | None, _Node]] = [(None, _plain(step["step"]))]
    argument = _text_or_regex(step["argument"])
    if argument is not None:
        args.append((None, argument))
    return _Call("IngestStep", tuple(args))


def _ingest(ingest: Mapping[str, Any]) -> _Call:
    rules = []
    for rule in ingest["rules"]:
        steps = [_ingest_step(step) for step in rule["steps"]]
        rules.append(
            _Call(
                "IngestRule",
                _kwargs(
                    key=_plain(rule["key"]),
                    source=_plain(rule["source"]),
                    argument=_text_or_regex(rule["argument"]),
                    steps=_unless([], steps, lambda v: _Tuple(tuple(v))),
                ),
            )
        )
    return _Call(
        "IngestSpec",
        _kwargs(
            translated=_strings(ingest["translated"]),
            rules=_Tuple(tuple(rules)),
            doc=_unless("", ingest["doc"], _plain),
        ),
    )


def _field_spec(field: Mapping[str, str]) -> _Call:
    args: list[tuple[str | None, _Node]] = [(None, _plain(field["key"]))]
    if field["spec"]:
        args.append((None, _plain(field["spec"])))
    return _Call("FieldSpec", tuple(args))


# ---- render functions ---------------------------------------------------------------------

# Characters that cannot appear in the format-spec part of an f-string in Python 3.11.
_UNSAFE_SPEC = frozenset('"\\{}\n\r')


def _render_function(
    name: str, segments: Sequence[Mapping[str, str]], types: Mapping[str, str]
) -> str:
    """``def name(d): return f"..."``: the template as an f-string over the data ID."""
    units: list[_Unit] = []
    spelled = True
    for segment in segments:
        if "text" in segment:
            units.extend(_Unit(char) for char in segment["text"])
            continue
        key, spec = segment["key"], segment["spec"]
        spelled = spelled and not _UNSAFE_SPEC.intersection(spec)
        if types[key] == "datetime" and not spec:
            units.append(_Unit(f"d['{key}'].isoformat()", field=True))
        else:
            units.append(_Unit(f"d['{key}']:{spec}" if spec else f"d['{key}']", field=True))
    body: _Node = _Str(tuple(units), "f") if spelled else _joined(segments, types)
    signature = f"def {name}(d: Mapping[str, Value]) -> str:"
    return "\n".join([signature, *_layout(body, _INDENT, " " * _INDENT + "return ")])


def _joined(segments: Sequence[Mapping[str, str]], types: Mapping[str, str]) -> _Call:
    """The render body for format specs an f-string cannot hold: ``"".join((...))``."""
    parts: list[_Node] = []
    for segment in segments:
        if "text" in segment:
            parts.append(_plain(segment["text"]))
        elif types[segment["key"]] == "datetime" and not segment["spec"]:
            parts.append(_Atom(f'd["{segment["key"]}"].isoformat()'))
        else:
            spec = _flat(_plain(segment["spec"]))
            parts.append(_Atom(f'format(d["{segment["key"]}"], {spec})'))
    return _Call('"".join', ((None, _Tuple(tuple(parts))),))


def _constant_names(names: Sequence[str]) -> dict[str, str]:
    """``_PATTERN_<NAME>`` for each dataset type, numbered where upper-casing collides."""
    upper = [name.upper() for name in names]
    result = {}
    for index, (name, up) in enumerate(zip(names, upper, strict=True)):
        suffix = f"_{index}" if upper.count(up) > 1 else ""
        result[name] = f"_PATTERN_{up}{suffix}"
    return result


# ---- the module -------------------------------------------------------------------------


def _imports(ir: Mapping[str, Any], uses_datetime: bool) -> list[str]:
    has_types = bool(ir["dataset_types"])
    stdlib = [
        *(["import datetime"] if uses_datetime else []),
        *(["import re", "from collections.abc import Mapping"] if has_types else []),
    ]
    names = ["ABI_VERSION"]
    if any(dt["calibration"] for dt in ir["dataset_types"]):
        names.append("CalibrationSpec")
    if has_types:
        names.append("DatasetTypeSpec")
    if any(key["derive"] for key in ir["keys"]):
        names.append("Derivation")
    if has_types:
        names.append("FieldSpec")
    if ir["formats"]:
        names.append("FormatSpec")
    if any(dt.get("ingest") for dt in ir["dataset_types"]):
        names.extend(("IngestRule", "IngestSpec"))
    rules = [r for dt in ir["dataset_types"] for r in (dt.get("ingest") or {}).get("rules", ())]
    if any(rule["steps"] for rule in rules):
        names.append("IngestStep")
    names.append("InstrumentSpec")
    if ir["keys"]:
        names.append("KeySpec")
    if ir.get("skymaps"):
        names.append("SkyMapSpec")
    if ir["tables"]:
        names.append("TableSpec")
    if has_types:
        names.append("Value")
    flat = f"from butler.spec import {', '.join(names)}"
    if _width(flat) <= LINE_LENGTH:
        spec_import = [flat]
    else:
        spec_import = ["from butler.spec import (", *(f"    {n}," for n in names), ")"]
    return [*stdlib, *([""] if stdlib else []), *spec_import]


def _uses_datetime(node: _Node) -> bool:
    if isinstance(node, _Atom):
        return node.text.startswith("datetime.")
    if isinstance(node, _Call):
        return any(_uses_datetime(arg) for _, arg in node.args)
    if isinstance(node, _Tuple):
        return any(_uses_datetime(item) for item in node.items)
    return False


def _docline(text: str) -> str:
    """Text for the module docstring, one line, with nothing that could end it early."""
    return _escape(" ".join(text.split()), '"')


def generate(ir: Mapping[str, Any]) -> str:
    """The Python source of the mapper module for one (schema-valid) IR document."""
    keys = ir["keys"]
    types = {key["name"]: key["type"] for key in keys}
    dataset_names = [dt["name"] for dt in ir["dataset_types"]]
    patterns = _constant_names(dataset_names)
    dataset_types = []
    specs = []
    for dataset in ir["dataset_types"]:
        render = f"_path_{dataset['name']}"
        pattern = patterns[dataset["name"]]
        regex = _Call("re.compile", ((None, _regex(dataset["pattern"])),))
        dataset_types.append(
            {
                "render": _render_function(render, dataset["segments"], types),
                "pattern": _source(regex, f"{pattern} = "),
            }
        )
        specs.append(_dataset_type(dataset, render, pattern))
    column_types = _table_column_types(keys)
    instrument = _Call(
        "InstrumentSpec",
        _kwargs(
            name=_plain(ir["instrument"]["name"]),
            title=_plain(ir["instrument"]["title"]),
            doc=_unless("", ir["instrument"]["doc"], _plain),
            keys=_Tuple(tuple(_key(key) for key in keys)),
            tables=_Tuple(tuple(_table(table, column_types) for table in ir["tables"])),
            formats=_Tuple(tuple(_format(fmt) for fmt in ir["formats"])),
            dataset_types=_Tuple(tuple(specs)),
            abi_version=_Atom("ABI_VERSION"),
            compiler_version=_plain(ir["compiler_version"]),
            source=_plain(ir["source"]["file"]),
            source_sha256=_plain(ir["source"]["sha256"]),
            skymaps=_unless([], ir.get("skymaps", []), lambda ms: _Tuple(tuple(map(_skymap, ms)))),
        ),
    )
    instrument_source = _source(instrument, "INSTRUMENT = ")
    template = _environment().get_template("mapper.py.jinja")
    return template.render(
        instrument_name=_docline(ir["instrument"]["name"]),
        title=_docline(ir["instrument"]["title"]),
        source_file=_docline(ir["source"]["file"]),
        source_sha256=ir["source"]["sha256"],
        compiler_version=_docline(ir["compiler_version"]),
        imports=_imports(ir, _uses_datetime(instrument)),
        dataset_types=dataset_types,
        instrument=instrument_source,
    )


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("butlerc", "jinja"),
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
