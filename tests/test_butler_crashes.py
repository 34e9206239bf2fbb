"""A write killed at every step boundary leaves each dataset as before or as after.

Each case forks a child process that opens the repository with a
:class:`butler.testing.CrashAt` hook and runs one operation; the hook ends the
child with ``os._exit`` (no cleanup, as a SIGKILL) at its k-th step boundary.
The test then reopens the repository, which recovers what the child left, and
checks every dataset the operation touched: its record and its file agree, and
``get`` returns its content from before the call or from after it (for a
transaction: all of them from before, or all from after); ``verify`` is clean
and nothing is left set aside. k runs from 1 until the operation completes.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler.butler import Butler
from butler.cli import main
from butler.datastore.local import LocalDatastore
from butler.recovery import Journal, pending_entries
from butler.storage import TEMP_SUFFIX
from butler.testing import CrashAt

CRASHED = 77
MOST_STEPS = 16  # more would mean the operation never completes
State = dict[int, dict[str, int] | None]  # visit offset -> content, or None: no dataset


@dataclass(frozen=True)
class Operation:
    before: State
    after: State
    run: Callable[[Butler, int], object]  # (butler, first visit)
    atomic: bool = False  # all datasets before, or all after


def _put(b: Butler, v: int) -> None:
    b.put({"new": v}, "focusSweep", visit=v, focus=0.5)


def _overwrite(b: Butler, v: int) -> None:
    b.put({"new": v}, "focusSweep", visit=v, focus=0.5, overwrite=True)


def _put_many(b: Butler, v: int) -> None:
    items = [({"new": v + i}, {"visit": v + i, "focus": 0.5}) for i in range(2)]
    b.put_many("focusSweep", items, overwrite=True)


def _put_many_new(b: Butler, v: int) -> None:
    items = [({"new": v + i}, {"visit": v + i, "focus": 0.5}) for i in range(3)]
    b.put_many("focusSweep", items)


def _remove(b: Butler, v: int) -> None:
    b.remove("focusSweep", visit=v, focus=0.5)


def _transaction(b: Butler, v: int) -> None:
    with b.transaction():
        b.remove("focusSweep", visit=v, focus=0.5)
        b.put({"new": v + 1}, "focusSweep", visit=v + 1, focus=0.5, overwrite=True)
        b.put({"new": v + 2}, "focusSweep", visit=v + 2, focus=0.5)
        b.remove("focusSweep", visit=v + 3, focus=0.5)  # put and removed again: absent
        b.put({"new": v + 3}, "focusSweep", visit=v + 3, focus=0.5)
        b.put({"newer": v + 3}, "focusSweep", visit=v + 3, focus=0.5, overwrite=True)


OLD = {"old": 1}
OPERATIONS = {
    "put": Operation({0: None}, {0: {"new": 0}}, _put),
    "overwrite": Operation({0: OLD}, {0: {"new": 0}}, _overwrite),
    "put_many": Operation({0: OLD, 1: None}, {0: {"new": 0}, 1: {"new": 1}}, _put_many),
    "put_many_new": Operation(
        {0: None, 1: None, 2: None},
        {0: {"new": 0}, 1: {"new": 1}, 2: {"new": 2}},
        _put_many_new,
        atomic=True,
    ),
    "remove": Operation({0: OLD}, {0: None}, _remove),
    "transaction": Operation(
        {0: OLD, 1: OLD, 2: None, 3: OLD},
        {0: None, 1: {"new": 1}, 2: {"new": 2}, 3: {"newer": 3}},
        _transaction,
        atomic=True,
    ),
}


def _relative(content: dict[str, int] | None, first: int) -> dict[str, int] | None:
    """Contents name their visit relative to the case's first visit."""
    if content is None:
        return None
    return {k: v - first if k != "old" else v for k, v in content.items()}


