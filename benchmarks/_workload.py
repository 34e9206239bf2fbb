"""The workload of ``vs_daf_butler.py``: data IDs, payloads and the calibration layout.

Every system (Butler, lsst-daf-butler, the raw floor) is driven through the same
small interface, :class:`System`, with the same data IDs in the same order, so a
row of the table compares like with like.
"""

from __future__ import annotations

import datetime
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

DETECTORS = 10
FILTERS = ("B-G", "B-R", "B-I")
#: Start of the observations; visit ``v`` starts at ``T0 + v minutes``.
T0 = datetime.datetime(2024, 3, 1, 0, 0, 0)
#: Calibrations: epochs of ``VISITS_PER_EPOCH`` visits, one per detector per epoch.
CALIB_EPOCHS = 10
VISITS_PER_EPOCH = 10
CALIB_VISITS = CALIB_EPOCHS * VISITS_PER_EPOCH  # 100 visits x 10 detectors = 1,000 observations


def payload(visit: int, detector: int) -> dict[str, Any]:
    """A small dict dataset (about 150 bytes of YAML)."""
    return {
        "visit": visit,
        "detector": detector,
        "seeing": 0.71,
        "zeropoint": 27.31,
        "nstars": 1234,
        "flags": ["ok", "ok"],
        "comment": "benchmark",
    }


@dataclass(frozen=True)
class Obs:
    """One data ID of the ``metrics`` dataset type."""

    visit: int
    detector: int

    @property
    def filter(self) -> str:
        return FILTERS[self.visit % len(FILTERS)]

    @property
    def time(self) -> datetime.datetime:
        """When the exposure started (naive UTC)."""
        return T0 + datetime.timedelta(minutes=self.visit)


def observations(first_visit: int, count: int) -> list[Obs]:
    """``count`` data IDs, ten detectors per visit, visits from ``first_visit``."""
    return [Obs(first_visit + i // DETECTORS, i % DETECTORS) for i in range(count)]


def epoch_start(epoch: int) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=epoch * VISITS_PER_EPOCH)


def calib_date(epoch: int) -> datetime.date:
    return (T0 + datetime.timedelta(days=epoch)).date()


def sample(items: Sequence[Any], count: int) -> list[Any]:
    """At most ``count`` items spread evenly over ``items`` (deterministic)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def timed(call: Callable[[], object], operations: int) -> float:
    """Microseconds per operation of one call that performs ``operations`` operations."""
    gc.collect()
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) / max(operations, 1) * 1e6


#: Rounds per row; a row reports its best round (the machine is shared: the best round is
#: the one least disturbed by other processes, and every system is measured the same way).
ROUNDS = 5


def best_of(call: Callable[[Sequence[Any]], object], items: Sequence[Any], *, split: bool) -> float:
    """µs per item: the best of ``ROUNDS`` rounds, over ``items`` again or (``split``) a third each.

    Writes cannot repeat the same data IDs, so they ``split`` the items into rounds.
    """
    if split:
        size = -(-len(items) // ROUNDS)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        return min(timed(lambda c=c: call(c), len(c)) for c in chunks)  # type: ignore[misc]
    return min(timed(lambda: call(items), len(items)) for _ in range(ROUNDS))


class System:
    """One contender. Methods that a system cannot do raise NotImplementedError."""

    name = "?"

    def create(self, root: str) -> None:
        raise NotImplementedError

    def prepare(self, obs: Sequence[Obs]) -> None:
        """Untimed set-up the system needs before ``obs`` can be put (dimension records)."""

    def put_one(self, obs: Sequence[Obs]) -> None:
        raise NotImplementedError

    def put_bulk(self, obs: Sequence[Obs]) -> None:
        raise NotImplementedError

    def put_one_deferred(self, obs: Sequence[Obs]) -> None:
        """Put one at a time without forcing each file to disk."""
        raise NotImplementedError

    def sync_deferred(self) -> None:
        """Force the files of the deferred puts to disk (NotImplementedError: never done)."""
        raise NotImplementedError

    def get(self, obs: Sequence[Obs]) -> None:
        raise NotImplementedError

    def get_completed(self, obs: Sequence[Obs]) -> None:
        raise NotImplementedError

    def exists(self, obs: Sequence[Obs]) -> None:
        raise NotImplementedError

    def query(self, visits: Sequence[int]) -> None:
        raise NotImplementedError

    def count(self, visits: Sequence[int]) -> None:
        raise NotImplementedError

    def prepare_calibrations(self) -> None:
        """Untimed: the raw observations and the 100 calibration files."""
        raise NotImplementedError

    def certify(self) -> None:
        raise NotImplementedError

    def calib_one(self, obs: Sequence[Obs]) -> None:
        raise NotImplementedError

    def calib_bulk(self, obs: Sequence[Obs]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass
