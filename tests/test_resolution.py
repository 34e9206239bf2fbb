"""One way to resolve a data ID (issue 12): get, exists, uri and explain agree.

``get`` finds a calibration by its validity at the observation's time and fills
``lookup ... from raw`` keys from the registry; ``uri`` must name the file ``get``
reads, ``exists`` say whether ``get`` finds one, and ``explain`` (and ``butler
explain``, which exits non-zero when it cannot resolve) show the same. The
repository uses the tutorial camera ``toycam`` on SQLite and PostgreSQL; raw
observations are recorded without files (lookups need only their records).
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from _repos import RegistryFactory, registries  # noqa: F401  (fixture)
from butler.butler import Butler
from butler.cli import main
from butler.errors import ButlerError, DatasetNotFoundError
from butler.image import Image

T = datetime.datetime
VISITS = {1: T(2024, 3, 1, 4), 2: T(2024, 3, 5, 4), 3: T(2024, 2, 1)}  # 3: before any bias
DAYS = ("2024-02-28", "2024-03-04")


@pytest.fixture
def toy(tmp_path: Path, registries: RegistryFactory) -> Iterator[Butler]:  # noqa: F811
    with Butler.create(tmp_path / "toy", mapper="toycam", registry=registries()) as butler:
        butler.registry.register_dataset_type("raw", butler.mapper.keys("raw"))
        for visit, obs_time in VISITS.items():
            for detector in (1, 2):
                data_id = butler.mapper.normalize(
                    visit=visit, detector=detector, filter="TC-G", obsTime=obs_time
                )
                record = {k: data_id[k] for k in butler.mapper.keys("raw")}
                butler.registry.insert("raw", record, butler.mapper.path("raw", data_id))
        for day, detector in itertools.product(DAYS, (1, 2)):
            pixels = np.full((2, 2), float(detector * 100 + int(day[-2:])), "f4")
            butler.put(Image(pixels), "bias", calibDate=day, detector=detector)
        butler.certify("bias", {"calibDate": DAYS[0], "detector": 1}, DAYS[0], DAYS[1])
        butler.certify("bias", {"calibDate": DAYS[1], "detector": 1}, DAYS[1])
        butler.certify("bias", {"calibDate": DAYS[0], "detector": 2}, DAYS[0])
        yield butler


def local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def agree(butler: Butler, dataset_type: str, data_id: dict[str, object]) -> None:
    """uri, exists and explain say what get does, for one data ID."""
    try:
        obj = butler.get(dataset_type, data_id)
    except DatasetNotFoundError:
        assert not butler.exists(dataset_type, data_id)
        return
    except ButlerError as error:  # an ambiguity: the same from each
        for call in (butler.exists, butler.uri):
            with pytest.raises(type(error)):
                call(dataset_type, data_id)
        with pytest.raises(type(error)):
            butler.explain(dataset_type, data_id, strict=True)
        return
    assert butler.exists(dataset_type, data_id)
    file = local(butler.uri(dataset_type, data_id))
    assert butler.formatters.get("fits").read(file, python_type="butler.image.Image") == obj
    relative = file.relative_to(butler.root).as_posix()
    assert f"at {relative!r}" in butler.explain(dataset_type, data_id)


def test_uri_exists_and_explain_resolve_a_calibration_as_get_does(toy: Butler) -> None:
    # two biases of detector 1 are stored: uri used to call that ambiguous
    file = local(toy.uri("bias", visit=2, detector=1))
    assert file.name == "bias-01.fits" and "20240304" in file.parent.name
    assert local(toy.uri("bias", detector=1, obsTime=VISITS[1])).parent.name == "20240228"
    assert toy.exists("bias", visit=1, detector=1)
    assert not toy.exists("bias", visit=3, detector=1)  # before any certified bias
    text = toy.explain("bias", visit=2, detector=1)
    assert "calib/bias/20240304/bias-01.fits" in text and "calibDate" in text
    for visit, detector in itertools.product(VISITS, (1, 2)):
        agree(toy, "bias", {"visit": visit, "detector": detector})
        agree(toy, "bias", {"obsTime": VISITS[visit], "detector": detector})
    agree(toy, "bias", {"detector": 1})  # two biases of detector 1: ambiguous for all
    toy.put(Image(np.zeros((2, 2), "f4")), "bias", calibDate="2024-01-01", detector=3)
    agree(toy, "bias", {"detector": 3})  # only the calibration's own keys: completed
    assert "completed from the registry" in toy.explain("bias", detector=3)


def test_explain_and_uri_fill_lookup_keys_from_raw(toy: Butler) -> None:
    # calexp's filter comes from raw: explain used to stop at "missing filter"
    text = toy.explain("calexp", visit=1, detector=2)
    assert "completed from 'raw'" in text and "TC-G" in text
    assert "calexp/000001/TC-G/calexp-000001-" in text and "not stored" in text
    expected = toy.uri("calexp", visit=1, detector=2)
    toy.put(Image(np.ones((2, 2), "f4")), "calexp", visit=1, detector=2)
    assert toy.uri("calexp", visit=1, detector=2) == expected
    agree(toy, "calexp", {"visit": 1, "detector": 2})
    agree(toy, "calexp", {"visit": 2, "detector": 2})


def test_butler_explain_exits_non_zero_when_it_cannot_resolve(
    toy: Butler, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(toy.root)
    assert main(["explain", root, "bias", "visit=2", "detector=1"]) == 0
    assert "calib/bias/20240304/bias-01.fits" in capsys.readouterr().out
    assert main(["explain", root, "bias", "visit=3", "detector=1"]) == 1  # no bias valid
    assert main(["explain", root, "calexp", "visit=9", "detector=1"]) != 0  # no raw to fill
    assert "visit" in capsys.readouterr().err
    assert main(["explain", root, "calexp", "visit=1", "detector=1"]) == 0  # not stored: where
    with pytest.raises(ButlerError):
        toy.explain("bias", visit=3, detector=1, strict=True)
    assert "bias" in toy.explain("bias", visit=3, detector=1)  # not strict: said in the text
