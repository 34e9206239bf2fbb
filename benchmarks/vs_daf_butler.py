"""Butler against lsst-daf-butler and against the raw floor, side by side, in µs per operation.

Run from the repository root::

    .venv/bin/python benchmarks/vs_daf_butler.py                       # N = 2,000 and 10,000
    .venv/bin/python benchmarks/vs_daf_butler.py --scale 1000000       # + 1M registered datasets
    .venv/bin/python benchmarks/vs_daf_butler.py --sizes 2000 --no-peer --no-scale

The same workload runs on three systems in one process, one after the other:
Butler (the BenchCam mapper of ``benchcam.butler``), lsst-daf-butler (``pip install
'butler[peers]'``; without it the column says "not installed") and the raw floor
(``_floor.py``: the same file writes and reads and SQLite statements, by hand).
See ``benchmarks/README.md`` for what each row does on each system. It prints
numbers; it never asserts a timing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _peer
from _floor import Floor
from _ours import Ours, compile_mapper
from _workload import (
    CALIB_VISITS,
    DETECTORS,
    ROUNDS,
    System,
    best_of,
    observations,
    sample,
    timed,
)

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOT_INSTALLED = "not installed"
NOT_YET = "not yet available"


# ---- results -------------------------------------------------------------------------------


@dataclass
class Row:
    """One operation: µs per operation for each system (or a reason there is no number)."""

    operation: str
    target: str = ""
    cells: dict[str, float | str] = field(default_factory=dict)


def _fmt(cell: float | str | None) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, str):
        return cell
    return f"{cell:,.1f}" if cell < 1000 else f"{cell:,.0f}"


def _ratio(a: float | str | None, b: float | str | None) -> str:
    if isinstance(a, float) and isinstance(b, float) and b > 0:
        return f"{a / b:,.1f}x"
    return "-"


def print_table(title: str, rows: Sequence[Row], peer: str, floor: str | None) -> None:
    header = ["operation (µs/op)", "Butler", peer]
    if floor:
        header.append(floor)
    header += ["peer/Butler", "Butler/floor" if floor else "", "target"]
    lines = []
    for row in rows:
        ours = row.cells.get("Butler")
        theirs = row.cells.get(peer)
        cells = [row.operation, _fmt(ours), _fmt(theirs)]
        if floor:
            cells.append(_fmt(row.cells.get(floor)))
        cells += [_ratio(theirs, ours), _ratio(ours, row.cells.get(floor or "")), row.target]
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in lines:
        out = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        print("| " + " | ".join(out) + " |")
    sys.stdout.flush()


# ---- the small-dataset workload -------------------------------------------------------------


def run_workload(
    systems: Sequence[System], work: Path, n: int, reads: int
) -> dict[str, dict[str, Any]]:
    """Every operation of the workload on every system: µs per operation, by system and row.

    A row runs in ``ROUNDS`` rounds and each round runs every system in turn, starting
    with a different one each time, so a slow spell of the shared machine falls on all of
    them alike; each system reports its best round.
    """
    single = observations(0, n)
    bulk = observations(n // DETECTORS + 1, n)
    deferred = observations(2 * (n // DETECTORS + 1), n)
    reads_sample = sample(single + bulk, reads)
    visits = sample(sorted({o.visit for o in single + bulk}), max(reads // 10, 10))
    calib_obs = [o for o in observations(0, CALIB_VISITS * DETECTORS) if o.visit > n // 5]
    out: dict[str, dict[str, Any]] = {system.name: {} for system in systems}
    opened: list[System] = []
    try:
        for system in systems:
            root = work / f"{system.name.replace(' ', '-')}-{n}"
            create = functools.partial(system.create, str(root))
            out[system.name]["create repository"] = timed(create, 1)
            opened.append(system)
            system.prepare(single + bulk + deferred + calib_obs)
        rows: list[tuple[str, Callable[[System], Callable[[Sequence[Any]], object]], Any]] = [
            ("put, one at a time", lambda s: s.put_one, _split(single)),
            ("put, in bulk", lambda s: s.put_bulk, _split(bulk)),
            ("get, complete data ID", lambda s: s.get, [reads_sample] * ROUNDS),
            ("get, keys from registry", lambda s: s.get_completed, [reads_sample] * ROUNDS),
            ("exists", lambda s: s.exists, [reads_sample] * ROUNDS),
            ("query one visit", lambda s: s.query, [visits] * ROUNDS),
            ("count one visit", lambda s: s.count, [visits] * ROUNDS),
        ]
        for row, operation, batches in rows:
            _interleaved(systems, out, row, operation, batches, tolerate=False)
            if row == "put, one at a time":
                _deferred(systems, out, _split(deferred))
        _calibrations(systems, out)
    finally:
        for system in opened:
            system.close()
    return out


def _split(items: Sequence[Any]) -> list[Sequence[Any]]:
    """``items`` in ``ROUNDS`` parts: writes cannot repeat a data ID, so each round has its own."""
    size = -(-len(items) // ROUNDS)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _interleaved(
    systems: Sequence[System],
    out: dict[str, dict[str, Any]],
    row: str,
    operation: Callable[[System], Callable[[Sequence[Any]], object]],
    batches: Sequence[Sequence[Any]],
    *,
    tolerate: bool,
) -> None:
    """Time one row: each batch on every system in turn; each system's best µs per item.

    A system that raises NotImplementedError gets no cell; with ``tolerate``, one that
    raises anything else gets a cell saying so (an API still being built), otherwise the
    error stops the run.
    """
    best: dict[str, float | str] = {}
    for index, batch in enumerate(batches):
        for system in _turns(systems, index):
            if isinstance(best.get(system.name), str) or not batch:
                continue
            call = operation(system)
            os.sync()  # untimed: no system pays for the writes another left to the kernel
            try:
                seconds = timed(functools.partial(call, batch), len(batch))
            except NotImplementedError:
                best[system.name] = ""
                continue
            except Exception as error:
                if not tolerate:
                    raise
                best[system.name] = f"failed: {type(error).__name__}"
                print(f"  {system.name}: {row} failed: {error!r}", file=sys.stderr)
                continue
            previous = best.get(system.name)
            best[system.name] = seconds if previous is None else min(float(previous), seconds)
    for name, value in best.items():
        if value != "":
            out[name][row] = value


def _turns(systems: Sequence[System], round_index: int) -> list[System]:
    """The systems in the order they run in a round: each round starts with the next one."""
    shift = round_index % len(systems)
    return [*systems[shift:], *systems[:shift]]


def _deferred(
    systems: Sequence[System], out: dict[str, dict[str, Any]], batches: Sequence[Sequence[Any]]
) -> None:
    """Puts that leave fsync for later, then the sync that forces them to disk, timed apart.

    In the put row no system fsyncs, which is how lsst-daf-butler always puts; the sync
    row shows what making those files durable costs afterwards (it never does).
    """
    puts: dict[str, float] = {}
    syncs: dict[str, float | str] = {}
    for index, batch in enumerate(batches):
        for system in _turns(systems, index):
            os.sync()  # untimed: each sync below forces only this system's own writes
            try:
                seconds = timed(functools.partial(system.put_one_deferred, batch), len(batch))
            except NotImplementedError:  # e.g. Butler on PostgreSQL
                continue
            puts[system.name] = min(puts.get(system.name, seconds), seconds)
            try:
                seconds = timed(system.sync_deferred, len(batch))
            except NotImplementedError:
                syncs[system.name] = NEVER_SYNCS
                continue
            previous = syncs.get(system.name)
            syncs[system.name] = seconds if previous is None else min(float(previous), seconds)
    for name, value in puts.items():
        out[name][DEFERRED] = value
    for name, synced in syncs.items():
        out[name][SYNCED] = synced


def _calibrations(systems: Sequence[System], out: dict[str, dict[str, Any]]) -> None:
    """Certify 100 calibrations on each system, then time single and bulk lookups."""
    ready: list[System] = []
    for system in systems:
        try:
            system.prepare_calibrations()
            out[system.name]["certify (100 calibrations)"] = timed(system.certify, 100)
        except NotImplementedError:
            continue
        except Exception as error:  # an API still being built: say so in the cell
            out[system.name]["certify (100 calibrations)"] = f"failed: {type(error).__name__}"
            print(f"  {system.name}: calibrations failed: {error!r}", file=sys.stderr)
            continue
        ready.append(system)
    obs = observations(0, CALIB_VISITS * DETECTORS)
    for row, operation in (
        ("calibration get, one at a time", lambda s: s.calib_one),
        ("calibration lookup, bulk (per obs)", lambda s: s.calib_bulk),
    ):
        _interleaved(ready, out, row, operation, [obs] * ROUNDS, tolerate=True)


DEFERRED = "put, one at a time, fsync deferred"
SYNCED = "then sync() of those puts (per put)"
NEVER_SYNCS = "never syncs"
TARGETS = {
    "put, one at a time": "<=2x floor",
    DEFERRED: ">=30x peer",
    "get, complete data ID": ">=50x peer, <=2x floor",
    "get, keys from registry": ">=50x peer",
    "query one visit": ">=50x peer",
    "calibration get, one at a time": ">=50x peer",
    "calibration lookup, bulk (per obs)": ">=2x peer",
}
CALIB_ROWS = (
    "certify (100 calibrations)",
    "calibration get, one at a time",
    "calibration lookup, bulk (per obs)",
)


def small_rows(results: dict[str, dict[str, Any]], peer_note: str | None) -> list[Row]:
    names = list(results["Butler"])
    for name in CALIB_ROWS:
        if name not in names:
            names.append(name)
    rows = []
    for name in names:
        row = Row(name, TARGETS.get(name, ""))
        for system, values in results.items():
            row.cells[system] = values.get(name, NOT_YET if name in CALIB_ROWS else "-")
        if peer_note:
            row.cells[_peer.Peer.name] = peer_note
        rows.append(row)
    return rows


# ---- import time ------------------------------------------------------------------------------


_IMPORTS = {
    "Butler runtime + one mapper": (
        "import butler.butler\nfrom butler.loading import load_mapper\nload_mapper({mapper!r})"
    ),
    "Butler runtime + mapper + open a repository": (
        "import butler.butler\nbutler.butler.Butler({root!r}).close()"
    ),
    _peer.Peer.name: "import lsst.daf.butler",
    Floor.name: "import sqlite3, yaml",
}


def import_seconds(code: str, repeat: int = 5) -> float:
    """Best wall-clock time of ``code`` in a fresh interpreter (start-up itself excluded)."""
    script = "import time\nt0 = time.perf_counter()\n" + code + "\nprint(time.perf_counter() - t0)"
    times = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return min(times)


# ---- large payloads -----------------------------------------------------------------------


def large_payload(root: Path, mapper: Path, side: int, repeat: int) -> list[Row]:
    import h5py
    import numpy as np
    from astropy.io import fits
    from butler.butler import Butler

    image = np.random.default_rng(7).random((side, side), dtype=np.float32)
    butler = Butler.create(root, mapper=mapper)
    butler.put(image, "image", visit=1, detector=1)
    butler.put(image, "image5", visit=1, detector=1)
    fits_path = butler.storage.absolute(butler.registry.find("image", {"visit": 1, "detector": 1}))
    h5_path = butler.storage.absolute(butler.registry.find("image5", {"visit": 1, "detector": 1}))
    with h5py.File(h5_path, "r") as f:
        (h5_name,) = list(f)

    def astropy_alone() -> object:
        return fits.getdata(fits_path, memmap=False)

    def astropy_native() -> object:
        data = fits.getdata(fits_path, memmap=False)
        return data.astype(data.dtype.newbyteorder("="))

    def h5py_alone() -> object:
        with h5py.File(h5_path, "r") as f:
            return f[h5_name][()]

    contenders: dict[str, Callable[[], object]] = {
        "fits: Butler.get": lambda: butler.get("image", visit=1, detector=1),
        "fits: astropy getdata(memmap=False)": astropy_alone,
        "fits: astropy + to native byte order": astropy_native,
        "hdf5: Butler.get": lambda: butler.get("image5", visit=1, detector=1),
        "hdf5: h5py dataset[()]": h5py_alone,
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    order = list(contenders.items())
    for run in range(repeat):  # interleaved, so the page cache and the clock treat all alike,
        shift = run % len(order)  # and each run starts with the next one: no fixed neighbour
        for label, call in order[shift:] + order[:shift]:
            start = time.perf_counter()
            call()
            times[label].append((time.perf_counter() - start) * 1e6)
    butler.close()
    best = {k: min(v) for k, v in times.items()}
    rows = []
    for label in contenders:
        base = (
            "fits: astropy getdata(memmap=False)"
            if label.startswith("fits")
            else "hdf5: h5py dataset[()]"
        )
        row = Row(label)
        row.cells = {
            "Butler": best[label],
            "median": statistics.median(times[label]),
            # each run's pair ran back to back: their ratio cancels the machine's slow spells
            "ratio": statistics.median(
                mine / theirs for mine, theirs in zip(times[label], times[base], strict=True)
            ),
        }
        rows.append(row)
    return rows


def print_large(rows: Sequence[Row], side: int) -> None:
    print(f"\n## Large payload: get of a {side} x {side} float32 image (ms)\n")
    print("| read | ms (best) | ms (median) | vs library alone (median of runs) | target |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        ms = row.cells["Butler"] / 1000  # type: ignore[operator]
        ratio = row.cells["ratio"]
        target = "<=1.05x" if "Butler" in row.operation else ""
        med = row.cells["median"] / 1000  # type: ignore[operator]
        print(f"| {row.operation} | {ms:.1f} | {med:.1f} | {ratio:.2f}x | {target} |")


# ---- scale -----------------------------------------------------------------------------------


@contextmanager
def postgres_schema(url: str) -> Iterator[str | None]:
    """A URL on a fresh schema of ``url`` (dropped afterwards), or None if unreachable."""
    try:
        import psycopg
        import sqlalchemy as sa
    except ImportError:
        yield None
        return
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        print(f"  PostgreSQL at {url} is not reachable: {error}", file=sys.stderr)
        yield None
        return
    schema = f"butler_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (
            sa.make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


SCALE_OPS = (
    "get, complete data ID",
    "get, keys from registry",
    "exists",
    "query one visit",
    "count one visit",
)


def _measure_reads(system: Ours, obs: Sequence[Any], visits: Sequence[int]) -> dict[str, float]:
    return {
        "get, complete data ID": best_of(system.get, obs, split=False),
        "get, keys from registry": best_of(system.get_completed, obs, split=False),
        "exists": best_of(system.exists, obs, split=False),
        "query one visit": best_of(system.query, visits, split=False),
        "count one visit": best_of(system.count, visits, split=False),
    }


def run_scale(
    root: Path, mapper: Path, registry: str | None, small: int, total: int, reads: int
) -> tuple[dict[str, float], dict[str, float], float]:
    """Reads on ``small`` stored datasets, then again after registering up to ``total`` in bulk."""
    system = Ours(mapper, registry)
    system.create(str(root))
    try:
        stored = observations(0, small)
        system.put_bulk(stored)
        obs = sample(stored, reads)
        visits = sample(sorted({o.visit for o in stored}), max(reads // 10, 10))
        before = _measure_reads(system, obs, visits)
        first = small // DETECTORS + 1
        extra = observations(first, total - small)
        registry_ = system.butler.registry
        chunk = 100_000
        start = time.perf_counter()
        for i in range(0, len(extra), chunk):
            rows = [
                (
                    {"visit": o.visit, "detector": o.detector, "filter": o.filter},
                    f"metrics/{o.visit:08d}/{o.filter}/metrics-{o.visit:08d}-{o.detector:02d}.yaml",
                )
                for o in extra[i : i + chunk]
            ]
            registry_.insert_many("metrics", rows)
        register_us = (time.perf_counter() - start) / max(len(extra), 1) * 1e6
        after = _measure_reads(system, obs, visits)
    finally:
        system.close()
    return before, after, register_us


def print_scale(
    results: dict[str, tuple[dict[str, float], dict[str, float], float]], small: int, total: int
) -> None:
    title = f"the same reads with {small:,} and with {total:,} registered datasets (µs/op)"
    print(f"\n## Scale: {title}\n")
    backends = list(results)
    header = ["operation"]
    for b in backends:
        header += [f"{b} {small:,}", f"{b} {total:,}", f"{b} ratio"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for op in SCALE_OPS:
        cells = [op]
        for b in backends:
            before, after, _ = results[b]
            cells += [_fmt(before[op]), _fmt(after[op]), f"{after[op] / before[op]:.2f}x"]
        print("| " + " | ".join(cells) + " |")
    cells = ["register in bulk (per dataset)"]
    for b in backends:
        cells += ["", _fmt(results[b][2]), ""]
    print("| " + " | ".join(cells) + " |")


# ---- main ----------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,10000", help="N values, comma-separated")
    parser.add_argument("--reads", type=int, default=1000, help="data IDs sampled per read row")
    parser.add_argument("--no-peer", action="store_true", help="skip lsst-daf-butler")
    parser.add_argument(
        "--scale", type=int, default=100_000, help="registered datasets of the scale run"
    )
    parser.add_argument("--no-scale", action="store_true", help="skip the scale run")
    parser.add_argument("--postgres", default=POSTGRES, help="PostgreSQL URL ('' to skip)")
    parser.add_argument("--image", type=int, default=4096, help="side of the large image (0: skip)")
    parser.add_argument("--repeat", type=int, default=25, help="runs of each large-payload read")
    parser.add_argument(
        "--workdir", default=None, help="where repositories go (default: a temp dir)"
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    peer_version = None if args.no_peer else _peer.available()
    peer_note = None if peer_version else (NOT_INSTALLED if not args.no_peer else "skipped")
    print(f"# Butler vs lsst-daf-butler ({peer_version or peer_note}) vs raw floor")
    print(f"machine: {machine()}")
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    # Nothing under `work` is deleted before the run ends. On ext4 without a journal (this
    # machine's disk) a new inode is searched for past every inode freed in the last minute
    # or more, so deleting one system's 20,000 files made the next system's file creates
    # 5-10x slower (500-700 µs instead of 20-80) and the put rows depended on run order.
    work = Path(args.workdir or tempfile.mkdtemp(prefix="butler-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "argv": sys.argv, "peer": peer_version}
    try:
        mapper = compile_mapper(work)
        for n in (int(s) for s in args.sizes.split(",") if s):
            systems: list[System] = [Ours(mapper), Floor()]
            if peer_version:
                systems.append(_peer.Peer())
            print(f"  N={n:,} ...", file=sys.stderr, flush=True)
            results = run_workload(systems, work, n, args.reads)
            report[f"N={n}"] = results
            print_table(
                f"N = {n:,} small dict datasets (YAML), {DETECTORS} detectors",
                small_rows(results, peer_note),
                _peer.Peer.name,
                Floor.name,
            )

        print("\n## Import time (fresh interpreter, best of 5, ms)\n")
        print("| what | ms | target |")
        print("|---|---:|---|")
        imports = {}
        opened = work / "import-repo"  # made here, outside the timed code
        from butler.butler import Butler

        Butler.create(opened, mapper=mapper).close()
        for name, code in _IMPORTS.items():
            if name == _peer.Peer.name and not peer_version:
                print(f"| {name} | {peer_note} | |")
                continue
            script = code.format(mapper=str(mapper), root=str(opened))
            imports[name] = import_seconds(script) * 1000
            target = "< 300" if name == "Butler runtime + one mapper" else ""
            print(f"| {name} | {imports[name]:.0f} | {target} |")
        report["import_ms"] = imports

        if args.image:
            rows = large_payload(work / "large", mapper, args.image, args.repeat)
            print_large(rows, args.image)
            report["large"] = {r.operation: r.cells for r in rows}

        if not args.no_scale and args.scale:
            small = 2000
            scale: dict[str, tuple[dict[str, float], dict[str, float], float]] = {}
            print(f"  scale: sqlite, {args.scale:,} ...", file=sys.stderr, flush=True)
            scale["sqlite"] = run_scale(
                work / "scale-sqlite", mapper, None, small, args.scale, args.reads
            )
            if args.postgres:
                with postgres_schema(args.postgres) as url:
                    if url is not None:
                        print(
                            f"  scale: postgresql, {args.scale:,} ...", file=sys.stderr, flush=True
                        )
                        scale["postgresql"] = run_scale(
                            work / "scale-pg", mapper, url, small, args.scale, args.reads
                        )
            print_scale(scale, small, args.scale)
            report["scale"] = scale
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
