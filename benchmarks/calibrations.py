"""Calibration certify and lookup speed, beside lsst-daf-butler on the same workload.

    .venv/bin/python benchmarks/calibrations.py [--registry URL]

Workload: 10 detectors x 100 biases each, bias i valid for day i (half-open,
back to back); 100 visits x 10 detectors of raw observations at random times in
those 100 days. Timed: certifying 100 biases, 1,000 lookups one by one (the
observation time read from the raw record, and given directly), and the same
1,000 in one bulk call. lsst-daf-butler (the ``peers`` extra) runs the same
certifications, ``Butler.find_dataset`` with a timespan per lookup, and a bulk
``queryDatasetAssociations`` over the calibration collection matched in
Python; it has no raw records here, so its lookups get the time directly.
No files are written by either: datasets are registry records only. Prints
microseconds per operation; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DETECTORS = 10
CALIBS = 100
VISITS = 100
T0 = datetime.datetime(2024, 1, 1)

POLICY = """
instrument BenchCam "benchmark camera" {
    key visit: int in 0..9_999_999
    key detector: int in 0..9
    key obsTime: datetime tai
    key calib: int in 0..9_999
    format fits {
        formatter fits
        extensions ".fits"
        python "butler.image.Image"
    }
    dataset raw {
        template "raw/{visit:07d}/raw-{visit:07d}-{detector}.fits"
        format fits
        keys visit, detector, obsTime
    }
    calibration bias {
        template "bias/{calib:04d}/bias-{calib:04d}-{detector}.fits"
        format fits
        keys calib, detector
        match detector
        valid by obsTime from raw
    }
}
"""


def per_op(seconds: float, count: int) -> float:
    return seconds / count * 1e6


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def observations(seed: int = 4) -> list[tuple[int, int, datetime.datetime]]:
    rng = random.Random(seed)
    result = []
    for visit in range(VISITS):
        moment = T0 + datetime.timedelta(seconds=rng.uniform(0, CALIBS * 86400 - 1))
        result += [(visit, detector, moment) for detector in range(DETECTORS)]
    return result


def ours(work: Path, registry: str | None) -> dict[str, float]:
    import butlerc
    from butler.butler import Butler

    policy = work / "benchcam.butler"
    policy.write_text(POLICY, encoding="utf-8")
    compiled = butlerc.compile_policy(policy)
    assert not compiled.diagnostics, [str(d) for d in compiled.diagnostics]
    module = work / "benchcam.py"
    module.write_text(compiled.modules["benchcam"], encoding="utf-8")
    obs = observations()
    results: dict[str, float] = {}
    with Butler.create(work / "repo", mapper=module, registry=registry) as butler:
        butler.ensure_registered(butler.plan("bias"))
        butler.ensure_registered(butler.plan("raw"))
        butler.registry.insert_many(
            "bias",
            [
                ({"calib": i, "detector": d}, f"bias/{i:04d}/bias-{i:04d}-{d}.fits")
                for d in range(DETECTORS)
                for i in range(CALIBS)
            ],
        )
        butler.registry.insert_many(
            "raw",
            [
                ({"visit": v, "detector": d, "obsTime": t}, f"raw/{v:07d}/raw-{v:07d}-{d}.fits")
                for v, d, t in obs
            ],
        )

        def certify(detector: int) -> None:
            for i in range(CALIBS):
                butler.certify(
                    "bias",
                    {"calib": i, "detector": detector},
                    T0 + datetime.timedelta(days=i),
                    T0 + datetime.timedelta(days=i + 1),
                )

        seconds, _ = timed(lambda: certify(0))
        results["certify"] = per_op(seconds, CALIBS)
        for detector in range(1, DETECTORS):
            certify(detector)

        butler.find_calibration("bias", visit=0, detector=0)  # warm up
        seconds, found = timed(
            lambda: [butler.find_calibration("bias", visit=v, detector=d) for v, d, _ in obs]
        )
        results["lookup (time from raw record)"] = per_op(seconds, len(obs))
        seconds, direct = timed(
            lambda: [butler.find_calibration("bias", obsTime=t, detector=d) for _, d, t in obs]
        )
        results["lookup (time given)"] = per_op(seconds, len(obs))
        data_ids = [{"visit": v, "detector": d} for v, d, _ in obs]
        seconds, bulk = timed(lambda: butler.find_calibrations("bias", data_ids))
        results["bulk lookup (time from raw records)"] = per_op(seconds, len(obs))
        timed_ids = [{"obsTime": t, "detector": d} for _, d, t in obs]
        seconds, _ = timed(lambda: butler.find_calibrations("bias", timed_ids))
        results["bulk lookup (time given)"] = per_op(seconds, len(obs))
        for a, b, c, (_, _, t) in zip(found, direct, bulk, obs, strict=True):
            assert c is not None
            assert a.certification.id == b.certification.id == c.certification.id
            assert a.certification.valid_at(t)
    return results


def theirs(work: Path) -> dict[str, float] | str:
    try:
        from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan
    except ImportError:
        return "not installed (pip install lsst-daf-butler, the 'peers' extra)"
    import astropy.time

    def tai(moment: datetime.datetime) -> astropy.time.Time:
        return astropy.time.Time(moment, scale="tai")

    obs = observations()
    results: dict[str, float] = {}
    root = str(work / "daf_butler")
    Butler.makeRepo(root)
    butler = Butler.from_config(root, writeable=True)
    registry = butler.registry
    registry.insertDimensionData(
        "instrument",
        {
            "name": "BenchCam",
            "detector_max": DETECTORS,
            "visit_max": 10**7,
            "exposure_max": 10**7,
            "class_name": "bench",
        },
    )
    registry.insertDimensionData(
        "detector",
        *[{"instrument": "BenchCam", "id": d, "full_name": f"d{d}"} for d in range(DETECTORS)],
    )
    dataset_type = DatasetType(
        "bias",
        ("instrument", "detector"),
        "StructuredDataDict",
        isCalibration=True,
        universe=butler.dimensions,
    )
    registry.registerDatasetType(dataset_type)
    registry.registerCollection("calib", CollectionType.CALIBRATION)
    refs: dict[tuple[int, int], Any] = {}
    for i in range(CALIBS):  # one RUN per bias version: a data ID is unique within a run
        run = f"bias/{i:04d}"
        registry.registerRun(run)
        inserted = registry.insertDatasets(
            dataset_type,
            [{"instrument": "BenchCam", "detector": d} for d in range(DETECTORS)],
            run=run,
        )
        for d, ref in enumerate(inserted):
            refs[i, d] = ref

    def span(i: int) -> Any:
        return Timespan(
            tai(T0 + datetime.timedelta(days=i)), tai(T0 + datetime.timedelta(days=i + 1))
        )

    def certify(detector: int) -> None:
        for i in range(CALIBS):
            registry.certify("calib", [refs[i, detector]], span(i))

    seconds, _ = timed(lambda: certify(0))
    results["certify"] = per_op(seconds, CALIBS)
    for detector in range(1, DETECTORS):
        certify(detector)

    tick = datetime.timedelta(microseconds=1)

    def find(detector: int, moment: datetime.datetime) -> Any:
        return butler.find_dataset(
            "bias",
            instrument="BenchCam",
            detector=detector,
            collections="calib",
            timespan=Timespan(tai(moment), tai(moment + tick)),
        )

    find(0, obs[0][2])
    seconds, found = timed(lambda: [find(d, t) for _, d, t in obs])
    results["lookup (time given)"] = per_op(seconds, len(obs))

    def bulk() -> list[Any]:
        by_detector: dict[int, list[tuple[Any, Any]]] = {}
        for association in registry.queryDatasetAssociations("bias", collections="calib"):
            detector = association.ref.dataId["detector"]
            by_detector.setdefault(detector, []).append((association.timespan, association.ref))
        result = []
        for _, d, t in obs:
            moment = Timespan(tai(t), tai(t + tick))
            result.append(next(r for s, r in by_detector[d] if s.overlaps(moment)))
        return result

    seconds, in_bulk = timed(bulk)
    results["bulk lookup (time given)"] = per_op(seconds, len(obs))
    assert [r.id for r in found] == [r.id for r in in_bulk]
    butler.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--registry", help="registry URL for Butler (default: SQLite in a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        mine = ours(work, args.registry)
        peer = theirs(work)
    print(
        f"calibrations: {DETECTORS} detectors x {CALIBS} biases; "
        f"{VISITS * DETECTORS} lookups; certify {CALIBS}"
    )
    print(f"{'operation':<40} {'butler µs/op':>14} {'daf_butler µs/op':>18}")
    for name, value in mine.items():
        other = (
            f"{peer[name]:>18.1f}"
            if isinstance(peer, dict) and name in peer
            else f"{'-' if isinstance(peer, dict) else '':>18}"
        )
        print(f"{name:<40} {value:>14.1f} {other}")
    if isinstance(peer, str):
        print(f"lsst-daf-butler: {peer}")


if __name__ == "__main__":
    main()
