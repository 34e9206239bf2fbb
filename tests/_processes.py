"""Run worker functions in real processes released together (concurrency tests).

Each worker is called as ``target(*args, barrier, errors)``; it waits on the
barrier before racing, and puts a traceback on ``errors`` if it fails.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any


def run_together(target: Callable[..., None], args: Sequence[tuple[Any, ...]]) -> None:
    """Start one spawned process per ``args``; assert that every one finished cleanly."""
    context = multiprocessing.get_context("spawn")
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
