"""Ingest in worker processes (``--jobs N``), and a real ingest killed mid-way, then rerun.

The raws are header-only FITS files made from the real HSC header (EXP-ID and DET-ID
varied), as ``benchmarks/ingest.py`` makes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from butler import Butler
from butler.ingest import BATCH_FILES, read_header_file, write_header_only_fits
from butler.process_pool import ordered_map

HEADER = Path(__file__).resolve().parent.parent / "runtime/butler/data/headers/fitsheader-hsc.yaml"


def hsc_raws(folder: Path, count: int) -> list[Path]:
    header = read_header_file(HEADER)
    files = []
    for i in range(count):
        visit, ccd = 904024 + 2 * (i // 104), i % 104
        header["EXP-ID"] = f"HSCE{visit:08d}"
        header["FRAMEID"] = f"HSCA{visit * 100 + ccd:08d}"
        header["DET-ID"] = ccd
        files.append(write_header_only_fits(header, folder / f"HSCA{visit:06d}{ccd:03d}.fits"))
    return files


def _whole(butler: Butler, *, repair: bool = False) -> bool:
    """Every record has its file, of the recorded size and checksum, and no file is extra
    (header-only raws are "unreadable" as images: that is not checked here)."""
    report = butler.verify(read=True, repair=repair)
    return report.missing == report.corrupt == report.untracked == report.temporaries == ()


def _square_start(offset: int):  # type: ignore[no-untyped-def]
    return lambda item: (os.getpid(), item * item + offset)


def test_ordered_map_keeps_the_order_and_uses_other_processes() -> None:
    results = list(ordered_map(_square_start, 1, range(50), jobs=2, chunk=3))
    assert [value for _, value in results] == [i * i + 1 for i in range(50)]
    assert os.getpid() not in {pid for pid, _ in results}


def test_jobs_ingest_equals_one_process_ingest(tmp_path: Path) -> None:
    files = hsc_raws(tmp_path / "in", 40)
    files.append(files[3])  # the same file twice: skipped the second time
    reports = {}
    for jobs in (1, 3):
        with Butler.create(tmp_path / f"repo{jobs}", mapper="hsc") as butler:
            reports[jobs] = butler.ingest(files, jobs=jobs, show_progress=False)
            rows = sorted((r["visit"], r["ccd"]) for r in butler.query("raw"))
            assert _whole(butler)
        assert len(rows) == 40 == len(set(rows))
    one, many = reports[1], reports[3]
    assert [f.path for f in one.ingested] == [f.path for f in many.ingested]
    assert [s for s, _ in one.skipped] == [s for s, _ in many.skipped] == [str(files[3])]
    assert not list((tmp_path / "repo3").rglob("*.butler-tmp"))  # no copy left behind


def test_ingest_killed_midway_then_rerun_has_every_file_once(tmp_path: Path) -> None:
    files = hsc_raws(tmp_path / "in", 1200)
    root = tmp_path / "repo"
    Butler.create(root, mapper="hsc").close()
    command = [sys.executable, "-m", "butler.cli", "ingest", str(root), "--jobs", "2"]
    process = subprocess.Popen(
        [*command, *map(str, files)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # until a batch is in
        # the first batch published (temporaries end in .butler-tmp): it is being committed,
        # and 3 more batches are to come, so the kill lands mid-way
        if len(list(root.rglob("*.fits"))) >= BATCH_FILES:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with Butler(root) as butler:  # whatever is recorded is whole
        before = len(list(butler.query("raw")))
        assert butler.verify(read=True).missing == ()
    assert before < len(files)  # killed mid-way (maybe before the first commit: also fine)
    rerun = subprocess.run([*command, *map(str, files)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    with Butler(root) as butler:
        rows = [(r["visit"], r["ccd"]) for r in butler.query("raw")]
        assert len(rows) == len(set(rows)) == len(files)
        assert _whole(butler, repair=True)
