"""The ingest rules of a dataset type: what each source gives and what each step makes of it.

A rule ``KEY <- SOURCE | STEP ...`` is checked as a pipeline of value kinds: the
source has a kind (a translated property's type, ``any`` for a header card, ``str``
for the file name or a ``format`` of cards, ``int`` for the HDU number, a ``const``'s
literal's type), each step takes some kinds and
gives one, and the last kind must fit the key's type. The runtime
(``butler.ingest``) implements the same sources and steps, by name.
"""

from __future__ import annotations

import datetime
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .diagnostics import Span, did_you_mean
from .model import DatasetDef, IngestDef, IngestRule, IngestStep, Literal, Name
from .values import ValueProblem, coerce_text

__all__ = ["PROPERTIES", "SOURCES", "STEPS", "IngestChecker", "Step"]

#: ``ObservationInfo`` properties a rule may read, with the kind of their value
#: (``time``: an astropy Time; ``quantity``: an astropy Quantity).
PROPERTIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "telescope",
            "instrument",
            "physical_filter",
            "boresight_rotation_coord",
            "detector_name",
            "detector_unique_name",
            "detector_serial",
            "detector_group",
            "object",
            "science_program",
            "observation_type",
            "observation_id",
            "observation_reason",
            "exposure_group",
        ),
        "str",
    ),
    **dict.fromkeys(
        (
            "exposure_id",
            "visit_id",
            "detector_num",
            "detector_exposure_id",
            "observing_day",
            "observation_counter",
            "group_counter_start",
            "group_counter_end",
        ),
        "int",
    ),
    **dict.fromkeys(("datetime_begin", "datetime_end"), "time"),
    **dict.fromkeys(("boresight_airmass", "relative_humidity"), "float"),
    **dict.fromkeys(
        ("exposure_time", "exposure_time_requested", "dark_time", "focus_z", "temperature"),
        "quantity",
    ),
    **dict.fromkeys(("has_simulated_content", "can_see_sky"), "bool"),
}

#: Sources that are not properties: the kind of what they give (``const``: its literal's).
SOURCES: dict[str, str] = {
    "header": "any",
    "hdu": "int",
    "filename": "str",
    "format": "str",
    "const": "any",
}

#: What each source's argument is: a card name, a format of cards, a literal value.
_SOURCE_ARGUMENTS = {
    "header": 'header("CARD")',
    "format": 'format("{CARD}...")',
    "const": "const(VALUE)",
}

#: Time scales ``time("SCALE")`` reads text in (astropy's names).
TIME_SCALES = ("utc", "tai", "tt", "ut1", "tcg", "tcb", "tdb")

_TEXT = frozenset({"str", "any"})
_TIME = frozenset({"time", "str", "any"})


@dataclass(frozen=True)
class Step:
    """A conversion: the kinds it takes, the kind it gives, and its argument (if any)."""

    takes: frozenset[str]
    gives: str
    argument: str | None = None  # "date", "regex", "table", "pattern" or "scale"
    doc: str = ""


#: Conversions a rule may apply, by name.
STEPS: dict[str, Step] = {
    "text": Step(frozenset({"str", "any", "int", "float"}), "str", doc="str(value), stripped"),
    "upper": Step(_TEXT, "str", doc="stripped and upper-cased"),
    "first_word": Step(_TEXT, "str", doc='the first word: "g DECam SDSS c0001" -> "g"'),
    "field_name": Step(_TEXT, "str", doc='each non-word character -> "_", upper-cased'),
    "int": Step(frozenset({"str", "any", "int", "float"}), "int", doc="a whole number"),
    "float": Step(frozenset({"str", "any", "int", "float", "quantity"}), "float", doc="a number"),
    "utc_date": Step(_TIME, "date", doc="the UTC calendar date"),
    "utc_datetime": Step(_TIME, "datetime utc", doc="the UTC date and time"),
    "tai_datetime": Step(_TIME, "datetime tai", doc="the TAI date and time"),
    "days_since": Step(_TIME, "int", "date", doc="whole UTC days since a date"),
    "group": Step(_TEXT, "str", "regex", doc="a regular expression's first group"),
    "table": Step(frozenset(), "any", "table", doc="looked up in a table of the policy"),
    "date": Step(
        frozenset({"str", "any", "int"}), "date", "pattern", doc="text read by a strptime pattern"
    ),
    "time": Step(_TEXT, "time", "scale", doc="text read as a time in a scale (utc, tai, ...)"),
}


