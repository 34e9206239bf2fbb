"""Real processes writing one repository at once, and a writer killed mid-loop.

Workers are separate Python processes (``subprocess``) running the small scripts
below against the repository's root, exactly as pipelines would. The racing pairs
at the end are forked processes released together by a barrier, round after round.
Crashes at every step boundary of a write are in ``test_butler_crashes.py``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from butler.butler import Butler
from butler.errors import ButlerError, DatasetExistsError, DatasetNotFoundError
from butler.formatters import Image
from butler.storage import TEMP_SUFFIX

WORKERS = 4
PUTS_PER_WORKER = 500
CONTESTED = 20  # data IDs every worker tries to put; exactly one must win each

_PUTTER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from butler.butler import Butler
    from butler.errors import DatasetExistsError

    root, worker = sys.argv[1], int(sys.argv[2])
    count, contested = int(sys.argv[3]), int(sys.argv[4])
    go = Path(root).parent / "go"
    with Butler(root) as butler:
        while not go.exists():
            time.sleep(0.01)
        refused = said_what_to_do = 0
        for i in range(count):
            own = {"visit": 1 + worker * 10_000 + i, "focus": 0.0}
            butler.put({"worker": worker, "i": i}, "focusSweep", own)
            if i < contested:
                try:
                    shared = {"visit": 999_000 + i, "focus": 1.0}
                    butler.put({"worker": worker, "i": i}, "focusSweep", shared)
                except DatasetExistsError as error:
                    refused += 1
                    said_what_to_do += "pass overwrite=True" in str(error)
    print(json.dumps({"worker": worker, "refused": refused, "said": said_what_to_do}))
    """
)

_LOOPER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from butler.butler import Butler
    from butler.formatters import Image

    root, tract = sys.argv[1], int(sys.argv[2])
    with Butler(root) as butler:
        while True:
            pixels = np.full((128, 128), tract, dtype=np.float32)
            butler.put(Image(pixels, {"TRACT": tract}), "coadd", band="g", tract=tract, patch="1,2")
            tract += 1
    """
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The ``registry`` argument of ``Butler.create``: the default SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "error"
    return env


def _start(script: str, *arguments: str, stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *arguments],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )


def _stop(processes: list[subprocess.Popen[str]]) -> None:
    """Kill what is still running (after a failed assertion) and reap everything."""
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)


def test_four_processes_putting_at_once_lose_nothing(tmp_path: Path, backend: str | None) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=backend) as butler:
        butler.put({"setup": True}, "focusSweep", visit=1, focus=-0.5)  # registers the type
    arguments = [str(root), "", str(PUTS_PER_WORKER), str(CONTESTED)]
    processes = [_start(_PUTTER, *arguments[:1], str(w), *arguments[2:]) for w in range(WORKERS)]
    results = []
    try:
        (tmp_path / "go").touch()
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
            results.append(json.loads(out))
    finally:
        _stop(processes)
    # every contested data ID was won by exactly one worker
    assert sum(r["refused"] for r in results) == (WORKERS - 1) * CONTESTED
    # and each loser was told what a put can do about it, whoever won the race
    assert all(r["said"] == r["refused"] for r in results), results

    with Butler(root) as butler:
        assert butler.count("focusSweep") == 1 + WORKERS * PUTS_PER_WORKER + CONTESTED
        for worker in range(WORKERS):
            ids = [{"visit": 1 + worker * 10_000 + i, "focus": 0.0} for i in range(PUTS_PER_WORKER)]
            got = butler.get_many("focusSweep", ids)
            assert got == [{"worker": worker, "i": i} for i in range(PUTS_PER_WORKER)]
        for i in range(CONTESTED):
            winner = butler.get("focusSweep", visit=999_000 + i, focus=1.0)
            assert winner["i"] == i and 0 <= winner["worker"] < WORKERS
        report = butler.verify(read=True)
        assert report.clean, str(report)
        assert report.missing == report.untracked == report.temporaries == ()
        assert report.datasets == 1 + WORKERS * PUTS_PER_WORKER + CONTESTED


def _wait_for(butler: Butler, count: int, process: subprocess.Popen[str]) -> None:
    """Poll (not a timing assertion) until the looping writer has stored ``count`` datasets."""
    deadline = time.monotonic() + 120
    while butler.count("coadd") < count:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.02)


@pytest.mark.parametrize("durability", ["put", "close"])
def test_a_writer_killed_mid_put_leaves_no_partial_file(
    tmp_path: Path, backend: str | None, durability: str
) -> None:
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam", registry=backend, durability=durability).close()
    with Butler(root) as butler:
        for kill in range(2):
            process = _start(_LOOPER, str(root), str(1000 * kill), stdout=subprocess.DEVNULL)
            try:
                _wait_for(butler, butler.count("coadd") + 5, process)
                os.kill(process.pid, signal.SIGKILL)
            finally:
                _stop([process])
            assert process.returncode == -signal.SIGKILL

        # the killed writers' puts in flight are finished: their files deleted
        report = butler.verify(read=True, repair=True)
        assert report.clean, str(report)
        assert report.untracked == report.pending == (), str(report)
        # every visible data file reads whole, and holds what its name says
        for relative in butler.storage.walk(butler.own_files()):
            if relative.endswith(TEMP_SUFFIX):
                continue
            tract = int(relative.split("/")[2])
            got = butler.formatters.get("fits").read(butler.root / relative)
            assert isinstance(got, Image)
            assert got.array.shape == (128, 128) and np.all(got.array == tract)
            assert got.metadata["TRACT"] == tract
        for data_id in butler.query("coadd"):
            assert butler.get("coadd", data_id).metadata["TRACT"] == data_id["tract"]
        assert butler.index(["coadd"]).registered == {}


# ---- two processes racing on one data ID --------------------------------------------------------

ROUNDS = 40


def _racer(root: Path, barrier: Any, action: Callable[[Butler, int], None], errors: Path) -> int:
    """Fork a process that runs ``action`` once per round, each released with the other's."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            with Butler(root) as butler:
                for visit in range(1, ROUNDS + 1):
                    barrier.wait(timeout=120)
                    try:
                        action(butler, visit)
                    except ButlerError as error:
                        with errors.open("a") as out:
                            out.write(f"{visit}: {type(error).__name__}: {error}\n")
        except BaseException:
            traceback.print_exc()
            code = 99
        os._exit(code)
    return pid


