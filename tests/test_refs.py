"""Dataset identity (issue 13): ids, refs, their text form, and version 1 repositories.

Every stored dataset has a UUID given when it is recorded, every repository one given
when it is created; a DatasetRef names one dataset and never reaches another.
"""

from __future__ import annotations

import datetime
import shutil
import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler import BBox, Butler, DatasetRef, Image
from butler.errors import (
    DatasetCorruptError,
    DatasetNotFoundError,
    ForeignRefError,
    InvalidDataIdError,
    ReadOnlyError,
    RepositoryError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FOCUS = {"focus": 0.5}
BIAS = {"calibDate": "2024-03-01", "detector": 1}
V1_REPOSITORY = Path(__file__).parent / "data" / "v1_repository"


@pytest.fixture
def toy(tmp_path: Path, registries: RegistryFactory) -> Butler:  # noqa: F811
    return Butler.create(tmp_path / "toy", mapper="toycam", registry=registries())


def test_put_returns_a_ref_that_gets_that_dataset(toy: Butler) -> None:
    with toy:
        ref = toy.put({"n": 1}, "focusSweep", visit=1, **FOCUS, run="r1")
        assert isinstance(ref, DatasetRef)
        assert (ref.dataset_type, dict(ref.data_id), ref.run) == (
            "focusSweep",
            {"visit": 1, "focus": 0.5},
            "r1",
        )
        assert ref.repository == toy.repository_id
        assert uuid.UUID(ref.id) and uuid.UUID(ref.repository)
        assert toy.get(ref) == {"n": 1}
        assert toy.exists(ref)
        assert toy.uri(ref) == toy.uri("focusSweep", visit=1, **FOCUS)
        image = toy.put(Image(np.arange(16, dtype="f4").reshape(4, 4), {"A": 1}), "bias", BIAS)
        assert toy.get_metadata(image)["A"] == 1
        assert toy.get_section(image, BBox(0, 0, 2, 2)).shape == (2, 2)
        assert list(toy.query_datasets("focusSweep")) == [ref]
        with pytest.raises(InvalidDataIdError, match="names its dataset alone"):
            toy.get(ref, visit=2)


def test_the_repository_id_is_in_butler_yaml_and_the_registry(toy: Butler) -> None:
    with toy:
        config = yaml.safe_load((toy.root / "butler.yaml").read_text())
        assert config["repository_id"] == toy.repository_id == toy.registry.repository_id


def test_text_form_round_trips(toy: Butler) -> None:
    with toy:
        ref = toy.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        text = str(ref)
        assert text == f"butler:{toy.repository_id}/{ref.id}"
        assert toy.get_ref(text) == ref
        for bad in ("butler:nope/nope", "calexp", f"butler:{toy.repository_id}"):
            with pytest.raises(InvalidDataIdError, match="is not a dataset ref"):
                toy.get_ref(bad)
        with pytest.raises(DatasetNotFoundError, match="no dataset with id"):
            toy.get_ref(f"butler:{toy.repository_id}/{uuid.uuid4()}")


def test_an_overwrite_records_a_new_id_and_the_old_ref_is_stale(toy: Butler) -> None:
    with toy:
        old = toy.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        new = toy.put({"n": 2}, "focusSweep", visit=1, **FOCUS, overwrite=True)
        assert new.id != old.id
        assert toy.get(new) == {"n": 2}
        with pytest.raises(DatasetNotFoundError, match=r"stale.*overwritten"):
            toy.get(old)
        assert not toy.exists(old)
        with pytest.raises(DatasetNotFoundError, match="stale"):
            toy.remove(old)  # a stale ref never removes the dataset that replaced it
        assert toy.get("focusSweep", visit=1, **FOCUS) == {"n": 2}
        toy.remove(new)
        assert not toy.exists("focusSweep", visit=1, **FOCUS)
        with pytest.raises(DatasetNotFoundError, match="stale"):
            toy.get(new)


def test_put_many_returns_refs_in_order(toy: Butler) -> None:
    with toy:
        items = [({"n": i}, {"visit": i + 1, **FOCUS}) for i in range(3)]
        refs = toy.put_many("focusSweep", items)
        assert [toy.get(ref) for ref in refs] == [{"n": i} for i in range(3)]
        assert len({ref.id for ref in refs}) == 3


def test_a_ref_from_another_repository_is_refused(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    with (
        Butler.create(tmp_path / "a", mapper="toycam", registry=registries()) as a,
        Butler.create(tmp_path / "b", mapper="toycam", registry=registries()) as b,
    ):
        ref = a.put({"from": "a"}, "focusSweep", visit=1, **FOCUS)
        b.put({"from": "b"}, "focusSweep", visit=1, **FOCUS)
        for call in (b.get, b.exists, b.uri, b.remove):
            with pytest.raises(ForeignRefError, match="is from repository"):
                call(ref)
        with pytest.raises(ForeignRefError):
            b.get_ref(str(ref))
        assert b.get("focusSweep", visit=1, **FOCUS) == {"from": "b"}  # untouched


def test_in_a_chain_a_parent_ref_resolves_in_that_parent(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    with Butler.create(tmp_path / "base", mapper="toycam", registry=registries()) as base:
        parent_ref = base.put({"from": "base"}, "focusSweep", visit=1, **FOCUS)
    out_root = tmp_path / "out"
    with Butler.create(
        out_root, mapper="toycam", registry=registries(), parents=[tmp_path / "base"]
    ) as out:
        own = out.put({"from": "out"}, "focusSweep", visit=1, **FOCUS)  # shadows the parent's
        assert out.get("focusSweep", visit=1, **FOCUS) == {"from": "out"}
        assert out.get(parent_ref) == {"from": "base"}  # the ref names the parent's dataset
        assert out.get_ref(str(parent_ref)) == parent_ref
        assert own.repository != parent_ref.repository
        with pytest.raises(ReadOnlyError, match="parent repository"):
            out.remove(parent_ref)
        out.put({"from": "out"}, "focusSweep", visit=2, **FOCUS)
        refs = {ref.data_id["visit"]: ref for ref in out.query_datasets("focusSweep")}
        assert refs[1] == own


def test_a_version_1_repository_is_migrated_in_place(tmp_path: Path) -> None:
    root = tmp_path / "old"
    shutil.copytree(V1_REPOSITORY, root)
    connection = sqlite3.connect(root / "registry.sqlite3")
    try:
        (version,) = connection.execute(
            "SELECT value FROM meta WHERE key='schema_version'"
        ).fetchone()
    finally:
        connection.close()
    assert version == "1"
    with Butler(root, writeable=False) as reader:  # read-only: it works, without ids
        assert reader.get("focusSweep", visit=1, **FOCUS) == {"z": [1.0, 2.0]}
        assert reader.repository_id is None
        assert list(reader.query_datasets("focusSweep")) == []
    with Butler(root) as butler:
        assert butler.registry.schema_version == 2
        assert uuid.UUID(str(butler.repository_id))
        refs = list(butler.query_datasets("focusSweep"))
        assert [butler.get(ref) for ref in refs] == [{"z": [1.0, 2.0]}, {"z": [3.0]}]
        assert len({ref.id for ref in refs}) == 2
        new = butler.put({"z": [4.0]}, "focusSweep", visit=3, **FOCUS)
        assert butler.get(new) == {"z": [4.0]}
        # the checksum columns were added too: NULL in the old rows, set by the new put;
        # an overwrite is a new dataset, with a new id and its file's new checksum
        stored = {s.data_id["visit"]: s.file for s in butler.registry.stored_datasets("focusSweep")}
        assert [stored[1].checksum, stored[2].checksum] == [None, None]
        assert str(stored[3].checksum).startswith("crc32c:")
        again = butler.put({"z": [5.0, 6.0]}, "focusSweep", visit=3, **FOCUS, overwrite=True)
        after = {s.data_id["visit"]: s.file for s in butler.registry.stored_datasets("focusSweep")}
        assert again.id != new.id and after[3].checksum != stored[3].checksum
        assert butler.get(again) == {"z": [5.0, 6.0]}
        # the bias certified from 2024-03-01 is valid for the raw of visit 1 (2024-03-02)
        assert butler.exists("bias", visit=1, detector=1)
        found = butler.find_calibration("bias", visit=1, detector=1)
        assert found.data_id["calibDate"] == datetime.date(2024, 3, 1)
        bias = butler.get("bias", visit=1, detector=1)
        assert bias.array.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    with Butler(root) as again:  # ids stay as given
        assert list(again.query_datasets("focusSweep"))[:2] == refs


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["put", "overwrite", "remove"]), st.integers(1, 3)),
        max_size=12,
    )
)
def test_refs_never_collide_and_get_by_ref_is_get_by_data_id(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]]
) -> None:
    base_root = tmp_path_factory.mktemp("base")
    with Butler.create(base_root / "repo", mapper="toycam") as base:
        base_refs = [base.put({"base": v}, "focusSweep", visit=v, **FOCUS) for v in (1, 2)]
    with Butler.create(base_root / "out", mapper="toycam", parents=[base_root / "repo"]) as out:
        refs: dict[int, DatasetRef] = {}
        seen = {ref.id for ref in base_refs}
        for n, (action, visit) in enumerate(steps):
            if action == "remove":
                if visit in refs:
                    out.remove(refs.pop(visit))
                continue
            if action == "put" and visit in refs:
                continue
            ref = out.put({"n": n}, "focusSweep", visit=visit, **FOCUS, overwrite=True)
            assert ref.id not in seen
            seen.add(ref.id)
            refs[visit] = ref
        for ref in [*refs.values(), *base_refs]:
            if ref.repository == out.repository_id or ref.data_id["visit"] not in refs:
                assert out.get(ref) == out.get("focusSweep", ref.data_id)
            else:  # shadowed by the output: the ref still names the parent's dataset
                assert out.get(ref) == {"base": ref.data_id["visit"]}


