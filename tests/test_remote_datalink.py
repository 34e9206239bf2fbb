"""DataLink over HTTP (issue 16): pyvo, a VO client, reads the link tables a real
``butler serve`` answers and follows their URLs; a client's ``uri`` and ``datalink_url``
name the server's URLs, never its paths.

The repository is the tutorial camera's: a raw exposure, a calexp, biases and a flat
certified, and a non-image (a focus sweep, JSON).
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import yaml
from _remote import Server
from butler import Butler, Image
from butler.datalink import CONTENT_TYPE
from butler.errors import InvalidDataIdError, RemoteError
from butler.preview import PNG_SIGNATURE
from butler.remote.tokens import create_token

pyvo = pytest.importorskip("pyvo", reason="pyvo (in the test extra) is the DataLink client")

RAW = {"visit": 1, "detector": 1, "filter": "TC-G", "obsTime": datetime.datetime(2024, 3, 5, 4)}
CALEXP = {"visit": 1, "detector": 1}
COLUMNS = ("access_url", "service_def", "error_message")


class Served:
    def __init__(self, server: Server, root: Path, read: str, write: str) -> None:
        self.server, self.root, self.read, self.write = server, root, read, write
        self.url = server.url(root.name)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("datalink") / "toy"
    with Butler.create(root, mapper="toycam") as butler:
        butler.put(Image(np.arange(16, dtype="f4").reshape(4, 4)), "raw", RAW)
        for day in ("2024-03-01", "2024-03-04"):
            butler.put(Image(np.ones((4, 4), "f4")), "bias", calibDate=day, detector=1)
        butler.put(
            Image(np.ones((4, 4), "f4")), "flat", calibDate="2024-03-01", detector=1, filter="TC-G"
        )
        butler.certify("bias", {"calibDate": "2024-03-01", "detector": 1}, "2024-03-01")
        butler.certify(
            "flat", {"calibDate": "2024-03-01", "detector": 1, "filter": "TC-G"}, "2024-03-01"
        )
        butler.put(Image(np.zeros((40, 30), "f4")), "calexp", CALEXP)
        butler.put({"n": 1}, "focusSweep", visit=1, focus=0.5)
    read, write = create_token(root, "read"), create_token(root, "write")
    server = Server(root)
    try:
        yield Served(server, root, read, write)
    finally:
        server.stop()


@pytest.fixture
def client(served: Served) -> Iterator[Butler]:
    with Butler(served.url, token=served.read) as butler:
        yield butler


def links(url: str) -> list[dict[str, object]]:
    """Every row of the DataLink table at ``url``, as pyvo reads it."""
    results = pyvo.dal.adhoc.DatalinkResults.from_result_url(url)
    out = []
    for row in results:
        values = {}
        for name in ("ID", *COLUMNS, "semantics", "content_type", "local_semantics"):
            value = row[name]
            values[name] = None if np.ma.is_masked(value) or value in ("", None) else value
        out.append(values)
    return out


def with_token(url: str, token: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}token={quote(token, safe='')}"


def test_pyvo_reads_the_links_of_a_calexp_and_every_url_works(
    served: Served, client: Butler
) -> None:
    (calexp,) = client.query_datasets("calexp", CALEXP)
    rows = links(with_token(client.datalink_url(calexp), served.read))
    semantics = sorted(str(row["semantics"]) for row in rows)
    assert semantics == ["#calibration", "#calibration", "#preview", "#progenitor", "#this"]
    for row in rows:
        assert sum(row[k] is not None for k in COLUMNS) == 1, row
        answer = httpx.get(str(row["access_url"]))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == row["content_type"]
        if row["semantics"] == "#preview":
            assert answer.content.startswith(PNG_SIGNATURE)
            pytest.importorskip("matplotlib")
            from matplotlib import image

            assert image.imread(io.BytesIO(answer.content), format="png").shape[:2] == (40, 30)
    (this,) = (row for row in rows if row["semantics"] == "#this")
    stored = next((served.root / "calexp").rglob("*.fits")).read_bytes()
    assert httpx.get(str(this["access_url"])).content == stored


def test_the_bytes_of_every_link_are_the_stored_files(served: Served, client: Butler) -> None:
    with Butler(served.root) as local:
        refs = [*local.query_datasets("raw"), *local.query_datasets("bias")]
        for ref in refs:
            url = with_token(client.uri(ref), served.read)
            stored = Path(local.uri(ref).removeprefix("file:")).read_bytes()
            assert httpx.get(url).content == stored


def test_unknown_and_malformed_ids_are_fault_rows(served: Served, client: Butler) -> None:
    missing = f"butler:{client.repository_id}/{'1' * 32}"
    url = f"{served.url}/datalink?ID={quote(missing)}&ID=garbage&token={served.read}"
    faults = {row["ID"]: str(row["error_message"]) for row in links(url)}
    assert faults[missing].startswith("NotFoundFault: ")
    assert faults["garbage"].startswith("UsageFault: ")


def test_a_non_image_has_no_preview_and_its_preview_url_is_a_usage_fault(
    served: Served, client: Butler
) -> None:
    (sweep,) = client.query_datasets("focusSweep")
    rows = links(with_token(client.datalink_url(sweep), served.read))
    assert "#preview" not in {row["semantics"] for row in rows}
    (this,) = (row for row in rows if row["semantics"] == "#this")
    assert this["content_type"] == "application/yaml"
    assert yaml.safe_load(httpx.get(str(this["access_url"])).content) == {"n": 1}
    preview = httpx.get(with_token(client.uri(sweep) + "/preview", served.read))
    assert preview.status_code == 400
    assert preview.text.startswith("UsageFault: ")
    gone = httpx.get(with_token(f"{served.url}/v1/datasets/{'2' * 32}", served.read))
    assert gone.status_code == 404
    assert gone.text.startswith("NotFoundFault: ")


def test_datalink_needs_a_read_token_in_the_header_or_the_query(
    served: Served, client: Butler
) -> None:
    (calexp,) = client.query_datasets("calexp", CALEXP)
    url = client.datalink_url(calexp)
    assert httpx.get(url).status_code == 401
    assert httpx.get(with_token(url, "not-a-token")).status_code == 401
    by_header = httpx.get(url, headers={"Authorization": f"Bearer {served.read}"})
    assert by_header.status_code == 200
    assert by_header.headers["content-type"] == CONTENT_TYPE
    # the header's token is not copied into the links: only a token the URL carried is
    assert "token=" not in by_header.text
    assert httpx.get(client.uri(calexp)).status_code == 401
    assert httpx.get(client.uri(calexp) + "/preview").status_code == 401


def test_a_token_in_the_query_never_grants_a_write(served: Served) -> None:
    (before,) = Butler(served.root).query_datasets("focusSweep")
    target = {"dataset_type": "focusSweep", "data_id": {"visit": 1, "focus": 0.5}}
    for route in ("remove", "put", "transactions"):
        url = with_token(f"{served.url}/v1/{route}", served.write)
        assert httpx.post(url, json=target).status_code == 401, route
    with Butler(served.root) as local:
        assert local.exists(before)


def test_uri_is_the_download_url_not_the_servers_path(served: Served, client: Butler) -> None:
    uri = client.uri("calexp", CALEXP)
    (calexp,) = client.query_datasets("calexp", CALEXP)
    assert uri == f"{served.url}/v1/datasets/{calexp.id}"
    assert str(served.root) not in uri
    assert client.uri(calexp) == uri


def test_datalink_url_needs_a_ref_and_a_local_repository_has_none(
    served: Served, client: Butler
) -> None:
    with pytest.raises(InvalidDataIdError, match="not a dataset ref"):
        client.datalink_url("calexp")
    with Butler(served.root) as local, pytest.raises(RemoteError, match="butler serve"):
        local.datalink_url(next(local.query_datasets("raw")))
