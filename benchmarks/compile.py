"""Speed of generated mappers: import time, ``Mapper.path`` and ``Mapper.parse`` calls per second.

Run from the repository root::

    .venv/bin/python benchmarks/compile.py

It generates the mapper of ``tests/fixtures/codegen/hsc.ir.json`` into a temporary
folder, then prints numbers; it never asserts. Targets: ``path`` given a DataId
>= 500,000 calls/s, ``parse`` >= 200,000 calls/s, importing a module < 20 ms.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from butler import Mapper, load_mapper
from butlerc.codegen import generate

ROOT = Path(__file__).resolve().parent.parent
IR = ROOT / "tests" / "fixtures" / "codegen" / "hsc.ir.json"
RAW = {
    "field": "COSMOS",
    "taiObs": "2020-03-04T05:06:07",
    "pointing": 12,
    "filter": "g",
    "visit": 903334,
    "ccd": 16,
}


def calls_per_second(call: Callable[[], object], repeat: int = 5) -> float:
    """The best of ``repeat`` runs, each long enough to time reliably."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return number / min(timer.repeat(repeat=repeat, number=number))


def import_ms(path: Path, name: str) -> float:
    """Milliseconds to import the module at ``path`` (``butler.spec`` already imported)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    start = time.perf_counter()
    sys.modules[name] = module
    spec.loader.exec_module(module)
    elapsed = time.perf_counter() - start
    del sys.modules[name]
    return elapsed * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hsc.py"
        path.write_text(generate(json.loads(IR.read_text(encoding="utf-8"))), encoding="utf-8")
        first = import_ms(path, "bench_hsc_first")
        cached = min(import_ms(path, f"bench_hsc_{i}") for i in range(5))
        mapper: Mapper = load_mapper(path)

    data_id = mapper.normalize(RAW)
    raw_path = mapper.path("raw", data_id)
    print(f"import generated module: {first:.2f} ms (first, compiles), {cached:.2f} ms (cached)")
    rows = [
        ("path(DataId)", lambda: mapper.path("raw", data_id), 500_000),
        ("parse(path)", lambda: mapper.parse("raw", raw_path), 200_000),
        ("path(dict)", lambda: mapper.path("raw", RAW), None),
        ("normalize(dict)", lambda: mapper.normalize(RAW), None),
    ]
    for label, call, target in rows:
        rate = calls_per_second(call)
        goal = f"  (target >= {target:,}/s)" if target else ""
        print(f"mapper.{label:<16} {rate:>12,.0f} calls/s{goal}")


if __name__ == "__main__":
    main()
