"""Repositories in S3 (issue 15): the S3 back-end against a real S3-protocol server.

The Butler behaviour suite runs on S3 in test_backends.py; these are the guarantees
that only object storage has: the PostgreSQL registry it needs, nothing of the endpoint
or credentials in the repository, section reads by byte range, ``get`` never listing,
concurrent writers racing for data IDs, killed writers, faults, and ``verify``.
The server is moto's, in its own process (tests/_s3server.py); the registry PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _repos import postgres_schemas
from _s3faults import fault_proxy
from _s3server import S3Server
from butler import BBox, Butler, Image
from butler.cli import main
from butler.errors import ButlerError, ConfigError, RepositoryError
from butler.objectstore import ObjectStore, S3Location, S3Settings

pytestmark = pytest.mark.postgres

FOCUS = {"focus": 0.5}


@pytest.fixture
def schemas(postgres_server: str) -> Iterator[object]:
    with postgres_schemas(postgres_server) as make:
        yield make


@pytest.fixture
def env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The environment a user of the server would have (inherited by subprocesses)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.url)
    monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path / "cache"))
    return dict(os.environ)


def _url(location: S3Location, name: str = "repo") -> str:
    return f"s3://{location.bucket}/{location.prefix}/{name}"


def _store(location: S3Location, s3_server: S3Server, name: str = "repo") -> ObjectStore:
    return ObjectStore(
        S3Location(location.bucket, f"{location.prefix}/{name}"),
        S3Settings(endpoint_url=s3_server.url),
    )


def test_an_sqlite_registry_is_refused_and_nothing_is_left(
    s3_location: S3Location, s3_server: S3Server, env: dict[str, str]
) -> None:
    for registry in (None, "sqlite:///registry.sqlite3"):
        with pytest.raises(RepositoryError, match="postgresql"):
            Butler.create(_url(s3_location), mapper="toycam", registry=registry)
    assert list(_store(s3_location, s3_server).objects()) == []


def test_a_local_sqlite_registry_only_when_asked_with_a_warning(
    s3_location: S3Location, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BUTLER_S3_ALLOW_SQLITE", "1")
    registry = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    with pytest.warns(UserWarning, match="only this host may write"):
        butler = Butler.create(_url(s3_location), mapper="toycam", registry=registry)
    butler.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
    assert butler.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
    butler.close()


def test_butler_yaml_is_in_the_bucket_without_endpoint_or_credentials(
    s3_location: S3Location, s3_server: S3Server, env: dict[str, str], schemas: object
) -> None:
    Butler.create(_url(s3_location), mapper="toycam", registry=schemas()).close()  # type: ignore[operator]
    text = _store(s3_location, s3_server).get_bytes("butler.yaml").decode()
    assert "mapper: toycam" in text
    assert s3_server.url not in text and "testing" not in text and "127.0.0.1:9" not in text
    with Butler(_url(s3_location)) as butler:
        assert butler.count("focusSweep") == 0
    with pytest.raises(ConfigError, match="not a Butler repository"):
        Butler(_url(s3_location, "nothing-here"))


def test_a_section_get_moves_a_small_part_of_the_file_and_get_never_lists(
    s3_location: S3Location,
    s3_server: S3Server,
    env: dict[str, str],
    schemas: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(s3_location)
    pixels = np.arange(1000 * 1000, dtype="f4").reshape(1000, 1000)
    with Butler.create(url, mapper="toycam", registry=schemas()) as butler:  # type: ignore[operator]
        ref = butler.put(Image(pixels), "calexp", visit=1, detector=1, filter="g")
    with fault_proxy(s3_server.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        with Butler(url) as butler:
            proxy.requests.clear()
            section = butler.get_section(ref, BBox.from_slices(slice(100, 120), slice(200, 220)))
            np.testing.assert_array_equal(np.asarray(section), pixels[100:120, 200:220])
            moved = sum(n for method, _, n in proxy.requests if method == "GET")
            assert moved < 0.05 * pixels.nbytes
            assert butler.get_metadata(ref) is not None
            proxy.requests.clear()
            got = butler.get(ref)
            np.testing.assert_array_equal(np.asarray(got.array), pixels)
            again = butler.get(ref)  # from the read cache: one HEAD, no GET
            np.testing.assert_array_equal(np.asarray(again.array), pixels)
            paths = [path for _, path, _ in proxy.requests]
            assert not any("list-type" in p or "uploads" in p for p in paths), paths
            assert [m for m, _, _ in proxy.requests].count("GET") == 1


def test_exists_many_and_get_many(
    s3_location: S3Location, env: dict[str, str], schemas: object
) -> None:
    with Butler.create(_url(s3_location), mapper="toycam", registry=schemas()) as butler:  # type: ignore[operator]
        butler.put_many("focusSweep", [({"n": v}, {"visit": v, **FOCUS}) for v in range(1, 9)])
        asked = [{"visit": v, **FOCUS} for v in range(1, 11)]
        assert butler.exists_many("focusSweep", asked) == [True] * 8 + [False] * 2
        assert butler.get_many("focusSweep", asked[:8]) == [{"n": v} for v in range(1, 9)]


# -- writers in other processes ------------------------------------------------------------

_WRITER = """
import json, sys
from butler import Butler
from butler.cli import main
from butler.errors import DatasetExistsError
url, first, count, shared = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
results = {}
with Butler(url) as butler:
    for i in range(count):
        visit = i + 1 if i < shared else first + i   # the first `shared` visits race
        try:
            butler.put({"writer": first, "i": i}, "focusSweep", visit=visit, focus=0.5)
            results[visit] = "won"
        except DatasetExistsError:
            results[visit] = "exists"
