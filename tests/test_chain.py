"""Chains of repositories: find-first reads, writes to the output only, errors at open.

Every test runs on SQLite and on PostgreSQL (each repository its own registry).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler.butler import Butler
from butler.chain import mark_read_only
from butler.errors import ChainError, DatasetNotFoundError, ReadOnlyError

FOCUS = {"focus": 0.5}


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of the repository's config and SQLite registry file (if any)."""
    result = {}
    for name in ("butler.yaml", "registry.sqlite3"):
        path = root / name
        if path.exists():
            result[name] = (path.read_bytes(), path.stat().st_mtime_ns)
    return result


@pytest.fixture
def chain3(tmp_path: Path, registries: RegistryFactory) -> Path:  # noqa: F811
    """base (read-only) <- middle <- (the caller creates the output on top of middle)."""
    base = tmp_path / "base"
    with Butler.create(base, mapper="toycam", registry=registries()) as butler:
        butler.put({"from": "base"}, "focusSweep", visit=1, **FOCUS)
        butler.put({"from": "base"}, "focusSweep", visit=2, **FOCUS)
        butler.put({"from": "base"}, "focusSweep", visit=3, **FOCUS)
    mark_read_only(base)
    middle = tmp_path / "middle"
    with Butler.create(middle, mapper="toycam", registry=registries(), parents=[base]) as butler:
        butler.put({"from": "middle"}, "focusSweep", visit=2, **FOCUS)
        butler.put({"from": "middle"}, "focusSweep", visit=4, **FOCUS)
    out = tmp_path / "out"
    Butler.create(out, mapper="toycam", registry=registries(), parents=[middle]).close()
    return out


def test_three_repositories_find_first(chain3: Path) -> None:
    with Butler(chain3) as out:
        out.put({"from": "out"}, "focusSweep", visit=3, **FOCUS)
        assert out.get("focusSweep", visit=1, **FOCUS) == {"from": "base"}
        assert out.get("focusSweep", visit=2, **FOCUS) == {"from": "middle"}
        assert out.get("focusSweep", visit=3, **FOCUS) == {"from": "out"}
        assert out.get("focusSweep", visit=4, **FOCUS) == {"from": "middle"}
        assert out.exists("focusSweep", visit=1, **FOCUS)
        assert not out.exists("focusSweep", visit=9, **FOCUS)
        # a partial data ID is completed in the first repository that has a match
        assert out.get("focusSweep", visit=1) == {"from": "base"}
        assert [p.root.name for p in out.chain.parents] == ["middle", "base"]


def test_not_found_names_every_repository_searched(chain3: Path) -> None:
    with Butler(chain3) as out, pytest.raises(DatasetNotFoundError) as error:
        out.get("focusSweep", visit=9, **FOCUS)
    message = str(error.value)
    for name in ("out", "middle", "base"):
        assert str(chain3.parent / name) in message


def test_query_merges_without_duplicates(chain3: Path) -> None:
    with Butler(chain3) as out:
        out.put({"from": "out"}, "focusSweep", visit=3, **FOCUS)
        out.put({"from": "out"}, "focusSweep", visit=5, **FOCUS)
        visits = [d["visit"] for d in out.query("focusSweep")]
        assert sorted(visits) == [1, 2, 3, 4, 5]
        assert len(visits) == len(set(visits))
        assert out.count("focusSweep") == 5
        assert out.query_values("focusSweep", "visit") == [1, 2, 3, 4, 5]
        assert out.count("focusSweep", visit=2) == 1


def test_uri_and_explain_say_which_repository_answered(chain3: Path) -> None:
    base, middle = chain3.parent / "base", chain3.parent / "middle"
    with Butler(chain3) as out:
        assert out.uri("focusSweep", visit=1, **FOCUS).startswith(base.as_uri() + "/")
        assert out.uri("focusSweep", visit=2, **FOCUS).startswith(middle.as_uri() + "/")
        # not stored anywhere: where a put would write it, in the output
        assert out.uri("focusSweep", visit=7, **FOCUS).startswith(chain3.as_uri() + "/")
        text = out.explain("focusSweep", visit=1, **FOCUS)
        # a parent is named by its root and the dataset by the parent's URI of it
        uri = (base / "focus/000001/offset0.50.yaml").as_uri()
        assert f"stored in parent repository {base} at {uri!r}" in text
        out.put({"from": "out"}, "focusSweep", visit=1, **FOCUS)
        assert f"stored in repository {chain3} at" in out.explain("focusSweep", visit=1, **FOCUS)


def test_writes_go_to_the_output_and_parents_are_untouched(chain3: Path) -> None:
    base, middle = chain3.parent / "base", chain3.parent / "middle"
    before = {root: _snapshot(root) for root in (base, middle)}
    files_before = sorted(p.relative_to(base) for p in base.rglob("*") if p.is_file())
    with Butler(chain3) as out:
        out.put({"from": "out"}, "focusSweep", visit=1, **FOCUS)  # shadows base's
        assert out.get("focusSweep", visit=1, **FOCUS) == {"from": "out"}
        with pytest.raises(ReadOnlyError, match="parent repository"):
            out.remove("focusSweep", visit=2, **FOCUS)
        out.register_dataset_type(
            "myCat", template="mycat/{visit:06d}.yaml", format="yaml", keys=["visit"]
        )
    assert (chain3 / "focus/000001/offset0.50.yaml").is_file()
    for root in (base, middle):
        assert _snapshot(root) == before[root]
    assert sorted(p.relative_to(base) for p in base.rglob("*") if p.is_file()) == files_before


