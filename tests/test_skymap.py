"""Skymaps: tract and patch geometry that reproduces lsst.skymap, and the laws a tiling obeys.

Expected numbers are worked out here from lsst.skymap's published formulas
(python/lsst/skymap/ringsSkyMap.py, tractInfo.py, tractBuilder.py), from the
values its own tests pin (tests/test_ringsSkyMap.py: tract 9813's centre), and
from published HSC data IDs (the COSMOS and SXDS/XMM-LSS tracts).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from butler.errors import ButlerError, InvalidDataIdError
from butler.skymap import (
    CellGrid,
    Circle,
    DiscreteSkyMap,
    InvalidRegionError,
    PatchGrid,
    Polygon,
    RingsSkyMap,
    SkyMapDefinitionError,
    UnknownSkyMapError,
    overlaps,
    skymap,
)
from butler.skymap.sphere import separation, unit_vector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ARCSEC = math.pi / 180.0 / 3600.0

#: Module-wide instances: skymaps are immutable and cache their tracts.
HSC = skymap("hsc_rings_v1")
HSC_V0 = RingsSkyMap(120, pixel_scale=0.168, projection="TAN", tract_overlap=1.0 / 60, version=0)
LSST = skymap("lsst_cells_v1")
#: A coarse rings skymap (lsst.skymap's defaults: STG, 0.333", 1 degree overlap) whose
#: every tract can be built in a test.
SMALL = RingsSkyMap(6, pixel_scale=20.0, tract_overlap=1.0, ra_start=33.0)

ras = st.floats(min_value=0.0, max_value=360.0, exclude_max=True, allow_nan=False)
decs = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)


def hand_ring_counts(num_rings: int) -> list[int]:
    """lsst.skymap: ring i spans [-π/2 + (i+½)s, -π/2 + (i+1½)s] with s = π/(N+1) and
    holds int(2π cos(d)/s) + 1 tracts, d the ring edge nearer the equator."""
    size = math.pi / (num_rings + 1)
    counts = []
    for i in range(num_rings):
        edges = (-math.pi / 2 + (i + 0.5) * size, -math.pi / 2 + (i + 1.5) * size)
        d = min(abs(e) for e in edges)
        counts.append(int(2 * math.pi * math.cos(d) / size) + 1)
    return counts


def apart(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Angle between two (ra, dec) points, degrees (RA 360 - 1e-14 is RA 0)."""
    va = unit_vector(math.radians(a[0]), math.radians(a[1]))
    vb = unit_vector(math.radians(b[0]), math.radians(b[1]))
    return math.degrees(separation(va, vb))


def tan_half_width(reach_deg: float, scale_arcsec: float) -> float:
    """Pixels from a TAN tract's centre to the point ``reach`` degrees away on a meridian."""
    return math.tan(math.radians(reach_deg)) / (scale_arcsec * ARCSEC)


