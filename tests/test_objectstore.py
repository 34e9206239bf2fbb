"""The S3 client layer (butler.objectstore) against a real S3-protocol server over HTTP.

Conditional publish (If-None-Match), conditional replace (If-Match), multipart with the
same conditions, a retried request recognised by its put id, reads, listing of objects and
leftover uploads, and every failure as a ButlerError naming the object and what to check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _processes import run_together
from _s3faults import fault_proxy
from _s3server import S3Server, free_port
from butler.errors import (
    ConfigError,
    ConflictError,
    DatasetExistsError,
    InvalidDataIdError,
    ObjectStoreAccessError,
    ObjectStoreUnavailableError,
    RepositoryError,
)
from butler.objectstore import ObjectStore, S3Location, S3Settings, check_relative
from hypothesis import given
from hypothesis import strategies as st

MiB = 1 << 20


@pytest.fixture
def store(s3_location: S3Location, s3_settings: S3Settings) -> ObjectStore:
    return ObjectStore(s3_location, s3_settings)


def small_parts(settings: S3Settings) -> S3Settings:
    return replace(settings, multipart_threshold=6 * MiB, part_size=5 * MiB)


# -- locations -----------------------------------------------------------------------


def test_parse_location() -> None:
    assert S3Location.parse("s3://survey-data/hsc/") == S3Location("survey-data", "hsc")
    assert S3Location.parse("s3://survey-data").key("a/b.fits") == "a/b.fits"
    location = S3Location.parse("s3://survey-data/hsc/v1")
    assert location.key("calexp/1.fits") == "hsc/v1/calexp/1.fits"
    assert location.relative("hsc/v1/calexp/1.fits") == "calexp/1.fits"
    assert location.relative("hsc/v10/x") is None
    assert location.uri == "s3://survey-data/hsc/v1"


@pytest.mark.parametrize(
    "hostile", ["../x", "a/../b", "a//b", "/a", "a/", "a\x00b", "./a", "a/.", "", "a\nb"]
)
def test_hostile_keys_are_refused(hostile: str) -> None:
    with pytest.raises(InvalidDataIdError, match="refused"):
        S3Location("bucket-a", "repo").key(hostile)


@pytest.mark.parametrize("uri", ["s3://", "s3://Bad_Bucket/x", "s3://ab", "s3://b..c/x", "/tmp/x"])
def test_bad_locations_are_refused(uri: str) -> None:
    with pytest.raises(RepositoryError):
        S3Location.parse(uri)


@given(st.lists(st.text(alphabet="abc.-_ é", min_size=1, max_size=6), min_size=1, max_size=4))
def test_accepted_keys_stay_below_the_prefix(parts: list[str]) -> None:
    relative = "/".join(parts)
    location = S3Location("bucket-a", "repo")
    try:
        key = location.key(relative)
    except InvalidDataIdError:
        return
    assert key.startswith("repo/")
    assert location.relative(key) == relative
    assert ".." not in key.split("/") and "" not in key.split("/")
    assert check_relative(relative) == relative


def test_credentials_in_the_configuration_are_refused() -> None:
    with pytest.raises(ConfigError, match="never from the repository"):
        S3Settings.from_config({"endpoint_url": "http://x", "aws_secret_access_key": "s"})
    settings = S3Settings.from_config({"endpoint_url": "http://h:9000", "profile": "p"}, {})
    assert (settings.endpoint_url, settings.profile) == ("http://h:9000", "p")
    # The standard variable wins over the repository's endpoint.
    environ = {"AWS_ENDPOINT_URL_S3": "http://mirror:1"}
    assert S3Settings.from_config({"endpoint_url": "http://h:9000"}, environ).endpoint_url is None


# -- writes ----------------------------------------------------------------------------


def test_put_new_then_get(store: ObjectStore, tmp_path: Path) -> None:
    info = store.put_new("a/b.bin", b"hello world", "crc32c:00000001")
    assert (info.size, info.recovered) == (11, False)
    head = store.head("a/b.bin")
    assert head is not None
    assert (head.size, head.etag, head.checksum) == (11, info.etag, "crc32c:00000001")
    assert store.get_bytes("a/b.bin") == b"hello world"
    assert store.get_range("a/b.bin", 6, 11) == b"world"
    target = tmp_path / "copy.bin"
    assert store.get_file("a/b.bin", target).checksum == "crc32c:00000001"
    assert target.read_bytes() == b"hello world"
    assert store.head("absent") is None


def test_put_new_refuses_an_existing_object(store: ObjectStore) -> None:
    store.put_new("x.fits", b"first", "crc32c:1")
    with pytest.raises(DatasetExistsError, match=r"s3://.*/repo/x\.fits already exists"):
        store.put_new("x.fits", b"second", "crc32c:2")
    assert store.get_bytes("x.fits") == b"first"


def test_a_retry_whose_first_attempt_succeeded_is_not_a_conflict(
    s3_server: S3Server, s3_location: S3Location, s3_settings: S3Settings
) -> None:
    """The server stores the first attempt, its answer is lost on the way back, botocore
    sends the request again and gets 412: the object's put id shows it was this put."""
    with fault_proxy(s3_server.url) as proxy:
        store = ObjectStore(s3_location, replace(s3_settings, endpoint_url=proxy.url))
        proxy.plan("PUT", "lose-answer")
        info = store.put_new("retried.bin", b"payload", "crc32c:abc")
        assert info.recovered
        assert proxy.seen.count("PUT") == 2
        assert store.get_bytes("retried.bin") == b"payload"
        # Another put of the very same bytes is still a conflict: it has its own put id.
        with pytest.raises(DatasetExistsError):
            store.put_new("retried.bin", b"payload", "crc32c:abc")


