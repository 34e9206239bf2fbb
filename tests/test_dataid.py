"""DataId: an immutable, hashable mapping that is not a dict."""

from __future__ import annotations

import datetime
import pickle
from collections.abc import Mapping

import pytest
from butler import DataId
from butler.dataid import format_data_id
from hypothesis import given, settings
from hypothesis import strategies as st


def test_reads_like_a_mapping() -> None:
    data_id = DataId(visit=903334, ccd=16)
    assert data_id["visit"] == 903334
    assert "ccd" in data_id
    assert len(data_id) == 2
    assert list(data_id) == ["visit", "ccd"]
    assert data_id.get("filter") is None
    assert isinstance(data_id, Mapping)


def test_is_not_a_dict() -> None:
    assert not isinstance(DataId(visit=1), dict)
    assert type(DataId(visit=1)) is DataId


def test_repr_lists_keys_in_order() -> None:
    assert repr(DataId(visit=903334, ccd=16)) == "{visit: 903334, ccd: 16}"
    assert repr(DataId({"filter": "HSC-G"})) == "{filter: 'HSC-G'}"


def test_repr_shows_dates_and_times_in_iso_form() -> None:
    data_id = DataId(
        dayObs=datetime.date(2026, 3, 1),
        obsTime=datetime.datetime(2026, 3, 1, 4, 5, 6),
        taiObs=datetime.datetime(2026, 3, 1, 4, 5, 6, 500),
        dateObs="2026-03-01",
    )
    assert repr(data_id) == (
        "{dayObs: 2026-03-01, obsTime: 2026-03-01T04:05:06, "
        "taiObs: 2026-03-01T04:05:06.000500, dateObs: '2026-03-01'}"
    )
    assert format_data_id(data_id.to_dict()) == repr(data_id)


def test_cannot_be_changed() -> None:
    data_id = DataId(visit=1)
    with pytest.raises(TypeError):
        data_id["visit"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        data_id.visit = 2  # type: ignore[attr-defined]


def test_equal_to_data_ids_and_mappings_with_the_same_items() -> None:
    assert DataId(visit=1, ccd=2) == DataId(ccd=2, visit=1)
    assert DataId(visit=1, ccd=2) == {"ccd": 2, "visit": 1}
    assert DataId(visit=1, ccd=2) == {"ccd": 2, "visit": 1}
    assert DataId(visit=1) != DataId(visit=2)
    assert DataId(visit=1) != {"visit": 1, "ccd": 2}
    assert DataId(visit=1) != [("visit", 1)]


def test_usable_as_a_dict_key() -> None:
    seen = {DataId(visit=1, ccd=2): "a"}
    assert seen[DataId(ccd=2, visit=1)] == "a"


def test_pickles() -> None:
    data_id = DataId(visit=1, filter="HSC-G")
    assert pickle.loads(pickle.dumps(data_id)) == data_id


def test_copying_the_source_dict() -> None:
    source = {"visit": 1}
    data_id = DataId(source)
    source["visit"] = 2
    assert data_id["visit"] == 1
    assert data_id.to_dict() == {"visit": 1}


_items = st.dictionaries(
    st.text(min_size=1, max_size=5), st.one_of(st.integers(), st.text(), st.booleans())
)


@settings(deadline=None)
@given(_items)
def test_equal_and_same_hash_whatever_the_order(items: dict[str, int | str | bool]) -> None:
    forwards = DataId(items)
    backwards = DataId(dict(reversed(list(items.items()))))
    assert forwards == backwards == items
    assert hash(forwards) == hash(backwards)
