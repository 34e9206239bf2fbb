"""Sky regions (issue 17): regions from real headers, recorded on put and ingest, and the
spatial queries, whose answers equal a brute-force exact test, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lsst.sphgeom as sg
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from butler import Circle, Polygon
from butler.butler import Butler
from butler.cli import main
from butler.errors import InvalidQueryError
from butler.image import Image
from butler.ingest import read_header_file, write_header_only_fits
from butler.regions import (
    INSTRUMENTS,
    file_region,
    header_region,
    indexed,
    pixel_ranges,
    pointing_region,
)
from butler.registry import Registry, new_dataset_id
from butler.skymap import InvalidRegionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADERS = Path(__file__).parent / "data" / "headers"
#: Real headers with a WCS -> the instrument whose detector they describe.
WITH_WCS = {
    "fitsheader-hsc.yaml": "HSC",
    "fitsheader-hsc-HSCA04090107.yaml": "HSC",
    "fitsheader-decam.yaml": "DECam",
    "fitsheader-decam-raw_dec050441_25.yaml": "DECam",
    "fitsheader-megaprime.yaml": "MegaPrime",
    "fitsheader-suprimecam-CORR40535770.yaml": "SuprimeCam",
}


def _vector(ra: float, dec: float) -> sg.UnitVector3d:
    return sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec))


def _degrees(a: sg.UnitVector3d, b: sg.UnitVector3d) -> float:
    return math.degrees(math.atan2(a.cross(b).getNorm(), a.dot(b)))


def _pointing(header: dict[str, Any]) -> sg.UnitVector3d:
    """The telescope pointing written in the header's RA/DEC cards (sexagesimal)."""
    coord = SkyCoord(str(header["RA"]), str(header["DEC"]), unit=("hourangle", "deg"))
    return _vector(float(coord.ra.degree), float(coord.dec.degree))


# ---- regions from real headers ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WITH_WCS))
def test_a_real_header_gives_its_detector_on_the_sky(name: str) -> None:
    header = read_header_file(HEADERS / name)
    region = header_region(header)
    assert region is not None
    corners = region.getVertices()
    assert len(corners) == 4
    # the sides are the detector's pixels times the WCS's pixel scale
    scale = math.sqrt(abs(header["CD1_1"] * header["CD2_2"] - header["CD1_2"] * header["CD2_1"]))
    width = header.get("ZNAXIS1", header["NAXIS1"]) * scale
    height = header.get("ZNAXIS2", header["NAXIS2"]) * scale
    sides = sorted(_degrees(corners[i], corners[(i + 1) % 4]) for i in range(4))
    expected = sorted([width, width, height, height])
    assert sides == pytest.approx(expected, rel=2e-3)
    # the detector lies in the field of view around the pointing its header gives, and the
    # pointing-only region (no WCS: the whole field) contains that pointing
    field = pointing_region(header)
    assert field is not None
    assert field.contains(_pointing(header))
    radius = field.getOpeningAngle().asDegrees()
    assert radius == pytest.approx(INSTRUMENTS[WITH_WCS[name]].field_radius)
    assert all(field.contains(corner) for corner in corners)
    assert all(_degrees(_pointing(header), c) < radius for c in corners)


def test_without_a_wcs_the_pointing_and_field_give_the_region() -> None:
    header = read_header_file(HEADERS / "fitsheader-decam.yaml")
    without = {k: v for k, v in header.items() if not k.startswith(("CRVAL", "CD", "CRPIX"))}
    assert header_region(without) is None
    field = pointing_region(without)
    assert field is not None and field.contains(_pointing(header))


@pytest.mark.parametrize(
    "header",
    [
        {},
        {"CRVAL1": 10.0, "CRVAL2": 5.0, "CRPIX1": 1.0, "CRPIX2": 1.0},  # no scale
        {
            "CRVAL1": 10.0,
            "CRVAL2": 5.0,
            "CRPIX1": 1.0,
            "CRPIX2": 1.0,
            "CDELT1": 1e-4,
            "CDELT2": 1e-4,
        },  # no size, no instrument
        {
            "CRVAL1": 10.0,
            "CRVAL2": 5.0,
            "CRPIX1": 1.0,
            "CRPIX2": 1.0,
            "CD1_1": 0.0,
            "CD2_2": 0.0,
            "NAXIS1": 10,
            "NAXIS2": 10,
        },  # singular
        {
            "CRVAL1": 10.0,
            "CRVAL2": 5.0,
            "CRPIX1": 1.0,
            "CRPIX2": 1.0,
            "CDELT1": 1e-4,
            "CDELT2": 1e-4,
            "CTYPE1": "WAVE",
            "NAXIS1": 10,
            "NAXIS2": 10,
        },  # not celestial
    ],
)
def test_a_header_without_a_usable_wcs_has_no_region(header: dict[str, Any]) -> None:
    assert header_region(header) is None
    assert pointing_region(header) is None


