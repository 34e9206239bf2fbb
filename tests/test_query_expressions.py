"""Query expressions: what ``Butler.query(where=...)`` accepts, answers and reports.

Errors are checked literally (the expression, the caret, the hint); the parser is
fuzzed with random text and with random strings of the language's own tokens, and
never raises anything but InvalidQueryError.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler import Butler, InvalidQueryError, UnknownDatasetTypeError
from hypothesis import given, settings
from hypothesis import strategies as st

CAL = "cal/{visit}/{detector}/{filter}.yaml"
CAT = "cat/{visit}/{detector}.yaml"


def define(butler: Butler) -> None:
    """``cal`` (visit, detector, filter) and ``cat`` (visit, detector): two YAML types."""
    butler.register_dataset_type(
        "cal", template=CAL, format="yaml", keys=["visit", "detector", "filter"]
    )
    butler.register_dataset_type("cat", template=CAT, format="yaml", keys=["visit", "detector"])


@pytest.fixture
def repo(tmp_path: Path, registries: RegistryFactory) -> Iterator[Butler]:  # noqa: F811
    """visits 1-4 x detectors 1-3 of ``cal`` (visits 1-2 in TC-R, 3-4 in TC-I); ``cat`` for
    visits 1 and 3."""
    with Butler.create(tmp_path / "repo", mapper="toycam", registry=registries()) as butler:
        define(butler)
        for visit in range(1, 5):
            for detector in range(1, 4):
                band = "r" if visit <= 2 else "i"
                butler.put({"v": visit}, "cal", visit=visit, detector=detector, filter=band)
                if visit in (1, 3):
                    butler.put({"v": visit}, "cat", visit=visit, detector=detector)
        yield butler


def ids(results: Iterator[Any], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in results]


# ---- what a query selects ------------------------------------------------------------------


def test_the_issue_example_selects_by_ranges_sets_and_inequality(repo: Butler) -> None:
    where = "visit >= 2 AND visit < 4 AND filter IN ('TC-R', 'TC-I') AND ccd != 2"
    assert ids(repo.query("cal", where=where), "visit", "detector") == [
        (2, 1),
        (2, 3),
        (3, 1),
        (3, 3),
    ]


def test_values_are_normalized_by_the_policy_and_aliases_name_keys(repo: Butler) -> None:
    assert repo.count("cal", where="filter IN ('r')") == 6  # 'r' means TC-R
    assert repo.count("cal", where="filter = 'TC-R' AND ccd = 1") == 2
    assert repo.count("cal", where="filter != 'i'") == 6


def test_between_not_and_parentheses(repo: Butler) -> None:
    assert repo.count("cal", where="visit BETWEEN 2 AND 3") == 6
    assert repo.count("cal", where="visit NOT BETWEEN 2 AND 3") == 6
    assert repo.count("cal", where="NOT (visit = 1 OR visit = 2) AND detector NOT IN (1, 2)") == 2
    # AND binds tighter than OR
    assert repo.count("cal", where="visit = 1 AND detector = 1 OR visit = 4") == 4
    assert repo.count("cal", where="visit = 1 AND (detector = 1 OR visit = 4)") == 1


def test_bind_values_and_lists(repo: Butler) -> None:
    found = repo.query(
        "cal", where="visit IN (:visits) AND detector = :d", bind={"visits": [1, 4], "d": 2}
    )
    assert ids(found, "visit", "detector") == [(1, 2), (4, 2)]
    assert repo.count("cal", where="visit > :v", bind={"v": 3}) == 3


def test_lists_and_ranges_in_keyword_form(repo: Butler) -> None:
    assert repo.count("cal", visit=[1, 4]) == 6
    assert repo.count("cal", visit=range(2, 4), detector=1) == 2
    assert repo.count("cal", visit=range(1, 5, 2)) == 6  # 1 and 3
    assert repo.count("cal", {"visit": (2,)}, ccd={1, 2}) == 2
    assert repo.count("cal", visit=[]) == 0
    assert repo.query_values("cal", "visit", filter=["r"]) == [1, 2]


def test_with_and_without_datasets_on_shared_keys(repo: Butler) -> None:
    assert ids(repo.query("cal", with_datasets=["cat"], detector=1), "visit") == [(1,), (3,)]
    assert ids(repo.query("cal", without_datasets=["cat"], detector=1), "visit") == [(2,), (4,)]
    assert repo.count("cal", where="filter = 'r'", without_datasets=["cat"]) == 3
    assert repo.query_values("cal", "visit", with_datasets=["cat"]) == [1, 3]


def test_order_by_and_limit(repo: Butler) -> None:
    found = repo.query("cal", order_by=["-visit", "-detector"], limit=4)
    assert ids(found, "visit", "detector") == [(4, 3), (4, 2), (4, 1), (3, 3)]
    assert ids(repo.query("cal", order_by="detector", limit=3), "visit", "detector") == [
        (1, 1),
        (2, 1),
        (3, 1),
    ]


def test_results_stream_and_data_ids_are_normalized(repo: Butler) -> None:
    results = repo.query("cal", where="visit = 1")
    assert not isinstance(results, list)
    first = next(iter(results))
    assert first["detectorName"] == "A1" and first["band"] == "r"  # derived keys completed


def test_one_statement_with_bound_parameters_never_formatted_values(repo: Butler) -> None:
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "EXISTS" in statement:
            statements.append((statement, parameters))

    engine = repo.registry.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        where = "filter = 'r' AND visit IN (1, 2, 903334) AND ccd > 1"
        list(repo.query("cal", where=where, without_datasets=["cat"]))
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 1
    text, parameters = statements[0]
    assert "TC-R" not in text and "903334" not in text
    assert "TC-R" in str(parameters) and "903334" in str(parameters)


# ---- errors, shown like the compiler's -----------------------------------------------------


def error(repo: Butler, where: str, **kwargs: Any) -> str:
    with pytest.raises(InvalidQueryError) as caught:
        list(repo.query("cal", where=where, **kwargs))
    return str(caught.value)


def test_a_misspelt_key_has_a_caret_and_a_did_you_mean(repo: Butler) -> None:
    assert error(repo, "visit > 1 AND vist = 3") == (
        "unknown key 'vist' for dataset type 'cal'\n"
        "  visit > 1 AND vist = 3\n"
        "                ^^^^\n"
        "  help: did you mean 'visit'? (keys of 'cal': visit, detector, filter)"
    )


def test_a_type_mismatch_points_at_the_value(repo: Butler) -> None:
    assert error(repo, "detector = '3'") == (
        "type mismatch: 'detector' of 'cal' is an int key, but '3' is a str\n"
        "  detector = '3'\n"
        "             ^^^\n"
        "  help: write an integer without quotes, e.g. 42"
    )


def test_every_problem_is_reported_at_once_in_source_order(repo: Butler) -> None:
    assert error(repo, "filter = 'x' OR dayObs = 2024-01-01") == (
        "filter='x': not one of the allowed values: 'TC-G', 'TC-R', 'TC-I'\n"
        "  filter = 'x' OR dayObs = 2024-01-01\n"
        "           ^^^\n"
        "'dayObs' is not a key of dataset type 'cal'\n"
        "  filter = 'x' OR dayObs = 2024-01-01\n"
        "                  ^^^^^^\n"
        "  help: keys of 'cal': visit, detector, filter"
    )


def test_a_syntax_error_points_where_reading_stopped(repo: Butler) -> None:
    message = error(repo, "visit = 1 AND (detector = 2")
    assert message.splitlines()[1:] == [
        "  visit = 1 AND (detector = 2",
        "                             ^",
    ]
    assert message.startswith("unexpected end of expression; expected ")
    assert error(repo, "visit == 2").splitlines()[1:] == ["  visit == 2", "         ^"]


def test_binds_missing_or_misused(repo: Butler) -> None:
    assert error(repo, "visit = :visit", bind={"visits": 1}) == (
        "no value is bound to :visit\n"
        "  visit = :visit\n"
        "          ^^^^^^\n"
        "  help: did you mean :visits?"
    )
    assert error(repo, "visit = :v", bind={"v": [1, 2]}).endswith("help: write visit IN (:v)")


def test_other_arguments_are_checked_before_any_sql(repo: Butler) -> None:
    with pytest.raises(InvalidQueryError, match="share no key"):
        repo.count("cal", with_datasets=["coadd"])
    with pytest.raises(UnknownDatasetTypeError, match="did you mean 'cat'"):
        repo.count("cal", without_datasets=["cta"])
    with pytest.raises(
        InvalidQueryError, match=r"cannot order 'cal' by 'vist'.*did you mean 'visit'"
    ):
        list(repo.query("cal", order_by=["-vist"]))
    with pytest.raises(InvalidQueryError, match="limit must be a non-negative integer"):
        list(repo.query("cal", limit=-1))
    with pytest.raises(InvalidQueryError, match="not a key of 'cal'"):
        repo.count("cal", band=["r"])
    with pytest.raises(InvalidQueryError, match="expected an int"):
        repo.count("cal", visit=["one", 2])


# ---- fuzzing: never anything but InvalidQueryError -----------------------------------------

TOKENS = [
    "visit", "detector", "ccd", "filter", "vist", "and", "AND", "or", "OR", "NOT", "not", "IN",
    "BETWEEN", "=", "!=", "<>", "<", "<=", ">", ">=", "==", "(", ")", ",", "'r'", "'TC-I'", "'",
    '"', "1", "-3", "1.5", "1e400", "nan", "2024-01-01", "2024-02-30", "2024-01-01T10:00:00",
    "TRUE", "false", ":v", ":", ":nope", "\x00", "\ud800", "'\ud800'", "9" * 40, "((((", "))",
]  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Butler]:
    with Butler.create(tmp_path_factory.mktemp("fuzz") / "repo", mapper="toycam") as butler:
        define(butler)
        butler.put({}, "cal", visit=1, detector=1, filter="r")
        yield butler


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=40)
    | st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join)
    | st.lists(st.sampled_from(TOKENS), max_size=12).map("".join)
)
def test_no_text_makes_the_query_raise_anything_but_invalid_query_error(
    fuzz_repo: Butler, text: str
) -> None:
    try:
        fuzz_repo.count("cal", where=text, bind={"v": 1})
    except InvalidQueryError as caught:
        assert str(caught).strip()


@pytest.mark.parametrize("depth", [40, 300, 5000])
def test_deep_nesting_runs_or_is_an_invalid_query(fuzz_repo: Butler, depth: int) -> None:
    assert fuzz_repo.count("cal", where="(" * depth + "visit = 1" + ")" * depth) == 1
    nots = "NOT " * (depth - depth % 2) + "visit = 1"
    if depth <= 64:
        assert fuzz_repo.count("cal", where=nots) == 1
    else:
        with pytest.raises(InvalidQueryError, match=r"nests .*too deep|more than 64 deep"):
            fuzz_repo.count("cal", where=nots)


# ---- chains, calibrations -------------------------------------------------------------------


def test_a_chain_queries_every_repository_once_per_data_id(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    with Butler.create(tmp_path / "base", mapper="toycam", registry=registries()) as base:
        define(base)
        for visit in (1, 2, 3):
            base.put({}, "cal", visit=visit, detector=1, filter="r")
        base.put({}, "cat", visit=2, detector=1)
    with Butler.create(
        tmp_path / "out", mapper="toycam", registry=registries(), parents=[tmp_path / "base"]
    ) as out:
        define(out)
        for visit in (2, 4):
            out.put({}, "cal", visit=visit, detector=1, filter="r")
        out.put({}, "cat", visit=4, detector=1)
        assert ids(out.query("cal", where="visit >= 2"), "visit") == [(2,), (3,), (4,)]
        assert ids(out.query("cal", visit=[1, 2, 4], order_by="-visit", limit=2), "visit") == [
            (4,),
            (2,),
        ]
        # a cat in the parent counts for a cal in the output, and the other way round
        assert ids(out.query("cal", with_datasets=["cat"]), "visit") == [(2,), (4,)]
        assert ids(out.query("cal", without_datasets=["cat"]), "visit") == [(1,), (3,)]
        assert out.count("cal", where="visit > 1") == 3
        assert out.query_values("cal", "visit", without_datasets=["cat"]) == [1, 3]


def test_a_calibration_type_is_queried_by_its_own_keys(tmp_path: Path) -> None:
    """The stored calibration products, whatever their certification: find_calibration
    says which one is valid for an observation."""
    import datetime

    with Butler.create(tmp_path / "repo", mapper="toycam") as butler:
        keys = butler.mapper.keys("bias")
        butler.registry.register_dataset_type("bias", keys)
        for day in (1, 2, 3):
            data_id = butler.mapper.normalize(calibDate=datetime.date(2024, 1, day), detector=day)
            butler.registry.insert("bias", {k: data_id[k] for k in keys}, f"bias{day}.fits")
        found = butler.query("bias", where="calibDate >= 2024-01-02 AND detector IN (1, 3)")
        assert ids(found, "calibDate") == [(datetime.date(2024, 1, 3),)]


def test_a_plain_partial_data_id_does_not_load_the_expression_parser(repo: Butler) -> None:
    code = f"""
