"""Moving data (issue 18): export and import bundles, transfer between repositories.

Round trips give the same refs, the same bytes and the same calibration answers (as_of
too); a transfer killed mid-way and rerun with --skip-existing ends with every dataset
once; a conflict is reported, never overwritten unless asked; hostile bundles write
nothing anywhere. The registry tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _processes import run_on_a_terminal
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler import Butler, Image
from butler.bundle import export_datasets
from butler.errors import BundleError, InvalidQueryError, RepositoryError
from butler.transfer import transfer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FOCUS = (-1.0, 0.5)
DAYS = ("2024-02-28", "2024-03-04", "2024-03-08")


def butler_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "butler.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def fill(butler: Butler, visits: range, run: str = "run-a") -> None:
    butler.put_many(
        "focusSweep",
        [({"visit": v, "focus": f}, {"visit": v, "focus": f}) for v in visits for f in FOCUS],
        run=run,
    )


def refs(butler: Butler, dataset_type: str) -> list[tuple[object, ...]]:
    """What a ref says apart from its repository: id, run and data ID."""
    return sorted(
        (ref.id, ref.run, tuple(sorted(ref.data_id.items())))
        for ref in butler.query_datasets(dataset_type)
    )


def files(butler: Butler, dataset_type: str) -> dict[tuple[object, ...], bytes]:
    return {
        tuple(sorted(ref.data_id.items())): Path(butler.uri(ref)[len("file://") :]).read_bytes()
        for ref in butler.query_datasets(dataset_type)
    }


@pytest.fixture
def opened() -> Iterator[list[Butler]]:
    """Butlers a test opens (appended to this list), closed after it."""
    butlers: list[Butler] = []
    yield butlers
    for butler in butlers:
        butler.close()


@pytest.fixture
def new(tmp_path: Path, opened: list[Butler]) -> Callable[..., Butler]:
    """Create a repository below tmp_path, closed after the test."""

    def create(name: str, mapper: str = "toycam", registry: str | None = None) -> Butler:
        butler = Butler.create(tmp_path / name, mapper=mapper, registry=registry)
        opened.append(butler)
        return butler

    return create


@pytest.fixture
def source(new: Callable[..., Butler], registries: RegistryFactory) -> Butler:  # noqa: F811
    """focusSweep visits 1-10, three biases with a bitemporal certification history."""
    butler = new("source", registry=registries())
    fill(butler, range(1, 11))
    for day in DAYS:
        image = Image(np.full((3, 3), float(day[-2:]), "f4"))
        butler.put(image, "bias", calibDate=day, detector=1, run="calib")
    butler.certify("bias", {"calibDate": DAYS[0], "detector": 1}, DAYS[0])
    butler.certify("bias", {"calibDate": DAYS[1], "detector": 1}, DAYS[1], supersede=True)
    butler.certify("bias", {"calibDate": DAYS[2], "detector": 1}, DAYS[2], supersede=True)
    return butler


def answers(butler: Butler) -> list[object]:
    """Calibration lookups now and as the registry stood at each recorded change."""
    history = butler.calibration_history("bias")
    moments = sorted({row.recorded_from for row in history})
    found = []
    for as_of in [None, *moments]:
        for day in ("2024-03-01T00:00:00", "2024-03-05T00:00:00", "2024-03-09T00:00:00"):
            ref = butler.find_calibration("bias", obsTime=day, detector=1, as_of=as_of)
            found.append((as_of, day, ref.data_id["calibDate"]))
    return [found, [row.describe() for row in history]]


# ---- export and import ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bundle", "bundle.zip"])
def test_export_then_import_gives_the_same_refs_files_and_calibration_answers(
    tmp_path: Path,
    source: Butler,
    registries: RegistryFactory,  # noqa: F811
    name: str,
    new: Callable[..., Butler],
) -> None:
    out = tmp_path / name
    exported = source.export(out, ["focusSweep", "bias"])
    assert (exported.done, exported.certifications, exported.ok) == (23, 5, True)
    target = new("target", registry=registries())
    report = target.import_bundle(out)
    assert (report.done, report.skipped, report.certifications, report.ok) == (23, 0, 5, True)
    for dataset_type in ("focusSweep", "bias"):
        assert refs(target, dataset_type) == refs(source, dataset_type)
        assert files(target, dataset_type) == files(source, dataset_type)
    assert answers(target) == answers(source)
    assert target.provenance.runs()["calib"] == source.provenance.runs()["calib"]
    assert target.verify(read=True).clean
    again = target.import_bundle(out, skip_existing=True)  # a rerun adds nothing
    assert (again.done, again.skipped, again.certifications) == (0, 23, 0)
    assert refs(target, "focusSweep") == refs(source, "focusSweep")


def test_export_selects_with_where_and_the_manifest_is_documented_json(
    tmp_path: Path, source: Butler
) -> None:
    report = export_datasets(source, tmp_path / "out", "focusSweep", where="visit IN (2, 3)")
    assert report.done == 4
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["format"], manifest["version"], manifest["instrument"]) == (
        "butler-bundle",
        1,
        "ToyCam",
    )
    entry = manifest["datasets"][0]
    assert set(entry) == {
        "dataset_type",
        "data_id",
        "dataset_id",
        "run",
        "created",
        "file",
        "size",
        "checksum",
    }
    assert entry["checksum"].startswith("crc32c:")
    assert (tmp_path / "out" / entry["file"]).stat().st_size == entry["size"]
    assert manifest["runs"]["run-a"]["run"] == "run-a"


def test_import_refuses_a_bundle_of_another_instrument(
    tmp_path: Path, source: Butler, new: Callable[..., Butler]
) -> None:
    out = tmp_path / "out"
    source.export(out, "focusSweep")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["instrument"] = "HSC"
    (out / "manifest.json").write_text(json.dumps(manifest))
    target = new("target")
    with pytest.raises(RepositoryError, match="same instrument"):
        target.import_bundle(out)
    assert target.count("focusSweep") == 0


def test_import_verifies_checksums(
    tmp_path: Path, source: Butler, new: Callable[..., Butler]
) -> None:
    out = tmp_path / "out"
    source.export(out, "focusSweep", where="visit = 1")
    manifest = json.loads((out / "manifest.json").read_text())
    victim = out / manifest["datasets"][0]["file"]
    data = bytearray(victim.read_bytes())
    data[-2] ^= 0x01  # one flipped bit, same size
    victim.write_bytes(bytes(data))
    target = new("target")
    report = target.import_bundle(out)
    assert (report.done, len(report.failed), report.ok) == (1, 1, False)
    assert "not what was recorded" in report.failed[0]
    assert target.count("focusSweep") == 1


def _hostile_folder(tmp_path: Path, source: Butler, file_name: str) -> Path:
    out = tmp_path / "out"
    source.export(out, "focusSweep", where="visit = 1")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["datasets"][0]["file"] = file_name
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.mark.parametrize(
    "file_name", ["files/../../evil.yaml", "/tmp/evil.yaml", "files/a/../../../evil", "x/y"]
)
def test_import_refuses_paths_that_leave_the_bundle(
    tmp_path: Path, source: Butler, file_name: str, new: Callable[..., Butler]
) -> None:
    out = _hostile_folder(tmp_path, source, file_name)
    target = new("target")
    with pytest.raises(BundleError, match=r"refusing the bundle|not a relative path"):
        target.import_bundle(out)
    assert target.count("focusSweep") == 0


def test_import_refuses_a_symlink_in_a_bundle_folder(
    tmp_path: Path, source: Butler, new: Callable[..., Butler]
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    out = tmp_path / "out"
    source.export(out, "focusSweep", where="visit = 1")
    manifest = json.loads((out / "manifest.json").read_text())
    victim = out / manifest["datasets"][0]["file"]
    victim.unlink()
    victim.symlink_to(outside)
    target = new("target")
    with pytest.raises(BundleError, match="symbolic link"):
        target.import_bundle(out)
    assert target.count("focusSweep") == 0


def _rezip(source_zip: Path, out: Path, change: dict[str, tuple[bytes, int]]) -> None:
    """Copy a zip, replacing entries by (bytes, unix mode)."""
    with zipfile.ZipFile(source_zip) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            if info.filename in change:
                data, mode = change[info.filename]
                replaced = zipfile.ZipInfo(info.filename)
                replaced.external_attr = mode << 16
                new.writestr(replaced, data)
            else:
                new.writestr(info, old.read(info))


def test_import_refuses_zip_symlinks_and_oversized_entries(
    tmp_path: Path, source: Butler, new: Callable[..., Butler]
) -> None:
    good = tmp_path / "good.zip"
    source.export(good, "focusSweep", where="visit = 1")
    with zipfile.ZipFile(good) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    name = manifest["datasets"][0]["file"]
    target = new("target")
    link = tmp_path / "link.zip"
    _rezip(good, link, {name: (b"/etc/passwd", stat.S_IFLNK | 0o777)})
    with pytest.raises(BundleError, match="symbolic link"):
        target.import_bundle(link)
    big = tmp_path / "big.zip"
    _rezip(good, big, {name: (b"x" * 10_000_000, stat.S_IFREG | 0o644)})
    with pytest.raises(BundleError, match="bytes, not the"):
        target.import_bundle(big)
    assert target.count("focusSweep") == 0
    assert not list(tmp_path.glob("**/passwd"))


def test_import_of_a_folder_without_manifest_or_a_non_bundle(
    tmp_path: Path, new: Callable[..., Butler]
) -> None:
    target = new("target")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        target.import_bundle(tmp_path / "empty")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a readable zip"):
        target.import_bundle(tmp_path / "junk.zip")


# ---- transfer -----------------------------------------------------------------------------


def test_transfer_keeps_ids_and_runs_and_reports_conflicts(
    tmp_path: Path,
    source: Butler,
    registries: RegistryFactory,  # noqa: F811
    new: Callable[..., Butler],
) -> None:
    target = new("target", registry=registries())
    target.put({"other": True}, "focusSweep", visit=1, focus=0.5, run="mine")
    report = transfer(source, target, "focusSweep", where="visit <= 3")
    assert (report.done, len(report.conflicts), report.ok) == (5, 1, False)
    assert "other content" in report.conflicts[0] and "visit: 1" in report.conflicts[0]
    assert target.get("focusSweep", visit=1, focus=0.5) == {"other": True}  # left as it is
    moved = {r for r in refs(target, "focusSweep") if r[1] == "run-a"}
    assert moved == {r for r in refs(source, "focusSweep") if dict(r[2])["visit"] <= 3} - {
        r for r in refs(source, "focusSweep") if dict(r[2]) == {"visit": 1, "focus": 0.5}
    }
    again = transfer(source, target, "focusSweep", where="visit <= 3", skip_existing=True)
    assert (again.done, again.skipped, len(again.conflicts)) == (0, 5, 1)
    forced = transfer(
        source, target, "focusSweep", where="visit = 1", overwrite=True, skip_existing=True
    )
    assert (forced.done, forced.skipped, forced.ok) == (1, 1, True)
    assert target.get("focusSweep", visit=1, focus=0.5) == {"visit": 1, "focus": 0.5}
    assert refs(target, "focusSweep") == [
        r for r in refs(source, "focusSweep") if dict(r[2])["visit"] <= 3
    ]


def test_transfer_link_and_move(tmp_path: Path, source: Butler, new: Callable[..., Butler]) -> None:
    linked = new("linked")
    assert transfer(source, linked, "focusSweep", where="visit = 2", mode="link").ok
    for ref in linked.query_datasets("focusSweep"):
        here = Path(linked.uri(ref)[len("file://") :])
        there = Path(source.uri("focusSweep", ref.data_id)[len("file://") :])
        assert os.path.samefile(here, there)
    moved = new("moved")
    before = refs(source, "focusSweep")
    report = transfer(source, moved, "focusSweep", where="visit >= 9", mode="move")
    assert (report.done, report.ok) == (4, True)
    assert refs(moved, "focusSweep") == [r for r in before if dict(r[2])["visit"] >= 9]
    assert source.count("focusSweep", where="visit >= 9") == 0
    assert source.verify().clean and moved.verify(read=True).clean


def _link_at_once(datastore: Any, source: Path, folder: str, count: int) -> list[object]:
    """``count`` threads, released together, each linking ``source`` into ``folder``; what
    each got (a temporary, None, or the exception it raised)."""
    start = threading.Barrier(count)
    got: list[object] = [None] * count

    def link(n: int) -> None:
        start.wait()
        try:
            got[n] = datastore.link(source, datastore.target(f"{folder}/f{n}.bin"))
        except BaseException as error:  # the race raised FileNotFoundError here
            got[n] = error

    threads = [threading.Thread(target=link, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def test_links_made_at_once_into_one_new_folder_all_succeed(tmp_path: Path) -> None:
    """A transfer stages links in threads; two into a folder neither made yet must both
    succeed (one saw its link fail for the missing folder after the other had made it)."""
    butler = Butler.create(tmp_path / "repo", mapper="toycam")
    source = tmp_path / "source.bin"
    source.write_bytes(b"x")
    for round_ in range(40):
        got = _link_at_once(butler.datastore, source, f"d{round_}/e", 6)
        assert all(isinstance(temporary, Path) for temporary in got), got
    butler.close()


def test_transfer_refuses_another_instrument_and_a_bad_expression(
    tmp_path: Path, source: Butler, new: Callable[..., Butler]
) -> None:
    other = new("hsc", "hsc")
    with pytest.raises(RepositoryError, match="same instrument"):
        transfer(source, other, "focusSweep")
    target = new("target")
    with pytest.raises(InvalidQueryError, match="visti"):
        transfer(source, target, "focusSweep", where="visti = 1")
    assert target.count("focusSweep") == 0


def test_cli_transfer_exit_status_and_summary(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    with Butler.create(src, mapper="toycam") as butler:
        fill(butler, range(1, 4))
    with Butler.create(dst, mapper="toycam") as butler:
        butler.put({"other": 1}, "focusSweep", visit=3, focus=0.5)
    done = butler_cli("transfer", src, dst, "focusSweep", "--where", "visit < 3")
    assert done.returncode == 0, done.stderr
    assert "transferred 4, skipped 0, conflicts 0, failed 0" in done.stdout
    clash = butler_cli("transfer", src, dst, "focusSweep", "--skip-existing")
    assert clash.returncode == 1
    assert "transferred 1, skipped 4, conflicts 1, failed 0" in clash.stdout
    assert "conflict:" in clash.stderr and "--overwrite" in clash.stderr
    bundle = tmp_path / "b.zip"
    exported = butler_cli("export", src, bundle, "--dataset-type", "focusSweep")
    assert exported.returncode == 0 and "exported 6" in exported.stdout
    fresh = tmp_path / "fresh"
    Butler.create(fresh, mapper="toycam").close()
    imported = butler_cli("import", fresh, bundle)
    assert imported.returncode == 0 and "imported 6" in imported.stdout


def _table(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT table_name FROM dataset_type WHERE name = 'focusSweep'").fetchone()
    return None if row is None else str(row[0])


def _count_rows(registry: Path) -> int:
    """Rows committed in a registry another process is writing (read with sqlite3 alone)."""
    with contextlib.closing(sqlite3.connect(f"file:{registry}?mode=ro", uri=True)) as conn:
        table = _table(conn)
        if table is None:  # not registered yet
            return 0
        return int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])


def test_a_transfer_killed_midway_finishes_on_rerun_without_duplicates(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    with Butler.create(src, mapper="toycam") as butler:
        fill(butler, range(1, 1501))  # 3000 datasets
    Butler.create(dst, mapper="toycam").close()
    process = subprocess.Popen(
        [sys.executable, "-m", "butler.cli", "transfer", src, dst, "--batch-size", "10"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    registry = dst / "registry.sqlite3"
    deadline = time.monotonic() + 120
    while _count_rows(registry) < 20 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    arrived = _count_rows(registry)
    assert 0 < arrived < 3000, "the transfer was not interrupted mid-way"
    rerun = butler_cli("transfer", src, dst, "--skip-existing")
    assert rerun.returncode == 0, rerun.stderr
    assert f"transferred {3000 - arrived}, skipped {arrived}," in rerun.stdout
    with Butler(src) as a, Butler(dst) as b:
        assert refs(b, "focusSweep") == refs(a, "focusSweep")
        assert b.verify(read=True).clean
    with contextlib.closing(sqlite3.connect(registry)) as conn:
        table = _table(conn)
        (rows, ids) = conn.execute(
            f'SELECT COUNT(*), COUNT(DISTINCT dataset_id) FROM "{table}"'
        ).fetchone()
    assert rows == ids == 3000


# ---- query_datasets takes the query arguments -----------------------------------------------


@pytest.fixture(scope="module")
def queried(tmp_path_factory: pytest.TempPathFactory) -> Butler:
    butler = Butler.create(tmp_path_factory.mktemp("q") / "repo", mapper="toycam")
    fill(butler, range(1, 31))
    return butler


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    low=st.integers(1, 30),
    high=st.integers(1, 31),
    focus=st.sampled_from(FOCUS),
    limit=st.none() | st.integers(0, 70),
    descending=st.booleans(),
)
def test_query_datasets_selects_what_filtering_in_python_selects(
    queried: Butler, low: int, high: int, focus: float, limit: int | None, descending: bool
) -> None:
    everything = list(queried.query_datasets("focusSweep"))
    expected = [
        ref
        for ref in everything
        if low <= ref.data_id["visit"] < high and ref.data_id["focus"] != focus
    ]
    expected.sort(
        key=lambda ref: (
            -ref.data_id["visit"] if descending else ref.data_id["visit"],
            ref.data_id["focus"],
        )
    )
    got = list(
        queried.query_datasets(
            "focusSweep",
            where="visit >= :low AND visit < :high AND focus != :focus",
            bind={"low": low, "high": high, "focus": focus},
            order_by=["-visit" if descending else "visit"],
            limit=limit,
        )
    )
    assert got == expected[:limit]
    assert list(queried.query_datasets("focusSweep", visit=range(low, high))) == [
        ref for ref in everything if low <= ref.data_id["visit"] < high
    ]


def test_query_datasets_checks_before_it_runs(queried: Butler) -> None:
    with pytest.raises(InvalidQueryError, match="did you mean 'visit'"):
        queried.query_datasets("focusSweep", where="vist = 1")


# ---- between any two back-ends -------------------------------------------------------------
#
# Each back-end a repository can have, as a maker of an empty toycam repository: a new
# back-end (S3) is one more line here, and every test below runs on its pairs.

BACKENDS: dict[str, Callable[[Path, str], Butler]] = {
    "local": lambda folder, name: Butler.create(folder / name, mapper="toycam"),
    "memory": lambda folder, name: Butler.in_memory(mapper="toycam", name=name),
}
#: Back-ends whose repositories need fixtures: the name of a fixture giving ``make(name)``.
FIXTURE_BACKENDS = {"s3": "s3_repository"}  # the moto server and PostgreSQL (_s3server.py)
PAIRS = [(a, b) for a in BACKENDS for b in BACKENDS] + [
    pytest.param(a, b, marks=pytest.mark.postgres, id=f"{a}-{b}")
    for a, b in (("local", "s3"), ("s3", "local"))
]


@pytest.fixture
def make(
    tmp_path: Path, opened: list[Butler], request: pytest.FixtureRequest
) -> Callable[[str, str], Butler]:
    """An empty toycam repository of a back-end, closed after the test."""

    def create(backend: str, name: str) -> Butler:
        if backend in FIXTURE_BACKENDS:
            butler = request.getfixturevalue(FIXTURE_BACKENDS[backend])(f"{name}-{backend}")
        else:
            butler = BACKENDS[backend](tmp_path, f"{name}-{backend}")
        opened.append(butler)
        return butler

    return create


def filled(make: Callable[[str, str], Butler], backend: str) -> Butler:
    """focusSweep visits 1-4 and three certified biases (as ``source``), on ``backend``."""
    butler = make(backend, "source")
    fill(butler, range(1, 5))
    for day in DAYS:
        image = Image(np.full((3, 3), float(day[-2:]), "f4"))
        butler.put(image, "bias", calibDate=day, detector=1, run="calib")
    for n, day in enumerate(DAYS):
        butler.certify("bias", {"calibDate": day, "detector": 1}, day, supersede=n > 0)
    return butler


def objects(butler: Butler) -> dict[tuple[object, ...], object]:
    """What a get returns for every dataset (images as their pixel lists)."""
    found: dict[tuple[object, ...], object] = {}
    for dataset_type in ("focusSweep", "bias"):
        for ref in butler.query_datasets(dataset_type):
            obj = butler.get(ref)
            shown = obj.array.tolist() if isinstance(obj, Image) else obj
            found[(dataset_type, *sorted(ref.data_id.items()))] = shown
    return found


def stored_bytes(butler: Butler, dataset_type: str) -> dict[tuple[object, ...], bytes]:
    """Each dataset's stored bytes, read through its datastore (any back-end)."""
    from butler.file_access import open_bytes

    found = {}
    for name in [dataset_type]:
        for record in butler.registry.select_records(name, None):
            with open_bytes(butler, record) as stream:
                found[tuple(sorted(record.data_id.items()))] = stream.read()
    return found


