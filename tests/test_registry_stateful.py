"""A random sequence of registry operations behaves like a dict (SQLite)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from butler.errors import DatasetExistsError
from butler.registry import Registry
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

visits = st.integers(min_value=0, max_value=4)
filters = st.sampled_from(["g", "r", "i"])
paths = st.text("abc/", min_size=1, max_size=8).filter(
    lambda p: not p.startswith("/") and ".." not in p.split("/")
)

Key = tuple[int, str]


class RegistryMachine(RuleBasedStateMachine):
    """Registry operations checked against ``model``: (visit, filter) → path."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="butler-registry-"))
        self.registry = Registry.create(f"sqlite:///{self.folder / 'registry.sqlite3'}")
        self.registry.register_dataset_type("raw", {"visit": "int", "filter": "str"})
        self.model: dict[Key, str] = {}

    @rule(visit=visits, flt=filters, path=paths)
    def insert(self, visit: int, flt: str, path: str) -> None:
        data_id: dict[str, Any] = {"visit": visit, "filter": flt}
        if (visit, flt) in self.model:
            with pytest.raises(DatasetExistsError):
                self.registry.insert("raw", data_id, path)
        else:
            self.registry.insert("raw", data_id, path)
            self.model[visit, flt] = path

    @rule(visit=visits, flt=filters, path=paths)
    def replace(self, visit: int, flt: str, path: str) -> None:
        self.registry.replace("raw", {"visit": visit, "filter": flt}, path)
        self.model[visit, flt] = path

    @rule(rows=st.lists(st.tuples(visits, filters, paths), max_size=5))
    def insert_many(self, rows: list[tuple[int, str, str]]) -> None:
        keys = [(visit, flt) for visit, flt, _ in rows]
        batch: list[tuple[dict[str, Any], str]] = [
            ({"visit": visit, "filter": flt}, path) for visit, flt, path in rows
        ]
        if len(set(keys)) < len(keys) or any(key in self.model for key in keys):
            with pytest.raises(DatasetExistsError):
                self.registry.insert_many("raw", batch)
        else:
            assert self.registry.insert_many("raw", batch) == len(batch)
            self.model.update({(visit, flt): path for visit, flt, path in rows})

    @rule(visit=visits, flt=filters)
    def remove(self, visit: int, flt: str) -> None:
        removed = self.registry.remove("raw", {"visit": visit, "filter": flt})
        assert removed == ((visit, flt) in self.model)
        self.model.pop((visit, flt), None)

    @rule(visit=visits, flt=filters)
    def find(self, visit: int, flt: str) -> None:
        found = self.registry.find("raw", {"visit": visit, "filter": flt})
        assert found == self.model.get((visit, flt))

    @rule(visit=st.none() | visits, flt=st.none() | filters)
    def query(self, visit: int | None, flt: str | None) -> None:
        partial: dict[str, int | str] = {}
        if visit is not None:
            partial["visit"] = visit
        if flt is not None:
            partial["filter"] = flt
        expected = [
            {"visit": v, "filter": f}
            for v, f in sorted(self.model)
            if visit in (None, v) and flt in (None, f)
        ]
        assert list(self.registry.query("raw", partial)) == expected
        assert self.registry.count("raw", partial) == len(expected)
        values = sorted({str(data_id["filter"]) for data_id in expected})
        assert self.registry.query_values("raw", "filter", partial) == values

    @invariant()
    def everything_matches(self) -> None:
        stored: dict[Any, str] = {
            (data_id["visit"], data_id["filter"]): path
            for _, data_id, path in self.registry.datasets("raw")
        }
        assert stored == self.model

    def teardown(self) -> None:
        self.registry.close()
        shutil.rmtree(self.folder, ignore_errors=True)


RegistryMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
TestRegistryMachine = RegistryMachine.TestCase
