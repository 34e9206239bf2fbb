"""The object cache (issue 13): opt-in; the same object for a dataset this process holds,
never replaced or removed content, never a section or metadata as the whole dataset."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from butler import BBox, Butler, Image
from butler.errors import DatasetCorruptError, DatasetNotFoundError

BIAS = {"calibDate": "2024-03-01", "detector": 1}


def image(value: float) -> Image:
    return Image(np.full((4, 4), value, "f4"), {"V": value})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    with Butler.create(tmp_path / "repo", mapper="toycam") as butler:
        butler.put(image(1.0), "bias", BIAS)
        butler.put({"a": 1}, "focusSweep", visit=1, focus=0.5)
    return tmp_path / "repo"


def test_a_cached_get_returns_the_object_held_without_reading_the_file(repo: Path) -> None:
    with Butler(repo, object_cache=True) as butler:
        first = butler.get("bias", BIAS)
        file = Path(butler.uri("bias", BIAS)[len("file://") :])
        file.write_bytes(b"not FITS any more")  # a read now would fail
        assert butler.get("bias", BIAS) is first
        ref = next(butler.query_datasets("bias"))
        assert butler.get(ref) is first
        del first
        gc.collect()  # nothing holds it: the next get looks at the file (and says it is broken)
        with pytest.raises(DatasetCorruptError, match="truncated or changed"):
            butler.get("bias", BIAS)


def test_without_the_opt_in_every_get_reads(repo: Path) -> None:
    with Butler(repo) as butler:
        assert butler.get("bias", BIAS) is not butler.get("bias", BIAS)
    with Butler(repo, object_cache={"focusSweep"}) as butler:  # another dataset type only
        assert butler.get("bias", BIAS) is not butler.get("bias", BIAS)
        assert butler.get("focusSweep", visit=1, focus=0.5) == {"a": 1}  # a dict: not cached


def test_an_overwrite_or_a_remove_elsewhere_is_seen(repo: Path) -> None:
    with Butler(repo, object_cache=True) as butler, Butler(repo) as other:
        held = butler.get("bias", BIAS)
        other.put(image(2.0), "bias", BIAS, overwrite=True)  # a new dataset id
        fresh = butler.get("bias", BIAS)
        assert fresh is not held and fresh.metadata["V"] == 2.0
        other.remove("bias", BIAS)
        with pytest.raises(DatasetNotFoundError):
            butler.get("bias", BIAS)


def test_sections_and_metadata_are_never_the_cached_dataset(repo: Path) -> None:
    with Butler(repo, object_cache=True) as butler:
        section = butler.get_section("bias", BBox(0, 0, 2, 2), BIAS)
        assert section.shape == (2, 2)
        whole = butler.get("bias", BIAS)
        assert whole.array.shape == (4, 4)
        assert butler.get_section("bias", BBox(0, 0, 2, 2), BIAS).shape == (2, 2)
        assert butler.get_metadata("bias", BIAS)["V"] == 1.0
        assert butler.get("bias", BIAS) is whole
