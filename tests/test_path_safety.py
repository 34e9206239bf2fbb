"""One data ID, one file (issue 12): paths that alias, lossy templates, links out of the root,
values too long for a file name, objects a format cannot hold.

Each test is a hole a hostile user found; each fails on the code before the fix. The
repositories use MiniCam (``tests/fixtures/butler``: ``note`` is a YAML ``dict`` under
``notes/{label}/``, ``label`` a free ``str`` key) and the tutorial camera ``toycam``
(``focusSweep`` writes ``{focus:.2f}``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import butlerc
import numpy as np
import pytest
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler import Mapper, load_mapper
from butler.butler import Butler
from butler.errors import FormatError, InvalidDataIdError, ObjectTypeError, RepositoryError
from butler.image import Image
from butler.mapper import layout_problem
from butler.storage import LocalStorage
from butler.testing import data_ids
from butlerc.codegen import generate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def minicam_module(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    modules = {}
    for variant in ("fits", "hdf5"):
        result = butlerc.compile_policy(FIXTURES / "butler" / f"minicam_{variant}.butler")
        assert not result.diagnostics, [str(d) for d in result.diagnostics]
        modules[variant] = tmp_path_factory.mktemp(variant) / "minicam.py"
        modules[variant].write_text(result.modules["minicam"], encoding="utf-8")
    return modules


@pytest.fixture
def mini(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
    minicam_module: dict[str, Path],
) -> Iterator[Butler]:
    root = tmp_path / "repo"
    with Butler.create(root, mapper=minicam_module["fits"], registry=registries()) as butler:
        yield butler


@pytest.fixture
def toy(tmp_path: Path, registries: RegistryFactory) -> Iterator[Butler]:  # noqa: F811
    with Butler.create(tmp_path / "toy", mapper="toycam", registry=registries()) as butler:
        yield butler


def files(root: Path) -> list[str]:
    """Every dataset file below ``root`` (the registry and config aside)."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "registry" not in p.name and p.name != "butler.yaml"
    )


# ---- paths that alias ------------------------------------------------------------------------


@pytest.mark.parametrize("label", [".", "./.", "a//b", "a/", "/."])
def test_a_value_that_would_name_another_path_is_refused(mini: Butler, label: str) -> None:
    # "." made notes/./note-000001.yaml: verify then called the dataset's own file untracked
    with pytest.raises(InvalidDataIdError, match="label="):
        mini.put({"a": 1}, "note", visit=1, label=label)
    assert files(mini.root) == []
    mini.put({"a": 1}, "note", visit=1, label="a.b")  # a dot inside a name is fine
    report = mini.verify()
    assert report.clean and not report.untracked