print(json.dumps(results))
"""


def test_four_processes_racing_lose_nothing_and_leave_no_orphans(
    s3_location: S3Location, s3_server: S3Server, env: dict[str, str], schemas: object
) -> None:
    count, shared = 50, 10  # 4 x 50 puts: moto serves one request at a time
    url = _url(s3_location)
    Butler.create(url, mapper="toycam", registry=schemas()).close()  # type: ignore[operator]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, url, str(1000 * (n + 1)), str(count), str(shared)],
            stdout=subprocess.PIPE,
            env=env,
        )
        for n in range(4)
    ]
    results = [json.loads(w.communicate(timeout=600)[0]) for w in writers]
    assert all(w.returncode == 0 for w in writers)
    for visit in map(str, range(1, shared + 1)):
        assert sorted(r[visit] for r in results) == ["exists"] * 3 + ["won"]
    with Butler(url) as butler:
        assert butler.count("focusSweep") == shared + 4 * (count - shared)
        for n, result in enumerate(results):
            for visit in (v for v, outcome in result.items() if outcome == "won"):
                assert butler.get("focusSweep", visit=int(visit), **FOCUS)["writer"] == 1000 * (
                    n + 1
                )
        report = butler.verify()
        assert report.clean and not report.untracked and not report.temporaries
        assert not report.pending


_LOOPING_WRITER = """
import sys
import numpy as np
from butler import Butler, Image
from butler.cli import main
from butler.errors import DatasetExistsError
url, first = sys.argv[1], int(sys.argv[2])
pixels = np.ones((300, 300), "f4")
with Butler(url) as butler:
    for i in range(900):
        try:
            butler.put(Image(pixels * i), "calexp", visit=first + i, detector=1, filter="g")
            if i % 3 == 0:
                butler.put(Image(pixels), "calexp", visit=first + i, detector=1, filter="g",
                           overwrite=True)
        except DatasetExistsError:
            pass
        print(i, flush=True)