def same_repository(target: Butler, source: Butler) -> None:
    for dataset_type in ("focusSweep", "bias"):
        assert refs(target, dataset_type) == refs(source, dataset_type)
    assert objects(target) == objects(source)
    assert answers(target) == answers(source)
    assert target.provenance.runs()["calib"] == source.provenance.runs()["calib"]


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_transfer_between_back_ends_keeps_refs_objects_bytes_and_calibrations(
    make: Callable[[str, str], Butler], src: str, dst: str
) -> None:
    source = filled(make, src)
    target = make(dst, "target")
    report = transfer(source, target, ["focusSweep", "bias"])
    assert (report.done, report.certifications, report.ok) == (11, 5, True)
    same_repository(target, source)
    if src != "memory":  # a memory source keeps objects: its bytes are the formatter's
        assert stored_bytes(target, "bias") == stored_bytes(source, "bias")
    again = transfer(source, target, ["focusSweep", "bias"], skip_existing=True)
    assert (again.done, again.skipped, again.ok) == (0, 11, True)
    back = make(src, "back")  # and back again: the same bytes as the first copy
    assert transfer(target, back, ["focusSweep", "bias"]).ok
    same_repository(back, source)
    assert stored_bytes(back, "focusSweep") == stored_bytes(target, "focusSweep")


