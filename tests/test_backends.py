"""The Butler's behaviour, once per storage back-end (issue 13).

Every test here uses only the public API and gets its repositories from the ``repos``
fixture, so a new back-end (an object store, a remote Butler) runs the whole suite by
adding one entry to ``BACKENDS``: a factory that creates a writeable repository of the
toycam mapper over optional parents, and the factory of repositories that serve as
parents (the in-memory back-end's parents are on disk: an in-memory output over on-disk
inputs). The registry tests cover PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from _remote import served_client
from butler import BBox, Butler, DatasetRef, Image
from butler.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    ForeignRefError,
    ReadOnlyError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FOCUS = {"focus": 0.5}
BIAS = {"calibDate": "2024-03-01", "detector": 1}
RAW = {"visit": 1, "detector": 1, "filter": "g", "obsTime": datetime.datetime(2024, 3, 2)}

#: (folder for files, name, parents) -> an open, writeable Butler of the toycam mapper.
Factory = Callable[[Path, str, list[Butler]], Butler]


def _local(tmp_path: Path, name: str, parents: list[Butler]) -> Butler:
    return Butler.create(tmp_path / name, mapper="toycam", parents=[p.root for p in parents])


def _memory(tmp_path: Path, name: str, parents: list[Butler]) -> Butler:
    return Butler.in_memory(mapper="toycam", name=name, parents=[p.root for p in parents])


def _remote(tmp_path: Path, name: str, parents: list[Butler]) -> Butler:
    """A local repository served by a real ``butler serve`` process; the client connected."""
    local = Butler.create(tmp_path / name, mapper="toycam", parents=[p.root for p in parents])
    local.close()
    return served_client(tmp_path / name)


#: A back-end whose repositories need the test's fixtures: yields its factory.
FixtureBackend = Callable[[pytest.FixtureRequest], Iterator[Factory]]


def _s3(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Repositories in the test's bucket on the moto server, each with its own PostgreSQL
    schema as registry (the ``s3_repository`` fixture of tests/_s3server.py)."""
    make = request.getfixturevalue("s3_repository")
    yield lambda tmp_path, name, parents: make(name, parents=[p.root for p in parents])


def _remote_s3(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """An S3 repository (as ``_s3`` makes them) served by a real ``butler serve`` process,
    the client connected: its files move through signed URLs of the store."""
    repositories = _s3(request)
    make = next(repositories)

    def served(tmp_path: Path, name: str, parents: list[Butler]) -> Butler:
        local = make(tmp_path, name, parents)
        url = str(local.root)
        local.close()
        return served_client(url)

    yield served
    next(repositories, None)  # the schemas dropped


#: back-end -> (its repositories, the repositories its chains read as parents); a
#: back-end given as a generator function makes its factory from the test's fixtures.
BACKENDS: dict[str, tuple[Factory, Factory] | FixtureBackend] = {
    "local": (_local, _local),
    "memory": (_memory, _local),
    "remote": (_remote, _local),
    "s3": _s3,
    "remote-s3": _remote_s3,
}


@dataclass
class Repos:
    """Makes the repositories of one test, on one back-end; closes them at its end."""

    tmp_path: Path
    output: Factory
    parent_factory: Factory
    opened: list[Butler]

    def __call__(self, name: str, parents: list[Butler] | None = None) -> Butler:
        butler = self.output(self.tmp_path, name, parents or [])
        self.opened.append(butler)
        return butler

    def parent(self, name: str, parents: list[Butler] | None = None) -> Butler:
        butler = self.parent_factory(self.tmp_path, name, parents or [])
        self.opened.append(butler)
        return butler


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.postgres) if "s3" in name else name
        for name in sorted(BACKENDS)
    ]
)
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repos]:
    backend = BACKENDS[request.param]
    with contextlib.ExitStack() as stack:
        if callable(backend):
            factory = stack.enter_context(contextlib.contextmanager(backend)(request))
            output, parent = factory, _local  # chains: an S3 output over on-disk parents
        else:
            output, parent = backend
        made = Repos(tmp_path, output, parent, [])
        yield made
        for butler in reversed(made.opened):
            butler.close()


def image(value: float, shape: tuple[int, int] = (4, 6)) -> Image:
    array = np.arange(shape[0] * shape[1], dtype="f4").reshape(shape) + value
    return Image(array, {"EXPTIME": 30.0, "OBJECT": "toy"})