def format_fields(text: str) -> list[tuple[str, str]] | str:
    """The ``(card, spec)`` fields of a ``format(...)`` source, or why it is malformed."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as error:
        return f"{error} (write {{{{ and }}}} for literal braces)"
    fields = []
    for _, card, spec, conversion in parsed:
        if card is None:
            continue
        if not card or card.isdigit() or any(c in card for c in ".[]"):
            return f"'{{{card}}}' is not a card name: write {{CARD}} or {{CARD:SPEC}}"
        if conversion is not None:
            return f"'{{{card}!{conversion}}}' has a conversion; write {{CARD}} or {{CARD:SPEC}}"
        if spec and "{" in spec:
            return f"the spec of '{card}' has a nested field"
        if spec:
            try:
                format(0, spec)
            except ValueError:
                try:
                    format("", spec)
                except ValueError:
                    return f"'{spec}' is not a format spec (as in {{SEQNUM:05d}})"
        fields.append((card, spec or ""))
    if not fields:
        return "it names no card; a constant is written const(VALUE)"
    return fields


def format_pattern(text: str) -> re.Pattern[str]:
    """A regular expression every value of a well-formed ``format(...)`` source matches."""
    parts = []
    for literal, card, _, _ in string.Formatter().parse(text):
        parts.append(re.escape(literal))
        if card is not None:
            parts.append(".*")
    return re.compile("".join(parts), re.DOTALL)


def fits(kind: str, key_type: str, scale: str | None) -> bool:
    """Whether a value of ``kind`` fits a key (strings are parsed by the key's type)."""
    if kind in ("any", "str"):
        return True
    if key_type == "datetime":
        return kind == "time" or kind == "datetime" or kind == f"datetime {scale or 'utc'}"
    if key_type == "float":
        return kind in ("int", "float")
    return kind == key_type


Report = Callable[[str, str, Span, str | None], None]


class IngestChecker:
    """Checks the ``ingest`` clause of one dataset type (used by ``checks``)."""

    def __init__(
        self,
        key_types: Mapping[str, str],
        key_scales: Mapping[str, str | None],
        table_types: Mapping[str, tuple[str, str]],
        report: Report,
        table_keys: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.key_types = key_types
        self.key_scales = key_scales
        self.table_types = table_types
        self.report = report
        self.table_keys = table_keys or {}

    def check(
        self,
        dataset: DatasetDef,
        ingest: IngestDef,
        keys: set[str],
        obtainable: Callable[..., bool],
    ) -> None:
        label = f"{dataset.kind} '{dataset.name.value}'"
        given: dict[str, Span] = {}
        for rule in ingest.rules:
            key = rule.key.value
            if key in given:
                self.report(
                    "BC009", f"key '{key}' has two ingest rules in {label}", rule.span, None
                )
            given[key] = rule.span
            self.rule(rule, label)
        missing = [k for k in sorted(keys) if not obtainable(k, set(given))]
        if missing:
            self.report(
                "BC023",
                f"no ingest rule of {label} gives {', '.join(missing)}, and no derivation "
                "fills it from keys that are given",
                ingest.span,
                f"add a rule such as '{missing[0]} <- header(\"CARD\")' to its ingest clause",
            )

    def rule(self, rule: IngestRule, label: str) -> None:
        kind = self.source(rule, label)
        for index, step in enumerate(rule.steps):
            if kind is None:
                return
            kind = self.step(step, kind, rule.key.value)
            if index == 0 and kind is not None and rule.source.value == "format":
                self.format_meets_table(rule, step)
        key = rule.key.value
        if kind is None or key not in self.key_types:
            return
        key_type, scale = self.key_types[key], self.key_scales.get(key)
        if rule.source.value == "const" and not rule.steps and rule.argument is not None:
            try:
                coerce_text(str(rule.argument.value), key_type)
            except ValueProblem as problem:
                self.report(
                    "BC024",
                    f"const({rule.argument.value!r}) does not fit '{key}': {problem}",
                    rule.argument.span,
                    f"write a value of type {key_type}",
                )
            return
        if not fits(kind, key_type, scale):
            shown = key_type if key_type != "datetime" else f"datetime {scale or 'utc'}"
            hint = {
                "date": "convert it with '| utc_date'",
                "datetime utc": "convert it with '| utc_datetime'",
                "datetime tai": "convert it with '| tai_datetime'",
                "int": "convert it with '| int'",
            }.get(shown, "convert it with a step that gives " + shown)
            self.report(
                "BC024",
                f"the ingest rule for '{key}' gives a {kind} value, but '{key}' is {shown}",
                rule.span,
                hint,
            )

    def source(self, rule: IngestRule, label: str) -> str | None:
        name = rule.source.value
        kind = SOURCES.get(name) or PROPERTIES.get(name)
        if kind is None:
            known = [*SOURCES, *PROPERTIES]
            self.report(
                "BC022",
                f"unknown ingest source '{name}' in {label}",
                rule.source.span,
                did_you_mean(name, known)
                or 'a source is an ObservationInfo property, header("CARD"), hdu or filename',
            )
            return None
        needs = name in _SOURCE_ARGUMENTS
        if needs != (rule.argument is not None):
            self.report(
                "BC024",
                f"'{name}' {'needs an' if needs else 'takes no'} argument",
                rule.source.span,
                f"write {_SOURCE_ARGUMENTS[name]}" if needs else f"write '{name}' alone",
            )
            return None
        argument = rule.argument
        if argument is None:
            return kind
        if name == "const":
            return argument.kind
        if argument.kind != "str":
            self.report(
                "BC024",
                f"'{name}' needs a string argument",
                argument.span,
                f"write {_SOURCE_ARGUMENTS[name]}",
            )
            return None
        if name == "format":
            fields = format_fields(str(argument.value))
            if isinstance(fields, str):
                self.report(
                    "BC029",
                    f"malformed format in the rule for '{rule.key.value}': {fields}",
                    argument.span,
                    'write the cards as fields: format("{RAFTBAY}_{CCDSLOT}"), '
                    'format("{DAYOBS}{SEQNUM:05d}")',
                )
                return None
        return kind

    def format_meets_table(self, rule: IngestRule, step: IngestStep) -> None:
        """BC030: a ``format(...)`` looked up in a table none of whose rows it can give."""
        if step.function.value != "table" or not isinstance(step.argument, Name):
            return
        assert rule.argument is not None
        text = str(rule.argument.value)
        rows = self.table_keys.get(step.argument.value, ())
        pattern = format_pattern(text)
        if not rows or any(pattern.fullmatch(row) for row in rows):
            return
        self.report(
            "BC030",
            f"the rule for '{rule.key.value}' looks up format({text!r}) in table "
            f"'{step.argument.value}', whose rows ({rows[0]!r}, ...) it can never give",
            step.span,
            "make the format's literal text match the table's first column, or fix the table",
        )

    def step(self, step: IngestStep, kind: str, key: str) -> str | None:
        name = step.function.value
        entry = STEPS.get(name)
        if entry is None:
            self.report(
                "BC022",
                f"unknown ingest step '{name}' in the rule for '{key}'",
                step.function.span,
                did_you_mean(name, STEPS) or f"steps are {', '.join(STEPS)}",
            )
            return None
        problem = self.argument(step, entry)
        if problem is not None:
            self.report("BC024", f"'{name}' in the rule for '{key}': {problem}", step.span, None)
            return None
        takes, gives = entry.takes, entry.gives
        if entry.argument == "table":
            assert isinstance(step.argument, Name)
            left, right = self.table_types[step.argument.value]
            takes, gives = frozenset({left, "str", "any"}), right
        if kind not in takes:
            self.report(
                "BC024",
                f"'{name}' in the rule for '{key}' cannot take a {kind} value "
                f"(it takes {', '.join(sorted(takes))})",
                step.span,
                None,
            )
            return None
        return gives

    def argument(self, step: IngestStep, entry: Step) -> str | None:
        """Why a step's argument is wrong, or None."""
        argument = step.argument
        if entry.argument is None:
            return None if argument is None else "takes no argument"
        if entry.argument == "table":
            if not isinstance(argument, Name):
                return "needs the name of a table: table(NAME)"
            if argument.value not in self.table_types:
                return f"there is no table '{argument.value}'"
            return None
        if not isinstance(argument, Literal) or argument.kind != "str":
            return f"needs a string argument ({entry.argument})"
        text = str(argument.value)
        if entry.argument == "pattern":
            sample = datetime.date(2024, 1, 31)
            try:
                read = datetime.datetime.strptime(sample.strftime(text), text).date()
            except ValueError as error:
                return f"'{text}' is not a strptime pattern: {error}"
            if read != sample:
                return f"'{text}' does not give a whole date; use %Y, %m and %d (as in '%Y%m%d')"
            return None
        if entry.argument == "scale":
            if text not in TIME_SCALES:
                return f"'{text}' is not a time scale (scales: {', '.join(TIME_SCALES)})"
            return None
        if entry.argument == "date":
            try:
                datetime.date.fromisoformat(text)
            except ValueError:
                return f"'{text}' is not a date YYYY-MM-DD"
            return None
        try:
            pattern = re.compile(text)
        except re.error as error:
            return f"bad regular expression: {error}"
        if pattern.groups < 1:
            return "the regular expression has no group; put the part to keep in (...)"
        return None
