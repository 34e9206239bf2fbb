"""A full disk: put says so and names the dataset; remove still works and frees space (issue 12).

A real, small file system: a 2 MiB tmpfs mounted for the test (root only; the test
is skipped, saying why, where mounting is not permitted) and unmounted afterwards.
The repository is filled with puts until one fails, then what room is left is
taken by another file, as another program would. The failed put must raise
StorageFullError naming the dataset type, its data ID and the repository, and
leave nothing behind; every stored dataset must still read back; removing must
work and free space; a later put must succeed.

With the default SQLite registry the remove works through the registry's reserve
file (``registry.sqlite3-reserve``), or, for a repository without one, by
checkpointing and truncating the WAL; with PostgreSQL the registry is elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from butler.butler import Butler
from butler.errors import StorageFullError

BLOB = {"data": "x" * 60_000}  # a ~60 kB YAML file
SIZE = "2M"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 2 MiB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8); not available here")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (not permitted?): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False, capture_output=True)
        if os.path.ismount(disk):
            subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


def _free(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def _fill(path: Path) -> None:
    """Take every byte left on the file system, as another program would."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 512)
    except OSError as error:
        assert error.errno == 28  # ENOSPC
    finally:
        os.close(descriptor)


@pytest.mark.parametrize(
    "registry",
    [
        "sqlite",
        pytest.param("sqlite-without-reserve", id="sqlite-without-reserve"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_a_full_disk_is_reported_and_remove_still_frees_space(
    small_disk: Path, registry: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("postgres_url")) if registry == "postgres" else None
    root = small_disk / "repo"
    with Butler.create(root, mapper="toycam", registry=url) as butler:
        stored = []
        with pytest.raises(StorageFullError) as raised:
            for visit in range(1, 100):
                butler.put(BLOB, "focusSweep", visit=visit, focus=0.5)
                stored.append(visit)
        message = str(raised.value)
        failed = stored[-1] + 1
        assert "'focusSweep'" in message and f"visit: {failed}" in message
        assert str(root) in message and "full" in message
        assert len(stored) >= 5
        if registry == "sqlite-without-reserve":  # a repository made before the reserve
            (root / "registry.sqlite3-reserve").unlink()
        _fill(small_disk / "other-program")
        assert _free(small_disk) == 0
        # nothing stored is lost, and the failed put left nothing behind
        assert not butler.exists("focusSweep", visit=failed, focus=0.5)
        assert [p for p in root.rglob("*") if p.name.endswith(".butler-tmp")] == []
        for visit in stored:
            assert butler.get("focusSweep", visit=visit, focus=0.5) == BLOB
        # removing works on the full disk, and frees space
        butler.remove("focusSweep", visit=stored[0], focus=0.5)
        butler.remove("focusSweep", visit=stored[1], focus=0.5)
        butler.remove("focusSweep", visit=stored[2], focus=0.5)
        # (a fourth: the dataset ids' unique index makes each put's registry commit larger)
        butler.remove("focusSweep", visit=stored[3], focus=0.5)
        # room for another put and the registry's write-ahead log (the reserve is made again)
        assert _free(small_disk) >= 100_000
        assert not butler.exists("focusSweep", visit=stored[0], focus=0.5)
        butler.put(BLOB, "focusSweep", visit=failed, focus=0.5)  # in the space freed
        assert butler.get("focusSweep", visit=failed, focus=0.5) == BLOB
        (small_disk / "other-program").unlink()  # the other program is done
        butler.put(BLOB, "focusSweep", visit=failed + 1, focus=0.5)
        for visit in stored[4:]:
            assert butler.get("focusSweep", visit=visit, focus=0.5) == BLOB
        report = butler.verify()
        assert report.clean and report.untracked == () and report.temporaries == ()
        if url is None:  # the reserve was made again once there was room
            assert (root / "registry.sqlite3-reserve").stat().st_size == 256 * 1024
