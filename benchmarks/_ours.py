"""Butler driven through the workload, with the BenchCam mapper (``benchcam.butler``)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _workload import (
    CALIB_EPOCHS,
    CALIB_VISITS,
    DETECTORS,
    Obs,
    System,
    calib_date,
    epoch_start,
    observations,
    payload,
)

HERE = Path(__file__).resolve().parent
POLICY = HERE / "benchcam.butler"


def compile_mapper(folder: Path) -> Path:
    """Compile ``benchcam.butler`` into ``folder``; the generated module's path."""
    import butlerc

    result = butlerc.compile_policy(POLICY)
    if result.diagnostics:
        raise RuntimeError("\n".join(str(d) for d in result.diagnostics))
    path = folder / "benchcam.py"
    path.write_text(result.modules["benchcam"], encoding="utf-8")
    return path


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(tzinfo=datetime.UTC)


def _put_each(butler: Any, obs: Sequence[Obs]) -> None:
    put = butler.put
    for o in obs:
        put(
            payload(o.visit, o.detector),
            "metrics",
            visit=o.visit,
            detector=o.detector,
            filter=o.filter,
        )


class Ours(System):
    name = "Butler"

    def __init__(self, mapper: Path, registry: str | None = None) -> None:
        self.mapper = mapper
        self.registry_url = registry
        self.deferred: Any = None

    def create(self, root: str) -> None:
        from butler.butler import Butler

        self.butler = Butler.create(root, mapper=self.mapper, registry=self.registry_url)
        if self.registry_url is None:  # a second repository: puts fsync together at the end
            self.deferred = Butler.create(root + "-close", mapper=self.mapper, durability="close")

    def put_one(self, obs: Sequence[Obs]) -> None:
        _put_each(self.butler, obs)

    def put_one_deferred(self, obs: Sequence[Obs]) -> None:
        """``put_one`` into the ``durability: close`` repository (``sync_deferred`` follows)."""
        if self.deferred is None:
            raise NotImplementedError
        _put_each(self.deferred, obs)

    def sync_deferred(self) -> None:
        self.deferred.sync()

    def put_bulk(self, obs: Sequence[Obs]) -> None:
        self.butler.put_many(
            "metrics",
            [
                (
                    payload(o.visit, o.detector),
                    {"visit": o.visit, "detector": o.detector, "filter": o.filter},
                )
                for o in obs
            ],
        )

    def get(self, obs: Sequence[Obs]) -> None:
        get = self.butler.get
        for o in obs:
            get("metrics", visit=o.visit, detector=o.detector, filter=o.filter)

    def get_completed(self, obs: Sequence[Obs]) -> None:
        get = self.butler.get
        for o in obs:
            get("metrics", visit=o.visit, detector=o.detector)

    def exists(self, obs: Sequence[Obs]) -> None:
        exists = self.butler.exists
        for o in obs:
            exists("metrics", visit=o.visit, detector=o.detector, filter=o.filter)

    def query(self, visits: Sequence[int]) -> None:
        query = self.butler.query
        for v in visits:
            list(query("metrics", visit=v))

    def count(self, visits: Sequence[int]) -> None:
        count = self.butler.count
        for v in visits:
            count("metrics", visit=v)

    # ---- calibrations (issue 4's API: certify(type, data ID, valid_from, valid_to)) ----------

    def prepare_calibrations(self) -> None:
        butler = self.butler
        butler.put_many(
            "raw",
            [
                (
                    {"visit": o.visit, "detector": o.detector},
                    {"visit": o.visit, "detector": o.detector, "obsTime": o.time},
                )
                for o in observations(0, CALIB_VISITS * DETECTORS)
            ],
        )
        butler.put_many(
            "bias",
            [
                ({"epoch": e, "detector": d}, {"calibDate": calib_date(e), "detector": d})
                for e in range(CALIB_EPOCHS)
                for d in range(DETECTORS)
            ],
        )

    def certify(self) -> None:
        certify = self.butler.certify  # type: ignore[attr-defined]
        for epoch in range(CALIB_EPOCHS):
            begin = _utc(epoch_start(epoch))
            end = _utc(epoch_start(epoch + 1)) if epoch + 1 < CALIB_EPOCHS else None
            for detector in range(DETECTORS):
                certify("bias", {"calibDate": calib_date(epoch), "detector": detector}, begin, end)

    def calib_one(self, obs: Sequence[Obs]) -> None:
        get = self.butler.get
        for o in obs:
            get("bias", visit=o.visit, detector=o.detector)

    def calib_bulk(self, obs: Sequence[Obs]) -> None:
        data_ids = [{"visit": o.visit, "detector": o.detector} for o in obs]
        found = self.butler.find_calibrations("bias", data_ids)
        assert len(list(found)) == len(obs)

    def close(self) -> None:
        if self.deferred is not None:
            self.deferred.close()
        self.butler.close()
