"""Writer processes for the S3 concurrency and crash tests (tests/test_s3_datastore.py).

The functions here run in processes forked from a server that imported this module
(and so Butler, boto3 and the registry's drivers) once: see ``_processes.preloaded``.
A forked writer starts in milliseconds, where a new interpreter takes seconds to import
Butler on a loaded machine. It inherits the fork server's environment, not the test's:
each function first takes the test's ``environ`` (the endpoint, the cache folder).
"""

from __future__ import annotations

import json
import os
import signal
import traceback
from collections.abc import Mapping
from typing import Any

import numpy as np
from butler import Butler, Image
from butler.errors import DatasetExistsError

#: Imported by the fork server, so that a writer starts without importing anything (a
#: put's formatters, the region and header code load lazily: seconds on a loaded machine).
PRELOAD = (
    "_s3writers",
    "butler.formatters.fits",
    "butler.formatters.yaml_format",
    "butler.regions",
    "astro_metadata_translator",
    "hpgeom",
    "lsst.sphgeom",
)
FOCUS = 0.5


def _use(environ: Mapping[str, str]) -> None:
    os.environ.clear()
    os.environ.update(environ)


def race(
    url: str,
    run: str,
    first: int,
    count: int,
    shared: int,
    out: str,
    environ: Mapping[str, str],
    barrier: Any,
    errors: Any,
) -> None:
    """``count`` puts into ``run``: visits 1..``shared`` (which every writer races for),
    then visits from ``first`` (its own); each visit's outcome, ``won`` or ``exists``
    (a ``DatasetExistsError``), is written as JSON to ``out``."""
    try:
        _use(environ)
        outcomes: dict[int, str] = {}
        with Butler(url) as butler:
            barrier.wait(timeout=120)
            for i in range(count):
                visit = i + 1 if i < shared else first + i
                try:
                    butler.put(
                        {"run": run, "i": i}, "focusSweep", visit=visit, focus=FOCUS, run=run
                    )
                    outcomes[visit] = "won"
                except DatasetExistsError:
                    outcomes[visit] = "exists"
        with open(out, "w") as stream:
            json.dump(outcomes, stream)
    except BaseException:
        errors.put(traceback.format_exc())
        raise


def pixels(value: float) -> Image:
    """A 300 x 300 image (a 360 kB FITS file: its PUT takes a while to send)."""
    return Image(np.full((300, 300), value, "f4"))


class KillAt:
    """A ``steps`` hook that SIGKILLs its own process at the ``step``-th step boundary
    (``written``, ``published``, ``committed``, ``settled``; see ``butler.testing.CrashAt``,
    which exits instead)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.passed = 0

    def __call__(self, name: str) -> None:
        self.passed += 1
        if self.passed == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def put_once(
    url: str, visit: int, overwrite: bool, kill_at: int, ready: Any, environ: Mapping[str, str]
) -> None:
    """One put (of a new visit, or over an existing one), SIGKILLed at step ``kill_at``
    (0: never); ``ready`` is set just before the put starts."""
    _use(environ)
    with Butler(url, steps=KillAt(kill_at)) as butler:
        ready.set()
        butler.put(
            pixels(visit), "calexp", visit=visit, detector=1, filter="g", overwrite=overwrite
        )


def put_forever(url: str, first: int, ready: Any, environ: Mapping[str, str]) -> None:
    """New puts, every third one overwritten at once, until killed; ``ready`` is set once
    the first put is done (the writer is then in its loop)."""
    _use(environ)
    with Butler(url) as butler:
        for i in range(100_000):
            visit = first + i
            butler.put(pixels(i), "calexp", visit=visit, detector=1, filter="g")
            if i % 3 == 0:
                butler.put(
                    pixels(-i), "calexp", visit=visit, detector=1, filter="g", overwrite=True
                )
            ready.set()
