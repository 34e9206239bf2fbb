"""Circle queries over many registered sky regions, against a brute-force exact scan.

    .venv/bin/python benchmarks/spatial.py                      # 1,000,000 regions
    .venv/bin/python benchmarks/spatial.py --regions 100000     # quicker
    .venv/bin/python benchmarks/spatial.py --postgres ''        # SQLite only
    .venv/bin/python benchmarks/spatial.py --cache /tmp/spatial # populate once, reuse after

Workload: ``--regions`` CCD-sized quadrilaterals (6' x 12', HSC's detector, at random
angles) spread evenly over a 40 x 35 degree survey field (RA 0..40, Dec -10..25, about
1,400 square degrees; the regions cover it about 14 times over), recorded as ``calexp``
datasets of a Butler repository (registry rows only, no files) in bulk. Timed:
``butler.query("calexp", region=Circle(ra, dec, r))`` at ``--queries`` random centres in
the field for each radius (the registry's HTM range search, then the exact test), timed
twice in a row (the first "cold-ish", just after the floor's scan has run through the
CPU caches; the second warm), and the floor: the exact lsst-sphgeom overlap test of the
same circles against every region, held decoded in memory. Both must give the same data
IDs (checked for every query). Prints milliseconds per query (median and 95th
percentile), for the cold-ish query also its CPU time in this process (on a loaded
machine the wall time is mostly waiting for a core); asserts nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vs_daf_butler import postgres_schema

POLICY = """
instrument SkyCam "spatial benchmark camera" {
    key visit: int in 0..99_999_999
    key detector: int in 0..999
    format fits {
        formatter fits
        extensions ".fits"
        python "butler.image.Image"
    }
    dataset calexp {
        template "calexp/{visit:08d}/calexp-{visit:08d}-{detector:03d}.fits"
        format fits
        keys visit, detector
    }
}
"""
DETECTORS = 100  # data IDs: visit = n // 100, detector = n % 100
FIELD = (0.0, 40.0, -10.0, 25.0)  # RA and Dec ranges of the survey field, degrees
WIDTH, HEIGHT = 6.0 / 60, 12.0 / 60  # degrees


def _vector(ra: float, dec: float) -> Any:
    import lsst.sphgeom as sg

    return sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec))


def _uniform_point(rng: random.Random) -> tuple[float, float]:
    """A point evenly distributed (by area) over the field."""
    ra0, ra1, dec0, dec1 = FIELD
    low, high = math.sin(math.radians(dec0)), math.sin(math.radians(dec1))
    return rng.uniform(ra0, ra1), math.degrees(math.asin(rng.uniform(low, high)))


def regions(count: int, seed: int = 17) -> Iterator[Any]:
    """CCD-sized quadrilaterals at random places and angles in the field."""
    import lsst.sphgeom as sg

    rng = random.Random(seed)
    for _ in range(count):
        ra, dec = _uniform_point(rng)
        turn = rng.uniform(0.0, math.pi)
        cos_dec = math.cos(math.radians(dec))
        corners = []
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            x, y = sx * WIDTH / 2, sy * HEIGHT / 2
            dx = x * math.cos(turn) - y * math.sin(turn)
            dy = x * math.sin(turn) + y * math.cos(turn)
            corners.append(_vector(ra + dx / cos_dec, dec + dy))
        yield sg.ConvexPolygon.convexHull(corners)


def populate(butler: Any, shapes: list[Any], batch: int = 1_000_000) -> float:
    """Record every region as a calexp in bulk (one transaction per ``batch``: one for up
    to a million); seconds taken."""
    from butler.regions import indexed
    from butler.registry import new_dataset_id

    start = time.perf_counter()
    registry = butler.registry
    butler.ensure_registered(butler.plan("calexp"))
    for first in range(0, len(shapes), batch):
        part = shapes[first : first + batch]
        ids = [new_dataset_id() for _ in part]
        rows = []
        for n in range(first, first + len(part)):
            visit, detector = divmod(n, DETECTORS)
            path = f"calexp/{visit:08d}/calexp-{visit:08d}-{detector:03d}.fits"
            rows.append(({"visit": visit, "detector": detector}, path))
        with registry.transaction():
            registry.insert_many("calexp", rows, dataset_ids=ids)
            registry.record_regions(
                "calexp", [(i, *indexed(s)) for i, s in zip(ids, part, strict=True)]
            )
        print(f"    {first + len(part):,} recorded", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return time.perf_counter() - start


def analyze(url: str) -> None:
    """Fresh planner statistics after the bulk load (PostgreSQL's autovacuum may lag)."""
    import sqlalchemy as sa

    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def timed(function: Callable[[], Any], cpu: list[float] | None = None) -> tuple[float, Any]:
    """Wall seconds and the result of ``function()``; its CPU seconds (this process's,
    user and system: not the database server's) appended to ``cpu``, if given."""
    start, started_cpu = time.perf_counter(), time.process_time()
    result = function()
    if cpu is not None:
        cpu.append(time.process_time() - started_cpu)
    return time.perf_counter() - start, result


def run(label: str, work: Path, url: str | None, shapes: list[Any], args: Any) -> None:
    import butlerc
    import lsst.sphgeom as sg
    from butler import Butler, Circle

    policy = work / "skycam.butler"
    policy.write_text(POLICY, encoding="utf-8")
    compiled = butlerc.compile_policy(policy)
    assert not compiled.diagnostics, [str(d) for d in compiled.diagnostics]
    module = work / "skycam.py"
    module.write_text(compiled.modules["skycam"], encoding="utf-8")
    root = work / f"repo-{label}-{len(shapes)}"
    done = root / "POPULATED"
    if done.exists():  # --cache: populated by an earlier run with the same --regions
        opened = Butler(root)
    else:
        if root.exists():  # an interrupted population: start again
            shutil.rmtree(root)
        opened = Butler.create(root, mapper=module, registry=url)
    with opened as butler:
        if done.exists():
            print(f"{label}: {len(shapes):,} regions, reused from {root}")
        else:
            seconds = populate(butler, shapes)
            if url is not None and url.startswith("postgresql"):
                analyze(url)
            done.write_text(f"{len(shapes)}\n", encoding="utf-8")
            print(f"{label}: {len(shapes):,} regions recorded in {seconds:.1f} s")
        rng = random.Random(5)
        for radius in args.radii:
            ours: list[float] = []
            ours_cpu: list[float] = []
            again: list[float] = []
            floor: list[float] = []
            found = 0
            for _ in range(args.queries):
                ra, dec = _uniform_point(rng)
                circle = Circle(ra, dec, radius)
                query = circle.to_sphgeom()
                # interleaved: ours (cold-ish: after the floor's scan of the last query),
                # ours again at once (warm: the same pages), then the floor
                took, result = timed(
                    lambda c=circle: list(butler.query("calexp", region=c)), ours_cpu
                )
                ours.append(took)
                took, repeated = timed(lambda c=circle: list(butler.query("calexp", region=c)))
                again.append(took)
                assert repeated == result
                took, expected = timed(
                    lambda q=query: [n for n, s in enumerate(shapes) if q.overlaps(s)]
                )
                floor.append(took)
                got = sorted(d["visit"] * DETECTORS + d["detector"] for d in result)
                if got != expected:
                    raise SystemExit(f"{label}: {circle} gave {got}, brute force {expected}")
                found += len(got)
            print(
                f"  circle r={radius:g} deg: ours {_ms(ours)} (cpu {_ms(ours_cpu)})"
                f"  |  warm {_ms(again)}"
                f"  |  brute-force scan {_ms(floor)}"
                f"  |  {found / args.queries:.1f} regions per query, same answers: yes"
            )
    del sg


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(values) * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=50, help="per radius (default 50)")
    parser.add_argument("--radii", type=float, nargs="+", default=[0.05, 0.1, 0.5])
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL URL ('' skips it)",
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep the populated repositories (and a PostgreSQL schema named by --regions) "
        "here and reuse them in later runs with the same --regions",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    shapes = list(regions(args.regions))
    print(f"{len(shapes):,} regions made in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) if args.cache is None else args.cache
        work.mkdir(parents=True, exist_ok=True)
        if not args.no_sqlite:
            run("SQLite", work, None, shapes, args)
        if args.postgres:
            if args.cache is not None:  # a schema kept for the next run, named by the size
                folder_tag = hashlib.sha1(str(work.resolve()).encode()).hexdigest()[:8]
                schema = f"butler_bench_spatial_{args.regions}_{folder_tag}"
                url = kept_schema(args.postgres, schema)
                if url is not None:
                    run("PostgreSQL", work, url, shapes, args)
            else:
                with postgres_schema(args.postgres) as fresh:
                    if fresh is not None:
                        run("PostgreSQL", work, fresh, shapes, args)


def kept_schema(url: str, schema: str) -> str | None:
    """A URL on schema ``schema`` of ``url`` (created if absent, kept); None if unreachable."""
    import psycopg
    import sqlalchemy as sa

    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    except psycopg.Error as error:
        print(f"  PostgreSQL at {url} is not reachable: {error}", file=sys.stderr)
        return None
    return (
        sa.make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


if __name__ == "__main__":
    main()
