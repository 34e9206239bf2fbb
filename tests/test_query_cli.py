"""``butler query --where`` and ``butler remove``, run as a user runs them: a subprocess."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from butler import Butler

FOCUS = (-1.0, 0.5)


def butler_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "butler.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def make(root: Path, visits: range, parents: tuple[Path, ...] = ()) -> Path:
    with Butler.create(root, mapper="toycam", parents=parents) as butler:
        for visit in visits:
            for focus in FOCUS:
                butler.put({"visit": visit}, "focusSweep", visit=visit, focus=focus)
    return root


def snapshot(root: Path) -> dict[str, object]:
    """Every file's digest (the SQLite registry's by its records: reading it may leave a WAL)."""
    files: dict[str, object] = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith("registry.sqlite3")
    }
    with Butler(root, writeable=False, parents=False) as butler:
        files["records"] = list(butler.registry.datasets())
    return files


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make(tmp_path / "repo", range(1, 5))


def test_query_where_bind_order_and_limit(repo: Path) -> None:
    done = butler_cli(
        "query", repo, "focusSweep", "--where", "visit IN (:v) AND focus < 0", "--bind", "v=1,4"
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "{visit: 1, focus: -1.0}\n{visit: 4, focus: -1.0}\n",
        "",
    )
    done = butler_cli("query", repo, "focusSweep", "focus=0.5", "--order-by=-visit", "--limit", "3")
    assert done.stdout.splitlines() == [
        "{visit: 4, focus: 0.5}",
        "{visit: 3, focus: 0.5}",
        "{visit: 2, focus: 0.5}",
    ]
    assert (
        butler_cli("query", repo, "focusSweep", "--where", "visit > 2", "--count").stdout == "4\n"
    )
    done = butler_cli("query", repo, "focusSweep", "--where", "visit >= 3", "--values", "visit")
    assert done.stdout == "3\n4\n"


def test_query_error_shows_the_caret_and_exits_2(repo: Path) -> None:
    done = butler_cli("query", repo, "focusSweep", "--where", "vist > 2")
    assert done.returncode == 2
    assert done.stderr == (
        "butler query: unknown key 'vist' for dataset type 'focusSweep'\n"
        "  vist > 2\n"
        "  ^^^^\n"
        "  help: did you mean 'visit'? (keys of 'focusSweep': visit, focus)\n"
    )
    assert "Traceback" not in butler_cli("query", repo, "focusSweep", "--where", "((").stderr


def test_query_with_and_without_other_dataset_types(repo: Path) -> None:
    with Butler(repo) as butler:
        butler.put({}, "quicklook", visit=2, filter="r", binned=False)
    done = butler_cli("query", repo, "focusSweep", "focus=0.5", "--with", "quicklook")
    assert done.stdout == "{visit: 2, focus: 0.5}\n"
    done = butler_cli("query", repo, "focusSweep", "--without", "quicklook", "--count")
    assert done.stdout == "6\n"


def test_remove_dry_run_lists_and_changes_nothing(repo: Path) -> None:
    before = snapshot(repo)
    done = butler_cli(
        "remove", repo, "focusSweep", "--where", "visit >= 3 AND focus > 0", "--dry-run"
    )
    assert done.returncode == 0
    assert done.stdout == (
        "would remove focusSweep {visit: 3, focus: 0.5}\n"
        "would remove focusSweep {visit: 4, focus: 0.5}\n"
        f"2 'focusSweep' dataset(s) would be removed from {repo} (dry run)\n"
    )
    assert snapshot(repo) == before


def test_remove_off_a_terminal_needs_yes(repo: Path) -> None:
    before = snapshot(repo)
    done = butler_cli("remove", repo, "focusSweep", "visit=1")
    assert done.returncode == 2
    assert "pass --yes to remove them without asking" in done.stderr
    assert snapshot(repo) == before


def test_remove_deletes_rows_and_files_of_what_matches_only(repo: Path) -> None:
    done = butler_cli("remove", repo, "focusSweep", "--where", "visit BETWEEN 2 AND 3", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"removed 4 of 4 'focusSweep' dataset(s) from {repo}"
    with Butler(repo) as butler:
        assert sorted({d["visit"] for d in butler.query("focusSweep")}) == [1, 4]
    left = sorted(p.name for p in (repo / "focus").rglob("*.yaml"))
    assert left == ["offset-1.00.yaml", "offset-1.00.yaml", "offset0.50.yaml", "offset0.50.yaml"]
    assert sorted(p.name for p in (repo / "focus").iterdir() if any(p.iterdir())) == [
        "000001",
        "000004",
    ]
    done = butler_cli("remove", repo, "focusSweep", "visit=9", "--yes")
    assert (done.returncode, done.stdout) == (
        0,
        "no 'focusSweep' dataset matches; nothing was removed\n",
    )


def test_remove_never_touches_a_parent(tmp_path: Path) -> None:
    parent = make(tmp_path / "parent", range(1, 3))
    child = make(tmp_path / "child", range(2, 4), parents=(parent,))
    before = snapshot(parent)
    done = butler_cli("remove", child, "focusSweep", "--where", "visit <= 2", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"removed 2 of 2 'focusSweep' dataset(s) from {child}"
    assert snapshot(parent) == before
    with Butler(child) as butler:  # visit 1 and 2 are still read from the parent
        assert sorted({d["visit"] for d in butler.query("focusSweep")}) == [1, 2, 3]