def tract_start(half_width: float, inner: int) -> tuple[int, int]:
    """First pixel and patch count of a tract whose minimal box is ±half_width (lsst.geom's
    Box2I EXPAND rounding, then grown to whole patches around the centre)."""
    lo, hi = math.ceil(-half_width - 0.5), math.floor(half_width + 0.5)
    width = hi - lo + 1
    count = -(-width // inner)
    return lo - (inner * count - width) // 2, count


# --- the numbering --------------------------------------------------------------------------


def test_hsc_ring_counts_and_tract_total_follow_the_formula() -> None:
    counts = hand_ring_counts(120)
    assert list(HSC.ring_counts) == counts
    assert counts[:3] == [10, 16, 22]
    assert counts[59] == counts[60] == 243  # the two rings touching the equator
    assert len(HSC) == sum(counts) + 2 == 18938


def test_tract_centres_match_lsst_skymap() -> None:
    size = 180.0 / 121
    # Values pinned by lsst.skymap's own tests (HSC configuration).
    assert HSC.centre(9813) == pytest.approx((150.2479338842975, 2.2314049586776834), abs=1e-12)
    assert HSC_V0.centre(9712) == pytest.approx((0.0, 0.7438016528925696), abs=1e-12)
    # Ring 61 (dec = 62 s - 90) starts at RA 0; tract 9813 is its 102nd tract (index 101).
    counts = hand_ring_counts(120)
    first_of_ring_61 = 1 + sum(counts[:61])
    assert first_of_ring_61 == 9712
    assert HSC.centre(9712) == pytest.approx((0.0, 62 * size - 90.0), abs=1e-12)
    assert HSC.centre(9813) == pytest.approx((360.0 * 101 / counts[61], 62 * size - 90), abs=1e-9)
    assert HSC.centre(0) == (0.0, -90.0)
    assert HSC.centre(len(HSC) - 1) == (0.0, 90.0)


def test_ra_start_shifts_every_ring() -> None:
    # Tract 1 is the first tract of the southern ring, centred on ra_start.
    assert SMALL.centre(1)[0] == pytest.approx(33.0)
    assert SMALL.find_tract_id(33.0, SMALL.centre(1)[1]) == 1


def test_hsc_cosmos_tract_wcs_is_worked_out_from_the_formulas() -> None:
    tract = HSC.tract(9813)
    # Half-size: half a ring (90/121 degrees) plus the 1 arcminute overlap.
    start, count = tract_start(tan_half_width(90.0 / 121 + 1.0 / 60, 0.168), 4000)
    assert (start, count) == (-17999, 9)
    assert (tract.nx, tract.ny) == (9, 9)
    assert (tract.bbox.width, tract.bbox.height) == (36000, 36000)
    header = tract.tract_wcs.header()
    assert header["CTYPE1"] == "RA---TAN" and header["CTYPE2"] == "DEC--TAN"
    assert (header["CRVAL1"], header["CRVAL2"]) == pytest.approx(HSC.centre(9813), abs=1e-12)
    assert (header["CRPIX1"], header["CRPIX2"]) == (18000.0, 18000.0)  # FITS: 1-based
    assert header["CD1_1"] == pytest.approx(-0.168 / 3600)
    assert header["CD2_2"] == pytest.approx(0.168 / 3600)
    wcs = tract.wcs
    ra, dec = wcs.wcs_pix2world([[17999.0, 17999.0]], 0)[0]
    assert (ra, dec) == pytest.approx(HSC.centre(9813), abs=1e-9)


def test_lsst_cells_v1_tract_has_ten_by_ten_patches_of_whole_cells() -> None:
    tract = LSST.tract(9813)
    start, count = tract_start(tan_half_width(90.0 / 121 + 1.0 / 60, 0.2), 3000)
    assert (start, count) == (-14999, 10)
    assert (tract.nx, tract.ny) == (10, 10)
    assert tract.tract_wcs.header()["CRPIX1"] == 15000.0
    patch = tract.patch(0)
    # 20 cells of 150 pixels; border of one cell plus the 50 pixel cell border, unclipped.
    assert (patch.inner_bbox.width, patch.outer_bbox.x0, patch.outer_bbox.width) == (
        3000,
        -200,
        3400,
    )
    assert PatchGrid.cells() == PatchGrid(3000, 3000, 200, False, CellGrid(150, 50, 20, 1))


# --- published HSC data IDs -------------------------------------------------------------------


def test_cosmos_is_tract_9813_and_its_patches_are_named_as_published() -> None:
    # lsst source_injection docs: RA 149.7..150.1, Dec 2.0..2.4 lies in "HSC tract 9813,
    # patch 42; a tract in the COSMOS field"; the pipelines tutorial: "the patch with id
    # 41 is located at the position (5, 4) in tract 9813"; RC2 scripts loop patches 0..80.
    assert HSC.find_tract(150.1, 2.2).id == 9813
    for ra in (149.75, 149.9, 150.05):
        for dec in (2.05, 2.2, 2.35):
            assert HSC.find_tract_id(ra, dec) == 9813
    assert HSC.find_patch(149.9, 2.2).index == 42
    for ra, dec in HSC.tract(9813).patch(42).inner_region.vertices:
        assert 149.7 < ra < 150.1 and 2.0 < dec < 2.4  # the box "fully overlaps" patch 42
    tract = HSC.tract(9813)
    assert tract.patch(41).gen2 == "5,4"
    assert tract.patch("5,4").index == 41
    assert tract.patch((5, 4)) == tract.patch(41)
    assert len(tract) == 81


def test_sxds_and_xmm_lss_tracts() -> None:
    # SXDS is centred at 02h18m, -05d00m; HSC SSP's SXDS/XMM-LSS tracts are
    # 8282..8284, 8523..8525 and 8765..8767 (lsst-uk/lsst-ir-fusion's HSC processing).
    assert HSC.find_tract_id(34.5, -5.0) == 8523
    assert HSC.find_tract_id(35.8, -5.0) == 8524
    assert HSC.find_tract_id(34.5, -3.5) == 8765
    assert HSC.find_tract_id(35.8, -3.5) == 8766
    for tract_id in (8282, 8283, 8284, 8523, 8524, 8525, 8765, 8766, 8767):
        ra, dec = HSC.centre(tract_id)
        assert 32.0 < ra < 38.0 and -7.0 < dec < -2.0
    found = [t.id for t in HSC.tracts_overlapping(Circle(34.5, -5.0, 0.2))]
    assert found == [8523]


# --- version 0 (before DM-14809) against version 1 -------------------------------------------


def test_version_0_differs_from_version_1_only_as_dm_14809_says() -> None:
    counts = HSC.ring_counts
    starts = [1 + sum(counts[:r]) for r in range(len(counts))]  # first tract of each ring, v1
    moved = dict(zip(starts[1:], starts[:-1], strict=True))  # v0 index → v1 index, same sky
    assert len(HSC_V0) == len(HSC)
    for tract_id in range(len(HSC)):
        expected = HSC.centre(moved.get(tract_id, tract_id))
        assert apart(HSC_V0.centre(tract_id), expected) < 1e-9, tract_id
    # Tract n0 + 1 repeats tract 1, and finding its centre gives 1.
    assert apart(HSC_V0.centre(counts[0] + 1), HSC_V0.centre(1)) < 1e-9
    got = [HSC_V0.find_tract_id(*HSC_V0.centre(n)) for n in range(len(HSC_V0))]
    expect = list(range(len(HSC_V0)))
    expect[counts[0] + 1] = 1
    assert got == expect
    # The first tract of the last ring has no number: its points fall to the north cap.
    last_ring_first = HSC.centre(starts[-1])
    assert HSC.find_tract_id(*last_ring_first) == starts[-1]
    assert HSC_V0.find_tract_id(*last_ring_first) == len(HSC_V0) - 1
    assert not HSC_V0.tract(len(HSC_V0) - 1).contains(*last_ring_first)


def test_find_tract_of_every_tract_centre_is_that_tract() -> None:
    for sky in (HSC, LSST, SMALL):
        assert [sky.find_tract_id(*sky.centre(n)) for n in range(len(sky))] == list(range(len(sky)))


def test_wraparound_at_ra_zero() -> None:
    # lsst.skymap's regression test: 10 arcsec either side of tract 9712's centre (RA 0).
    ra, dec = HSC.centre(9712)
    for d_ra in (-10 / 3600, 10 / 3600):
        assert HSC.find_tract_id((ra + d_ra) % 360.0, dec) == 9712


# --- laws -------------------------------------------------------------------------------------


def on_an_edge(sky: RingsSkyMap, ra: float, dec: float) -> bool:
    """Whether (ra, dec) is within 1e-9 radians of an inner-region edge."""
    lat = math.radians(dec)
    first = -math.pi / 2 + 0.5 * sky.ring_size
    if abs((lat - first) / sky.ring_size - round((lat - first) / sky.ring_size)) < 1e-9:
        return True
    ring = int((lat - first) / sky.ring_size)
    if not 0 <= ring < sky.num_rings:
        return False
    width = 2 * math.pi / sky.ring_counts[ring]
    phase = ((math.radians(ra) - math.radians(sky.ra_start)) / width + 0.5) % 1.0
    return min(phase, 1.0 - phase) * width < 1e-9


INNER = {
    "hsc": [HSC.inner_region(n) for n in range(len(HSC))],
    "small": [SMALL.inner_region(n) for n in range(len(SMALL))],
}


@SETTINGS
@given(ra=ras, dec=decs, which=st.sampled_from(["hsc", "small"]))
def test_every_point_is_in_exactly_one_tract_inner_region(
    ra: float, dec: float, which: str
) -> None:
    sky = HSC if which == "hsc" else SMALL
    holding = [n for n, box in enumerate(INNER[which]) if box.contains(ra, dec)]
    assert holding  # no gaps, even on edges: neighbours compute their shared edge alike
    if not on_an_edge(sky, ra, dec):
        assert holding == [sky.find_tract_id(ra, dec)]
    # On an edge (to 1e-9 radians) both neighbours hold the point, and find_tract, like
    # lsst.skymap's, may pick a third when rounding puts the point across the line.


@SETTINGS
@given(ra=ras, dec=decs, which=st.sampled_from(["hsc", "lsst", "small"]))
def test_a_point_lies_in_exactly_one_patch_inner_box_of_its_tract(
    ra: float, dec: float, which: str
) -> None:
    sky = {"hsc": HSC, "lsst": LSST, "small": SMALL}[which]
    tract = sky.find_tract(ra, dec)
    assert tract.contains(ra, dec)  # the inner region lies on the tract's pixels
    (x, y) = tract.tract_wcs.sky_to_pixel([(ra, dec)])[0] or (math.nan, math.nan)
    pixel = (math.floor(x + 0.5), math.floor(y + 0.5))
    holding = [p for p in tract.patches() if p.inner_bbox.contains_pixel(*pixel)]
    assert holding == [tract.find_patch(ra, dec)]
    assert sky.find_patch(ra, dec) == holding[0]


@SETTINGS
@given(tract_id=st.integers(0, len(SMALL) - 1), data=st.data())
def test_a_patch_lies_within_its_tract(tract_id: int, data: st.DataObject) -> None:
    tract = SMALL.tract(tract_id)
    patch = tract.patch(data.draw(st.integers(0, len(tract) - 1)))
    # Legacy patches stop at the tract's edge: their outer region is inside the tract's
    # (corners moved 0.001 pixel inwards, as they may share the tract's corners exactly).
    corners = tract.tract_wcs.pixel_to_sky(patch.outer_bbox.corners(0.001))
    assert all(tract.region.contains(ra, dec) for ra, dec in corners)
    assert all(tract.contains(ra, dec) for ra, dec in corners)


def test_cells_patches_reach_past_their_tract_by_the_border() -> None:
    tract = LSST.tract(9813)
    corner = tract.patch(0)
    outside = tract.tract_wcs.pixel_to_sky(corner.outer_bbox.corners(0.001))[0]
    assert not tract.contains(*outside)
    inner = tract.tract_wcs.pixel_to_sky(corner.inner_bbox.corners(0.001))
    assert all(tract.region.contains(ra, dec) for ra, dec in inner)


@SETTINGS
@given(ra=ras, dec=decs, radius=st.floats(0.01, 40.0))
def test_overlap_queries_find_exactly_what_a_full_scan_finds(
    ra: float, dec: float, radius: float
) -> None:
    circle = Circle(ra, dec, radius)
    every = [SMALL.tract(n) for n in range(len(SMALL))]
    assert SMALL.tracts_overlapping(circle) == [t for t in every if overlaps(t.region, circle)]
    home = SMALL.find_tract(ra, dec)
    assert home in SMALL.tracts_overlapping(circle)
    patches = SMALL.patches_overlapping(circle, tract=home.id)
    assert home.find_patch(ra, dec) in patches


def test_patches_overlapping_a_small_circle() -> None:
    tract = HSC.tract(9813)
    centre = tract.patch("4,4").inner_region
    ra, dec = HSC.tract(9813).tract_wcs.pixel_to_sky([(18000.0, 18000.0)])[0]
    assert centre.contains(ra, dec)
    found = HSC.patches_overlapping(Circle(ra, dec, 10 / 3600))
    assert [(p.tract, p.gen2) for p in found] == [(9813, "4,4")]
    # A circle on the corner of four patches touches all four (and their borders).
    ra, dec = tract.tract_wcs.pixel_to_sky([(15999.5, 15999.5)])[0]
    names = {p.gen2 for p in HSC.patches_overlapping(Circle(ra, dec, 1 / 3600))}
    assert names == {"3,3", "4,3", "3,4", "4,4"}


@SETTINGS
@given(data=st.data())
def test_gen2_and_gen3_patch_names_round_trip(data: st.DataObject) -> None:
    tract = HSC.tract(data.draw(st.sampled_from([0, 9813, 18937])))
    x = data.draw(st.integers(0, tract.nx - 1))
    y = data.draw(st.integers(0, tract.ny - 1))
    patch = tract.patch(f"{x},{y}")
    assert patch.index == y * tract.nx + x
    assert tract.patch(patch.index).gen2 == f"{x},{y}"


def test_polar_caps() -> None:
    for ra in (0.0, 123.0, 321.0, 359.9):
        assert HSC.find_tract_id(ra, 90.0) == len(HSC) - 1
        assert HSC.find_tract_id(ra, -90.0) == 0
        assert HSC.find_tract(ra, -89.9).contains(ra, -89.9)


# --- the discrete skymap ----------------------------------------------------------------------


def test_discrete_skymap_tracts_sit_on_the_listed_centres() -> None:
    # obs_subaru's discrete configuration: ACTJ0022M0036 and M31, 0.168" pixels.
    sky = DiscreteSkyMap(((5.5, -0.6), (10.7, 41.3)), (0.5, 0.8), pixel_scale=0.168)
    assert len(sky) == 2
    assert sky.find_tract_id(10.6, 41.0) == 1
    tract = sky.tract(1)
    assert (tract.ra, tract.dec) == pytest.approx((10.7, 41.3))
    # STG: a point θ away is 2 tan(θ/2) from the centre; reach = radius + full overlap.
    half = 2 * math.tan(math.radians(0.8 + 1.0) / 2) / (0.168 * ARCSEC)
    start, count = tract_start(half, 4000)
    assert tract.tract_wcs.crpix == (-start, -start)
    assert tract.tract_wcs.header()["CTYPE1"] == "RA---STG"
    assert (tract.nx, tract.ny) == (count, count)
    assert isinstance(tract.inner_region, Polygon)
    assert tract.inner_region.contains(10.7, 41.3)
    assert [t.id for t in sky.tracts_overlapping(Circle(5.5, -0.6, 0.1))] == [0]
    assert sky.find_patch(10.7, 41.3).tract == 1


# --- failures ---------------------------------------------------------------------------------


def test_unknown_skymap_names_the_bundled_ones() -> None:
    with pytest.raises(UnknownSkyMapError, match="did you mean 'hsc_rings_v1'") as caught:
        skymap("hsc_ring_v1")
    assert isinstance(caught.value, ButlerError) and isinstance(caught.value, KeyError)
    assert "lsst_cells_v1" in str(caught.value)


def test_out_of_range_tracts_and_patches_are_data_id_errors() -> None:
    with pytest.raises(InvalidDataIdError, match=r"0\.\.18937"):
        HSC.tract(18938)
    tract = HSC.tract(9813)
    with pytest.raises(InvalidDataIdError, match=r"0\.\.80"):
        tract.patch(81)
    with pytest.raises(InvalidDataIdError, match="'x,y'"):
        tract.patch("5;4")
    with pytest.raises(InvalidDataIdError, match=r"x runs 0\.\.8"):
        tract.patch("9,0")
    with pytest.raises(InvalidDataIdError, match="find_tract"):
        tract.find_patch(10.0, 10.0)


def test_bad_parameters_are_refused_with_every_problem_named() -> None:
    with pytest.raises(SkyMapDefinitionError) as caught:
        RingsSkyMap(0, pixel_scale=-1.0, ra_start=360.0, projection="TANGENT", version=2)
    message = str(caught.value)
    for word in ("num_rings", "pixel_scale", "ra_start", "projection", "version"):
        assert word in message
    with pytest.raises(SkyMapDefinitionError, match="2 centres but 1 radii"):
        DiscreteSkyMap(((0.0, 0.0), (1.0, 1.0)), (1.0,))
    with pytest.raises(SkyMapDefinitionError, match="border"):
        PatchGrid(4000, 0, 100)
    with pytest.raises(InvalidRegionError):
        Circle(0.0, 91.0, 1.0)
    with pytest.raises(InvalidRegionError):
        Polygon(((0.0, 0.0), (1.0, 0.0)))


def test_skymaps_load_neither_astropy_nor_sphgeom_until_asked() -> None:
    script = (
        "import sys, json, butler, butler.skymap\n"
        "s = butler.skymap.skymap('hsc_rings_v1')\n"
        "n = s.find_tract_id(150.1, 2.2)\n"
        "print(json.dumps([n, [m for m in ('astropy', 'lsst.sphgeom') if m in sys.modules]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [9813, []]


def test_cells_of_an_lsst_patch() -> None:
    patch = LSST.tract(9813).patch("3,7")
    cells = patch.cells()
    # 20 x 20 cells of 150 pixels tile the inner box; one more cell on every side.
    assert len(cells) == 22 * 22
    first = patch.cell((0, 0))
    assert (first.inner_bbox.x0, first.inner_bbox.y0) == (3 * 3000 - 150, 7 * 3000 - 150)
    assert first.outer_bbox == first.inner_bbox.grown(50)
    assert patch.cell(22 * 5 + 4) == patch.cell((4, 5))
    interior = [c for c in cells if 1 <= c.x <= 20 and 1 <= c.y <= 20]
    assert sum(c.inner_bbox.width * c.inner_bbox.height for c in interior) == 3000 * 3000
    assert all(patch.inner_bbox.contains_box(c.inner_bbox) for c in interior)
    assert not HSC.tract(9813).patch(0).cells()
    with pytest.raises(InvalidDataIdError, match="no cells"):
        HSC.tract(9813).patch(0).cell(0)
    with pytest.raises(InvalidDataIdError, match=r"0\.\.483"):
        patch.cell(484)
