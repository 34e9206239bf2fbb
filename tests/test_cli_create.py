"""``butler create`` and ``Butler.create``: a repository, or nothing and a message that says why.

Each test runs on the default SQLite registry and on PostgreSQL (``registries``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler import Butler
from butler.cli import main
from butler.errors import RepositoryError


def create(root: Path, registry: str | None) -> int:
    argv = ["create", str(root), "--mapper", "toycam"]
    return main([*argv, "--registry", registry] if registry else argv)


def test_create_on_a_repository_says_how_to_use_it(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert create(tmp_path / "repo", registries()) == 0
    capsys.readouterr()
    assert create(tmp_path / "repo", None) == 2
    error = capsys.readouterr().err
    assert "is already a Butler repository" in error
    assert f"`butler COMMAND {tmp_path / 'repo'}`" in error  # in command-line terms too


def test_a_registry_in_use_is_refused_in_command_line_terms_and_nothing_is_left(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry = registries()
    assert create(tmp_path / "first", registry) == 0
    if registry is None:  # the first repository's SQLite file, named by URL
        registry = f"sqlite:///{tmp_path / 'first' / 'registry.sqlite3'}"
    capsys.readouterr()
    assert create(tmp_path / "new" / "second", registry) == 2
    error = capsys.readouterr().err
    assert "already holds a Butler registry" in error
    assert "--registry URL" in error
    assert "exist_ok" not in error  # not an option of the command line, nor of Butler.create
    assert not (tmp_path / "new").exists()  # not even the folders it made
    with Butler(tmp_path / "first") as first:  # and the registry it found is untouched
        assert first.mapper.name == "ToyCam"


def test_a_failed_create_in_an_existing_folder_removes_only_what_it_made(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    registry = registries()
    Butler.create(tmp_path / "first", mapper="toycam", registry=registry).close()
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    url = registry or f"sqlite:///{tmp_path / 'first' / 'registry.sqlite3'}"
    with pytest.raises(RepositoryError, match="already holds a Butler registry"):
        Butler.create(folder, mapper="toycam", registry=url)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_create_that_cannot_reach_its_registry_leaves_no_folder(tmp_path: Path) -> None:
    bad = "postgresql+psycopg://no_such_user_butler@127.0.0.1:5432/no_such_database"
    assert create(tmp_path / "repo", bad) == 2
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_folder_should_be_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "repo").write_text("a file\n")
    assert create(tmp_path / "repo", None) == 2
    assert f"cannot create the folder {tmp_path / 'repo'}" in capsys.readouterr().err
    assert (tmp_path / "repo").read_text() == "a file\n"


def test_an_emptied_registry_is_a_damaged_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam").close()
    for name in ("registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"):
        (root / name).unlink(missing_ok=True)
    (root / "registry.sqlite3").write_bytes(b"")
    assert main(["query", str(root), "raw"]) == 2
    error = capsys.readouterr().err
    assert f"the repository at {root} is damaged" in error
    assert f"butler verify {root}" in error
    assert "Registry.create" not in error  # it is not a new repository
    with pytest.raises(RepositoryError, match="is damaged"):
        Butler(root)
