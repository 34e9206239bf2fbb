"""Import cost: the heavy libraries load when a dataset needs them, not with the runtime.

Each test runs a fresh interpreter (modules already imported by pytest would hide
an eager import) and checks ``sys.modules``; none measures time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import butlerc
import pytest
from butler.butler import Butler

POLICY = Path(__file__).parent / "fixtures" / "butler" / "minicam_fits.butler"

#: Libraries only reading or writing a file of their format needs.
FORMAT_LIBRARIES = ("numpy", "astropy", "h5py")

#: Only validating a ``butler.yaml`` needs jsonschema.
HEAVY = (*FORMAT_LIBRARIES, "jsonschema")


@pytest.fixture(scope="module")
def mapper_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated module of MiniCam, whose ``image`` dataset type is stored as FITS."""
    result = butlerc.compile_policy(POLICY)
    assert not result.diagnostics, [str(d) for d in result.diagnostics]
    path = tmp_path_factory.mktemp("imports") / "minicam.py"
    path.write_text(result.modules["minicam"], encoding="utf-8")
    return path


def imported(code: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` (packages) a fresh interpreter has imported after ``code``."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps([
            name for name in {candidates!r}
            if any(m == name or m.startswith(name + ".") for m in sys.modules)
        ]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_runtime_and_a_mapper_import_no_heavy_library(mapper_path: Path) -> None:
    code = f"""
        import butler.butler
        from butler.loading import load_mapper
        load_mapper({str(mapper_path)!r})
    """
    assert imported(code, HEAVY) == []


def test_opening_a_repository_imports_no_format_library(mapper_path: Path, tmp_path: Path) -> None:
    Butler.create(tmp_path / "repo", mapper=mapper_path).close()
    code = f"""
        from butler.butler import Butler
        Butler({str(tmp_path / "repo")!r}).close()
    """
    assert imported(code, FORMAT_LIBRARIES) == []


#: What only a repository in object storage (or served over HTTP) needs: the client
#: libraries and the back-ends' own modules (issue 13: back-ends load when opened).
REMOTE = (
    "boto3",
    "botocore",
    "fsspec",
    "httpx",
    "butler.objectstore",
    "butler.datastore.s3",
    "butler.datastore.memory",
    "butler.remote",
)


def test_a_local_repository_never_loads_the_other_back_ends(
    mapper_path: Path, tmp_path: Path
) -> None:
    """Create, open, put, get, query and remove on a local repository: nothing of the S3,
    in-memory or remote back-ends, nor their client libraries, is imported."""
    code = f"""
        from butler.butler import Butler
        from butler.loading import load_mapper
        load_mapper({str(mapper_path)!r})
        Butler.create({str(tmp_path / "repo")!r}, mapper={str(mapper_path)!r}).close()
        with Butler({str(tmp_path / "repo")!r}) as butler:
            ref = butler.put({{"seeing": 0.7}}, "note", visit=1, label="a")
            assert butler.get(ref) == butler.get("note", visit=1, label="a")
            assert [r.data_id for r in butler.query_datasets("note")] == [ref.data_id]
            butler.remove("note", visit=1, label="a")
    """
    assert imported(code, REMOTE) == []


def test_opening_an_s3_url_loads_its_back_end(tmp_path: Path) -> None:
    """The other side of the test above: the S3 back-end loads when an s3:// root is
    opened. Without credentials (none in this interpreter's environment or files) the
    open is refused before anything goes over the network."""
    code = f"""
        import os
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
        os.environ["AWS_CONFIG_FILE"] = {str(tmp_path / "config")!r}
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = {str(tmp_path / "credentials")!r}
        from butler.butler import Butler
        from butler.errors import ButlerError
        try:
            Butler("s3://no-such-bucket-for-butler-tests/repo")
        except ButlerError:
            pass
    """
    assert "butler.datastore.s3" in imported(code, REMOTE)


def test_import_butler_loads_neither_the_butler_nor_its_libraries() -> None:
    code = """
        import butler
        assert butler.DataId(visit=1)["visit"] == 1 and butler.errors.ButlerError
    """
    assert imported(code, ("butler.butler", "butler.registry", "sqlalchemy", *HEAVY)) == []


def test_public_names_import_from_the_package_on_first_use() -> None:
    code = """
        import sys
        from butler import Butler
        import butler.butler
        assert Butler is butler.butler.Butler
        assert "astropy" not in sys.modules
    """
    assert imported(code, ("sqlalchemy",)) == ["sqlalchemy"]


def test_every_public_name_resolves() -> None:
    import butler

    for name in butler.__all__:
        assert getattr(butler, name) is not None, name
    assert set(butler.__all__) <= set(dir(butler))
    with pytest.raises(AttributeError, match="no attribute 'Buttler'"):
        _ = butler.Buttler  # type: ignore[attr-defined]


def test_boxes_need_no_numpy() -> None:
    code = """
        from butler.formatters import BBox
        assert BBox(x0=1, y0=2, x1=3, y1=4).slices == (slice(2, 4), slice(1, 3))
    """
    assert imported(code, ("numpy",)) == []


def test_the_fits_formatter_imports_its_libraries_when_used() -> None:
    code = """
        from butler.formatters import FormatterRegistry
        FormatterRegistry.default().get("fits")
    """
    assert imported(code, ("numpy", "astropy")) == ["numpy", "astropy"]


def test_every_error_class_is_public() -> None:
    """Each error a user can meet is importable from ``butler`` by its own name."""
    import butler
    from butler import errors

    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.ButlerError)
    }
    assert defined <= set(errors.__all__)
    assert all(getattr(butler, name) is getattr(errors, name) for name in defined)
