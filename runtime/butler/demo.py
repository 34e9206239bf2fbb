"""``make demo`` / ``python -m butler.demo``: Butler's main job, start to finish.

Compiles the bundled policies, shows data IDs mapped to paths and back, then
creates a repository in a temporary folder and puts, gets and queries data in
it, printing what happens at each step. Needs nothing but the package.

Every data ID is shown one way, as ``repr(DataId)`` and the ``butler`` command
line show it (:func:`butler.dataid.format_data_id`). Steps that are meant to
fail say so, and the demo exits 1 if one of them does not.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from butler.dataid import format_data_id

__all__ = ["main"]


class Surprise(Exception):
    """Something the demo expected to fail did not, or the other way round."""


def step(title: str, shows: str) -> None:
    """A step's heading and a line saying what it shows."""
    print(f"\n== {title}")
    print(f"   shows: {shows}")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def seconds(elapsed: float) -> str:
    return f"{elapsed * 1000:.0f} ms" if elapsed < 1 else f"{elapsed:.1f} s"


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (``policies/hsc.butler``)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def compile_bundled(outdir: Path) -> list[str]:
    """Compile every bundled policy, one line per policy; the generated module names."""
    from butlerc import compile_policy

    step(
        "compile the bundled policies",
        "one line per policy file and the mapper module of each instrument it defines",
    )
    policies = resources.files("butlerc.policies")
    names: list[str] = []
    for entry in sorted(policies.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".butler"):
            continue
        with resources.as_file(entry) as path:
            started = time.perf_counter()
            result = compile_policy(path)
            elapsed = seconds(time.perf_counter() - started)
            where = shown_path(path)
        head = f"  {entry.name:<16} {elapsed:>7}  "
        if not result.ok:
            print(f"{head}{plural(len(result.errors), 'error')}; first: {result.errors[0].message}")
            print(f"{'':<{len(head)}}to see them all: butlerc check {where}")
            continue
        print(head + made(result.irs))
        if result.warnings:
            print(
                f"{'':<{len(head)}}{plural(len(result.warnings), 'warning')}; "
                f"to see them: butlerc check {where}"
            )
        for name, source in result.modules.items():
            (outdir / f"{name}.py").write_text(source, encoding="utf-8")
            names.append(name)
    return names


def made(irs: Mapping[str, Mapping[str, Any]]) -> str:
    """``lsstcam.py, imsim.py: 287 dataset types`` for the modules of one policy file."""
    sizes = {name: plural(len(ir["dataset_types"]), "dataset type") for name, ir in irs.items()}
    if not sizes:
        return "shared definitions, no instrument of its own"
    if len(set(sizes.values())) == 1:
        return f"{', '.join(f'{name}.py' for name in sizes)}: {next(iter(sizes.values()))}"
    return ", ".join(f"{name}.py: {size}" for name, size in sizes.items())


EXAMPLES: dict[str, list[tuple[str, dict[str, object]]]] = {
    "toycam": [
        ("raw", {"visit": 42, "detector": 5, "filter": "r", "obsTime": "2026-03-01T04:05:06"}),
        ("calexp", {"visit": 42, "ccd": 5, "filter": "TC-R"}),
        ("bias", {"calibDate": "2026-02-27", "detector": 5}),
    ],
    "hsc": [
        (
            "raw",
            {
                "field": "STRIPE82L",
                "dateObs": "2013-11-02",
                "pointing": 671,
                "filter": "r",
                "visit": 903334,
                "ccd": 16,
            },
        ),
        ("calexp", {"visit": 903334, "ccdnum": 16, "pointing": 671, "filter": "HSC-R"}),
        ("deepCoadd", {"filter": "HSC-I", "tract": 9813, "patch": "3,4"}),
    ],
}


def show_paths(outdir: Path, names: list[str]) -> None:
    from butler import load_mapper

    step(
        "map data IDs to paths and back, with no repository",
        "data IDs as given and as normalized (aliases, value maps, derived keys), "
        "their paths, and what parsing a path gives back (the keys it holds)",
    )
    for name in names:
        if name not in EXAMPLES:
            continue
        mapper = load_mapper(outdir / f"{name}.py")
        for dataset_type, data_id in EXAMPLES[name]:
            normalized = mapper.normalize(data_id)
            path = mapper.path(dataset_type, normalized)
            back = mapper.parse(dataset_type, path)
            same = all(normalized[k] == v for k, v in back.items())
            print(f"  {mapper.name} {dataset_type}")
            print(f"      given       {format_data_id(data_id)}")
            print(f"      normalized  {format_data_id(normalized)}")
            print(f"      path        {path}")
            print(f"      parsed back {format_data_id(back)}")
            if not same:
                raise Surprise(f"{mapper.name} {dataset_type}: {path} parsed back differently")


def header_text(header: Mapping[str, object]) -> str:
    return ", ".join(f"{key} = {value!r}" for key, value in header.items())