def test_a_retried_multipart_completion_is_not_a_conflict(
    s3_server: S3Server, s3_location: S3Location, s3_settings: S3Settings
) -> None:
    with fault_proxy(s3_server.url) as proxy:
        settings = replace(small_parts(s3_settings), endpoint_url=proxy.url)
        store = ObjectStore(s3_location, settings)
        payload = os.urandom(7 * MiB)
        # POSTs: create the upload, then complete it (its answer lost).
        proxy.plan("POST", "pass", "lose-answer")
        info = store.put_new("big.bin", payload, "crc32c:big")
        # Sent twice; the server answered the retry as a success (moto and S3 treat a
        # repeated completion of one upload as done) or with NoSuchUpload/412, which the
        # put id resolves: either way no conflict is reported.
        assert proxy.seen.count("POST") == 3
        assert info.checksum == "crc32c:big"
        assert store.get_bytes("big.bin") == payload
        assert store.uploads() == []


def test_replace_needs_the_current_etag(store: ObjectStore) -> None:
    first = store.put_new("r.txt", b"one", "crc32c:1")
    second = store.replace("r.txt", b"two", "crc32c:2", first.etag)
    assert store.get_bytes("r.txt") == b"two"
    with pytest.raises(ConflictError, match="changed by another writer"):
        store.replace("r.txt", b"three", "crc32c:3", first.etag)
    assert store.get_bytes("r.txt") == b"two"
    with pytest.raises(ConflictError, match="replaced"):
        store.get_file("r.txt", Path(os.devnull).parent / "never", expected_etag=first.etag)
    store.delete("r.txt", expected_etag=second.etag)
    assert store.head("r.txt") is None
    store.delete("r.txt")  # absent: no error


def test_multipart_put_new_and_replace(
    s3_location: S3Location, s3_settings: S3Settings, tmp_path: Path
) -> None:
    store = ObjectStore(s3_location, small_parts(s3_settings))
    big = tmp_path / "big.bin"
    payload = os.urandom(11 * MiB)
    big.write_bytes(payload)
    info = store.put_new("big.bin", big, "crc32c:big")
    assert info.etag.endswith("-3")  # three parts
    assert store.get_bytes("big.bin") == payload
    middle = slice(5 * MiB - 2, 5 * MiB + 2)
    assert store.get_range("big.bin", middle.start, middle.stop) == payload[middle]
    with pytest.raises(DatasetExistsError):
        store.put_new("big.bin", big, "crc32c:big")
    again = tmp_path / "again.bin"
    again.write_bytes(payload[::-1])  # an ETag is of the content: same bytes, same ETag
    replaced = store.replace("big.bin", again, "crc32c:again", info.etag)
    assert store.get_bytes("big.bin") == payload[::-1]
    with pytest.raises(ConflictError):
        store.replace("big.bin", big, "crc32c:3", info.etag)
    assert store.head("big.bin").etag == replaced.etag  # type: ignore[union-attr]
    assert store.uploads() == []  # refused uploads were aborted


def test_get_file_checks_the_checksum(store: ObjectStore, tmp_path: Path) -> None:
    from butler.checksums import checksum_of
    from butler.errors import DatasetCorruptError

    payload = os.urandom(3 * MiB + 5)
    store.put_new("c.bin", payload, checksum_of(payload))
    target = tmp_path / "c.bin"
    store.get_file("c.bin", target, expected_checksum=checksum_of(payload))
    assert target.read_bytes() == payload
    target.unlink()
    with pytest.raises(DatasetCorruptError, match=r"repo/c\.bin does not hold what was written"):
        store.get_file("c.bin", target, expected_checksum=checksum_of(b"other"))
    assert list(tmp_path.iterdir()) == []