def test_files_without_sky_have_no_region(tmp_path: Path) -> None:
    assert file_region(HEADERS / "small.fits") is None
    not_fits = tmp_path / "notes.fits"
    not_fits.write_text("not FITS", encoding="utf-8")
    assert file_region(not_fits) is None
    visit_info = write_header_only_fits(
        read_header_file(HEADERS / "visit_info.yaml"), tmp_path / "visit_info.fits"
    )
    assert file_region(visit_info) is None


def test_pc_and_cdelt_give_the_same_region_as_cd() -> None:
    common = {
        "CRVAL1": 150.0,
        "CRVAL2": 2.0,
        "CRPIX1": 50.0,
        "CRPIX2": 60.0,
        "NAXIS1": 100,
        "NAXIS2": 120,
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
    }
    cd = header_region({**common, "CD1_1": -1e-4, "CD1_2": 2e-5, "CD2_1": 2e-5, "CD2_2": 1e-4})
    pc = header_region(
        {
            **common,
            "CDELT1": -1e-4,
            "CDELT2": 1e-4,
            "PC1_1": 1.0,
            "PC1_2": -0.2,
            "PC2_1": 0.2,
            "PC2_2": 1.0,
        }
    )
    assert cd is not None and pc is not None
    for a, b in zip(cd.getVertices(), pc.getVertices(), strict=True):
        assert _degrees(a, b) < 1e-9


# ---- recorded on put and ingest, queried -----------------------------------------------------

SCALE = 10.0 / 3600  # degrees per pixel of the test images: 100 pixels = 0.28 degrees


def _image(ra: float, dec: float, size: int = 100) -> Image:
    header = {
        "CRVAL1": ra,
        "CRVAL2": dec,
        "CRPIX1": size / 2 + 0.5,
        "CRPIX2": size / 2 + 0.5,
        "CD1_1": -SCALE,
        "CD1_2": 0.0,
        "CD2_1": 0.0,
        "CD2_2": SCALE,
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
    }
    return Image(np.zeros((size, size), dtype=np.float32), header)


#: visit -> detector -> the centre of its image: two visits of 3 x 3 detectors, offset.
CENTRES = {
    visit: {
        1 + i + 3 * j: (150.0 + offset + 0.3 * (i - 1), 2.2 + offset + 0.3 * (j - 1))
        for i in range(3)
        for j in range(3)
    }
    for visit, offset in ((1, 0.0), (2, 0.15))
}


@pytest.fixture
def sky_butler(tmp_path: Path, registry_url: str) -> Iterator[Butler]:
    with Butler.create(tmp_path / "repo", mapper="toycam", registry=registry_url) as butler:
        for visit, detectors in CENTRES.items():
            butler.put_many(
                "calexp",
                [
                    (_image(ra, dec), {"visit": visit, "detector": d, "filter": "TC-G"})
                    for d, (ra, dec) in detectors.items()
                ],
            )
        butler.put(np.zeros((4, 4)), "calexp", visit=3, detector=1, filter="TC-G")  # no sky
        yield butler


def _brute_force(butler: Butler, test: Any, **keys: Any) -> list[tuple[int, int]]:
    """What an exact test of every stored calexp's region keeps."""
    found = []
    for data_id in butler.query("calexp", **keys):
        region = butler.region("calexp", data_id)
        if region is not None and test(region):
            found.append((data_id["visit"], data_id["detector"]))
    return sorted(found)


def _pairs(results: Iterator[Any]) -> list[tuple[int, int]]:
    return [(d["visit"], d["detector"]) for d in results]


