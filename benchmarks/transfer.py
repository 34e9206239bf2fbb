"""Transfer and export speed against the floor of copying the files and inserting the rows.

    .venv/bin/python benchmarks/transfer.py                    # 100,000 small datasets
    .venv/bin/python benchmarks/transfer.py --datasets 5000 --repeat 3

The source is a fresh SQLite repository of ``focusSweep`` datasets (small YAML files).

- transfer, ours: ``butler.transfer.transfer`` into a fresh repository (copy mode):
  each record selected, looked up in the destination, the file copied and hashed into a
  temporary, verified against its recorded checksum, fsynced per batch of 256, rows
  inserted with their ids and runs and the files published in one transaction per batch.
- transfer, floor: what no transfer can skip, by hand: ``shutil.copyfile`` of each file
  to the same relative path, one ``LocalStorage.sync`` per 256 copies (as ours), and
  the same rows inserted with ``sqlite3`` ``executemany``, one transaction per 256.
- export, ours: ``butler.bundle.export_datasets`` to a folder (files, hashed as copied,
  and a JSON manifest); export, floor: ``shutil.copyfile`` of each file and
  ``json.dumps`` of the same rows.
- resume: a transfer of the first half, then the whole run again with
  ``skip_existing=True``; printed beside a fresh transfer of only the second half
  (the work that was left).

Lines are measured in paired, interleaved runs in one process (floor, ours, floor, ...)
and the medians printed; the machine is shared, so single numbers are noisy: read the
ratios. Before each timed line the file system is flushed (``os.sync()``, untimed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from butler import Butler
from butler.bundle import export_datasets
from butler.moving import BATCH_SIZE
from butler.registry import DatasetRecord
from butler.storage import LocalStorage
from butler.transfer import transfer

FOCUS = (-1.0, 0.5)


def make_source(root: Path, count: int) -> Butler:
    butler = Butler.create(root, mapper="toycam", durability="close")
    items = []
    for i in range(count):
        visit, focus = 1 + i // 2, FOCUS[i % 2]
        items.append(({"visit": visit, "focus": focus, "i": i}, {"visit": visit, "focus": focus}))
    for start in range(0, count, 5000):
        butler.put_many("focusSweep", items[start : start + 5000], run="bench")
    butler.sync()
    return butler


def records(source: Butler) -> list[DatasetRecord]:
    return list(source.registry.select_records("focusSweep"))


def floor_transfer(source: Butler, rows: list[DatasetRecord], target: Path) -> float:
    """Copy each file, sync per batch, insert the same rows with sqlite3 per batch."""
    target.mkdir()
    conn = sqlite3.connect(target / "registry.sqlite3")
    conn.execute(
        "CREATE TABLE focus (id INTEGER PRIMARY KEY, visit INTEGER NOT NULL, focus REAL NOT "
        "NULL, path TEXT NOT NULL, run TEXT, created TEXT NOT NULL, dataset_id TEXT, "
        "file_size INTEGER, file_checksum TEXT, UNIQUE (visit, focus))"
    )
    conn.execute("CREATE UNIQUE INDEX focus_id ON focus (dataset_id)")
    conn.commit()
    os.sync()
    start = time.perf_counter()
    made: set[Path] = set()
    for first in range(0, len(rows), BATCH_SIZE):
        batch = rows[first : first + BATCH_SIZE]
        copies = []
        for row in batch:
            copy = target / row.path
            if copy.parent not in made:
                copy.parent.mkdir(parents=True, exist_ok=True)
                made.add(copy.parent)
            shutil.copyfile(source.root / row.path, copy)
            copies.append(copy)
        LocalStorage.sync(copies)
        with conn:
            conn.executemany(
                "INSERT INTO focus (visit, focus, path, run, created, dataset_id, file_size, "
                "file_checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.data_id["visit"],
                        r.data_id["focus"],
                        r.path,
                        r.run,
                        str(r.created),
                        r.dataset_id,
                        r.size,
                        r.checksum,
                    )
                    for r in batch
                ],
            )
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def ours_transfer(source: Butler, target: Path, where: str | None = None) -> float:
    with Butler.create(target, mapper="toycam") as destination:
        os.sync()
        start = time.perf_counter()
        report = transfer(source, destination, "focusSweep", where=where)
        elapsed = time.perf_counter() - start
    assert report.ok, report
    return elapsed


def resumed_transfer(source: Butler, target: Path, half: int) -> float:
    """Transfer the first half (untimed), then time the rerun of the whole with skip_existing."""
    with Butler.create(target, mapper="toycam") as destination:
        transfer(source, destination, "focusSweep", where=f"visit <= {half}")
        os.sync()
        start = time.perf_counter()
        report = transfer(source, destination, "focusSweep", skip_existing=True)
        elapsed = time.perf_counter() - start
    assert report.ok and report.skipped > 0, report
    return elapsed


def floor_export(source: Butler, rows: list[DatasetRecord], target: Path) -> float:
    target.mkdir()
    os.sync()
    start = time.perf_counter()
    made: set[Path] = set()
    entries = []
    for row in rows:
        copy = target / "files" / row.path
        if copy.parent not in made:
            copy.parent.mkdir(parents=True, exist_ok=True)
            made.add(copy.parent)
        shutil.copyfile(source.root / row.path, copy)
        entries.append(
            {
                "data_id": row.data_id,
                "dataset_id": row.dataset_id,
                "run": row.run,
                "created": str(row.created),
                "file": row.path,
                "size": row.size,
                "checksum": row.checksum,
            }
        )
    (target / "manifest.json").write_text(json.dumps({"datasets": entries}))
    return time.perf_counter() - start


def ours_export(source: Butler, target: Path) -> float:
    os.sync()
    start = time.perf_counter()
    report = export_datasets(source, target, "focusSweep")
    elapsed = time.perf_counter() - start
    assert report.ok, report
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=int, default=100_000, help="datasets to move")
    parser.add_argument("--repeat", type=int, default=3, help="paired runs of each line")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="butler-transfer-bench-"))
    try:
        print(f"making {args.datasets} focusSweep datasets in {work} ...", flush=True)
        source = make_source(work / "source", args.datasets)
        rows = records(source)
        half = rows[len(rows) // 2].data_id["visit"]
        lines: dict[str, list[float]] = {}
        runs: list[tuple[str, Callable[[Path], float]]] = [
            (
                "transfer floor (copy + sync + sqlite3 executemany)",
                lambda t: floor_transfer(source, rows, t),
            ),
            ("transfer ours (butler transfer, copy)", lambda t: ours_transfer(source, t)),
            ("export floor (copy + json.dumps)", lambda t: floor_export(source, rows, t)),
            ("export ours (butler export, folder)", lambda t: ours_export(source, t)),
            (
                "resume: transfer of the part left, fresh",
                lambda t: ours_transfer(source, t, f"visit > {half}"),
            ),
            (
                "resume: rerun with --skip-existing after half",
                lambda t: resumed_transfer(source, t, half),
            ),
        ]
        for round_ in range(args.repeat):
            for name, run in runs:
                target = work / f"t-{uuid.uuid4().hex[:8]}"
                lines.setdefault(name, []).append(run(target))
                shutil.rmtree(target)
            print(f"round {round_ + 1}/{args.repeat} done", flush=True)
        source.close()
        print(
            f"\n{args.datasets} datasets, median of {args.repeat} paired runs "
            "(shared machine: noisy, read the ratios)"
        )
        medians = {name: statistics.median(times) for name, times in lines.items()}
        for name, seconds in medians.items():
            print(f"  {name:<52} {seconds:8.2f} s  {args.datasets / seconds:9.0f} datasets/s")
        names = list(medians)
        print(f"  transfer: ours / floor = {medians[names[1]] / medians[names[0]]:.2f}x")
        print(f"  export:   ours / floor = {medians[names[3]] / medians[names[2]]:.2f}x")
        print(f"  resume:   rerun / part left = {medians[names[5]] / medians[names[4]]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
