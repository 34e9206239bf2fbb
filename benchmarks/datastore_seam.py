"""What the Datastore seam costs a get, paired in one process (issue 13), in µs.

Run from the repository root::

    .venv/bin/python benchmarks/datastore_seam.py

Rows, interleaved round by round so that load on the machine hits both alike: the raw
floor (the formatter reading the file by path, as ``get`` did before the seam), the same
read through ``LocalDatastore.read`` (the seam), and building the ``ReadRequest`` a get
makes. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from butler import Butler
from butler.datastore import ReadRequest

ROUNDS = 15
CALLS = 500


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        butler = Butler.create(Path(folder) / "repo", mapper="toycam", durability="close")
        butler.put({"n": 1}, "focusSweep", visit=1, focus=0.5)
        plan = butler.plan("focusSweep")
        path = butler.registry.find("focusSweep", {"visit": 1, "focus": 0.5})
        assert path is not None
        datastore = butler.datastore
        location = datastore.location(path)
        formatter, python_type = plan.formatter, plan.format.python_type
        request = ReadRequest(plan.spec.name, plan.load_formatter, python_type, None)
        rows: dict[str, Callable[[], object]] = {
            "formatter.read(path) (the floor)": lambda: formatter.read(
                location, python_type=python_type, hdu=None
            ),
            "datastore.read(location)": lambda: datastore.read(location, request, "read"),
            "ReadRequest(...)": lambda: ReadRequest(
                plan.spec.name, plan.load_formatter, python_type, None
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(ROUNDS):
            for name, call in rows.items():
                start = time.perf_counter()
                for _ in range(CALLS):
                    call()
                times[name].append((time.perf_counter() - start) / CALLS * 1e6)
        butler.close()
    for name, values in times.items():
        values.sort()
        print(f"{name:36s} min {values[0]:8.2f}   median {values[len(values) // 2]:8.2f}")


if __name__ == "__main__":
    main()