def test_circle_polygon_and_contains_queries(sky_butler: Butler) -> None:
    butler = sky_butler
    circle = Circle(150.0, 2.2, 0.05)
    found = _pairs(butler.query("calexp", region=circle))
    assert found == _brute_force(butler, lambda r: circle.to_sphgeom().overlaps(r))
    assert (1, 5) in found and (1, 1) not in found
    wide = Circle(150.2, 2.3, 0.25)
    assert _pairs(butler.query("calexp", region=wide)) == _brute_force(
        butler, lambda r: wide.to_sphgeom().overlaps(r)
    )
    polygon = Polygon(((149.95, 2.15), (150.05, 2.15), (150.05, 2.25), (149.95, 2.25)))
    assert _pairs(butler.query("calexp", region=polygon, visit=1)) == [(1, 5)]
    assert _pairs(butler.query("calexp", region=polygon)) == _brute_force(
        butler, lambda r: polygon.to_sphgeom().overlaps(r)
    )
    point = (150.2, 2.3)
    expected = _brute_force(butler, lambda r: r.contains(_vector(*point)))
    assert _pairs(butler.query("calexp", contains=point)) == expected
    assert len(expected) >= 2
    # combined with keys, where, order_by and limit
    assert _pairs(butler.query("calexp", contains=point, visit=2)) == [
        p for p in expected if p[0] == 2
    ]
    assert _pairs(butler.query("calexp", region=wide, where="detector > 4", visit=1)) == [
        p
        for p in _brute_force(butler, lambda r: wide.to_sphgeom().overlaps(r))
        if p[0] == 1 and p[1] > 4
    ]
    ordered = _pairs(butler.query("calexp", region=wide, order_by="-detector", limit=3))
    assert len(ordered) == 3 and [d for _, d in ordered] == sorted(
        [d for _, d in ordered], reverse=True
    )
    # nowhere near: nothing, and a dataset without sky is never returned
    assert list(butler.query("calexp", region=Circle(10.0, -40.0, 1.0))) == []
    assert (3, 1) not in _pairs(butler.query("calexp", region=Circle(0.0, 0.0, 180.0)))


def test_a_visit_region_is_the_union_of_its_detectors(sky_butler: Butler) -> None:
    butler = sky_butler
    visit = butler.region("calexp", visit=1)
    assert isinstance(visit, sg.UnionRegion)
    for ra, dec in CENTRES[1].values():
        assert visit.contains(_vector(ra, dec))
    assert not visit.contains(_vector(150.0, 3.0))
    assert butler.region("calexp", visit=3) is None  # no sky
    # the detectors of visit 2 that visit 1's footprint meets, and the reverse
    forward = _pairs(butler.query("calexp", overlapping=("calexp", {"visit": 1}), visit=2))
    assert forward == _brute_force(butler, visit.overlaps, visit=2)
    one = butler.region("calexp", visit=2, detector=1)
    reverse = _pairs(butler.query("calexp", overlapping=("calexp", {"visit": 2, "detector": 1})))
    assert reverse == _brute_force(butler, one.overlaps)
    assert (1, 1) in reverse and (2, 1) in reverse


def test_coadds_overlapping_a_visit_and_the_reverse(sky_butler: Butler) -> None:
    """Coadds whose headers carry a patch WCS: the patches a visit touches, and back."""
    butler = sky_butler
    patches = {(7, "0,0"): (149.0, 2.2), (7, "1,0"): (150.0, 2.2), (7, "2,0"): (151.2, 2.2)}
    for (tract, patch), (ra, dec) in patches.items():
        butler.put(_image(ra, dec, 200), "coadd", band="g", tract=tract, patch=patch)
    touched = list(butler.query("coadd", overlapping=("calexp", {"visit": 1})))
    assert [d["patch"] for d in touched] == ["1,0"]
    back = _pairs(butler.query("calexp", overlapping=("coadd", {"tract": 7, "patch": "1,0"})))
    patch_region = butler.region("coadd", tract=7, patch="1,0")
    assert back == _brute_force(butler, patch_region.overlaps)
    assert (1, 5) in back


def _sky_arguments(butler: Butler) -> list[dict[str, Any]]:
    """region=, contains= and overlapping= queries of the sky_butler's calexps, with keys."""
    return [
        {"region": Circle(150.2, 2.3, 0.25)},
        {"region": Polygon(((149.95, 2.15), (150.05, 2.15), (150.05, 2.25), (149.95, 2.25)))},
        {"region": Circle(150.0, 2.2, 0.05).to_sphgeom()},
        {"contains": (150.2, 2.3)},
        {"contains": (150.2, 2.3), "visit": 2},
        {"overlapping": ("calexp", {"visit": 1}), "visit": 2},
        {"overlapping": ("calexp", {"visit": 2, "detector": 1}), "where": "detector > 1"},
        {"region": Circle(150.2, 2.3, 0.25), "order_by": "-detector", "limit": 3},
        {"region": Circle(10.0, -40.0, 1.0)},
    ]


