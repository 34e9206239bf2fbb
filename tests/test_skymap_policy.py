"""Skymaps defined by policies: the bundled ones, compiled ones, and their use through a repository.

The geometry itself is tested in test_skymap.py; here: a policy's ``skymap`` block
compiles to the same skymap the runtime bundles, ``butler.skymap(NAME)`` answers
lookups from the repository's policy, patches are written as the dataset type says,
puts outside the skymap are refused, and ``butler skymap`` prints what it finds.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS
from butler import Butler, load_mapper
from butler.cli import main
from butler.errors import ButlerError, InvalidDataIdError
from butler.skymap import (
    Circle,
    DiscreteSkyMap,
    PatchGrid,
    RingsSkyMap,
    UnknownSkyMapError,
    skymap,
)
from butler.skymap.defined import from_spec
from butlerc import compile_policy
from hypothesis import given, settings
from hypothesis import strategies as st

COSMOS = (150.1, 2.2)  # tract 9813, patch "5,4" = 41 of hsc_rings_v1

POLICY = """
instrument SkyCam {
    key tract: int
    key patch: int
    key filter: str
    use skymap wide patch index

    skymap wide {
        rings 120
        projection "TAN"
        pixel_scale 0.168 arcsec
        tract_overlap 1 arcmin
        patch_inner 4000, 4000
        patch_border 100
    }

    skymap fields {
        tract 150.1, 2.2 radius 0.5
        tract 34.5, -5.0 radius 0.75
        projection "TAN"
        pixel_scale 0.2 arcsec
        tract_overlap 0.05
        cells 150, 50, 20, 1
    }

    skymap old {
        rings 40
        version 0
        ra_start 10.5
        patch_inner 2000, 3000
        patch_border 50
    }

    format fits { formatter fits extensions ".fits" }

    dataset deepCoadd {
        template "deepCoadd/{filter}/{tract}/{patch}.fits"
        format fits
        keys filter, tract, patch
    }

    dataset fieldCoadd {
        template "fieldCoadd/{filter}/{tract}/{patch}.fits"
        format fits
        keys filter, tract, patch
        skymap fields patch index
    }
}
"""


@pytest.fixture(scope="module")
def skycam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module generated from POLICY."""
    folder = tmp_path_factory.mktemp("skycam")
    policy = folder / "skycam.butler"
    policy.write_text(POLICY, encoding="utf-8")
    result = compile_policy(policy)
    assert result.ok, result.report()
    module = folder / "skycam.py"
    module.write_text(result.modules["skycam"], encoding="utf-8")
    return module


# ---- the bundled policies define what the runtime bundles ---------------------------------


@pytest.mark.parametrize(
    ("instrument", "name"),
    [("hsc", "hsc_rings_v1"), ("lsstcam", "lsst_cells_v1"), ("latiss", "lsst_cells_v1")],
)
def test_policy_skymap_equals_the_bundled_one(instrument: str, name: str) -> None:
    mapper = load_mapper(instrument)
    assert name in mapper.skymaps
    assert mapper.skymap(name) == skymap(name)
    tract = mapper.skymap(name).tract(9813)
    assert tract.num_patches == skymap(name).tract(9813).num_patches


@pytest.mark.parametrize("instrument", ["hsc", "lsstcam"])
def test_bundled_coadds_declare_their_skymap_and_gen2_patches(instrument: str) -> None:
    mapper = load_mapper(instrument)
    for name in ("deepCoadd", "deepCoadd_calexp", "deepCoadd_meas", "deepCoadd_forced_src"):
        spec = mapper.dataset_type(name)
        assert spec.skymap == mapper.skymaps[0]
        assert spec.patch_form == "gen2"
    assert mapper.dataset_type("raw").skymap is None


def test_cameras_without_a_skymap_have_none() -> None:
    mapper = load_mapper("decam")
    assert mapper.skymaps == ()
    assert mapper.dataset_type("deepCoadd").skymap is None
    with pytest.raises(UnknownSkyMapError, match="defines: none"):
        mapper.skymap("hsc_rings_v1")


# ---- compiled definitions: plain data, built as written ---------------------------------


