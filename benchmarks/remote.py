"""The remote Butler against the same calls on the local repository, in one run (issue 16).

    python benchmarks/remote.py [--ids 100000] [--repeat 200] [--clients 8]

Starts ``butler serve`` on 127.0.0.1 (a real uvicorn process on a free port) for a new
ToyCam repository, then measures, interleaving the local and remote call of each pair
so that load on the machine hits both alike:

- a small get and a small put (a YAML dataset) through the server vs locally
  (target: within 3x);
- a streamed query of ``--ids`` data IDs (target: more than 50,000 IDs/s), next to the
  same query locally;
- ``--clients`` clients in threads, each putting, getting and querying at once
  (target: no errors).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from butler import Butler
from butler.remote.tokens import create_token


def _serve(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "butler.cli", "serve", str(root), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, f"{base}/repos/{root.name}"
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("butler serve did not start")


def _server_cpu(pid: int) -> float:
    """CPU seconds the server process has used (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _paired(
    local: Callable[[int], object], remote: Callable[[int], object], n: int, server: int
) -> tuple[float, float, float, float]:
    """Median wall seconds per call of each, the calls interleaved; and CPU seconds per call
    of each (the remote's: this process's and the server's, which is idle between)."""
    times: tuple[list[float], list[float]] = ([], [])
    cpu = [0.0, 0.0]
    served = _server_cpu(server)
    for i in range(n):
        for side, call in enumerate((local, remote)):
            start, start_cpu = time.perf_counter(), time.process_time()
            call(i)
            times[side].append(time.perf_counter() - start)
            cpu[side] += time.process_time() - start_cpu
    cpu[1] += _server_cpu(server) - served
    return statistics.median(times[0]), statistics.median(times[1]), cpu[0] / n, cpu[1] / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        # Two repositories, so that local and remote writes never wait for each other's lock:
        # "local" for the local calls, "bench" served; the query's data IDs go into the served
        # one before it is served, and are queried there locally too.
        root = Path(folder) / "bench"
        with Butler.create(root, mapper="toycam", durability="close") as filling:
            for start in range(0, args.ids, 10_000):
                stop = min(args.ids, start + 10_000)
                filling.put_many(
                    "focusSweep", [({}, {"visit": v + 1, "focus": 1.0}) for v in range(start, stop)]
                )
        local = Butler.create(Path(folder) / "local", mapper="toycam", durability="close")
        token = create_token(root, "write")
        process, url = _serve(root)
        try:
            remote = Butler(url, token=token)
            print(f"server: {url} (uvicorn, loopback); {args.repeat} calls each, medians")
            print(
                "wall: median of interleaved calls; CPU: per call, the remote's counting the server"
            )
            print(
                f"{'operation':20} {'local':>9} {'remote':>9} {'ratio':>6}   "
                f"{'CPU local':>9} {'remote':>9} {'ratio':>6}"
            )

            def row(name: str, pair: tuple[float, float, float, float]) -> None:
                wall, cpu = pair[1] / pair[0], pair[3] / pair[2]
                print(
                    f"{name:20} {pair[0] * 1e3:7.2f}ms {pair[1] * 1e3:7.2f}ms {wall:5.1f}x   "
                    f"{pair[2] * 1e3:7.2f}ms {pair[3] * 1e3:7.2f}ms {cpu:5.1f}x"
                )

            small = {"value": 1.5, "note": "a small dataset"}
            row(
                "put (small YAML)",
                _paired(
                    lambda i: local.put(small, "focusSweep", visit=i + 1, focus=0.0),
                    lambda i: remote.put(small, "focusSweep", visit=i + 1, focus=0.0),
                    args.repeat,
                    process.pid,
                ),
            )
            row(
                "get (small YAML)",
                _paired(
                    lambda i: local.get("focusSweep", visit=i + 1, focus=0.0),
                    lambda i: remote.get("focusSweep", visit=i + 1, focus=0.0),
                    args.repeat,
                    process.pid,
                ),
            )
            row(
                "exists",
                _paired(
                    lambda i: local.exists("focusSweep", visit=i + 1, focus=0.0),
                    lambda i: remote.exists("focusSweep", visit=i + 1, focus=0.0),
                    args.repeat,
                    process.pid,
                ),
            )
            reader = Butler(root, writeable=False)
            for name, butler in (("local", reader), ("remote", remote)):
                start, served = time.perf_counter(), _server_cpu(process.pid)
                start_cpu = time.process_time()
                n = sum(1 for _ in butler.query("focusSweep", focus=1.0))
                elapsed = time.perf_counter() - start
                cpu = time.process_time() - start_cpu
                server = _server_cpu(process.pid) - served
                print(
                    f"query {n} IDs, {name:6}  {elapsed:6.2f}s  {n / elapsed:9,.0f} IDs/s "
                    f"(CPU: this process {cpu:.2f}s, server {server:.2f}s)"
                )
            remote.close()
            reader.close()

            def client(number: int) -> int:
                with Butler(url, token=token) as mine:
                    for i in range(20):
                        visit = 500_000 + number * 1000 + i
                        mine.put({"i": i}, "focusSweep", visit=visit, focus=-1.0)
                        assert mine.get("focusSweep", visit=visit, focus=-1.0) == {"i": i}
                    return sum(1 for _ in mine.query("focusSweep", focus=-1.0))

            start = time.perf_counter()
            errors = 0
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                for future in [pool.submit(client, n) for n in range(args.clients)]:
                    try:
                        future.result()
                    except Exception as error:
                        errors += 1
                        print(f"  client error: {type(error).__name__}: {error}")
            elapsed = time.perf_counter() - start
            print(
                f"{args.clients} concurrent clients x 20 put+get + a query: {elapsed:.1f}s, "
                f"{errors} errors"
            )
        finally:
            local.close()
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
