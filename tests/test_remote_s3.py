"""A served S3 repository (issue 16): bytes move through signed URLs of the object store,
not through the server. A real moto server (behind a proxy that records each request's
headers), a real PostgreSQL registry and a real ``butler serve`` process on 127.0.0.1.

moto 5.2 checks neither a signed URL's signature nor its expiry while its authentication
is off, and answers 500 to every signed URL while it is on, so a forged or expired URL
refused by the store cannot be shown against it (S3 refuses both with 403); an expired
upload refused at its commit by the server is tested instead.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from _remote import Server
from _s3faults import FaultProxy
from butler import Butler
from butler.checksums import checksum_of
from butler.errors import DatasetCorruptError, DatasetNotFoundError, ReadOnlyError
from butler.remote.client import RemoteButler
from butler.remote.tokens import create_stored_token

pytestmark = pytest.mark.postgres

FOCUS = {"focus": 0.5}


class Recording(FaultProxy):
    """The fault proxy, keeping each request's method, path and headers."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.seen_headers: list[tuple[str, str, dict[str, str]]] = []

    def handle(self, request: Any) -> None:
        with self.lock:
            self.seen_headers.append((request.command, request.path, dict(request.headers)))
        super().handle(request)


@pytest.fixture
def proxy(s3_server: Any) -> Iterator[Recording]:
    recording = Recording(s3_server.url)
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture
def s3_url(
    s3_location: Any,
    proxy: Recording,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    postgres_server: str,
) -> Iterator[str]:
    """An S3 repository (its store reached through the recording proxy) with one dataset."""
    from _repos import postgres_schemas

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path / "cache"))
    url = f"s3://{s3_location.bucket}/{s3_location.prefix}/hsc"
    with postgres_schemas(postgres_server) as schemas:
        with Butler.create(url, mapper="toycam", registry=schemas()) as local:
            local.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        yield url


def _serve(url: str, *options: str) -> tuple[Server, str, str, str]:
    with Butler(url) as local:
        write = create_stored_token(local.datastore, "write")
        read = create_stored_token(local.datastore, "read")
    server = Server(url, options=options)  # type: ignore[arg-type]
    return server, server.url("hsc"), write, read


@pytest.fixture
def served(s3_url: str) -> Iterator[tuple[Server, str, str, str]]:
    """The repository served by ``butler serve``: the server, its URL, write and read
    tokens."""
    server, url, write, read = _serve(s3_url)
    try:
        yield server, url, write, read
    finally:
        server.stop()


def _agent(headers: dict[str, str]) -> str:
    return headers.get("User-Agent", headers.get("user-agent", ""))


def test_get_redirects_to_the_store_and_the_client_checks_the_bytes(
    served: tuple[Server, str, str, str], proxy: Recording
) -> None:
    _, url, write, _ = served
    answer = httpx.post(
        f"{url}/v1/get",
        json={"dataset_type": "focusSweep", "data_id": {"visit": 1, **FOCUS}},
        headers={"Authorization": f"Bearer {write}"},
    )
    assert answer.status_code == 307 and not answer.content
    location = answer.headers["Location"]
    assert location.startswith(proxy.url) and "X-Amz-Signature=" in location
    assert "/hsc/focus/000001/" in location and write not in location
    stored = httpx.get(location)
    assert stored.status_code == 200
    assert answer.headers["X-Butler-Size"] == str(len(stored.content))
    assert answer.headers["X-Butler-Checksum"] == checksum_of(stored.content)
    proxy.seen_headers.clear()
    with RemoteButler(url, token=write) as client:
        assert client.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
        client.put({"n": 2}, "focusSweep", visit=2, **FOCUS)
        assert client.get("focusSweep", visit=2, **FOCUS) == {"n": 2}
    seen = list(proxy.seen_headers)
    by_client = [(m, p) for m, p, h in seen if _agent(h).startswith("python-httpx")]
    assert [m for m, p in by_client if "/hsc/focus/" in p] == ["GET", "GET"]
    assert [m for m, p in by_client if "/.butler/uploads/" in p] == ["PUT"]
    # the server (botocore) never downloads a dataset: it HEADs and copies in the store
    by_server = [(m, p) for m, p, h in seen if not _agent(h).startswith("python-httpx")]
    assert by_server and not [p for m, p in by_server if m == "GET" and "/hsc/focus/" in p]
    for _, path, headers in seen:  # the token never reaches the store
        assert write not in path and all(write not in v for v in headers.values())
        assert "bearer" not in " ".join(headers.values()).lower()


