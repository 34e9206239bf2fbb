"""Work on items in N worker processes, results back in the items' order.

    def start(context):               # run once in each worker: its set-up
        return lambda item: ...       # the work on one item (its result must pickle)

    for result in ordered_map(start, context, items, jobs=4, chunk=16):
        ...                           # in the order of ``items``

Workers are started with ``forkserver`` (``spawn`` where there is none), never
``fork``: the parent holds database connections and threads that a forked child
must not inherit. ``start`` and ``context`` are pickled to each worker once; the set-up
``start`` does (a mapper built from its spec, say) stays in the worker's own frame, so
nothing is kept in module state. At most ``2 * jobs`` chunks are out at a time, so the
parent is never far behind the workers; a worker whose parent is killed stops within
half a second (its unrecorded copies are temporaries that ``butler verify --repair``
removes). A worker that dies makes the map raise
:class:`WorkerError`; leaving the loop early (an exception, a break) stops the workers.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, TypeVar

from .errors import ButlerError

__all__ = ["WorkerError", "ordered_map"]

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

_POLL_SECONDS = 0.5


class WorkerError(ButlerError):
    """A worker process ended without finishing its work."""


def _context(preload: Sequence[str]) -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))  # imported once, by the server
    return context


def _work(
    start: Callable[[Any], Callable[[Any], Any]], context: Any, tasks: Any, results: Any
) -> None:
    """A worker's life: set up once, then do chunks until told to stop (``None``)."""
    do = start(context)
    parent = multiprocessing.parent_process()
    while True:
        try:
            task = tasks.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if parent is not None and not parent.is_alive():  # killed: no one will ask more
                return
            continue
        if task is None:
            return
        index, chunk = task
        results.put((index, [do(item) for item in chunk]))


def ordered_map(
    start: Callable[[C], Callable[[T], R]],
    context: C,
    items: Iterable[T],
    *,
    jobs: int,
    chunk: int = 16,
    unused: Callable[[R], object] = lambda result: None,
    preload: Sequence[str] = (),
) -> Generator[R, None, None]:
    """``start(context)(item)`` for each item, in ``jobs`` processes; results in order.

    ``preload`` names modules the fork server imports before it forks the workers (a
    worker then starts without importing them again). Left early, the results made but
    not yielded are given to ``unused`` (to remove what they made) once the workers are
    stopped.
    """
    listed = list(items)
    chunks = [listed[i : i + chunk] for i in range(0, len(listed), chunk)]
    if not chunks:
        return
    mp = _context(preload)
    tasks, results = mp.Queue(), mp.Queue()
    workers = [
        mp.Process(target=_work, args=(start, context, tasks, results), daemon=True)
        for _ in range(min(jobs, len(chunks)))
    ]
    for worker in workers:
        worker.start()
    done: dict[int, list[R]] = {}
    try:
        sent = 0
        for _ in range(min(len(chunks), 2 * len(workers))):
            tasks.put((sent, chunks[sent]))
            sent += 1
        for wanted in range(len(chunks)):
            while wanted not in done:
                try:
                    index, result = results.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    dead = [w for w in workers if not w.is_alive()]
                    if dead:
                        raise WorkerError(
                            f"an ingest worker process (pid {dead[0].pid}) ended with exit code "
                            f"{dead[0].exitcode} before finishing its files; run the same "
                            "command again to go on where it stopped"
                        ) from None
                    continue
                done[index] = result
                if sent < len(chunks):
                    tasks.put((sent, chunks[sent]))
                    sent += 1
            current = done.pop(wanted)
            done[-1] = current  # what is not yet yielded, should the loop be left
            while current:
                yield current.pop(0)
            del done[-1]
        for _ in workers:
            tasks.put(None)
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join()
        while True:
            try:
                index, result = results.get_nowait()
            except (queue.Empty, OSError, ValueError):
                break
            done[index] = result
        for left in done.values():
            for item in left:
                unused(item)
        tasks.close()
        results.close()