def use_repository(root: Path) -> None:
    from astropy.table import Table

    from butler import Butler
    from butler.errors import DatasetNotFoundError
    from butler.formatters import BBox, Image

    step(
        f"create a repository at {root}",
        "a folder and its registry, an SQLite file, for instrument ToyCam",
    )
    butler = Butler.create(root, mapper="toycam")
    print(f"  {butler!r}: instrument {butler.mapper.name}, registry {butler.registry.url}")

    step(
        "put a raw exposure (FITS) for two visits",
        "the data ID each put stored, normalized and completed; in real use raws are ingested",
    )
    raws = []
    for visit in (42, 43):
        pixels = np.random.default_rng(visit).normal(1000, 5, (64, 64)).astype(np.float32)
        data_id = butler.put(
            Image(pixels, {"EXPTIME": 30.0}),
            "raw",
            visit=visit,
            detector=1,
            filter="r",
            obsTime=datetime.datetime(2026, 3, 1, 4, visit - 40, 0),
        ).data_id
        print(f"  raw {format_data_id(data_id)}\n      -> {butler.uri('raw', data_id)}")
        raws.append(data_id)

    step(
        "put calibrated exposures (FITS), naming only visit and ccd",
        "the keys left out (filter, band) are completed from the raw record of the same visit",
    )
    calexps = []
    for visit in (42, 43):
        pixels = np.random.default_rng(visit + 100).normal(0, 5, (64, 64)).astype(np.float32)
        data_id = butler.put(
            Image(pixels, {"CALIBRATED": True}), "calexp", visit=visit, ccd=1
        ).data_id
        print(f"  calexp {format_data_id(data_id)}")
        calexps.append(data_id)

    step("put a source table (HDF5)", "a second format behind the same put")
    table = Table({"id": np.arange(5), "flux": np.linspace(10.0, 50.0, 5)})
    data_id = butler.put(table, "src", visit=42, detector=1).data_id
    print(f"  src {format_data_id(data_id)}\n      -> {butler.uri('src', data_id)}")

    step("get them back", "whole datasets, a section of an image, and metadata without pixels")
    image = butler.get("calexp", calexps[0])
    print(
        f"  calexp {format_data_id(calexps[0])}: {image.array.shape} pixels, "
        f"std {image.array.std():.2f}, header {header_text(image.metadata)}"
    )
    section = butler.get_section("calexp", BBox(0, 0, 8, 8), calexps[0])
    print(f"  an 8x8 section of it, read alone: shape {section.shape}")
    print(f"  the raw's header alone: {header_text(butler.get_metadata('raw', raws[0]))}")
    rows = butler.get("src", data_id)
    info = butler.get_table_info("src", data_id)
    columns = ", ".join(f"{name} ({kind})" for name, kind in info.columns.items())
    print(f"  src: {len(rows)} rows; without reading them: {info.length} rows of {columns}")

    step("query with a partial data ID", "every stored calexp whose filter is r")
    for found in butler.query("calexp", filter="r"):
        print(f"  calexp {format_data_id(found)}")
    print(
        f"  count: {butler.count('calexp')}; "
        f"the visits: {', '.join(str(v) for v in butler.query_values('calexp', 'visit'))}"
    )

    step(
        "ask for a calexp that is not there (expected to fail)",
        "what a failed get says: the data ID as normalized, what was searched",
    )
    try:
        butler.get("calexp", visit=99, detector=1)
    except DatasetNotFoundError as error:
        print(f"  failed as expected: DatasetNotFoundError: {error}")
    else:
        raise Surprise("a get of visit 99 found something")

    step("verify the repository", "every record has its file, and each file reads")
    print("  " + str(butler.verify(read=True)).replace("\n", "\n  "))
    butler.close()


def ingest_real_headers(folder: Path) -> None:
    """Real HSC headers (astro_metadata_translator test data) as raw files, ingested and used."""
    from butler import Butler
    from butler.image import Image
    from butler.ingest import read_header_file, write_header_only_fits

    headers = resources.files("butler") / "data" / "headers"
    incoming = folder / "in"
    incoming.mkdir()
    files = []
    for entry in sorted(headers.iterdir(), key=lambda e: e.name):
        with resources.as_file(entry) as path:
            if path.suffix in (".yaml", ".json"):
                header = read_header_file(path)
                files.append(write_header_only_fits(header, incoming / f"{path.stem}.fits"))
            elif path.suffix == ".fits":
                files.append(Path(shutil.copy(path, incoming / path.name)))
    hsc = [f for f in files if "hsc" in f.name]
    step(
        f"ingest {len(files)} files with real headers into a fresh HSC repository",
        f"data IDs read from FITS headers; {len(files) - len(hsc)} files are expected to fail: "
        "a DECam header and a FITS file with no instrument",
    )
    with Butler.create(folder / "hsc-repo", mapper="hsc") as butler:
        report = butler.ingest(files, show_progress=False)
        print("  " + str(report).replace("\n", "\n  "))
        if {Path(source).name for source, _ in report.failed} != {
            f.name for f in files if f not in hsc
        }:
            raise Surprise("ingest did not fail exactly for the files that are not HSC raws")
        for found in butler.query("raw"):
            print(f"  raw {format_data_id(found)}\n      -> {butler.uri('raw', found)}")
        again = butler.ingest(hsc, show_progress=False)
        print(f"  ingesting the HSC files again skips them: {len(again.skipped)} skipped")

        step(
            "look up the bias valid for one ingested exposure",
            "a bias certified for a date range, found from the exposure's taiObs",
        )
        bias = Image(np.zeros((4, 4), np.float32), {"OBSTYPE": "BIAS"})
        butler.put(bias, "bias", calibDate="2013-10-31", ccd=50)
        butler.certify("bias", {"calibDate": "2013-10-31", "ccd": 50}, "2013-10-01", "2013-12-01")
        valid = butler.find_calibration("bias", visit=904024, ccd=50)
        print(f"  bias for {format_data_id({'visit': 904024, 'ccd': 50})}: {valid}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="butler-demo-") as folder:
        outdir = Path(folder) / "mappers"
        outdir.mkdir()
        try:
            names = compile_bundled(outdir)
            show_paths(outdir, names)
            use_repository(Path(folder) / "repo")
            ingest_real_headers(Path(folder))
        except Surprise as surprise:
            print(f"\ndemo: unexpected: {surprise}", file=sys.stderr)
            return 1
    print("\ndone.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `make demo | head`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
