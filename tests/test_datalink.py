"""DataLink link tables (issue 16), read back with pyvo, and image previews.

The repository is the tutorial camera's: a raw exposure, its calexp, and biases and
flats certified over time, so a calexp's links name the raw it came from and the
calibrations its processing would use — as the registry stands now, and as it stood
before a recertification (``as_of``).
"""

from __future__ import annotations

import datetime
import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from butler import Butler, Image
from butler.datalink import CONTENT_TYPE, LinkURLs, datalink_votable, links_for
from butler.errors import FormatError
from butler.preview import PNG_SIGNATURE, preview_png
from hypothesis import given, settings
from hypothesis import strategies as st

pyvo = pytest.importorskip("pyvo", reason="pyvo (in the test extra) reads DataLink responses")
votable_parse = pytest.importorskip("astropy.io.votable").parse

RAW = {"visit": 1, "detector": 1, "filter": "TC-G", "obsTime": datetime.datetime(2024, 3, 5, 4)}
CALEXP = {"visit": 1, "detector": 1}
URLS = LinkURLs(
    access=lambda ref: f"https://example.test/repos/toy/v1/datasets/{ref.id}",
    preview=lambda ref: f"https://example.test/repos/toy/v1/datasets/{ref.id}/preview",
)


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Butler]:
    with Butler.create(tmp_path / "toy", mapper="toycam") as butler:
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
        yield butler


def parse(body: bytes) -> pyvo.dal.adhoc.DatalinkResults:
    return pyvo.dal.adhoc.DatalinkResults(votable_parse(io.BytesIO(body)))


def rows(body: bytes) -> list[dict[str, object]]:
    result = parse(body)
    names = (
        "ID",
        "access_url",
        "service_def",
        "error_message",
        "semantics",
        "description",
        "content_type",
        "content_length",
        "local_semantics",
    )
    out = []
    for row in result:
        values = {}
        for name in names:
            value = row[name]
            values[name] = None if np.ma.is_masked(value) or value in ("", None) else value
        out.append(values)
    return out


def test_a_calexp_links_to_itself_its_preview_its_calibrations_and_its_raw(toy: Butler) -> None:
    calexp = toy.put(Image(np.zeros((4, 4), "f4")), "calexp", CALEXP)
    body = datalink_votable(toy, [str(calexp)], URLS)
    by_semantics: dict[str, list[dict[str, object]]] = {}
    for row in rows(body):
        assert row["ID"] == str(calexp)
        by_semantics.setdefault(str(row["semantics"]), []).append(row)
    (this,) = by_semantics["#this"]
    assert this["access_url"] == URLS.access(calexp)
    assert this["content_type"] == "application/fits"
    assert this["content_length"] == toy.registry.find_id("calexp", calexp.id)[3]
    (preview,) = by_semantics["#preview"]
    assert preview["content_type"] == "image/png"
    calibrations = {row["local_semantics"]: row for row in by_semantics["#calibration"]}
    assert set(calibrations) == {"bias", "flat"}
    bias = toy.find_calibration("bias", CALEXP)
    (bias_ref,) = toy.query_datasets("bias", calibDate=bias.data_id["calibDate"], detector=1)
    assert calibrations["bias"]["access_url"] == URLS.access(bias_ref)
    (raw,) = by_semantics["#progenitor"]
    (raw_ref,) = toy.query_datasets("raw", visit=1, detector=1)
    assert raw["access_url"] == URLS.access(raw_ref)


def test_every_row_has_exactly_one_of_access_url_service_def_and_error(toy: Butler) -> None:
    calexp = toy.put(Image(np.zeros((4, 4), "f4")), "calexp", CALEXP)
    raw = next(toy.query_datasets("raw"))
    ids = [str(calexp), str(raw), "not a ref", f"butler:{toy.repository_id}/{'0' * 32}"]
    for row in rows(datalink_votable(toy, ids, URLS)):
        filled = [row[k] for k in ("access_url", "service_def", "error_message")]
        assert sum(value is not None for value in filled) == 1, row