def test_creating_over_a_version_1_registry_refuses_it_without_migrating_it(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old"
    shutil.copytree(V1_REPOSITORY, old)
    before = (old / "registry.sqlite3").read_bytes()
    url = f"sqlite:///{old / 'registry.sqlite3'}"
    with pytest.raises(RepositoryError, match="already holds a Butler registry"):
        Butler.create(tmp_path / "new", mapper="toycam", registry=url)
    assert (old / "registry.sqlite3").read_bytes() == before


def test_datasets_recorded_by_index_get_ids_too(toy: Butler) -> None:
    with toy:
        ref = toy.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        (toy.root / "focus" / "000002").mkdir()
        (toy.root / "focus" / "000002" / "offset0.50.yaml").write_text("n: 2\n")
        assert toy.index().registered == {"focusSweep": 1}
        refs = list(toy.query_datasets("focusSweep"))
        assert refs[0] == ref and refs[1].data_id["visit"] == 2
        assert uuid.UUID(refs[1].id) and refs[1].id != ref.id
        assert toy.get(refs[1]) == {"n": 2}


def test_a_get_by_ref_checks_the_recorded_file_size(toy: Butler) -> None:
    with toy:
        ref = toy.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        Path(toy.uri(ref)[len("file://") :]).write_text("n: 22\n")  # one byte more
        with pytest.raises(DatasetCorruptError, match="truncated or changed"):
            toy.get(ref)
