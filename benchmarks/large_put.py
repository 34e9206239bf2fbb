"""The put of a large image, in ms, and its ratio to another checkout's: interleaved A/B.

Run from the repository root::

    .venv/bin/python benchmarks/large_put.py                       # this checkout alone
    git -C . worktree add /tmp/base main                            # a checkout to compare with
    .venv/bin/python benchmarks/large_put.py --against /tmp/base   # A/B, median ratio

Each checkout runs in a worker process of its own (the ``butler`` package imported from
that checkout's ``runtime/``), with a repository of its own in a temporary folder, made
with the BenchCam mapper of ``benchcam.butler``. The parent asks the workers in turn to put
one ``side`` x ``side`` float32 :class:`~butler.image.Image` (with a few header cards) as
FITS and as HDF5, each into a fresh data ID, alternating which worker goes first; a worker
times its ``Butler.put`` alone and removes the dataset afterwards (untimed), so the disk
holds one image per worker at a time. It prints the median of the runs and, with
``--against``, the median of the per-run ratios (this checkout over the other), which
cancels most of a shared machine's slow spells. It never asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORMATS = {"fits": "image", "hdf5": "image5"}

_WORKER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import butler as package
from butler.butler import Butler
from butler.image import Image

root, mapper, side = sys.argv[2], sys.argv[3], int(sys.argv[4])
pixels = np.random.default_rng(7).random((side, side), dtype=np.float32)
image = Image(pixels, {"EXPTIME": 30.0, "OBJECT": "bench"})
with Butler.create(root, mapper=mapper) as butler:
    print(json.dumps({"butler": str(package.__file__)}), flush=True)
    for line in sys.stdin:
        dataset_type, visit = line.split()
        start, cpu = time.perf_counter(), time.process_time()
        butler.put(image, dataset_type, visit=int(visit), detector=1)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        butler.remove(dataset_type, visit=int(visit), detector=1)
        print(json.dumps({"ms": elapsed * 1000, "cpu": cpu * 1000}), flush=True)
"""


class Worker:
    """One checkout's worker process: puts on request, answers with the time taken."""

    def __init__(self, checkout: Path, work: Path, mapper: Path, side: int) -> None:
        self.name = str(checkout)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                str(checkout / "runtime"),
                str(work),
                str(mapper),
                str(side),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.module = self._answer()["butler"]

    def put(self, dataset_type: str, visit: int) -> tuple[float, float]:
        """One put: its wall-clock and CPU time (all the worker's threads), in ms."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{dataset_type} {visit}\n")
        self.process.stdin.flush()
        answer = self._answer()
        return float(answer["ms"]), float(answer["cpu"])  # type: ignore[arg-type]

    def _answer(self) -> dict[str, object]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.name} died (see its error output)")
        answer: dict[str, object] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=4096, help="side of the image (pixels)")
    parser.add_argument("--runs", type=int, default=15, help="timed puts per format and checkout")
    parser.add_argument("--against", type=Path, help="another checkout to compare with (A/B)")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from _ours import compile_mapper

    checkouts = [HERE.parent] + ([args.against.resolve()] if args.against else [])
    with tempfile.TemporaryDirectory(prefix="butler-large-put-") as tmp:
        work = Path(tmp)
        mapper = compile_mapper(work)
        workers = [Worker(c, work / f"repo{i}", mapper, args.side) for i, c in enumerate(checkouts)]
        times: dict[tuple[int, str], list[tuple[float, float]]] = {
            (i, f): [] for i in range(len(workers)) for f in FORMATS
        }
        try:
            for run in range(args.runs + 1):  # the first run warms up and is not counted
                for fmt, dataset_type in FORMATS.items():
                    order = list(enumerate(workers))
                    if run % 2:
                        order.reverse()
                    for i, worker in order:
                        elapsed = worker.put(dataset_type, run + 1)
                        if run:
                            times[i, fmt].append(elapsed)
        finally:
            for worker in workers:
                worker.close()
    print(f"## put of a {args.side} x {args.side} float32 Image, ms (median of {args.runs})\n")
    for i, worker in enumerate(workers):
        print(f"- {'AB'[i]}: {worker.module}")
    header = "| format | " + " | ".join(
        f"{'AB'[i]} wall | {'AB'[i]} CPU" for i in range(len(workers))
    )
    if len(workers) == 2:
        header += " | A/B wall (median of runs) | A/B CPU (median of runs)"
    print(f"\n{header} |")
    print("|---" * header.count("|") + "|")
    for fmt in FORMATS:
        cells = []
        for i in range(len(workers)):
            runs = times[i, fmt]
            cells += [f"{statistics.median(r[k] for r in runs):.1f}" for k in (0, 1)]
        if len(workers) == 2:
            for k in (0, 1):
                pairs = zip(times[0, fmt], times[1, fmt], strict=True)
                cells.append(f"{statistics.median(a[k] / b[k] for a, b in pairs):.3f}x")
        print(f"| {fmt} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
