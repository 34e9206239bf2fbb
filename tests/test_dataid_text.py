"""Data ID text values: any text round-trips or is refused as InvalidDataIdError (issue 12).

A lone surrogate (``"\\udc80"``: a Python str code point that no UTF-8 encoder
accepts) used to reach the database driver, which raised ``UnicodeEncodeError``.
It is refused at normalization, naming the key, before any I/O; the registry
refuses one handed to it directly with RegistryError. The laws run on SQLite and
PostgreSQL, with MegaCam's free-text key ``object`` (dataset ``log``, a text file).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from butler.butler import Butler
from butler.errors import InvalidDataIdError, RegistryError
from butler.normalize import Normalizer
from butler.spec import KeySpec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LOG = {"runId": "03AQ01", "date": "2007-01-01", "filter": "r"}
#: any code point, lone surrogates (U+D800..U+DFFF) included and made likely
TEXT = st.text(
    st.one_of(st.characters(codec=None, categories=None), st.integers(0xD800, 0xDFFF).map(chr)),
    max_size=20,
)


@pytest.fixture
def repo(tmp_path: Path, registry_url: str) -> Iterator[Butler]:
    registry = None if registry_url.startswith("sqlite") else registry_url
    with Butler.create(tmp_path / "repo", mapper="megacam", registry=registry) as butler:
        yield butler


def _files(root: Path) -> list[tuple[str, int]]:
    return sorted(
        (os.path.join(folder, name), os.stat(os.path.join(folder, name)).st_size)
        for folder, _, names in os.walk(root)
        for name in names
        if not name.startswith("registry.sqlite3")
    )


def test_a_lone_surrogate_is_refused_naming_the_key_before_any_io(repo: Butler) -> None:
    before = _files(repo.root)
    for value in ["\udc80", "plot\ud800x", "caf\u00e9\udfff"]:
        with pytest.raises(InvalidDataIdError, match=r"object=.*lone surrogate"):
            repo.put("a log", "log", object=value, **LOG)
        with pytest.raises(InvalidDataIdError, match="object"):
            repo.get("log", object=value, **LOG)
        with pytest.raises(InvalidDataIdError, match="object"):
            repo.exists("log", object=value, **LOG)
    assert _files(repo.root) == before
    assert "log" not in repo.registry.dataset_types() or repo.registry.count("log") == 0


def test_the_registry_refuses_a_lone_surrogate_itself(repo: Butler) -> None:
    keys = {"runId": "str", "object": "str", "date": "str", "filter": "str"}
    repo.registry.register_dataset_type("textLog", keys)
    data_id = {"object": "a\udc80", **LOG}
    with pytest.raises(RegistryError, match=r"'object'.*lone surrogate"):
        repo.registry.insert("textLog", data_id, "logs/x.log")
    with pytest.raises(RegistryError, match="object"):
        repo.registry.find("textLog", data_id)
    with pytest.raises(RegistryError, match="Unicode"):
        repo.registry.insert("textLog", {**data_id, "object": "a"}, "logs/\udc80.log")
    assert repo.registry.count("textLog") == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=TEXT)
def test_any_text_round_trips_or_is_refused_as_invalid(repo: Butler, value: str) -> None:
    text = f"log of {value!r}"
    try:
        repo.put(text, "log", object=value, **LOG)
    except InvalidDataIdError as error:
        assert "object" in str(error)
        return
    try:
        assert repo.get("log", object=value, **LOG) == text
        (found,) = repo.query("log", object=value)
        assert found["object"] == value
        assert value in repo.query_values("log", "object")
    finally:
        repo.remove("log", object=value, **LOG)
    assert not repo.exists("log", object=value, **LOG)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["field", "subdir", "visit", "expTime", "taiObs", "day"]), value=TEXT)
def test_normalizing_any_text_gives_a_value_or_invalid_data_id(key: str, value: str) -> None:
    normalizer = Normalizer(
        (
            KeySpec("field", "str"),
            KeySpec("subdir", "str", allow=("/",)),
            KeySpec("visit", "int"),
            KeySpec("expTime", "float"),
            KeySpec("taiObs", "datetime", scale="tai"),
            KeySpec("day", "date"),
        )
    )
    try:
        normalized = normalizer.normalize({key: value})[key]
    except InvalidDataIdError as error:
        assert key in str(error)
        return
    if isinstance(normalized, str):
        normalized.encode("utf-8")  # valid text
    else:
        assert isinstance(normalized, int | float | datetime.date)