@pytest.fixture(scope="module")
def hsc_fixture(tmp_path_factory: pytest.TempPathFactory) -> Mapper:
    """The HSC mapper of tests/fixtures/codegen: ``qa`` has ``subdir``, a key allowing "/"."""
    ir = json.loads((FIXTURES / "codegen" / "hsc.ir.json").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("hsc") / "hsc.py"
    path.write_text(generate(ir), encoding="utf-8")
    return load_mapper(path)


@pytest.mark.parametrize("subdir", ["/.", ".", "a//b", "a/", "a/./b", "/a/."])
def test_a_path_fragment_with_dot_or_empty_components_is_refused(
    hsc_fixture: Mapper, subdir: str
) -> None:
    with pytest.raises(InvalidDataIdError, match="subdir="):
        hsc_fixture.path("qa", visit=0, subdir=subdir, flagged=False)
    assert hsc_fixture.path("qa", visit=0, subdir="a/b", flagged=False).startswith("a/b/")


HOSTILE = st.one_of(
    st.sampled_from([".", "..", "/.", "./", "a//b", "a/", "/", "", "a/./b", "x" * 256, "é" * 128]),
    st.text(alphabet="./ab\\", max_size=6),
    st.text(max_size=8),
)


def _canonical(path: str) -> bool:
    parts = path.split("/")
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


@pytest.fixture(scope="module")
def toycam() -> Mapper:
    return load_mapper("toycam")


@pytest.fixture(scope="module")
def hsc(tmp_path_factory: pytest.TempPathFactory) -> Mapper:
    """The bundled HSC policy, compiled here (not by name: another test caches a fake 'hsc')."""
    policy = Path(__file__).parents[1] / "policies" / "hsc.butler"
    result = butlerc.compile_policy(policy)
    path = tmp_path_factory.mktemp("hsc_bundled") / "hsc.py"
    path.write_text(result.modules["hsc"], encoding="utf-8")
    return load_mapper(path)


def test_free_text_that_splits_two_ways_belongs_to_one_data_id(hsc: Mapper) -> None:
    # '{description}-{style}': a/b-c and a-b/c both rendered plot-HSC-G-a-b-c.png
    path = hsc.path("plotSky", filter="HSC-G", description="a-b", style="c")
    assert hsc.parse("plotSky", path) == {"filter": "HSC-G", "description": "a-b", "style": "c"}
    with pytest.raises(InvalidDataIdError, match="reads back as description='a-b', style='c'"):
        hsc.path("plotSky", filter="HSC-G", description="a", style="b-c")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_accepted_data_id_renders_a_canonical_path_that_parses_back(
    hsc_fixture: Mapper, toycam: Mapper, hsc: Mapper, data: st.DataObject
) -> None:
    mapper, dataset_type = data.draw(
        st.sampled_from(
            [(hsc_fixture, name) for name in ("qa", "raw", "calexp", "deepCoadd")]
            + [(hsc, name) for name in ("plotSky", "plotCoadd")]
            + [(toycam, name) for name in ("focusSweep", "calexp", "bias", "coadd")]
        )
    )
    values = dict(data.draw(data_ids(mapper, dataset_type)))
    for key, value in values.items():  # what a hostile user might give instead
        if isinstance(value, str) and data.draw(st.booleans()):
            values[key] = data.draw(HOSTILE)
        elif isinstance(value, float) and data.draw(st.booleans()):
            values[key] = data.draw(st.floats(-2.0, 2.0))
    try:
        path = mapper.path(dataset_type, values)
    except InvalidDataIdError:
        return
    assert _canonical(path), path
    assert layout_problem(path) is None
    normalized = mapper.normalize(values)
    back = mapper.parse(dataset_type, path)
    assert {k: normalized[k] for k in back} == dict(back)


# ---- values a template does not write exactly ----------------------------------------------


def test_a_float_the_template_rounds_is_refused_at_put(toy: Butler) -> None:
    # {focus:.2f} wrote focus=0.121 as offset0.12.yaml; get(focus=0.12) then failed
    with pytest.raises(InvalidDataIdError, match=r"focus=0\.121.*'0\.12'.*focus=0\.12"):
        toy.put({"a": 1}, "focusSweep", visit=1, focus=0.121)
    assert files(toy.root) == []
    toy.put({"a": 1}, "focusSweep", visit=1, focus=0.12)
    assert toy.get("focusSweep", visit=1, focus=0.12) == {"a": 1}


def test_index_never_registers_a_path_already_recorded(toy: Butler) -> None:
    # a repository written before the fix: the record says focus=0.121, the path 0.12
    toy.put({"a": 1}, "focusSweep", visit=1, focus=0.5)
    file = toy.root / "focus/000001/offset0.12.yaml"
    file.write_text("a: 2\n", encoding="utf-8")
    record = {"visit": 1, "focus": 0.121}
    toy.registry.insert("focusSweep", record, "focus/000001/offset0.12.yaml")
    report = toy.index()
    assert sum(report.registered.values()) == 0 and report.known == 2
    assert toy.count("focusSweep") == 2
    assert not toy.exists("focusSweep", visit=1, focus=0.12)


# ---- links out of the repository -----------------------------------------------------------


def test_a_put_never_writes_through_a_folder_linked_outside(mini: Butler, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (mini.root / "notes").mkdir()
    (mini.root / "notes" / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RepositoryError, match="outside the repository"):
        mini.put({"a": 1}, "note", visit=1, label="evil")
    (mini.root / "notes" / "deep").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RepositoryError, match="outside the repository"):  # via a folder to make
        mini.put({"a": 1}, "note", visit=1, label="deep")
    assert list(outside.iterdir()) == []
    assert mini.count("note") == 0


def test_a_remove_never_deletes_through_a_folder_linked_outside(
    mini: Butler, tmp_path: Path
) -> None:
    mini.put({"a": 1}, "note", visit=1, label="x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "note-000001.yaml").write_text("precious: true\n", encoding="utf-8")
    folder = mini.root / "notes" / "x"
    (folder / "note-000001.yaml").unlink()
    folder.rmdir()
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(RepositoryError, match="outside the repository"):
        mini.remove("note", visit=1, label="x")
    assert (outside / "note-000001.yaml").read_text(encoding="utf-8") == "precious: true\n"
    assert mini.exists("note", visit=1, label="x")  # the record stays too


def test_a_dataset_file_that_is_a_link_is_read_and_only_the_link_removed(
    mini: Butler, tmp_path: Path
) -> None:
    # what `butler ingest --transfer symlink` leaves: the file itself links outside
    mini.put({"a": 1}, "note", visit=1, label="x")
    target = tmp_path / "kept.yaml"
    target.write_text("a: 2\n", encoding="utf-8")
    placed = mini.root / "notes" / "x" / "note-000001.yaml"
    placed.unlink()
    placed.symlink_to(target)
    assert mini.get("note", visit=1, label="x") == {"a": 2}
    mini.remove("note", visit=1, label="x")
    assert not placed.is_symlink() and target.read_text(encoding="utf-8") == "a: 2\n"


# ---- bad input gets a ButlerError --------------------------------------------------------------


def test_a_value_too_long_for_a_file_name_is_refused_naming_the_key(mini: Butler) -> None:
    # 300 bytes in one component raised OSError from the temporary's cleanup
    with pytest.raises(InvalidDataIdError, match=r"label=.*longer than 255 bytes"):
        mini.put({"a": 1}, "note", visit=1, label="x" * 300)
    with pytest.raises(InvalidDataIdError, match="label="):
        mini.put({"a": 1}, "note", visit=1, label="é" * 128)  # 256 bytes, 128 characters
    assert files(mini.root) == []
    mini.put({"a": 1}, "note", visit=1, label="x" * 250)
    assert mini.get("note", visit=1, label="x" * 250) == {"a": 1}


def test_layout_problem_checks_file_names_and_whole_paths() -> None:
    assert layout_problem("a/b.fits") is None
    assert "longer than" in str(layout_problem("a/" + "b" * 230 + ".fits"))  # no room for temp
    assert "longer than" in str(layout_problem("/".join(["d" * 200] * 20)))
    assert "empty" in str(layout_problem("a//b"))


def test_a_path_too_long_below_its_root_is_refused_before_any_system_call() -> None:
    storage = LocalStorage(Path("/nonexistent", *["d" * 250] * 17))
    with pytest.raises(InvalidDataIdError, match="too long"):
        storage.checked("notes/x/note-000001.yaml")


def test_nested_image_metadata_is_a_format_error_before_writing(mini: Butler) -> None:
    with pytest.raises(FormatError, match="'NESTED'"):
        Image(np.zeros((2, 2), "f4"), {"NESTED": {"a": 1}})
    image = Image(np.zeros((2, 2), "f4"), {"EXPTIME": 1.0})
    image.metadata["NESTED"] = [1, 2]  # type: ignore[index]  # the mapping is a plain dict
    with pytest.raises(FormatError, match=r"'image'.*'NESTED'"):
        mini.put(image, "image", visit=1, detector=1)
    assert files(mini.root) == [] and not mini.exists("image", visit=1, detector=1)


def test_a_put_of_the_wrong_python_type_is_refused_before_writing(mini: Butler) -> None:
    with pytest.raises(ObjectTypeError, match=r"str.*'note'.*dict") as raised:
        mini.put("not a dict", "note", visit=1, label="x")
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, FormatError)
    with pytest.raises(ObjectTypeError):
        mini.put_many("note", [({"a": 1}, {"visit": 1, "label": "x"}), ([1], {"visit": 2})])
    assert files(mini.root) == [] and mini.count("note") == 0
