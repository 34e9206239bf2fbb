"""The remote Butler (issue 16) against a real ``butler serve`` process on 127.0.0.1.

What a user of ``Butler("http://...")`` relies on beyond the behaviour suite
(tests/test_backends.py runs that remote too): every format round-trips, errors arrive
as their own classes with the server's message, sections and metadata read only what
they need, queries stream, tokens gate reads and writes, a retried write is done once,
a server that is down is named.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from _remote import Server, free_port
from astropy.table import Table
from butler import Butler, DatasetRef, Image
from butler.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    ForeignRefError,
    InvalidDataIdError,
    InvalidQueryError,
    ReadOnlyError,
    RemoteError,
    UnknownDatasetTypeError,
)
from butler.image import BBox
from butler.remote.tokens import TOKEN_FILE, create_token

FOCUS = {"focus": 0.5}


class Served:
    def __init__(self, root: Path, server: Server, write: str, read: str) -> None:
        self.root, self.server, self.write, self.read = root, server, write, read
        self.url = server.url(root.name)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("remote") / "toy"
    Butler.create(root, mapper="toycam").close()
    write, read = create_token(root, "write"), create_token(root, "read")
    server = Server(root, options=("--max-upload", str(4 << 20)))
    try:
        yield Served(root, server, write, read)
    finally:
        server.stop()


@pytest.fixture
def remote(served: Served) -> Iterator[Butler]:
    with Butler(served.url, token=served.write) as butler:
        yield butler


def _visit() -> int:
    return uuid.uuid4().int % 900_000 + 1


def test_butler_of_a_url_is_a_client_with_the_local_api(remote: Butler, served: Served) -> None:
    local = Butler(served.root, writeable=False)
    try:
        assert remote.dataset_types == local.dataset_types
        assert remote.repository_id == local.repository_id
    finally:
        local.close()


def test_every_format_round_trips_and_refs_work_over_the_wire(remote: Butler) -> None:
    visit = _visit()
    table = Table({"id": np.arange(3), "flux": np.array([1.0, 2.5, 3.0])})
    image = Image(np.arange(12, dtype="f4").reshape(3, 4), {"EXPTIME": 30.0})
    refs = [
        remote.put({"n": [1, 2]}, "focusSweep", visit=visit, **FOCUS),
        remote.put(table, "src", visit=visit, detector=2),
        remote.put(image, "bias", calibDate=datetime.date(2024, 3, visit % 28 + 1), detector=3),
    ]
    assert remote.get(refs[0]) == {"n": [1, 2]}
    got_table = remote.get("src", visit=visit, detector=2)
    assert got_table["flux"].tolist() == [1.0, 2.5, 3.0]
    got_image = remote.get(refs[2])
    assert got_image.array.tolist() == image.array.tolist()
    assert got_image.metadata["EXPTIME"] == 30.0
    for ref in refs:
        assert isinstance(ref, DatasetRef)
        assert remote.get_ref(str(ref)) == ref
        assert remote.exists(ref)
    found = list(remote.query_datasets("focusSweep", visit=visit))
    assert found == [refs[0]]


def test_metadata_and_a_section_read_only_what_is_asked(remote: Butler) -> None:
    pixels = np.arange(10_000, dtype="f4").reshape(100, 100)
    day = datetime.date(2023, 1, _visit() % 28 + 1)
    remote.put(Image(pixels, {"GAIN": 1.5}), "bias", calibDate=day, detector=4)
    assert remote.get_metadata("bias", calibDate=day, detector=4)["GAIN"] == 1.5
    section = remote.get_section("bias", BBox(10, 20, 13, 22), calibDate=day, detector=4)
    assert section.tolist() == pixels[20:22, 10:13].tolist()


def test_errors_arrive_as_their_own_class_with_the_servers_message(
    remote: Butler, served: Served
) -> None:
    visit = _visit()
    with pytest.raises(DatasetNotFoundError, match=f"visit: {visit}"):
        remote.get("focusSweep", visit=visit, **FOCUS)
    with pytest.raises(UnknownDatasetTypeError, match="nosuch"):
        remote.get("nosuch", visit=1)
    with pytest.raises(InvalidDataIdError, match="visit"):
        remote.put({"n": 1}, "focusSweep", visit=-5, **FOCUS)
    remote.put({"n": 1}, "focusSweep", visit=visit, **FOCUS)
    with pytest.raises(DatasetExistsError):
        remote.put({"n": 2}, "focusSweep", visit=visit, **FOCUS)
    with pytest.raises(InvalidQueryError) as caught:
        list(remote.query("focusSweep", where="visitt > 3"))
    assert caught.value.expression == "visitt > 3" and caught.value.start == 0
    stale = remote.put({"n": 3}, "focusSweep", visit=visit, **FOCUS, overwrite=True)
    remote.remove(stale)
    with pytest.raises(DatasetNotFoundError, match=r"stale|no dataset"):
        remote.get(stale)
    assert not remote.exists(stale)
    foreign = DatasetRef("focusSweep", stale.data_id, stale.id, None, str(uuid.uuid4()))
    with pytest.raises(ForeignRefError):
        remote.get(foreign)


def test_queries_stream_and_select_as_locally(remote: Butler, served: Served) -> None:
    visits = [_visit() for _ in range(1)]
    base = visits[0] % 800_000
    items = [({"i": i}, {"visit": base + i, "focus": -1.5}) for i in range(3000)]
    refs = remote.put_many("focusSweep", items)
    assert len(refs) == 3000
    where = f"visit >= {base} AND visit < {base + 3000} AND focus < -1"
    stream = remote.query("focusSweep", where=where, order_by="-visit")
    assert next(stream)["visit"] == base + 2999  # the first arrives before the rest are read
    assert sum(1 for _ in stream) == 2999
    assert remote.count("focusSweep", where=where) == 3000
    assert remote.query_values("focusSweep", "focus", where=where) == [-1.5]
    limited = list(remote.query("focusSweep", where=where, limit=5, order_by="visit"))
    assert [d["visit"] for d in limited] == list(range(base, base + 5))
    with Butler(served.root, writeable=False) as local:
        assert list(local.query("focusSweep", where=where)) == list(
            remote.query("focusSweep", where=where)
        )


def test_put_many_stores_all_or_nothing(remote: Butler) -> None:
    visit = _visit()
    items = [({"i": 1}, {"visit": visit, **FOCUS}), ({"i": 2}, {"visit": -1, **FOCUS})]
    with pytest.raises(InvalidDataIdError):
        remote.put_many("focusSweep", items)
    assert not remote.exists("focusSweep", visit=visit, **FOCUS)


def test_calibrations_certify_find_and_history(remote: Butler) -> None:
    detector = 7
    day = datetime.date(2022, 5, 1)
    remote.put(Image(np.zeros((2, 2), "f4")), "bias", calibDate=day, detector=detector)
    made = remote.certify("bias", {"calibDate": day, "detector": detector}, "2022-05-01")
    assert made.valid_from == datetime.datetime(2022, 5, 1)
    raw = {"visit": 777_001, "detector": detector, "filter": "g"}
    remote.put(Image(np.ones((2, 2), "f4")), "raw", raw, obsTime=datetime.datetime(2022, 5, 3))
    found = remote.find_calibration("bias", visit=777_001, detector=detector)
    assert found.data_id["calibDate"] == day and found.certification.id == made.id
    closed = remote.decertify("bias", {"calibDate": day, "detector": detector})
    assert [c.id for c in closed] == [made.id]
    history = remote.calibration_history("bias", {"detector": detector})
    assert any(c.id == made.id and not c.current for c in history)


def test_register_dataset_type_over_the_wire(remote: Butler, served: Served) -> None:
    name = f"notes{uuid.uuid4().hex[:6]}"
    remote.register_dataset_type(
        name, template=f"{name}/{{visit:06d}}.yaml", format="yaml", keys=["visit"]
    )
    assert name in remote.dataset_types
    remote.put({"ok": True}, name, visit=5)
    with Butler(served.url, token=served.read) as other:
        assert other.get(name, visit=5) == {"ok": True}


def test_tokens_gate_reads_and_writes(served: Served) -> None:
    with pytest.raises(RemoteError, match="needs a valid token"):
        Butler(served.url, token="bt_not-a-token")
    with Butler(served.url, token=served.read) as reader:
        assert reader.count("focusSweep", visit=1) == 0
        with pytest.raises(ReadOnlyError, match="only read access"):
            reader.put({"n": 1}, "focusSweep", visit=_visit(), **FOCUS)
    stored = (served.root / TOKEN_FILE).read_text()
    assert served.read not in stored and served.write not in stored


def test_the_token_comes_from_the_environment_or_the_token_file(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTLER_TOKEN", served.read)
    with Butler(served.url) as butler:
        assert butler.repository_id is not None
    monkeypatch.delenv("BUTLER_TOKEN")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{served.server.base} {served.read}\n")
    monkeypatch.setenv("BUTLER_TOKEN_FILE", str(tokens))
    with Butler(served.url) as butler:
        assert butler.repository_id is not None


def test_token_create_prints_a_new_token_once(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam").close()
    done = subprocess.run(
        [sys.executable, "-m", "butler.cli", "token", "create", str(root), "--scope", "read"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = done.stdout.strip()
    assert token.startswith("bt_") and token not in (root / TOKEN_FILE).read_text()
    entries = json.loads((root / TOKEN_FILE).read_text())["tokens"]
    assert [e["scope"] for e in entries] == ["read"]


def test_a_retried_put_with_the_same_idempotency_key_is_done_once(served: Served) -> None:
    visit = _visit()
    meta = {"dataset_type": "focusSweep", "data_ids": [{"visit": visit, **FOCUS}], "sizes": [7]}
    body = json.dumps(meta).encode() + b"\n" + b"{n: 1}\n"
    headers = {"Authorization": f"Bearer {served.write}", "Idempotency-Key": uuid.uuid4().hex}
    first = httpx.post(f"{served.url}/v1/put", content=body, headers=headers)
    again = httpx.post(f"{served.url}/v1/put", content=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    headers["Idempotency-Key"] = uuid.uuid4().hex  # a new put: the dataset exists now
    assert httpx.post(f"{served.url}/v1/put", content=body, headers=headers).status_code == 409


def test_a_request_over_the_size_limit_is_refused(served: Served, remote: Butler) -> None:
    big = Image(np.zeros((1200, 1200), "f4"))  # 5.8 MB of FITS, over this server's 4 MiB
    with pytest.raises(RemoteError, match="at most"):
        remote.put(big, "bias", calibDate="2021-01-01", detector=1)
    assert not remote.exists("bias", calibDate="2021-01-01", detector=1)
    headers = {"Authorization": f"Bearer {served.read}"}
    huge = {"dataset_type": "focusSweep", "data_id": {"x": "y" * (2 << 20)}}
    assert httpx.post(f"{served.url}/v1/exists", json=huge, headers=headers).status_code == 413


def test_a_server_that_is_down_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/repos/gone"
    with pytest.raises(RemoteError, match=rf"cannot reach the Butler server at {url}"):
        Butler(url, token="bt_x")


def test_the_api_is_versioned_and_described_by_openapi(served: Served) -> None:
    schema = httpx.get(f"{served.server.base}/openapi.json").json()
    assert "/repos/{repo}/v1/get" in schema["paths"]
    # DataLink's route is the one the issue names, outside the versioned JSON API
    unversioned = {"/health", "/repos/{repo}/datalink"}
    assert all(p.startswith("/repos/{repo}/v1/") or p in unversioned for p in schema["paths"])
    assert httpx.get(f"{served.server.base}/docs").status_code == 200


def test_eight_clients_at_once_are_all_served(served: Served) -> None:
    def client(number: int) -> int:
        with Butler(served.url, token=served.write) as mine:
            base = 880_000 + number * 100
            for i in range(5):
                mine.put({"i": i}, "focusSweep", visit=base + i, focus=1.25)
                assert mine.get("focusSweep", visit=base + i, focus=1.25) == {"i": i}
            return sum(1 for _ in mine.query("focusSweep", focus=1.25))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(client, range(8)))
    assert all(5 <= count <= 40 for count in counts) and max(counts) == 40


def test_past_the_query_limit_the_server_answers_503_with_retry_after(tmp_path: Path) -> None:
    from butler.remote.server import Limits, create_app

    with warnings.catch_warnings():  # starlette would rather have httpx2, which is not needed
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    root = tmp_path / "toy"
    Butler.create(root, mapper="toycam").close()
    token = create_token(root, "read")
    with TestClient(create_app({"toy": root}, Limits(streams=0))) as client:
        answer = client.post(
            "/repos/toy/v1/query",
            json={"dataset_type": "focusSweep"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.json()["error"]["type"] == "RemoteError"


def test_the_hot_routes_answer_as_the_application_does(served: Served) -> None:
    # get, exists and put are answered before FastAPI's routing (butler.remote.hot): the
    # same statuses, error bodies and token checks as every other route
    read = {"Authorization": f"Bearer {served.read}"}
    v1 = f"{served.url}/v1"
    wrong = httpx.post(f"{v1}/get", json={"dataset_type": 5}, headers=read)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["type"] == "ButlerError"
    assert "invalid request to /repos/toy/v1/get" in wrong.json()["error"]["message"]
    extra = {"dataset_type": "focusSweep", "data_id": {"visit": 1}, "path": "/etc/passwd"}
    assert httpx.post(f"{v1}/exists", json=extra, headers=read).status_code == 422
    assert httpx.post(f"{v1}/exists", content=b"{not json", headers=read).status_code == 422
    target = {"dataset_type": "focusSweep", "data_id": {"visit": _visit(), **FOCUS}}
    anonymous = httpx.post(f"{v1}/exists", json=target)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.post(f"{v1}/exists", json=target, headers=read).json() == {"exists": False}
    missing = httpx.post(f"{v1}/get", json=target, headers=read)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "DatasetNotFoundError"
    assert httpx.post(f"{v1}/put", content=b"{}\n", headers=read).status_code == 403
    assert httpx.post(f"{served.server.base}/repos/nope/v1/get", json=target).status_code == 404
    assert httpx.get(f"{v1}/get", headers=read).status_code == 405


@pytest.mark.postgres
def test_a_repository_on_postgresql_is_read_in_the_thread_pool(
    tmp_path: Path, postgres_url: str
) -> None:
    from butler.remote.hot import quick

    local = tmp_path / "local"
    with Butler.create(local, mapper="toycam") as butler:
        assert quick(butler)  # SQLite and local files: read on the event loop
    root = tmp_path / "pg"
    with Butler.create(root, mapper="toycam", registry=postgres_url) as butler:
        assert not quick(butler)  # a registry over the network: never on the event loop
    token = create_token(root, "write")
    server = Server(root)
    try:
        with Butler(server.url("pg"), token=token) as remote:
            remote.put({"a": 1}, "focusSweep", visit=7, **FOCUS)
            assert remote.exists("focusSweep", visit=7, **FOCUS)
            assert remote.get("focusSweep", visit=7, **FOCUS) == {"a": 1}
            assert not remote.exists("focusSweep", visit=8, **FOCUS)
    finally:
        server.stop()
