"""Streamed answers of the server: a query runs in a thread of its own, ahead of the network
by a few chunks only (back-pressure), and only so many run at once.

The query's iterator is made and consumed in one thread (the registry's connections are
per thread); it hands chunks of JSON Lines straight to the event loop, which sends them,
at most :data:`DEPTH` chunks ahead, so a slow reader holds the query where it is instead
of the server gathering a million data IDs in memory. (The chunks go to the loop itself,
not through a thread pool worker waiting on a queue: on a loaded machine each extra
thread in the hand-off waits for the GIL and the scheduler.) When the reader goes away,
the thread stops at its next chunk.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from ..errors import ButlerError
from .wire import error_body, json_lines

__all__ = ["DEPTH", "QueryStream", "Slots"]

#: How many chunks (of up to 512 lines each) a query may run ahead of its reader.
DEPTH = 4
_END = object()


class Slots:
    """At most ``limit`` streams at once; :meth:`take` is False when all are taken."""

    def __init__(self, limit: int) -> None:
        self._free = threading.BoundedSemaphore(limit)

    def take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give(self) -> None:
        self._free.release()


class QueryStream:
    """The JSON Lines of ``make()``'s values, produced in a thread; iterate once.

    :meth:`first` waits for the first chunk, so that an error the query raises before
    any answer (a bad expression) becomes the response's status; an error after that
    is the stream's last line, ``{"error": ...}``. ``done`` is called once the stream
    ends, however it ends.
    """

    def __init__(
        self,
        make: Callable[[], Iterable[Any]],
        done: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
        clean: Callable[[str], str] | None = None,
    ) -> None:
        self._loop = loop
        self._clean = clean  # rewrites an error line's message (the server's redaction)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        #: Room for chunks not yet sent: taken by the query's thread, given back by the loop.
        self._room = threading.Semaphore(DEPTH)
        self._stop = threading.Event()
        self._done = done
        self._head: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(make,), daemon=True)
        self._thread.start()

    def _run(self, make: Callable[[], Iterable[Any]]) -> None:
        try:
            for chunk in json_lines(make()):
                if not self._offer(chunk):
                    return
            self._offer(_END)
        except ButlerError as error:
            self._offer(error)
        except Exception as error:  # reported to the reader, who would otherwise wait
            self._offer(RuntimeError(f"{type(error).__name__}: {error}"))

    def _offer(self, item: Any) -> bool:
        while not self._stop.is_set():
            if not self._room.acquire(timeout=0.5):
                continue
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: the server stopped
                return False
            return True
        return False

    async def _take(self) -> Any:
        item = await self._queue.get()
        self._room.release()
        return item

    async def first(self) -> None:
        """Wait for the first chunk; raise the query's error if it failed before it."""
        item = await self._take()
        if isinstance(item, BaseException):
            self.close()
            raise item
        self._head.append(item)

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._done()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for item in self._head:
                if item is _END:
                    return
                yield item
            while True:
                item = await self._take()
                if item is _END:
                    return
                if isinstance(item, ButlerError):
                    yield (_line(error_body(item, self._clean)) + "\n").encode()
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()


def _line(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))
