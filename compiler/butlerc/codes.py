"""The stable diagnostic codes of butlerc, with their long explanations.

``butlerc explain CODE`` prints an entry; ``docs/errors/CODE.md`` is generated
from the same text (``python -m butlerc.codes --write-docs docs/errors``), and a
test keeps the two in step. Codes never change meaning; retired codes stay listed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CODES", "Code", "explain", "page"]


@dataclass(frozen=True)
class Code:
    """One diagnostic code: its severity, a short title and a long explanation."""

    code: str
    severity: str
    title: str
    explanation: str
    example: str
    fix: str
    allowed_by_default: bool = False
    """A warning shown only when asked for (``butlerc check --warn CODE``)."""


_ENTRIES = (
    Code(
        "BC001",
        "error",
        "syntax error",
        "The policy text does not follow the grammar of the language. The message names the "
        "token that was found and what the parser expected there.",
        'dataset raw {\n    template "{visit}.fits"\n    format fits\n'
        "# the closing brace is missing",
        "Write the construct as the language reference (docs/language.md) shows it. Every "
        "statement starts with a keyword; blocks are closed with '}'.",
    ),
    Code(
        "BC002",
        "error",
        "unknown key",
        "A template, a rule or a clause names a data ID key that the instrument does not "
        "declare. Keys are never guessed from templates: each one is declared once with "
        "`key NAME: TYPE`.",
        "key visit: int\ndataset raw {\n"
        '    template "raw/{vist:07d}.fits"   # misspelt\n    ...\n}',
        "Fix the spelling (the hint names the closest declared key), or declare the key.",
    ),
    Code(
        "BC003",
        "error",
        "unknown format",
        "A dataset type names a format that is not defined in the instrument or in a shared "
        "block it uses.",
        'dataset calexp { template "c/{visit}.fits"  format fit  keys visit }',
        "Use a defined format, or define it with `format NAME { formatter ... }`.",
    ),
    Code(
        "BC004",
        "error",
        "format spec does not fit the key's type",
        "A template field's format spec cannot format a value of the key's type: `d` needs "
        "an int, `f` a float, strftime directives a date or datetime. Python would raise at "
        "run time; the compiler refuses it up front.",
        'key filter: str\ndataset raw { template "{filter:05d}.fits" ... }',
        "Drop the spec, or use one that fits the key's type ('{filter}', '{visit:07d}').",
    ),
    Code(
        "BC005",
        "error",
        "template cannot be parsed back into a data ID",
        "Two fields stand next to each other with no literal text between them, and the "
        "first has no fixed width, so a path cannot be split back into its keys. Butler must "
        "be able to read a path back (indexing existing files, checking repositories).",
        'template "{filter}{visit}.fits"',
        "Put a separator between the fields ('{filter}-{visit}'), or give the first a fixed "
        "width (a zero-padded int whose range fits the width, or one-of values of one length).",
    ),
    Code(
        "BC006",
        "error",
        "two dataset types can render the same path",
        "Some data ID gives both dataset types the same file path, so writing one would "
        "overwrite the other. The message shows one such path.",
        'dataset a { template "x/{visit}.fits" ... }\ndataset b { template "x/{name}.fits" ... }',
        "Make the templates differ in literal text, or, if the sharing is intended (several "
        "dataset types stored in one file), declare it with `shares path with OTHER`.",
    ),
    Code(
        "BC007",
        "error",
        "cycle among derived keys",
        "Derived keys (`key a: T = f(b)`) depend on each other in a circle, so none of them can "
        "be computed first.",
        "key a: date = date(b)\nkey b: date = date(a)",
        "Break the cycle: at least one key of the chain must be given, not derived.",
    ),
    Code(
        "BC008",
        "error",
        "validity key cannot be obtained for an observation",
        "A calibration is `valid by K from D`, but K is not a date or datetime key, or dataset "
        "type D's data IDs neither hold K nor a key K is derived from. Butler could never find "
        "the time that picks the calibration's validity range.",
        "calibration bias { ... valid by dateObs from raw }   # raw has no dateObs",
        "Add the key to the observation dataset type's `keys`, or validate by a date/datetime "
        "key that it has.",
    ),
    Code(
        "BC009",
        "error",
        "duplicate definition",
        "A name is defined twice in one scope: two keys, formats, dataset types, tables or "
        "shared blocks with one name, a clause given twice in one block, or a definition "
        "that collides with one inherited through `use` without saying `override`.",
        "use obs_base\ndataset calexp { ... }   # obs_base already defines calexp",
        "Remove one definition, rename it, or write `override dataset calexp { ... }` to "
        "change the inherited one on purpose.",
    ),
    Code(
        "BC010",
        "error",
        "missing required clause",
        "A block lacks a clause it cannot do without: a dataset type needs `template`, "
        "`format` and `keys`; a calibration also needs `match` and `valid by`; a format "
        "needs `formatter`.",
        'dataset raw { template "raw/{visit}.fits" keys visit }   # no format',
        "Add the missing clause.",
    ),
    Code(
        "BC011",
        "error",
        "unknown name",
        "A reference names something that does not exist: a shared block in `use`, a "
        "derivation function or table in `= f(key)`, or an include file.",
        "use obs_bse",
        "Fix the spelling (the hint names the closest candidate), or include the file that "
        "defines it.",
    ),
    Code(
        "BC012",
        "error",
        "unknown dataset type",
        "A clause (`lookup ... from D`, `shares path with D`, `valid by K from D`) names a "
        "dataset type that is not defined.",
        "lookup filter from raws",
        "Fix the spelling, or define the dataset type.",
    ),
    Code(
        "BC013",
        "error",
        "invalid key type",
        "A key's type is not one of int, str, float, bool, date, datetime, or a datetime key "
        "lacks its time scale (tai or utc), or another type was given a scale.",
        "key taiObs: datetime",
        "Write the type as `datetime tai` or `datetime utc`; other types take no scale.",
    ),
    Code(
        "BC014",
        "error",
        "invalid constraint or value",
        "A range, a one-of list, a pattern, a normalize rule or a table row holds a value "
        "that does not fit the key's type, a range is empty, a regular expression does not "
        "compile, or a constraint does not apply to the key's type.",
        'key ccd: int in 10..0\nkey filter: str matches "[a-"',
        "Write values of the key's type, ranges as LOW..HIGH with LOW <= HIGH, and patterns "
        'that Python\'s `re` accepts (r"..." avoids doubling backslashes).',
    ),
    Code(
        "BC015",
        "error",
        "malformed template",
        "A template is not valid Python format syntax as the language allows it: unbalanced "
        "braces, an empty or positional field, a conversion (`!r`), or attribute or index "
        "access.",
        'template "raw/{visit.fits"',
        "Close each field with '}'; write a literal brace as '{{' or '}}'.",
    ),
    Code(
        "BC016",
        "error",
        "unsafe format used without opting in",
        "The format is marked `unsafe` (pickle can run arbitrary code when read), and the "
        "dataset type does not say `allow unsafe`.",
        'dataset packages { template "config/packages.pickle" format pickle keys }',
        "Add `allow unsafe` to the dataset type if you trust every writer of the repository, "
        "or store it in a safe format (yaml, json, fits, hdf5).",
    ),
    Code(
        "BC017",
        "error",
        "file cannot be read",
        "An included policy file or a table's CSV file does not exist or cannot be read, or "
        "files include each other in a circle.",
        'include "obs_base.butlr"',
        "Paths are relative to the file that names them; fix the path or the include cycle.",
    ),
    Code(
        "BC018",
        "error",
        "invalid lookup table",
        "A table's CSV file lacks the declared columns, a value does not fit its column's "
        "type, or a key value appears twice.",
        'table detectors(ccdnum: int, name: str) from "decam.csv"   # CSV header: ccd,name',
        "Make the CSV header name the declared columns, one row per key value.",
    ),
    Code(
        "BC019",
        "error",
        "override of nothing",
        "`override` changes an inherited definition, but no shared block used here defines "
        "that name.",
        "override dataset calexpp { ... }",
        "Remove `override` to define a new one, or fix the name.",
    ),
    Code(
        "BC020",
        "error",
        "key not among the dataset type's keys",
        "A template field, a lookup key, a match key or an HDU key is a declared key, but the "
        "dataset type does not list it in `keys`. A dataset type's keys are always explicit.",
        'dataset calexp { template "{visit}/{ccd}.fits" keys visit ... }',
        "Add the key to the dataset type's `keys` clause.",
    ),
    Code(
        "BC021",
        "error",
        "invalid allowance",
        'An `allow CODE "reason"` clause names a code that does not exist, or an error. Only '
        "warnings can be allowed: an error means Butler cannot use the policy as written.",
        'dataset plotSky { ... allow BC150 "Gen2 layout" }   # no such code',
        "Name the warning that is expected here (`butlerc explain CODE` describes it), or "
        "fix the error instead of allowing it.",
    ),
    Code(
        "BC022",
        "error",
        "unknown ingest source or step",
        "An ingest rule reads a source that does not exist or converts with a step that does "
        "not exist. Sources are the properties of astro-metadata-translator's "
        "ObservationInfo (exposure_id, detector_num, physical_filter, datetime_begin, object, "
        '...), header("CARD"), hdu and filename; steps are text, upper, first_word, field_name, '
        "int, float, "
        'utc_date, utc_datetime, tai_datetime, days_since("YYYY-MM-DD"), group(r"regex") and '
        "table(NAME).",
        "ingest {\n    visit <- exposure_num   # ObservationInfo calls it exposure_id\n}",
        "Fix the spelling (the hint names the closest source or step); docs/language.md lists "
        "them all.",
    ),
    Code(
        "BC023",
        "error",
        "a key that ingest cannot give",
        "A dataset type with an ingest clause lists a key that no ingest rule gives and that "
        "no derivation (`= date(KEY)`, `= TABLE(KEY)`) fills from keys that are given. Ingest "
        "would fail on every file with 'no rule gives KEY'.",
        "dataset raw {\n    keys visit, filter\n    ingest { visit <- exposure_id }   # filter?\n}",
        'Add a rule for the key (`filter <- physical_filter`, `filter <- header("FILTER")`), '
        "or derive it from a key that has one.",
    ),
    Code(
        "BC024",
        "error",
        "ingest conversion does not fit",
        "An ingest rule's source or step is given the wrong argument, a step cannot take the "
        "value the previous one gives (utc_date of an int), or the value at the end of the "
        "rule does not fit the key's type (an astropy time into a date key, a UTC datetime "
        "into a `datetime tai` key). Text always fits: the key's type parses it.",
        "key dayObs: date\ningest { dayObs <- datetime_begin }   # a time, not a date",
        "Add or change a step so that the rule gives the key's type (`| utc_date`, "
        "`| tai_datetime`, `| int`), or fix the argument as the message says.",
    ),
    Code(
        "BC025",
        "error",
        "unknown skymap",
        "A dataset type's `skymap NAME` clause, or a block's `use skymap NAME`, names a skymap "
        "that neither the instrument nor a shared block it uses defines. The tract and patch "
        "keys of that dataset type would mean nothing on the sky.",
        "dataset deepCoadd {\n    keys filter, tract, patch\n"
        "    skymap hsc_ring_v1   # misspelt\n}",
        "Fix the name (the hint names the closest defined skymap), or define it with "
        "`skymap NAME { rings 120 ... }`.",
    ),
    Code(
        "BC026",
        "error",
        "bad skymap definition",
        "A skymap definition has a parameter the language does not know, a parameter with "
        "the wrong number or type of values or a unit where none is taken, a value out of "
        "range (rings > 0, pixel_scale > 0, tract_overlap >= 0, ra_start in [0, 360), "
        "patch_inner > 0, patch_border >= 0, version 0 or 1, a tract's dec in [-90, 90] and "
        "radius > 0), or is neither a rings skymap (`rings N`) nor a discrete one (`tract` "
        "lines), or both.",
        "skymap deep {\n    rings 0            # must be positive\n    pixel_scale -0.2\n}",
        "Give each parameter as docs/language.md lists it; the message names the parameter "
        "and the allowed range.",
    ),
    Code(
        "BC027",
        "error",
        "a patch key without a tract key",
        "A dataset type whose keys belong to a skymap has a `patch` key but no `tract` key, "
        "or says `skymap NAME` without having a `tract` key. Patches are numbered within "
        "their tract, so a patch alone names no piece of sky.",
        "dataset deepCoadd {\n    keys filter, patch\n    skymap hsc_rings_v1\n}",
        "Add `tract` to the dataset type's keys (or remove its `skymap` clause).",
    ),
    Code(
        "BC028",
        "error",
        "skymap key type mismatch",
        "The way a dataset type writes its patch does not fit the type of the `patch` key: "
        '`patch gen2` writes "x,y" text and needs a str key, `patch index` writes Gen3\'s '
        "integer index y * nx + x and needs an int key; or the `tract` key is not an int, "
        "or the patch form is neither gen2 nor index.",
        "key patch: str\ndataset deepCoadd {\n    keys tract, patch\n"
        "    skymap lsst_cells_v1 patch index   # index needs an int key\n}",
        "Write the form that fits the key (`patch gen2` for a str key, `patch index` for an "
        "int one), or change the key's type.",
    ),
    Code(
        "BC029",
        "error",
        "malformed ingest format",
        "The text of a `format(...)` ingest source is not a list of header cards put together: "
        "unbalanced braces, a field with no card name or a positional one (`{}`, `{0}`), a "
        "conversion (`{CARD!r}`), a spec Python cannot format with (`{SEQNUM:5q}`), or no "
        "field at all.",
        'dataset raw {\n    ...\n    ingest { expId <- format("{DAYOBS}{SEQNUM:05d") | int }\n}',
        "Write each card as `{CARD}` or `{CARD:SPEC}` with literal text between them "
        '(`format("{RAFTBAY}_{CCDSLOT}")`); `{{` and `}}` are literal braces; a constant is '
        "`const(VALUE)`.",
    ),
    Code(
        "BC030",
        "error",
        "ingest format never matches its table",
        "A rule puts header cards together with `format(...)` and looks the text up in a table, "
        "but no row of the table's first column has the shape the format gives (its literal "
        "text differs: `R22_S11` looked up in rows written `R22S11`), so every file would fail.",
        'table dets(name: str, detector: int) { "R22S11" -> 94 }\n'
        'ingest { detector <- format("{RAFTBAY}_{CCDSLOT}") | table(dets) }',
        "Make the format's literal text match how the table writes its first column, or fix "
        "the table.",
    ),
    Code(
        "BC101",
        "warning",
        "inconsistent widths for one key",
        "The same key is formatted with different widths in different templates (`{visit:07d}` "
        "here, `{visit:06d}` there). It is legal, but usually a slip that makes related files "
        "sort and look differently.",
        'template "a/{visit:07d}.fits"   template "b/{visit:06d}.fits"',
        "Use one width for the key everywhere, unless an existing layout really differs.",
    ),
    Code(
        "BC102",
        "warning",
        "unknown formatter",
        "A format names a formatter that Butler does not ship. It may come from a plug-in "
        "(the `butler.formatters` entry-point group); if not, reads and writes will fail.",
        "format catalog { formatter fitz }",
        "Use a built-in formatter (fits, hdf5, yaml, json, ecsv, text, pickle, parquet), or "
        "install the plug-in that provides it.",
    ),
    Code(
        "BC103",
        "warning",
        "shared path declared",
        "Dataset types declared with `shares path with` really do render the same paths. The "
        "declaration is what makes the sharing legal (without it the sharing is error BC006), "
        "so this is not reported unless asked for: `butlerc check --warn BC103` lists every "
        "shared path with an example.",
        "dataset a_metadata { ... shares path with b_metadata }",
        "Nothing: the declaration already says the sharing is intended. Remove "
        "`shares path with` (and make the templates differ) if it is not.",
        allowed_by_default=True,
    ),
    Code(
        "BC104",
        "warning",
        "partial dataset type left out",
        "A shared block may define a dataset type without a template, as obs_base did for "
        "dataset types whose path each camera chooses. An instrument that uses the block "
        "without completing the definition does not get that dataset type; this warning "
        "names each one so that the omission is visible.",
        "shared obs_base { dataset quickLookExp { format fits } }\n"
        "instrument HSC { use obs_base }   # HSC gives quickLookExp no template",
        "Nothing, if the instrument has no such data (hence it is reported only when asked "
        "for: `butlerc check --warn BC104` lists what an instrument leaves out). Otherwise "
        'complete it with `override dataset NAME { template "..." keys ... }`.',
        allowed_by_default=True,
    ),
    Code(
        "BC105",
        "warning",
        "template may split more than one way",
        "Some path the template renders can be read back as two different data IDs, because "
        "a field's values may contain the literal text that separates it from its neighbour "
        "(a free str key next to '-', an int that may be negative). The message shows such "
        "a path. Reading a stored path back (index, Gen2 import) may then pick the wrong "
        "data ID; the runtime refuses a parse whose data ID renders a different path, but "
        "cannot tell two data IDs that render the same one apart.",
        "key description: str\nkey style: str\n"
        'dataset plot { template "plot-{description}-{style}.png" ... }',
        "Constrain the keys so their values cannot hold the separator: "
        '`matches r"[^-]+"`, `one of ...`, or a non-negative range. If the layout must stay '
        "(a Gen2 repository already has such paths), say so on the dataset type: "
        '`allow BC105 "why"`.',
    ),
    Code(
        "BC106",
        "warning",
        "allowance suppresses nothing",
        'An `allow CODE "reason"` clause expects a warning on its definition, but no '
        "instrument checked here reports that warning there. The allowance is stale (the "
        "layout was fixed) or on the wrong definition, and would hide a future warning.",
        'key visit: int allow BC101 "Gen2 widths differ"   # but every width is the same',
        "Remove the allowance, or move it to the definition the warning is about "
        "(`butlerc check --show-allowed` lists what each allowance suppresses).",
    ),
)

CODES: dict[str, Code] = {entry.code: entry for entry in _ENTRIES}


def _severity(entry: Code) -> str:
    if entry.allowed_by_default:
        return f"{entry.severity}, allowed by default (`butlerc check --warn {entry.code}`)"
    return entry.severity


def explain(code: str) -> str:
    """The long explanation of a code, as ``butlerc explain`` prints it."""
    entry = CODES[code.upper()]
    example = "\n".join("    " + line for line in entry.example.splitlines())
    return (
        f"{entry.code} ({_severity(entry)}): {entry.title}\n\n{entry.explanation}\n\n"
        f"Example:\n\n{example}\n\nHow to fix it: {entry.fix}\n"
    )


def page(code: str) -> str:
    """The Markdown page ``docs/errors/CODE.md`` for a code."""
    entry = CODES[code]
    return (
        f"# {entry.code}: {entry.title}\n\n"
        f"Severity: {_severity(entry)}\n\n"
        f"{entry.explanation}\n\n"
        f"## Example\n\n```\n{entry.example}\n```\n\n"
        f"## How to fix it\n\n{entry.fix}\n\n"
        f"`butlerc explain {entry.code}` prints this page.\n"
    )


def index_page() -> str:
    """``docs/errors/README.md``: every code with its title."""
    rows = "\n".join(
        f"| [{c.code}]({c.code}.md) | {c.severity}{' (allowed by default)' * c.allowed_by_default}"
        f" | {c.title} |"
        for c in _ENTRIES
    )
    return (
        "# butlerc diagnostics\n\n"
        "Every diagnostic has a stable code. `butlerc explain CODE` prints its page.\n"
        "`butlerc check --warn CODE` reports a warning that is allowed by default, "
        "`--allow CODE` silences one;\n"
        '`allow CODE "reason"` in a policy silences one on a single definition '
        "(docs/language.md).\n"
        "These pages are generated from `compiler/butlerc/codes.py` by `make docs`.\n\n"
        f"| code | severity | what |\n|---|---|---|\n{rows}\n"
    )


def write_docs(folder: Path) -> None:
    """Write one page per code and an index into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for code in CODES:
        (folder / f"{code}.md").write_text(page(code), encoding="utf-8")
    (folder / "README.md").write_text(index_page(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m butlerc.codes")
    parser.add_argument("--write-docs", type=Path, required=True, metavar="FOLDER")
    args = parser.parse_args(argv)
    write_docs(args.write_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
