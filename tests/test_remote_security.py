"""The remote Butler's security (issue 16): tokens gate every write, nothing a client sends
reaches the file system as a path, and no request makes the server fail.

The first two run against a real ``butler serve`` process; the property test posts random
JSON through FastAPI's in-process client, for speed.
"""

from __future__ import annotations

import os
import random
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _remote import Server
from butler import Butler
from butler.remote.tokens import create_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

WRITES = (
    "put",
    "remove",
    "certify",
    "decertify",
    "register-dataset-type",
    "transactions",
    "transactions/0123/commit",
)
READS = (
    "get",
    "get-metadata",
    "get-section",
    "get-table-info",
    "exists",
    "uri",
    "explain",
    "get-ref",
    "query",
    "query-datasets",
    "query-values",
    "count",
    "find-calibration",
    "calibration-history",
)


def _tree(top: Path) -> dict[str, int]:
    """Every file below ``top`` with its size (the registry's own files left out: reads
    may touch their timestamps, never their datasets)."""
    found = {}
    for folder, _, files in os.walk(top):
        for name in files:
            path = Path(folder, name)
            if not name.startswith("registry.sqlite3"):
                found[str(path.relative_to(top))] = path.stat().st_size
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, str, str]]:
    top = tmp_path_factory.mktemp("security")
    root = top / "served" / "toy"
    with Butler.create(root, mapper="toycam") as butler:
        butler.put({"n": 1}, "focusSweep", visit=1, focus=0.5)
    read, write = create_token(root, "read"), create_token(root, "write")
    running = Server(root)
    try:
        yield running, top, read, write
    finally:
        running.stop()


def _write_body(route: str, rng: random.Random) -> dict[str, object]:
    data_id = {"visit": rng.choice([1, 2, 3]), "focus": 0.5}
    return {
        "remove": {"dataset_type": "focusSweep", "data_id": data_id},
        "certify": {"dataset_type": "bias", "data_id": data_id, "valid_from": "2024-01-01"},
        "decertify": {"dataset_type": "bias", "data_id": data_id},
        "register-dataset-type": {
            "name": f"x{rng.randrange(99)}",
            "template": "x/{visit}.yaml",
            "format": "yaml",
            "keys": ["visit"],
        },
    }.get(route, {})


def test_every_unauthenticated_or_read_scoped_write_is_refused(
    server: tuple[Server, Path, str, str],
) -> None:
    running, top, read, write = server
    url = running.url("toy")
    before = _tree(top)
    rng = random.Random(16)
    refused = 0
    tries = 350
    authorizations = [
        None,
        "",
        "Bearer",
        "Bearer bt_forged",
        f"Basic {write}",
        f"Bearer {read}",
        f"bearer {read}",
        f"Bearer {read}x",
        f"Bearer {write[:-1]}",
    ]
    put_body = (
        b'{"dataset_type":"focusSweep","data_ids":[{"visit":2,"focus":0.5}],"sizes":7}\n{n: 2}\n'
    )
    with httpx.Client() as client:
        for _ in range(tries):
            route = rng.choice(WRITES)
            authorization = rng.choice(authorizations)
            headers = {} if authorization is None else {"Authorization": authorization}
            headers["Idempotency-Key"] = uuid.uuid4().hex
            if route == "put":
                response = client.post(f"{url}/v1/put", content=put_body, headers=headers)
            else:
                response = client.post(
                    f"{url}/v1/{route}", json=_write_body(route, rng), headers=headers
                )
            expected = 403 if authorization in (f"Bearer {read}", f"bearer {read}") else 401
            assert response.status_code == expected, (route, authorization, response.text)
            refused += 1
    assert refused == tries
    assert _tree(top) == before
    with Butler(top / "served" / "toy", writeable=False) as local:
        assert [dict(d) for d in local.query("focusSweep")] == [{"visit": 1, "focus": 0.5}]
        assert "x1" not in local.dataset_types


