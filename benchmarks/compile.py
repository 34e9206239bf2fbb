"""Speed of the compiler and of generated mappers.

Run from the repository root::

    .venv/bin/python benchmarks/compile.py

It compiles a synthetic policy of 300 dataset types and the bundled HSC policy,
generates the mapper of ``tests/fixtures/codegen/hsc.ir.json`` into a temporary
folder, then prints numbers; it never asserts. Targets: compile a 300-dataset-type
policy in < 0.5 s; ``path`` given a DataId >= 500,000 calls/s, ``parse`` >= 200,000
calls/s, importing a generated module < 20 ms.
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
from butlerc import compile_policy
from butlerc.codegen import generate
from butlerc.parse import parser

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


def synthetic_policy(count: int) -> str:
    """An instrument of ``count`` dataset types whose templates share prefixes, as real ones do."""
    lines = [
        'instrument Bench "A benchmark camera" {',
        "    key visit: int in 0..9_999_999",
        "    key ccd: int in 0..199",
        '    key filter: str one of "g" "r" "i" "z" "y"',
        "    key tract: int in 0..99_999",
        r'    key patch: str matches r"\d+,\d+"',
        '    format fits { formatter fits extensions ".fits" hdus }',
        '    format yaml { formatter yaml extensions ".yaml" }',
    ]
    for i in range(count):
        group = ("calexp", "src", "deepCoadd", "config")[i % 4]
        if group == "calexp":
            template = f"{group}/{{visit:07d}}/{{filter}}/t{i}-{{ccd:03d}}.fits"
            keys = "visit, ccd, filter"
        elif group == "src":
            template, keys = f"{group}/{{visit:07d}}/t{i}-{{ccd:03d}}.fits", "visit, ccd"
        elif group == "deepCoadd":
            template = f"{group}/{{filter}}/{{tract}}/{{patch}}/t{i}.fits"
            keys = "filter, tract, patch"
        else:
            template, keys = f"{group}/t{i}.yaml", "()"
        fmt = "yaml" if group == "config" else "fits"
        lines.append(f'    dataset t{i} {{ template "{template}" format {fmt} keys {keys} }}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def compile_seconds(path: Path, text: str | None = None, repeat: int = 3) -> tuple[float, int]:
    """The best of ``repeat`` full compilations (parse to generated source), and the warnings."""
    parser()  # building the LALR tables is a once-per-process cost
    best = float("inf")
    warnings = 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = compile_policy(path, text=text)
        best = min(best, time.perf_counter() - start)
        if not result.ok:
            raise SystemExit(f"{path} does not compile:\n{result.report()}")
        warnings = len(result.warnings)
    return best, warnings


def main() -> None:
    seconds, _ = compile_seconds(Path("bench.butler"), synthetic_policy(300))
    print(f"compile a 300-dataset-type policy: {seconds * 1000:.0f} ms  (target < 500 ms)")
    hsc = ROOT / "policies" / "hsc.butler"
    try:
        seconds, warnings = compile_seconds(hsc)
        print(
            f"compile policies/hsc.butler (with obs_base): {seconds * 1000:.0f} ms, "
            f"{warnings} warnings"
        )
    except SystemExit as error:
        print(f"compile policies/hsc.butler: not compiling yet ({str(error).splitlines()[0]})")
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
