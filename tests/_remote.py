"""Real Butler servers for tests: ``butler serve`` in a subprocess on 127.0.0.1, on a free
port, stopped (and waited for) at the end."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from butler import Butler


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """A running ``butler serve ROOT...``; ``url(name)`` is a repository's URL."""

    def __init__(self, *roots: Path | str, options: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "butler.cli",
                "serve",
                *map(str, roots),
                "--port",
                str(self.port),
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.log.seek(0)
                raise RuntimeError(f"butler serve did not start: {self.log.read().decode()}")
            time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"{self.base}/repos/{name}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def serving(*roots: Path) -> Iterator[Server]:
    """A fixture body: a server for ``roots``, stopped at the end."""
    server = Server(*roots)
    try:
        yield server
    finally:
        server.stop()


def served_client(root: Path | str, scope: str = "write") -> Butler:
    """A client of ``root`` (a folder, or an ``s3://`` URL) served by a server of its own,
    which its close() stops."""
    from butler.remote.client import RemoteButler
    from butler.remote.tokens import create_stored_token, create_token

    if isinstance(root, str):
        with Butler(root) as local:
            token = create_stored_token(local.datastore, scope)
        name = root.rstrip("/").rsplit("/", 1)[-1]
    else:
        token, name = create_token(root, scope), root.name
    server = Server(root)

    class Served(RemoteButler):
        def close(self) -> None:
            try:
                super().close()
            finally:
                server.stop()

    try:
        return Served(server.url(name), token=token)
    except BaseException:
        server.stop()
        raise


@dataclass(frozen=True)
class Served:
    """A repository served by a running :class:`Server`, with a read and a write token."""

    root: Path
    server: Server
    read: str
    write: str

    @property
    def url(self) -> str:
        return self.server.url(self.root.name)

    def client(self, scope: str = "write") -> Butler:
        return Butler(self.url, token=self.write if scope == "write" else self.read)


def serve_with_tokens(*roots: Path) -> Iterator[Served]:
    """A fixture body: ``roots`` served by one server; the first one with its tokens."""
    from butler.remote.tokens import create_token

    read, write = create_token(roots[0], "read"), create_token(roots[0], "write")
    server = Server(*roots)
    try:
        yield Served(roots[0], server, read, write)
    finally:
        server.stop()