def test_generated_module_holds_the_definitions_as_data(skycam: Path) -> None:
    text = skycam.read_text("utf-8")
    assert "SkyMapSpec(" in text and "import butler.skymap" not in text
    mapper = load_mapper(skycam)
    assert mapper.skymaps == ("fields", "old", "wide")
    assert mapper.skymap("wide") == skymap("hsc_rings_v1")
    assert mapper.skymap("old") == RingsSkyMap(
        40, ra_start=10.5, version=0, patches=PatchGrid(2000, 3000, 50)
    )
    assert mapper.skymap("fields") == DiscreteSkyMap(
        ((150.1, 2.2), (34.5, -5.0)),
        (0.5, 0.75),
        pixel_scale=0.2,
        projection="TAN",
        tract_overlap=0.05,
        patches=PatchGrid.cells(150, 50, 20, 1),
    )
    assert mapper.skymap("wide") is mapper.skymap("wide")  # built once


def test_every_spec_builds_what_its_numbers_say(skycam: Path) -> None:
    for spec in load_mapper(skycam).spec.skymaps:
        built = from_spec(spec)
        assert built.tract(0).grid.border == (
            spec.patch_border
            if spec.cells is None
            else spec.cells[3] * spec.cells[0] + spec.cells[1]
        )


@settings(max_examples=60, deadline=None)
@given(tract=st.integers(0, 18937), x=st.integers(0, 40), y=st.integers(0, 40))
def test_index_and_gen2_patches_name_the_same_patch(
    skycam: Path, tract: int, x: int, y: int
) -> None:
    mapper = load_mapper(skycam)
    nx, ny = mapper.skymap("wide").tract(tract).num_patches
    keys = {"filter": "r", "tract": tract}
    if x < nx and y < ny:
        index = mapper.sky_keys("deepCoadd", {**keys, "patch": f"{x},{y}"})["patch"]
        assert index == mapper.sky_keys("deepCoadd", {**keys, "patch": (x, y)})["patch"]
        patch = mapper.skymap("wide").tract(tract).patch(index)
        assert (patch.x, patch.y) == (x, y)
        mapper.check_sky("deepCoadd", {**keys, "patch": index})
    else:
        with pytest.raises(InvalidDataIdError, match="not in tract"):
            mapper.sky_keys("deepCoadd", {**keys, "patch": (x, y)})


# ---- through a repository ------------------------------------------------------------------


@pytest.fixture
def hsc(tmp_path: Path) -> Iterator[Butler]:
    butler = Butler.create(tmp_path / "hsc", mapper="hsc")
    yield butler
    butler.close()


def test_butler_skymap_lookups(hsc: Butler) -> None:
    sky = hsc.skymap("hsc_rings_v1")
    tract = sky.find_tract(*COSMOS)
    assert tract.id == 9813
    patch = sky.find_patch(*COSMOS)
    assert (patch.gen2, patch.index) == ("5,4", 41)
    assert [t.id for t in sky.tracts_overlapping(Circle(34.5, -5.0, 0.2))] == [8523]
    patches = sky.patches_overlapping(Circle(*COSMOS, 0.01))
    assert (9813, 41) in {(p.tract, p.index) for p in patches}
    assert tract.region.contains(*COSMOS) and patch.inner_region.contains(*COSMOS)
    assert isinstance(patch.wcs, WCS) and patch.region.contains(*COSMOS)
    x, y = tract.wcs.world_to_pixel_values(*COSMOS)
    assert patch.inner_bbox.contains_pixel(round(float(x)), round(float(y)))


def test_unknown_skymap_names_the_policys_skymaps(hsc: Butler) -> None:
    with pytest.raises(UnknownSkyMapError) as caught:
        hsc.skymap("hsc_ring_v1")
    assert isinstance(caught.value, ButlerError)
    assert "did you mean 'hsc_rings_v1'" in str(caught.value)
    assert "defines: hsc_rings_v1" in str(caught.value)


def test_mapper_paths_take_a_patch_pair() -> None:
    hsc = load_mapper("hsc")
    path = hsc.path("deepCoadd", filter="HSC-I", tract=9813, patch=(5, 4))
    assert path == hsc.path("deepCoadd", {"filter": "HSC-I", "tract": 9813, "patch": "5,4"})
    assert path.endswith("/9813/5,4.fits")


def test_gen2_patch_as_a_pair_or_text(hsc: Butler) -> None:
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    ref = hsc.put(image, "deepCoadd", filter="HSC-I", tract=9813, patch=(5, 4))
    assert ref.data_id["patch"] == "5,4"
    assert np.array_equal(hsc.get("deepCoadd", filter="HSC-I", tract=9813, patch="5,4"), image)
    assert np.array_equal(hsc.get("deepCoadd", filter="HSC-I", tract=9813, patch=[5, 4]), image)


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"tract": 18938, "patch": "5,4"}, "tract=18938"),
        ({"tract": 9813, "patch": "9,4"}, "patch='9,4'"),
        ({"tract": 9813, "patch": (0, 9)}, "patch='0,9'"),
    ],
)
def test_put_outside_the_skymap_is_refused(
    hsc: Butler, keys: dict[str, object], named: str
) -> None:
    image = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(InvalidDataIdError, match=named):
        hsc.put(image, "deepCoadd", filter="HSC-I", **keys)
    assert hsc.count("deepCoadd") == 0
    assert not any((Path(hsc.root) / "deepCoadd").glob("**/*.fits"))


