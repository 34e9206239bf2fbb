"""Run worker functions in real processes released together (concurrency tests).

Each worker is called as ``target(*args, barrier, errors)``; it waits on the
barrier before racing, and puts a traceback on ``errors`` if it fails.

:func:`preloaded` gives a ``forkserver`` start method whose server imports the given
modules once: a worker then starts in milliseconds instead of importing Butler again
(seconds each on a loaded machine). A forked worker inherits the server's environment,
not the test's, so such workers take the environment they need as an argument.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def preloaded(*modules: str) -> Any:
    """A ``forkserver`` context whose server imports ``modules`` (``spawn`` where there
    is no forkserver). The server is started once per test session, by its first user."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(modules))
    return context


def run_together(
    target: Callable[..., None], args: Sequence[tuple[Any, ...]], context: Any = None
) -> None:
    """Start one process per ``args`` (spawned, or from ``context``); assert that every
    one finished cleanly."""
    context = context or multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args))
    errors = context.Queue()
    processes = [context.Process(target=target, args=(*a, barrier, errors)) for a in args]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    reports = []
    while not errors.empty():
        reports.append(errors.get())
    errors.close()
    errors.join_thread()
    assert reports == []
    assert [process.exitcode for process in processes] == [0] * len(args)


def run_on_a_terminal(
    script: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a Python ``script`` with its stderr a real pseudo-terminal (where progress lines
    are drawn); the finished process (stdout captured) and what was drawn on the terminal."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.run(
        [sys.executable, "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        check=False,
        env=None if env is None else dict(env),
    )
    os.close(follower)
    drawn = b""
    with contextlib.suppress(OSError):  # EIO once everything is read
        while chunk := os.read(leader, 4096):
            drawn += chunk
    os.close(leader)
    return process, drawn.decode()