def _race(root: Path, *actions: Callable[[Butler, int], None]) -> list[str]:
    """Run the actions in racing processes; each one's errors (ButlerError messages)."""
    barrier = multiprocessing.get_context("fork").Barrier(len(actions))
    files = [root.parent / f"errors-{i}.txt" for i in range(len(actions))]
    pids = [
        _racer(root, barrier, action, file) for action, file in zip(actions, files, strict=True)
    ]
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "a racer failed (see its stderr)"
    return [file.read_text() if file.exists() else "" for file in files]


def _remove(butler: Butler, visit: int) -> None:
    with contextlib.suppress(DatasetNotFoundError):
        butler.remove("focusSweep", visit=visit, focus=0.5)


def _overwrite(butler: Butler, visit: int) -> None:
    butler.put({"overwrite": visit}, "focusSweep", visit=visit, focus=0.5, overwrite=True)


def _insert(butler: Butler, visit: int) -> None:
    with contextlib.suppress(DatasetExistsError):
        butler.put({"insert": visit}, "focusSweep", visit=visit, focus=0.5)


def _check_consistent(root: Path) -> dict[int, object]:
    """Every record has its file and every file its record; each visit's content or None."""
    with Butler(root) as butler:
        report = butler.verify(read=True)
        assert report.clean, str(report)
        assert report.untracked == report.temporaries == report.pending == (), str(report)
        contents: dict[int, object] = {}
        for visit in range(1, ROUNDS + 1):
            found = butler.exists("focusSweep", visit=visit, focus=0.5)
            contents[visit] = butler.get("focusSweep", visit=visit, focus=0.5) if found else None
        return contents


def test_a_remove_racing_an_overwrite_never_loses_the_new_file(
    tmp_path: Path, backend: str | None
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=backend) as butler:
        butler.put_many(
            "focusSweep", [({"old": v}, {"visit": v, "focus": 0.5}) for v in range(1, ROUNDS + 1)]
        )
    removing, overwriting = _race(root, _remove, _overwrite)
    assert removing == overwriting == ""
    for visit, content in _check_consistent(root).items():
        assert content in (None, {"overwrite": visit}), (visit, content)


def test_an_overwrite_racing_an_insert_succeeds(tmp_path: Path, backend: str | None) -> None:
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam", registry=backend).close()
    with Butler(root) as butler:
        butler.put({"setup": True}, "focusSweep", visit=999_999, focus=0.5)  # registers the type
    inserting, overwriting = _race(root, _insert, _overwrite)
    assert inserting == ""
    assert overwriting == ""  # never "pass overwrite=True" to a put that did
    for visit, content in _check_consistent(root).items():
        assert content in ({"insert": visit}, {"overwrite": visit}), (visit, content)
