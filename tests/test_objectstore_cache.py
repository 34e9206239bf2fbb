"""The local read cache of remote datasets (butler.objectstore.cache), with real processes.

Bounded by size and count (least recently used first), keyed by dataset id, shared between
processes, safe against another process evicting a file that is being read, and off-able.
"""

from __future__ import annotations

import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from _processes import run_together
from butler.errors import ConfigError
from butler.objectstore.cache import NoCache, SharedCache, cache_from_environment, parse_size
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def writer(payload: bytes, calls: list[str] | None = None) -> Any:
    def fetch(path: Path) -> None:
        if calls is not None:
            calls.append(path.name)
        path.write_bytes(payload)

    return fetch


def test_a_second_read_is_served_from_the_cache(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "c", max_bytes=10_000)
    calls: list[str] = []
    for _ in range(3):
        with cache.open("id1", writer(b"abc", calls), ".fits") as path:
            assert path.read_bytes() == b"abc"
            assert path.suffix == ".fits"
    assert len(calls) == 1
    assert cache.stats().files == 1
    assert list((tmp_path / "c" / "held").iterdir()) == []  # links dropped after use


def test_bounded_by_size_least_recently_used_first(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "c", max_bytes=250)
    for name in ["a", "b"]:
        with cache.open(name, writer(b"x" * 100)):
            pass
        time.sleep(0.01)
    with cache.open("a", writer(b"x" * 100)):  # a is now more recent than b
        pass
    time.sleep(0.01)
    with cache.open("c", writer(b"x" * 100)):
        pass
    assert (cache.contains("a"), cache.contains("b"), cache.contains("c")) == (True, False, True)
    assert cache.stats().size <= 250


def test_bounded_by_count(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "c", max_bytes=None, max_files=2)
    for name in "abcde":
        with cache.open(name, writer(name.encode())):
            pass
    assert cache.stats().files == 2


def test_a_file_evicted_while_read_keeps_its_bytes(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "c", max_bytes=150)
    with cache.open("big", writer(b"1" * 100)) as path, path.open("rb") as stream:
        for name in "xyz":  # each download evicts older entries, "big" first
            with cache.open(name, writer(b"2" * 100)):
                pass
        assert not cache.contains("big")
        assert stream.read() == b"1" * 100
        assert path.read_bytes() == b"1" * 100  # the path itself, too


def test_a_failed_download_leaves_nothing(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "c")

    def broken(path: Path) -> None:
        path.write_bytes(b"part")
        raise OSError("connection lost")

    with pytest.raises(OSError, match="connection lost"), cache.open("id", broken):
        pass
    assert not cache.contains("id")
    assert [p for sub in ("tmp", "held") for p in (tmp_path / "c" / sub).iterdir()] == []


def test_hostile_ids_are_refused(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "c")
    for bad in ["../x", "a/b", "", ".hidden"]:
        with pytest.raises(ValueError), cache.open(bad, writer(b"")):
            pass


def test_configuration_from_the_environment(tmp_path: Path) -> None:
    off = cache_from_environment({"BUTLER_CACHE_SIZE": "0"})
    assert isinstance(off, NoCache)
    with off.open("id", writer(b"abc"), ".fits") as path:
        assert path.read_bytes() == b"abc"
    assert not path.exists()
    on = cache_from_environment(
        {
            "BUTLER_CACHE_DIR": str(tmp_path / "c"),
            "BUTLER_CACHE_SIZE": "2GiB",
            "BUTLER_CACHE_FILES": "7",
        }
    )
    assert isinstance(on, SharedCache)
    assert (on.folder, on.max_bytes, on.max_files) == (tmp_path / "c", 2 << 30, 7)
    assert parse_size("10GB") == 10**10 and parse_size("1.5MB") == 1_500_000
    with pytest.raises(ConfigError, match="not a size"):
        parse_size("lots")