HOSTILE_VALUES = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc",
    "/etc/passwd",
    "/tmp/evil",
    "a\x00b",
    "%00",
    "..\\..\\x",
    "TC-G/../../../x",
    "1,2/../../../../x",
    "~root",
]


def test_hostile_data_ids_and_encoded_traversal_never_reach_the_file_system(
    server: tuple[Server, Path, str, str],
) -> None:
    running, top, _, write = server
    url = running.url("toy")
    before = _tree(top)
    outside = _tree(top.parent)
    headers = {"Authorization": f"Bearer {write}"}
    with httpx.Client(headers=headers) as client:
        for value in HOSTILE_VALUES:
            for key in ("filter", "patch", "visit", "detectorName", "band", "calibDate"):
                data_id = {"visit": 5, "focus": 0.5, "detector": 1, key: value}
                for dataset_type in ("focusSweep", "calexp", "coadd", "bias"):
                    meta = {"dataset_type": dataset_type, "data_ids": [data_id], "sizes": [7]}
                    body = (str(meta).replace("'", '"') + "\n{n: 1}\n").encode()
                    put = client.post(f"{url}/v1/put", content=body)
                    assert put.status_code in (404, 409, 422), (data_id, put.text)
                    target = {"dataset_type": dataset_type, "data_id": data_id}
                    for route in ("get", "uri", "exists", "remove"):
                        answer = client.post(f"{url}/v1/{route}", json=target)
                        assert answer.status_code < 500, (route, data_id, answer.text)
        for path in (
            "/repos/..%2f..%2fetc/v1/repository",
            "/repos/%2e%2e/v1/repository",
            "/repos/toy%00/v1/repository",
            "/repos/toy/..%2f..%2f/v1/repository",
            "/repos/toy/v1/..%2f..%2fetc%2fpasswd",
            "/repos//etc/v1/repository",
            "/repos/%2fetc%2fpasswd/v1/get",
        ):
            answer = client.get(f"{running.base}{path}")
            assert answer.status_code in (404, 405), (path, answer.text)
    assert _tree(top) == before
    assert _tree(top.parent) == outside


# ---- random JSON to every endpoint (in-process, for speed) ----------------------------------

_keys = st.sampled_from(
    [
        "dataset_type",
        "data_id",
        "ref",
        "where",
        "bind",
        "key",
        "bbox",
        "as_of",
        "valid_from",
        "valid_to",
        "name",
        "template",
        "format",
        "keys",
        "text",
        "limit",
        "order_by",
        "id",
        "repository",
        "visit",
        "focus",
        "detector",
        "calibDate",
        "filter",
        "$date",
        "$range",
        "$DatasetRef",
        "$datetime",
        "include_closed",
        "supersede",
        "with_datasets",
    ]
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["focusSweep", "bias", "raw", "visit > 1"])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_keys | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    from butler.remote.server import create_app

    with warnings.catch_warnings():  # starlette would rather have httpx2, which is not needed
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    root = tmp_path_factory.mktemp("fuzz") / "toy"
    with Butler.create(root, mapper="toycam") as butler:
        butler.put({"n": 1}, "focusSweep", visit=1, focus=0.5)
    token = create_token(root, "write")
    with TestClient(create_app({"toy": root}), raise_server_exceptions=False) as client:
        yield client, token


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# not "transactions": opening one holds the write lock, by design, until it ends or idles
@given(
    route=st.sampled_from([*READS, *WRITES[:-2], WRITES[-1]]),
    body=_json | st.dictionaries(_keys, _json, max_size=6),
)
def test_random_json_to_any_endpoint_never_fails_the_server(
    in_process: tuple[object, str], route: str, body: object
) -> None:
    client, token = in_process
    response = client.post(  # type: ignore[attr-defined]
        f"/repos/toy/v1/{route}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code < 500 or response.status_code in (503, 507), response.text