import sys
from butler import Butler
with Butler({str(repo.root)!r}) as b:
    assert len(list(b.query("cal", visit=1))) == 3
    assert b.count("cal", visit=1) == 3
print("butler.query.syntax" in sys.modules, "butler.query.check" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False False"


def test_keys_looked_up_from_raw_are_queried_without_raw(tmp_path: Path) -> None:
    """``quicklook`` takes ``filter`` from ``raw`` at put time; a query reads it from its own
    records, so it still answers once the raw is gone."""
    import datetime

    with Butler.create(tmp_path / "repo", mapper="toycam") as butler:
        keys = butler.mapper.keys("raw")
        butler.registry.register_dataset_type("raw", keys)
        for visit, band in ((1, "r"), (2, "i")):
            raw = butler.mapper.normalize(
                visit=visit, detector=1, filter=band, obsTime=datetime.datetime(2024, 1, visit)
            )
            butler.registry.insert("raw", {k: raw[k] for k in keys}, f"raw{visit}.fits")
        for visit in (1, 2):
            butler.put({}, "quicklook", visit=visit, binned=False)  # filter from raw
            butler.registry.remove(
                "raw",
                {k: v for k, v in next(butler.query("raw", visit=visit)).items() if k in keys},
            )
        assert ids(butler.query("quicklook", where="filter = 'r'"), "visit", "band") == [(1, "r")]
        assert ids(butler.query("quicklook", where="band = 'i'"), "visit", "filter") == [
            (2, "TC-I")
        ]


def test_a_large_result_streams_and_an_abandoned_iterator_frees_its_connection(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    with Butler.create(tmp_path / "repo", mapper="toycam", registry=registries()) as butler:
        keys = butler.mapper.keys("src")
        butler.registry.register_dataset_type("src", keys)
        rows = [
            ({"visit": v, "detector": d}, f"s/{v}/{d}") for v in range(1, 401) for d in range(1, 10)
        ]
        butler.registry.insert_many("src", rows)
        for _ in range(20):  # more than the connection pool holds, if any were kept
            results = butler.query("src", where="visit > 100")
            assert next(results)["visit"] == 101
            del results
        found = butler.query("src", where="detector != 5", order_by="-visit")
        assert sum(1 for _ in found) == 400 * 8
        assert butler.count("src", where="visit > 100") == 300 * 9
