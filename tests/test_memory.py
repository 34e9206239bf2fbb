"""The in-memory repository (issue 13): what differs from disk. The behaviour it shares
with every back-end is in tests/test_backends.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from butler import Butler, Image
from butler.errors import ButlerError, ConfigError, RepositoryError

FOCUS = {"focus": 0.5}
CALEXP = {"visit": 1, "detector": 1, "filter": "g"}


def test_create_by_url_gives_memory_uris_and_refs_with_the_repository_id() -> None:
    with Butler.create("memory://scratch", mapper="toycam") as butler:
        ref = butler.put({"n": 1}, "focusSweep", visit=7, **FOCUS)
        assert str(butler.root) == "memory://scratch"
        assert butler.uri(ref) == "memory://scratch/focus/000007/offset0.50.yaml"
        assert ref.repository == butler.repository_id
        assert butler.get_ref(str(ref)) == ref


def test_objects_are_stored_by_reference_by_default() -> None:
    with Butler.in_memory(mapper="toycam") as butler:
        obj = {"n": [1]}
        butler.put(obj, "focusSweep", visit=1, **FOCUS)
        assert butler.get("focusSweep", visit=1, **FOCUS) is obj


@pytest.mark.parametrize("setting", ["deepcopy", {"focusSweep": "deepcopy"}])
def test_deepcopy_isolates_the_stored_object(setting: object) -> None:
    with Butler.in_memory(mapper="toycam", copy=setting) as butler:  # type: ignore[arg-type]
        obj = {"n": [1]}
        butler.put(obj, "focusSweep", visit=1, **FOCUS)
        obj["n"].append(2)  # the caller changes its object after the put
        got = butler.get("focusSweep", visit=1, **FOCUS)
        assert got == {"n": [1]}
        got["n"].append(3)  # and the reader changes what it got
        assert butler.get("focusSweep", visit=1, **FOCUS) == {"n": [1]}


def test_copy_is_shallow_and_per_dataset_type() -> None:
    with Butler.in_memory(mapper="toycam", copy={"focusSweep": "copy"}) as butler:
        inner = [1]
        butler.put({"n": inner}, "focusSweep", visit=1, **FOCUS)
        got = butler.get("focusSweep", visit=1, **FOCUS)
        assert got == {"n": [1]} and got["n"] is inner
        assert got is not butler.get("focusSweep", visit=1, **FOCUS)
        image = Image(np.zeros((2, 2), "f4"))
        butler.put(image, "calexp", CALEXP)  # not named: assigned
        assert butler.get("calexp", CALEXP) is image


def test_an_unknown_copy_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="'clone' for 'calexp' is not one of assign"):
        Butler.in_memory(mapper="toycam", copy={"calexp": "clone"})


def test_a_second_butler_shares_the_repository_until_the_last_closes() -> None:
    first = Butler.in_memory(mapper="toycam", name="shared")
    first.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
    second = Butler(first.datastore)
    assert second.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
    second.put({"n": 2}, "focusSweep", visit=2, **FOCUS)
    second.close()
    assert first.count("focusSweep") == 2
    first.close()


def test_opening_by_url_says_where_an_in_memory_repository_lives() -> None:
    with pytest.raises(RepositoryError, match="lives only in the process and Butler"):
        Butler("memory://elsewhere")


def test_features_about_local_files_name_what_cannot_be_done(tmp_path: Path) -> None:
    with Butler.in_memory(mapper="toycam") as butler:
        with pytest.raises(RepositoryError, match="cannot verify files in repository memory://"):
            butler.verify()
        with pytest.raises(ButlerError, match="only be copied there"):
            butler.ingest([tmp_path / "raw.fits"], transfer="link")


def test_an_in_memory_output_over_an_on_disk_input_leaves_the_input_alone(
    tmp_path: Path,
) -> None:
    with Butler.create(tmp_path / "in", mapper="toycam") as source:
        source.put({"n": 0}, "focusSweep", visit=1, **FOCUS)
    with Butler.in_memory(mapper="toycam", parents=[tmp_path / "in"]) as scratch:
        scratch.put({"n": 1}, "focusSweep", visit=2, **FOCUS)
        assert [d["visit"] for d in scratch.query("focusSweep")] == [2, 1]  # own first
    with Butler(tmp_path / "in") as source:
        assert source.count("focusSweep") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written beside it


def test_a_format_without_the_read_says_so() -> None:
    from butler.errors import FormatError

    with Butler.in_memory(mapper="toycam") as butler:
        ref = butler.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        with pytest.raises(FormatError, match="no sub-image reads"):
            butler.get_section(ref, __import__("butler").BBox.from_slices(slice(0, 1), slice(0, 1)))
