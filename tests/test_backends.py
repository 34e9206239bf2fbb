"""The Butler's behaviour, once per storage back-end (issue 13).

Every test here uses only the public API and gets its repositories from the ``backend``
fixture, so a new back-end (the in-memory repository, object stores) runs the whole
suite by adding one parameter: a factory that creates a repository of a mapper, with
optional parents. Today the only back-end is local files (with the default SQLite
registry; the registry tests cover PostgreSQL).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from _remote import served_client
from butler import Butler, DatasetRef, Image
from butler.errors import DatasetExistsError, DatasetNotFoundError, ReadOnlyError

FOCUS = {"focus": 0.5}
BIAS = {"calibDate": "2024-03-01", "detector": 1}

#: (name, parents) -> an open, writeable Butler of the toycam mapper.
Factory = Callable[[str, list[Butler]], Butler]


def _local(tmp_path: Path) -> Factory:
    def make(name: str, parents: list[Butler]) -> Butler:
        return Butler.create(tmp_path / name, mapper="toycam", parents=[p.root for p in parents])

    return make


def _remote(tmp_path: Path) -> Factory:
    """A local repository served by a real ``butler serve`` process; the client connected."""
    roots: dict[int, Path] = {}

    def make(name: str, parents: list[Butler]) -> Butler:
        local = Butler.create(
            tmp_path / name, mapper="toycam", parents=[roots[id(p)] for p in parents]
        )
        local.close()
        client = served_client(tmp_path / name)
        roots[id(client)] = tmp_path / name
        return client

    return make


BACKENDS = {"local": _local, "remote": _remote}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    opened: list[Butler] = []
    factory = BACKENDS[request.param](tmp_path)

    def make(name: str, parents: list[Butler] | None = None) -> Butler:
        butler = factory(name, parents or [])
        opened.append(butler)
        return butler

    yield make
    for butler in reversed(opened):
        butler.close()


def test_put_get_query_count_remove(backend: Factory) -> None:
    repo = backend("repo", [])
    refs = [repo.put({"n": v}, "focusSweep", visit=v, **FOCUS) for v in (1, 2, 3)]
    assert all(isinstance(ref, DatasetRef) for ref in refs)
    assert [repo.get(ref) for ref in refs] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert repo.get("focusSweep", visit=2, **FOCUS) == {"n": 2}
    assert [d["visit"] for d in repo.query("focusSweep")] == [1, 2, 3]
    assert repo.count("focusSweep") == 3
    repo.remove("focusSweep", visit=2, **FOCUS)
    assert not repo.exists("focusSweep", visit=2, **FOCUS)
    assert repo.count("focusSweep") == 2
    with pytest.raises(DatasetNotFoundError):
        repo.get(refs[1])


def test_overwrite_needs_asking_and_records_a_new_dataset(backend: Factory) -> None:
    repo = backend("repo", [])
    old = repo.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
    with pytest.raises(DatasetExistsError):
        repo.put({"n": 2}, "focusSweep", visit=1, **FOCUS)
    new = repo.put({"n": 2}, "focusSweep", visit=1, **FOCUS, overwrite=True)
    assert new.id != old.id and repo.get(new) == {"n": 2}
    assert not repo.exists(old)


def test_a_transaction_is_all_or_nothing(backend: Factory) -> None:
    repo = backend("repo", [])
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
    assert repo.count("focusSweep") == 2


def test_calibrations_are_found_by_observation(backend: Factory) -> None:
    repo = backend("repo", [])
    repo.put(Image(np.ones((2, 2), "f4")), "bias", BIAS)
    raw = {"visit": 1, "detector": 1, "filter": "g", "obsTime": datetime.datetime(2024, 3, 2)}
    repo.put(Image(np.zeros((2, 2), "f4")), "raw", raw)
    repo.certify("bias", BIAS, "2024-03-01")
    assert repo.find_calibration("bias", visit=1, detector=1).data_id["detector"] == 1
    assert repo.get("bias", visit=1, detector=1).array.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_a_chain_reads_find_first_and_writes_to_its_output(backend: Factory) -> None:
    base = backend("base", [])
    parent_ref = base.put({"from": "base"}, "focusSweep", visit=1, **FOCUS)
    base.put({"from": "base"}, "focusSweep", visit=2, **FOCUS)
    out = backend("out", [base])
    out.put({"from": "out"}, "focusSweep", visit=2, **FOCUS)
    assert out.get("focusSweep", visit=1, **FOCUS) == {"from": "base"}
    assert out.get("focusSweep", visit=2, **FOCUS) == {"from": "out"}
    assert out.get(parent_ref) == {"from": "base"}
    with pytest.raises(ReadOnlyError):
        out.remove("focusSweep", visit=1, **FOCUS)
