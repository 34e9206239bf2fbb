"""Overrides of policy settings: per repository, per environment, per command.

    butler --config datasets.calexp.format=hdf5 query repo calexp
    BUTLER_CONFIG="datasets.calexp.format=hdf5" python my_task.py
    Butler("repo", config=["datasets.calexp.format=hdf5"])

and in ``butler.yaml``::

    overrides:
      datasets.calexp.format: hdf5

An override names a setting of a dataset type (``datasets.NAME.template``,
``datasets.NAME.format``, ``datasets.NAME.doc``). Overrides are validated like
the policy itself: they become ``override dataset NAME { ... }`` members checked
by the compiler's rules (:func:`butlerc.extend.extend`), so an unknown format
is BC003, a template that another dataset type can render is BC006, and so on.

Precedence, lowest first: the repository's ``overrides``, then the session's
(``config=`` when given, else the ``BUTLER_CONFIG`` environment variable; the
command line passes the environment's items followed by its ``--config``
items). Session overrides apply to the repository opened, never to its
parents, and are not recorded: a dataset written under a session override of
its format is read back correctly only with the same override, so prefer the
repository's ``overrides`` for anything a repository's files depend on.
``explain`` lists the overrides in force for a dataset type.
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import _policy_text as policy_text
from .errors import DatasetTypeDefinitionError, OverrideError
from .spec import DatasetTypeSpec, InstrumentSpec

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "SETTINGS",
    "Override",
    "apply",
    "collect",
    "parse_items",
]

#: Session overrides when ``config=`` is not given: ``KEY=VALUE`` items, split like a shell.
ENVIRONMENT_VARIABLE = "BUTLER_CONFIG"

#: The settings of a dataset type that can be overridden.
SETTINGS = ("template", "format", "doc")

SessionConfig = Mapping[str, object] | Sequence["str | Override"]


@dataclass(frozen=True)
class Override:
    """One override: ``datasets.calexp.format`` = ``"hdf5"``, and where it came from."""

    key: str
    value: str
    source: str

    @property
    def dataset_type(self) -> str:
        return self.key.split(".")[1]

    @property
    def setting(self) -> str:
        return self.key.split(".")[2]

    def __str__(self) -> str:
        return f"{self.key}={self.value} (from {self.source})"


def parse_items(items: Iterable[str], source: str) -> list[Override]:
    """``KEY=VALUE`` items as overrides; OverrideError for an item without ``=``."""
    result = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OverrideError(f"override {item!r} (from {source}) is not KEY=VALUE")
        result.append(Override(key.strip(), value, source))
    return result


def _from_mapping(values: Mapping[str, object], source: str) -> list[Override]:
    result = []
    for key, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        result.append(Override(str(key), text, source))
    return result


def collect(
    repository: Mapping[str, object],
    session: SessionConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Override]:
    """Every override in force, lowest precedence first (a later one wins)."""
    found = _from_mapping(repository, "the repository's butler.yaml")
    if session is None:
        text = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
        try:
            items = shlex.split(text)
        except ValueError as error:
            raise OverrideError(f"${ENVIRONMENT_VARIABLE} cannot be split: {error}") from None
        found += parse_items(items, f"${ENVIRONMENT_VARIABLE}")
    elif isinstance(session, Mapping):
        found += _from_mapping(session, "config=")
    else:
        found += [
            item if isinstance(item, Override) else parse_items([item], "--config")[0]
            for item in session
        ]
    return found


def _check_key(override: Override, names: Sequence[str]) -> None:
    parts = override.key.split(".")
    if len(parts) != 3 or parts[0] != "datasets":
        raise OverrideError(
            f"override {override}: keys are datasets.DATASET_TYPE.SETTING, "
            f"with SETTING one of {', '.join(SETTINGS)}"
        )
    if parts[1] not in names:
        close = difflib.get_close_matches(parts[1], names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise OverrideError(f"override {override}: no dataset type {parts[1]!r}{hint}")
    if parts[2] not in SETTINGS:
        close = difflib.get_close_matches(parts[2], SETTINGS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise OverrideError(
            f"override {override}: {parts[2]!r} cannot be overridden; {hint}"
            f"settings are {', '.join(SETTINGS)}"
        )


def _member(spec: DatasetTypeSpec, settings: Mapping[str, str]) -> str:
    kind = "calibration" if spec.calibration is not None else "dataset"
    clauses = []
    if "doc" in settings:
        clauses.append(f"doc {policy_text.string(settings['doc'])}")
    if "template" in settings:
        clauses.append(f"template {policy_text.string(settings['template'])}")
    if "format" in settings:
        clauses.append(f"format {settings['format']}")
    return f"override {kind} {spec.name} {{ {' '.join(clauses)} }}"


def apply(spec: InstrumentSpec, overrides: Sequence[Override]) -> InstrumentSpec:
    """``spec`` with ``overrides`` applied, checked by the compiler's rules."""
    if not overrides:
        return spec
    from .dataset_types import check, extend_spec

    names = [d.name for d in spec.dataset_types]
    merged: dict[str, dict[str, str]] = {}
    for override in overrides:
        _check_key(override, names)
        if override.setting == "format" and not override.value.isidentifier():
            raise OverrideError(f"override {override}: a format is a name, e.g. 'hdf5'")
        merged.setdefault(override.dataset_type, {})[override.setting] = override.value
    by_name = {d.name: d for d in spec.dataset_types}
    text = "\n".join(_member(by_name[name], settings) for name, settings in merged.items())
    try:
        types = check(spec, text, file="<overrides>").dataset_types
    except DatasetTypeDefinitionError as error:
        shown = "\n".join(f"  {o}" for o in overrides)
        raise OverrideError(
            f"invalid override(s):\n{shown}\n{str(error).partition(chr(10))[2]}"
        ) from None
    key_types = {k.name: k.type for k in spec.keys}
    built = [policy_text.dataset_type(types[name], key_types) for name in merged]
    return extend_spec(spec, built)


def describe(overrides: Sequence[Override], dataset_type: str) -> list[str]:
    """The overrides in force for ``dataset_type``, one line each, the winning last."""
    return [f"override: {o}" for o in overrides if o.key.startswith(f"datasets.{dataset_type}.")]