_HOLDER = """
import sys, time
from pathlib import Path
from butler.objectstore.cache import SharedCache
cache = SharedCache(Path(sys.argv[1]), max_bytes=1000)
with cache.open("held", lambda p: p.write_bytes(b"H" * 600)) as path:
    stream = path.open("rb")
    print("holding", flush=True)
    sys.stdin.readline()  # the test evicts "held" from another process meanwhile
    print(stream.read() == b"H" * 600, path.read_bytes() == b"H" * 600, flush=True)
"""


def test_eviction_by_another_process_mid_read(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "holding\n"
        evictor = SharedCache(folder, max_bytes=1000)
        for name in "abc":
            with evictor.open(name, writer(b"e" * 600)):
                pass
        assert not evictor.contains("held")
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "True True\n"
    assert holder.returncode == 0


def _reader(folder: str, worker: int, barrier: Any, errors: Any) -> None:
    try:
        cache = SharedCache(Path(folder), max_bytes=4000, max_files=6)
        barrier.wait()
        for round_ in range(60):
            dataset = f"d{(round_ * 7 + worker) % 12}"
            content = dataset.encode() * 100
            with cache.open(dataset, writer(content)) as path:
                assert path.read_bytes() == content, dataset
        Path(folder, f"done-{worker}").touch()
    except BaseException:
        errors.put(traceback.format_exc())


def test_four_processes_share_one_small_cache(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    SharedCache(folder)
    run_together(_reader, [(str(folder), w) for w in range(4)])
    cache = SharedCache(folder, max_bytes=4000, max_files=6)
    cache.evict()
    assert cache.stats().files <= 6 and cache.stats().size <= 4000
    assert list((folder / "held").iterdir()) == []
    assert list((folder / "tmp").iterdir()) == []


def test_a_cache_filled_by_one_process_serves_another(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    code = (
        "import sys; from pathlib import Path; from butler.objectstore.cache import SharedCache\n"
        "c = SharedCache(Path(sys.argv[1]))\n"
        "with c.open('shared', lambda p: p.write_bytes(b'from-child')): pass\n"
    )
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True)
    calls: list[str] = []
    with SharedCache(folder).open("shared", writer(b"other", calls)) as path:
        assert path.read_bytes() == b"from-child"
    assert calls == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    reads=st.lists(st.tuples(st.integers(0, 9), st.integers(1, 300)), max_size=30),
    max_bytes=st.integers(1, 1500),
    max_files=st.one_of(st.none(), st.integers(1, 5)),
)
def test_bounds_hold_and_every_read_sees_its_bytes(
    tmp_path_factory: pytest.TempPathFactory,
    reads: list[tuple[int, int]],
    max_bytes: int,
    max_files: int | None,
) -> None:
    cache = SharedCache(tmp_path_factory.mktemp("c"), max_bytes=max_bytes, max_files=max_files)
    sizes: dict[int, int] = {}
    for dataset, size in reads:
        size = sizes.setdefault(dataset, size)  # one dataset id, one content
        content = bytes([dataset]) * size
        with cache.open(f"d{dataset}", writer(content)) as path:
            assert path.read_bytes() == content
        stats = cache.stats()
        assert stats.size <= max_bytes
        assert max_files is None or stats.files <= max_files


def test_a_download_killed_midway_is_cleared(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    code = (
        "import os, sys, signal; from pathlib import Path\n"
        "from butler.objectstore.cache import SharedCache\n"
        "def fetch(p):\n"
        "    (p.parent / '.data.part').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "with SharedCache(Path(sys.argv[1])).open('id', fetch): pass\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(folder)], check=False)
    assert killed.returncode == -9
    assert len(list((folder / "tmp").iterdir())) == 1
    cache = SharedCache(folder)
    with cache.open("other", writer(b"x")):
        pass  # a download evicts, and clears what dead processes left
    assert list((folder / "tmp").iterdir()) == []
    assert not cache.contains("id")
