"""A ``Butler`` behaves like a dict from data ID to object, whatever the order of calls.

Hypothesis drives put/put_many/get/remove/query/exists/count (and reopening the
repository) on a real SQLite repository of the tutorial camera, and checks each
answer against a plain dict model. Dataset type ``focusSweep`` (YAML) has keys
``visit`` and ``focus``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from butler.butler import Butler
from butler.errors import AmbiguousDataIdError, DatasetExistsError, DatasetNotFoundError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

Key = tuple[int, float]

DATASET = "focusSweep"
visits = st.integers(1, 4)
focuses = st.sampled_from([-1.5, -0.25, 0.0, 0.5, 2.0])  # distinct at the template's .2f
values = st.dictionaries(
    st.text("abcxyz", min_size=1, max_size=3),
    st.integers(-5, 5) | st.text(max_size=4) | st.booleans(),
    max_size=3,
)


class _Abort(Exception):
    """Raised inside a transaction to roll it back."""


def _key(data_id: Any) -> Key:
    return int(data_id["visit"]), float(data_id["focus"])


class ButlerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="butler-stateful-"))
        self.root = self.folder / "repo"
        self.butler = Butler.create(self.root, mapper="toycam")
        self.model: dict[Key, dict[str, Any]] = {}

    def teardown(self) -> None:
        self.butler.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # ---- writes --------------------------------------------------------------------------

    @rule(visit=visits, focus=focuses, value=values, overwrite=st.booleans())
    def put(self, visit: int, focus: float, value: dict[str, Any], overwrite: bool) -> None:
        key = (visit, focus)
        if key in self.model and not overwrite:
            with pytest.raises(DatasetExistsError):
                self.butler.put(value, DATASET, visit=visit, focus=focus)
            return
        data_id = self.butler.put(
            value, DATASET, visit=visit, focus=focus, overwrite=overwrite
        ).data_id
        assert _key(data_id) == key
        self.model[key] = value

    @rule(
        batch=st.lists(st.tuples(visits, focuses, values), min_size=1, max_size=4),
    )
    def put_many(self, batch: list[tuple[int, float, dict[str, Any]]]) -> None:
        keys = [(v, f) for v, f, _ in batch]
        items = [(value, {"visit": v, "focus": f}) for v, f, value in batch]
        if len(set(keys)) < len(keys) or any(k in self.model for k in keys):
            with pytest.raises(DatasetExistsError):
                self.butler.put_many(DATASET, items)
            return
        self.butler.put_many(DATASET, items)
        self.model.update({(v, f): value for v, f, value in batch})

    @rule(visit=visits, focus=focuses)
    def remove(self, visit: int, focus: float) -> None:
        if (visit, focus) not in self.model:
            with pytest.raises(DatasetNotFoundError):
                self.butler.remove(DATASET, visit=visit, focus=focus)
            return
        self.butler.remove(DATASET, visit=visit, focus=focus)
        del self.model[(visit, focus)]

    @rule(
        steps=st.lists(st.tuples(st.booleans(), visits, focuses, values), max_size=4),
        abort=st.booleans(),
    )
    def transaction(self, steps: list[tuple[bool, int, float, Any]], abort: bool) -> None:
        """Puts (True) and removes (False) in one transaction, committed or rolled back."""
        shadow = dict(self.model)
        with contextlib.suppress(_Abort), self.butler.transaction():
            for is_put, visit, focus, value in steps:
                if is_put and (visit, focus) not in shadow:
                    self.butler.put(value, DATASET, visit=visit, focus=focus)
                    shadow[(visit, focus)] = value
                elif not is_put and (visit, focus) in shadow:
                    self.butler.remove(DATASET, visit=visit, focus=focus)
                    del shadow[(visit, focus)]
            if abort:
                raise _Abort
        if not abort:
            self.model = shadow

    @precondition(lambda self: len(self.model) < 40)
    @rule()
    def reopen(self) -> None:
        self.butler.close()
        self.butler = Butler(self.root)

    # ---- reads ---------------------------------------------------------------------------

    @rule(visit=visits, focus=focuses)
    def get(self, visit: int, focus: float) -> None:
        if (visit, focus) in self.model:
            assert self.butler.get(DATASET, visit=visit, focus=focus) == self.model[(visit, focus)]
            assert self.butler.exists(DATASET, visit=visit, focus=focus)
        else:
            with pytest.raises(DatasetNotFoundError):
                self.butler.get(DATASET, visit=visit, focus=focus)
            assert not self.butler.exists(DATASET, visit=visit, focus=focus)

    @rule(visit=visits)
    def get_by_visit_alone(self, visit: int) -> None:
        matches = [k for k in self.model if k[0] == visit]
        if len(matches) == 1:
            assert self.butler.get(DATASET, visit=visit) == self.model[matches[0]]
        elif matches:
            with pytest.raises(AmbiguousDataIdError):
                self.butler.get(DATASET, visit=visit)
        else:
            with pytest.raises(DatasetNotFoundError):
                self.butler.get(DATASET, visit=visit)

    @rule(visit=st.none() | visits)
    def query(self, visit: int | None) -> None:
        partial = {} if visit is None else {"visit": visit}
        expected = {k for k in self.model if visit is None or k[0] == visit}
        got = [_key(d) for d in self.butler.query(DATASET, partial)]
        assert len(got) == len(set(got))
        assert set(got) == expected
        assert self.butler.count(DATASET, partial) == len(expected)
        assert self.butler.query_values(DATASET, "focus", partial) == sorted(
            {f for _, f in expected}
        )

    @rule(keys=st.lists(st.tuples(visits, focuses), max_size=5))
    def exists_many(self, keys: list[Key]) -> None:
        ids = [{"visit": v, "focus": f} for v, f in keys]
        assert self.butler.exists_many(DATASET, ids) == [k in self.model for k in keys]

    @invariant()
    def repository_matches_model(self) -> None:
        report = self.butler.verify()
        assert report.clean, str(report)
        assert report.datasets == len(self.model)
        assert report.untracked == report.temporaries == ()


TestButlerModel = ButlerModel.TestCase
TestButlerModel.settings = settings(
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
