"""Puts or gets of vs_daf_butler.py's small YAML datasets, N of them, for instruction counts.

Run it under valgrind with two values of N on the same tree; the difference divided by
the difference of N is the cost of one operation, start-up and set-up cancelled (see
docs/performance.md, issue 13). ``PYTHONPATH`` chooses the tree, so one script measures
two versions of the runtime:

    PYTHONHASHSEED=0 PYTHONPATH=<tree>/runtime:<tree>/compiler valgrind --tool=callgrind \\
        python benchmarks/op_counts.py get 300 MAPPER.py

``get``: 300 puts one at a time and 300 in bulk first, then N gets of a complete data ID;
``put``: N puts one at a time into a ``durability: close`` repository (no fsync per put).
MAPPER.py is BenchCam compiled by the same tree (``_ours.compile_mapper``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workload import observations, payload


def main(mode: str, count: int, mapper: str) -> None:
    from butler.butler import Butler

    work = tempfile.mkdtemp(prefix="op-counts-")
    try:
        durability = "close" if mode == "put" else "put"
        butler = Butler.create(work + "/repo", mapper=mapper, durability=durability)
        obs = observations(0, 600)
        if mode == "get":
            for o in obs[:300]:
                butler.put(
                    payload(o.visit, o.detector),
                    "metrics",
                    visit=o.visit,
                    detector=o.detector,
                    filter=o.filter,
                )
            butler.put_many(
                "metrics",
                [
                    (
                        payload(o.visit, o.detector),
                        {"visit": o.visit, "detector": o.detector, "filter": o.filter},
                    )
                    for o in obs[300:]
                ],
            )
            for o in obs[::2][:count]:
                butler.get("metrics", visit=o.visit, detector=o.detector, filter=o.filter)
        else:
            for o in obs[:count]:
                butler.put(
                    payload(o.visit, o.detector),
                    "metrics",
                    visit=o.visit,
                    detector=o.detector,
                    filter=o.filter,
                )
        butler.close()
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