def test_write_into_read_only_parent_is_refused(chain3: Path) -> None:
    base = chain3.parent / "base"
    before = _snapshot(base)
    with Butler(base) as parent:
        assert not parent.writeable
        with pytest.raises(ReadOnlyError, match="read_only"):
            parent.put({"from": "intruder"}, "focusSweep", visit=8, **FOCUS)
        with pytest.raises(ReadOnlyError):
            parent.register_dataset_type(
                "x", template="x/{visit:06d}.yaml", format="yaml", keys=["visit"]
            )
        assert not parent.exists("focusSweep", visit=8, **FOCUS)
    assert _snapshot(base) == before


def test_parent_cycle_is_an_error_at_open(chain3: Path) -> None:
    base = chain3.parent / "base"
    config = yaml.safe_load((base / "butler.yaml").read_text())
    config["parents"] = [str(chain3)]
    (base / "butler.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ChainError, match="cycle") as error:
        Butler(chain3)
    assert str(base) in str(error.value)


def test_missing_parent_is_an_error_at_open(chain3: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((chain3 / "butler.yaml").read_text())
    config["parents"] = [str(tmp_path / "nowhere")]
    (chain3 / "butler.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ChainError, match="nowhere"):
        Butler(chain3)
    with pytest.raises(ChainError, match="nowhere"):
        Butler.create(tmp_path / "new", mapper="toycam", parents=[tmp_path / "nowhere"])
    assert not (tmp_path / "new" / "butler.yaml").exists()


def test_incompatible_mapper_is_an_error_at_open(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    other = tmp_path / "mini"
    policy = Path(__file__).parent / "fixtures" / "butler" / "minicam_fits.butler"
    import butlerc

    module = tmp_path / "minicam.py"
    module.write_text(butlerc.compile_policy(policy).modules["minicam"], encoding="utf-8")
    Butler.create(other, mapper=str(module), registry=registries()).close()
    with pytest.raises(ChainError, match="instrument MiniCam, not ToyCam"):
        Butler.create(tmp_path / "out", mapper="toycam", registry=registries(), parents=[other])
    assert not (tmp_path / "out" / "butler.yaml").exists()


def test_parent_opened_with_its_own_mapper(chain3: Path, tmp_path: Path) -> None:
    """A parent listed with a mapper is read with that mapper, not the child's."""
    base = chain3.parent / "base"
    config = yaml.safe_load((chain3 / "butler.yaml").read_text())
    config["parents"] = [{"root": os.path.relpath(base, chain3), "mapper": "toycam"}]
    (chain3 / "butler.yaml").write_text(yaml.safe_dump(config))
    with Butler(chain3) as out:
        assert out.get("focusSweep", visit=2, **FOCUS) == {"from": "base"}
        assert [p.root for p in out.chain.parents] == [base]


def test_cli_create_with_parents_and_explain(
    chain3: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from butler.cli import main

    assert (
        main(["create", str(tmp_path / "cli"), "--mapper", "toycam", "--parent", str(chain3)]) == 0
    )
    assert f"parent: {chain3}" in capsys.readouterr().out
    root = str(tmp_path / "cli")
    assert main(["explain", root, "focusSweep", "visit=1", "focus=0.5"]) == 0
    assert "stored in parent repository" in capsys.readouterr().out
    assert main(["query", root, "focusSweep", "--count"]) == 0
    assert capsys.readouterr().out.strip() == "4"


def test_an_own_record_of_a_file_under_a_parent_root_stays_this_repositorys(
    chain3: Path,
) -> None:
    # Gen2 imports record files left in place by absolute path; one of them may lie under
    # a parent's root. The answer comes from this repository, not from its path's prefix.
    middle = chain3.parent / "middle"
    left_in_place = middle / "gen2" / "focus.yaml"
    left_in_place.parent.mkdir()
    left_in_place.write_text("from: gen2\n", encoding="utf-8")
    with Butler(chain3) as out:
        out.registry.register_dataset_type("focusSweep", out.mapper.keys("focusSweep"))
        out.registry.insert("focusSweep", {"visit": 7, "focus": 0.5}, str(left_in_place))
        assert out.get("focusSweep", visit=7, focus=0.5) == {"from": "gen2"}
        assert f"stored in repository {chain3} at" in out.explain("focusSweep", visit=7, focus=0.5)
        out.remove("focusSweep", visit=7, focus=0.5)  # not refused as a parent's dataset
        assert not out.exists("focusSweep", visit=7, focus=0.5)
        assert left_in_place.exists()  # another tool's file is left where it is
