"""The ingest rules of a dataset type: what each source gives and what each step makes of it.

A rule ``KEY <- SOURCE | STEP ...`` is checked as a pipeline of value kinds: the
source has a kind (a translated property's type, ``any`` for a header card, ``str``
for the file name, ``int`` for the HDU number), each step takes some kinds and
gives one, and the last kind must fit the key's type. The runtime
(``butler.ingest``) implements the same sources and steps, by name.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .diagnostics import Span, did_you_mean
from .model import DatasetDef, IngestDef, IngestRule, IngestStep, Literal, Name

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

#: Sources that are not properties: the kind of what they give.
SOURCES: dict[str, str] = {"header": "any", "hdu": "int", "filename": "str"}

_TEXT = frozenset({"str", "any"})
_TIME = frozenset({"time", "str", "any"})


@dataclass(frozen=True)
class Step:
    """A conversion: the kinds it takes, the kind it gives, and its argument (if any)."""

    takes: frozenset[str]
    gives: str
    argument: str | None = None  # "date", "regex" or "table"
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
}


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
    ) -> None:
        self.key_types = key_types
        self.key_scales = key_scales
        self.table_types = table_types
        self.report = report

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
        for step in rule.steps:
            if kind is None:
                return
            kind = self.step(step, kind, rule.key.value)
        key = rule.key.value
        if kind is None or key not in self.key_types:
            return
        key_type, scale = self.key_types[key], self.key_scales.get(key)
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
        if (name == "header") != (rule.argument is not None):
            self.report(
                "BC024",
                f"'{name}' {'needs' if name == 'header' else 'takes no'} argument",
                rule.source.span,
                'write header("CARD")' if name == "header" else f"write '{name}' alone",
            )
            return None
        return kind

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