def _fork(root: Path, work: Callable[[Butler], object], steps: Callable[[str], None]) -> int:
    """Fork a child that runs ``work`` on ``Butler(root, steps=steps)``; its process id."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            with Butler(root, steps=steps) as butler:
                work(butler)
        except BaseException:
            traceback.print_exc()
            code = 99
        os._exit(code)
    return pid


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _in_child(operation: Operation, root: Path, first: int, crash_at: int) -> int:
    """Run the operation in a forked child that dies at step ``crash_at``; its exit code."""
    return _exit_code(_fork(root, lambda b: operation.run(b, first), CrashAt(crash_at, CRASHED)))


def _killed_inside_a_transaction(root: Path, work: Callable[[Butler], object]) -> int:
    """A child that dies (``os._exit``) inside ``transaction()`` once ``work`` is done."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            with Butler(root) as butler, butler.transaction():
                work(butler)
                os._exit(CRASHED)
        except BaseException:
            traceback.print_exc()
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _state(butler: Butler, visits: list[int], first: int) -> State:
    state: State = {}
    for visit in visits:
        found = butler.exists("focusSweep", visit=visit, focus=0.5)
        content = butler.get("focusSweep", visit=visit, focus=0.5) if found else None
        state[visit - first] = _relative(content, first)
    return state


def _check(butler: Butler, operation: Operation, first: int) -> str:
    """Recovery's outcome for one case: "before" or "after" (per dataset, or as a whole)."""
    visits = [first + offset for offset in operation.before]
    report = butler.verify(read=True, repair=True)
    assert report.clean, str(report)
    assert report.pending == () and report.temporaries == (), str(report)
    # a put killed between publishing a new file and its commit leaves no file behind
    assert report.untracked == (), str(report)
    state = _state(butler, visits, first)
    for offset, content in state.items():
        assert content in (operation.before[offset], operation.after[offset]), (offset, state)
    if operation.atomic:
        assert state in (operation.before, operation.after), state
    return "after" if state == operation.after else "before"


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_crash_at_any_step_leaves_before_or_after(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
    name: str,
) -> None:
    operation = OPERATIONS[name]
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        butler.put({"setup": True}, "focusSweep", visit=999_999, focus=0.5)
        for step in range(1, MOST_STEPS + 1):
            for offset, content in operation.before.items():
                if content is not None:
                    butler.put(content, "focusSweep", visit=step * 10 + offset, focus=0.5)
    outcomes = []
    for step in range(1, MOST_STEPS + 1):
        first = step * 10
        code = _in_child(operation, root, first, step)
        assert code in (0, CRASHED), f"the child failed at step {step} (see its stderr)"
        with Butler(root) as butler:
            outcomes.append((_check(butler, operation, first), code))
        if code == 0:  # the operation completed before reaching this step
            break
    else:
        pytest.fail(f"{name} did not complete within {MOST_STEPS} steps")
    # the crashes reached both sides of the commit, and a completed call is "after"
    assert ("before", CRASHED) in outcomes and ("after", CRASHED) in outcomes, outcomes
    assert outcomes[-1] == ("after", 0)
    with Butler(root) as butler:
        assert not (root / ".butler/pending").exists() or not any(
            (root / ".butler/pending").iterdir()
        )
        assert butler.get("focusSweep", visit=999_999, focus=0.5) == {"setup": True}
        # tokens of processes that died after settling are swept, and only those
        butler.verify(repair=True)
        assert butler.registry.committed_operations(None) == set()


