"""Errors from a served repository never name the server's paths (issue 16), against a real
``butler serve`` process: each kind of error is provoked, and its message names what was
asked and what would fix it, with the repository's name where the server's folder was."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _remote import Served, serve_with_tokens
from butler import Butler
from butler.chain import mark_read_only
from butler.errors import (
    DatasetCorruptError,
    DatasetExistsError,
    DatasetNotFoundError,
    ForeignRefError,
    FormatError,
    InvalidDataIdError,
    ReadOnlyError,
)
from butler.remote.redact import SERVER_PATH, Redaction
from butler.remote.tokens import create_token

FOCUS = {"focus": 0.5}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("redact")
    root, frozen = base / "toy", base / "frozen"
    Butler.create(root, mapper="toycam").close()
    Butler.create(frozen, mapper="toycam").close()
    mark_read_only(frozen)
    yield from serve_with_tokens(root, frozen)


@pytest.fixture
def remote(served: Served) -> Iterator[Butler]:
    with served.client() as butler:
        yield butler


def _clean(served: Served, error: BaseException | str) -> str:
    """The message, checked: no server path in it."""
    message = str(error)
    for path in (str(served.root.parent), tempfile.gettempdir() + "/"):
        assert path not in message, message
    return message


def _visit() -> int:
    return uuid.uuid4().int % 900_000 + 1


def test_not_found_names_the_repository_not_its_folder(remote: Butler, served: Served) -> None:
    visit = _visit()
    with pytest.raises(DatasetNotFoundError) as caught:
        remote.get("focusSweep", visit=visit, **FOCUS)
    message = _clean(served, caught.value)
    assert "'focusSweep'" in message and f"visit: {visit}" in message
    assert "in repository toy" in message and "searched registry toy" in message
    foreign = f"butler:{uuid.uuid4()}/{uuid.uuid4()}"
    with pytest.raises(ForeignRefError) as caught:
        remote.get_ref(foreign)
    assert "registry toy" in _clean(served, caught.value)


def test_exists_invalid_and_read_only(remote: Butler, served: Served) -> None:
    visit = _visit()
    remote.put({"n": 1}, "focusSweep", visit=visit, **FOCUS)
    with pytest.raises(DatasetExistsError) as caught:
        remote.put({"n": 2}, "focusSweep", visit=visit, **FOCUS)
    assert f"visit: {visit}" in _clean(served, caught.value)
    with pytest.raises(DatasetExistsError) as caught, remote.transaction():
        remote.put({"n": 2}, "focusSweep", visit=visit, **FOCUS)
    assert "overwrite" in _clean(served, caught.value)
    with pytest.raises(InvalidDataIdError) as caught:
        remote.put({"n": 1}, "focusSweep", visit=-5, **FOCUS)
    assert "visit" in _clean(served, caught.value)
    token = create_token(served.root.parent / "frozen", "write")
    with (
        Butler(served.server.url("frozen"), token=token) as frozen,
        pytest.raises(ReadOnlyError) as caught,
    ):
        frozen.put({"n": 1}, "focusSweep", visit=visit, **FOCUS)
    message = _clean(served, caught.value)
    assert "repository frozen is read-only" in message and "read_only" in message


def _stored_file(served: Served, remote: Butler, visit: int) -> Path:
    remote.put({"n": list(range(50))}, "focusSweep", visit=visit, **FOCUS)
    return served.root / f"focus/{visit:06d}/offset0.50.yaml"


def test_damaged_files_say_to_run_verify_on_the_named_repository(
    remote: Butler, served: Served
) -> None:
    corrupt, truncated, missing = _visit(), _visit(), _visit()
    path = _stored_file(served, remote, corrupt)
    path.write_bytes(b"\x00{[" * (path.stat().st_size // 3) + b"]" * (path.stat().st_size % 3))
    with pytest.raises(FormatError) as caught:
        remote.get_metadata("focusSweep", visit=corrupt, **FOCUS)
    message = _clean(served, caught.value)
    assert f"visit: {corrupt}" in message and "`butler verify toy --read`" in message

    path = _stored_file(served, remote, truncated)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DatasetCorruptError) as caught:
        remote.get_metadata("focusSweep", visit=truncated, **FOCUS)
    message = _clean(served, caught.value)
    assert f"'toy/focus/{truncated:06d}/offset0.50.yaml'" in message
    assert "`butler verify toy --read`" in message
    with pytest.raises(DatasetCorruptError) as caught:
        remote.get("focusSweep", visit=truncated, **FOCUS)
    message = _clean(served, caught.value)
    assert str(truncated) in message and "`butler verify toy --read`" in message

    _stored_file(served, remote, missing).unlink()
    with pytest.raises(DatasetNotFoundError) as caught:
        remote.get_metadata("focusSweep", visit=missing, **FOCUS)
    message = _clean(served, caught.value)
    assert "the file is missing" in message and "`butler verify toy`" in message


def test_an_upload_that_does_not_read_names_no_temporary_file(served: Served) -> None:
    meta = {"dataset_type": "src", "data_ids": [{"visit": 1, "detector": 2}], "sizes": [5]}
    body = json.dumps(meta).encode() + b"\n" + b"12345"
    answer = httpx.post(
        f"{served.url}/v1/put",
        content=body,
        headers={"Authorization": f"Bearer {served.write}"},
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["type"] == "FormatError"
    message = _clean(served, error["message"])
    assert "'src'" in message and "nothing was stored" in message


def test_datalink_fault_rows_name_no_server_path(served: Served) -> None:
    foreign = f"butler:{uuid.uuid4()}/{uuid.uuid4()}"
    answer = httpx.get(
        f"{served.url}/datalink",
        params={"ID": foreign},
        headers={"Authorization": f"Bearer {served.write}"},
    )
    assert "Fault" in answer.text
    _clean(served, answer.text)


def test_the_redaction_itself() -> None:
    redaction = Redaction.of(
        [("hsc", "/data/hsc"), ("rerun", "/data/hsc/rerun")],
        [("hsc", "sqlite:////data/hsc/registry.sqlite3")],
    )
    text = redaction.text(
        "in repository /data/hsc (registry sqlite:////data/hsc/registry.sqlite3), then "
        "/data/hsc/rerun; file:///data/hsc/a.fits; /tmp/upload-1/0; HDF5 /images/data; "
        "visit / 2; http://host/repos/hsc/v1/get; ~/secret"
    )
    assert text == (
        "in repository hsc (registry hsc), then rerun; hsc/a.fits; "
        f"{SERVER_PATH}; HDF5 /images/data; visit / 2; http://host/repos/hsc/v1/get; {SERVER_PATH}"
    )