def test_query_datasets_takes_the_sky_arguments_of_query(sky_butler: Butler) -> None:
    butler = sky_butler
    for arguments in _sky_arguments(butler):
        expected = _pairs(butler.query("calexp", **arguments))
        refs = list(butler.query_datasets("calexp", **arguments))
        assert _pairs(ref.data_id for ref in refs) == expected, arguments
    refs = list(butler.query_datasets("calexp", contains=(150.2, 2.3)))
    assert len(refs) >= 2
    for ref in refs:  # usable refs: get by ref gives the dataset of that data ID
        assert butler.get(ref).metadata["CRVAL1"] == pytest.approx(
            CENTRES[ref.data_id["visit"]][ref.data_id["detector"]][0]
        )
        assert butler.get_ref(str(ref)) == ref
    with pytest.raises(InvalidQueryError, match="give a position"):
        list(butler.query_datasets("calexp", contains="north"))


def test_remote_query_datasets_takes_the_sky_arguments(sky_butler: Butler) -> None:
    from _remote import served_client

    butler = sky_butler
    client = served_client(butler.root, "read")
    try:
        for arguments in _sky_arguments(butler):
            expected = list(butler.query_datasets("calexp", **arguments))
            assert list(client.query_datasets("calexp", **arguments)) == expected, arguments
        ref = next(client.query_datasets("calexp", contains=(150.2, 2.3)))
        assert client.get(ref).array.shape == butler.get(ref).array.shape
        with pytest.raises(InvalidQueryError, match="not in \\[-90, 90\\]"):
            list(client.query_datasets("calexp", contains=(10.0, 100.0)))
        with pytest.raises(InvalidQueryError, match="no 'calexp' dataset with that data ID"):
            list(client.query_datasets("calexp", overlapping=("calexp", {"visit": 3})))
    finally:
        client.close()


def test_bad_spatial_arguments_are_refused(sky_butler: Butler) -> None:
    butler = sky_butler
    with pytest.raises(InvalidRegionError, match="dec must be in"):
        Circle(150.0, 95.0, 1.0)
    with pytest.raises(InvalidQueryError, match="not in \\[-90, 90\\]"):
        list(butler.query("calexp", contains=(10.0, 100.0)))
    with pytest.raises(InvalidQueryError, match="give a position"):
        list(butler.query("calexp", contains="north"))
    with pytest.raises(InvalidQueryError, match=r"butler\.Circle"):
        list(butler.query("calexp", region=(150.0, 2.2, 0.1)))
    with pytest.raises(InvalidQueryError, match="give \\(dataset type, data ID\\)"):
        list(butler.query("coadd", overlapping=("calexp", 1)))
    with pytest.raises(InvalidQueryError, match="no 'calexp' dataset with that data ID"):
        list(butler.query("coadd", overlapping=("calexp", {"visit": 3})))


