"""Runs and versions: recorded per repository and per dataset; run records via get/put."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler.butler import Butler
from butler.cli import main
from butler.config import software_versions
from butler.errors import ButlerError, RepositoryError
from butler.provenance import select_repository

FOCUS = {"visit": 1, "focus": 0.5}


@pytest.fixture
def repo(tmp_path: Path, registries: RegistryFactory) -> Path:  # noqa: F811
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam", registry=registries()).close()
    return root


def test_every_dataset_records_its_run_and_versions(repo: Path) -> None:
    with Butler(repo) as butler:
        butler.put({"a": 1}, "focusSweep", run="calib-2024", **FOCUS)
        butler.put({"a": 2}, "focusSweep", visit=2, focus=0.5)  # the session run
        named = butler.provenance.of("focusSweep", **FOCUS)
        assert named.run == "calib-2024"
        assert named.versions == software_versions()
        assert named.repository == repo and named.path == "focus/000001/offset0.50.yaml"
        session = butler.provenance.of("focusSweep", visit=2, focus=0.5)
        assert session.run == butler.provenance.run and session.created is not None
        assert set(butler.provenance.runs()) == {"calib-2024", butler.provenance.run}
        written = butler.provenance.written_by()
        assert written["created_by"]["butler"] == software_versions()["butler"]
        assert written["runs"]["calib-2024"] == software_versions()


def test_provenance_through_a_chain(tmp_path: Path, registries: RegistryFactory) -> None:  # noqa: F811
    parent = tmp_path / "parent"
    with Butler.create(parent, mapper="toycam", registry=registries()) as butler:
        butler.put({"a": 1}, "focusSweep", run="old", **FOCUS)
    with Butler.create(
        tmp_path / "out", mapper="toycam", registry=registries(), parents=[parent]
    ) as out:
        found = out.provenance.of("focusSweep", **FOCUS)
        assert (found.repository, found.run) == (parent, "old")


def test_bad_run_name(repo: Path) -> None:
    with Butler(repo) as butler, pytest.raises(ButlerError, match="run name"):
        butler.put({"a": 1}, "focusSweep", run="../x", **FOCUS)


def test_run_configs_logs_and_versions_go_through_get_and_put(repo: Path) -> None:
    with Butler(repo) as butler:
        butler.provenance.run = "run1"
        butler.provenance.define_run_dataset_types()
        butler.put({"doWrite": True}, "run_config", {"run": "run1"})
        butler.put("step 1 done\n", "run_log", {"run": "run1"})
        assert butler.provenance.write_versions() == "run1"
    with Butler(repo) as butler:  # another open sees them
        assert butler.get("run_config", run="run1") == {"doWrite": True}
        assert butler.get("run_log", run="run1") == "step 1 done\n"
        assert butler.get("run_versions", run="run1") == software_versions()
        assert (repo / "_runs/run1/config.yaml").is_file()


def test_select_repository_by_version(tmp_path: Path) -> None:
    roots = []
    for name, version in (("v1", "0.1.0"), ("v2", "0.2.5"), ("v3", "0.3.0")):
        root = tmp_path / name
        Butler.create(root, mapper="toycam").close()
        config = yaml.safe_load((root / "butler.yaml").read_text())
        config["created_by"]["butler"] = version
        (root / "butler.yaml").write_text(yaml.safe_dump(config))
        roots.append(root)
    assert select_repository(roots, "butler>=0.2,<0.3") == roots[1]
    assert select_repository(roots, "butler>=0.2") == roots[2]
    assert select_repository(roots, "butler==0.1") == roots[0]
    with pytest.raises(RepositoryError, match="no repository meets"):
        select_repository(roots, "butler>=1.0")
    with pytest.raises(ButlerError, match="not PACKAGE OP VERSION"):
        select_repository(roots, "butler")


def test_select_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "r"
    Butler.create(root, mapper="toycam").close()
    assert main(["select", "--version", "butler>=0.0.1", str(root)]) == 0
    assert capsys.readouterr().out.strip() == str(root)
    assert main(["select", "--version", "butler>=99", str(root)]) == 2