def test_index_patches_convert_from_gen2(skycam: Path, tmp_path: Path) -> None:
    with Butler.create(tmp_path / "repo", mapper=str(skycam)) as butler:
        image = np.ones((2, 2), dtype=np.float32)
        nx = butler.skymap("wide").tract(9813).num_patches[0]
        ref = butler.put(image, "deepCoadd", filter="r", tract=9813, patch="5,4")
        assert ref.data_id["patch"] == 4 * nx + 5 == 41
        ref = butler.put(image, "deepCoadd", filter="r", tract=9813, patch=(1, 2))
        assert ref.data_id["patch"] == 2 * nx + 1
        assert butler.exists("deepCoadd", filter="r", tract=9813, patch=(5, 4))
        with pytest.raises(InvalidDataIdError, match="patch=81"):
            butler.put(image, "deepCoadd", filter="r", tract=9813, patch=81)
        with pytest.raises(InvalidDataIdError, match="tract=2"):
            butler.put(image, "fieldCoadd", filter="r", tract=2, patch=0)
        fields = butler.skymap("fields")
        ref = butler.put(image, "fieldCoadd", filter="r", tract=1, patch="0,0")
        assert ref.data_id["patch"] == 0 and fields.find_tract(34.5, -5.0).id == 1


# ---- the command line ------------------------------------------------------------------------


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_cli_lists_and_finds(hsc: Butler) -> None:
    root = str(hsc.root)
    status, out, _ = _run("skymap", root)
    assert status == 0
    assert out.startswith("hsc_rings_v1: 120 rings, 18938 tracts, TAN")
    status, out, _ = _run("skymap", root, "hsc_rings_v1", "--find", "150.1,2.2")
    assert (status, out) == (0, "tract 9813 patch 5,4 (index 41)\n")
    status, out, _ = _run("skymap", root, "hsc_rings_v1", "--find", "34.5,-5.0")
    assert out.startswith("tract 8523 patch ")


def test_cli_failures(hsc: Butler) -> None:
    root = str(hsc.root)
    status, _, err = _run("skymap", root, "hsc_ring_v1", "--find", "150.1,2.2")
    assert status == 2 and "did you mean 'hsc_rings_v1'" in err
    status, _, err = _run("skymap", root, "--find", "150.1,2.2")
    assert status == 2 and "needs a skymap NAME" in err
    with pytest.raises(SystemExit) as caught:
        _run("skymap", root, "hsc_rings_v1", "--find", "150.1")
    assert caught.value.code == 2


# ---- dataset types defined at run time -------------------------------------------------------


def test_runtime_dataset_type_may_declare_the_policys_skymap(hsc: Butler) -> None:
    hsc.register_dataset_type(
        text='dataset myCoadd {\n    template "my/{filter}/{tract}/{patch}.fits"\n'
        "    format fits\n    keys filter, tract, patch\n    skymap hsc_rings_v1 patch gen2\n}"
    )
    spec = hsc.mapper.dataset_type("myCoadd")
    assert (spec.skymap, spec.patch_form) == ("hsc_rings_v1", "gen2")
    image = np.zeros((2, 2), dtype=np.float32)
    assert (
        hsc.put(image, "myCoadd", filter="HSC-I", tract=9813, patch=(1, 2)).data_id["patch"]
        == "1,2"
    )
    with pytest.raises(InvalidDataIdError, match="tract=20000"):
        hsc.put(image, "myCoadd", filter="HSC-I", tract=20000, patch=(1, 2))
    with Butler(hsc.root) as again:  # the definition is stored with the repository
        assert again.mapper.dataset_type("myCoadd").skymap == "hsc_rings_v1"


def test_runtime_dataset_type_with_an_unknown_skymap_is_refused(hsc: Butler) -> None:
    with pytest.raises(ButlerError, match="BC025"):
        hsc.register_dataset_type(
            text='dataset myCoadd {\n    template "my/{tract}/{patch}.fits"\n'
            "    format fits\n    keys tract, patch\n    skymap hsc_ring_v1\n}"
        )
