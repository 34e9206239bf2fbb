"""The read cache's ``usage`` count (issue 15, "Speed"): a download within the bounds adds
itself to the count instead of listing every cached copy, so a get that misses costs the
same in a cache of any size; the count stays exact, and a missing or garbled one is
rebuilt by listing the folder."""

from __future__ import annotations

from pathlib import Path

from butler.objectstore.cache import SharedCache


def _fill(cache: SharedCache, names: str, size: int) -> None:
    for name in names:
        with cache.open(name, lambda path, n=name: path.write_bytes(n.encode() * size)):
            pass


def _usage(folder: Path) -> tuple[int, int]:
    total, count = (folder / "usage").read_text().split()
    return int(total), int(count)


def test_the_usage_count_follows_downloads_evictions_and_clears(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    cache = SharedCache(folder, max_bytes=1000, max_files=4)
    _fill(cache, "ab", 100)
    assert _usage(folder) == (200, 2) == (cache.stats().size, cache.stats().files)
    _fill(cache, "cdef", 100)  # past max_files: listed, the oldest two evicted
    assert _usage(folder) == (400, 4) == (cache.stats().size, cache.stats().files)
    assert not cache.contains("a") and cache.contains("f")
    _fill(cache, "g", 700)  # past max_bytes
    stats = cache.stats()
    assert stats.size <= 1000 and _usage(folder) == (stats.size, stats.files)
    cache.clear()
    _fill(cache, "h", 10)
    assert _usage(folder) == (10, 1) == (cache.stats().size, cache.stats().files)


def test_a_missing_or_garbled_count_is_rebuilt_by_listing(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    cache = SharedCache(folder, max_files=10)
    _fill(cache, "ab", 50)
    (folder / "usage").write_text("not a count")
    _fill(cache, "c", 50)
    assert _usage(folder) == (150, 3)
    (folder / "usage").unlink()
    _fill(cache, "d", 50)
    assert _usage(folder) == (200, 4)
    other = SharedCache(folder, max_files=2)  # another process's smaller bound
    _fill(other, "e", 50)
    assert _usage(folder) == (100, 2) == (other.stats().size, other.stats().files)