def test_the_datalink_download_route_redirects_too(
    served: tuple[Server, str, str, str],
) -> None:
    _, url, _, read = served
    with RemoteButler(url, token=read) as client:
        access = client.uri(next(client.query_datasets("focusSweep")))
    answer = httpx.get(access, params={"token": read})
    assert answer.status_code == 307
    followed = httpx.get(access, params={"token": read}, follow_redirects=True)
    assert followed.status_code == 200 and yaml.safe_load(followed.content) == {"n": 1}


def test_an_upload_never_committed_expires_and_verify_repairs_leftovers(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url, write, _ = _serve(s3_url, "--signed-url-seconds", "1")
    try:
        begun = _begin(url, write, b"n: 5\n", 5)
        (signed,) = begun["files"]
        assert httpx.put(signed["url"], content=b"n: 5\n", headers=signed["headers"]).is_success
        time.sleep(3.5)  # the URL's second, and the commit's grace (1 s + 1 s + 1 s)
        late = httpx.post(
            f"{url}/v1/put-commit",
            json={"upload": begun["upload"]},
            headers={"Authorization": f"Bearer {write}"},
        )
        assert late.status_code == 404 and "expired" in late.json()["error"]["message"]
        forgotten = _begin(url, write, b"n: 6\n", 6)["files"][0]  # begun, never committed
        httpx.put(forgotten["url"], content=b"n: 6\n", headers=forgotten["headers"])
    finally:
        server.stop()  # stopped before that upload expired: it stays until verify --repair
    with Butler(s3_url) as local:
        assert not local.exists("focusSweep", visit=5, **FOCUS)
        listed = [t for t in local.verify().temporaries if ".butler/uploads/" in t]
        assert len(listed) == 1
    monkeypatch.setenv("BUTLER_S3_STALE_SECONDS", "0")
    with Butler(s3_url) as local:
        assert local.verify(repair=True).repaired >= 1
        assert not [t for t in local.verify().temporaries if ".butler/uploads/" in t]
        assert local.count("focusSweep") == 1


def test_put_through_a_signed_url_is_recorded_and_read_back(
    served: tuple[Server, str, str, str],
) -> None:
    _, url, write, _ = served
    with RemoteButler(url, token=write) as client:
        ref = client.put({"n": 2}, "focusSweep", visit=2, **FOCUS)
        assert client.get(ref) == {"n": 2}
        refs = client.put_many("focusSweep", [({"n": v}, {"visit": v, **FOCUS}) for v in (3, 4)])
        assert [client.get(r) for r in refs] == [{"n": 3}, {"n": 4}]
        new = client.put({"n": 9}, "focusSweep", visit=1, **FOCUS, overwrite=True)
        assert client.get(new) == {"n": 9}
        assert client.count("focusSweep") == 4
        report = client._session.call("repository")
        assert report["signed_urls"] is True


def _begin(url: str, token: str, blob: bytes, visit: int) -> dict[str, Any]:
    body = {
        "dataset_type": "focusSweep",
        "data_ids": [{"visit": visit, **FOCUS}],
        "sizes": [len(blob)],
        "md5s": [hashlib.md5(blob).hexdigest()],
        "checksums": [checksum_of(blob)],
    }
    answer = httpx.post(
        f"{url}/v1/put-begin", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return {"status": answer.status_code, **answer.json()}


def test_a_tampered_upload_is_refused_at_commit_and_nothing_is_recorded(
    served: tuple[Server, str, str, str],
) -> None:
    _, url, write, _ = served
    announced, sent = b"n: 5\n", b"n: 6\n"
    begun = _begin(url, write, announced, 5)
    assert begun["status"] == 200
    (signed,) = begun["files"]
    assert signed["headers"]["If-None-Match"] == "*"
    headers = {k: v for k, v in signed["headers"].items() if k != "Content-MD5"}
    assert httpx.put(signed["url"], content=sent, headers=headers).status_code in (200, 403)
    commit = httpx.post(
        f"{url}/v1/put-commit",
        json={"upload": begun["upload"]},
        headers={"Authorization": f"Bearer {write}", "Idempotency-Key": "k1"},
    )
    assert commit.status_code in (404, 422)
    assert commit.json()["error"]["type"] in ("DatasetCorruptError", "DatasetNotFoundError")
    with RemoteButler(url, token=write) as client:
        assert not client.exists("focusSweep", visit=5, **FOCUS)
        with pytest.raises(DatasetNotFoundError):
            client.get("focusSweep", visit=5, **FOCUS)


def test_a_commit_of_different_bytes_with_the_signed_headers_is_refused(
    served: tuple[Server, str, str, str],
) -> None:
    _, url, write, _ = served
    begun = _begin(url, write, b"n: 7\n", 7)
    (signed,) = begun["files"]
    # moto does not check Content-MD5 (S3 would refuse the PUT): the commit's HEAD does
    httpx.put(signed["url"], content=b"n: 8\n", headers=signed["headers"])
    commit = httpx.post(
        f"{url}/v1/put-commit",
        json={"upload": begun["upload"]},
        headers={"Authorization": f"Bearer {write}"},
    )
    assert commit.status_code == 422, commit.text
    assert commit.json()["error"]["type"] == "DatasetCorruptError"
    with RemoteButler(url, token=write) as client:
        assert not client.exists("focusSweep", visit=7, **FOCUS)
    again = httpx.post(  # the upload is gone: a second commit finds nothing
        f"{url}/v1/put-commit",
        json={"upload": begun["upload"]},
        headers={"Authorization": f"Bearer {write}"},
    )
    assert again.status_code == 404


def test_a_read_token_gets_no_upload_url(served: tuple[Server, str, str, str]) -> None:
    _, url, _, read = served
    begun = _begin(url, read, b"n: 1\n", 9)
    assert begun["status"] == 403 and "files" not in begun
    with RemoteButler(url, token=read) as client:
        assert client.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
        with pytest.raises(ReadOnlyError):
            client.put({"n": 1}, "focusSweep", visit=9, **FOCUS)


def test_the_client_refuses_bytes_that_differ_from_the_record(
    served: tuple[Server, str, str, str], s3_location: Any
) -> None:
    from butler.objectstore import ObjectStore, S3Location

    _, url, write, _ = served
    with RemoteButler(url, token=write) as client:
        ref = client.put({"n": 3}, "focusSweep", visit=3, **FOCUS)
        uri = client.uri(ref)
        assert uri.startswith("http")  # the server's URL, which redirects
    store = ObjectStore(S3Location(s3_location.bucket, f"{s3_location.prefix}/hsc"))
    (key,) = [
        o.relative for o in store.objects() if "3" in o.relative and o.relative.endswith(".yaml")
    ]
    info = store.head(key)
    assert info is not None
    store.replace(key, b"n: 4\n", "crc32c:00000000", info.etag)  # changed behind the registry
    with RemoteButler(url, token=write) as client, pytest.raises(DatasetCorruptError):
        client.get(ref)


def test_token_create_of_an_s3_repository_keeps_only_a_hash_in_the_bucket(
    served: tuple[Server, str, str, str],
    s3_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from butler.cli import main

    _, url, _, _ = served
    assert main(["token", "create", s3_url, "--scope", "read", "--label", "vo"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    with Butler(s3_url) as local:
        kept = local.datastore.read_private("tokens.json")
    assert kept is not None and token.encode() not in kept
    time.sleep(2.5)  # the server reads the token file again every 2 s
    with RemoteButler(url, token=token) as client:
        assert client.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
        with pytest.raises(ReadOnlyError):
            client.remove("focusSweep", visit=1, **FOCUS)
