"""What the checksums cost a large put: the same put with the hash functions on and off.

Run from the repository root::

    .venv/bin/python benchmarks/checksum_cost.py [--side 4096] [--runs 25]

One process, one repository (BenchCam, compiled from ``benchcam.butler``), puts of one
``side`` x ``side`` float32 :class:`~butler.image.Image` as FITS and as HDF5, taking turns
with the checksums on and off (the order alternates each round). "Off" replaces the CRC-32C
function and the FITS ``DATASUM`` sum by functions that return at once, so the difference
is what hashing costs, nothing else. Each put is removed (untimed) before the next. Prints
the median put time of each and their ratio; it never asserts a timing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from butler import Butler, Image
from butler import checksums as hashing
from butler.formatters import _fits_checksum as fits_sums

HERE = Path(__file__).resolve().parent
FORMATS = {"fits": "image", "hdf5": "image5"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4096, help="side of the image (pixels)")
    parser.add_argument("--runs", type=int, default=25, help="timed puts per format and setting")
    args = parser.parse_args()
    crc, datasum = hashing.crc32c, fits_sums.datasum
    pixels = np.random.default_rng(7).random((args.side, args.side), dtype=np.float32)
    image = Image(pixels, {"EXPTIME": 30.0, "OBJECT": "bench"})
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "butlerc.cli",
                "compile",
                str(HERE / "benchcam.butler"),
                "-o",
                work,
            ],
            check=True,
            capture_output=True,
        )
        times: dict[tuple[str, bool], list[float]] = {
            (fmt, on): [] for fmt in FORMATS for on in (True, False)
        }
        with Butler.create(Path(work) / "repo", mapper=str(Path(work) / "benchcam.py")) as b:
            visit = 0
            for run in range(args.runs + 1):  # the first round warms up, untimed
                for fmt, dataset_type in FORMATS.items():
                    for on in (True, False) if run % 2 else (False, True):
                        hashing.crc32c = crc if on else (lambda data, seed=0: seed)
                        fits_sums.datasum = datasum if on else (lambda array: 0)
                        visit += 1
                        start = time.perf_counter()
                        b.put(image, dataset_type, visit=visit, detector=1)
                        elapsed = time.perf_counter() - start
                        b.remove(dataset_type, visit=visit, detector=1)
                        if run:
                            times[(fmt, on)].append(elapsed * 1000)
        hashing.crc32c, fits_sums.datasum = crc, datasum
    print(f"## put of a {args.side} x {args.side} float32 Image, ms (median of {args.runs})\n")
    print("| format | checksums on | checksums off | on / off |")
    print("|---|---|---|---|")
    for fmt in FORMATS:
        on, off = (statistics.median(times[(fmt, flag)]) for flag in (True, False))
        print(f"| {fmt} | {on:.1f} | {off:.1f} | {on / off:.3f}x |")


if __name__ == "__main__":
    main()