def test_put_get_query_count_remove(repos: Repos) -> None:
    repo = repos("repo")
    refs = [repo.put({"n": v}, "focusSweep", visit=v, **FOCUS) for v in (1, 2, 3)]
    assert all(isinstance(ref, DatasetRef) for ref in refs)
    assert {ref.repository for ref in refs} == {repo.repository_id}
    assert [repo.get(ref) for ref in refs] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert repo.get("focusSweep", visit=2, **FOCUS) == {"n": 2}
    assert [d["visit"] for d in repo.query("focusSweep")] == [1, 2, 3]
    assert [d["visit"] for d in repo.query("focusSweep", where="visit >= 2")] == [2, 3]
    assert repo.count("focusSweep") == 3
    assert [ref.id for ref in repo.query_datasets("focusSweep")] == [ref.id for ref in refs]
    repo.remove("focusSweep", visit=2, **FOCUS)
    assert not repo.exists("focusSweep", visit=2, **FOCUS)
    assert repo.count("focusSweep") == 2
    with pytest.raises(DatasetNotFoundError):
        repo.get(refs[1])
    with pytest.raises(DatasetNotFoundError):
        repo.get("focusSweep", visit=2, **FOCUS)
    repo.remove(refs[0])
    assert repo.count("focusSweep") == 1


def test_put_many_and_exists_many(repos: Repos) -> None:
    repo = repos("repo")
    refs = repo.put_many("focusSweep", [({"n": v}, {"visit": v, **FOCUS}) for v in (1, 2)])
    assert [repo.get(ref) for ref in refs] == [{"n": 1}, {"n": 2}]
    asked = [{"visit": v, **FOCUS} for v in (1, 2, 3)]
    assert repo.exists_many("focusSweep", asked) == [True, True, False]
    with pytest.raises(DatasetExistsError):  # all or nothing
        repo.put_many("focusSweep", [({"n": 3}, {"visit": 3, **FOCUS}), ({}, asked[0])])
    assert not repo.exists("focusSweep", visit=3, **FOCUS)
    assert repo.get_many("focusSweep", asked[:2]) == [{"n": 1}, {"n": 2}]


def test_overwrite_needs_asking_and_records_a_new_dataset(repos: Repos) -> None:
    repo = repos("repo")
    old = repo.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
    with pytest.raises(DatasetExistsError):
        repo.put({"n": 2}, "focusSweep", visit=1, **FOCUS)
    assert repo.get(old) == {"n": 1}
    new = repo.put({"n": 2}, "focusSweep", visit=1, **FOCUS, overwrite=True)
    assert new.id != old.id and repo.get(new) == {"n": 2}
    assert not repo.exists(old)


def test_a_transaction_is_all_or_nothing(repos: Repos) -> None:
    repo = repos("repo")
    repo.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
    with pytest.raises(RuntimeError), repo.transaction():
        repo.put({"n": 2}, "focusSweep", visit=2, **FOCUS)
        repo.put({"n": 9}, "focusSweep", visit=1, **FOCUS, overwrite=True)
        repo.remove("focusSweep", visit=1, **FOCUS)
        raise RuntimeError("roll back")
    assert repo.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
    assert not repo.exists("focusSweep", visit=2, **FOCUS)
    with repo.transaction():
        repo.put({"n": 2}, "focusSweep", visit=2, **FOCUS)
        repo.put({"n": 3}, "focusSweep", visit=1, **FOCUS, overwrite=True)
    assert repo.count("focusSweep") == 2
    assert repo.get("focusSweep", visit=1, **FOCUS) == {"n": 3}


def test_calibrations_certify_find_decertify(repos: Repos) -> None:
    repo = repos("repo")
    repo.put(Image(np.ones((2, 2), "f4")), "bias", BIAS)
    repo.put(Image(np.zeros((2, 2), "f4")), "raw", RAW)
    repo.certify("bias", BIAS, "2024-03-01")
    assert repo.find_calibration("bias", visit=1, detector=1).data_id["detector"] == 1
    assert repo.get("bias", visit=1, detector=1).array.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert repo.exists("bias", visit=1, detector=1)
    assert len(repo.calibration_history("bias")) == 1
    repo.decertify("bias", BIAS)
    assert not repo.exists("bias", visit=1, detector=1)
    assert repo.get("bias", BIAS).array.shape == (2, 2)  # still stored, by its own keys


