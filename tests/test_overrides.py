"""Overrides of policy settings: repository, environment, command line; validated, explained."""

from __future__ import annotations

from pathlib import Path

import pytest
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler.butler import Butler
from butler.cli import main
from butler.errors import OverrideError
from butler.overrides import ENVIRONMENT_VARIABLE

FOCUS = {"visit": 1, "focus": 0.5}


@pytest.fixture
def repo(tmp_path: Path, registries: RegistryFactory) -> Path:  # noqa: F811
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam", registry=registries()).close()
    return root


def test_command_line_override_changes_the_format_and_explain_shows_it(repo: Path) -> None:
    with Butler(repo, config=["datasets.focusSweep.format=json"]) as butler:
        assert butler.mapper.dataset_type("focusSweep").format == "json"
        butler.put({"a": 1}, "focusSweep", **FOCUS)
        text = butler.explain("focusSweep", **FOCUS)
        assert "override: datasets.focusSweep.format=json (from --config)" in text
    with Butler(repo, config=["datasets.focusSweep.format=json"]) as butler:
        assert butler.get("focusSweep", **FOCUS) == {"a": 1}


def test_template_override_is_checked_for_collisions(repo: Path) -> None:
    with pytest.raises(OverrideError) as error:
        Butler(repo, config=["datasets.focusSweep.template=src/{visit:06d}/src-{visit:06d}-01.h5"])
    assert "datasets.focusSweep.template" in str(error.value)
    with Butler(repo, config=["datasets.focusSweep.template=f2/{visit:06d}/{focus:.3f}.yaml"]) as b:
        assert b.mapper.path("focusSweep", **FOCUS) == "f2/000001/0.500.yaml"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("datasets.focusSweep.format=jsn", r"BC003.*did you mean 'json'"),
        ("datasets.focusSweep.template=x/{vist}.yaml", r"BC002.*did you mean 'visit'"),
        ("datasets.focusSwep.format=json", "did you mean 'focusSweep'"),
        ("datasets.focusSweep.fromat=json", "did you mean 'format'"),
        ("focusSweep.format=json", "datasets.DATASET_TYPE.SETTING"),
        ("datasets.focusSweep.format", "not KEY=VALUE"),
    ],
)
def test_invalid_overrides_are_clear_errors(repo: Path, item: str, expected: str) -> None:
    with pytest.raises(OverrideError, match=f"(?s){expected}"):
        Butler(repo, config=[item])


def test_environment_variable(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "datasets.focusSweep.format=json")
    with Butler(repo) as butler:
        assert butler.mapper.dataset_type("focusSweep").format == "json"
        assert "(from $BUTLER_CONFIG)" in butler.explain("focusSweep", **FOCUS)
    with Butler(repo, config=[]) as butler:  # an explicit session config replaces the environment
        assert butler.mapper.dataset_type("focusSweep").format == "yaml"
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "datasets.focusSweep.format=nope")
    with pytest.raises(OverrideError, match=r"\$BUTLER_CONFIG"):
        Butler(repo)


def test_repository_overrides(tmp_path: Path, registries: RegistryFactory) -> None:  # noqa: F811
    root = tmp_path / "repo"
    with Butler.create(
        root,
        mapper="toycam",
        registry=registries(),
        overrides={"datasets.focusSweep.format": "json"},
    ) as butler:
        assert butler.mapper.dataset_type("focusSweep").format == "json"
        assert "the repository's butler.yaml" in butler.explain("focusSweep", **FOCUS)
    # the command line wins over the repository
    with Butler(root, config=["datasets.focusSweep.format=yaml"]) as butler:
        assert butler.mapper.dataset_type("focusSweep").format == "yaml"
    with pytest.raises(OverrideError):
        Butler.create(tmp_path / "bad", mapper="toycam", overrides={"datasets.x.format": "json"})
    assert not (tmp_path / "bad" / "butler.yaml").exists()


def test_session_overrides_do_not_apply_to_parents(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    parent = tmp_path / "parent"
    with Butler.create(parent, mapper="toycam", registry=registries()) as butler:
        butler.put({"from": "parent"}, "focusSweep", **FOCUS)
    Butler.create(
        tmp_path / "out", mapper="toycam", registry=registries(), parents=[parent]
    ).close()
    with Butler(tmp_path / "out", config=["datasets.focusSweep.format=json"]) as out:
        assert out.get("focusSweep", **FOCUS) == {"from": "parent"}  # read as the parent wrote it
        out.put({"from": "out"}, "focusSweep", visit=2, focus=0.5)
        assert out.get("focusSweep", visit=2, focus=0.5) == {"from": "out"}


def test_cli_config_option(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "--config",
            "datasets.focusSweep.format=json",
            "explain",
            str(repo),
            "focusSweep",
            "visit=1",
            "focus=0.5",
        ]
    )
    assert status == 0
    assert "override: datasets.focusSweep.format=json (from --config)" in capsys.readouterr().out
    assert main(["--config", "datasets.focusSweep.format=jsn", "query", str(repo), "raw"]) == 2
    assert "BC003" in capsys.readouterr().err