def test_unknown_ids_get_error_rows_with_standard_fault_prefixes(toy: Butler) -> None:
    missing = f"butler:{toy.repository_id}/{'1' * 32}"
    foreign = f"butler:{'2' * 32}/{'3' * 32}"
    errors = {
        row["ID"]: str(row["error_message"])
        for row in rows(datalink_votable(toy, ["garbage", missing, foreign], URLS))
    }
    assert errors["garbage"].startswith("UsageFault: ")
    assert errors[missing].startswith("NotFoundFault: ")
    assert errors[foreign].startswith("NotFoundFault: ")


def test_calibration_links_honour_as_of(toy: Butler) -> None:
    calexp = toy.put(Image(np.zeros((4, 4), "f4")), "calexp", CALEXP)
    before = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    time.sleep(0.01)
    toy.certify("bias", {"calibDate": "2024-03-04", "detector": 1}, "2024-03-04", supersede=True)

    def bias_link(as_of: object) -> str | None:
        (link,) = (
            row
            for row in links_for(toy, [str(calexp)], URLS, as_of=as_of)
            if row.local_semantics == "bias"
        )
        return link.access_url

    def bias_url(day: str) -> str:
        (ref,) = toy.query_datasets("bias", calibDate=day, detector=1)
        return URLS.access(ref)

    assert bias_link(None) == bias_url("2024-03-04")
    assert bias_link(before) == bias_url("2024-03-01")


def test_a_calibration_itself_gets_no_calibration_rows(toy: Butler) -> None:
    (bias,) = toy.query_datasets("bias", calibDate="2024-03-01", detector=1)
    semantics = {link.semantics for link in links_for(toy, [str(bias)], URLS)}
    assert semantics == {"#this", "#preview"}


def test_the_response_declares_the_datalink_standard(toy: Butler) -> None:
    body = datalink_votable(toy, ["x"], URLS)
    assert b"ivo://ivoa.net/std/DataLink#links-1.1" in body
    assert CONTENT_TYPE.startswith("application/x-votable+xml")


def test_text_is_escaped_in_the_table(toy: Butler) -> None:
    hostile = "<script>&\"'</script>"
    (row,) = rows(datalink_votable(toy, [hostile], URLS))
    assert row["ID"] == hostile


def decode_png(data: bytes) -> np.ndarray:
    pytest.importorskip("matplotlib")
    from matplotlib import image

    return image.imread(io.BytesIO(data), format="png")


def test_a_preview_is_a_png_no_larger_than_asked_with_row_zero_at_the_bottom() -> None:
    pixels = np.zeros((1000, 600), "f4")
    pixels[:500] = 100.0  # the lower half of the sky (rows 0..499) is bright
    png = preview_png(Image(pixels), size=100)
    assert png.startswith(PNG_SIGNATURE)
    shown = decode_png(png)
    assert shown.shape[:2] == (100, 60)
    assert shown[-1, 0] > shown[0, 0]  # bright at the bottom of the picture


@settings(max_examples=40, deadline=None)
@given(
    rows_=st.integers(1, 300),
    cols=st.integers(1, 300),
    size=st.integers(1, 64),
    fill=st.sampled_from([0.0, np.nan, np.inf, -1e30, 7.0]),
)
def test_any_image_gives_a_valid_png_within_the_size(
    rows_: int, cols: int, size: int, fill: float
) -> None:
    pixels = np.random.default_rng(rows_ * cols).normal(size=(rows_, cols)).astype("f8")
    pixels[::3, ::2] = fill
    shown = decode_png(preview_png(pixels, size=size))
    assert max(shown.shape[:2]) <= size
    assert shown.shape[:2] == tuple(-(-n // -(-max(rows_, cols) // size)) for n in (rows_, cols))


@pytest.mark.parametrize("obj", [{"a": 1}, np.zeros(5), np.zeros((0, 3)), "text"])
def test_no_preview_of_what_is_not_an_image(obj: object) -> None:
    with pytest.raises(FormatError, match="no preview"):
        preview_png(obj)
