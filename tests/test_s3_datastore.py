"""Repositories in S3 (issue 15): the S3 back-end against a real S3-protocol server.

The Butler behaviour suite runs on S3 in test_backends.py; these are the guarantees
that only object storage has: the PostgreSQL registry it needs, nothing of the endpoint
or credentials in the repository, section reads by byte range, ``get`` never listing,
concurrent writers racing for data IDs, killed writers, faults, and ``verify``.
The server is moto's, in its own process (tests/_s3server.py); the registry PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _s3writers
import numpy as np
import pytest
from _processes import preloaded, run_on_a_terminal, run_together
from _repos import postgres_schemas
from _s3faults import fault_proxy
from _s3server import S3Server
from butler import BBox, Butler, Image
from butler.checksums import checksum_of
from butler.cli import main
from butler.errors import ButlerError, ConfigError, RepositoryError
from butler.file_access import open_bytes
from butler.ingest import IngestError, read_header_file, write_header_only_fits
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


def test_open_bytes_gives_the_stored_bytes_through_the_cache_or_without_it(
    tmp_path: Path,
    s3_location: S3Location,
    s3_server: S3Server,
    schemas: object,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What export and transfer copy out: the object's bytes as stored, downloaded once
    into the read cache (a second read is a HEAD), or each time with the cache off; an
    export of a dataset whose object is gone reports it and exports the rest."""
    url = _url(s3_location)
    store = _store(s3_location, s3_server)
    with Butler.create(url, mapper="toycam", registry=schemas()) as butler:  # type: ignore[operator]
        butler.put({"n": 1}, "focusSweep", visit=1, **FOCUS)
        butler.put(Image(np.ones((50, 40), "f4")), "calexp", visit=1, detector=1, filter="g")
    for cache_size, gets in (("4GiB", 1), ("0", 2)):
        monkeypatch.setenv("BUTLER_CACHE_SIZE", cache_size)
        with fault_proxy(s3_server.url) as proxy:
            monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
            with Butler(url) as butler:
                for name in ("focusSweep", "calexp"):
                    (record,) = butler.registry.select_records(name, None)
                    stored = store.get_bytes(record.path)
                    proxy.requests.clear()
                    for _ in range(2):
                        with open_bytes(butler, record) as stream:
                            assert stream.read() == stored
                    assert [m for m, _, _ in proxy.requests].count("GET") == gets, name
                    assert checksum_of(stored) == record.checksum
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.url)
        monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path / "another-cache"))
    with Butler(url) as butler:
        (record,) = butler.registry.select_records("focusSweep", None)
        store.delete(record.path)
        report = butler.export(tmp_path / "bundle", ["focusSweep", "calexp"])
        assert (report.done, len(report.failed)) == (1, 1)
        assert store.uri(record.path) in report.failed[0]


HEADERS = Path(__file__).parent / "data" / "headers"
HSC_RAWS = {  # real HSC headers: HSC-I visit 904024 CCD 50; HSC-R visit 40900 CCD 37
    "fitsheader-hsc.yaml": 904024,
    "fitsheader-hsc-HSCA04090107.yaml": 40900,
}


