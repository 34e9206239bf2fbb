"""URLs no storage back-end serves are refused, never turned into local folders (issue 13)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from butler import Butler
from butler.errors import RepositoryError


@pytest.mark.parametrize("url", ["gs://bucket/repo", "ftp://host/repo"])
def test_a_url_scheme_without_a_back_end_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    scheme = url.split(":", 1)[0]
    with pytest.raises(RepositoryError, match=rf"no storage back-end serves {scheme}://"):
        Butler.create(url, mapper="toycam")
    with pytest.raises(RepositoryError, match=rf"no storage back-end serves {scheme}://"):
        Butler(url)
    assert os.listdir(tmp_path) == []  # no folder named "gs:" or "ftp:"


def test_an_http_url_is_a_served_repository_which_create_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _remote import free_port
    from butler.errors import RemoteError

    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{free_port()}/repos/nothing"
    with pytest.raises(RepositoryError, match="serve it with `butler serve ROOT`"):
        Butler.create(url, mapper="toycam")
    with pytest.raises(RemoteError, match=f"cannot reach the Butler server at {url}"):
        Butler(url)  # a client, of a server that is not there
    with pytest.raises(RepositoryError, match="token= is for a remote repository"):
        Butler(tmp_path, token="bt_x")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("registry", ["sqlite:///:memory:", "sqlite://"])
def test_an_in_memory_registry_is_refused_for_a_repository_on_disk(
    tmp_path: Path, registry: str
) -> None:
    with pytest.raises(RepositoryError, match="in-memory SQLite database"):
        Butler.create(tmp_path / "repo", mapper="toycam", registry=registry)
    assert not (tmp_path / "repo").exists()
    assert not Path(":memory:").exists()