def test_a_chain_reads_find_first_and_writes_to_its_output(repos: Repos) -> None:
    base = repos.parent("base")
    parent_ref = base.put({"from": "base"}, "focusSweep", visit=1, **FOCUS)
    base.put({"from": "base"}, "focusSweep", visit=2, **FOCUS)
    out = repos("out", [base])
    mine = out.put({"from": "out"}, "focusSweep", visit=2, **FOCUS)
    assert out.get("focusSweep", visit=1, **FOCUS) == {"from": "base"}
    assert out.get("focusSweep", visit=2, **FOCUS) == {"from": "out"}
    assert out.get(parent_ref) == {"from": "base"}
    assert mine.repository == out.repository_id != parent_ref.repository
    assert out.count("focusSweep") == 2
    with pytest.raises(ReadOnlyError):
        out.remove("focusSweep", visit=1, **FOCUS)


def test_metadata_and_sections_read_like_the_file(repos: Repos) -> None:
    repo = repos("repo")
    stored = image(0.0)
    ref = repo.put(stored, "calexp", visit=1, detector=1, filter="g")
    metadata = repo.get_metadata(ref)
    assert metadata["EXPTIME"] == 30.0 and metadata["OBJECT"] == "toy"
    section = repo.get_section(ref, BBox.from_slices(slice(1, 3), slice(2, 5)))
    assert np.array_equal(section, stored.array[1:3, 2:5])
    uri = repo.uri(ref)  # the file's URI; a served repository's: its download URL, by id
    assert uri.endswith("/calexp-000001-A1.fits") or uri.endswith(f"/datasets/{ref.id}")


def test_a_ref_of_another_repository_is_refused(repos: Repos) -> None:
    one, other = repos("one"), repos("other")
    ref = one.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
    other.put({"n": 2}, "focusSweep", visit=1, **FOCUS)
    with pytest.raises(ForeignRefError):
        other.get(ref)
    with pytest.raises(ForeignRefError):
        other.remove(ref)
    assert one.get_ref(str(ref)) == ref
    assert one.get(one.get_ref(str(ref))) == {"n": 1}


def test_threads_put_and_get_at_once(repos: Repos) -> None:
    repo = repos("repo")
    errors: list[BaseException] = []

    def work(first: int) -> None:
        try:
            for visit in range(first, first + 10):
                ref = repo.put({"n": visit}, "focusSweep", visit=visit, **FOCUS)
                assert repo.get(ref) == {"n": visit}
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(100 * i + 1,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert repo.count("focusSweep") == 30


OPS = st.lists(
    st.tuples(st.sampled_from(["put", "overwrite", "remove", "get"]), st.integers(1, 4)),
    max_size=25,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_refs_and_data_ids_agree(repos: Repos, ops: list[tuple[str, int]]) -> None:
    """For any sequence of puts, overwrites, removes and gets: ``get(ref)`` is
    ``get(dataset_type, ref.data_id)``, stale refs are refused, and refs never collide
    across the repositories of a chain."""
    base = repos.parent(f"base-{len(repos.opened)}")
    base_refs = [base.put({"base": v}, "focusSweep", visit=v, **FOCUS) for v in (1, 2)]
    out = repos(f"out-{len(repos.opened)}", [base])
    live: dict[int, DatasetRef] = {}
    seen: set[str] = {ref.id for ref in base_refs}
    for op, visit in ops:
        if op in ("put", "overwrite"):
            exists = visit in live
            if exists and op == "put":
                with pytest.raises(DatasetExistsError):
                    out.put({"n": visit}, "focusSweep", visit=visit, **FOCUS)
                continue
            ref = out.put(
                {"n": visit, "op": op}, "focusSweep", visit=visit, overwrite=True, **FOCUS
            )
            assert ref.id not in seen
            seen.add(ref.id)
            live[visit] = ref
        elif op == "remove" and visit in live:
            out.remove(live.pop(visit))
        for ref in live.values():
            assert out.get(ref) == out.get("focusSweep", ref.data_id)
            assert ref.repository == out.repository_id
    for visit in (1, 2):
        expected = live[visit] if visit in live else base_refs[visit - 1]
        assert out.get("focusSweep", visit=visit, **FOCUS) == out.get(expected)
