"""Transactions over the wire: a client's ``with butler.transaction():`` on the server.

A Butler transaction belongs to one thread (its registry connection and its file
journal are per thread), and an HTTP server answers each request in whichever thread
is free; so each open transaction gets a thread of its own, which enters
``Butler.transaction()`` and runs the writes the client sends under its id, one by one,
until the client commits or rolls back. It holds the repository's write lock
meanwhile (other writes wait), and rolls back by itself after :data:`IDLE` seconds
without a request, so a client that went away blocks nobody for long.

Reads made inside a remote transaction see what is committed, not its own writes.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import threading
from collections.abc import Callable
from typing import Any

from ..butler import Butler
from ..errors import ButlerError, ConflictError
from . import wire

__all__ = ["IDLE", "Transaction", "Transactions"]

#: Seconds an open transaction waits for its client's next request before rolling back.
IDLE = 30.0

Answer = tuple[int, Any]


class _RolledBack(Exception):
    """Ends the transaction's block: roll back."""


class Transaction:
    """One open transaction and its thread."""

    def __init__(
        self,
        butler: Butler,
        lock: threading.Lock,
        ended: Callable[[str], None],
        clean: Callable[[str], str] | None = None,
    ) -> None:
        self.id = secrets.token_hex(16)
        self._butler, self._lock, self._ended = butler, lock, ended
        self._clean = clean
        self._requests: queue.Queue[tuple[Any, queue.Queue[Answer]]] = queue.Queue()
        self._open = True
        #: Set once the thread holds the write lock (or gave up waiting for it).
        self.started = threading.Event()
        threading.Thread(target=self._run, daemon=True, name=f"transaction-{self.id}").start()

    def _run(self) -> None:
        last: queue.Queue[Answer] | None = None
        answer: Answer = (200, {})
        if not self._lock.acquire(timeout=IDLE):
            self._open = False
            self._ended(self.id)
            self.started.set()
            return
        with contextlib.ExitStack() as held:
            held.callback(self._lock.release)
            self.started.set()
            try:
                with self._butler.transaction():
                    while True:
                        try:
                            request, last = self._requests.get(timeout=IDLE)
                        except queue.Empty:
                            last = None
                            raise _RolledBack() from None
                        if request == "commit":
                            break
                        if request == "rollback":
                            raise _RolledBack()
                        last.put(_answer(request, self._clean))
            except _RolledBack:
                pass
            except ButlerError as error:  # the commit failed
                answer = (wire.status_of(error), wire.error_body(error, self._clean))
            except Exception as error:
                message = str(error) if self._clean is None else self._clean(str(error))
                answer = (500, {"error": {"type": "RemoteError", "message": message}})
            finally:
                self._open = False
                self._ended(self.id)
        if last is not None:
            last.put(answer)

    @property
    def is_open(self) -> bool:
        return self._open

    def send(self, request: Callable[[], Any] | str) -> Answer:
        """Run a write (or ``"commit"``, ``"rollback"``) in the transaction; its answer."""
        if not self._open:
            return _expired(self.id)
        reply: queue.Queue[Answer] = queue.Queue(1)
        self._requests.put((request, reply))
        try:
            return reply.get(timeout=IDLE * 10)
        except queue.Empty:
            return _expired(self.id)


def _answer(write: Callable[[], Any], clean: Callable[[str], str] | None) -> Answer:
    try:
        return 200, write()
    except ButlerError as error:
        return wire.status_of(error), wire.error_body(error, clean)


def _expired(id: str) -> Answer:
    error = ConflictError(
        f"transaction {id} is over (committed, rolled back, or idle for {IDLE:.0f} s, which "
        "rolls it back); nothing of it after that was done"
    )
    return wire.status_of(error), wire.error_body(error)


class Transactions:
    """The open transactions of one repository, by id."""

    def __init__(
        self, butler: Butler, lock: threading.Lock, clean: Callable[[str], str] | None = None
    ) -> None:
        """``clean`` rewrites error messages (the server's redaction of its paths)."""
        self._butler, self._lock, self._clean = butler, lock, clean
        self._open: dict[str, Transaction] = {}
        self._guard = threading.Lock()

    def begin(self) -> str:
        """A new transaction's id, once it holds the write lock; ConflictError if another
        writer held it for :data:`IDLE` seconds."""
        transaction = Transaction(self._butler, self._lock, self._end, self._clean)
        with self._guard:
            self._open[transaction.id] = transaction
        transaction.started.wait()
        if not transaction.is_open:
            raise ConflictError(
                f"another transaction held the repository for {IDLE:.0f} s; try again later"
            )
        return transaction.id

    def _end(self, id: str) -> None:
        with self._guard:
            self._open.pop(id, None)

    def send(self, id: str, request: Callable[[], Any] | str) -> Answer:
        with self._guard:
            transaction = self._open.get(id)
        return _expired(id) if transaction is None else transaction.send(request)
