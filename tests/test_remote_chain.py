"""A served repository as the parent of a local output repository (issue 16), against a
real ``butler serve`` process on 127.0.0.1.

The chain reads its remote parent only through the ChainMember interface
(butler.member): find-first reads fall through to it, writes go to the local output,
queries merge, calibration lookups fall through, refs of the parent read through the
chain, and the parent's errors arrive as their own ButlerError classes.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _remote import Served, serve_with_tokens
from butler import Butler, Image
from butler.cli import main
from butler.config import read_config
from butler.errors import (
    CalibrationNotFoundError,
    ChainError,
    DatasetNotFoundError,
    ReadOnlyError,
    RemoteError,
)
from butler.image import BBox

FOCUS = {"focus": 0.5}
DAY = datetime.date(2022, 5, 1)
RAW = {"visit": 777_001, "detector": 7, "filter": "g"}


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served") / "toy"
    with Butler.create(root, mapper="toycam") as butler:
        butler.put({"n": "parent 1"}, "focusSweep", visit=1, **FOCUS)
        butler.put({"n": "parent 2"}, "focusSweep", visit=2, **FOCUS)
        pixels = np.arange(100, dtype="f4").reshape(10, 10)
        butler.put(Image(pixels, {"GAIN": 2.0}), "bias", calibDate=DAY, detector=7)
        butler.certify("bias", {"calibDate": DAY, "detector": 7}, "2022-05-01")
        butler.put(Image(np.ones((2, 2), "f4")), "raw", RAW, obsTime="2022-05-03T00:00:00")
    yield from serve_with_tokens(root)


@pytest.fixture
def out(parent: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Butler]:
    monkeypatch.setenv("BUTLER_TOKEN", parent.read)
    with Butler.create(tmp_path / "out", mapper="toycam", parents=[parent.url]) as butler:
        yield butler


def test_the_parent_url_is_recorded_without_its_token(out: Butler, parent: Served) -> None:
    config = read_config(out.root)
    assert [p.root for p in config.parents] == [parent.url]
    assert parent.read not in (out.root / "butler.yaml").read_text()
    assert [member.address for member in out.chain.parents] == [parent.url]


def test_get_falls_through_to_the_parent_and_put_goes_to_the_output(
    out: Butler, parent: Served
) -> None:
    assert out.get("focusSweep", visit=2, **FOCUS) == {"n": "parent 2"}
    assert out.exists("focusSweep", visit=2, **FOCUS)
    assert out.uri("focusSweep", visit=2, **FOCUS).startswith(parent.url)
    # find-first: the output's own dataset hides the parent's
    out.put({"n": "mine"}, "focusSweep", visit=1, **FOCUS)
    assert out.get("focusSweep", visit=1, **FOCUS) == {"n": "mine"}
    assert out.uri("focusSweep", visit=1, **FOCUS).startswith(out.root.as_uri())
    with parent.client("read") as remote:
        assert remote.get("focusSweep", visit=1, **FOCUS) == {"n": "parent 1"}
    alone = Butler(out.root, parents=False, writeable=False)
    try:
        assert alone.exists("focusSweep", visit=1, **FOCUS)
        assert not alone.exists("focusSweep", visit=2, **FOCUS)
    finally:
        alone.close()
    with pytest.raises(ReadOnlyError, match=parent.url):
        out.remove("focusSweep", visit=2, **FOCUS)
    assert "stored in parent repository " + parent.url in out.explain(
        "focusSweep", visit=2, **FOCUS
    )


def test_a_ref_of_the_parent_reads_through_the_chain(out: Butler, parent: Served) -> None:
    (ref,) = out.query_datasets("bias", calibDate=DAY, detector=7)
    with parent.client("read") as remote:
        assert ref.repository == remote.repository_id
    assert out.get(ref).array[3, 4] == 34.0
    assert out.get_metadata(ref)["GAIN"] == 2.0
    assert out.get_section(ref, BBox(1, 2, 3, 4)).tolist() == [[21.0, 22.0], [31.0, 32.0]]
    assert out.exists(ref)
    assert out.get_ref(str(ref)) == ref
    assert out.uri(ref).startswith(parent.url)


def test_queries_merge_the_output_and_the_parent_each_data_id_once(out: Butler) -> None:
    out.put({"n": "mine 1"}, "focusSweep", visit=1, **FOCUS)
    out.put({"n": "mine 3"}, "focusSweep", visit=3, **FOCUS)
    found = list(out.query("focusSweep"))
    assert sorted(d["visit"] for d in found) == [1, 2, 3]
    assert found[0]["visit"] in (1, 3)  # the output's first
    assert out.count("focusSweep") == 3
    assert out.count("focusSweep", visit=2) == 1
    assert out.query_values("focusSweep", "visit") == [1, 2, 3]
    refs = {r.data_id["visit"]: r for r in out.query_datasets("focusSweep")}
    assert refs[1].repository == out.repository_id != refs[2].repository
    # where/order_by/limit: the server runs the same query; the streams merge in order
    assert [d["visit"] for d in out.query("focusSweep", where="visit > 1")] == [2, 3]
    top = out.query("focusSweep", visit=[1, 2, 3], order_by="-visit", limit=2)
    assert [d["visit"] for d in top] == [3, 2]
    assert out.count("focusSweep", where="visit >= :v", bind={"v": 2}) == 2
    assert out.query_values("focusSweep", "visit", where="visit < 3") == [1, 2]
    # with_datasets looks across the chain's registries: said, not half answered
    with pytest.raises(RemoteError, match="served"):
        list(out.query("focusSweep", with_datasets=["raw"]))


def test_a_calibration_is_found_through_the_parent_as_of_a_time(out: Butler) -> None:
    found = out.find_calibration("bias", visit=RAW["visit"], detector=7)
    assert found.data_id["calibDate"] == DAY
    assert out.get("bias", visit=RAW["visit"], detector=7).array[0, 1] == 1.0
    before = found.certification.recorded_from - datetime.timedelta(seconds=1)
    with pytest.raises(CalibrationNotFoundError):
        out.find_calibration("bias", visit=RAW["visit"], detector=7, as_of=before)
    with pytest.raises(CalibrationNotFoundError):
        out.get("bias", visit=RAW["visit"], detector=7, as_of=before)
    assert out.get("bias", visit=RAW["visit"], detector=7, as_of=found.certification.recorded_from)


def test_the_parents_errors_arrive_as_their_own_classes(
    out: Butler, parent: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatasetNotFoundError, match=parent.url):
        out.get("focusSweep", visit=99, **FOCUS)
    with parent.client("write") as remote:
        stale = remote.put({"n": "gone"}, "focusSweep", visit=50, **FOCUS)
        assert out.get(stale) == {"n": "gone"}
        remote.remove(stale)
    with pytest.raises(DatasetNotFoundError, match=r"stale|no dataset"):
        out.get(stale)
    assert not out.exists(stale)
    monkeypatch.setenv("BUTLER_TOKEN", "not-a-token")
    with pytest.raises(RemoteError, match="needs a valid token"):
        Butler(out.root)
    with pytest.raises(RemoteError, match="needs a valid token"):
        Butler.create(tmp_path / "other", mapper="toycam", parents=[parent.url])


def test_a_parent_of_another_instrument_is_refused(
    parent: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUTLER_TOKEN", parent.read)
    with pytest.raises(ChainError, match="instrument"):
        Butler.create(tmp_path / "hsc", mapper="hsc", parents=[(parent.url, "hsc")])


def test_cli_create_with_a_served_parent(
    parent: Served,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text(f"{parent.server.base} {parent.read}\n")
    monkeypatch.delenv("BUTLER_TOKEN", raising=False)
    monkeypatch.setenv("BUTLER_TOKEN_FILE", str(token_file))
    root = tmp_path / "cli-out"
    assert main(["create", str(root), "--mapper", "toycam", "--parent", parent.url]) == 0
    assert f"parent: {parent.url}" in capsys.readouterr().out
    assert main(["explain", str(root), "focusSweep", "visit=2", "focus=0.5"]) == 0
    assert "stored in parent repository " + parent.url in capsys.readouterr().out
