"""Law: ``query(where=...)`` returns exactly the stored data IDs that Python's filter keeps.

Random small repositories (ToyCam, a runtime dataset type with a key of every type)
and random expressions (every operator, AND/OR/NOT, parentheses, aliases, bind
parameters, normalized values), on SQLite and PostgreSQL. The expression strategy
builds the text and the Python predicate it means side by side.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from butler import Butler
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = ["visit", "detector", "filter", "focus", "binned", "obsTime", "calibDate", "patch"]
TEMPLATE = "probe/{visit}/{detector}/{filter}/{focus}/{binned}/{obsTime}/{calibDate}/{patch}.yaml"
POOLS: dict[str, list[Any]] = {
    "visit": [1, 2, 3, 5, 8, 13],
    "detector": [1, 2, 5, 9],
    "filter": ["TC-G", "TC-R", "TC-I"],
    "focus": [-1.5, -0.25, 0.0, 0.5, 1.75],
    "binned": [False, True],
    "obsTime": [
        datetime.datetime(2024, 1, 1, 10, 0),
        datetime.datetime(2024, 1, 1, 10, 0, 30, 250000),
        datetime.datetime(2024, 3, 9, 23, 59, 59),
    ],
    "patch": ["1,10", "10,1", "1,2", "2,1"],  # in code point order, not a locale's
    "calibDate": [
        datetime.date(2023, 12, 31),
        datetime.date(2024, 1, 1),
        datetime.date(2024, 2, 29),
    ],
}
#: Values an ordering comparison may use though no data ID holds them.
BOUNDS: dict[str, list[Any]] = {
    "visit": [0, 4, 100],
    "detector": [0, 3, 10],
    "filter": ["A", "TC-H", "Z"],
    "focus": [-3, 0.1, 2],
    "binned": [],
    "obsTime": [datetime.datetime(2024, 1, 1, 10, 0, 0, 1)],
    "calibDate": [datetime.date(2024, 1, 2)],
    "patch": ["1,1", "10"],
}
ALIASES = {"detector": ["detector", "ccd"]}
SHORT_FILTERS = {"TC-G": "g", "TC-R": "r", "TC-I": "i"}


@dataclass(frozen=True)
class Expr:
    """An expression's text and what it means, as a Python predicate over data IDs."""

    text: str
    test: Callable[[Mapping[str, Any]], bool]
    atom: bool = False  # a comparison: needs no parentheses


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