def test_recovery_leaves_a_live_butlers_files_alone(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        butler.put(OLD, "focusSweep", visit=1, focus=0.5)
        with butler.transaction():
            butler.remove("focusSweep", visit=1, focus=0.5)
            # another Butler opened now must not finish (or undo) this open transaction
            with Butler(root) as other:
                report = other.verify(repair=True)
                assert report.pending == (("aside", "focus/000001/offset0.50.yaml"),), str(report)
                assert "never delete them by hand" in str(report)
                assert "safe to delete" not in str(report)
        assert not butler.exists("focusSweep", visit=1, focus=0.5)
        assert butler.verify().pending == ()


def test_a_path_too_long_for_an_entry_name_is_kept_beside_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    target = tmp_path / ("d" * 200) / ("f" * 200)
    journal.entry("0123", "aside", target).write_text("set aside")
    (entry,) = pending_entries(tmp_path)
    assert (entry.kind, entry.token, entry.target) == ("aside", "0123", f"{'d' * 200}/{'f' * 200}")
    assert entry.file.read_text() == "set aside"
    entry.file.unlink()
    journal.close()
    assert list((tmp_path / ".butler/pending").iterdir()) == []


def test_recovery_puts_back_a_file_with_a_long_path(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam", registry=registries()).close()
    target = root / ("d" * 200) / ("f" * 200)
    target.parent.mkdir()
    target.write_text("kept")
    pid = os.fork()
    if pid == 0:  # a process that dies with the file set aside, before any commit
        journal = Journal(root)
        os.rename(target, journal.entry(journal.token(), "aside", target))
        os._exit(CRASHED)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == CRASHED
    assert not target.exists() and len(pending_entries(root)) == 1
    Butler(root).close()  # recovers
    assert target.read_text() == "kept" and pending_entries(root) == []
    assert list((root / ".butler/pending").iterdir()) == []


def test_verify_repair_deletes_temporaries_of_gone_writers_only(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        butler.put(OLD, "focusSweep", visit=1, focus=0.5)
        gone = os.fork()
        if gone == 0:
            os._exit(0)
        os.waitpid(gone, 0)
        folder = root / "focus/000001"
        dead = folder / f".offset0.50.yaml.{gone}-00000000{TEMP_SUFFIX}"
        live = folder / f".offset0.50.yaml.{os.getpid()}-00000000{TEMP_SUFFIX}"
        dead.write_text("half")
        live.write_text("half")
        report = butler.verify()
        assert set(report.temporaries) == {str(p.relative_to(root)) for p in (dead, live)}
    assert main(["verify", str(root), "--repair"]) == 0
    assert "repaired: 1 file(s)" in capsys.readouterr().out
    assert not dead.exists() and live.exists()
    with Butler(root) as butler:
        assert butler.verify().temporaries == (str(live.relative_to(root)),)
        assert butler.get("focusSweep", visit=1, focus=0.5) == OLD


@pytest.mark.parametrize(
    "work",
    [
        pytest.param(lambda b: _remove(b, 1), id="remove"),
        pytest.param(lambda b: _overwrite(b, 1), id="overwrite"),
        pytest.param(lambda b: _put(b, 2), id="put"),
    ],
)
def test_a_process_killed_inside_a_transaction_changes_nothing(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
    work: Callable[[Butler], object],
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        butler.put(OLD, "focusSweep", visit=1, focus=0.5)
    assert _killed_inside_a_transaction(root, work) == CRASHED
    with Butler(root) as butler:  # recovers
        report = butler.verify(read=True)
        assert report.clean, str(report)
        assert report.untracked == report.temporaries == report.pending == (), str(report)
        assert butler.get("focusSweep", visit=1, focus=0.5) == OLD
        assert not butler.exists("focusSweep", visit=2, focus=0.5)
        assert butler.index().registered == {}


def test_a_put_of_a_new_dataset_records_no_token_and_leaves_no_entry(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        _put(butler, 1)
        _put_many(butler, 2)
        _overwrite(butler, 4)  # nothing to overwrite: a new dataset too
        assert pending_entries(root) == []  # each put's entry went with its commit
        assert butler.registry.committed_operations(None) == set()
        _overwrite(butler, 1)  # this one keeps the old file until its commit
        assert butler.registry.committed_operations(None) != set()
    with Butler(root) as butler:  # the token was forgotten at close
        assert butler.registry.committed_operations(None) == set()
        assert butler.get("focusSweep", visit=1, focus=0.5) == {"new": 1}


def _killed_after_publishing(root: Path, work: Callable[[Butler], object]) -> int:
    """A child that dies (``os._exit``) once ``work`` published its new files, uncommitted."""

    def steps(name: str) -> None:
        if name == "published":
            os._exit(CRASHED)

    return _exit_code(_fork(root, work, steps))


@pytest.mark.parametrize(
    ("work", "visits"),
    [
        pytest.param(lambda b: _put(b, 2), [2], id="put"),
        pytest.param(lambda b: _put_many_new(b, 2), [2, 3, 4], id="put_many"),
    ],
)
@pytest.mark.parametrize("reopen", ["open", "verify --repair"])
def test_a_new_put_killed_after_publishing_leaves_no_file(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
    work: Callable[[Butler], object],
    visits: list[int],
    reopen: str,
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        butler.put(OLD, "focusSweep", visit=1, focus=0.5)
        paths = [butler.mapper.path("focusSweep", {"visit": v, "focus": 0.5}) for v in visits]
    assert _killed_after_publishing(root, work) == CRASHED
    assert all((root / path).is_file() for path in paths)  # published, not recorded
    assert {entry.kind for entry in pending_entries(root)} == {"put"}
    if reopen == "verify --repair":
        assert main(["verify", str(root), "--repair"]) == 0
    with Butler(root) as butler:  # recovers (again: a no-op after --repair)
        assert not any((root / path).exists() for path in paths)
        report = butler.verify(read=True)
        assert report.clean, str(report)
        assert report.untracked == report.temporaries == report.pending == (), str(report)
        for visit in visits:  # the data IDs are free: a later put succeeds
            assert not butler.exists("focusSweep", visit=visit, focus=0.5)
            butler.put({"again": visit}, "focusSweep", visit=visit, focus=0.5)
            assert butler.get("focusSweep", visit=visit, focus=0.5) == {"again": visit}
        assert butler.get("focusSweep", visit=1, focus=0.5) == OLD
        assert butler.index().registered == {}
    assert pending_entries(root) == []


def test_recovery_leaves_a_live_put_alone(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    """A put paused between publishing its file and its commit, in a live process: another
    process's recovery and `verify --repair` leave its file and entry; the put then commits."""
    root = tmp_path / "repo"
    Butler.create(root, mapper="toycam", registry=registries()).close()
    paused, go = tmp_path / "paused", tmp_path / "go"

    def steps(name: str) -> None:
        if name == "published":
            paused.touch()
            deadline = time.monotonic() + 60
            while not go.exists():
                if time.monotonic() > deadline:  # the test is stuck behind this put's lock
                    os._exit(98)
                time.sleep(0.01)

    pid = _fork(root, lambda b: _put(b, 2), steps)
    try:
        deadline = time.monotonic() + 60
        while not paused.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        target = root / "focus/000002/offset0.50.yaml"
        assert target.is_file()
        assert main(["verify", str(root), "--repair"]) == 0
        with Butler(root) as other:  # recovery on open leaves it too
            report = other.verify(repair=True)
            assert report.pending == (("put", "focus/000002/offset0.50.yaml"),), str(report)
            assert "never delete them by hand" in str(report)
            assert report.untracked == ()  # the put's own file, not a stray one
        assert target.is_file()
    finally:
        go.touch()
    assert _exit_code(pid) == 0
    with Butler(root) as butler:
        assert butler.get("focusSweep", visit=2, focus=0.5) == {"new": 2}
        report = butler.verify(read=True)
        assert report.clean and report.untracked == report.pending == (), str(report)


def test_index_leaves_the_file_of_a_put_in_flight_to_its_put(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        target = root / butler.mapper.path("focusSweep", {"visit": 2, "focus": 0.5})
        journal = Journal(root)  # a live writer's, published and not yet committed
        entry = journal.entry("0b5c3a9e-2a7e-4b7e-9a55-1c1f0b0f6a11", "put", target)
        entry.write_text("new: 2\n")
        target.parent.mkdir(parents=True)
        os.link(entry, target)
        assert butler.index().registered == {}
        report = butler.verify(repair=True)
        assert report.untracked == () and report.pending == (
            ("put", "focus/000002/offset0.50.yaml"),
        )
        assert "put (new file, not yet committed):" in str(report)
        assert target.is_file() and not butler.exists("focusSweep", visit=2, focus=0.5)
        journal.close()  # as if its process died: the next recovery deletes both names
    with Butler(root) as butler:
        assert not target.exists() and pending_entries(root) == []
        assert butler.verify().untracked == ()


def test_a_settled_entry_with_a_long_path_leaves_nothing_beside_it(tmp_path: Path) -> None:
    journal, datastore = Journal(tmp_path), LocalDatastore(tmp_path)
    target = tmp_path / ("d" * 200) / ("f" * 200)
    entry = journal.entry("0b5c3a9e-2a7e-4b7e-9a55-1c1f0b0f6a11", "put", target)
    entry.write_text("a put's file")
    assert [e.target for e in pending_entries(tmp_path)] == [f"{'d' * 200}/{'f' * 200}"]
    datastore.discard(entry)  # what the put does once its commit settled
    assert sorted(p.name for p in entry.parent.iterdir()) == ["lock"]
    journal.close()


def test_an_overwrite_whose_folder_was_deleted_makes_it_again(
    tmp_path: Path,
    registries: RegistryFactory,  # noqa: F811
) -> None:
    """The new file is written in the journal, so its folder is made when it is published."""
    root = tmp_path / "repo"
    with Butler.create(root, mapper="toycam", registry=registries()) as butler:
        butler.put(OLD, "focusSweep", visit=1, focus=0.5)
        shutil.rmtree(root / "focus")
        _overwrite(butler, 1)
        assert butler.get("focusSweep", visit=1, focus=0.5) == {"new": 1}
        assert butler.verify().clean and pending_entries(root) == []
