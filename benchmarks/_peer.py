"""lsst-daf-butler (Gen3) driven through the same workload, in its idiomatic form.

The ``metrics`` dataset type has dimensions ``instrument, exposure, detector``
(``physical_filter`` is implied by the exposure, as in every real Gen3 repo),
storage class ``StructuredDataDict`` (YAML), one RUN collection. Exposure
records are inserted before the timed puts (Gen3 needs them; an ingest does it).

- get with keys completed: the data ID is ``day_obs, seq_num, detector``; the
  registry finds the exposure (Gen3's own way of completing a data ID).
- bulk put: ``put`` in a loop inside one ``butler.transaction()`` (Gen3 has no put_many).
- calibrations: ``bias`` (``instrument, detector``, ``isCalibration``) in one RUN per
  epoch, ``registry.certify`` into a CALIBRATION collection; one lookup is
  ``butler.get("bias", exposure=..., detector=...)``; the bulk lookup is
  ``queryDataIds([...]).findRelatedDatasets("bias", ...)`` (refs, no file reads).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import Any

from _workload import (
    CALIB_EPOCHS,
    CALIB_VISITS,
    DETECTORS,
    FILTERS,
    T0,
    Obs,
    System,
    epoch_start,
    payload,
)

INSTRUMENT = "BenchCam"
RUN = "bench"
CALIB = "calib"
DAY_OBS = 20240301


def available() -> str | None:
    """The installed version, or None."""
    try:
        import lsst.daf.butler as daf
    except ImportError:
        return None
    return str(getattr(daf, "__version__", "?"))


def _tai(moment: Any) -> Any:
    import astropy.time

    return astropy.time.Time(moment, scale="utc").tai


class Peer(System):
    name = "lsst-daf-butler"

    def create(self, root: str) -> None:
        from lsst.daf.butler import Butler, DatasetType

        logging.getLogger("lsst").setLevel(logging.WARNING)
        Butler.makeRepo(root)
        self.butler = butler = Butler.from_config(root, writeable=True, run=RUN)
        registry = butler.registry
        registry.insertDimensionData(
            "instrument",
            {
                "name": INSTRUMENT,
                "detector_max": DETECTORS,
                "visit_max": 10**8,
                "exposure_max": 10**8,
                "class_name": "benchcam.BenchCam",
            },
        )
        registry.insertDimensionData(
            "physical_filter",
            *[{"instrument": INSTRUMENT, "name": f, "band": f[-1].lower()} for f in FILTERS],
        )
        registry.insertDimensionData(
            "detector",
            *[
                {"instrument": INSTRUMENT, "id": d, "full_name": f"D{d:02d}"}
                for d in range(DETECTORS)
            ],
        )
        registry.insertDimensionData("day_obs", {"instrument": INSTRUMENT, "id": DAY_OBS})
        registry.registerDatasetType(
            DatasetType(
                "metrics",
                ("instrument", "exposure", "detector"),
                "StructuredDataDict",
                universe=butler.dimensions,
            )
        )

    def prepare(self, obs: Sequence[Obs]) -> None:
        from lsst.daf.butler import Timespan

        registry = self.butler.registry
        visits = sorted({o.visit for o in obs})
        registry.insertDimensionData(
            "group", *[{"instrument": INSTRUMENT, "name": f"g{v}"} for v in visits]
        )
        one_minute = _tai(T0 + datetime.timedelta(minutes=1)) - _tai(T0)
        start = _tai(T0)
        registry.insertDimensionData(
            "exposure",
            *[
                {
                    "instrument": INSTRUMENT,
                    "id": v,
                    "obs_id": f"BC{v:08d}",
                    "physical_filter": FILTERS[v % len(FILTERS)],
                    "day_obs": DAY_OBS,
                    "group": f"g{v}",
                    "seq_num": v,
                    "timespan": Timespan(start + v * one_minute, start + (v + 0.5) * one_minute),
                }
                for v in visits
            ],
        )

    def put_one(self, obs: Sequence[Obs]) -> None:
        put = self.butler.put
        for o in obs:
            put(
                payload(o.visit, o.detector),
                "metrics",
                instrument=INSTRUMENT,
                exposure=o.visit,
                detector=o.detector,
            )

    def put_one_deferred(self, obs: Sequence[Obs]) -> None:
        """lsst-daf-butler never fsyncs: the same as ``put_one`` (and no ``sync_deferred``)."""
        self.put_one(obs)

    def put_bulk(self, obs: Sequence[Obs]) -> None:
        put = self.butler.put
        with self.butler.transaction():
            for o in obs:
                put(
                    payload(o.visit, o.detector),
                    "metrics",
                    instrument=INSTRUMENT,
                    exposure=o.visit,
                    detector=o.detector,
                )

    def get(self, obs: Sequence[Obs]) -> None:
        get = self.butler.get
        for o in obs:
            get("metrics", instrument=INSTRUMENT, exposure=o.visit, detector=o.detector)

    def get_completed(self, obs: Sequence[Obs]) -> None:
        get = self.butler.get
        for o in obs:
            get(
                "metrics",
                instrument=INSTRUMENT,
                day_obs=DAY_OBS,
                seq_num=o.visit,
                detector=o.detector,
            )

    def exists(self, obs: Sequence[Obs]) -> None:
        exists = self.butler.exists
        for o in obs:
            exists(
                "metrics",
                instrument=INSTRUMENT,
                exposure=o.visit,
                detector=o.detector,
                full_check=False,
            )

    def query(self, visits: Sequence[int]) -> None:
        query = self.butler.query_datasets
        for v in visits:
            query("metrics", collections=RUN, data_id={"instrument": INSTRUMENT, "exposure": v})

    def count(self, visits: Sequence[int]) -> None:
        for v in visits:
            with self.butler.query() as q:
                q.datasets("metrics", collections=RUN).where(
                    instrument=INSTRUMENT, exposure=v
                ).count()

    def prepare_calibrations(self) -> None:
        from lsst.daf.butler import CollectionType, DatasetType

        butler, registry = self.butler, self.butler.registry
        registry.registerDatasetType(
            DatasetType(
                "bias",
                ("instrument", "detector"),
                "StructuredDataDict",
                universe=butler.dimensions,
                isCalibration=True,
            )
        )
        registry.registerCollection(CALIB, CollectionType.CALIBRATION)
        self.biases = []
        for epoch in range(CALIB_EPOCHS):
            run = f"calib/run{epoch}"
            registry.registerRun(run)
            for detector in range(DETECTORS):
                ref = butler.put(
                    {"epoch": epoch, "detector": detector},
                    "bias",
                    instrument=INSTRUMENT,
                    detector=detector,
                    run=run,
                )
                self.biases.append((epoch, ref))

    def certify(self) -> None:
        from lsst.daf.butler import Timespan

        certify = self.butler.registry.certify
        for epoch, ref in self.biases:
            end = _tai(epoch_start(epoch + 1)) if epoch + 1 < CALIB_EPOCHS else None
            certify(CALIB, [ref], Timespan(_tai(epoch_start(epoch)), end))

    def calib_one(self, obs: Sequence[Obs]) -> None:
        get = self.butler.get
        for o in obs:
            get(
                "bias",
                instrument=INSTRUMENT,
                exposure=o.visit,
                detector=o.detector,
                collections=CALIB,
            )

    def calib_bulk(self, obs: Sequence[Obs]) -> None:
        visits = sorted({o.visit for o in obs})
        results = self.butler.registry.queryDataIds(
            ["exposure", "detector"],
            instrument=INSTRUMENT,
            where="exposure >= lo AND exposure <= hi",
            bind={"lo": visits[0], "hi": visits[-1]},
        ).findRelatedDatasets("bias", collections=CALIB)
        found = list(results)
        assert len(found) == len(obs) == CALIB_VISITS * DETECTORS, len(found)

    def close(self) -> None:
        self.butler.close()
