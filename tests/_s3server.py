"""A real S3-protocol server for the tests: moto's S3 back-end behind werkzeug, in its own
process on 127.0.0.1, on a free port; bytes cross HTTP as they would to AWS.

Run as a script (``python tests/_s3server.py PORT``) it serves until killed. It serves
one request at a time (``threaded=False``): S3 evaluates a conditional write
(``If-None-Match: *``) atomically, while moto's check and its write are separate steps
that two server threads could interleave; one request at a time makes moto as atomic as
S3 is. Clients still race each other for real: their requests interleave on the wire.

The fixtures (imported by ``conftest.py``): ``s3_server`` starts the process once per
session and stops it at the end; ``s3_location`` resets the server (``/moto-api/reset``)
and creates a fresh bucket for each test; ``s3_settings`` points a client at the server;
``s3_repository`` makes Butler repositories in that bucket, with PostgreSQL registries.
Credentials are the dummy ``testing`` pair, set in the environment as a user would set
theirs, so subprocesses inherit them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class S3Server:
    """A running server process and its URL."""

    process: subprocess.Popen[bytes]
    url: str

    @classmethod
    def start(cls, port: int | None = None) -> S3Server:
        port = port or free_port()
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = cls(process, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the S3 test server exited with {process.returncode}")
            try:
                urllib.request.urlopen(server.url + "/moto-api/", timeout=2).close()
                return server
            except OSError:
                time.sleep(0.1)
        server.stop()
        raise RuntimeError("the S3 test server did not answer within 60 s")

    def post(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=30).close()

    def reset(self) -> None:
        """Drop every bucket and object; turn authentication checks off."""
        self.post("/moto-api/reset")
        self.reset_auth()

    def reset_auth(self) -> None:
        """Accept any credentials again."""
        self.post("/moto-api/reset-auth", b"inf")

    def require_auth(self) -> None:
        """From now on, check every request's signature against the server's IAM users."""
        self.post("/moto-api/reset-auth", b"0")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    pytest.importorskip("moto", reason="moto[server] is not installed (pip install -e '.[test]')")
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = S3Server.start()
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_settings(s3_server: S3Server) -> object:
    from butler.objectstore import S3Settings

    return S3Settings(endpoint_url=s3_server.url, max_attempts=2, read_timeout=20)


@pytest.fixture
def s3_location(s3_server: S3Server, s3_settings: object) -> object:
    """A fresh, empty bucket on a freshly reset server, with a prefix."""
    from butler.objectstore import ObjectStore, S3Location

    s3_server.reset()
    location = S3Location(f"test-{uuid.uuid4().hex[:12]}", "repo")
    ObjectStore(location, s3_settings).create_bucket()  # type: ignore[arg-type]
    return location


@pytest.fixture
def s3_repository(
    s3_server: S3Server,
    s3_location: object,
    postgres_server: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Callable[[str], object]]:
    """``make(name)``: a new, empty toycam repository (or ``mapper``'s, over on-disk
    ``parents``) in the test's bucket, with a fresh
    PostgreSQL schema as registry; the endpoint and the read cache reach Butler from the
    environment, as a user's would."""
    from _repos import postgres_schemas
    from butler import Butler

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.url)
    monkeypatch.setenv("BUTLER_CACHE_DIR", str(tmp_path / "s3-cache"))
    with postgres_schemas(postgres_server) as schemas:

        def make(name: str, mapper: str = "toycam", parents: Sequence[object] = ()) -> Butler:
            url = f"s3://{s3_location.bucket}/{s3_location.prefix}/{name}"  # type: ignore[attr-defined]
            return Butler.create(url, mapper=mapper, registry=schemas(), parents=list(parents))

        yield make


def _serve(port: int) -> None:
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=False, use_reloader=False)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
