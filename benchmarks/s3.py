"""S3: our object-store layer against raw boto3 (the floor), on a local S3-protocol server.

Run from the repository root::

    .venv/bin/python benchmarks/s3.py                 # N = 200 small objects, a 4096² FITS
    .venv/bin/python benchmarks/s3.py --n 50 --side 2048 --json s3.json

It starts the tests' server (moto's S3 back-end, one request at a time, on 127.0.0.1 on a
free port; ``tests/_s3server.py``), and times, in one process, taking turns operation by
operation so that both sides see the same slow spells:

- small objects (1 KiB): put (boto3 ``put_object`` / ``ObjectStore.put_new``, conditional,
  with the checksum and put id in metadata), get (``get_object`` / ``get_bytes``), exists
  (``head_object`` / ``head``);
- a 4096 x 4096 float32 FITS image (64 MiB): whole get (``get_object`` into a file /
  ``get_file``), and a 200 x 200 section (the floor: the same per-row byte ranges sent by
  hand with ``get_object(Range=...)``; ours: ``astropy.io.fits`` on a ``RangedFile``),
  with the bytes each section read moved, as a share of the file.

The Butler column runs the same operations through ``Butler.put``/``get``/``exists``/
``get_section`` on an ``s3://`` repository in the same server (registry: a fresh schema in
the PostgreSQL at ``BUTLER_BENCH_POSTGRES``, default ``postgresql+psycopg://127.0.0.1:5432/test``;
"—" if it cannot be reached), with the read cache off (``BUTLER_CACHE_SIZE=0``) so that
every get downloads, as the floor's does. Its section's bytes are counted by one more,
untimed, section get through the tests' counting proxy. ``exists`` is a registry lookup
(the registry is the index). The "Butler, cached" row is a second Butler on the same
repository with the read cache on (its default), getting datasets it has read before.

The lsst-daf-butler column (the ``peers`` extra; run in ``.venv-bench``) is a Gen3
repository at ``s3://bench/daf`` in the same server (lsst-resources, through boto3, reads
``S3_ENDPOINT_URL``), its registry a fresh schema of the same PostgreSQL: ``put`` of a
``StructuredDataDict`` (YAML, as ours) for ``instrument, detector``, ``get`` of the ref,
``exists(ref, full_check=False)`` (registry only, as ours). Its images are not timed (a
FITS image needs lsst.afw's storage classes). When it cannot run, the reason is printed.
Medians in microseconds. moto copies the whole object for every ranged GET (its cost grows
with the object, unlike S3's), so section times here are an upper bound. Never asserts.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

ROWS = [
    "put small",
    "get small",
    "get small, cached",
    "exists small",
    "get 4k FITS",
    "section 200²",
]


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="small objects per row")
    parser.add_argument("--side", type=int, default=4096, help="image side (0 skips images)")
    parser.add_argument("--repeat", type=int, default=2, help="image gets per side")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()

    import numpy as np
    from _s3server import CREDENTIALS, S3Server
    from astropy.io import fits
    from butler import BBox, Image
    from butler.objectstore import ObjectStore, S3Location, S3Settings
    from butler.objectstore.ranged import RangedFile

    os.environ.update(CREDENTIALS)
    os.environ["BUTLER_CACHE_SIZE"] = "0"
    server = S3Server.start()
    try:
        store = ObjectStore(S3Location("bench", "repo"), S3Settings(endpoint_url=server.url))
        store.create_bucket()
        raw = store.client  # the same connection pool for both sides
        bucket = store.location.bucket
        os.environ["AWS_ENDPOINT_URL_S3"] = server.url
        butler = _butler()
        cached = _cached_butler(butler) if butler is not None else None
        peer, why_not, peer_root = _peer(server.url, args.n)
        peer_cached = _cached_peer(peer_root) if peer is not None else None
        sides = ["floor", "ours"] + (["butler"] if butler is not None else [])
        sides += ["peer"] if peer is not None else []
        times: dict[str, dict[str, list[float]]] = {
            row: {s: [] for s in [*sides, "cached"]} for row in ROWS
        }
        refs: dict[int, object] = {}
        peer_refs: dict[int, object] = {}
        payload = os.urandom(1024)
        keys = [uuid.uuid4().hex for _ in range(args.n)]
        for index, key in enumerate(keys):
            floor_first = index % 2 == 0
            floor_key = store.location.key(f"floor/{key}")
            our_key = f"ours/{key}"

            def floor_put(k: str = floor_key) -> object:
                return raw.put_object(Bucket=bucket, Key=k, Body=payload)

            def floor_get(k: str = floor_key) -> object:
                return raw.get_object(Bucket=bucket, Key=k)["Body"].read()

            def floor_head(k: str = floor_key) -> object:
                return raw.head_object(Bucket=bucket, Key=k)

            def our_put(k: str = our_key) -> object:
                return store.put_new(k, payload, "crc32c:00000000")

            def our_get(k: str = our_key) -> object:
                return store.get_bytes(k)

            def our_head(k: str = our_key) -> object:
                return store.head(k)

            def butler_put(i: int = index) -> object:
                refs[i] = butler.put({"n": i}, "focusSweep", visit=i + 1, focus=0.5)
                return refs[i]

            def butler_get(i: int = index) -> object:
                return butler.get(refs[i])

            def butler_exists(i: int = index) -> object:
                return butler.exists(refs[i])

            def peer_put(i: int = index) -> object:
                peer_refs[i] = peer.put({"n": i}, "metrics", instrument=PEER_CAMERA, detector=i)
                return peer_refs[i]

            def peer_get(i: int = index) -> object:
                return peer.get(peer_refs[i])

            def peer_exists(i: int = index) -> object:
                return peer.exists(peer_refs[i], full_check=False)

            steps = {
                "put small": (floor_put, our_put, butler_put, peer_put),
                "get small": (floor_get, our_get, butler_get, peer_get),
                "exists small": (floor_head, our_head, butler_exists, peer_exists),
            }
            for row, calls in steps.items():
                by_side = dict(zip(["floor", "ours", "butler", "peer"], calls, strict=True))
                order = [(side, by_side[side]) for side in sides]
                for side, call in order if floor_first else order[::-1]:
                    times[row][side].append(timed(call))
            if cached is not None:
                cached.get(refs[index])  # read once: in the cache from now on
                times["get small, cached"]["cached"].append(
                    timed(lambda i=index: cached.get(refs[i]))
                )
            if peer_cached is not None:
                peer_cached.get(peer_refs[index])  # read once: in its cache from now on
                times["get small, cached"]["peer"].append(
                    timed(lambda i=index: peer_cached.get(peer_refs[i]))
                )

        shares: dict[str, float] = {}
        if args.side:
            image = np.random.default_rng(7).random((args.side, args.side), dtype=np.float32)
            buffer = io.BytesIO()
            fits.PrimaryHDU(image).writeto(buffer)
            data = buffer.getvalue()
            store.put_new("image.fits", data, "crc32c:00000000")
            key = store.location.key("image.fits")
            with fits.open(io.BytesIO(data)) as hdus:
                data_offset = hdus[0].fileinfo()["datLoc"]
            y0, x0, width = args.side // 3, args.side // 3, 200
            rows = [
                (data_offset + ((y0 + y) * args.side + x0) * 4, width * 4) for y in range(width)
            ]
            moved = {"floor": 0, "ours": 0}
            bbox = BBox.from_slices(slice(y0, y0 + width), slice(x0, x0 + width))
            image_ref = None
            if butler is not None:
                image_ref = butler.put(Image(image), "calexp", visit=1, detector=1, filter="g")

            def butler_section() -> None:
                butler.get_section(image_ref, bbox)

            def floor_section() -> None:
                moved["floor"] = 0
                for start, length in rows:
                    body = raw.get_object(
                        Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
                    )["Body"].read()
                    moved["floor"] += len(body)

            def our_section() -> None:
                remote = RangedFile(store, "image.fits")
                with fits.open(remote) as hdus:
                    hdus[0].section[y0 : y0 + width, x0 : x0 + width]
                moved["ours"] = remote.bytes_fetched

            with tempfile.TemporaryDirectory() as folder:
                # Each get writes a new file (as a download into the cache does); the
                # files are removed between gets, untimed: a new file costs the disk more
                # than one written over in place, and both sides must pay the same.
                def clear() -> None:
                    for old in Path(folder).iterdir():
                        old.unlink()

                def floor_download() -> None:
                    with open(Path(folder) / "floor.fits", "wb") as out:
                        body = raw.get_object(Bucket=bucket, Key=key)["Body"]
                        for chunk in iter(lambda: body.read(1 << 20), b""):
                            out.write(chunk)

                def our_download() -> None:
                    store.get_file("image.fits", Path(folder) / "ours.fits")

                def butler_download() -> None:
                    butler.get(image_ref)

                for index in range(args.repeat):
                    pairs = [
                        ("get 4k FITS", floor_download, our_download, butler_download),
                        ("section 200²", floor_section, our_section, butler_section),
                    ]
                    for row, floor, ours, theirs in pairs:
                        image_sides = [side for side in sides if side != "peer"]
                        order = list(zip(image_sides, (floor, ours, theirs), strict=False))
                        for side, call in order if index % 2 == 0 else order[::-1]:
                            times[row][side].append(timed(call))
                            clear()
            if butler is not None:
                moved["butler"] = _section_bytes(server.url, str(butler.root), image_ref, bbox)
            shares = {side: moved[side] / len(data) for side in moved}
        if butler is not None:
            butler.close()
        if cached is not None:
            cached.close()
        for other in (peer, peer_cached):
            if other is not None:
                other.close()
    finally:
        server.stop()

    print(f"S3 on a local moto server; medians in µs; N = {args.n}, image {args.side}²")
    print(
        f"{'operation':<18} {'raw boto3':>10} {'ObjectStore':>17} {'Butler':>17}"
        f" {'lsst-daf-butler':>17} {'daf/Butler':>10}"
    )
    summary: dict[str, dict[str, float | None]] = {}
    for row in ROWS:
        medians = {
            side: statistics.median(values) if values else None
            for side, values in times[row].items()
        }
        if row == "get small, cached":  # the Butler with its cache on, against the same floor
            medians["butler"], medians["cached"] = medians["cached"], None
            medians["floor"] = medians.get("floor") or _median(times["get small"]["floor"])
        f = medians.get("floor")
        if f is None:
            continue
        o, b, p = medians.get("ours"), medians.get("butler"), medians.get("peer")
        summary[row] = {"floor_us": f, "ours_us": o, "butler_us": b, "peer_us": p}

        def cell(value: float | None, floor: float = f) -> str:
            if value is None:
                return f"{'—':>17}"
            return f"{value:>9.0f} ({value / floor:>4.2f}x)"

        peer_cell = cell(p)
        ratio = f"{p / b:>9.1f}x" if p is not None and b is not None else f"{'—':>10}"
        print(f"{row:<18} {f:>10.0f} {cell(o)} {cell(b)} {peer_cell} {ratio}")
    print("(x): against raw boto3 on the same row; daf/Butler: how many times faster Butler is")
    if why_not:
        print(f"lsst-daf-butler not run: {why_not}")
    if shares:
        butler_share = f", Butler {shares['butler']:.2%}" if "butler" in shares else ""
        print(
            f"section bytes moved: raw {shares['floor']:.2%}, ours {shares['ours']:.2%}"
            f"{butler_share} of the file"
        )
    if args.json:
        record = {"rows": summary, "section_share": shares, "peer_not_run": why_not}
        args.json.write_text(json.dumps(record, indent=2))


def _butler() -> object | None:
    """A new Butler repository in the bench bucket, with a fresh PostgreSQL schema."""
    from butler import Butler

    server = os.environ.get("BUTLER_BENCH_POSTGRES", "postgresql+psycopg://127.0.0.1:5432/test")
    schema = f"bench_s3_{uuid.uuid4().hex[:12]}"
    try:
        import psycopg
        import sqlalchemy as sa

        plain = sa.make_url(server).set(drivername="postgresql")
        with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
    except Exception as error:
        print(f"Butler column skipped: no PostgreSQL at {server} ({error})")
        return None
    registry = sa.make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    return Butler.create(
        "s3://bench/butler", mapper="toycam", registry=registry.render_as_string(False)
    )


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _cached_butler(butler: object) -> object:
    """A second Butler on the same repository, with its read cache on (a fresh folder)."""
    from butler import Butler

    folder = tempfile.mkdtemp(prefix="butler-bench-cache-")
    os.environ.update(BUTLER_CACHE_SIZE="4GiB", BUTLER_CACHE_DIR=folder)
    try:
        return Butler(str(butler.root))  # type: ignore[attr-defined]
    finally:
        os.environ["BUTLER_CACHE_SIZE"] = "0"


PEER_CAMERA = "BenchCam"


def _cached_peer(root: str) -> object:
    """A second lsst-daf-butler on the peer's repository, with its datastore cache on (its
    default; a fresh folder)."""
    import lsst.daf.butler as daf

    os.environ["DAF_BUTLER_CACHE_DIRECTORY"] = tempfile.mkdtemp(prefix="daf-bench-cache-")
    return daf.Butler.from_config(root, run="bench")


def _peer(endpoint: str, detectors: int) -> tuple[object | None, str, str]:
    """An lsst-daf-butler repository in the bench bucket with a PostgreSQL registry, or
    None and why not; and its root."""
    try:
        import lsst.daf.butler as daf
    except ImportError:
        return None, "lsst-daf-butler is not installed (the peers extra: run in .venv-bench)", ""
    import logging

    logging.getLogger("lsst").setLevel(logging.WARNING)
    server = os.environ.get("BUTLER_BENCH_POSTGRES", "postgresql+psycopg://127.0.0.1:5432/test")
    os.environ["S3_ENDPOINT_URL"] = endpoint  # lsst-resources' variable for the endpoint
    schema = f"bench_daf_{uuid.uuid4().hex[:12]}"
    root = f"s3://bench/daf-{schema}/"
    try:
        import psycopg
        import sqlalchemy as sa

        plain = sa.make_url(server).set(drivername="postgresql")
        with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")  # Gen3 needs it
        config = daf.Config({"registry": {"db": server, "namespace": schema}})
        daf.Butler.makeRepo(root, config=config)
        os.environ["DAF_BUTLER_CACHE_EXPIRATION_MODE"] = "disabled"  # as ours: cache off
        peer = daf.Butler.from_config(root, writeable=True, run="bench")
        del os.environ["DAF_BUTLER_CACHE_EXPIRATION_MODE"]
        registry = peer.registry
        registry.insertDimensionData(
            "instrument",
            {
                "name": PEER_CAMERA,
                "detector_max": detectors + 1,
                "visit_max": 10**8,
                "exposure_max": 10**8,
                "class_name": "benchcam.BenchCam",
            },
        )
        registry.insertDimensionData(
            "detector",
            *[
                {"instrument": PEER_CAMERA, "id": d, "full_name": f"D{d:04d}"}
                for d in range(detectors)
            ],
        )
        registry.registerDatasetType(
            daf.DatasetType(
                "metrics",
                ("instrument", "detector"),
                "StructuredDataDict",
                universe=peer.dimensions,
            )
        )
    except Exception as error:  # any failure of the peer's set-up: say why, run ours
        return None, f"{type(error).__name__}: {error}", root
    return peer, "", root


def _section_bytes(endpoint: str, root: str, ref: object, bbox: object) -> int:
    """Bytes a Butler section get moves, counted by the tests' proxy (untimed)."""
    from _s3faults import fault_proxy
    from butler import Butler

    with fault_proxy(endpoint) as proxy:
        os.environ["AWS_ENDPOINT_URL_S3"] = proxy.url
        try:
            with Butler(root) as other:
                proxy.requests.clear()
                other.get_section(ref, bbox)
                return sum(n for method, _, n in proxy.requests if method == "GET")
        finally:
            os.environ["AWS_ENDPOINT_URL_S3"] = endpoint


if __name__ == "__main__":
    main()