@pytest.mark.parametrize(("src", "dst"), PAIRS)
@pytest.mark.parametrize("name", ["bundle", "bundle.zip"])
def test_export_then_import_between_back_ends(
    tmp_path: Path, make: Callable[[str, str], Butler], src: str, dst: str, name: str
) -> None:
    source = filled(make, src)
    exported = source.export(tmp_path / name, ["focusSweep", "bias"])
    assert (exported.done, exported.certifications, exported.ok) == (11, 5, True)
    target = make(dst, "target")
    report = target.import_bundle(tmp_path / name)
    assert (report.done, report.certifications, report.ok) == (11, 5, True)
    same_repository(target, source)


@pytest.mark.parametrize(("src", "dst"), [p for p in PAIRS if p != ("local", "local")])
def test_link_is_refused_unless_both_keep_local_files_and_move_copies(
    make: Callable[[str, str], Butler], src: str, dst: str
) -> None:
    source = filled(make, src)
    target = make(dst, "target")
    with pytest.raises(InvalidQueryError, match="links need both repositories on local files"):
        transfer(source, target, "focusSweep", mode="link")
    assert target.count("focusSweep") == 0 and source.count("focusSweep") == 8
    before = objects(source)
    report = transfer(source, target, "focusSweep", where="visit >= 3", mode="move")
    assert (report.done, report.ok) == (4, True)
    assert source.count("focusSweep") == 4
    assert {k: v for k, v in objects(target).items() if k[0] == "focusSweep"} == {
        k: v for k, v in before.items() if k[0] == "focusSweep" and dict(k[1:])["visit"] >= 3
    }


def test_a_transfer_into_memory_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    """Run in a real pseudo-terminal: the progress line is drawn on its stderr."""
    src = tmp_path / "src"
    with Butler.create(src, mapper="toycam") as butler:
        fill(butler, range(1, 4))
    script = (
        "import sys\nfrom butler import Butler\nfrom butler.transfer import transfer\n"
        f"source = Butler({str(src)!r})\n"
        "with Butler.in_memory(mapper='toycam') as target:\n"
        "    report = transfer(source, target, 'focusSweep', show_progress=True)\n"
        "    print(report.summary(), target.count('focusSweep'))\n"
    )
    process, drawn = run_on_a_terminal(script)
    assert process.returncode == 0, drawn
    assert "transferred 6, skipped 0, conflicts 0, failed 0 6" in process.stdout
    assert "transferred: 6/6 done" in drawn