def test_cli_circle_polygon_contains(
    sky_butler: Butler, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(sky_butler.root)
    sky_butler.close()
    assert main(["query", root, "calexp", "visit=1", "--circle", "150.0,2.2,0.05"]) == 0
    shown = "{visit: 1, detector: 5, detectorName: 'B2', filter: 'TC-G'}"
    assert capsys.readouterr().out.splitlines() == [shown]
    assert main(["query", root, "calexp", "--contains", "150.2,2.3", "--count"]) == 0
    assert int(capsys.readouterr().out) >= 2
    polygon = "149.95,2.15,150.05,2.15,150.05,2.25,149.95,2.25"
    assert (
        main(["query", root, "calexp", "visit=1", "--polygon", polygon, "--values", "detector"])
        == 0
    )
    assert capsys.readouterr().out.split() == ["5"]
    for option, value, message in [
        ("--circle", "150,95,0.1", "dec 95 is not in [-90, 90]"),
        ("--circle", "150,2,0", "radius 0 must be more than 0"),
        ("--circle", "150,2,-1", "radius -1 must be more than 0"),
        ("--circle", "150,2", "give RA,DEC,RADIUS"),
        ("--circle", "a,b,c", "numbers in degrees"),
        ("--polygon", "1,2,3,4", "at least three RA,DEC vertices"),
        ("--contains", "10,-91", "dec -91 is not in"),
    ]:
        assert main(["query", root, "calexp", option, value]) != 0
        assert message in capsys.readouterr().err


def test_ingested_raws_get_regions(tmp_path: Path) -> None:
    """Header-only FITS raws (no NAXIS): the WCS over the instrument's detector size."""
    names = ["fitsheader-hsc.yaml", "fitsheader-hsc-HSCA04090107.yaml"]
    files = [
        write_header_only_fits(read_header_file(HEADERS / n), tmp_path / "in" / f"{n}.fits")
        for n in names
    ]
    with Butler.create(tmp_path / "repo", mapper="hsc") as butler:
        report = butler.ingest(files, show_progress=False)
        assert report.ok, str(report)
        for name, visit in zip(names, (904024, 40900), strict=True):
            region = butler.region("raw", visit=visit)
            expected = header_region(read_header_file(HEADERS / name))
            assert region is not None and expected is not None
            centre = expected.getCentroid()
            assert region.contains(centre)
            ra, dec = (
                sg.LonLat.longitudeOf(centre).asDegrees(),
                sg.LonLat.latitudeOf(centre).asDegrees(),
            )
            assert [d["visit"] for d in butler.query("raw", contains=(ra, dec))] == [visit]


def test_index_records_regions(tmp_path: Path) -> None:
    with Butler.create(tmp_path / "repo", mapper="toycam") as butler:
        butler.put(_image(30.0, -10.0), "calexp", visit=5, detector=2, filter="TC-R")
        path = butler.root / butler.uri("calexp", visit=5, detector=2).split("://", 1)[-1]
    (tmp_path / "repo" / "registry.sqlite3").unlink()
    for suffix in ("-wal", "-shm", "-reserve"):
        (tmp_path / "repo" / f"registry.sqlite3{suffix}").unlink(missing_ok=True)
    assert path.is_file()
    with Butler.create(tmp_path / "other", mapper="toycam") as other:
        target = other.root / path.relative_to(tmp_path / "repo")
        target.parent.mkdir(parents=True)
        target.write_bytes(path.read_bytes())
        report = other.index()
        assert report.registered == {"calexp": 1}
        assert _pairs(other.query("calexp", contains=(30.0, -10.0))) == [(5, 2)]


# ---- the registry's pixel search equals a brute-force exact scan ------------------------------


def _random_regions(count: int, seed: int) -> list[sg.Region]:
    """CCD-like quadrilaterals and a few circles, crowded near (40, 20), the pole and RA 0."""
    rng = random.Random(seed)
    regions: list[sg.Region] = []
    for n in range(count):
        ra0, dec0 = [(40.0, 20.0), (0.0, 0.0), (200.0, 89.0)][n % 3]
        ra = ra0 + rng.uniform(-2, 2)
        dec = max(-89.6, min(89.6, dec0 + rng.uniform(-2, 2)))
        if n % 7 == 0:
            regions.append(sg.Circle(_vector(ra, dec), sg.Angle.fromDegrees(rng.uniform(0.01, 1))))
            continue
        half_w, half_h, turn = rng.uniform(0.02, 0.3), rng.uniform(0.02, 0.3), rng.uniform(0, 6)
        corners = []
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            x, y = sx * half_w, sy * half_h
            dx, dy = (
                x * math.cos(turn) - y * math.sin(turn),
                x * math.sin(turn) + y * math.cos(turn),
            )
            corners.append(_vector(ra + dx / max(math.cos(math.radians(dec)), 0.05), dec + dy))
        regions.append(sg.ConvexPolygon.convexHull(corners))
    return regions


def test_pixel_search_finds_what_a_brute_force_scan_does(registry_url: str) -> None:
    regions = _random_regions(400, seed=17)
    with Registry.create(registry_url, "test") as registry:
        registry.register_dataset_type("shape", {"n": "int"})
        ids = [new_dataset_id() for _ in regions]
        registry.insert_many(
            "shape", [({"n": n}, f"s/{n}") for n in range(len(regions))], dataset_ids=ids
        )
        encoded = [indexed(region) for region in regions]
        registry.record_regions(
            "shape", [(i, *e) for i, e in zip(ids, encoded, strict=True) if e is not None]
        )

        def search(query: sg.Region) -> list[int]:
            found = set()
            for data_id, blob in registry.search_regions("shape", pixel_ranges(query, 32)):
                if query.overlaps(sg.Region.decode(blob)):
                    found.add(int(data_id["n"]))
            return sorted(found)

        centres = st.sampled_from([(40.0, 20.0), (0.0, 0.0), (200.0, 89.0), (359.9, 0.5)])
        offsets = st.tuples(st.floats(-3, 3), st.floats(-3, 3))

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(centres, offsets, st.floats(0.0, 3.0), st.booleans())
        def agree(
            centre: tuple[float, float], offset: tuple[float, float], size: float, as_polygon: bool
        ) -> None:
            ra, dec = centre[0] + offset[0], max(-90.0, min(90.0, centre[1] + offset[1]))
            if as_polygon and size > 0.001:
                query: sg.Region = Polygon(
                    ((ra, max(-90, dec - size)), (ra + size, dec), (ra, min(90, dec + size)))
                ).to_sphgeom()
            else:
                query = Circle(ra, dec, size).to_sphgeom()
            expected = [n for n, r in enumerate(regions) if query.overlaps(r)]
            assert search(query) == expected

        agree()
        # a removed dataset's region is never found again
        registry.remove("shape", {"n": 0})
        assert 0 not in search(sg.Circle(_vector(40.0, 20.0), sg.Angle.fromDegrees(10)))


def test_regions_recorded_by_concurrent_writers_all_get_ids(registry_url: str) -> None:
    """Region ids are taken as max + 1 in the writing transaction: a second writer waits
    for the first's commit (PostgreSQL: an advisory lock; SQLite: the write lock)."""
    import threading

    regions = _random_regions(60, seed=5)
    with Registry.create(registry_url, "test") as first:
        first.register_dataset_type("shape", {"n": "int"})
        ids = [new_dataset_id() for _ in regions]
        first.insert_many(
            "shape", [({"n": n}, f"s/{n}") for n in range(len(regions))], dataset_ids=ids
        )
        rows = [(i, *e) for i, e in zip(ids, map(indexed, regions), strict=True) if e]
        first.record_regions("shape", rows[:5])  # the tables exist before the race
        errors: list[BaseException] = []
        with Registry.open(registry_url) as second:

            def record_second() -> None:
                try:
                    second.record_regions("shape", rows[30:])
                except BaseException as error:  # reported below
                    errors.append(error)

            with first.transaction():
                first.record_regions("shape", rows[5:30])
                other = threading.Thread(target=record_second)
                other.start()
                other.join(0.5)  # it waits for this transaction
                assert other.is_alive()
            other.join(60)
        assert not errors, errors
        everything = sg.Circle(_vector(0.0, 0.0), sg.Angle.fromDegrees(180))
        found = {
            int(data_id["n"])
            for data_id, _ in first.search_regions("shape", pixel_ranges(everything, 8))
        }
        assert found == {n for n, region in enumerate(regions) if indexed(region)}


def test_registries_without_region_tables_answer_nothing(registry_url: str) -> None:
    with Registry.create(registry_url, "test") as registry:
        registry.register_dataset_type("shape", {"n": "int"})
        registry.insert("shape", {"n": 1}, "s/1")
        assert list(registry.search_regions("shape", [(0, 1 << 40)])) == []
        assert list(registry.search_regions("unregistered", None)) == []


def _stored_rows(registry: Registry, prefix: str) -> int:
    """Rows of the registry's table whose name begins with ``prefix`` (rg_ or px_)."""
    import sqlalchemy as sa

    with registry.reader() as conn:
        names = [n for n in sa.inspect(conn).get_table_names() if n.startswith(prefix)]
        assert len(names) == 1, names
        return int(conn.exec_driver_sql(f'SELECT COUNT(*) FROM "{names[0]}"').scalar_one())


def test_removed_and_overwritten_regions_are_deleted_with_their_datasets(
    registry_url: str,
) -> None:
    regions = _random_regions(6, seed=3)
    with Registry.create(registry_url, "test") as registry:
        registry.register_dataset_type("shape", {"n": "int"})
        ids = [new_dataset_id() for _ in regions]
        registry.insert_many("shape", [({"n": n}, f"s/{n}") for n in range(6)], dataset_ids=ids)
        registry.record_regions(
            "shape", [(i, *indexed(r)) for i, r in zip(ids, regions, strict=True)]
        )
        pixels = _stored_rows(registry, "px_")
        assert _stored_rows(registry, "rg_") == 6
        assert registry.remove("shape", {"n": 0})
        assert _stored_rows(registry, "rg_") == 5
        assert 0 < _stored_rows(registry, "px_") < pixels
        # an overwrite (a new dataset id) takes the old region with it, in one transaction
        fresh = new_dataset_id()
        with registry.transaction():
            registry.replace("shape", {"n": 1}, "s/1b", dataset_id=fresh)
            registry.record_regions("shape", [(fresh, *indexed(regions[5]))])
        assert _stored_rows(registry, "rg_") == 5
        everything = {int(d["n"]): blob for d, blob in registry.search_regions("shape", None)}
        assert sorted(everything) == [1, 2, 3, 4, 5]
        assert sg.Region.decode(everything[1]) == regions[5]
        for n in range(1, 6):
            assert registry.remove("shape", {"n": n})
        assert _stored_rows(registry, "rg_") == _stored_rows(registry, "px_") == 0


# ---- tracts and patches of a declared skymap, end to end (HSC) -------------------------------

COSMOS = (150.1, 2.2)  # hsc_rings_v1: tract 9813, patch "5,4"


def _hsc_calexp(butler: Butler, visit: int, ra: float, dec: float) -> None:
    keys = {"visit": visit, "ccd": 50, "pointing": 1, "filter": "HSC-I"}
    butler.put(_image(ra, dec, 120), "calexp", **keys)


def test_hsc_coadds_get_their_patch_regions_from_the_skymap(tmp_path: Path) -> None:
    with Butler.create(tmp_path / "hsc", mapper="hsc") as butler:
        sky = butler.skymap("hsc_rings_v1")
        image = np.zeros((4, 4), dtype=np.float32)  # no WCS: the region is the skymap's
        stored = [(5, 4), (4, 4), (6, 4), (5, 5), (0, 0)]
        for patch in stored:
            butler.put(image, "deepCoadd", filter="HSC-I", tract=9813, patch=patch)
        region = butler.region("deepCoadd", filter="HSC-I", tract=9813, patch="5,4")
        assert region is not None and region.contains(_vector(*COSMOS))
        assert sky.find_patch(*COSMOS).gen2 == "5,4"
        found = list(butler.query("deepCoadd", contains=COSMOS))
        assert [(d["tract"], d["patch"]) for d in found] == [(9813, "5,4")]
        assert butler.count("deepCoadd", contains=COSMOS) == 1
        assert butler.query_values("deepCoadd", "patch", contains=COSMOS) == ["5,4"]
        # a calexp (its header WCS) overlapping: the tract/patch pairs it touches, and back
        _hsc_calexp(butler, 1228, *COSMOS)
        calexp = butler.region("calexp", visit=1228)
        pairs = [
            (d["tract"], d["patch"])
            for d in butler.query("deepCoadd", overlapping=("calexp", {"visit": 1228}))
        ]
        expected = sorted(
            (9813, f"{x},{y}")
            for x, y in stored
            if butler.region("deepCoadd", filter="HSC-I", tract=9813, patch=(x, y)).overlaps(calexp)
        )
        assert pairs == expected and (9813, "5,4") in pairs and (9813, "0,0") not in pairs
        back = list(
            butler.query("calexp", overlapping=("deepCoadd", {"tract": 9813, "patch": (5, 4)}))
        )
        assert [d["visit"] for d in back] == [1228]
        assert butler.count("calexp", region=Circle(*COSMOS, 0.01)) == 1


@pytest.mark.parametrize("patch", [(5, 4), "5,4", [5, 4]])
def test_queries_take_a_patch_as_put_does(tmp_path: Path, patch: object) -> None:
    with Butler.create(tmp_path / "hsc", mapper="hsc") as butler:
        image = np.zeros((2, 2), dtype=np.float32)
        for pair in [(5, 4), (4, 4)]:
            butler.put(image, "deepCoadd", filter="HSC-I", tract=9813, patch=pair)
        found = list(butler.query("deepCoadd", tract=9813, patch=patch))
        assert [d["patch"] for d in found] == ["5,4"]
        assert butler.count("deepCoadd", {"tract": 9813, "patch": patch}) == 1
        assert butler.query_values("deepCoadd", "filter", tract=9813, patch=patch) == ["HSC-I"]
        either = butler.query("deepCoadd", tract=9813, patch=[(5, 4), "4,4"], order_by="patch")
        assert [d["patch"] for d in either] == ["4,4", "5,4"]
