"""What an S3 repository's put and get send (issue 15, "Speed"), counted by the tests'
proxy in front of the real moto server, and the checks that replaced the HEAD a get sent.

- A get of a dataset not in the read cache is one GET (no HEAD): the answer's size and
  checksum metadata are checked against the registry's record before its body is read,
  and its bytes hashed against the recorded checksum on the way. A get of a cached
  dataset sends nothing: the cache is keyed by the dataset's id (immutable content).
- A put is one PUT (``If-None-Match: *``), sent while the registry inserts the row.
- A changed object is a clear error and never enters the cache; a put refused by the
  registry deletes the object its early PUT published, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _repos import postgres_schemas
from _s3faults import fault_proxy
from _s3server import S3Server
from butler import Butler
from butler.errors import DatasetCorruptError, DatasetExistsError
from butler.objectstore import ObjectStore, S3Location, S3Settings

pytestmark = pytest.mark.postgres

SWEEP = {"visit": 1, "focus": 0.5}


@pytest.fixture
def registry(postgres_server: str) -> Iterator[str]:
    with postgres_schemas(postgres_server) as make:
        yield make()


@pytest.fixture
def url(
    s3_location: S3Location, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.url)
    monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path / "cache"))
    return f"s3://{s3_location.bucket}/{s3_location.prefix}/repo"


def _store(url: str, server: S3Server) -> ObjectStore:
    return ObjectStore(S3Location.parse(url), S3Settings(endpoint_url=server.url))


def _sent(requests: list[tuple[str, str, int]]) -> list[str]:
    return [method for method, _, _ in requests]


def test_a_get_is_one_get_and_a_cached_get_sends_nothing(
    url: str, s3_server: S3Server, registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Butler.create(url, mapper="toycam", registry=registry) as butler:
        ref = butler.put({"n": 1}, "focusSweep", **SWEEP)
    with fault_proxy(s3_server.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        with Butler(url) as butler:
            proxy.requests.clear()
            assert butler.get(ref) == {"n": 1}
            assert _sent(proxy.requests) == ["GET"]
            proxy.requests.clear()
            assert butler.get(ref) == {"n": 1}
            assert butler.get("focusSweep", **SWEEP) == {"n": 1}  # by data ID: same id
            assert proxy.requests == []
        monkeypatch.setenv("BUTLER_CACHE_SIZE", "0")  # the cache off: each get downloads
        with Butler(url) as butler:
            proxy.requests.clear()
            assert butler.get("focusSweep", **SWEEP) == {"n": 1}
            assert _sent(proxy.requests) == ["GET"]


def test_a_put_is_one_put(
    url: str, s3_server: S3Server, registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Butler.create(url, mapper="toycam", registry=registry).close()
    with fault_proxy(s3_server.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        with Butler(url) as butler:
            proxy.requests.clear()
            butler.put({"n": 1}, "focusSweep", **SWEEP)
            assert _sent(proxy.requests) == ["PUT"]


def test_an_object_changed_behind_the_registry_is_refused_and_never_cached(
    url: str, s3_server: S3Server, registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Butler.create(url, mapper="toycam", registry=registry) as butler:
        ref = butler.put({"n": 1}, "focusSweep", **SWEEP)
        key = butler.uri(ref).removeprefix(url + "/")
    store = _store(url, s3_server)
    original = store.get_bytes(key)
    raw = store.client
    bucket, full_key = store.location.bucket, store.location.key(key)
    with Butler(url) as butler:
        raw.put_object(Bucket=bucket, Key=full_key, Body=original + b"# more\n")
        with pytest.raises(DatasetCorruptError, match="bytes, but"):
            butler.get(ref)  # the size, from the GET's own answer
        same_size = original.replace(b"1", b"2")
        assert len(same_size) == len(original) and same_size != original
        raw.put_object(Bucket=bucket, Key=full_key, Body=same_size)
        with pytest.raises(DatasetCorruptError, match="checksum"):
            butler.get(ref)  # the bytes, hashed on their way to the cache
        raw.put_object(Bucket=bucket, Key=full_key, Body=original)
        assert butler.get(ref) == {"n": 1}  # nothing wrong was cached under the id


def test_a_put_refused_by_the_registry_removes_only_its_own_object(
    url: str, s3_server: S3Server, registry: str
) -> None:
    store = _store(url, s3_server)
    with Butler.create(url, mapper="toycam", registry=registry) as butler:
        butler.put({"n": 1}, "focusSweep", **SWEEP)
        key = butler.uri("focusSweep", **SWEEP).removeprefix(url + "/")
        store.delete(key)  # a record whose object is gone: the early PUT succeeds
        with pytest.raises(DatasetExistsError):
            butler.put({"n": 2}, "focusSweep", **SWEEP)
        assert store.head(key) is None  # the put's own object went with it
        butler.put({"n": 3}, "focusSweep", **SWEEP, overwrite=True)
        assert butler.get("focusSweep", **SWEEP) == {"n": 3}
        stray = {"visit": 2, "focus": 0.5}
        butler.put({"n": 4}, "focusSweep", **stray)
        stray_key = butler.uri("focusSweep", **stray).removeprefix(url + "/")
        plan = butler.plan("focusSweep")
        butler.registry.remove("focusSweep", butler.restrict(plan, butler.normalize(stray, {})))
        before = store.head(stray_key)  # an object no record names: the put is refused
        with pytest.raises(DatasetExistsError):
            butler.put({"n": 5}, "focusSweep", **stray)
        assert before is not None and store.head(stray_key) == before
        assert not butler.exists("focusSweep", **stray)