def test_head_many(store: ObjectStore) -> None:
    for name in ["a", "b"]:
        store.put_new(name, name.encode(), "crc32c:0")
    found = store.head_many(["a", "missing", "b", "a"])
    assert list(found) == ["a", "missing", "b"]
    assert found["missing"] is None
    assert found["b"] is not None and found["b"].size == 1


def test_reads_through_the_shared_cache(store: ObjectStore, tmp_path: Path) -> None:
    from butler.objectstore.cache import SharedCache

    store.put_new("d/1.fits", b"SIMPLE", "crc32c:0")
    cache = SharedCache(tmp_path / "cache", max_bytes=1 << 20)
    for _ in range(2):
        with cache.open("dataset-1", lambda p: store.get_file("d/1.fits", p), ".fits") as path:
            assert path.read_bytes() == b"SIMPLE"
    store.delete("d/1.fits")  # the cache, keyed by dataset id, still serves it
    with cache.open("dataset-1", lambda p: store.get_file("d/1.fits", p), ".fits") as path:
        assert path.read_bytes() == b"SIMPLE"


def test_list_objects(store: ObjectStore) -> None:
    for name in ["b/2", "a/1", "b/3"]:
        store.put_new(name, name.encode(), "crc32c:0")
    assert [i.relative for i in store.objects()] == ["a/1", "b/2", "b/3"]
    assert [i.relative for i in store.objects("b")] == ["b/2", "b/3"]


# -- races and crashes (real processes) ------------------------------------------------


def _race(
    endpoint: str,
    location: S3Location,
    worker: int,
    keys: list[str],
    out: str,
    barrier: Any,
    errors: Any,
) -> None:
    try:
        store = ObjectStore(location, S3Settings(endpoint_url=endpoint))
        barrier.wait()
        won, lost = [], []
        for key in keys:
            try:
                store.put_new(key, f"{worker}:{key}".encode(), f"crc32c:{worker}")
                won.append(key)
            except DatasetExistsError:
                lost.append(key)
        Path(out, f"{worker}.txt").write_text("\n".join(f"{k} {k in won}" for k in keys))
    except BaseException:
        errors.put(traceback.format_exc())


def test_four_processes_racing_put_new(
    s3_server: S3Server, s3_location: S3Location, tmp_path: Path
) -> None:
    keys = [f"k/{i:03d}" for i in range(40)]
    run_together(_race, [(s3_server.url, s3_location, w, keys, str(tmp_path)) for w in range(4)])
    winners: dict[str, list[int]] = {key: [] for key in keys}
    for worker in range(4):
        for line in Path(tmp_path, f"{worker}.txt").read_text().splitlines():
            key, won = line.split()
            if won == "True":
                winners[key].append(worker)
    assert all(len(w) == 1 for w in winners.values()), winners
    store = ObjectStore(s3_location, S3Settings(endpoint_url=s3_server.url))
    for key, (worker,) in winners.items():
        assert store.get_bytes(key) == f"{worker}:{key}".encode()
    assert [i.relative for i in store.objects()] == keys


_UPLOADER = """
import sys
from pathlib import Path
from butler.objectstore import ObjectStore, S3Location, S3Settings
settings = S3Settings(endpoint_url=sys.argv[1], multipart_threshold=5 << 20,
                      part_size=5 << 20, max_concurrency=1)
store = ObjectStore(S3Location(sys.argv[2], "repo"), settings)
real = store.client.upload_part
def upload_part(**kw):
    answer = real(**kw)
    if kw["PartNumber"] == 2:
        print("part 2 sent", flush=True)
        import time; time.sleep(60)
    return answer
store.client.upload_part = upload_part
store.put_new("killed.bin", Path(sys.argv[3]), "crc32c:0")
"""


