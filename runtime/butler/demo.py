"""``make demo`` / ``python -m butler.demo``: Butler's main job, start to finish.

Compiles the bundled policies, shows data IDs mapped to paths and back, then
creates a repository in a temporary folder and puts, gets and queries data in
it, printing what happens at each step. Needs nothing but the package.
"""

from __future__ import annotations

import datetime
import shutil
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["main"]


def step(title: str) -> None:
    print(f"\n== {title}")


def compile_bundled(outdir: Path) -> list[str]:
    """Compile every bundled policy that defines an instrument; the module names."""
    from butlerc import compile_policy

    policies = resources.files("butlerc.policies")
    names = []
    for entry in sorted(policies.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".butler"):
            continue
        with resources.as_file(entry) as path:
            started = time.perf_counter()
            result = compile_policy(path)
            elapsed = time.perf_counter() - started
        if not result.ok:
            print(
                f"  {entry.name}: {len(result.errors)} error(s); first: {result.errors[0].message}"
            )
            continue
        if not result.modules:
            print(f"  {entry.name}: shared definitions only ({len(result.warnings)} warnings)")
            continue
        for name, source in result.modules.items():
            (outdir / f"{name}.py").write_text(source, encoding="utf-8")
            dataset_types = len(result.irs[name]["dataset_types"])
            print(
                f"  {entry.name} -> {name}.py: {dataset_types} dataset types, "
                f"{len(result.warnings)} warning(s), {elapsed * 1000:.0f} ms"
            )
            names.append(name)
    return names


def show_paths(outdir: Path, names: list[str]) -> None:
    from butler import load_mapper

    examples = {
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
    for name in names:
        mapper = load_mapper(outdir / f"{name}.py")
        for dataset_type, data_id in examples.get(name, []):
            if dataset_type not in mapper.dataset_types:
                continue
            normalized = mapper.normalize(data_id)
            path = mapper.path(dataset_type, normalized)
            back = mapper.parse(dataset_type, path)
            print(f"  {mapper.name} {dataset_type}: {data_id}")
            print(f"      normalized -> {dict(normalized)}")
            print(f"      path       -> {path}")
            print(
                "      parsed back == normalized:",
                all(normalized[k] == v for k, v in back.items()),
            )


def use_repository(root: Path) -> None:
    from astropy.table import Table

    from butler import Butler
    from butler.errors import DatasetNotFoundError
    from butler.formatters import Image

    step(f"create a repository at {root}")
    butler = Butler.create(root, mapper="toycam")
    print(f"  {butler!r}: instrument {butler.mapper.name}, registry {butler.registry.url}")

    step("put a raw exposure (FITS) for two visits; in real use raws are ingested")
    for visit in (42, 43):
        pixels = np.random.default_rng(visit).normal(1000, 5, (64, 64)).astype(np.float32)
        data_id = butler.put(
            Image(pixels, {"EXPTIME": 30.0}),
            "raw",
            visit=visit,
            detector=1,
            filter="r",
            obsTime=datetime.datetime(2026, 3, 1, 4, visit - 40, 0),
        )
        print(f"  raw {data_id} -> {butler.uri('raw', data_id)}")

    step("put calibrated exposures (FITS), naming only visit and detector")
    for visit in (42, 43):
        pixels = np.random.default_rng(visit + 100).normal(0, 5, (64, 64)).astype(np.float32)
        data_id = butler.put(Image(pixels, {"CALIBRATED": True}), "calexp", visit=visit, ccd=1)
        print(f"  calexp completed from the raw record: {data_id}")

    step("put a source table (HDF5)")
    table = Table({"id": np.arange(5), "flux": np.linspace(10.0, 50.0, 5)})
    butler.put(table, "src", visit=42, detector=1)
    print(f"  src visit=42 detector=1 -> {butler.uri('src', visit=42, detector=1)}")

    step("get them back")
    image = butler.get("calexp", visit=42, detector=1)
    print(
        f"  calexp visit=42 detector=1: {image.array.shape} pixels, "
        f"std {image.array.std():.2f}, header {image.metadata}"
    )
    section = butler.get_section("calexp", BBox_of(8, 8), visit=42, detector=1)
    print(f"  an 8x8 section, read alone: shape {section.shape}")
    print(f"  the header alone: {butler.get_metadata('raw', visit=42, detector=1)}")
    rows = butler.get("src", visit=42, detector=1)
    print(
        f"  src: {len(rows)} rows; without reading them: "
        f"{butler.get_table_info('src', visit=42, detector=1)}"
    )

    step("query a partial data ID")
    for found in butler.query("calexp", filter="r"):
        print(f"  calexp with filter r: visit={found['visit']} detector={found['detector']}")
    print(
        f"  count(calexp) = {butler.count('calexp')}; "
        f"visits = {butler.query_values('calexp', 'visit')}"
    )

    step("ask for something that is not there")
    try:
        butler.get("calexp", visit=99, detector=1)
    except DatasetNotFoundError as error:
        print(f"  DatasetNotFoundError: {error}")

    step("verify the repository")
    print("  " + str(butler.verify(read=True)).replace("\n", "\n  "))
    butler.close()


def ingest_real_headers(folder: Path) -> None:
    """Real HSC headers (astro_metadata_translator test data) as raw files, ingested and used."""
    from butler import Butler
    from butler.image import Image
    from butler.ingest import read_header_file, write_header_only_fits

    step("ingest real headers as raw files (header-only FITS) into a fresh HSC repository")
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
    with Butler.create(folder / "hsc-repo", mapper="hsc") as butler:
        report = butler.ingest(files)
        print("  " + str(report).replace("\n", "\n  "))
        for found in butler.query("raw"):
            print(f"  raw {dict(found)}\n      -> {butler.uri('raw', found)}")
        print(f"  a re-run skips what is there: {len(butler.ingest(files).skipped)} skipped")
        step("look up the bias valid for one ingested exposure (by its taiObs)")
        bias = Image(np.zeros((4, 4), np.float32), {"OBSTYPE": "BIAS"})
        butler.put(bias, "bias", calibDate="2013-10-31", ccd=50)
        butler.certify("bias", {"calibDate": "2013-10-31", "ccd": 50}, "2013-10-01", "2013-12-01")
        valid = butler.find_calibration("bias", visit=904024, ccd=50)
        print(f"  bias for visit 904024 ccd 50: {valid}")


def BBox_of(width: int, height: int):  # type: ignore[no-untyped-def]
    from butler.formatters import BBox

    return BBox(0, 0, width, height)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="butler-demo-") as folder:
        outdir = Path(folder) / "mappers"
        outdir.mkdir()
        step("compile the bundled policies")
        names = compile_bundled(outdir)
        step("map data IDs to paths and back")
        show_paths(outdir, names)
        use_repository(Path(folder) / "repo")
        ingest_real_headers(Path(folder))
    print("\ndone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
