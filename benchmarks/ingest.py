"""Raw ingest speed: Butler's ``ingest`` against the floor of opening, reading and copying.

    .venv/bin/python benchmarks/ingest.py                 # 500 HSC raws, one core
    .venv/bin/python benchmarks/ingest.py --files 2000 --jobs 2

The raws are header-only FITS files made from the real HSC header in
``runtime/butler/data/headers`` with EXP-ID and DET-ID varied, so each file is
one data ID. The floor does, per file, what no ingest can skip: open it with
astropy, read its primary header, copy it into a folder. Ours is
``Butler.ingest`` on a fresh SQLite repository (translation, rules, normalization,
path, copy, registry). A third line adds the fsync of each copy that ingest does so
that nothing it reports as stored can be lost. All print files per second; no timing is
asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from astropy.io import fits
from butler import Butler
from butler.ingest import read_header_file, write_header_only_fits

HEADER = Path(__file__).resolve().parent.parent / "runtime/butler/data/headers/fitsheader-hsc.yaml"


def make_raws(folder: Path, count: int) -> list[Path]:
    """``count`` HSC raws: 104 CCDs per exposure, exposures numbered from 904024."""
    header = read_header_file(HEADER)
    files = []
    for i in range(count):
        visit, ccd = 904024 + 2 * (i // 104), i % 104
        header["EXP-ID"] = f"HSCE{visit:08d}"
        header["FRAMEID"] = f"HSCA{visit * 100 + ccd:08d}"
        header["DET-ID"] = ccd
        header["T_CCDID"] = ccd
        files.append(write_header_only_fits(header, folder / f"HSCA{visit:06d}{ccd:03d}.fits"))
    return files


def floor(files: list[Path], target: Path, *, durable: bool = False) -> float:
    """Open, read the header, copy; with ``durable``, fsync each copy (as ingest does)."""
    target.mkdir()
    start = time.perf_counter()
    for file in files:
        with fits.open(file, memmap=False) as hdus:
            hdus[0].header.get("EXP-ID")
        shutil.copyfile(file, target / file.name)
        if durable:
            descriptor = os.open(target / file.name, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
    return time.perf_counter() - start


def ours(files: list[Path], root: Path, jobs: int = 1) -> float:
    with Butler.create(root, mapper="hsc") as butler:
        start = time.perf_counter()
        report = butler.ingest(files, show_progress=False, jobs=jobs)
        elapsed = time.perf_counter() - start
    assert report.ok and len(report.ingested) == len(files), str(report)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=1, help="also time ingest --jobs N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        files = make_raws(work / "incoming", args.files)
        floor_s = floor(files, work / "floor")
        durable_s = floor(files, work / "durable", durable=True)
        ours_s = ours(files, work / "repo")
        jobs_s = ours(files, work / "repo-jobs", args.jobs) if args.jobs > 1 else None
    n = len(files)
    print(f"{n} HSC raws, one process")
    print(f"  floor (open + read header + copy): {n / floor_s:8.0f} files/s")
    print(f"  floor + fsync of each copy:        {n / durable_s:8.0f} files/s")
    print(f"  butler ingest:                     {n / ours_s:8.0f} files/s")
    if jobs_s is not None:
        print(f"  butler ingest --jobs {args.jobs}:            {n / jobs_s:8.0f} files/s")
    print(
        f"  ratio: {ours_s / floor_s:.2f}x the floor's time, {ours_s / durable_s:.2f}x with fsync"
    )


if __name__ == "__main__":
    main()
