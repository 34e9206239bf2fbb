"""A fault-injecting HTTP proxy in front of the S3 test server, for failure tests.

It listens on 127.0.0.1 on a free port and forwards every request to the real server,
unless a planned fault is due: answer ``503`` (or ``500``) without forwarding, wait
before answering (a slow server), or forward the request and then close the connection
without an answer (the write happened; the client never hears so, and retries). Faults
are planned per HTTP method, in order: ``proxy.plan("PUT", "lose-answer")``.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FaultProxy", "fault_proxy"]

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.seen: list[str] = []
        #: (method, path with query, bytes answered) of each request forwarded.
        self.requests: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1: answers ``Expect: 100-continue`` (botocore sends it with a file
            # body, then waits a second for the answer that an HTTP/1.0 server never sends)
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def _forward(self) -> None:
                try:
                    proxy.handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client is gone (a killed writer)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def plan(self, method: str, *faults: str) -> None:
        """Faults for the next requests of ``method`` (``"*"`` for any): ``"503"``,
        ``"500"``, ``"slow:SECONDS"``, ``"lose-answer"``."""
        with self.lock:
            self.faults.setdefault(method, []).extend(faults)

    def _next_fault(self, method: str) -> str | None:
        with self.lock:
            self.seen.append(method)
            for name in (method, "*"):
                if self.faults.get(name):
                    return self.faults[name].pop(0)
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = _read_body(request)
        fault = self._next_fault(request.command)
        if fault in ("500", "503"):
            payload = (
                f"<Error><Code>{'InternalError' if fault == '500' else 'ServiceUnavailable'}"
                "</Code><Message>injected</Message></Error>"
            ).encode()
            request.send_response(int(fault))
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault.split(":", 1)[1]))
        status, headers, answer = self._upstream(request, body)
        with self.lock:
            self.requests.append((request.command, request.path, len(answer)))
        if fault == "lose-answer":
            request.close_connection = True
            request.connection.shutdown(2)
            return
        request.send_response(status)
        length = str(len(answer))
        for name, value in headers:
            if name.lower() == "content-length" and request.command == "HEAD":
                length = value  # a HEAD's answer has no body, and the object's length
            elif name.lower() not in _HOP and name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", length)
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(answer)

    def _upstream(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=60
        )
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                request.rfile.readline()
                return b"".join(parts)
            parts.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
