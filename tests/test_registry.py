"""The registry records datasets by data ID, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from butler.errors import DatasetExistsError, RegistryError, UnknownDatasetTypeError
from butler.registry import SCHEMA_VERSION, Registry
from butler.spec import DatasetTypeSpec, FieldSpec, InstrumentSpec, KeySpec

CALEXP = {"visit": "int", "ccd": "int", "filter": "str"}


@pytest.fixture
def registry(registry_url: str) -> Iterator[Registry]:
    with Registry.create(registry_url, "HSC") as registry:
        registry.register_dataset_type("calexp", CALEXP)
        yield registry


def calexp(visit: int, ccd: int, filter: str = "HSC-G") -> dict[str, Any]:
    return {"visit": visit, "ccd": ccd, "filter": filter}


def fill(registry: Registry) -> None:
    for visit in (10, 11):
        for ccd in (2, 1, 3):
            flt = "HSC-G" if visit == 10 else "HSC-R"
            registry.insert("calexp", calexp(visit, ccd, flt), f"calexp/{visit}/{ccd}.fits")


# ---- creating and opening ------------------------------------------------------------------


def test_reopened_registry_sees_data(registry_url: str) -> None:
    with Registry.create(registry_url, "HSC") as registry:
        registry.register_dataset_type("calexp", CALEXP)
        registry.insert("calexp", calexp(1, 2), "a.fits", run="run1")
    with Registry.open(registry_url) as registry:
        assert registry.find("calexp", calexp(1, 2)) == "a.fits"
        assert registry.dataset_types() == {"calexp": CALEXP}
        repository_id = registry.repository_id
        assert registry.metadata == {
            "instrument": "HSC",
            "repository_id": repository_id,
            "schema_version": str(SCHEMA_VERSION),
        }
        assert registry.schema_version == SCHEMA_VERSION


def test_open_without_registry_is_refused(registry_url: str) -> None:
    with pytest.raises(RegistryError, match=r"no registry at .*Registry.create"):
        Registry.open(registry_url)


def test_create_twice_is_refused_unless_exist_ok(registry_url: str) -> None:
    Registry.create(registry_url, "HSC").close()
    with pytest.raises(RegistryError, match="already exists"):
        Registry.create(registry_url, "HSC")
    Registry.create(registry_url, "HSC", exist_ok=True).close()
    with pytest.raises(RegistryError, match="instrument 'HSC', not 'DECam'"):
        Registry.create(registry_url, "DECam", exist_ok=True)


def test_newer_schema_version_is_refused(registry_url: str) -> None:
    with Registry.create(registry_url) as registry, registry.engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(RegistryError, match=r"schema version 99, newer .* upgrade butler"):
        Registry.open(registry_url)


def test_bad_urls_are_refused() -> None:
    with pytest.raises(RegistryError, match="in-memory"):
        Registry.create("sqlite://")
    with pytest.raises(RegistryError, match="unsupported database 'mysql'"):
        Registry.create("mysql://u@h/db")
    with pytest.raises(RegistryError, match="invalid registry URL"):
        Registry.create("not a url")


def test_unreachable_server_is_reported_without_password() -> None:
    with pytest.raises(RegistryError, match="cannot connect") as info:
        Registry.open("postgresql+psycopg://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(info.value)


def test_metadata(registry: Registry) -> None:
    registry.set_metadata("butler_version", "0.1.0")
    registry.set_metadata("butler_version", "0.2.0")
    assert registry.metadata["butler_version"] == "0.2.0"
    with pytest.raises(RegistryError, match="schema_version"):
        registry.set_metadata("schema_version", "2")


def test_create_from_instrument_spec(registry_url: str) -> None:
    keys = (KeySpec("visit", "int"), KeySpec("ccd", "int"), KeySpec("dateObs", "date"))
    raw = DatasetTypeSpec(
        name="raw",
        template="{dateObs}/{visit}-{ccd}.fits",
        format="fits",
        keys=("visit", "ccd", "dateObs"),
        fields=(FieldSpec("dateObs"), FieldSpec("visit"), FieldSpec("ccd")),
        render=lambda d: f"{d['dateObs']}/{d['visit']}-{d['ccd']}.fits",
        pattern=re.compile(r"(?P<dateObs>[^/]+)/(?P<visit>\d+)-(?P<ccd>\d+)\.fits"),
    )
    spec = InstrumentSpec("HSC", "Hyper Suprime-Cam", keys, (), (), (raw,), source_sha256="ab")
    with Registry.create(registry_url, spec) as registry:
        assert registry.dataset_types() == {
            "raw": {"visit": "int", "ccd": "int", "dateObs": "date"}
        }
        assert registry.metadata["instrument_title"] == "Hyper Suprime-Cam"
        assert registry.metadata["policy_sha256"] == "ab"
        assert registry.count("raw") == 0


def test_closed_registry_refuses_work(registry: Registry) -> None:
    registry.insert("calexp", calexp(1, 1), "a.fits")  # this thread's connections now exist
    registry.close()
    with pytest.raises(RegistryError, match="closed"):
        registry.insert("calexp", calexp(1, 2), "b.fits")
    with pytest.raises(RegistryError, match="closed"):
        registry.replace("calexp", calexp(1, 1), "c.fits")


# ---- dataset types ---------------------------------------------------------------------------


def test_register_is_idempotent_and_refuses_redefinition(registry: Registry) -> None:
    registry.register_dataset_type("calexp", dict(reversed(CALEXP.items())))
    with pytest.raises(RegistryError) as info:
        registry.register_dataset_type("calexp", {"visit": "str", "ccd": "int"})
    message = str(info.value)
    assert "calexp(visit: int, ccd: int, filter: str)" in message
    assert "calexp(visit: str, ccd: int)" in message


def test_redefinition_seen_by_another_registry(registry_url: str, registry: Registry) -> None:
    with Registry.open(registry_url) as other, pytest.raises(RegistryError, match="already"):
        other.register_dataset_type("calexp", {"visit": "int"})


def test_register_refuses_unknown_types(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="key 'visit' has unknown type 'integer'"):
        registry.register_dataset_type("raw", {"visit": "integer"})


def test_unknown_dataset_type(registry: Registry) -> None:
    with pytest.raises(UnknownDatasetTypeError, match="did you mean 'calexp'"):
        registry.find("calexpp", calexp(1, 1))
    assert not registry.has_dataset_type("calexpp")
    assert registry.has_dataset_type("calexp")


def test_type_registered_by_another_process_is_found(registry_url: str, registry: Registry) -> None:
    with Registry.open(registry_url) as other:
        other.register_dataset_type("bias", {"ccd": "int"})
        other.insert("bias", {"ccd": 1}, "bias/1.fits")
    assert registry.find("bias", {"ccd": 1}) == "bias/1.fits"
    assert registry.keys("bias") == {"ccd": "int"}


def test_awkward_names(registry: Registry) -> None:
    keys = {"id": "int", "path": "str", "run": "int", "Visit": "int", "visit": "str"}
    registry.register_dataset_type("Deep-Coadd.v2", keys)
    data_id: dict[str, Any] = {"id": 1, "path": "p", "run": 7, "Visit": 3, "visit": "x"}
    registry.insert("Deep-Coadd.v2", data_id, "file.fits", run="output")
    assert registry.find("Deep-Coadd.v2", data_id) == "file.fits"
    assert list(registry.query("Deep-Coadd.v2", {"run": 7})) == [data_id]
    assert registry.dataset_types()["Deep-Coadd.v2"] == keys


def test_dataset_type_without_keys(registry: Registry) -> None:
    registry.register_dataset_type("camera", {})
    registry.insert("camera", {}, "camera.yaml")
    with pytest.raises(DatasetExistsError):
        registry.insert("camera", {}, "camera2.yaml")
    assert registry.find("camera", {}) == "camera.yaml"
    assert list(registry.query("camera")) == [{}]
    assert registry.remove("camera", {})


# ---- writes and lookups -----------------------------------------------------------------------


def test_insert_find_remove(registry: Registry) -> None:
    first = registry.insert("calexp", calexp(1, 2), "calexp/1/2.fits")
    second = registry.insert("calexp", calexp(1, 3), "calexp/1/3.fits")
    assert second != first
    assert registry.find("calexp", calexp(1, 2)) == "calexp/1/2.fits"
    assert registry.find("calexp", calexp(1, 4)) is None
    assert registry.remove("calexp", calexp(1, 2))
    assert not registry.remove("calexp", calexp(1, 2))
    assert registry.find("calexp", calexp(1, 2)) is None
    assert registry.find("calexp", calexp(1, 3)) == "calexp/1/3.fits"


def test_duplicate_is_refused_and_keeps_the_original(registry: Registry) -> None:
    registry.insert("calexp", calexp(1, 2), "old.fits")
    with pytest.raises(DatasetExistsError) as info:
        registry.insert("calexp", calexp(1, 2), "new.fits")
    message = str(info.value)
    assert "'calexp'" in message
    assert "{visit: 1, ccd: 2, filter: 'HSC-G'}" in message
    assert "old.fits" in message
    assert registry.find("calexp", calexp(1, 2)) == "old.fits"


def test_replace_overwrites_or_inserts(registry: Registry) -> None:
    first = registry.insert("calexp", calexp(1, 2), "old.fits")
    assert registry.replace("calexp", calexp(1, 2), "new.fits", run="r2") == first
    assert registry.find("calexp", calexp(1, 2)) == "new.fits"
    registry.replace("calexp", calexp(1, 3), "other.fits")
    assert registry.count("calexp") == 2


@pytest.mark.parametrize(
    ("data_id", "match"),
    [
        ({"visit": 1, "ccd": 2}, "missing key.*filter"),
        ({**calexp(1, 2), "tract": 0}, "unknown key 'tract'.*visit, ccd, filter"),
        ({"visit": 1, "filter": "g", "tract": 0}, "missing key.*ccd"),
    ],
)
def test_incomplete_data_ids_are_refused(
    registry: Registry, data_id: dict[str, Any], match: str
) -> None:
    with pytest.raises(RegistryError, match=match):
        registry.insert("calexp", data_id, "a.fits")
    with pytest.raises(RegistryError, match=match):
        registry.find("calexp", data_id)
    with pytest.raises(RegistryError, match=match):
        registry.remove("calexp", data_id)
    assert registry.count("calexp") == 0


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("visit", "1", "'visit' .* must be an int, not '1' \\(str\\)"),
        ("ccd", True, "'ccd' .* must be an int"),
        ("filter", 3, "'filter' .* must be a str"),
    ],
)
def test_values_of_the_wrong_type_are_refused(
    registry: Registry, key: str, value: Any, match: str
) -> None:
    # find does not check types on SQLite (the caller normalizes); writes and queries do
    with pytest.raises(RegistryError, match=match):
        registry.insert("calexp", {**calexp(1, 2), key: value}, "a.fits")
    with pytest.raises(RegistryError, match=match):
        registry.count("calexp", {key: value})
    assert registry.count("calexp") == 0


@pytest.mark.parametrize("path", ["", "a/../b.fits", "/abs/../b.fits", "a\\b.fits", 3])
def test_bad_paths_are_refused(registry: Registry, path: Any) -> None:
    with pytest.raises(RegistryError, match=r"POSIX path without '\.\.' segments"):
        registry.insert("calexp", calexp(1, 2), path)


def test_absolute_paths_record_files_left_where_they_are(registry: Registry) -> None:
    registry.insert("calexp", calexp(1, 2), "/data/gen2/HSC/calexp.fits")
    assert registry.find("calexp", calexp(1, 2)) == "/data/gen2/HSC/calexp.fits"


@pytest.mark.parametrize(
    ("type_name", "values"),
    [
        ("int", [-(2**62), 0, 2**40]),
        ("str", ["", "HSC-G", "ünïcode ☃", "a'b\"c"]),
        ("float", [-1.5, 0.1, 1e300, 2.0**-1074]),
        ("bool", [False, True]),
        ("date", [datetime.date(1, 1, 1), datetime.date(2024, 2, 29), datetime.date(9999, 12, 31)]),
        (
            "datetime",
            [
                datetime.datetime(2013, 11, 2, 6, 30, 1, 123456),
                datetime.datetime(2013, 11, 2, 6, 30),
                datetime.datetime(1970, 1, 1),
            ],
        ),
    ],
)
def test_values_round_trip(registry: Registry, type_name: str, values: list[Any]) -> None:
    registry.register_dataset_type("thing", {"value": type_name, "n": "int"})
    for n, value in enumerate(values):
        registry.insert("thing", {"value": value, "n": n}, f"thing/{n}")
    for n, value in enumerate(values):
        assert registry.find("thing", {"value": value, "n": n}) == f"thing/{n}"
        (found,) = registry.query("thing", {"value": value})
        assert found == {"value": value, "n": n}
        assert type(found["value"]) is type(value)
    assert registry.query_values("thing", "value") == sorted(values)


def test_aware_datetime_is_refused(registry: Registry) -> None:
    registry.register_dataset_type("thing", {"t": "datetime"})
    aware: Any = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    with pytest.raises(RegistryError, match="naive datetime"):
        registry.insert("thing", {"t": aware}, "a")


# ---- queries ------------------------------------------------------------------------------------


def test_query_is_ordered_and_limited(registry: Registry) -> None:
    fill(registry)
    assert list(registry.query("calexp", {"visit": 10})) == [
        calexp(10, 1),
        calexp(10, 2),
        calexp(10, 3),
    ]
    assert list(registry.query("calexp", {"filter": "HSC-R"}, limit=2)) == [
        calexp(11, 1, "HSC-R"),
        calexp(11, 2, "HSC-R"),
    ]
    assert len(list(registry.query("calexp"))) == 6
    assert list(registry.query("calexp", {"visit": 12})) == []
    assert registry.complete("calexp", {"ccd": 2}, 5) == [calexp(10, 2), calexp(11, 2, "HSC-R")]
    assert registry.complete("calexp", {"ccd": 2, "visit": 11}, 2) == [calexp(11, 2, "HSC-R")]


def test_count_and_values(registry: Registry) -> None:
    fill(registry)
    assert registry.count("calexp") == 6
    assert registry.count("calexp", {"filter": "HSC-G"}) == 3
    assert registry.count("calexp", {"filter": "HSC-G", "visit": 11}) == 0
    assert registry.query_values("calexp", "visit") == [10, 11]
    assert registry.query_values("calexp", "ccd", {"visit": 11}) == [1, 2, 3]
    with pytest.raises(RegistryError, match=r"unknown key 'detector'.*visit, ccd, filter"):
        registry.query_values("calexp", "detector")


def test_unknown_key_in_partial(registry: Registry) -> None:
    with pytest.raises(RegistryError, match=r"unknown key 'tract'.*keys are visit, ccd, filter"):
        registry.query("calexp", {"tract": 1})
    with pytest.raises(RegistryError, match="unknown key 'tract'"):
        registry.count("calexp", {"tract": 1})
    with pytest.raises(RegistryError, match="limit"):
        registry.query("calexp", {}, limit=-1)


def test_iteration_over_everything(registry: Registry) -> None:
    fill(registry)
    registry.register_dataset_type("bias", {"ccd": "int"})
    registry.insert("bias", {"ccd": 1}, "bias/1.fits")
    assert list(registry.all_paths("bias")) == ["bias/1.fits"]
    everything = list(registry.datasets())
    assert everything[0] == ("bias", {"ccd": 1}, "bias/1.fits")
    assert everything[1] == ("calexp", calexp(10, 1), "calexp/10/1.fits")
    assert len(everything) == 7
    assert len(list(registry.datasets("calexp"))) == 6


def test_queries_can_nest(registry: Registry) -> None:
    fill(registry)
    pairs = [
        (visit, data_id["ccd"])
        for visit in registry.query_values("calexp", "visit")
        for data_id in registry.query("calexp", {"visit": visit})
        if registry.find("calexp", data_id) is not None
    ]
    assert len(pairs) == 6


# ---- transactions ----------------------------------------------------------------------------


def test_insert_many_is_one_commit(registry: Registry) -> None:
    commits: list[object] = []
    sa.event.listen(registry.engine, "commit", commits.append)
    rows = ((calexp(v, c), f"calexp/{v}/{c}.fits") for v in range(100) for c in range(100))
    assert registry.insert_many("calexp", rows, run="bulk") == 10_000
    assert len(commits) == 1
    assert registry.count("calexp") == 10_000
    assert registry.find("calexp", calexp(99, 99)) == "calexp/99/99.fits"


@pytest.mark.parametrize("existing", [False, True])
def test_failed_insert_many_leaves_nothing(registry: Registry, existing: bool) -> None:
    if existing:
        registry.insert("calexp", calexp(5, 5), "old.fits")
    rows = [(calexp(v, 5), f"{v}.fits") for v in range(10)]
    if not existing:
        rows.append((calexp(5, 5), "again.fits"))
    with pytest.raises(DatasetExistsError, match=r"visit: 5, ccd: 5.*nothing was inserted"):
        registry.insert_many("calexp", rows)
    assert registry.count("calexp") == (1 if existing else 0)


def test_transaction_commits_or_rolls_back(registry: Registry) -> None:
    with registry.transaction():
        registry.insert("calexp", calexp(1, 1), "a.fits")
        with registry.transaction():  # joins the outer one
            registry.insert("calexp", calexp(1, 2), "b.fits")
        assert registry.find("calexp", calexp(1, 2)) == "b.fits"
        assert registry.count("calexp") == 2
    assert registry.count("calexp") == 2
    with pytest.raises(ZeroDivisionError), registry.transaction():
        registry.insert("calexp", calexp(2, 1), "c.fits")
        registry.remove("calexp", calexp(1, 1))
        registry.register_dataset_type("bias", {"ccd": "int"})
        1 / 0  # noqa: B018
    assert registry.find("calexp", calexp(2, 1)) is None
    assert registry.find("calexp", calexp(1, 1)) == "a.fits"
    assert not registry.has_dataset_type("bias")
    with pytest.raises(UnknownDatasetTypeError):
        registry.find("bias", {"ccd": 1})


def test_failure_inside_transaction_keeps_earlier_writes(registry: Registry) -> None:
    with registry.transaction():
        registry.insert("calexp", calexp(1, 1), "a.fits")
        with pytest.raises(DatasetExistsError):
            registry.insert("calexp", calexp(1, 1), "again.fits")
        with pytest.raises(DatasetExistsError):
            registry.insert_many("calexp", [(calexp(3, 3), "x"), (calexp(1, 1), "y")])
        registry.insert("calexp", calexp(1, 2), "b.fits")
    assert sorted(registry.all_paths("calexp")) == ["a.fits", "b.fits"]


def test_other_connections_do_not_see_uncommitted_writes(
    registry_url: str, registry: Registry
) -> None:
    with Registry.open(registry_url) as other:
        with registry.transaction():
            registry.insert("calexp", calexp(1, 1), "a.fits")
            assert other.find("calexp", calexp(1, 1)) is None
        assert other.find("calexp", calexp(1, 1)) == "a.fits"


def test_threads_share_a_registry(registry: Registry) -> None:
    errors: list[BaseException] = []

    def work(visit: int) -> None:
        try:
            for ccd in range(20):
                registry.insert("calexp", calexp(visit, ccd), f"{visit}/{ccd}")
                assert registry.find("calexp", calexp(visit, ccd)) == f"{visit}/{ccd}"
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(visit,)) for visit in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert registry.count("calexp") == 80


def test_long_iteration_does_not_hide_new_writes(registry_url: str, registry: Registry) -> None:
    registry.insert_many("calexp", [(calexp(1, ccd), f"{ccd}.fits") for ccd in range(2500)])
    with Registry.open(registry_url) as other:
        for n, data_id in enumerate(registry.query("calexp", {"visit": 1})):
            if n % 500 == 0:
                other.insert("calexp", calexp(2, n), f"new/{n}.fits")
                assert registry.find("calexp", calexp(2, n)) == f"new/{n}.fits"
                registry.insert("calexp", calexp(3, n), f"mine/{n}.fits")
                assert registry.find("calexp", calexp(3, n)) == f"mine/{n}.fits"
            assert data_id["visit"] == 1
    assert n == 2499


def test_abandoned_iteration_returns_its_connection(registry: Registry) -> None:
    fill(registry)
    for _ in range(40):  # more than the pool holds
        iterator = registry.query("calexp")
        next(iterator)
        del iterator
    assert registry.count("calexp") == 6


def test_tables_are_typed_and_indexed(registry: Registry) -> None:
    registry.register_dataset_type("raw", {"visit": "int", "day": "date", "exp": "float"})
    inspector = sa.inspect(registry.engine)
    columns = {column["name"]: column for column in inspector.get_columns("ds_raw")}
    stored = ["path", "run", "created", "dataset_id", "file_size", "file_checksum"]
    assert list(columns) == ["id", "visit", "day", "exp", *stored]
    assert isinstance(columns["visit"]["type"], sa.Integer)
    assert isinstance(columns["day"]["type"], sa.Date)
    assert isinstance(columns["exp"]["type"], sa.Float)
    assert columns["run"]["nullable"]
    assert not columns["path"]["nullable"]
    (unique,) = inspector.get_unique_constraints("ds_raw")
    assert unique["column_names"] == ["visit", "day", "exp"]
    indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("ds_raw")}
    assert {("day",), ("exp",)} <= indexed
    unique_indexes = [i["column_names"] for i in inspector.get_indexes("ds_raw") if i["unique"]]
    assert ["dataset_id"] in unique_indexes
    (row,) = inspector.get_pk_constraint("ds_raw")["constrained_columns"]
    assert row == "id"
    assert set(inspector.get_table_names()) == {
        "meta",
        "dataset_type",
        "calib_cert",
        "butler_op",  # committed file operations (butler.recovery)
        "ds_calexp",
        "ds_raw",
    }


def test_sqlite_uses_wal_and_indexes(sqlite_url: str) -> None:
    with Registry.create(sqlite_url) as registry:
        registry.register_dataset_type("calexp", CALEXP)
        with registry.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 10_000
            plans = [
                " ".join(str(part) for part in row)
                for sql in (
                    "SELECT path FROM ds_calexp WHERE visit = 1 AND ccd = 2 AND filter = 'g'",
                    "SELECT visit FROM ds_calexp WHERE ccd = 2",
                    "SELECT visit FROM ds_calexp WHERE filter = 'g'",
                )
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            ]
    assert all("USING" in plan and "INDEX" in plan for plan in plans), plans
