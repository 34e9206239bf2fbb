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

The Butler and lsst-daf-butler columns are slots for the S3 datastore (issue 15, second
step): they print "—" until ``Butler.put``/``get`` run on ``s3://`` repositories.
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

ROWS = ["put small", "get small", "exists small", "get 4k FITS", "section 200²"]


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
    from butler.objectstore import ObjectStore, S3Location, S3Settings
    from butler.objectstore.ranged import RangedFile

    os.environ.update(CREDENTIALS)
    server = S3Server.start()
    try:
        store = ObjectStore(S3Location("bench", "repo"), S3Settings(endpoint_url=server.url))
        store.create_bucket()
        raw = store.client  # the same connection pool for both sides
        bucket = store.location.bucket
        times: dict[str, dict[str, list[float]]] = {row: {"floor": [], "ours": []} for row in ROWS}
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

            steps = {
                "put small": (floor_put, our_put),
                "get small": (floor_get, our_get),
                "exists small": (floor_head, our_head),
            }
            for row, (floor, ours) in steps.items():
                order = [("floor", floor), ("ours", ours)]
                for side, call in order if floor_first else order[::-1]:
                    times[row][side].append(timed(call))

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

                for index in range(args.repeat):
                    pairs = [
                        ("get 4k FITS", floor_download, our_download),
                        ("section 200²", floor_section, our_section),
                    ]
                    for row, floor, ours in pairs:
                        order = [("floor", floor), ("ours", ours)]
                        for side, call in order if index % 2 == 0 else order[::-1]:
                            times[row][side].append(timed(call))
                            clear()
            shares = {side: moved[side] / len(data) for side in moved}
    finally:
        server.stop()

    print(f"S3 on a local moto server; medians in µs; N = {args.n}, image {args.side}²")
    print(
        f"{'operation':<14} {'raw boto3':>11} {'ours':>11} {'ours/raw':>9} {'Butler':>9} "
        f"{'daf_butler':>11}"
    )
    summary: dict[str, dict[str, float | None]] = {}
    for row in ROWS:
        floor, ours = times[row]["floor"], times[row]["ours"]
        if not floor:
            continue
        f, o = statistics.median(floor), statistics.median(ours)
        summary[row] = {"floor_us": f, "ours_us": o, "butler_us": None, "peer_us": None}
        print(f"{row:<14} {f:>11.0f} {o:>11.0f} {o / f:>8.2f}x {'—':>9} {'—':>11}")
    if shares:
        print(
            f"section bytes moved: raw {shares['floor']:.2%}, ours {shares['ours']:.2%} of the file"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": summary, "section_share": shares}, indent=2))


if __name__ == "__main__":
    main()
