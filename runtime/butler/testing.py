"""Hypothesis strategies for property-testing an instrument's policy.

Three lines in an instrument's test suite check that every path its policy
renders parses back to the same data ID, and that normalization is idempotent::

    from butler import load_mapper
    from butler.testing import check_round_trip

    def test_raw_round_trips():
        check_round_trip(load_mapper("hsc"), "raw")

:func:`data_ids` is the strategy underneath, for properties of your own.
This module imports ``hypothesis``; the rest of ``butler`` never does.
"""

from __future__ import annotations

import datetime
import os
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import given, reject, settings
from hypothesis import strategies as st

from .errors import InvalidDataIdError
from .mapper import Mapper, field_parser
from .spec import DatasetTypeSpec, KeySpec, Value

__all__ = ["CrashAt", "check_round_trip", "data_ids"]

#: Dates and datetimes without declared bounds are drawn from these years.
_EARLIEST = datetime.datetime(1900, 1, 1)
_LATEST = datetime.datetime(2199, 12, 31, 23, 59, 59, 999999)
_SAFE_TEXT = string.ascii_letters + string.digits + "_-."


def data_ids(mapper: Mapper, dataset_type: str) -> st.SearchStrategy[dict[str, Value]]:
    """Data IDs (plain dicts) with the keys that ``dataset_type``'s path is made of.

    Each value is one its key allows (type, range, choices, pattern, no path
    separators unless the key allows them) and that the template can represent
    exactly (floats rounded and datetimes truncated to what their format spec
    shows). A key the others derive is left out; a derived key whose source is
    not in the template is drawn from its table.
    """
    spec = mapper.dataset_type(dataset_type)
    keys = {key.name: key for key in mapper.spec.keys}
    specs: dict[str, list[str]] = {}
    for field in spec.fields:
        specs.setdefault(field.key, []).append(field.spec)
    present = set(specs)
    free = [name for name in specs if not _derivable(keys, name, present - {name})]
    strategies = {
        name: _values(mapper, keys[name], specs[name], _table_domain(mapper, spec, name, present))
        for name in free
    }
    return st.fixed_dictionaries(strategies)


def check_round_trip(mapper: Mapper, dataset_type: str, *, max_examples: int = 100) -> None:
    """Assert ``parse(path(d)) == normalize(d)`` and idempotent normalization, for many ``d``.

    A data ID whose values are each allowed but whose path would leave the repository
    (a path fragment such as "/" where a template starts with it), or would be the path
    of another data ID (free text that splits more than one way), is refused by
    ``mapper.path`` on purpose, so it is not a counterexample; it is skipped.
    """

    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(data_ids(mapper, dataset_type))
    def round_trip(values: dict[str, Value]) -> None:
        normalized = mapper.normalize(values)
        assert mapper.normalize(dict(normalized)) == normalized, "normalize is not idempotent"
        try:
            path = mapper.path(dataset_type, normalized)
        except InvalidDataIdError as error:
            if "would leave the repository" not in str(error) and "is refused" not in str(error):
                raise
            reject()
        parsed = mapper.parse(dataset_type, path)
        assert parsed == normalized, f"{path!r} parses as {parsed!r}, not {normalized!r}"

    round_trip()


# ---- one key's values ------------------------------------------------------------------------


def _derivable(keys: Mapping[str, KeySpec], name: str, base: set[str]) -> bool:
    derive = keys[name].derive
    if derive is None:
        return False
    return derive.source in base or _derivable(keys, derive.source, base)


def _table_domain(
    mapper: Mapper, spec: DatasetTypeSpec, name: str, present: set[str]
) -> Sequence[Value] | None:
    """The table values ``name`` must take so that its table-derived keys exist."""
    tables = {table.name: table for table in mapper.spec.tables}
    for key in mapper.spec.keys:
        derive = key.derive
        if derive is None or derive.table is None or derive.table not in tables:
            continue
        rows = tables[derive.table].rows
        if derive.source == name and key.name in present:
            return sorted({source for source, _ in rows}, key=repr)
        if key.name == name and derive.source not in present:
            return sorted({value for _, value in rows}, key=repr)
    return None


def _values(
    mapper: Mapper, key: KeySpec, specs: Sequence[str], domain: Sequence[Value] | None
) -> st.SearchStrategy[Value]:
    strategy: st.SearchStrategy[Any]
    if domain is not None:
        strategy = st.sampled_from(domain)
    elif key.choices is not None:
        strategy = st.sampled_from(key.choices)
    else:
        strategy = _by_type(key)
    quantize = _quantizer(key, specs)
    return strategy.map(quantize).filter(lambda value: _accepts(mapper, key.name, value))


def _by_type(key: KeySpec) -> st.SearchStrategy[Any]:
    low: Any = key.minimum
    high: Any = key.maximum
    if key.type == "int":
        return st.integers(low, high)
    if key.type == "float":
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if key.type == "bool":
        return st.booleans()
    if key.type == "date":
        return st.dates(low or _EARLIEST.date(), high or _LATEST.date())
    if key.type == "datetime":
        return st.datetimes(low or _EARLIEST, high or _LATEST)
    if key.pattern is not None:
        return st.from_regex(key.pattern, fullmatch=True)
    alphabet = _SAFE_TEXT + ("/" if "/" in key.allow else "")
    return st.text(alphabet=alphabet, min_size=1, max_size=24)


def _quantizer(key: KeySpec, specs: Sequence[str]) -> Callable[[Any], Any]:
    """value -> the value its template fields render and parse back to."""
    if key.type in ("int", "str", "bool"):
        return lambda value: value
    steps = [(spec, field_parser(key, spec)) for spec in specs]

    def quantize(value: Any) -> Any:
        for spec, parse in steps:
            text = value.isoformat() if key.type == "datetime" and not spec else format(value, spec)
            value = parse(text)
        return value

    return quantize


def _accepts(mapper: Mapper, name: str, value: Value) -> bool:
    try:
        mapper.normalize({name: value})
    except InvalidDataIdError:
        return False
    return True


class CrashAt:
    """A ``steps`` hook for :class:`butler.Butler` that kills its process at one step boundary.

    ``Butler(root, steps=CrashAt(3))`` ends the process with ``os._exit`` (no cleanup,
    no ``finally``, as a SIGKILL would) when a write reaches its third step boundary
    (``written``, ``published``, ``set aside``, ``committed``, ``settled``): run it in
    a child process, then reopen the repository and check what recovery left.
    ``CrashAt(0)`` never crashes and only records the steps in ``seen``.
    """

    def __init__(self, step: int, exit_code: int = 77) -> None:
        self.step = step
        self.exit_code = exit_code
        self.seen: list[str] = []

    def __call__(self, name: str) -> None:
        self.seen.append(name)
        if len(self.seen) == self.step:
            os._exit(self.exit_code)
