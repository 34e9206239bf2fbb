"""What the checksums cost a large put: the same put with the hash functions on and off.

Run from the repository root::

    .venv/bin/python benchmarks/checksum_cost.py [--side 4096] [--runs 25]

One process, one repository (BenchCam, compiled from ``benchcam.butler``), puts of one
``side`` x ``side`` float32 :class:`~butler.image.Image` as FITS and as HDF5, taking turns
with the checksums on and off (the order alternates each round). "Off" replaces the CRC-32C
function and the FITS ``DATASUM`` functions by functions that return at once, so the
difference is what hashing costs, nothing else. Each put is removed (untimed) before the
next. Prints, per format, the median put time with the checksums on and off, the ratio of
those medians, and the median of the per-round ratios (each "on" put over the "off" put of
its own round, which cancels most of a shared machine's slow spells), for three clocks:
wall-clock, CPU of all threads, and CPU of the calling thread alone (what the hashing
threads leave on the put's own path: about its wall-clock time when another core is free,
which a busy machine cannot show). It never asserts a timing.
"""

from __future__ import annotations

import argparse
import os
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


def _switch(on: bool, originals: dict[tuple[object, str], object]) -> None:
    """The hash functions as they are (``on``) or as no-ops."""
    no_op = {"crc32c": lambda data, seed=0: seed, "word_sum": lambda pixels: 0}
    for (module, name), function in originals.items():
        setattr(module, name, function if on else no_op[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4096, help="side of the image (pixels)")
    parser.add_argument("--runs", type=int, default=25, help="timed puts per format and setting")
    args = parser.parse_args()
    originals = {
        (hashing, "crc32c"): hashing.crc32c,
        (fits_sums, "word_sum"): fits_sums.word_sum,
    }
    pixels = np.random.default_rng(7).random((args.side, args.side), dtype=np.float32)
    image = Image(pixels, {"EXPTIME": 30.0, "OBJECT": "bench"})
    loads = [os.getloadavg()[0]]
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
        wall: dict[tuple[str, bool], list[float]] = {
            (fmt, on): [] for fmt in FORMATS for on in (True, False)
        }
        cpu: dict[tuple[str, bool], list[float]] = {key: [] for key in wall}
        own: dict[tuple[str, bool], list[float]] = {key: [] for key in wall}
        with Butler.create(Path(work) / "repo", mapper=str(Path(work) / "benchcam.py")) as b:
            visit = 0
            for run in range(args.runs + 1):  # the first round warms up, untimed
                for fmt, dataset_type in FORMATS.items():
                    for on in (True, False) if run % 2 else (False, True):
                        _switch(on, originals)
                        visit += 1
                        start, used = time.perf_counter(), time.process_time()
                        mine = time.thread_time()
                        b.put(image, dataset_type, visit=visit, detector=1)
                        mine = time.thread_time() - mine
                        elapsed, used = time.perf_counter() - start, time.process_time() - used
                        b.remove(dataset_type, visit=visit, detector=1)
                        if run:
                            wall[(fmt, on)].append(elapsed * 1000)
                            cpu[(fmt, on)].append(used * 1000)
                            own[(fmt, on)].append(mine * 1000)
                loads.append(os.getloadavg()[0])
        _switch(True, originals)
    print(
        f"## put of a {args.side} x {args.side} float32 Image, ms (median of {args.runs}); "
        f"load average {min(loads):.1f}-{max(loads):.1f}\n"
    )
    print("| format | time | checksums on | checksums off | on / off | per-round on / off |")
    print("|---|---|---:|---:|---:|---:|")
    for fmt in FORMATS:
        for label, times in (("wall", wall), ("CPU", cpu), ("CPU, calling thread", own)):
            with_sums, without = times[(fmt, True)], times[(fmt, False)]
            paired = statistics.median(a / b for a, b in zip(with_sums, without, strict=True))
            on_ms, off_ms = statistics.median(with_sums), statistics.median(without)
            print(
                f"| {fmt} | {label} | {on_ms:.1f} | {off_ms:.1f} | {on_ms / off_ms:.3f}x "
                f"| {paired:.3f}x |"
            )


if __name__ == "__main__":
    main()
