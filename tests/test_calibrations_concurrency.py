"""Concurrent certification changes of one calibration keep its certifications whole (issue 12).

Three processes are released together (a barrier) for each of many rounds. In
round ``r`` one ``bias`` is certified for year ``2001 + r`` (Jan to Dec); two
processes decertify February and April of that year from it, and a third
certifies another bias for June with ``supersede``. Whatever the order, no two
current ranges may overlap, every lookup is unambiguous, the decertified months
stay invalid and every row ever recorded is kept (closed, never deleted).
Runs on SQLite and PostgreSQL, in real processes.
"""

from __future__ import annotations

import datetime
import itertools
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _processes import run_together
from butler.butler import Butler
from butler.errors import CalibrationNotFoundError
from butler.image import Image

T = datetime.datetime
ROUNDS = 12
OLD = {"calibDate": "2024-02-28", "detector": 1}
NEW = {"calibDate": "2024-03-04", "detector": 1}


def _year(round_: int) -> int:
    return 2001 + round_


def _month(year: int, month: int) -> tuple[T, T]:
    return T(year, month, 1), T(year, month + 1, 1)


def _worker(root: str, role: int, barrier: Any, errors: Any) -> None:
    try:
        with Butler(root) as butler:
            for round_ in range(ROUNDS):
                year = _year(round_)
                barrier.wait(timeout=120)
                if role == 0:
                    butler.decertify("bias", OLD, *_month(year, 2))
                elif role == 1:
                    butler.decertify("bias", OLD, *_month(year, 4))
                else:
                    butler.certify("bias", NEW, *_month(year, 6), supersede=True)
    except BaseException:
        errors.put(f"worker {role}:\n{traceback.format_exc()}")
        raise


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def repo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=url) as butler:
        for data_id, value in ((OLD, 1.0), (NEW, 2.0)):
            butler.put(Image(np.full((2, 2), value, "f4")), "bias", data_id)
        for round_ in range(ROUNDS):
            year = _year(round_)
            butler.certify("bias", OLD, T(year, 1, 1), T(year, 12, 1))
    yield root


def test_concurrent_decertify_and_supersede_keep_certifications_whole(repo: Path) -> None:
    run_together(_worker, [(str(repo), role) for role in range(3)])
    with Butler(repo, writeable=False) as butler:
        history = butler.calibration_history("bias", {"detector": 1})
        current = sorted((r for r in history if r.current), key=lambda r: r.valid_from)
        for before, after in itertools.pairwise(current):
            assert before.valid_to is not None and before.valid_to <= after.valid_from, (
                f"overlapping current certifications:\n{before.describe()}\n{after.describe()}"
            )
        for round_ in range(ROUNDS):
            year = _year(round_)
            for month in range(1, 12):
                moment = T(year, month, 15)
                if month in (2, 4):
                    with pytest.raises(CalibrationNotFoundError):
                        butler.find_calibration("bias", obsTime=moment, detector=1)
                    continue
                found = butler.find_calibration("bias", obsTime=moment, detector=1)
                expected = NEW if month == 6 else OLD
                assert found.data_id["calibDate"].isoformat() == expected["calibDate"], moment
            rows = [r for r in history if r.valid_from.year == year]
            # the year's range, 2 pieces per decertify, the new range and 2 pieces of the cut
            assert len(rows) == 8
            closed = sorted(r.closed_by or "" for r in rows if not r.current)
            assert closed[:2] == ["decertified", "decertified"]
            assert len(closed) == 3 and closed[2].startswith("superseded by #")
            ids = {r.id for r in history}
            assert all(r.replaces is None or r.replaces in ids for r in rows)