def test_cli_ingest_copies_raws_into_the_bucket_and_refuses_other_transfers(
    s3_repository: Callable[..., Butler],
    s3_location: S3Location,
    s3_server: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`butler ingest s3://... FILE... --transfer copy` records each raw and puts its
    bytes in the bucket (stderr not a terminal: no progress line, no failure); links,
    symlinks, moves and in-place records are refused naming the one that works, and
    leave the sources and the repository as they were."""
    raws = [
        write_header_only_fits(read_header_file(HEADERS / name), tmp_path / f"{n}.fits")
        for n, name in enumerate(HSC_RAWS)
    ]
    with s3_repository("hsc-repo", mapper="hsc") as created:
        url = str(created.root)
    store = _store(s3_location, s3_server, "hsc-repo")
    capsys.readouterr()
    for transfer in ("symlink", "link", "move", "none"):
        assert main(["ingest", url, "--transfer", transfer, *map(str, raws)]) != 0
        refused = capsys.readouterr().err
        assert f"transfer={transfer if transfer != 'none' else None!r}" in refused, refused
        assert "--transfer copy" in refused and url in refused
    assert all(raw.exists() for raw in raws)
    assert main(["ingest", url, "--transfer", "copy", *map(str, raws)]) == 0
    shown = capsys.readouterr()
    assert "ingested 2 file(s)" in shown.out and "Traceback" not in shown.err
    with Butler(url) as butler:
        visits = sorted(ref.data_id["visit"] for ref in butler.query_datasets("raw"))
        assert visits == sorted(HSC_RAWS.values())
        for raw, record in zip(
            raws,
            sorted(butler.registry.select_records("raw", None), key=lambda r: -r.data_id["visit"]),
            strict=True,
        ):
            assert store.get_bytes(record.path) == raw.read_bytes()  # the object, in the bucket
            assert record.size == raw.stat().st_size
        assert butler.verify(read=True).clean
        with pytest.raises(IngestError, match="only be copied"):
            butler.ingest(raws, transfer="symlink")
    assert main(["ingest", url, *map(str, raws)]) == 0  # again: both already there
    assert "2 skipped" in capsys.readouterr().out
    more = write_header_only_fits(  # on a terminal: the progress line is drawn
        read_header_file(HEADERS / "fitsheader-hsc.yaml"), tmp_path / "again" / "0.fits"
    )
    command = ["ingest", url, str(more)]
    ingest = f"from butler.cli import main\nraise SystemExit(main({command!r}))"
    process, drawn = run_on_a_terminal(ingest, os.environ)
    assert process.returncode == 0 and "1 skipped" in process.stdout, drawn
    assert "ingest raw: 1/1 done" in drawn


# -- writers in other processes ------------------------------------------------------------


def _fork_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The test's environment for forked writers (spill files below ``tmp_path``)."""
    (tmp_path / "spill").mkdir(exist_ok=True)
    return {**env, "TMPDIR": str(tmp_path / "spill")}


def test_four_processes_racing_lose_nothing_and_leave_no_orphans(
    s3_location: S3Location,
    s3_server: S3Server,
    env: dict[str, str],
    schemas: object,
    tmp_path: Path,
) -> None:
    """4 writers x 200 puts, the first 20 visits raced for by all four: each raced visit
    has one winner and three DatasetExistsErrors; the registry names each visit's winner
    (by its run), and verify reads every object back against its recorded checksum."""
    count, shared = 200, 20
    url = _url(s3_location)
    Butler.create(url, mapper="toycam", registry=schemas()).close()  # type: ignore[operator]
    runs = [f"writer-{n}" for n in range(4)]
    outs = [tmp_path / f"{run}.json" for run in runs]
    run_together(
        _s3writers.race,
        [
            (url, run, 1000 * (n + 1), count, shared, str(out), _fork_env(env, tmp_path))
            for n, (run, out) in enumerate(zip(runs, outs, strict=True))
        ],
        preloaded(*_s3writers.PRELOAD),
    )
    results = [json.loads(out.read_text()) for out in outs]
    for visit in map(str, range(1, shared + 1)):
        assert sorted(r[visit] for r in results) == ["exists"] * 3 + ["won"]
    assert all(len(r) == count for r in results)
    won = {
        int(v): run
        for run, r in zip(runs, results, strict=True)
        for v, o in r.items()
        if o == "won"
    }
    assert len(won) == shared + 4 * (count - shared)
    with Butler(url) as butler:
        stored = {ref.data_id["visit"]: ref.run for ref in butler.query_datasets("focusSweep")}
        assert stored == won  # 0 lost: every winner's dataset, in the winner's run
        for visit in range(1, shared + 1):  # the raced ones hold the winner's bytes
            assert butler.get("focusSweep", visit=visit, **FOCUS)["run"] == won[visit]
        report = butler.verify(read=True)  # every object is the bytes its record names
        assert report.clean and not report.corrupt, report
        assert not report.untracked and not report.temporaries and not report.pending  # 0 orphans


def _kill_when_ready(process: Any, ready: Any, wait: float = 0.0) -> None:
    """SIGKILL a started writer ``wait`` seconds after it is ready; reap it."""
    assert ready.wait(timeout=120), "the writer never got ready"
    time.sleep(wait)
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL, process.exitcode


def test_writers_killed_mid_put_leave_no_partial_object_and_verify_repairs(
    s3_location: S3Location,
    s3_server: S3Server,
    env: dict[str, str],
    schemas: object,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Twenty writers SIGKILLed: 8 at each step boundary of a new put and of an overwrite,
    3 while a PUT is on the wire (held by the proxy), 9 at random moments of a loop of puts
    and overwrites. Every object visible is whole (its bytes match the checksum stored
    with it); `verify --repair` then leaves the repository clean, every dataset readable."""
    url = _url(s3_location)
    Butler.create(url, mapper="toycam", registry=schemas()).close()  # type: ignore[operator]
    mp = preloaded(*_s3writers.PRELOAD)
    environ = _fork_env(env, tmp_path)
    kills = 0

    def killed(target: Any, *args: Any, wait: float = 0.0, environ: Any = environ) -> None:
        nonlocal kills
        ready = mp.Event()
        process = mp.Process(target=target, args=(url, *args, ready, environ))
        process.start()
        if target is _s3writers.put_once and args[2]:  # the writer kills itself
            process.join(timeout=120)
            assert process.exitcode == -signal.SIGKILL, process.exitcode
        else:
            _kill_when_ready(process, ready, wait)
        kills += 1

    with Butler(url) as butler:  # the datasets the overwrites replace
        for visit in (11, 12, 13, 14, 22, 23):
            butler.put(_s3writers.pixels(0), "calexp", visit=visit, detector=1, filter="g")
    for step in range(1, 5):  # at each step boundary: written, published, committed, settled
        killed(_s3writers.put_once, step, False, step)
        killed(_s3writers.put_once, 10 + step, True, step)
    with fault_proxy(s3_server.url) as proxy:  # a PUT held on the wire, then killed
        held = {**environ, "AWS_ENDPOINT_URL_S3": proxy.url}
        for visit, overwrite, faults in (
            (21, False, ["slow:3"]),
            (22, True, ["slow:3"]),
            (23, True, ["slow:0", "slow:3"]),
        ):
            proxy.faults.clear()
            proxy.seen.clear()
            proxy.plan("PUT", *faults)
            ready = mp.Event()
            process = mp.Process(
                target=_s3writers.put_once, args=(url, visit, overwrite, 0, ready, held)
            )
            process.start()
            deadline = time.monotonic() + 120
            while proxy.seen.count("PUT") < len(faults) and time.monotonic() < deadline:
                time.sleep(0.01)
            _kill_when_ready(process, ready)
            kills += 1
        time.sleep(3.5)  # the held PUTs reach the server after their writers died
    for n in range(20 - kills):
        killed(_s3writers.put_forever, 1000 * (n + 1), wait=random.uniform(0.0, 0.4))
    assert kills == 20

    store = _store(s3_location, s3_server)
    for info in store.objects():  # no partial object: each one visible is whole
        head = store.head(info.relative)
        if head is not None and head.checksum is not None:
            store.get_file(info.relative, tmp_path / "check", expected_checksum=head.checksum)
    monkeypatch.setenv("BUTLER_S3_STALE_SECONDS", "0")  # every writer is dead: all stale
    with Butler(url) as butler:
        report = butler.verify(repair=True)
        assert report.clean
        after = butler.verify(read=True)
        assert after.clean and not after.untracked and not after.temporaries, after
        assert not after.pending and not after.corrupt
        refs = list(butler.query_datasets("calexp"))
        assert len(refs) >= 6 + 9
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
