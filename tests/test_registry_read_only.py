"""A read-only registry refuses every write, and its connections cannot write (issue 12).

``Butler(root, writeable=False).registry`` used to write rows. Now every write
raises ReadOnlyError naming it, and underneath SQLite is opened ``mode=ro`` and
PostgreSQL sessions are ``READ ONLY``, so even SQL sent straight to the engine
cannot change anything. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from butler.butler import Butler
from butler.calibrations import for_butler
from butler.errors import ReadOnlyError
from butler.image import Image
from butler.registry import Registry

T = datetime.datetime
KEYS = {"visit": "int", "ccd": "int"}
ROW = {"visit": 1, "ccd": 2}

WRITES: dict[str, Callable[[Registry], object]] = {
    "insert 'calexp'": lambda r: r.insert("calexp", {"visit": 9, "ccd": 9}, "x"),
    "replace 'calexp'": lambda r: r.replace("calexp", ROW, "y"),
    "insert 'calexp' datasets": lambda r: r.insert_many("calexp", [({"visit": 8, "ccd": 8}, "z")]),
    "remove 'calexp'": lambda r: r.remove("calexp", ROW),
    "register dataset type 'other'": lambda r: r.register_dataset_type("other", KEYS),
    "register dataset type 'calexp'": lambda r: r.register_dataset_type("calexp", KEYS),
    "set registry metadata 'note'": lambda r: r.set_metadata("note", "x"),
    "begin a registry transaction": lambda r: r.transaction().__enter__(),
}


@pytest.fixture
def url(registry_url: str) -> str:
    with Registry.create(registry_url, "HSC") as registry:
        registry.register_dataset_type("calexp", KEYS)
        registry.insert("calexp", ROW, "calexp/1/2.fits")
    return registry_url


def _state(url: str) -> tuple[Any, ...]:
    with Registry.open(url) as registry:
        return (
            registry.dataset_types(),
            list(registry.datasets()),
            registry.metadata,
        )


@pytest.mark.parametrize("action", sorted(WRITES))
def test_every_write_is_refused_naming_it(url: str, action: str) -> None:
    before = _state(url)
    with Registry.open(url, read_only=True) as registry:
        assert registry.read_only
        with pytest.raises(ReadOnlyError, match=f"cannot {action}.*read-only"):
            WRITES[action](registry)
        assert registry.find("calexp", ROW) == "calexp/1/2.fits"  # reads still work
    assert _state(url) == before


def test_the_database_itself_refuses_writes(url: str) -> None:
    with (
        Registry.open(url, read_only=True) as registry,
        registry.engine.connect() as conn,
        pytest.raises(sa.exc.DBAPIError),
    ):
        conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('sneaky', 'x')"))
        conn.commit()
    assert "sneaky" not in _state(url)[2]


@pytest.fixture
def repo(tmp_path: Path, registry_url: str) -> Iterator[Path]:
    registry = None if registry_url.startswith("sqlite") else registry_url
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registry) as butler:
        butler.put(Image(np.ones((2, 2), "f4")), "bias", calibDate="2024-03-01", detector=1)
    yield root


def test_a_read_only_butler_registry_refuses_writes(repo: Path) -> None:
    bias = {"calibDate": datetime.date(2024, 3, 1), "detector": 1}
    with Butler(repo, writeable=False) as butler:
        registry = butler.registry
        with pytest.raises(ReadOnlyError, match="cannot remove 'bias'"):
            registry.remove("bias", bias)
        with pytest.raises(ReadOnlyError, match="cannot insert 'bias'"):
            registry.insert("bias", {**bias, "detector": 2}, "calib/elsewhere.fits")
        with pytest.raises(ReadOnlyError, match="cannot set registry metadata"):
            registry.set_metadata("note", "x")
        assert butler.get("bias", bias).array.sum() == 4  # reads still work
    with Butler(repo) as butler:
        assert butler.registry.count("bias") == 1
        assert "note" not in butler.registry.metadata
        butler.certify("bias", bias, "2024-03-01")
    with Butler(repo, writeable=False) as butler:
        with pytest.raises(ReadOnlyError, match="cannot decertify 'bias'"):
            for_butler(butler).store.decertify("bias", bias)
        with pytest.raises(ReadOnlyError, match="cannot certify 'bias'"):
            for_butler(butler).store.certify("bias", bias, {"detector": 1}, T(2020, 1, 1))
        assert len(butler.calibration_history("bias")) == 1
