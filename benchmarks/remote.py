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


def _paired(
    local: Callable[[int], object], remote: Callable[[int], object], n: int
) -> tuple[float, float]:
    """Median seconds per call of each, the calls interleaved."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(n):
        for side, call in enumerate((local, remote)):
            start = time.perf_counter()
            call(i)
            times[side].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "bench"
        local = Butler.create(root, mapper="toycam", durability="close")
        token = create_token(root, "write")
        process, url = _serve(root)
        try:
            remote = Butler(url, token=token)
            print(f"server: {url} (uvicorn, loopback); {args.repeat} calls each, medians")
            print(f"{'operation':28} {'local':>10} {'remote':>10} {'ratio':>7}")

            def row(name: str, pair: tuple[float, float]) -> None:
                ratio = pair[1] / pair[0]
                print(f"{name:28} {pair[0] * 1e3:8.2f}ms {pair[1] * 1e3:8.2f}ms {ratio:6.1f}x")

            small = {"value": 1.5, "note": "a small dataset"}
            row(
                "put (small YAML)",
                _paired(
                    lambda i: local.put(small, "focusSweep", visit=2 * i + 1, focus=0.0),
                    lambda i: remote.put(small, "focusSweep", visit=2 * i + 2, focus=0.0),
                    args.repeat,
                ),
            )
            row(
                "get (small YAML)",
                _paired(
                    lambda i: local.get("focusSweep", visit=i + 1, focus=0.0),
                    lambda i: remote.get("focusSweep", visit=i + 1, focus=0.0),
                    args.repeat,
                ),
            )
            row(
                "exists",
                _paired(
                    lambda i: local.exists("focusSweep", visit=i + 1, focus=0.0),
                    lambda i: remote.exists("focusSweep", visit=i + 1, focus=0.0),
                    args.repeat,
                ),
            )
            # the query's data IDs: registry rows of a dataset type, put in one commit each 10k
            for start in range(0, args.ids, 10_000):
                stop = min(args.ids, start + 10_000)
                local.put_many(
                    "focusSweep", [({}, {"visit": v + 1, "focus": 1.0}) for v in range(start, stop)]
                )
            local.sync()
            for name, butler in (("local", local), ("remote", remote)):
                start = time.perf_counter()
                n = sum(1 for _ in butler.query("focusSweep", focus=1.0))
                elapsed = time.perf_counter() - start
                print(f"query {n} IDs, {name:6}      {elapsed:6.2f}s  {n / elapsed:10,.0f} IDs/s")
            remote.close()

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
