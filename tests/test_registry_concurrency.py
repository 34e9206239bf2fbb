"""Several processes create the same dataset type and write at once; nothing is lost."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
from _processes import run_together
from butler.registry import Registry

KEYS = {"visit": "int", "ccd": "int"}
ROWS_PER_WORKER = 200
SINGLE_INSERTS = 20


def _worker(url: str, worker: int, barrier: Any, errors: Any) -> None:
    """Register ``calexp`` and insert this worker's rows, starting with the others."""
    try:
        with Registry.open(url) as registry:
            barrier.wait(timeout=60)
            registry.register_dataset_type("calexp", KEYS)
            rows = [
                ({"visit": worker, "ccd": ccd}, f"calexp/{worker}/{ccd}.fits")
                for ccd in range(SINGLE_INSERTS, ROWS_PER_WORKER)
            ]
            registry.insert_many("calexp", rows, run=f"worker{worker}")
            for ccd in range(SINGLE_INSERTS):
                registry.insert("calexp", {"visit": worker, "ccd": ccd}, f"calexp/{worker}/{ccd}")
                registry.register_dataset_type(f"type{ccd % 3}", KEYS)
    except BaseException:
        errors.put(f"worker {worker}:\n{traceback.format_exc()}")
        raise


@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_creators_and_writers(registry_url: str, workers: int) -> None:
    Registry.create(registry_url, "HSC").close()
    run_together(_worker, [(registry_url, worker) for worker in range(workers)])
    with Registry.open(registry_url) as registry:
        assert registry.count("calexp") == workers * ROWS_PER_WORKER
        assert registry.query_values("calexp", "visit") == list(range(workers))
        for worker in range(workers):
            assert registry.count("calexp", {"visit": worker}) == ROWS_PER_WORKER
            assert registry.find("calexp", {"visit": worker, "ccd": 0}) == f"calexp/{worker}/0"
        assert registry.dataset_types() == {
            "calexp": KEYS,
            "type0": KEYS,
            "type1": KEYS,
            "type2": KEYS,
        }