class Binds:
    """Bind values an expression drew, by name."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"b{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def comparisons(binds: Binds) -> st.SearchStrategy[Expr]:
    return _comparisons(binds).map(lambda e: Expr(e.text, e.test, atom=True))


@st.composite
def _comparisons(draw: st.DrawFn, binds: Binds) -> Expr:
    key = draw(st.sampled_from(KEYS))
    name = draw(st.sampled_from(ALIASES.get(key, [key])))
    pool = POOLS[key]

    def written(value: Any, *, normalized: bool) -> str:
        if draw(st.integers(0, 4)) == 0:
            return binds.add(value)
        if normalized and key == "filter" and draw(st.booleans()):
            return literal(SHORT_FILTERS[value])  # normalized by the policy: 'r' is TC-R
        return literal(value)

    kind = draw(st.sampled_from(["eq", "order", "in", "between"]))
    if kind == "eq":
        op = draw(st.sampled_from(["=", "!=", "<>"]))
        value = draw(st.sampled_from(pool))
        text = f"{name} {op} {written(value, normalized=True)}"
        if op == "=":
            return Expr(text, lambda d: d[key] == value)
        return Expr(text, lambda d: d[key] != value)
    if kind == "in":
        values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        negated = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            inside = binds.add(list(values))
        else:
            inside = ", ".join(written(v, normalized=True) for v in values)
        text = f"{name} {'NOT IN' if negated else 'IN'} ({inside})"
        return Expr(text, lambda d: (d[key] in values) != negated)
    candidates = pool + BOUNDS[key]
    if kind == "order":
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        value = draw(st.sampled_from(candidates))
        tests = {
            "<": lambda d: d[key] < value,
            "<=": lambda d: d[key] <= value,
            ">": lambda d: d[key] > value,
            ">=": lambda d: d[key] >= value,
        }
        return Expr(f"{name} {op} {written(value, normalized=False)}", tests[op])
    low, high = sorted(draw(st.lists(st.sampled_from(candidates), min_size=2, max_size=2)))
    negated = draw(st.booleans())
    text = (
        f"{name} {'NOT BETWEEN' if negated else 'BETWEEN'} "
        f"{written(low, normalized=False)} AND {written(high, normalized=False)}"
    )
    return Expr(text, lambda d: (low <= d[key] <= high) != negated)


def combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    def both(word: str, join: Callable[[bool, bool], bool]) -> st.SearchStrategy[Expr]:
        return st.tuples(children, children, st.sampled_from([word, word.lower()])).map(
            lambda t: Expr(
                f"({t[0].text}) {t[2]} ({t[1].text})",
                lambda d: join(t[0].test(d), t[1].test(d)),
            )
        )

    negated = children.map(lambda e: Expr(f"NOT ({e.text})", lambda d: not e.test(d)))

    def bare(e: Expr) -> str:
        return e.text if e.atom else f"({e.text})"

    bare_and = st.tuples(children, children).map(  # parentheses only where needed
        lambda t: Expr(f"{bare(t[0])} AND {bare(t[1])}", lambda d: t[0].test(d) and t[1].test(d))
    )
    return st.one_of(
        both("AND", lambda a, b: a and b), both("OR", lambda a, b: a or b), negated, bare_and
    )


@st.composite
def expressions(draw: st.DrawFn) -> tuple[Expr, dict[str, Any]]:
    binds = Binds()
    expr = draw(st.recursive(comparisons(binds), combine, max_leaves=5))
    return expr, binds.values


def data_ids() -> st.SearchStrategy[list[dict[str, Any]]]:
    one = st.fixed_dictionaries({key: st.sampled_from(pool) for key, pool in POOLS.items()})
    return st.lists(one, max_size=12, unique_by=lambda d: tuple(d[k] for k in KEYS))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def probe(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Butler]:
    backend = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with Butler.create(tmp_path / "repo", mapper="toycam", registry=backend) as butler:
        butler.register_dataset_type("probe", template=TEMPLATE, format="yaml", keys=KEYS)
        butler.registry.register_dataset_type("probe", butler.mapper.keys("probe"))
        yield butler


def _store(butler: Butler, stored: list[dict[str, Any]]) -> None:
    rows = []
    for data_id in stored:
        normalized = butler.mapper.normalize(data_id)
        rows.append(({k: normalized[k] for k in KEYS}, butler.mapper.path("probe", normalized)))
    butler.registry.insert_many("probe", rows)


def _key(data_id: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(data_id[k] for k in KEYS)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stored=data_ids(), drawn=expressions())
def test_query_where_is_python_filtering(
    probe: Butler, stored: list[dict[str, Any]], drawn: tuple[Expr, dict[str, Any]]
) -> None:
    expr, bind = drawn
    _store(probe, stored)
    try:
        expected = sorted(_key(d) for d in stored if expr.test(d))
        found = [_key(d) for d in probe.query("probe", where=expr.text, bind=bind)]
        assert sorted(found) == expected, expr.text
        assert len(found) == len(set(found))
        assert probe.count("probe", where=expr.text, bind=bind) == len(expected)
        visits = sorted({key[0] for key in expected})
        assert probe.query_values("probe", "visit", where=expr.text, bind=bind) == visits
    finally:
        for data_id in stored:
            probe.registry.remove("probe", {k: probe.mapper.normalize(data_id)[k] for k in KEYS})


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stored=data_ids(),
    order=st.lists(st.sampled_from(KEYS), max_size=2, unique=True),
    descending=st.lists(st.booleans(), min_size=2, max_size=2),
    limit=st.none() | st.integers(0, 6),
)
def test_order_by_and_limit_are_pythons_sort_and_slice(
    probe: Butler,
    stored: list[dict[str, Any]],
    order: list[str],
    descending: list[bool],
    limit: int | None,
) -> None:
    _store(probe, stored)
    try:
        by = [f"-{k}" if down else k for k, down in zip(order, descending, strict=False)]
        expected = sorted(stored, key=_key)
        for key, down in reversed(list(zip(order, descending, strict=False))):
            expected.sort(key=lambda d, key=key: d[key], reverse=down)
        wanted = [_key(d) for d in expected][:limit]
        found = [
            _key(d) for d in probe.query("probe", order_by=by, limit=limit, visit=range(0, 99))
        ]
        assert found == wanted
    finally:
        for data_id in stored:
            probe.registry.remove("probe", {k: probe.mapper.normalize(data_id)[k] for k in KEYS})