def test_a_killed_multipart_upload_leaves_no_object(
    s3_server: S3Server, s3_location: S3Location, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(16 * MiB))
    writer = subprocess.Popen(
        [sys.executable, "-c", _UPLOADER, s3_server.url, s3_location.bucket, str(big)],
        stdout=subprocess.PIPE,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"part 2 sent\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    store = ObjectStore(s3_location, S3Settings(endpoint_url=s3_server.url))
    assert store.head("killed.bin") is None
    assert list(store.objects()) == []
    (leftover,) = store.uploads()
    assert leftover.relative == "killed.bin"
    store.abort(leftover)
    assert store.uploads() == []
    store.put_new("killed.bin", b"fine", "crc32c:0")  # the key is free


# -- faults ----------------------------------------------------------------------------


def test_server_down_is_a_clear_error(s3_location: S3Location) -> None:
    settings = S3Settings(
        endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=2, connect_timeout=1
    )
    store = ObjectStore(s3_location, settings)
    with pytest.raises(ObjectStoreUnavailableError, match=r"cannot connect.*repo/x.*endpoint_url"):
        store.get_bytes("x")
    with pytest.raises(ObjectStoreUnavailableError, match="server is running"):
        store.put_new("x", b"1", "crc32c:0")


def test_stopped_server_is_a_clear_error(tmp_path: Path) -> None:
    server = S3Server.start()
    try:
        store = ObjectStore(
            S3Location("bucket-a", "r"),
            S3Settings(endpoint_url=server.url, max_attempts=2, connect_timeout=1),
        )
        store.create_bucket()
        store.put_new("kept", b"kept", "crc32c:0")
    finally:
        server.stop()
    with pytest.raises(ObjectStoreUnavailableError, match=r"s3://bucket-a/r/kept"):
        store.get_bytes("kept")


def test_bad_credentials_are_a_clear_error(
    s3_server: S3Server,
    s3_location: S3Location,
    s3_settings: S3Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = ObjectStore(s3_location, s3_settings)
    store.put_new("kept", b"kept", "crc32c:0")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    s3_server.require_auth()
    try:
        intruder = ObjectStore(s3_location, s3_settings)
        with pytest.raises(ObjectStoreAccessError, match=r"credentials.*AWS_PROFILE"):
            intruder.put_new("kept", b"evil", "crc32c:1")
        with pytest.raises(ObjectStoreAccessError, match=r"repo/kept"):
            intruder.get_bytes("kept")
    finally:
        s3_server.reset_auth()
    assert store.get_bytes("kept") == b"kept"


def test_an_unknown_profile_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(ConfigError, match=r"profile 'survey' .*~/.aws/config"):
        ObjectStore(S3Location("bucket-a"), S3Settings(profile="survey"))


def test_missing_bucket_names_it(s3_server: S3Server, s3_settings: S3Settings) -> None:
    from butler.errors import ObjectMissingError

    store = ObjectStore(S3Location("no-such-bucket-here", "r"), s3_settings)
    with pytest.raises(ObjectMissingError, match="bucket 'no-such-bucket-here' does not exist"):
        store.put_new("x", b"1", "crc32c:0")
    assert not store.bucket_exists()


@pytest.mark.parametrize("status", ["500", "503"])
def test_a_passing_server_error_is_retried(
    s3_server: S3Server, s3_location: S3Location, s3_settings: S3Settings, status: str
) -> None:
    with fault_proxy(s3_server.url) as proxy:
        store = ObjectStore(s3_location, replace(s3_settings, endpoint_url=proxy.url))
        proxy.plan("PUT", status)
        assert not store.put_new("x", b"1", "crc32c:0").recovered
        proxy.plan("GET", status)
        assert store.get_bytes("x") == b"1"


@pytest.mark.parametrize("status", ["500", "503"])
def test_a_lasting_server_error_is_a_clear_error(
    s3_server: S3Server, s3_location: S3Location, s3_settings: S3Settings, status: str
) -> None:
    with fault_proxy(s3_server.url) as proxy:
        store = ObjectStore(s3_location, replace(s3_settings, endpoint_url=proxy.url))
        store.put_new("kept", b"kept", "crc32c:0")
        proxy.plan("*", *[status] * 10)
        with pytest.raises(ObjectStoreUnavailableError, match=r"kept failing.*repo/new.*retry"):
            store.put_new("new", b"1", "crc32c:0")
        with pytest.raises(ObjectStoreUnavailableError, match=r"repo/kept"):
            store.get_bytes("kept")
        proxy.faults.clear()
        assert store.get_bytes("kept") == b"kept"
        assert store.head("new") is None


def test_a_slow_answer_is_a_clear_error(
    s3_server: S3Server, s3_location: S3Location, s3_settings: S3Settings
) -> None:
    with fault_proxy(s3_server.url) as proxy:
        settings = replace(s3_settings, endpoint_url=proxy.url, read_timeout=0.5)
        store = ObjectStore(s3_location, settings)
        store.put_new("kept", b"kept", "crc32c:0")
        proxy.plan("GET", "slow:2")  # one slow answer: the retry succeeds
        assert store.get_bytes("kept") == b"kept"
        proxy.plan("GET", "slow:2", "slow:2")
        with pytest.raises(
            ObjectStoreUnavailableError, match=r"too slowly.*repo/kept.*read_timeout"
        ):
            store.get_bytes("kept")


def test_importing_the_layer_loads_no_client_library() -> None:
    code = (
        "import sys, butler.objectstore, butler.objectstore.cache, butler.objectstore.ranged\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