"""


def test_killed_writers_leave_no_partial_object_and_verify_repairs(
    s3_location: S3Location,
    s3_server: S3Server,
    env: dict[str, str],
    schemas: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(s3_location)
    Butler.create(url, mapper="toycam", registry=schemas()).close()  # type: ignore[operator]
    kills = 10  # 10 rather than 20: each writer's start (imports, connect) takes seconds
    for n in range(kills):
        writer = subprocess.Popen(
            [sys.executable, "-c", _LOOPING_WRITER, url, str(1000 * (n + 1))],
            env=env,
            stdout=subprocess.PIPE,
        )
        assert writer.stdout is not None
        writer.stdout.readline()  # one put done: the writer is in its loop
        time.sleep(random.uniform(0.0, 0.5))  # then killed at some point of a later one
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    monkeypatch.setenv("BUTLER_S3_STALE_SECONDS", "0")  # every writer is dead: all stale
    with Butler(url) as butler:
        report = butler.verify(repair=True)
        assert report.clean
        after = butler.verify(read=True)
        assert after.clean and not after.untracked and not after.temporaries, after
        assert not after.pending and not after.corrupt
        refs = list(butler.query_datasets("calexp"))
        assert len(refs) >= kills
        for ref in refs:
            assert butler.get(ref).array.shape == (300, 300)


# -- faults ----------------------------------------------------------------------------


def test_server_faults_are_clear_errors_naming_the_repository(
    s3_location: S3Location,
    s3_server: S3Server,
    env: dict[str, str],
    schemas: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(s3_location)
    with Butler.create(url, mapper="toycam", registry=schemas()) as butler:  # type: ignore[operator]
        butler.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
    repo = f"{s3_location.bucket}/{s3_location.prefix}/repo"
    with fault_proxy(s3_server.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        with Butler(url) as butler:
            proxy.plan("PUT", *["503"] * 10)
            with pytest.raises(ButlerError, match=repo):
                butler.put({"n": 2}, "focusSweep", visit=2, **FOCUS)
            proxy.plan("*", "500")  # one passing error: retried
            assert butler.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
            proxy.plan("PUT", *["500"] * 10)
            with pytest.raises(ButlerError, match=repo):
                butler.put({"n": 9}, "focusSweep", visit=1, **FOCUS, overwrite=True)
            proxy.faults.clear()
            assert butler.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
            assert not butler.exists("focusSweep", visit=2, **FOCUS)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(ButlerError, match=repo):
        Butler(url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.url)
    s3_server.require_auth()
    try:
        with pytest.raises(ButlerError, match=repo):
            Butler(url)
    finally:
        s3_server.reset_auth()
    with Butler(url) as butler:
        assert butler.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
        assert butler.verify().clean


def test_verify_lists_missing_and_unrecorded_objects_and_unfinished_uploads(
    capsys: pytest.CaptureFixture[str],
    s3_location: S3Location,
    s3_server: S3Server,
    env: dict[str, str],
    schemas: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(s3_location)
    store = _store(s3_location, s3_server)
    with Butler.create(url, mapper="toycam", registry=schemas()) as butler:  # type: ignore[operator]
        for v in (1, 2):
            butler.put({"n": v}, "focusSweep", visit=v, **FOCUS)
        gone = butler.uri("focusSweep", visit=1, **FOCUS).removeprefix(store.location.uri + "/")
        store.delete(gone)
        store.put_new("stray/object.yaml", b"n: 0\n", "crc32c:00000000")
        store.client.create_multipart_upload(
            Bucket=store.location.bucket, Key=store.location.key("stray/big.fits")
        )
        assert main(["verify", url]) == 1  # the command line too: not clean
        shown = capsys.readouterr().out
        assert gone in shown and "stray/object.yaml" in shown
        report = butler.verify()
        assert not report.clean and [p for _, p in report.missing] == [gone]
        assert report.untracked == ("stray/object.yaml",)
        assert len(report.temporaries) == 1 and "stray/big.fits" in report.temporaries[0]
        fresh = butler.verify(repair=True)  # young: perhaps a live writer's; kept
        assert fresh.untracked == ("stray/object.yaml",)
        # (moto dates every upload 2010-11-10, so its upload is stale already)
        monkeypatch.setenv("BUTLER_S3_STALE_SECONDS", "0")
    with Butler(url) as butler:
        repaired = butler.verify(repair=True)
        assert repaired.repaired >= 1 and not repaired.untracked and not repaired.temporaries
        assert store.uploads() == [] and store.head("stray/object.yaml") is None


def test_an_overwrite_interrupted_on_another_host_is_undone_once_stale(
    s3_location: S3Location,
    s3_server: S3Server,
    env: dict[str, str],
    schemas: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(s3_location)
    store = _store(s3_location, s3_server)
    with Butler.create(url, mapper="toycam", registry=schemas()) as butler:  # type: ignore[operator]
        butler.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        path = butler.uri("focusSweep", visit=1, **FOCUS).removeprefix(store.location.uri + "/")
    # A writer on another host kept the old object in its journal, replaced it, and died
    # before its registry commit (its token is in no committed operation).
    kept = f".butler/pending/otherhost-4242-abcd/000000000000.{'0' * 16}.kept/{path}"
    store.copy(path, kept)
    store.replace(path, b"n: 99\n", "crc32c:00000000", store.head(path).etag)  # type: ignore[union-attr]
    with Butler(url) as butler:  # young: perhaps alive; left alone
        assert butler.verify().pending == (("kept", path),)
    monkeypatch.setenv("BUTLER_S3_STALE_SECONDS", "0")
    with Butler(url) as butler:  # opening a writeable repository recovers it
        assert butler.get("focusSweep", visit=1, **FOCUS) == {"n": 1}
        report = butler.verify(read=True)
        assert report.clean and not report.pending and not report.untracked
